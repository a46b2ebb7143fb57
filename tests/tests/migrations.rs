//! The SQLite and PostgreSQL migrations (`crates/server/migrations/{sqlite,postgres}`)
//! must not drift: the same file names, and in each pair the same statements once
//! comments, case, whitespace and the [`ALLOWED_DIFFERENCES`] are normalised away.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The only spellings the two folders may differ in. Each entry is
/// `(sqlite, postgres, common form, why)`: the phrase of one backend is
/// rewritten to the common form before comparing. Phrases are matched as whole
/// token sequences (see [`tokens`]), so `blob` never matches inside `blob_id`.
///
/// Deliberately *not* allowed: `INTEGER` vs `BIGINT`. Both folders spell every
/// column the same today; PostgreSQL's `INTEGER` is 32-bit, so such a drift would
/// change what the store can decode.
const ALLOWED_DIFFERENCES: &[(&str, &str, &str, &str)] = &[
    (
        "integer primary key autoincrement",
        "bigserial primary key",
        "<auto-increment 64-bit primary key>",
        "SQLite auto-increments only an INTEGER PRIMARY KEY (a 64-bit rowid); \
         PostgreSQL spells the same as BIGSERIAL",
    ),
    (
        "blob",
        "bytea",
        "<bytes>",
        "PostgreSQL has no BLOB type; its byte string is BYTEA",
    ),
];

/// Which folder a migration comes from: selects its side of [`ALLOWED_DIFFERENCES`].
#[derive(Clone, Copy, Debug)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The migrations folder of the server crate, read at run time.
fn migrations_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/server/migrations")
}

/// The `*.sql` file names of one backend's folder.
fn sql_files(backend: &str) -> BTreeSet<String> {
    let dir = migrations_dir().join(backend);
    std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sql"))
        .collect()
}

/// Splits SQL into tokens: lowercase words (letters, digits, `_`), quoted
/// strings kept whole and as written, and every other non-space character on
/// its own. `--` comments are dropped.
fn tokens(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in sql.lines() {
        let mut chars = line.chars().peekable();
        while let Some(c) = chars.next() {
            if c.is_whitespace() {
                continue;
            } else if c == '-' && chars.peek() == Some(&'-') {
                break;
            } else if c == '\'' || c == '"' {
                let mut quoted = c.to_string();
                quoted.extend(chars.by_ref().take_while(|&q| q != c));
                quoted.push(c);
                out.push(quoted);
            } else if c.is_alphanumeric() || c == '_' {
                let mut word = c.to_lowercase().to_string();
                while let Some(&n) = chars.peek().filter(|n| n.is_alphanumeric() || **n == '_') {
                    word.extend(n.to_lowercase());
                    chars.next();
                }
                out.push(word);
            } else {
                out.push(c.to_string());
            }
        }
    }
    out
}

/// Replaces every occurrence of the token sequence `from` in `tokens` by `to`.
fn replace_phrase(tokens: &[String], from: &[String], to: &str) -> Vec<String> {
    let (mut out, mut i) = (Vec::with_capacity(tokens.len()), 0);
    while i < tokens.len() {
        if tokens[i..].starts_with(from) {
            out.push(to.to_string());
            i += from.len();
        } else {
            out.push(tokens[i].clone());
            i += 1;
        }
    }
    out
}

/// The statements of `sql`, each normalised to one line: lowercase, no
/// comments, single spaces, and this backend's spellings of the
/// [`ALLOWED_DIFFERENCES`] rewritten to their common form.
fn normalise(sql: &str, backend: Backend) -> Vec<String> {
    let mut toks = tokens(sql);
    for &(sqlite, postgres, common, _why) in ALLOWED_DIFFERENCES {
        let phrase = match backend {
            Backend::Sqlite => sqlite,
            Backend::Postgres => postgres,
        };
        toks = replace_phrase(&toks, &tokens(phrase), common);
    }
    toks.split(|t| t == ";")
        .filter(|statement| !statement.is_empty())
        .map(|statement| statement.join(" "))
        .collect()
}

/// `None` when both sides have the same statements; otherwise the position of
/// the first difference and the statement each side has there (`None`: missing).
fn first_difference(
    sqlite: &str,
    postgres: &str,
) -> Option<(usize, Option<String>, Option<String>)> {
    let (a, b) = (
        normalise(sqlite, Backend::Sqlite),
        normalise(postgres, Backend::Postgres),
    );
    (0..a.len().max(b.len()))
        .find(|&i| a.get(i) != b.get(i))
        .map(|i| (i + 1, a.get(i).cloned(), b.get(i).cloned()))
}

#[test]
fn sqlite_and_postgres_migrations_have_not_drifted() {
    let (sqlite, postgres) = (sql_files("sqlite"), sql_files("postgres"));
    assert!(
        !sqlite.is_empty(),
        "no migrations found in {}",
        migrations_dir().display()
    );
    assert_eq!(
        sqlite,
        postgres,
        "the two migration folders must hold the same file names \
         (only in sqlite: {:?}; only in postgres: {:?})",
        sqlite.difference(&postgres).collect::<Vec<_>>(),
        postgres.difference(&sqlite).collect::<Vec<_>>(),
    );

    let dir = migrations_dir();
    let mut drifts = Vec::new();
    for name in &sqlite {
        let read = |backend: &str| std::fs::read_to_string(dir.join(backend).join(name)).unwrap();
        if let Some((n, a, b)) = first_difference(&read("sqlite"), &read("postgres")) {
            let none = || "<no statement>".to_string();
            drifts.push(format!(
                "{name}: statement {n} differs\n  sqlite:   {}\n  postgres: {}",
                a.unwrap_or_else(none),
                b.unwrap_or_else(none),
            ));
        }
    }
    assert!(
        drifts.is_empty(),
        "migrations drifted beyond the allowed backend differences \
         (ALLOWED_DIFFERENCES in tests/tests/migrations.rs):\n{}",
        drifts.join("\n"),
    );
}

#[test]
fn normaliser_allows_only_the_listed_differences() {
    let sqlite = "-- a comment\nCREATE TABLE t (\n  id INTEGER PRIMARY KEY AUTOINCREMENT,\n  \
                  body BLOB NOT NULL,\n  n BIGINT\n);\nCREATE INDEX i ON t (n);";
    let postgres = "create table t (id BIGSERIAL primary key, body BYTEA not null, n bigint); \
                    -- another comment\n create index i on t (n);";
    assert_eq!(
        first_difference(sqlite, postgres),
        None,
        "allowed differences only"
    );

    let missing_column = "create table t (id bigserial primary key, body bytea not null); \
                          create index i on t (n);";
    let (n, a, b) = first_difference(sqlite, missing_column).expect("a missing column is drift");
    assert_eq!(n, 1);
    assert!(a.unwrap().contains("n bigint"));
    assert!(!b.unwrap().contains("n bigint"));

    let narrower = postgres.replace("n bigint", "n integer");
    assert!(
        first_difference(sqlite, &narrower).is_some(),
        "BIGINT vs INTEGER is drift"
    );

    let missing_index = "create table t (id bigserial primary key, body bytea not null, n bigint);";
    assert_eq!(
        first_difference(sqlite, missing_index),
        Some((2, Some("create index i on t ( n )".to_string()), None)),
    );
}
