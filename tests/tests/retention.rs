//! Background pruning (`connector_server::store::retention`): old rows go,
//! recent ones stay, on SQLite and PostgreSQL (a fresh database each, since
//! pruning removes every old row of a table); and every prune query is an
//! index range scan, so pruning costs what it removes, not what a table holds.

use connector_server::store::Database;
use connector_server::store::retention::{Pruned, RetentionSettings, prune_once, prune_selections};
use connector_test_support::databases::sqlite_url;
use connector_test_support::harness::POSTGRES_ENV;
use sqlx::AnyPool;

/// A fresh SQLite file, and a fresh PostgreSQL database when configured.
async fn fresh_databases(dir: &std::path::Path) -> Vec<(&'static str, String)> {
    let mut urls = vec![("sqlite", sqlite_url(&dir.join("retention.db")))];
    if let Ok(server) = std::env::var(POSTGRES_ENV) {
        let url = Database::fresh_postgres_for_tests(&server)
            .await
            .expect("PostgreSQL reachable");
        urls.push(("postgres", url));
    }
    urls
}

async fn raw_pool(url: &str) -> AnyPool {
    sqlx::any::install_default_drivers();
    AnyPool::connect(url).await.unwrap()
}

/// One row of each pruned table, `age_secs` before `now`, keyed by `key`.
async fn insert_rows(pool: &AnyPool, key: &str, now: i64, age_secs: i64) {
    let at = now - age_secs;
    sqlx::query(
        "INSERT INTO oauth_states (state_hash, connector_id, account_id, user_id, redirect_uri,
         authorize_url, inputs, expires_at) VALUES ($1, 'c', 'a', 'u', 'https://r', 'https://x', '{}', $2)",
    )
    .bind(key)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO outbound_audit (at_ms, connector_id, connector_version, method, outcome,
         request_bytes, response_bytes, duration_us) VALUES ($1, $2, '1.0.0', 'GET', 'allowed', 0, 0, 0)",
    )
    .bind(at * 1000)
    .bind(key)
    .execute(pool)
    .await
    .unwrap();
    for (suffix, delivered, failed) in [
        ("-d", Some(at), None),
        ("-f", None, Some(at)),
        ("-p", None, None),
    ] {
        sqlx::query(
            "INSERT INTO webhook_outbox (id, event_type, url, payload, next_attempt_at, delivered_at,
             failed_at, created_at) VALUES ($1, 'connection.created', 'https://hooks', '{}', $2, $3, $4, $2)",
        )
        .bind(format!("{key}{suffix}"))
        .bind(at)
        .bind(delivered)
        .bind(failed)
        .execute(pool)
        .await
        .unwrap();
    }
    sqlx::query(
        "INSERT INTO admin_audit (id, at, key_id, key_name, role, action, detail)
         VALUES ($1, $2, 'k', 'key', 'operator', 'test', '{}')",
    )
    .bind(key)
    .bind(at)
    .execute(pool)
    .await
    .unwrap();
}

async fn keys(pool: &AnyPool, query: &str) -> Vec<String> {
    let mut keys: Vec<String> = sqlx::query_scalar(query).fetch_all(pool).await.unwrap();
    keys.sort();
    keys
}

#[tokio::test]
async fn old_rows_are_pruned_and_recent_ones_kept() {
    let dir = tempfile::tempdir().unwrap();
    let now = 2_000_000_000;
    let settings = RetentionSettings {
        batch: 2, // several batches per table
        ..RetentionSettings::default()
    };
    for (backend, url) in fresh_databases(dir.path()).await {
        let database = Database::connect(&url).await.unwrap();
        let pool = raw_pool(&url).await;
        // Older than every retention (400 days), and recent (10 seconds).
        for n in 0..3 {
            insert_rows(&pool, &format!("old{n}"), now, 400 * 86_400).await;
        }
        insert_rows(&pool, "new", now, 10).await;

        let pruned = prune_once(&database, &settings, now).await.unwrap();
        assert_eq!(
            pruned,
            Pruned {
                oauth_states: 3,
                outbound_audit: 3,
                webhook_outbox: 6,
                admin_audit: 3,
                sessions: 0,
            },
            "{backend}"
        );
        assert_eq!(
            keys(&pool, "SELECT state_hash FROM oauth_states").await,
            ["new"],
            "{backend}"
        );
        assert_eq!(
            keys(&pool, "SELECT connector_id FROM outbound_audit").await,
            ["new"],
            "{backend}"
        );
        assert_eq!(
            keys(&pool, "SELECT id FROM admin_audit").await,
            ["new"],
            "{backend}"
        );
        assert_eq!(
            keys(&pool, "SELECT id FROM webhook_outbox").await,
            ["new-d", "new-f", "new-p", "old0-p", "old1-p", "old2-p"],
            "{backend}: a pending event is never pruned, however old"
        );
        let again = prune_once(&database, &settings, now).await.unwrap();
        assert_eq!(again, Pruned::default(), "{backend}: nothing left to prune");
    }
}

#[tokio::test]
async fn a_state_is_kept_for_its_grace_period_after_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("grace.db"));
    let database = Database::connect(&url).await.unwrap();
    let pool = raw_pool(&url).await;
    let now = 2_000_000_000;
    insert_rows(&pool, "expired-recently", now, 60).await;
    insert_rows(&pool, "expired-long-ago", now, 7_200).await;
    prune_once(&database, &RetentionSettings::default(), now)
        .await
        .unwrap();
    assert_eq!(
        keys(&pool, "SELECT state_hash FROM oauth_states").await,
        ["expired-recently"],
        "a late callback is still told its state expired for an hour"
    );
}

#[tokio::test]
async fn expired_connect_and_console_sessions_are_pruned_after_their_grace() {
    let dir = tempfile::tempdir().unwrap();
    let now = 2_000_000_000;
    for (backend, url) in fresh_databases(dir.path()).await {
        let database = Database::connect(&url).await.unwrap();
        let pool = raw_pool(&url).await;
        // Expired two hours ago (past the hour of grace), expired a minute
        // ago (within it), and live for ten more minutes.
        for (key, expires_at) in [
            ("long-ago", now - 7_200),
            ("recently", now - 60),
            ("live", now + 600),
        ] {
            sqlx::query(
                "INSERT INTO connect_sessions (token_hash, account_id, user_id, connector_id,
                 created_by, created_at, expires_at) VALUES ($1, 'a', 'u', 'c', 'k', $2, $3)",
            )
            .bind(key)
            .bind(expires_at - 1_800)
            .bind(expires_at)
            .execute(&pool)
            .await
            .unwrap();
            sqlx::query(
                "INSERT INTO console_sessions (session_hash, key_id, created_at, expires_at)
                 VALUES ($1, 'k', $2, $3)",
            )
            .bind(key)
            .bind(expires_at - 3_600)
            .bind(expires_at)
            .execute(&pool)
            .await
            .unwrap();
        }
        let pruned = prune_once(&database, &RetentionSettings::default(), now)
            .await
            .unwrap();
        assert_eq!(pruned.sessions, 2, "{backend}: one of each table");
        for query in [
            "SELECT token_hash FROM connect_sessions",
            "SELECT session_hash FROM console_sessions",
        ] {
            assert_eq!(
                keys(&pool, query).await,
                ["live", "recently"],
                "{backend}: {query}"
            );
        }
    }
}

/// Without `0008_retention.sql` every one of these is a full table scan.
#[tokio::test]
async fn every_prune_query_is_an_index_range_scan() {
    let dir = tempfile::tempdir().unwrap();
    for (backend, url) in fresh_databases(dir.path()).await {
        Database::connect(&url).await.unwrap(); // migrated
        let pool = raw_pool(&url).await;
        for (table, selection) in prune_selections() {
            let plan: Vec<String> = if backend == "sqlite" {
                let rows: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(&format!("EXPLAIN QUERY PLAN {selection}"))
                        .bind(0_i64)
                        .fetch_all(&pool)
                        .await
                        .unwrap();
                rows.into_iter().map(|row| row.3).collect()
            } else {
                // An empty table is scanned sequentially by choice; forbid that
                // to see whether an index can serve the query at all.
                let mut connection = pool.acquire().await.unwrap();
                sqlx::query("SET enable_seqscan = off")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                let plan = sqlx::query_scalar(&format!("EXPLAIN {selection}"))
                    .bind(0_i64)
                    .fetch_all(&mut *connection)
                    .await
                    .unwrap();
                sqlx::query("RESET enable_seqscan")
                    .execute(&mut *connection)
                    .await
                    .unwrap();
                plan
            };
            let plan = plan.join("\n");
            let indexed = if backend == "sqlite" {
                plan.contains("USING INDEX") || plan.contains("USING COVERING INDEX")
            } else {
                plan.contains("Index")
            };
            assert!(
                indexed,
                "{backend}: pruning {table} scans the table:\n{plan}"
            );
        }
    }
}
