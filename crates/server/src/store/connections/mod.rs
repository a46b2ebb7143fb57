//! Connections and their secrets. Every query is scoped by account; secrets
//! are stored only as AEAD envelopes bound to their row and column, and are
//! never part of [`Connection`] (which is what APIs return).

use std::collections::BTreeMap;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;

use super::crypto::{Aad, CryptoError, Keyring};
use super::{Database, unix_seconds};

mod cache;
mod rotation;
mod state;
mod validated;

pub use rotation::RotationReport;

/// Whether a connection can be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionStatus {
    /// Usable.
    Active,
    /// The provider refused the credentials: the user must connect again.
    NeedsReauth,
    /// Logged out: credentials cleared.
    Revoked,
}

impl ConnectionStatus {
    /// The stored name (`active`, `needs_reauth`, `revoked`).
    pub fn as_str(self) -> &'static str {
        match self {
            ConnectionStatus::Active => "active",
            ConnectionStatus::NeedsReauth => "needs_reauth",
            ConnectionStatus::Revoked => "revoked",
        }
    }

    fn parse(text: &str) -> Self {
        match text {
            "active" => ConnectionStatus::Active,
            "needs_reauth" => ConnectionStatus::NeedsReauth,
            _ => ConnectionStatus::Revoked,
        }
    }
}

/// A connection without its secrets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// Stable id.
    pub id: String,
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// Connector id.
    pub connector_id: String,
    /// `oauth` or `apiKey`.
    pub auth_type: String,
    /// Status.
    pub status: ConnectionStatus,
    /// CRM hostname.
    pub hostname: Option<String>,
    /// The user's id in the CRM.
    pub platform_user_id: Option<String>,
    /// The user's name in the CRM.
    pub user_name: Option<String>,
    /// IANA time zone.
    pub timezone_name: Option<String>,
    /// UTC offset.
    pub timezone_offset: Option<String>,
    /// Non-secret values saved with the connection.
    #[schema(value_type = Vec<Vec<String>>)]
    pub additional_info: Vec<(String, String)>,
    /// Access-token expiry, Unix seconds.
    pub expires_at: Option<i64>,
    /// Which secrets are stored (never their values).
    pub has_access_token: bool,
    /// A refresh token is stored.
    pub has_refresh_token: bool,
    /// An API key is stored.
    pub has_api_key: bool,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds.
    pub updated_at: i64,
    /// The token refresh of an OAuth connection (none for API keys).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshState>,
}

/// Where an OAuth connection's token refresh stands.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshState {
    /// When the access token was last refreshed (Unix seconds); none since
    /// the login.
    pub last_refreshed_at: Option<i64>,
    /// The same in milliseconds (what a forced refresh compares with).
    #[serde(skip)]
    pub(crate) last_refreshed_at_ms: Option<i64>,
    /// Failed refreshes in a row (network errors, 5xx); 0 after a success.
    pub consecutive_failures: i64,
    /// After a failure: when the background refresher tries again (Unix
    /// seconds). None when no retry is scheduled.
    pub next_attempt_at: Option<i64>,
}

/// Which connection: its id within its account and user. Every read and
/// change of one connection goes through it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionRef<'a> {
    /// Platform account.
    pub account_id: &'a str,
    /// Platform user.
    pub user_id: &'a str,
    /// Connection id.
    pub id: &'a str,
}

impl Connection {
    /// This connection's reference.
    pub fn at(&self) -> ConnectionRef<'_> {
        ConnectionRef {
            account_id: &self.account_id,
            user_id: &self.user_id,
            id: &self.id,
        }
    }
}

/// A connection's secrets, decrypted. `Debug` shows no value.
#[derive(Debug, Default, Clone)]
pub struct ConnectionSecrets {
    /// OAuth access token.
    pub access_token: Option<SecretString>,
    /// OAuth refresh token.
    pub refresh_token: Option<SecretString>,
    /// API key.
    pub api_key: Option<SecretString>,
}

/// Who the user is in the CRM (from `user-info`).
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The user's id in the CRM.
    pub platform_user_id: Option<String>,
    /// The user's name.
    pub user_name: Option<String>,
    /// IANA time zone.
    pub timezone_name: Option<String>,
    /// UTC offset.
    pub timezone_offset: Option<String>,
}

/// What a successful login saves.
#[derive(Debug, Clone)]
pub struct NewConnection {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// Connector id.
    pub connector_id: String,
    /// `oauth` or `apiKey`.
    pub auth_type: String,
    /// CRM hostname.
    pub hostname: Option<String>,
    /// The user's id in the CRM.
    pub platform_user_id: Option<String>,
    /// The user's name.
    pub user_name: Option<String>,
    /// IANA time zone.
    pub timezone_name: Option<String>,
    /// UTC offset.
    pub timezone_offset: Option<String>,
    /// Non-secret values.
    pub additional_info: Vec<(String, String)>,
    /// Access-token expiry, Unix seconds.
    pub expires_at: Option<i64>,
    /// Secrets to encrypt.
    pub secrets: ConnectionSecrets,
}

/// Errors of the connection store.
#[derive(Debug, thiserror::Error)]
pub enum ConnectionStoreError {
    /// Database failure.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// A secret column did not decrypt (copied between rows, unknown key, tampered).
    #[error("connection {id}: column {column}: {source}")]
    Crypto {
        /// The connection.
        id: String,
        /// The column.
        column: &'static str,
        /// Why.
        source: CryptoError,
    },
    /// Stored JSON is invalid.
    #[error("connection {0}: stored additional info is not valid JSON")]
    Corrupt(String),
}

const SECRET_COLUMNS: [&str; 3] = ["access_token", "refresh_token", "api_key"];
/// The column holding the API-key form's secret fields (one envelope of a
/// JSON map `const → value`), and the purpose in its associated data.
const SECRET_FIELDS_COLUMN: &str = "secret_fields";
const COLUMNS: &str = "id, account_id, user_id, connector_id, auth_type, status, hostname, platform_user_id, user_name, \
     timezone_name, timezone_offset, additional_info, expires_at, access_token, refresh_token, api_key, created_at, updated_at, \
     last_refreshed_at_ms, refresh_failures, next_refresh_at";

/// Connections in the database, encrypted with a keyring.
#[derive(Clone)]
pub struct ConnectionStore {
    database: Database,
    keys: Arc<Keyring>,
    /// The rows [`ConnectionStore::get_with_secrets`] read (see [`cache`]).
    cache: Arc<cache::ConnectionCache>,
}

impl ConnectionStore {
    /// A store over `database` using `keys`.
    pub fn new(database: Database, keys: Arc<Keyring>) -> Self {
        Self {
            database,
            keys,
            cache: Arc::default(),
        }
    }

    /// Tells every cache, in this process and in the other replicas, that
    /// connection `id` was written.
    async fn changed(&self, id: &str) {
        self.database
            .publish(super::changes::Change::Connection(id.to_string()))
            .await;
    }

    /// The master keys this store encrypts with.
    pub(crate) fn keys(&self) -> Arc<Keyring> {
        self.keys.clone()
    }

    /// The managed-credential store over the same database and keys.
    pub fn managed(&self) -> super::ManagedStore {
        super::ManagedStore::new(self.database.clone(), self.keys.clone())
    }

    /// What a connection's secret is bound to: its account, user, connector,
    /// row and column.
    fn aad<'a>(
        (account, user): (&'a str, &'a str),
        connector: &'a str,
        id: &'a str,
        column: &'a str,
    ) -> Aad<'a> {
        Aad {
            tenant: account,
            user,
            connector,
            record: id,
            purpose: column,
        }
    }

    /// Saves a login: a new connection, or the replacement of the user's existing
    /// connection to that connector (same id, new secrets, status active).
    pub async fn save(&self, new: NewConnection) -> Result<Connection, ConnectionStoreError> {
        self.save_with_secret_fields(new, &BTreeMap::new()).await
    }

    /// [`ConnectionStore::save`] with the values of the API-key form's secret
    /// fields (manifest `secret: true`), stored as one envelope of a JSON map
    /// `const → value` in `secret_fields` (none when empty), in the same
    /// statement.
    pub async fn save_with_secret_fields(
        &self,
        new: NewConnection,
        secret_fields: &BTreeMap<String, SecretString>,
    ) -> Result<Connection, ConnectionStoreError> {
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM connections WHERE account_id = $1 AND user_id = $2 AND connector_id = $3",
        )
        .bind(&new.account_id)
        .bind(&new.user_id)
        .bind(&new.connector_id)
        .fetch_optional(&self.database.pool)
        .await?;
        let id = existing.clone().unwrap_or_else(new_id);
        let seal = |column: &'static str, value: &Option<SecretString>| {
            value.as_ref().map(|v| {
                self.keys.encrypt(
                    v.expose_secret().as_bytes(),
                    Self::aad(
                        (&new.account_id, &new.user_id),
                        &new.connector_id,
                        &id,
                        column,
                    ),
                )
            })
        };
        let access = seal("access_token", &new.secrets.access_token);
        let refresh = seal("refresh_token", &new.secrets.refresh_token);
        let api_key = seal("api_key", &new.secrets.api_key);
        let secret_fields = (!secret_fields.is_empty()).then(|| {
            let plain: BTreeMap<&str, &str> = secret_fields
                .iter()
                .map(|(k, v)| (k.as_str(), v.expose_secret()))
                .collect();
            SecretString::from(serde_json::to_string(&plain).expect("a map of strings serialises"))
        });
        let secret_fields = seal(SECRET_FIELDS_COLUMN, &secret_fields);
        let info = serde_json::to_string(&new.additional_info).expect("pairs of strings serialise");
        let now = unix_seconds();
        // One statement writes the row and returns it (`RETURNING`), so a
        // login does not read it back.
        let query = if existing.is_some() {
            "UPDATE connections SET auth_type = $4, status = 'active', refresh_failures = 0,
             next_refresh_at = NULL, last_refresh_error = NULL, last_refreshed_at_ms = NULL, hostname = $5, platform_user_id = $6,
             user_name = $7, timezone_name = $8, timezone_offset = $9, additional_info = $10, expires_at = $11,
             access_token = $12, refresh_token = $13, api_key = $14, updated_at = $15, secret_fields = $16
             WHERE id = $1 AND account_id = $2 AND connector_id = $3 RETURNING "
        } else {
            "INSERT INTO connections (id, account_id, connector_id, auth_type, status, hostname, platform_user_id,
             user_name, timezone_name, timezone_offset, additional_info, expires_at, access_token, refresh_token,
             api_key, created_at, updated_at, secret_fields, user_id)
             VALUES ($1, $2, $3, $4, 'active', $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15, $16, $17) RETURNING "
        };
        let query = format!("{query}{COLUMNS}");
        let mut statement = sqlx::query(&query)
            .bind(&id)
            .bind(&new.account_id)
            .bind(&new.connector_id)
            .bind(&new.auth_type)
            .bind(&new.hostname)
            .bind(&new.platform_user_id)
            .bind(&new.user_name)
            .bind(&new.timezone_name)
            .bind(&new.timezone_offset)
            .bind(&info)
            .bind(new.expires_at)
            .bind(&access)
            .bind(&refresh)
            .bind(&api_key)
            .bind(now)
            .bind(&secret_fields);
        if existing.is_none() {
            statement = statement.bind(&new.user_id);
        }
        let row = statement.fetch_one(&self.database.pool).await?;
        if existing.is_some() {
            // A new id cannot be cached anywhere yet; a replaced one can.
            self.changed(&id).await;
        }
        connection(&row)
    }

    /// A connection by id, within its account and user (an id used with
    /// another account or user reads nothing).
    pub async fn get(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Option<Connection>, ConnectionStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connections WHERE id = $1 AND account_id = $2 AND user_id = $3"
        ))
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .fetch_optional(&self.database.pool)
        .await?;
        row.map(|row| connection(&row)).transpose()
    }

    /// A user's connections, oldest first.
    pub async fn list(
        &self,
        account_id: &str,
        user_id: &str,
    ) -> Result<Vec<Connection>, ConnectionStoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connections WHERE account_id = $1 AND user_id = $2 ORDER BY created_at, id"
        ))
        .bind(account_id)
        .bind(user_id)
        .fetch_all(&self.database.pool)
        .await?;
        rows.iter().map(connection).collect()
    }

    /// Decrypts a connection's secrets.
    pub async fn secrets(
        &self,
        connection: &Connection,
    ) -> Result<ConnectionSecrets, ConnectionStoreError> {
        let row = sqlx::query("SELECT access_token, refresh_token, api_key FROM connections WHERE id = $1 AND account_id = $2 AND user_id = $3")
            .bind(&connection.id)
            .bind(&connection.account_id)
            .bind(&connection.user_id)
            .fetch_one(&self.database.pool)
            .await?;
        self.decrypt(connection, &row, 0)
    }

    /// Decrypts a connection's secret form fields (`const → value`; empty when
    /// none are stored).
    pub async fn secret_fields(
        &self,
        connection: &Connection,
    ) -> Result<BTreeMap<String, SecretString>, ConnectionStoreError> {
        let envelope: Option<String> = sqlx::query_scalar(
            "SELECT secret_fields FROM connections WHERE id = $1 AND account_id = $2 AND user_id = $3",
        )
        .bind(&connection.id)
        .bind(&connection.account_id)
        .bind(&connection.user_id)
        .fetch_optional(&self.database.pool)
        .await?
        .flatten();
        let Some(envelope) = envelope else {
            return Ok(BTreeMap::new());
        };
        let aad = Self::aad(
            (&connection.account_id, &connection.user_id),
            &connection.connector_id,
            &connection.id,
            SECRET_FIELDS_COLUMN,
        );
        let plain =
            zeroize::Zeroizing::new(self.keys.decrypt(&envelope, aad).map_err(|source| {
                ConnectionStoreError::Crypto {
                    id: connection.id.clone(),
                    column: SECRET_FIELDS_COLUMN,
                    source,
                }
            })?);
        let map: BTreeMap<String, String> = serde_json::from_slice(&plain[..])
            .map_err(|_| ConnectionStoreError::Corrupt(connection.id.clone()))?;
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect())
    }

    /// A connection and its decrypted secrets (the proxy routes' path): one
    /// query, or none when the row is cached ([`cache`]: push-invalidated on
    /// every write, at most `cache::TTL`, 5 s, old). The secrets are decrypted on
    /// every call; only their envelopes are kept.
    pub async fn get_with_secrets(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Option<(Connection, ConnectionSecrets)>, ConnectionStoreError> {
        let feed = self.database.changes();
        let row = match self.cache.lookup(feed, at.id, at.account_id, at.user_id) {
            Ok(row) => row,
            Err(ticket) => {
                let Some(row) = self.read_row(at).await? else {
                    return Ok(None);
                };
                self.cache.remember(feed, ticket, &row);
                row
            }
        };
        let secrets = self.decrypt_envelopes(&row.connection, &row.envelopes)?;
        Ok(Some((row.connection, secrets)))
    }

    /// A connection's row from the database, its secrets still encrypted.
    async fn read_row(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<Option<cache::Row>, ConnectionStoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connections WHERE id = $1 AND account_id = $2 AND user_id = $3"
        ))
        .bind(at.id)
        .bind(at.account_id)
        .bind(at.user_id)
        .fetch_optional(&self.database.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        // `COLUMNS` holds the three secret columns from index 13.
        Ok(Some(cache::Row {
            connection: connection(&row)?,
            envelopes: envelopes(&row, 13)?,
        }))
    }

    /// Decrypts the secret columns found in `row` from index `first`.
    fn decrypt(
        &self,
        connection: &Connection,
        row: &AnyRow,
        first: usize,
    ) -> Result<ConnectionSecrets, ConnectionStoreError> {
        self.decrypt_envelopes(connection, &envelopes(row, first)?)
    }

    /// Decrypts a connection's secret envelopes (in [`SECRET_COLUMNS`] order).
    fn decrypt_envelopes(
        &self,
        connection: &Connection,
        envelopes: &[Option<String>; 3],
    ) -> Result<ConnectionSecrets, ConnectionStoreError> {
        let mut secrets = ConnectionSecrets::default();
        for (column, envelope) in SECRET_COLUMNS.iter().zip(envelopes) {
            let Some(envelope) = envelope else {
                continue;
            };
            let aad = Self::aad(
                (&connection.account_id, &connection.user_id),
                &connection.connector_id,
                &connection.id,
                column,
            );
            let plain = self.keys.decrypt(envelope, aad).map_err(|source| {
                ConnectionStoreError::Crypto {
                    id: connection.id.clone(),
                    column,
                    source,
                }
            })?;
            let value = SecretString::from(String::from_utf8_lossy(&plain).into_owned());
            match *column {
                "access_token" => secrets.access_token = Some(value),
                "refresh_token" => secrets.refresh_token = Some(value),
                _ => secrets.api_key = Some(value),
            }
        }
        Ok(secrets)
    }
}

/// The three secret envelopes of `row` from index `first`.
fn envelopes(row: &AnyRow, first: usize) -> Result<[Option<String>; 3], sqlx::Error> {
    Ok([
        row.try_get(first)?,
        row.try_get(first + 1)?,
        row.try_get(first + 2)?,
    ])
}

fn new_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("conn_{}", hex::encode(bytes))
}

fn connection(row: &AnyRow) -> Result<Connection, ConnectionStoreError> {
    let id: String = row.try_get(0)?;
    let info: String = row.try_get(11)?;
    let additional_info =
        serde_json::from_str(&info).map_err(|_| ConnectionStoreError::Corrupt(id.clone()))?;
    let status: String = row.try_get(5)?;
    let auth_type: String = row.try_get(4)?;
    Ok(Connection {
        account_id: row.try_get(1)?,
        user_id: row.try_get(2)?,
        connector_id: row.try_get(3)?,
        status: ConnectionStatus::parse(&status),
        hostname: row.try_get(6)?,
        platform_user_id: row.try_get(7)?,
        user_name: row.try_get(8)?,
        timezone_name: row.try_get(9)?,
        timezone_offset: row.try_get(10)?,
        additional_info,
        expires_at: row.try_get(12)?,
        has_access_token: row.try_get::<Option<String>, _>(13)?.is_some(),
        has_refresh_token: row.try_get::<Option<String>, _>(14)?.is_some(),
        has_api_key: row.try_get::<Option<String>, _>(15)?.is_some(),
        created_at: row.try_get(16)?,
        updated_at: row.try_get(17)?,
        refresh: match auth_type.as_str() {
            "oauth" => Some(RefreshState {
                last_refreshed_at: row.try_get::<Option<i64>, _>(18)?.map(|ms| ms / 1000),
                last_refreshed_at_ms: row.try_get(18)?,
                consecutive_failures: row.try_get(19)?,
                next_attempt_at: row.try_get(20)?,
            }),
            _ => None,
        },
        auth_type,
        id,
    })
}
