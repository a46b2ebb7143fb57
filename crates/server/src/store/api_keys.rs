//! API keys of the HTTP API: created with a role and an account scope, shown
//! once, stored as SHA-256 (keys are 256 random bits, so a plain hash is
//! enough), checked on every request, revoked at once. Live keys are kept in
//! memory for a few seconds with push invalidation ([`super::key_cache`]).

use base64::Engine as _;
use rand::RngCore as _;
use secrecy::SecretString;
use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::Row;

use std::sync::Arc;
use std::time::Duration;

use super::changes::Change;
use super::key_cache::KeyCache;
use super::{Database, unix_seconds};
use crate::access::{ALL_ACCOUNTS, AccountScope, Principal, Role};

/// Every key starts with this, so leaked keys are easy to find in code and logs.
pub const KEY_PREFIX: &str = "chk_";

/// A key as listed (never its secret).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRecord {
    /// Public id (`key_…`), used to revoke it.
    pub id: String,
    /// What it is for.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The accounts it may act on (`*`: every account).
    pub accounts: Vec<String>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds, once revoked.
    pub revoked_at: Option<i64>,
    /// A service key trusted with raw access tokens (the credentials route).
    pub raw_tokens: bool,
}

/// Why a key cannot be created or used.
#[derive(Debug, thiserror::Error)]
pub enum ApiKeyError {
    /// A creation argument is wrong (names it).
    #[error("{field}: {message}")]
    Invalid {
        /// The argument.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// Database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
}

fn invalid(field: &'static str, message: impl Into<String>) -> ApiKeyError {
    ApiKeyError::Invalid {
        field,
        message: message.into(),
    }
}

fn hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// How long a live key is kept in memory by default (`[api] api_key_cache_secs`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(5);

/// The API keys in the database.
#[derive(Clone)]
pub struct ApiKeyStore {
    database: Database,
    cache: Arc<KeyCache>,
}

impl ApiKeyStore {
    /// The keys of `database`, live ones kept for [`DEFAULT_CACHE_TTL`].
    pub fn new(database: Database) -> Self {
        Self::with_cache_ttl(database, DEFAULT_CACHE_TTL)
    }

    /// The keys of `database`, live ones kept in memory for at most `ttl`
    /// (zero: every request reads the database).
    pub fn with_cache_ttl(database: Database, ttl: Duration) -> Self {
        Self {
            database,
            cache: Arc::new(KeyCache::new(ttl)),
        }
    }

    /// Creates a key; returns it with its secret, which is not stored and
    /// cannot be shown again. Operators have no accounts; the other roles need
    /// at least one (or `*`).
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        accounts: &[String],
    ) -> Result<(ApiKeyRecord, SecretString), ApiKeyError> {
        self.create_with(name, role, accounts, false).await
    }

    /// [`ApiKeyStore::create`], optionally trusting a service key with raw
    /// access tokens (`GET …/credentials`).
    pub async fn create_with(
        &self,
        name: &str,
        role: Role,
        accounts: &[String],
        raw_tokens: bool,
    ) -> Result<(ApiKeyRecord, SecretString), ApiKeyError> {
        if raw_tokens && role != Role::Service {
            return Err(invalid(
                "raw-tokens",
                "only service keys may be trusted with raw access tokens",
            ));
        }
        if name.trim().is_empty() || name.len() > 200 {
            return Err(invalid("name", "must be 1 to 200 characters"));
        }
        match role {
            Role::Operator if !accounts.is_empty() => {
                return Err(invalid(
                    "accounts",
                    "an operator key is not scoped to accounts",
                ));
            }
            Role::AccountAdmin | Role::Service if accounts.is_empty() => {
                return Err(invalid(
                    "accounts",
                    format!("a `{role}` key needs at least one account (or `{ALL_ACCOUNTS}`)"),
                ));
            }
            _ => {}
        }
        for account in accounts {
            let valid = !account.is_empty()
                && account.len() <= 200
                && !account.chars().any(|c| c.is_whitespace() || c.is_control());
            if !valid {
                return Err(invalid(
                    "accounts",
                    format!("`{account}` is not an account id"),
                ));
            }
        }
        if role == Role::AccountAdmin && accounts.iter().any(|a| a == ALL_ACCOUNTS) {
            return Err(invalid(
                "accounts",
                "an account-admin key names its accounts; `*` is for service keys",
            ));
        }
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        let token = format!(
            "{KEY_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
        );
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        let record = ApiKeyRecord {
            id: format!("key_{}", hex::encode(id)),
            name: name.trim().to_string(),
            role,
            accounts: accounts.to_vec(),
            created_at: unix_seconds(),
            revoked_at: None,
            raw_tokens,
        };
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, accounts, secret_hash, created_at, raw_tokens) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&record.id)
        .bind(&record.name)
        .bind(role.as_str())
        .bind(serde_json::to_string(&record.accounts).expect("strings serialise"))
        .bind(hash(&token))
        .bind(record.created_at)
        .bind(i64::from(raw_tokens))
        .execute(&self.database.pool)
        .await?;
        Ok((record, SecretString::from(token)))
    }

    /// Every key, revoked ones included, oldest first.
    pub async fn list(&self) -> Result<Vec<ApiKeyRecord>, ApiKeyError> {
        let rows = sqlx::query(
            "SELECT id, name, role, accounts, created_at, revoked_at, raw_tokens FROM api_keys ORDER BY created_at, id",
        )
        .fetch_all(&self.database.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let role: String = row.try_get(2)?;
                let accounts: String = row.try_get(3)?;
                Ok(ApiKeyRecord {
                    id: row.try_get(0)?,
                    name: row.try_get(1)?,
                    role: Role::parse(&role).unwrap_or(Role::Service),
                    accounts: serde_json::from_str(&accounts).unwrap_or_default(),
                    created_at: row.try_get(4)?,
                    revoked_at: row.try_get(5)?,
                    raw_tokens: row.try_get::<i64, _>(6)? != 0,
                })
            })
            .collect()
    }

    /// Revokes a key by id. `false` when there is no such live key.
    pub async fn revoke(&self, id: &str) -> Result<bool, ApiKeyError> {
        let done =
            sqlx::query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
                .bind(id)
                .bind(unix_seconds())
                .execute(&self.database.pool)
                .await?;
        let revoked = done.rows_affected() == 1;
        if revoked {
            self.database.publish(Change::ApiKey(id.to_string())).await;
        }
        Ok(revoked)
    }

    /// The caller a presented key stands for; `None` for an unknown or revoked
    /// key (or a stored role this build does not know).
    pub async fn authenticate(&self, token: &str) -> Result<Option<Principal>, ApiKeyError> {
        if !token.starts_with(KEY_PREFIX) || token.len() > 200 {
            return Ok(None);
        }
        let hash = hash(token);
        let feed = self.database.changes();
        let ticket = match self.cache.lookup(feed, &hash) {
            Ok(principal) => return Ok(Some(principal)),
            Err(ticket) => ticket,
        };
        let principal = self.read(&hash).await?;
        if let Some(principal) = &principal {
            self.cache.remember(feed, ticket, &hash, principal);
        }
        Ok(principal)
    }

    /// The live key whose secret hashes to `hash`, from the database
    /// (index: the unique `secret_hash`).
    async fn read(&self, hash: &str) -> Result<Option<Principal>, ApiKeyError> {
        let row = sqlx::query(
            "SELECT id, name, role, accounts, raw_tokens FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        )
        .bind(hash)
        .fetch_optional(&self.database.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let role: String = row.try_get(2)?;
        let accounts: String = row.try_get(3)?;
        let Some(role) = Role::parse(&role) else {
            return Ok(None);
        };
        Ok(Some(Principal {
            key_id: row.try_get(0)?,
            name: row.try_get(1)?,
            role,
            accounts: AccountScope::from_list(serde_json::from_str(&accounts).unwrap_or_default()),
            raw_tokens: row.try_get::<i64, _>(4)? != 0,
        }))
    }
}
