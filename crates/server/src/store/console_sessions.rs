//! Console sessions of operators: the SHA-256 of the HttpOnly cookie, the
//! API key the operator logged in with (checked again on every request, so
//! revoking the key ends the session) and the expiry.

use sqlx::Row;

use super::connect_sessions::token_hash;
use super::{Database, unix_seconds};

/// The console sessions of one database.
#[derive(Clone, Debug)]
pub struct ConsoleSessionStore {
    database: Database,
}

impl ConsoleSessionStore {
    /// The store over `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Opens a session under `cookie` for the key `key_id`, valid
    /// `lifetime_secs`.
    pub async fn create(
        &self,
        cookie: &str,
        key_id: &str,
        lifetime_secs: i64,
    ) -> Result<(), sqlx::Error> {
        let now = unix_seconds();
        sqlx::query(
            "INSERT INTO console_sessions (session_hash, key_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(token_hash(cookie))
        .bind(key_id)
        .bind(now)
        .bind(now + lifetime_secs)
        .execute(&self.database.pool)
        .await?;
        Ok(())
    }

    /// The key id of the live session under `cookie`.
    pub async fn key_of(&self, cookie: &str) -> Result<Option<String>, sqlx::Error> {
        let row = sqlx::query(
            "SELECT key_id FROM console_sessions WHERE session_hash = $1 AND expires_at >= $2",
        )
        .bind(token_hash(cookie))
        .bind(unix_seconds())
        .fetch_optional(&self.database.pool)
        .await?;
        row.map(|row| row.try_get(0)).transpose()
    }

    /// Ends the session under `cookie`.
    pub async fn delete(&self, cookie: &str) -> Result<(), sqlx::Error> {
        sqlx::query("DELETE FROM console_sessions WHERE session_hash = $1")
            .bind(token_hash(cookie))
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }
}
