//! Refresh leases: at most one holder refreshes a connection at a time, across
//! every replica sharing the database. A lease has an owner and an expiry; a
//! holder that dies releases it by expiry. Times are milliseconds.

use super::Database;

/// Milliseconds since the epoch.
pub(crate) fn unix_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// The leases table.
#[derive(Clone)]
pub struct LeaseStore {
    database: Database,
}

impl LeaseStore {
    /// The leases of `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Takes the lease of `connection_id` for `owner` for `ttl_ms`, if nobody
    /// holds it or the holder's lease expired. `true` when taken.
    pub async fn try_acquire(
        &self,
        connection_id: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let now = unix_millis();
        let done = sqlx::query(
            "INSERT INTO refresh_leases (connection_id, owner, expires_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (connection_id) DO UPDATE SET owner = $2, expires_at_ms = $3
             WHERE refresh_leases.expires_at_ms < $4",
        )
        .bind(connection_id)
        .bind(owner)
        .bind(now + ttl_ms)
        .bind(now)
        .execute(&self.database.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Extends `owner`'s lease of `connection_id` to `ttl_ms` from now, if
    /// it still holds it. `false` when it does not (released, or expired and
    /// taken by another holder).
    pub async fn renew(
        &self,
        connection_id: &str,
        owner: &str,
        ttl_ms: i64,
    ) -> Result<bool, sqlx::Error> {
        let done = sqlx::query(
            "UPDATE refresh_leases SET expires_at_ms = $3 WHERE connection_id = $1 AND owner = $2",
        )
        .bind(connection_id)
        .bind(owner)
        .bind(unix_millis() + ttl_ms)
        .execute(&self.database.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives the lease back (only if `owner` still holds it).
    pub async fn release(&self, connection_id: &str, owner: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM refresh_leases WHERE connection_id = $1 AND owner = $2")
            .bind(connection_id)
            .bind(owner)
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }

    /// The current holder and its expiry (ms), if any.
    pub async fn holder(&self, connection_id: &str) -> Result<Option<(String, i64)>, sqlx::Error> {
        use sqlx::Row;
        let row =
            sqlx::query("SELECT owner, expires_at_ms FROM refresh_leases WHERE connection_id = $1")
                .bind(connection_id)
                .fetch_optional(&self.database.pool)
                .await?;
        row.map(|r| Ok((r.try_get(0)?, r.try_get(1)?))).transpose()
    }
}
