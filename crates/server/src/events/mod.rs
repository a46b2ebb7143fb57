//! Connection events delivered as signed webhooks.
//!
//! [`Events::emit`] writes each event to an outbox table (`webhook_outbox`) before
//! returning; a delivery loop ([`Events::start_delivery`]) on every replica claims
//! due rows, POSTs them to the configured URL signed in the Standard Webhooks
//! format (`webhook-id`, `webhook-timestamp`, `webhook-signature`: HMAC-SHA256,
//! [`signature`]), and retries failures with exponential backoff and jitter until
//! `max_attempts`. Delivery is **at least once**: a receiver deduplicates on the
//! event id (`webhook-id`, also `Connector-Host-Event-Id` and the payload's `id`).
//!
//! While `previous_secret` is configured (a secret rotation), every request is
//! signed with both secrets: `webhook-signature` carries two space-separated
//! signatures, the current secret's first, and a receiver that knows either
//! secret accepts it.
//!
//! Replicas on one database never send the same attempt at the same time: a row
//! is claimed by an `UPDATE` that only succeeds while nobody holds it
//! (`locked_until` empty or past). A replica that dies while holding a row leaves
//! it to be claimed again once the lock expires (the receiver may then see the
//! event twice).
//!
//! Payload (JSON, never a token or secret):
//!
//! ```json
//! {"id":"evt_…","type":"connection.refresh_failed","createdAt":1700000000,
//!  "connection":{"id":"conn_…","accountId":"acme","userId":"u1","connectorId":"regional-crm",
//!                "status":"active","expiresAt":1700003600},
//!  "detail":"provider answered 503"}
//! ```

mod delivery;
pub mod signature;
mod store;

use std::path::PathBuf;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretSlice};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

pub use signature::{
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, SECRET_PREFIX, SecretError, TOLERANCE_SECS, VerifyError,
    WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER, secret_key, sign,
    verify,
};

use crate::store::crypto::Keyring;
use crate::store::{Connection, Database, unix_seconds};

/// What happened to a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EventKind {
    /// A login saved a connection (new, or replacing the user's previous one).
    #[serde(rename = "connection.created")]
    ConnectionCreated,
    /// Refreshing the access token failed (the connection may still recover).
    #[serde(rename = "connection.refresh_failed")]
    RefreshFailed,
    /// A connection that had failed to refresh works again.
    #[serde(rename = "connection.recovered")]
    Recovered,
    /// The provider refused the credentials: the user must connect again.
    #[serde(rename = "connection.needs_reauth")]
    NeedsReauth,
    /// The connection was logged out or revoked.
    #[serde(rename = "connection.revoked")]
    Revoked,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [EventKind; 5] = [
        EventKind::ConnectionCreated,
        EventKind::RefreshFailed,
        EventKind::Recovered,
        EventKind::NeedsReauth,
        EventKind::Revoked,
    ];

    /// The wire name (`connection.created`, …): the payload's `type` and the
    /// `Connector-Host-Event-Type` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ConnectionCreated => "connection.created",
            EventKind::RefreshFailed => "connection.refresh_failed",
            EventKind::Recovered => "connection.recovered",
            EventKind::NeedsReauth => "connection.needs_reauth",
            EventKind::Revoked => "connection.revoked",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Default of [`WebhookConfig::max_attempts`].
pub const DEFAULT_MAX_ATTEMPTS: u32 = 12;
/// Default of [`WebhookConfig::backoff_base_secs`].
pub const DEFAULT_BACKOFF_BASE_SECS: u64 = 5;
/// Default of [`WebhookConfig::backoff_max_secs`].
pub const DEFAULT_BACKOFF_MAX_SECS: u64 = 3600;
/// Default of [`WebhookConfig::timeout_secs`].
pub const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// The `[webhooks]` table of the configuration file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Absolute `http://` or `https://` URL every event is POSTed to.
    pub url: String,
    /// Where the signing secret is (never the value itself): `whsec_<base64>`
    /// (the key is the decoded base64) or any other value (its bytes are the key).
    pub secret: WebhookSecretSource,
    /// Where the secret being rotated out is, if any: while it is set every
    /// request carries a second signature made with it.
    #[serde(default)]
    pub previous_secret: Option<WebhookSecretSource>,
    /// Attempts before an event is marked failed (at least 1).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Delay before the first retry; doubles with each failed attempt.
    #[serde(default = "default_backoff_base_secs")]
    pub backoff_base_secs: u64,
    /// Longest delay between two attempts.
    #[serde(default = "default_backoff_max_secs")]
    pub backoff_max_secs: u64,
    /// Time limit of one attempt, from connecting to the end of the response.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_max_attempts() -> u32 {
    DEFAULT_MAX_ATTEMPTS
}
fn default_backoff_base_secs() -> u64 {
    DEFAULT_BACKOFF_BASE_SECS
}
fn default_backoff_max_secs() -> u64 {
    DEFAULT_BACKOFF_MAX_SECS
}
fn default_timeout_secs() -> u64 {
    DEFAULT_TIMEOUT_SECS
}

/// Where the webhook signing secret is: exactly one of an environment variable
/// of the host process or a file (its content without the trailing newline).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookSecretSource {
    /// An environment variable.
    #[serde(default)]
    pub env: Option<String>,
    /// A file.
    #[serde(default)]
    pub file: Option<PathBuf>,
}

impl WebhookSecretSource {
    /// Reads the secret and returns its HMAC key ([`secret_key`]). `name` is the
    /// configuration key (`webhooks.secret`, `webhooks.previous_secret`) errors
    /// start with; they say where it looked, never the value.
    pub fn read_key(&self, name: &str) -> Result<SecretSlice<u8>, EventsError> {
        let error = |message: String| EventsError::Config(format!("{name}: {message}"));
        let value = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var)
                .map_err(|_| error(format!("environment variable {var} is not set")))?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| error(format!("cannot read {}: {e}", path.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            _ => return Err(error("set exactly one of `env` or `file`".into())),
        };
        let value = zeroize::Zeroizing::new(value);
        let key = secret_key(&value).map_err(|e| error(e.to_string()))?;
        Ok(SecretSlice::from(key))
    }
}

impl WebhookConfig {
    /// A configuration with the default retry settings.
    pub fn new(url: impl Into<String>, secret: WebhookSecretSource) -> Self {
        Self {
            url: url.into(),
            secret,
            previous_secret: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            backoff_base_secs: DEFAULT_BACKOFF_BASE_SECS,
            backoff_max_secs: DEFAULT_BACKOFF_MAX_SECS,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }

    /// Checks every value except the secret (which [`Events::new`] reads);
    /// errors name the key (`webhooks.url: …`).
    pub fn validate(&self) -> Result<(), EventsError> {
        let config = |message: String| Err(EventsError::Config(message));
        match url::Url::parse(&self.url) {
            Ok(url) if !matches!(url.scheme(), "http" | "https") => {
                return config(format!(
                    "webhooks.url: `{}` is not an http:// or https:// URL",
                    self.url
                ));
            }
            Ok(url) if url.host_str().is_none_or(str::is_empty) => {
                return config(format!("webhooks.url: `{}` has no host", self.url));
            }
            Ok(_) => {}
            Err(e) => {
                return config(format!(
                    "webhooks.url: `{}` is not an absolute URL: {e}",
                    self.url
                ));
            }
        }
        if self.max_attempts == 0 {
            return config("webhooks.max_attempts: must be at least 1".into());
        }
        if self.backoff_base_secs == 0 {
            return config("webhooks.backoff_base_secs: must be at least 1".into());
        }
        if self.backoff_max_secs < self.backoff_base_secs {
            return config("webhooks.backoff_max_secs: must be at least backoff_base_secs".into());
        }
        if self.timeout_secs == 0 || self.timeout_secs > 600 {
            return config("webhooks.timeout_secs: must be between 1 and 600".into());
        }
        Ok(())
    }
}

/// Errors of [`Events`].
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    /// Database failure.
    #[error("webhook outbox: database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Invalid `[webhooks]` settings (the message names the key).
    #[error("{0}")]
    Config(String),
    /// The HTTP client could not be built.
    #[error("webhooks: cannot build the HTTP client: {0}")]
    Client(String),
}

/// Emits connection events and delivers them. Cheap to clone (shared state).
/// `Debug` shows the settings, never the secret's value.
#[derive(Clone, Debug)]
pub struct Events {
    database: Database,
    inner: Option<Arc<Enabled>>,
}

/// The state of enabled webhooks.
#[derive(Debug)]
struct Enabled {
    config: WebhookConfig,
    /// Computes and checks the outbox rows' MACs.
    keys: Arc<Keyring>,
    /// The HMAC keys requests are signed with: the secret's, then the previous
    /// secret's while one is configured.
    signing_keys: Vec<SecretSlice<u8>>,
    client: reqwest::Client,
    wake: Notify,
}

/// The wire form of an event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Payload<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: EventKind,
    created_at: i64,
    connection: PayloadConnection<'a>,
    detail: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PayloadConnection<'a> {
    id: &'a str,
    account_id: &'a str,
    user_id: &'a str,
    connector_id: &'a str,
    status: crate::store::ConnectionStatus,
    expires_at: Option<i64>,
}

impl Events {
    /// Webhooks over `database` (which holds the outbox); `None` disables them
    /// ([`Events::emit`] then does nothing). Checks the configuration
    /// ([`WebhookConfig::validate`]) and reads the secrets: errors name the key
    /// (`webhooks.url`, `webhooks.secret`, `webhooks.previous_secret`, …).
    ///
    /// `keys` (the master keys) authenticate the outbox rows: a row that does
    /// not carry their MAC is never signed or sent.
    pub fn new(
        database: Database,
        keys: Arc<Keyring>,
        config: Option<WebhookConfig>,
    ) -> Result<Self, EventsError> {
        let Some(config) = config else {
            return Ok(Self {
                database,
                inner: None,
            });
        };
        config.validate()?;
        let mut signing_keys = vec![config.secret.read_key("webhooks.secret")?];
        if let Some(previous) = &config.previous_secret {
            let previous = previous.read_key("webhooks.previous_secret")?;
            if previous.expose_secret() == signing_keys[0].expose_secret() {
                return Err(EventsError::Config(
                    "webhooks.previous_secret: the same key as webhooks.secret; \
                     remove previous_secret or set the new secret"
                        .into(),
                ));
            }
            signing_keys.push(previous);
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(config.timeout_secs))
            .user_agent(concat!("connector-host/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| EventsError::Client(e.to_string()))?;
        Ok(Self {
            database,
            inner: Some(Arc::new(Enabled {
                config,
                keys,
                signing_keys,
                client,
                wake: Notify::new(),
            })),
        })
    }

    /// The one-time upgrade to MAC-carrying outbox rows (migration 0010):
    /// rows pending from before it get their MAC. Returns how many.
    pub async fn mac_pending_rows(database: &Database, keys: &Keyring) -> Result<u64, EventsError> {
        store::mac_pending_rows(database, keys).await
    }

    /// Whether webhooks are configured.
    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Records an event about `connection` in the outbox (durable when this
    /// returns) and wakes the delivery loop. `detail` is a short human-readable
    /// reason (never a token or a provider's raw response). Does nothing when
    /// webhooks are disabled. Returns the new event's id, `None` when disabled.
    pub async fn emit(
        &self,
        kind: EventKind,
        connection: &Connection,
        detail: Option<&str>,
    ) -> Result<Option<String>, EventsError> {
        let Some(enabled) = &self.inner else {
            return Ok(None);
        };
        let id = new_event_id();
        let now = unix_seconds();
        let payload = Payload {
            id: &id,
            kind,
            created_at: now,
            connection: PayloadConnection {
                id: &connection.id,
                account_id: &connection.account_id,
                user_id: &connection.user_id,
                connector_id: &connection.connector_id,
                status: connection.status,
                expires_at: connection.expires_at,
            },
            detail,
        };
        let body = serde_json::to_string(&payload).expect("the payload serialises");
        store::insert(
            &self.database,
            &enabled.keys,
            &id,
            kind.as_str(),
            &enabled.config.url,
            &body,
            now,
        )
        .await?;
        tracing::debug!(event = %id, r#type = kind.as_str(), connection = %connection.id, "webhook event recorded");
        enabled.wake.notify_one();
        Ok(Some(id))
    }

    /// Starts the delivery loop: a pass of [`Events::deliver_due`] whenever
    /// [`Events::emit`] records an event, and at least every few seconds for
    /// retries that became due. Returns a finished task when webhooks are
    /// disabled. Abort the handle to stop it (a row being sent at that moment is
    /// sent again once its claim expires).
    pub fn start_delivery(&self) -> tokio::task::JoinHandle<()> {
        let events = self.clone();
        tokio::spawn(async move { delivery::run(events).await })
    }

    /// One delivery pass: claims the due events of this host's URL (up to a
    /// batch), sends each once and records the outcome. Returns how many were
    /// attempted. Does nothing when webhooks are disabled.
    pub async fn deliver_due(&self) -> Result<usize, EventsError> {
        match &self.inner {
            Some(enabled) => delivery::deliver_due(&self.database, enabled).await,
            None => Ok(0),
        }
    }

    /// The delivery state of one event, `None` if there is no such row.
    pub async fn status(&self, event_id: &str) -> Result<Option<DeliveryStatus>, EventsError> {
        store::status(&self.database, event_id).await
    }

    #[cfg(feature = "test-support")]
    /// Test support: makes every pending event due now (retries without waiting
    /// for their backoff).
    #[doc(hidden)]
    pub async fn make_due_for_tests(&self) {
        if let Some(enabled) = &self.inner {
            store::make_due(&self.database, &enabled.config.url)
                .await
                .expect("make_due_for_tests");
        }
    }
}

/// Where an event's delivery stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryStatus {
    /// The event id.
    pub id: String,
    /// `connection.created`, ….
    pub event_type: String,
    /// Attempts made so far (including one in flight).
    pub attempts: u32,
    /// When the next attempt is due (Unix seconds), while pending.
    pub next_attempt_at: i64,
    /// When a receiver answered 2xx (Unix seconds).
    pub delivered_at: Option<i64>,
    /// When the host gave up after `max_attempts` (Unix seconds).
    pub failed_at: Option<i64>,
    /// HTTP status of the last answer, if any.
    pub last_status: Option<u16>,
    /// Why the last attempt failed (no secret in it).
    pub last_error: Option<String>,
}

fn new_event_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("evt_{}", hex::encode(bytes))
}
