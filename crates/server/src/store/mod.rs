//! Persistent state through sqlx: SQLite by default (a file, WAL mode),
//! PostgreSQL when the URL says so. Each backend has its own migrations folder.
//! PostgreSQL is reached with TLS as its URL's `sslmode` asks; cleartext to a
//! server off this machine is refused unless the operator opts in ([`tls`]).

mod admin_audit;
mod api_keys;
mod audit;
mod audit_writer;
pub mod changes;
mod components;
mod connect_sessions;
mod connections;
pub mod console_overview;
mod console_sessions;
pub mod crypto;
mod feed_cache;
mod key_cache;
mod leases;
mod managed;
mod oauth_states;
mod replicas;
pub mod retention;
#[cfg(feature = "test-support")]
mod testing;
pub mod tls;
pub mod upgrades;

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, Row};

pub use admin_audit::{AdminAudit, AdminChange, AdminEvent};
pub use api_keys::{
    ApiKeyError, ApiKeyRecord, ApiKeyStore, DEFAULT_CACHE_TTL as DEFAULT_KEY_CACHE_TTL, KEY_PREFIX,
};
pub use audit_writer::AuditWriter;
pub use components::{
    ComponentStore, ComponentStoreError, LiveComponent, NewComponent, Published, PublishedVersion,
};
pub use connect_sessions::{
    ConnectSession, ConnectSessionError, ConnectSessionStore, NewConnectSession, token_hash,
};
pub use connections::{
    Connection, ConnectionRef, ConnectionSecrets, ConnectionStatus, ConnectionStore,
    ConnectionStoreError, Identity, NewConnection, RefreshState, RotationReport,
};
pub use console_sessions::ConsoleSessionStore;
pub use leases::LeaseStore;
pub(crate) use leases::unix_millis;
pub use managed::{
    ManagedOAuthApp, ManagedStore, ManagedStoreError, OAuthAppValues, PENDING_LIFETIME_SECS, Slot,
};
pub use oauth_states::{OAuthStateStore, PendingAuthorization, STATE_LIFETIME_SECS, StateError};
pub use replicas::{ReplicaStatus, ServedConnector};
pub use tls::PlaintextRemote;

use crate::registry::inspect::ComponentInfo;

/// A database URL fit for messages and logs: its password replaced by `***`.
pub fn redacted_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_string(),
    }
}

/// Unix time in seconds: the timestamps of every table.
pub fn unix_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default()
}

/// Creates an empty file with mode `0600` when `path` does not exist yet, so
/// the database SQLite then opens there is private from its first byte.
fn create_private_file(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(error) => Err(error),
    }
}

/// Checks a database URL's scheme; `true` for PostgreSQL, `false` for a
/// SQLite file. Messages show the URL redacted.
fn check_url(url: &str) -> anyhow::Result<bool> {
    let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
    if !postgres && !url.starts_with("sqlite:") {
        anyhow::bail!(
            "unsupported database URL `{}`: use sqlite://FILE or postgres://…",
            redacted_url(url)
        );
    }
    if url.contains(":memory:") || url.contains("mode=memory") {
        anyhow::bail!(
            "in-memory SQLite (`{}`) is not supported: each pooled connection would see its own empty database; use a file",
            redacted_url(url)
        );
    }
    Ok(postgres)
}

/// Creates the SQLite file (readable by the host's user only: it holds
/// encrypted secrets and operational data), switches it to WAL and migrates
/// it, before pooling. SQLite gives its -wal and -shm files the mode of the
/// database file.
async fn prepare_sqlite(url: &str) -> anyhow::Result<()> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal);
    create_private_file(options.get_filename())?;
    let pool = sqlx::SqlitePool::connect_with(options).await?;
    sqlx::migrate!("migrations/sqlite").run(&pool).await?;
    pool.close().await;
    Ok(())
}

/// When a token that lives `expires_in` seconds from now expires, in Unix
/// seconds: saturating, so a provider's absurd `expires_in` means "far in the
/// future", never a wrapped-around time in the past.
pub fn expiry_after(expires_in: u64) -> i64 {
    unix_seconds().saturating_add(i64::try_from(expires_in).unwrap_or(i64::MAX))
}

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) pool: AnyPool,
    /// Change notices for the caches over this database.
    changes: std::sync::Arc<changes::ChangeFeed>,
}

impl Database {
    /// Idle connections of the pool, and all it holds now.
    pub fn pool_use(&self) -> (usize, usize) {
        (self.pool.num_idle(), self.pool.size() as usize)
    }

    /// Whether the database answers a trivial query within `within`.
    pub async fn ping(&self, within: std::time::Duration) -> bool {
        let query = sqlx::query("SELECT 1").execute(&self.pool);
        matches!(tokio::time::timeout(within, query).await, Ok(Ok(_)))
    }

    /// The change notices of this database (see [`changes`]).
    pub fn changes(&self) -> &changes::ChangeFeed {
        &self.changes
    }

    /// Publishes a change to every cache of every replica.
    pub(crate) async fn publish(&self, change: changes::Change) {
        self.changes.publish(&self.pool, change).await;
    }

    /// Whether this is a PostgreSQL database (else a SQLite file).
    pub fn is_postgres(&self) -> bool {
        matches!(
            self.pool.connect_options().database_url.scheme(),
            "postgres" | "postgresql"
        )
    }

    /// Closes the pool: every later query fails (shutdown; tests that take
    /// the database away).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A connector version the host loaded at some point.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordedVersion {
    /// The manifest id.
    pub connector_id: String,
    /// The manifest version.
    pub version: String,
    /// sha256 of the file.
    pub sha256: String,
    /// The file's name in the plugins folder.
    pub file_name: String,
    /// Unix seconds of the first load.
    pub first_loaded_at: i64,
    /// Unix seconds of the latest load.
    pub last_loaded_at: i64,
}

impl Database {
    /// Connects and runs migrations. `sqlite://path?mode=rwc` creates the file.
    /// A PostgreSQL server off this machine must be reached with TLS
    /// (`sslmode=require` or stronger); see [`Database::connect_with`].
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        Self::connect_with(url, PlaintextRemote::Refuse).await
    }

    /// Connects and runs migrations; `plaintext` says whether a PostgreSQL
    /// server off this machine may be reached without TLS. The rule
    /// ([`tls::check`]) runs before any connection is attempted.
    pub async fn connect_with(url: &str, plaintext: PlaintextRemote) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let postgres = check_url(url)?;
        if postgres {
            tls::check(url, plaintext)?.warn_if_weak(url);
        } else {
            prepare_sqlite(url).await?;
        }
        let pool = sqlx::any::AnyPoolOptions::new()
            .max_connections(8)
            // A SQLite file cannot drop a connection: no ping before each
            // query (sqlx still pings when a connection goes back to the pool).
            .test_before_acquire(postgres)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if !postgres {
                        // WAL is durable against crashes with NORMAL; FULL would
                        // fsync every commit. Wait for writers instead of failing.
                        sqlx::query("PRAGMA synchronous = NORMAL")
                            .execute(&mut *connection)
                            .await?;
                        sqlx::query("PRAGMA busy_timeout = 5000")
                            .execute(&mut *connection)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        if postgres {
            sqlx::migrate!("migrations/postgres").run(&pool).await?;
        }
        let changes = match postgres {
            true => changes::ChangeFeed::postgres(url),
            false => changes::ChangeFeed::in_process(),
        };
        Ok(Self {
            pool,
            changes: std::sync::Arc::new(changes),
        })
    }

    /// Records that a connector version was loaded.
    pub async fn record_connector_version(
        &self,
        info: &ComponentInfo,
        file_name: &str,
    ) -> anyhow::Result<()> {
        let now = unix_seconds();
        sqlx::query(
            "INSERT INTO connector_versions (connector_id, version, sha256, file_name, first_loaded_at, last_loaded_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (connector_id, sha256) DO UPDATE SET last_loaded_at = $5, file_name = $4",
        )
        .bind(&info.manifest.id)
        .bind(&info.manifest.version)
        .bind(&info.sha256)
        .bind(file_name)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Every version of a connector the host has loaded, newest first.
    pub async fn connector_versions(
        &self,
        connector_id: &str,
    ) -> anyhow::Result<Vec<RecordedVersion>> {
        let rows = sqlx::query(
            "SELECT connector_id, version, sha256, file_name, first_loaded_at, last_loaded_at
             FROM connector_versions WHERE connector_id = $1 ORDER BY last_loaded_at DESC, version DESC",
        )
        .bind(connector_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(RecordedVersion {
                    connector_id: row.try_get(0)?,
                    version: row.try_get(1)?,
                    sha256: row.try_get(2)?,
                    file_name: row.try_get(3)?,
                    first_loaded_at: row.try_get(4)?,
                    last_loaded_at: row.try_get(5)?,
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_absurd_lifetime_saturates_into_the_future() {
        assert_eq!(super::expiry_after(u64::MAX), i64::MAX);
        assert!(super::expiry_after(60) > super::unix_seconds());
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(
            super::redacted_url("postgres://app:s3cret@db.internal:5432/hosts"),
            "postgres://app:***@db.internal:5432/hosts"
        );
        assert_eq!(
            super::redacted_url("sqlite://host.db?mode=rwc"),
            "sqlite://host.db?mode=rwc"
        );
    }
}
