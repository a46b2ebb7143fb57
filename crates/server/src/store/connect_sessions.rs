//! Connect sessions: short-lived, single-use links a platform's backend
//! creates so that one user of one account can log in to one connector
//! through the host's connect pages. Only SHA-256 hashes of the session
//! token and of the browser cookie are stored.
//!
//! A session's life: created (token handed to the platform) → redeemed once
//! by a browser, which gets a cookie in exchange → used by that browser's
//! forms → completed by a successful login. Every step refuses an expired
//! session.

use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Database, unix_seconds};

/// A new connect session: who may log in, to what, and where to return.
#[derive(Debug, Clone)]
pub struct NewConnectSession {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// The connector the user logs in to.
    pub connector_id: String,
    /// Where the browser goes after a successful login (the platform's page).
    pub return_url: Option<String>,
    /// The API key that created it (its id).
    pub created_by: String,
    /// How long the link is valid, in seconds.
    pub lifetime_secs: i64,
}

/// A live connect session, as its browser's forms see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectSession {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// The connector.
    pub connector_id: String,
    /// Where to return after a login.
    pub return_url: Option<String>,
    /// Unix seconds after which the session is refused.
    pub expires_at: i64,
    /// The OAuth state hash of the login this browser started, if any.
    pub oauth_state_hash: Option<String>,
}

/// Why a session token or cookie is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConnectSessionError {
    /// Never issued (or a cookie of no session).
    #[error("unknown connect session")]
    Unknown,
    /// The link was opened already (a second browser, or a replay).
    #[error("this connect link was already used")]
    Reused,
    /// Too old.
    #[error("this connect session has expired")]
    Expired,
    /// The login of this session is done.
    #[error("this connect session is complete")]
    Completed,
    /// Storage failure.
    #[error("storage error: {0}")]
    Storage(String),
}

/// SHA-256 in hex: how tokens, cookies and OAuth states are stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The connect sessions of one database.
#[derive(Clone, Debug)]
pub struct ConnectSessionStore {
    database: Database,
}

impl ConnectSessionStore {
    /// The store over `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Records a session under `token`; returns its expiry (Unix seconds).
    pub async fn create(
        &self,
        token: &str,
        session: &NewConnectSession,
    ) -> Result<i64, sqlx::Error> {
        let now = unix_seconds();
        let expires_at = now + session.lifetime_secs;
        sqlx::query(
            "INSERT INTO connect_sessions (token_hash, account_id, user_id, connector_id, return_url,
             created_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(token_hash(token))
        .bind(&session.account_id)
        .bind(&session.user_id)
        .bind(&session.connector_id)
        .bind(&session.return_url)
        .bind(&session.created_by)
        .bind(now)
        .bind(expires_at)
        .execute(&self.database.pool)
        .await?;
        Ok(expires_at)
    }

    /// Redeems `token` once, atomically, before expiry: binds the session
    /// to the browser holding `browser` (its cookie value).
    pub async fn redeem(&self, token: &str, browser: &str) -> Result<(), ConnectSessionError> {
        let hash = token_hash(token);
        let now = unix_seconds();
        let claimed = sqlx::query(
            "UPDATE connect_sessions SET redeemed_at = $2, browser_hash = $3
             WHERE token_hash = $1 AND redeemed_at IS NULL AND expires_at >= $2",
        )
        .bind(&hash)
        .bind(now)
        .bind(token_hash(browser))
        .execute(&self.database.pool)
        .await
        .map_err(storage)?;
        if claimed.rows_affected() == 1 {
            return Ok(());
        }
        let row = sqlx::query("SELECT redeemed_at FROM connect_sessions WHERE token_hash = $1")
            .bind(&hash)
            .fetch_optional(&self.database.pool)
            .await
            .map_err(storage)?
            .ok_or(ConnectSessionError::Unknown)?;
        let redeemed: Option<i64> = row.try_get(0).map_err(storage)?;
        Err(if redeemed.is_some() {
            ConnectSessionError::Reused
        } else {
            ConnectSessionError::Expired
        })
    }

    /// The live session of the browser holding `browser`.
    pub async fn for_browser(&self, browser: &str) -> Result<ConnectSession, ConnectSessionError> {
        let row = sqlx::query(
            "SELECT account_id, user_id, connector_id, return_url, expires_at, oauth_state_hash,
             completed_at FROM connect_sessions WHERE browser_hash = $1",
        )
        .bind(token_hash(browser))
        .fetch_optional(&self.database.pool)
        .await
        .map_err(storage)?
        .ok_or(ConnectSessionError::Unknown)?;
        let completed: Option<i64> = row.try_get(6).map_err(storage)?;
        if completed.is_some() {
            return Err(ConnectSessionError::Completed);
        }
        let session = ConnectSession {
            account_id: row.try_get(0).map_err(storage)?,
            user_id: row.try_get(1).map_err(storage)?,
            connector_id: row.try_get(2).map_err(storage)?,
            return_url: row.try_get(3).map_err(storage)?,
            expires_at: row.try_get(4).map_err(storage)?,
            oauth_state_hash: row.try_get(5).map_err(storage)?,
        };
        if session.expires_at < unix_seconds() {
            return Err(ConnectSessionError::Expired);
        }
        Ok(session)
    }

    /// Binds the OAuth login started with `state` to the browser's session
    /// (a later start replaces an earlier one).
    pub async fn bind_oauth_state(&self, browser: &str, state: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE connect_sessions SET oauth_state_hash = $2 WHERE browser_hash = $1")
            .bind(token_hash(browser))
            .bind(token_hash(state))
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }

    /// Marks the browser's session complete with the connection it made;
    /// its cookie is refused from now on.
    pub async fn complete(&self, browser: &str, connection_id: &str) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE connect_sessions SET completed_at = $2, connection_id = $3 WHERE browser_hash = $1",
        )
        .bind(token_hash(browser))
        .bind(unix_seconds())
        .bind(connection_id)
        .execute(&self.database.pool)
        .await?;
        Ok(())
    }

    #[cfg(feature = "test-support")]
    /// Test support: moves a session's expiry into the past.
    #[doc(hidden)]
    pub async fn expire_for_tests(&self, token: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE connect_sessions SET expires_at = 0 WHERE token_hash = $1")
            .bind(token_hash(token))
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }
}

fn storage(error: sqlx::Error) -> ConnectSessionError {
    ConnectSessionError::Storage(error.to_string())
}
