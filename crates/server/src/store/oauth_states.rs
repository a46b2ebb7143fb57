//! Pending OAuth authorizations: random single-use `state` values bound to a
//! connector, account and user, expiring after a few minutes. Only the state's
//! SHA-256 is stored; the PKCE verifier is encrypted.

use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::crypto::{Aad, Keyring};
use super::{Database, unix_seconds};

/// How long a state is valid.
pub const STATE_LIFETIME_SECS: i64 = 600;

/// A pending authorization.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    /// Connector id.
    pub connector_id: String,
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// The exact redirect URI sent in the authorize request.
    pub redirect_uri: String,
    /// PKCE verifier (absent with `skipPkce`).
    pub code_verifier: Option<SecretString>,
    /// The authorize endpoint used (its origin is an accepted `iss` when no
    /// issuer is declared).
    pub authorize_url: String,
    /// The issuer the callback's `iss` must equal (RFC 9207), when the
    /// manifest or the managed application declares one.
    pub issuer: Option<String>,
    /// The `oauth-info` inputs as JSON, to call it again at the callback.
    pub inputs: String,
    /// The manifest's `customState`, handed back after the callback.
    pub custom_state: Option<String>,
}

/// Why a callback's state is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    /// Never issued (or issued by another host database).
    #[error("unknown state")]
    Unknown,
    /// Already used once.
    #[error("state already used")]
    Replayed,
    /// Too old.
    #[error("state expired")]
    Expired,
    /// Storage failure.
    #[error("storage error: {0}")]
    Storage(String),
}

fn hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// The pending authorizations.
#[derive(Clone)]
pub struct OAuthStateStore {
    database: Database,
    keys: Arc<Keyring>,
}

impl OAuthStateStore {
    /// A store over `database`.
    pub fn new(database: Database, keys: Arc<Keyring>) -> Self {
        Self { database, keys }
    }

    /// Records a new authorization under `state`; returns its expiry (Unix seconds).
    pub async fn create(
        &self,
        state: &str,
        pending: &PendingAuthorization,
    ) -> Result<i64, sqlx::Error> {
        let state_hash = hash(state);
        let verifier = pending.code_verifier.as_ref().map(|v| {
            let aad = Aad {
                tenant: &pending.account_id,
                user: &pending.user_id,
                connector: &pending.connector_id,
                record: &state_hash,
                purpose: "pkce_verifier",
            };
            self.keys.encrypt(v.expose_secret().as_bytes(), aad)
        });
        // Expired states are removed by the background pruning
        // (`store::retention`), never on this request path.
        let expires_at = unix_seconds() + STATE_LIFETIME_SECS;
        sqlx::query(
            "INSERT INTO oauth_states (state_hash, connector_id, account_id, user_id, redirect_uri, code_verifier,
             authorize_url, inputs, custom_state, expires_at, issuer)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(&state_hash)
        .bind(&pending.connector_id)
        .bind(&pending.account_id)
        .bind(&pending.user_id)
        .bind(&pending.redirect_uri)
        .bind(&verifier)
        .bind(&pending.authorize_url)
        .bind(&pending.inputs)
        .bind(&pending.custom_state)
        .bind(expires_at)
        .bind(&pending.issuer)
        .execute(&self.database.pool)
        .await?;
        Ok(expires_at)
    }

    /// The account a live (unused, unexpired) state belongs to, without
    /// consuming it: lets the API refuse a callback outside the caller's
    /// scope while leaving the state usable by its rightful owner.
    pub async fn account_of(&self, state: &str) -> Result<Option<String>, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT account_id FROM oauth_states WHERE state_hash = $1 AND used_at IS NULL AND expires_at >= $2",
        )
        .bind(hash(state))
        .bind(unix_seconds())
        .fetch_optional(&self.database.pool)
        .await
    }

    /// Consumes `state`: succeeds once, atomically, before expiry.
    pub async fn take(&self, state: &str) -> Result<PendingAuthorization, StateError> {
        let state_hash = hash(state);
        let storage = |e: sqlx::Error| StateError::Storage(e.to_string());
        let now = unix_seconds();
        let claimed = sqlx::query(
            "UPDATE oauth_states SET used_at = $2 WHERE state_hash = $1 AND used_at IS NULL",
        )
        .bind(&state_hash)
        .bind(now)
        .execute(&self.database.pool)
        .await
        .map_err(storage)?;
        let row = sqlx::query(
            "SELECT connector_id, account_id, user_id, redirect_uri, code_verifier, authorize_url, inputs,
             custom_state, expires_at, issuer FROM oauth_states WHERE state_hash = $1",
        )
        .bind(&state_hash)
        .fetch_optional(&self.database.pool)
        .await
        .map_err(storage)?
        .ok_or(StateError::Unknown)?;
        if claimed.rows_affected() != 1 {
            return Err(StateError::Replayed);
        }
        let expires_at: i64 = row.try_get(8).map_err(storage)?;
        if expires_at < now {
            return Err(StateError::Expired);
        }
        let (connector_id, account_id, user_id): (String, String, String) = (
            row.try_get(0).map_err(storage)?,
            row.try_get(1).map_err(storage)?,
            row.try_get(2).map_err(storage)?,
        );
        let verifier: Option<String> = row.try_get(4).map_err(storage)?;
        let code_verifier = match verifier {
            Some(envelope) => {
                let aad = Aad {
                    tenant: &account_id,
                    user: &user_id,
                    connector: &connector_id,
                    record: &state_hash,
                    purpose: "pkce_verifier",
                };
                let plain = self
                    .keys
                    .decrypt(&envelope, aad)
                    .map_err(|e| StateError::Storage(e.to_string()))?;
                Some(SecretString::from(
                    String::from_utf8_lossy(&plain).into_owned(),
                ))
            }
            None => None,
        };
        Ok(PendingAuthorization {
            connector_id,
            account_id,
            user_id,
            redirect_uri: row.try_get(3).map_err(storage)?,
            code_verifier,
            authorize_url: row.try_get(5).map_err(storage)?,
            inputs: row.try_get(6).map_err(storage)?,
            custom_state: row.try_get(7).map_err(storage)?,
            issuer: row.try_get(9).map_err(storage)?,
        })
    }

    #[cfg(feature = "test-support")]
    /// Test support: moves a state's expiry into the past.
    #[doc(hidden)]
    pub async fn expire_for_tests(&self, state: &str) -> Result<(), sqlx::Error> {
        sqlx::query("UPDATE oauth_states SET expires_at = 0 WHERE state_hash = $1")
            .bind(hash(state))
            .execute(&self.database.pool)
            .await?;
        Ok(())
    }
}
