//! Persistent state through sqlx: SQLite by default (a file, WAL mode),
//! PostgreSQL when the URL says so. Each backend has its own migrations folder.

mod admin_audit;
mod api_keys;
mod audit;
mod connections;
pub mod crypto;
mod leases;
mod managed;
mod oauth_states;

use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, Row};

pub use admin_audit::{AdminAudit, AdminChange, AdminEvent};
pub use api_keys::{ApiKeyError, ApiKeyRecord, ApiKeyStore, KEY_PREFIX};
pub use audit::AuditWriter;
pub use connections::{
    Connection, ConnectionRef, ConnectionSecrets, ConnectionStatus, ConnectionStore,
    ConnectionStoreError, Identity, NewConnection, RotationReport,
};
pub use leases::LeaseStore;
pub use managed::{
    ManagedOAuthApp, ManagedStore, ManagedStoreError, OAuthAppValues, PENDING_LIFETIME_SECS, Slot,
};
pub use oauth_states::{OAuthStateStore, PendingAuthorization, STATE_LIFETIME_SECS, StateError};

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

/// A connected, migrated database.
#[derive(Clone, Debug)]
pub struct Database {
    pub(crate) pool: AnyPool,
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
    pub async fn connect(url: &str) -> anyhow::Result<Self> {
        sqlx::any::install_default_drivers();
        let postgres = url.starts_with("postgres://") || url.starts_with("postgresql://");
        if !postgres && !url.starts_with("sqlite:") {
            anyhow::bail!("unsupported database URL `{url}`: use sqlite://FILE or postgres://…");
        }
        if url.contains(":memory:") || url.contains("mode=memory") {
            anyhow::bail!(
                "in-memory SQLite (`{url}`) is not supported: each pooled connection would see its own empty database; use a file"
            );
        }
        if !postgres {
            // Create the file and switch it to WAL before pooling.
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal);
            let pool = sqlx::SqlitePool::connect_with(options).await?;
            sqlx::migrate!("migrations/sqlite").run(&pool).await?;
            pool.close().await;
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
        Ok(Self { pool })
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

    /// Test support: copies a secret column from one connection row to another,
    /// as an attacker with database access would. Not used by the host.
    #[doc(hidden)]
    pub async fn copy_column_for_tests(
        &self,
        column: &str,
        from: &str,
        to: &str,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            ["access_token", "refresh_token", "api_key"].contains(&column),
            "not a secret column"
        );
        let value: Option<String> =
            sqlx::query_scalar(&format!("SELECT {column} FROM connections WHERE id = $1"))
                .bind(from)
                .fetch_one(&self.pool)
                .await?;
        sqlx::query(&format!(
            "UPDATE connections SET {column} = $1 WHERE id = $2"
        ))
        .bind(value)
        .bind(to)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Test support: the stored hash of an API key.
    #[doc(hidden)]
    pub async fn api_key_hash_for_tests(&self, id: &str) -> anyhow::Result<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT secret_hash FROM api_keys WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Test support: copies a managed field's envelope from one user's row to
    /// another's, as an attacker with database access would.
    #[doc(hidden)]
    pub async fn copy_managed_field_for_tests(
        &self,
        account: &str,
        connector: &str,
        from_user: &str,
        to_user: &str,
        field: &str,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO managed_fields (account_id, connector_id, user_id, field, value, updated_by, updated_at)
             SELECT account_id, connector_id, $4, field, value, updated_by, updated_at FROM managed_fields
             WHERE account_id = $1 AND connector_id = $2 AND user_id = $3 AND field = $5",
        )
        .bind(account)
        .bind(connector)
        .bind(from_user)
        .bind(to_user)
        .bind(field)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Test support: sets a connection's access-token expiry (Unix seconds).
    #[doc(hidden)]
    pub async fn set_connection_expiry_for_tests(
        &self,
        id: &str,
        expires_at: i64,
    ) -> anyhow::Result<()> {
        sqlx::query("UPDATE connections SET expires_at = $1 WHERE id = $2")
            .bind(expires_at)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Test support: takes a connection's refresh lease for `owner` until
    /// `expires_at_ms`, as a holder that then dies would.
    #[doc(hidden)]
    pub async fn hold_lease_for_tests(
        &self,
        id: &str,
        owner: &str,
        expires_at_ms: i64,
    ) -> anyhow::Result<()> {
        sqlx::query(
            "INSERT INTO refresh_leases (connection_id, owner, expires_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (connection_id) DO UPDATE SET owner = $2, expires_at_ms = $3",
        )
        .bind(id)
        .bind(owner)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Test support: a connection's stored (encrypted) secret column.
    #[doc(hidden)]
    pub async fn secret_column_for_tests(
        &self,
        id: &str,
        column: &str,
    ) -> anyhow::Result<Option<String>> {
        anyhow::ensure!(
            ["access_token", "refresh_token", "api_key"].contains(&column),
            "not a secret column"
        );
        Ok(
            sqlx::query_scalar(&format!("SELECT {column} FROM connections WHERE id = $1"))
                .bind(id)
                .fetch_one(&self.pool)
                .await?,
        )
    }

    /// Test support: writes back a stored secret column (a stale copy).
    #[doc(hidden)]
    pub async fn set_secret_column_for_tests(
        &self,
        id: &str,
        column: &str,
        value: Option<String>,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(
            ["access_token", "refresh_token", "api_key"].contains(&column),
            "not a secret column"
        );
        sqlx::query(&format!(
            "UPDATE connections SET {column} = $1 WHERE id = $2"
        ))
        .bind(value)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Test support: creates an empty database `ch_test_<unix seconds>_<random>`
    /// on the PostgreSQL server at `server` and returns its URL, so each test
    /// host has its own rows. Test databases of earlier runs (older than ten
    /// minutes and unused) are dropped on the way.
    #[doc(hidden)]
    pub async fn fresh_postgres_for_tests(server: &str) -> anyhow::Result<String> {
        use rand::RngCore as _;
        use sqlx::Connection as _;
        let mut admin = sqlx::PgConnection::connect(server).await?;
        let now = unix_seconds();
        let old: Vec<String> = sqlx::query_scalar(
            "SELECT datname FROM pg_database WHERE datname LIKE 'ch\\_test\\_%'",
        )
        .fetch_all(&mut admin)
        .await?;
        for name in old {
            let created = name
                .split('_')
                .nth(2)
                .and_then(|t| t.parse::<i64>().ok())
                .unwrap_or(now);
            if created + 600 < now {
                // Fails harmlessly while someone still uses it.
                let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
                    .execute(&mut admin)
                    .await;
            }
        }
        let mut random = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let name = format!("ch_test_{now}_{}", hex::encode(random));
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let mut url = url::Url::parse(server)?;
        url.set_path(&format!("/{name}"));
        Ok(url.to_string())
    }

    /// Test support: marks every connection's access token as expired.
    #[doc(hidden)]
    pub async fn expire_all_connections_for_tests(&self) -> anyhow::Result<u64> {
        let done =
            sqlx::query("UPDATE connections SET expires_at = 1 WHERE expires_at IS NOT NULL")
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}

#[cfg(test)]
mod tests {
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
