//! The database matrix: store tests run on a real SQLite file always, and on
//! PostgreSQL too when [`POSTGRES_ENV`] names a server (CI always sets it).
//!
//! The matrix connects to that server's database itself, which other tests
//! and earlier runs share: tests name their rows with [`unique`]. A test host
//! (`harness::Host`, a `serve` replica) gets a fresh database of its own
//! instead, from `harness::database_url`.

use std::path::Path;

use connector_server::store::Database;

pub use crate::harness::POSTGRES_ENV;

/// One database of the matrix.
pub struct Backend {
    /// `"sqlite"` or `"postgres"`, for assertion messages.
    pub name: &'static str,
    /// Its URL (to open another pool on the same database).
    pub url: String,
    /// A connected, migrated pool.
    pub database: Database,
    /// The folder of the SQLite file (empty for PostgreSQL): keep it alive as
    /// long as the database is used.
    pub dir: tempfile::TempDir,
}

/// A fresh SQLite file, and PostgreSQL when [`POSTGRES_ENV`] is set, both
/// connected and migrated.
pub async fn databases() -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("host.db"));
    let mut all = vec![Backend {
        name: "sqlite",
        database: Database::connect(&url).await.unwrap(),
        url,
        dir,
    }];
    if let Ok(url) = std::env::var(POSTGRES_ENV) {
        all.push(Backend {
            name: "postgres",
            database: Database::connect(&url).await.expect("PostgreSQL reachable"),
            url,
            dir: tempfile::tempdir().unwrap(),
        });
    }
    all
}

/// The backend a test host uses (see `harness::database_url`): `"postgres"`
/// when [`POSTGRES_ENV`] is set, else `"sqlite"`.
pub fn host_backend() -> &'static str {
    if std::env::var(POSTGRES_ENV).is_ok() {
        "postgres"
    } else {
        "sqlite"
    }
}

/// The URL of a SQLite file at `path`, created when missing.
pub fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}?mode=rwc", path.display())
}

/// `prefix` made unique across the tests of this process and across runs
/// (process id, clock nanoseconds and a counter), for rows in a shared
/// database.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}
