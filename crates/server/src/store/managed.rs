//! Admin-managed credentials (App Connect seeds 001/002): the OAuth
//! application an account admin registered, and the API-key form fields an
//! admin fills for an account or for one user. Every query is scoped by
//! account and connector (and user for user-scoped fields); every secret value
//! is an AEAD envelope bound to where it belongs.

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use sqlx::Row;

use super::crypto::{Aad, CryptoError, Keyring};
use super::{Database, RotationReport, unix_seconds};

/// How long submitted OAuth values wait for their first successful login.
pub const PENDING_LIFETIME_SECS: i64 = 24 * 3600;

/// Which of an account's two OAuth applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Slot {
    /// Submitted by an admin, not yet proven by a login; expires.
    Pending,
    /// Proven by a successful login; used by everyone in the account.
    Active,
}

impl Slot {
    /// The stored name (`pending`, `active`).
    pub fn as_str(self) -> &'static str {
        match self {
            Slot::Pending => "pending",
            Slot::Active => "active",
        }
    }
}

/// The values of an admin-managed OAuth application.
#[derive(Debug, Clone, Default)]
pub struct OAuthAppValues {
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret.
    pub client_secret: Option<SecretString>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Authorization endpoint.
    pub authorization_url: Option<String>,
    /// Registered redirect URI.
    pub redirect_uri: Option<String>,
    /// CRM hostname.
    pub hostname: Option<String>,
    /// Issuer identifier (RFC 8414), compared exactly with a callback's `iss`.
    pub issuer: Option<String>,
}

/// A stored admin-managed OAuth application.
#[derive(Debug, Clone)]
pub struct ManagedOAuthApp {
    /// Pending or active.
    pub slot: Slot,
    /// Increases with every submission for the account and connector.
    pub version: i64,
    /// The values (secret decrypted).
    pub values: OAuthAppValues,
    /// Expiry of a pending application, Unix seconds.
    pub expires_at: Option<i64>,
    /// Key id of the admin who submitted it.
    pub updated_by: String,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Errors of the managed-credential store.
#[derive(Debug, thiserror::Error)]
pub enum ManagedStoreError {
    /// Database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A stored value does not decrypt (copied, tampered, key missing).
    #[error("managed value `{what}` of account `{account}`: {source}")]
    Crypto {
        /// The account.
        account: String,
        /// Which value.
        what: String,
        /// Why.
        source: CryptoError,
    },
}

/// Admin-managed credentials in the database.
#[derive(Clone)]
pub struct ManagedStore {
    database: Database,
    keys: Arc<Keyring>,
}

const APP_COLUMNS: &str = "slot, version, client_id, client_secret, token_url, authorization_url, redirect_uri, hostname, expires_at, updated_by, updated_at, issuer";

fn app_record(version: i64) -> String {
    format!("managed-oauth:v{version}")
}

fn field_record(user: Option<&str>) -> String {
    match user {
        Some(user) => format!("managed-field:user:{user}"),
        None => "managed-field:account".to_string(),
    }
}

impl ManagedStore {
    /// The store over `database`, encrypting with `keys`.
    pub fn new(database: Database, keys: Arc<Keyring>) -> Self {
        Self { database, keys }
    }

    /// The account's active application and its pending one (`None` once
    /// expired), for one connector.
    pub async fn oauth_apps(
        &self,
        account: &str,
        connector: &str,
    ) -> Result<(Option<ManagedOAuthApp>, Option<ManagedOAuthApp>), ManagedStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {APP_COLUMNS} FROM managed_oauth_apps WHERE account_id = $1 AND connector_id = $2"
        ))
        .bind(account)
        .bind(connector)
        .fetch_all(&self.database.pool)
        .await?;
        let (mut active, mut pending) = (None, None);
        let now = unix_seconds();
        for row in rows {
            let slot: String = row.try_get(0)?;
            let version: i64 = row.try_get(1)?;
            let expires_at: Option<i64> = row.try_get(8)?;
            if slot == "pending" && expires_at.is_some_and(|at| at < now) {
                continue;
            }
            let secret = match row.try_get::<Option<String>, _>(3)? {
                Some(envelope) => {
                    let record = app_record(version);
                    let aad = Aad {
                        tenant: account,
                        user: "",
                        connector,
                        record: &record,
                        purpose: "client_secret",
                    };
                    let plain = self.keys.decrypt(&envelope, aad).map_err(|source| {
                        ManagedStoreError::Crypto {
                            account: account.to_string(),
                            what: "clientSecret".into(),
                            source,
                        }
                    })?;
                    Some(SecretString::from(
                        String::from_utf8_lossy(&plain).into_owned(),
                    ))
                }
                None => None,
            };
            let app = ManagedOAuthApp {
                slot: if slot == "active" {
                    Slot::Active
                } else {
                    Slot::Pending
                },
                version,
                values: OAuthAppValues {
                    client_id: row.try_get(2)?,
                    client_secret: secret,
                    token_url: row.try_get(4)?,
                    authorization_url: row.try_get(5)?,
                    redirect_uri: row.try_get(6)?,
                    hostname: row.try_get(7)?,
                    issuer: row.try_get(11)?,
                },
                expires_at,
                updated_by: row.try_get(9)?,
                updated_at: row.try_get(10)?,
            };
            match app.slot {
                Slot::Active => active = Some(app),
                Slot::Pending => pending = Some(app),
            }
        }
        Ok((active, pending))
    }

    /// Stores submitted values as the pending application (replacing an
    /// earlier pending one), expiring after [`PENDING_LIFETIME_SECS`].
    pub async fn set_pending(
        &self,
        account: &str,
        connector: &str,
        values: &OAuthAppValues,
        updated_by: &str,
    ) -> Result<ManagedOAuthApp, ManagedStoreError> {
        let mut tx = self.database.pool.begin().await?;
        let latest: Option<i64> = sqlx::query_scalar(
            "SELECT MAX(version) FROM managed_oauth_apps WHERE account_id = $1 AND connector_id = $2",
        )
        .bind(account)
        .bind(connector)
        .fetch_one(&mut *tx)
        .await?;
        // Versions only grow, also across a deletion (so a login started
        // before it cannot match a later submission): the next integer, or
        // the clock in milliseconds when that is larger.
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or_default();
        let version = (latest.unwrap_or(0) + 1).max(millis);
        let record = app_record(version);
        let secret = values.client_secret.as_ref().map(|s| {
            self.keys.encrypt(
                s.expose_secret().as_bytes(),
                Aad {
                    tenant: account,
                    user: "",
                    connector,
                    record: &record,
                    purpose: "client_secret",
                },
            )
        });
        let now = unix_seconds();
        let expires_at = now + PENDING_LIFETIME_SECS;
        sqlx::query(
            "INSERT INTO managed_oauth_apps (account_id, connector_id, slot, version, client_id, client_secret,
             token_url, authorization_url, redirect_uri, hostname, expires_at, updated_by, updated_at, issuer)
             VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
             ON CONFLICT (account_id, connector_id, slot) DO UPDATE SET version = $3, client_id = $4,
             client_secret = $5, token_url = $6, authorization_url = $7, redirect_uri = $8, hostname = $9,
             expires_at = $10, updated_by = $11, updated_at = $12, issuer = $13",
        )
        .bind(account)
        .bind(connector)
        .bind(version)
        .bind(&values.client_id)
        .bind(&secret)
        .bind(&values.token_url)
        .bind(&values.authorization_url)
        .bind(&values.redirect_uri)
        .bind(&values.hostname)
        .bind(expires_at)
        .bind(updated_by)
        .bind(now)
        .bind(&values.issuer)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(ManagedOAuthApp {
            slot: Slot::Pending,
            version,
            values: values.clone(),
            expires_at: Some(expires_at),
            updated_by: updated_by.to_string(),
            updated_at: now,
        })
    }

    /// Promotes the pending application `version` to active (replacing the
    /// previous active one). `false` when that pending version is gone
    /// (replaced, expired or already promoted).
    pub async fn promote(
        &self,
        account: &str,
        connector: &str,
        version: i64,
    ) -> Result<bool, ManagedStoreError> {
        let mut tx = self.database.pool.begin().await?;
        let pending: Option<i64> = sqlx::query_scalar(
            "SELECT version FROM managed_oauth_apps WHERE account_id = $1 AND connector_id = $2
             AND slot = 'pending' AND version = $3 AND expires_at >= $4",
        )
        .bind(account)
        .bind(connector)
        .bind(version)
        .bind(unix_seconds())
        .fetch_optional(&mut *tx)
        .await?;
        if pending.is_none() {
            return Ok(false);
        }
        sqlx::query(
            "DELETE FROM managed_oauth_apps WHERE account_id = $1 AND connector_id = $2 AND slot = 'active'",
        )
        .bind(account)
        .bind(connector)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE managed_oauth_apps SET slot = 'active', expires_at = NULL
             WHERE account_id = $1 AND connector_id = $2 AND slot = 'pending' AND version = $3",
        )
        .bind(account)
        .bind(connector)
        .bind(version)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Removes both applications of an account for a connector; returns how
    /// many rows went.
    pub async fn delete_oauth_apps(
        &self,
        account: &str,
        connector: &str,
    ) -> Result<u64, ManagedStoreError> {
        let done = sqlx::query(
            "DELETE FROM managed_oauth_apps WHERE account_id = $1 AND connector_id = $2",
        )
        .bind(account)
        .bind(connector)
        .execute(&self.database.pool)
        .await?;
        Ok(done.rows_affected())
    }

    #[cfg(feature = "test-support")]
    /// Test support: moves the pending application's expiry into the past.
    #[doc(hidden)]
    pub async fn expire_pending_for_tests(
        &self,
        account: &str,
        connector: &str,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "UPDATE managed_oauth_apps SET expires_at = 1 WHERE account_id = $1 AND connector_id = $2 AND slot = 'pending'",
        )
        .bind(account)
        .bind(connector)
        .execute(&self.database.pool)
        .await
        .map(|_| ())
    }

    /// The managed form fields of an account (`user: None`) or of one user.
    pub async fn fields(
        &self,
        account: &str,
        connector: &str,
        user: Option<&str>,
    ) -> Result<BTreeMap<String, SecretString>, ManagedStoreError> {
        let rows = sqlx::query(
            "SELECT field, value FROM managed_fields WHERE account_id = $1 AND connector_id = $2 AND user_id = $3",
        )
        .bind(account)
        .bind(connector)
        .bind(user.unwrap_or(""))
        .fetch_all(&self.database.pool)
        .await?;
        let record = field_record(user);
        let mut values = BTreeMap::new();
        for row in rows {
            let field: String = row.try_get(0)?;
            let envelope: String = row.try_get(1)?;
            let aad = Aad {
                tenant: account,
                user: "",
                connector,
                record: &record,
                purpose: &field,
            };
            let plain =
                self.keys
                    .decrypt(&envelope, aad)
                    .map_err(|source| ManagedStoreError::Crypto {
                        account: account.to_string(),
                        what: field.clone(),
                        source,
                    })?;
            values.insert(
                field,
                SecretString::from(String::from_utf8_lossy(&plain).into_owned()),
            );
        }
        Ok(values)
    }

    /// Sets (`Some`) or clears (`None`) managed field values, all or none.
    pub async fn set_fields(
        &self,
        account: &str,
        connector: &str,
        user: Option<&str>,
        values: &[(String, Option<SecretString>)],
        updated_by: &str,
    ) -> Result<(), ManagedStoreError> {
        let record = field_record(user);
        let now = unix_seconds();
        let mut tx = self.database.pool.begin().await?;
        for (field, value) in values {
            match value {
                Some(value) => {
                    let aad = Aad {
                        tenant: account,
                        user: "",
                        connector,
                        record: &record,
                        purpose: field,
                    };
                    let envelope = self.keys.encrypt(value.expose_secret().as_bytes(), aad);
                    sqlx::query(
                        "INSERT INTO managed_fields (account_id, connector_id, user_id, field, value, updated_by, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (account_id, connector_id, user_id, field)
                         DO UPDATE SET value = $5, updated_by = $6, updated_at = $7",
                    )
                    .bind(account)
                    .bind(connector)
                    .bind(user.unwrap_or(""))
                    .bind(field)
                    .bind(&envelope)
                    .bind(updated_by)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query(
                        "DELETE FROM managed_fields WHERE account_id = $1 AND connector_id = $2 AND user_id = $3 AND field = $4",
                    )
                    .bind(account)
                    .bind(connector)
                    .bind(user.unwrap_or(""))
                    .bind(field)
                    .execute(&mut *tx)
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(())
    }

    /// Re-encrypts every managed value not under the current key; values that
    /// do not decrypt are reported and left alone.
    pub async fn rotate_keys(&self) -> Result<RotationReport, ManagedStoreError> {
        let mut report = RotationReport::default();
        let apps = sqlx::query(
            "SELECT account_id, connector_id, slot, version, client_secret FROM managed_oauth_apps WHERE client_secret IS NOT NULL",
        )
        .fetch_all(&self.database.pool)
        .await?;
        for row in apps {
            let (account, connector, slot): (String, String, String) =
                (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
            let version: i64 = row.try_get(3)?;
            let old: String = row.try_get(4)?;
            if !self.keys.needs_rotation(&old) {
                continue;
            }
            let record = app_record(version);
            let aad = Aad {
                tenant: &account,
                user: "",
                connector: &connector,
                record: &record,
                purpose: "client_secret",
            };
            match self.keys.decrypt(&old, aad) {
                Ok(plain) => {
                    let done = sqlx::query(
                        "UPDATE managed_oauth_apps SET client_secret = $1 WHERE account_id = $2 AND connector_id = $3
                         AND slot = $4 AND client_secret = $5",
                    )
                    .bind(self.keys.encrypt(&plain, aad))
                    .bind(&account)
                    .bind(&connector)
                    .bind(&slot)
                    .bind(&old)
                    .execute(&self.database.pool)
                    .await?;
                    report.rotated += done.rows_affected();
                }
                Err(error) => report.failed.push(format!(
                    "managed OAuth app of account {account} connector {connector} ({slot}): {error}"
                )),
            }
        }
        let fields = sqlx::query(
            "SELECT account_id, connector_id, user_id, field, value FROM managed_fields",
        )
        .fetch_all(&self.database.pool)
        .await?;
        for row in fields {
            let (account, connector, user, field, old): (String, String, String, String, String) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
                row.try_get(4)?,
            );
            if !self.keys.needs_rotation(&old) {
                continue;
            }
            let record = field_record((!user.is_empty()).then_some(user.as_str()));
            let aad = Aad {
                tenant: &account,
                user: "",
                connector: &connector,
                record: &record,
                purpose: &field,
            };
            match self.keys.decrypt(&old, aad) {
                Ok(plain) => {
                    let done = sqlx::query(
                        "UPDATE managed_fields SET value = $1 WHERE account_id = $2 AND connector_id = $3
                         AND user_id = $4 AND field = $5 AND value = $6",
                    )
                    .bind(self.keys.encrypt(&plain, aad))
                    .bind(&account)
                    .bind(&connector)
                    .bind(&user)
                    .bind(&field)
                    .bind(&old)
                    .execute(&self.database.pool)
                    .await?;
                    report.rotated += done.rows_affected();
                }
                Err(error) => report.failed.push(format!(
                    "managed field {field} of account {account} connector {connector}: {error}"
                )),
            }
        }
        Ok(report)
    }
}
