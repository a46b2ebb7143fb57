//! Using a connection: tokens refreshed before use (single flight across
//! callers and replicas), the authenticated proxy, raw credentials for trusted
//! services.
//!
//! **Single flight.** Callers of one connection in this process queue on one
//! async lock (in-process coalescing); the first one takes the database lease
//! of the connection (owner + expiry, `store::LeaseStore`), re-reads the
//! connection, refreshes only if it is still due, commits the new tokens and
//! releases. Everyone after it re-reads and finds a fresh token. A caller in
//! another replica that finds the lease taken waits for the holder to commit
//! (or for the lease to expire, if the holder died) and re-reads.
//!
//! **Failures.** `invalid_grant` marks the connection `needs_reauth`. Network
//! errors and 5xx keep the tokens, count a failure and set a cool-down for
//! the background refresher; the caller still gets the old token while it is
//! valid. Without a refresh token (`noRefreshToken`), an expired token is
//! never handed out: the connection needs re-auth.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use base64::Engine as _;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use super::refresh::RefreshError;
use super::{FlowError, Flows};
use crate::events::EventKind;
use connector_abi::manifest::AuthKind;
use crate::registry::LoadedConnector;
use connector_sandbox::wit::http::{Credential, Method, Request};
use crate::store::{Connection, ConnectionRef, ConnectionStatus, LeaseStore, unix_seconds};

/// Default lease lifetime: longer than a refresh request can take.
pub const DEFAULT_LEASE_TTL_MS: i64 = 30_000;

/// Time limit of a proxied request.
const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// Who refreshes what, in this process and across replicas.
pub struct RefreshCoordinator {
    leases: LeaseStore,
    owner: String,
    local: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    lease_ttl_ms: i64,
}

impl RefreshCoordinator {
    /// A coordinator over `leases`, with a random owner id for this process.
    pub fn new(leases: LeaseStore, lease_ttl_ms: i64) -> Self {
        use rand::RngCore as _;
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Self {
            leases,
            owner: format!("{}-{}", std::process::id(), hex::encode(id)),
            local: Mutex::new(HashMap::new()),
            lease_ttl_ms,
        }
    }

    /// The lease owner id of this process.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Renews this process's lease of connection `id` every third of its
    /// lifetime until the returned guard is dropped, so a refresh that takes
    /// longer than the lease keeps it (the commit is fenced by it anyway).
    fn keep_renewing(&self, id: &str) -> AbortOnDrop {
        let (leases, owner, id, ttl_ms) = (
            self.leases.clone(),
            self.owner.clone(),
            id.to_string(),
            self.lease_ttl_ms,
        );
        AbortOnDrop(tokio::spawn(async move {
            let period = Duration::from_millis((ttl_ms / 3).max(1) as u64);
            loop {
                tokio::time::sleep(period).await;
                match leases.renew(&id, &owner, ttl_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(connection = %id, "lost a refresh lease during the refresh: its commit will be refused");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, connection = %id, "could not renew a refresh lease");
                    }
                }
            }
        }))
    }

    /// The in-process lock of one connection (shared while anyone holds it).
    fn local_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = locks.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id.to_string(), Arc::downgrade(&lock));
        lock
    }
}

/// Aborts its task when dropped (also when the owner panics).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Seconds to wait before the background refresher retries after `failures`
/// consecutive transient failures: 30 s doubling, at most an hour.
pub fn cooldown_secs(failures: i64) -> i64 {
    let exponent = failures.clamp(1, 8) - 1;
    (30_i64 << exponent).min(3600)
}

/// Is the connection's access token within `margin` seconds of expiry?
fn due(connection: &Connection, margin: i64) -> bool {
    connection
        .expires_at
        .is_some_and(|at| at - unix_seconds() <= margin)
}

/// A request for the provider, sent through a connection.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProxyRequest {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`.
    pub method: String,
    /// Absolute URL; its origin must be in the connector's allowed hosts.
    pub url: String,
    /// Request headers (credential headers are refused: the host injects the
    /// connection's credential).
    #[serde(default)]
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    /// A UTF-8 body.
    #[serde(default)]
    pub body: Option<String>,
    /// A binary body, base64 (instead of `body`).
    #[serde(default)]
    pub body_base64: Option<String>,
}

/// The provider's answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProxyResponse {
    /// The provider's status.
    pub status: u16,
    /// The provider's headers (without `set-cookie`).
    #[schema(value_type = Vec<Vec<String>>)]
    pub headers: Vec<(String, String)>,
    /// The body when it is UTF-8.
    pub body: Option<String>,
    /// The body, base64, when it is not UTF-8.
    pub body_base64: Option<String>,
}

/// A connection's raw access token (trusted services only).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RawCredentials {
    /// `Bearer`.
    pub token_type: &'static str,
    /// The access token.
    #[serde(serialize_with = "expose")]
    pub access_token: SecretString,
    /// Its expiry, Unix seconds.
    pub expires_at: Option<i64>,
}

fn expose<S: serde::Serializer>(secret: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    use secrecy::ExposeSecret;
    s.serialize_str(secret.expose_secret())
}

impl std::fmt::Debug for RawCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCredentials")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Flows {
    /// The connection, with its access token refreshed first when it is within
    /// the connector's refresh margin. Fails when the connection is logged
    /// out or needs re-auth.
    pub async fn fresh_connection(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        let connection = self.usable(at).await?;
        if connection.auth_type != AuthKind::OAuth.to_string() {
            return Ok(connection);
        }
        let connector = self.connector(&connection.connector_id)?;
        let margin = connector.info.manifest.refresh_margin_seconds as i64;
        if !due(&connection, margin) {
            return Ok(connection);
        }
        let coordinator = self.refresh.clone();
        let lock = coordinator.local_lock(&connection.id);
        let queued = lock.lock_owned().await;
        let mut wait = Duration::from_millis(10);
        loop {
            if coordinator
                .leases
                .try_acquire(at.id, &coordinator.owner, coordinator.lease_ttl_ms)
                .await
                .map_err(storage)?
            {
                return self
                    .refresh_holding_the_lease(at, connector, margin, queued)
                    .await;
            }
            // Another replica is refreshing: wait for its commit or for its
            // lease to expire.
            let connection = self.usable(at).await?;
            if !due(&connection, margin) {
                return Ok(connection);
            }
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(Duration::from_millis(250));
        }
    }

    /// Refreshes (when still due) and releases the lease in a task of its
    /// own, which keeps the in-process lock: a caller that goes away (an HTTP
    /// client disconnecting drops its handler) cannot cancel a refresh between
    /// the provider's answer and the commit, which would lose rotated tokens.
    async fn refresh_holding_the_lease(
        &self,
        at: ConnectionRef<'_>,
        connector: Arc<LoadedConnector>,
        margin: i64,
        queued: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<Connection, FlowError> {
        let flows = self.clone();
        let (account_id, user_id, id) = (
            at.account_id.to_string(),
            at.user_id.to_string(),
            at.id.to_string(),
        );
        let refresh = tokio::spawn(async move {
            let _queued = queued;
            let renewing = flows.refresh.keep_renewing(&id);
            let at = ConnectionRef {
                account_id: &account_id,
                user_id: &user_id,
                id: &id,
            };
            let result = flows.refresh_if_due(at, &connector, margin).await;
            drop(renewing);
            let coordinator = &flows.refresh;
            if let Err(error) = coordinator.leases.release(at.id, &coordinator.owner).await {
                tracing::warn!(%error, "could not release a refresh lease (it will expire)");
            }
            result
        });
        match refresh.await {
            Ok(result) => result,
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_) => Err(FlowError::Provider(
                "the token refresh was cancelled: the host is shutting down".into(),
            )),
        }
    }

    /// The connection if it is active, else why not.
    async fn usable(&self, at: ConnectionRef<'_>) -> Result<Connection, FlowError> {
        let connection = self.connection(at).await?;
        match connection.status {
            ConnectionStatus::Active => Ok(connection),
            ConnectionStatus::NeedsReauth => Err(FlowError::NotUsable(format!(
                "connection `{}` needs re-auth: the user must log in again",
                connection.id
            ))),
            ConnectionStatus::Revoked => Err(FlowError::NotUsable(format!(
                "connection `{}` is logged out",
                connection.id
            ))),
        }
    }

    /// Holding the lease: re-read, refresh if still due, record the outcome.
    async fn refresh_if_due(
        &self,
        at: ConnectionRef<'_>,
        connector: &LoadedConnector,
        margin: i64,
    ) -> Result<Connection, FlowError> {
        let connection = self.usable(at).await?;
        if !due(&connection, margin) {
            return Ok(connection);
        }
        let expired = connection.expires_at.is_some_and(|t| t <= unix_seconds());
        let no_refresh = connector
            .info
            .manifest
            .auth
            .oauth
            .as_ref()
            .is_some_and(|o| o.no_refresh_token)
            || !connection.has_refresh_token;
        if no_refresh {
            if !expired {
                return Ok(connection); // still valid: use it until it expires
            }
            self.connections
                .set_status(at, ConnectionStatus::NeedsReauth)
                .await?;
            let connection = self.connection(at).await?;
            self.emit(
                EventKind::NeedsReauth,
                &connection,
                "access token expired, no refresh token",
            )
            .await;
            return Err(FlowError::NotUsable(format!(
                "connection `{}`: the access token expired and the provider issues no refresh token: the user must log in again",
                at.id
            )));
        }
        let (failures, retry_at) = self.connections.refresh_state(at).await?;
        if !expired && retry_at.is_some_and(|t| t > unix_seconds()) {
            // Cooling down after a failed refresh: the token still works.
            return Ok(connection);
        }
        match self.refresh_tokens_as(at, Some(&self.refresh.owner)).await {
            Ok(refreshed) => {
                if failures > 0 {
                    self.emit(
                        EventKind::Recovered,
                        &refreshed.connection,
                        "token refresh works again",
                    )
                    .await;
                }
                Ok(refreshed.connection)
            }
            Err(RefreshError::InvalidGrant(detail)) => {
                let connection = self.connection(at).await?;
                self.emit(
                    EventKind::NeedsReauth,
                    &connection,
                    "the provider refused the refresh token",
                )
                .await;
                Err(FlowError::InvalidCredentials(format!(
                    "the provider refused the refresh token{detail}: the user must log in again"
                )))
            }
            Err(RefreshError::NoRefreshToken(_)) => Err(FlowError::NotUsable(format!(
                "connection `{}` has no refresh token: the user must log in again",
                at.id
            ))),
            Err(RefreshError::Flow(
                error @ (FlowError::NotUsable(_)
                | FlowError::Storage(_)
                | FlowError::ManagedStorage(_)),
            )) => Err(error),
            Err(RefreshError::Flow(error)) => {
                // Transient (network, 5xx, connector): keep the tokens, cool down.
                let message = error.to_string();
                let failures = failures + 1;
                self.connections
                    .record_refresh_failure(at, unix_seconds() + cooldown_secs(failures), &message)
                    .await?;
                tracing::warn!(connection = %at.id, failures, error = %message, "token refresh failed");
                self.emit(EventKind::RefreshFailed, &connection, &message)
                    .await;
                if expired {
                    Err(FlowError::Provider(format!(
                        "the token expired and its refresh failed ({message}); try again later"
                    )))
                } else {
                    Ok(connection)
                }
            }
        }
    }

    /// Sends a request to the provider through a connection: the URL is
    /// checked against the connector's allowed origins, the connection's
    /// credential (access token or API key) injected, the request audited.
    pub async fn proxy(
        &self,
        at: ConnectionRef<'_>,
        request: ProxyRequest,
    ) -> Result<ProxyResponse, FlowError> {
        let fetched = self.connections.get_with_secrets(at).await?;
        self.proxy_fetched(at, request, fetched).await
    }

    /// [`Flows::proxy`] with the connection and its secrets already read (by
    /// `ConnectionStore::get_with_secrets` for `at`).
    pub async fn proxy_fetched(
        &self,
        at: ConnectionRef<'_>,
        request: ProxyRequest,
        fetched: Option<(Connection, crate::store::ConnectionSecrets)>,
    ) -> Result<ProxyResponse, FlowError> {
        let method = match request.method.to_ascii_uppercase().as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            other => {
                return Err(FlowError::field_error(
                    "method",
                    format!("`{other}` is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
                ));
            }
        };
        let body = match (request.body, request.body_base64) {
            (Some(_), Some(_)) => {
                return Err(FlowError::field_error(
                    "bodyBase64",
                    "give `body` or `bodyBase64`, not both",
                ));
            }
            (Some(text), None) => Some(text.into_bytes()),
            (None, Some(encoded)) => Some(
                base64::engine::general_purpose::STANDARD
                    .decode(encoded)
                    .map_err(|e| {
                        FlowError::field_error("bodyBase64", format!("not base64: {e}"))
                    })?,
            ),
            (None, None) => None,
        };
        // One query on the common path (token not due); a refresh re-reads.
        let (connection, secrets) =
            fetched.ok_or_else(|| FlowError::UnknownConnection(at.id.to_string()))?;
        let connector = self.connector(&connection.connector_id)?;
        let margin = connector.info.manifest.refresh_margin_seconds as i64;
        let (connection, secrets) = if connection.status == ConnectionStatus::Active
            && (connection.auth_type != AuthKind::OAuth.to_string() || !due(&connection, margin))
        {
            (connection, secrets)
        } else {
            let connection = self.fresh_connection(at).await?;
            let secrets = self.connections.secrets(&connection).await?;
            (connection, secrets)
        };
        let ctx = self.context_from(&connector, &connection, secrets).await?;
        let credential = if connection.auth_type == AuthKind::OAuth.to_string() {
            Credential::AccessToken
        } else {
            Credential::ApiKey
        };
        let mut http = connector.prepared.host_http(&ctx, PROXY_TIMEOUT);
        let response = http
            .send_audited(Request {
                method,
                url: request.url,
                headers: request.headers,
                body,
                credential: Some(credential),
            })
            .await
            .map_err(|error| match error {
                connector_sandbox::wit::http::HttpError::Timeout
                | connector_sandbox::wit::http::HttpError::Connection(_)
                | connector_sandbox::wit::http::HttpError::ResponseTooLarge(
                    _,
                ) => FlowError::Provider(format!("{error:?}")),
                other => FlowError::field_error("url", format!("refused: {other:?}")),
            })?;
        if response.status == 401 {
            // The provider no longer accepts the credential.
            tracing::info!(connection = %at.id, "the provider answered 401 through the proxy");
        }
        let (body, body_base64) = match String::from_utf8(response.body) {
            Ok(text) => (Some(text), None),
            Err(bytes) => (
                None,
                Some(base64::engine::general_purpose::STANDARD.encode(bytes.into_bytes())),
            ),
        };
        Ok(ProxyResponse {
            status: response.status,
            headers: response.headers,
            body,
            body_base64,
        })
    }

    /// The connection's access token, refreshed first when due (for trusted
    /// service keys that call the provider themselves).
    pub async fn raw_credentials(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<RawCredentials, FlowError> {
        let connection = self.fresh_connection(at).await?;
        if connection.auth_type != AuthKind::OAuth.to_string() {
            return Err(FlowError::WrongAuthType {
                connector: connection.connector_id.clone(),
                actual: connection.auth_type.clone(),
                requested: "oauth",
            });
        }
        let secrets = self.connections.secrets(&connection).await?;
        let access_token = secrets.access_token.ok_or_else(|| {
            FlowError::NotUsable(format!("connection `{}` has no access token", at.id))
        })?;
        if connection.expires_at.is_some_and(|t| t <= unix_seconds()) {
            return Err(FlowError::NotUsable(format!(
                "connection `{}`: the access token expired",
                at.id
            )));
        }
        Ok(RawCredentials {
            token_type: "Bearer",
            access_token,
            expires_at: connection.expires_at,
        })
    }

    /// Publishes an event; a failure to record it is logged, never fatal.
    pub(crate) async fn emit(&self, kind: EventKind, connection: &Connection, detail: &str) {
        if let Err(error) = self.events.emit(kind, connection, Some(detail)).await {
            tracing::error!(%error, connection = %connection.id, "could not record an event");
        }
    }
}

fn storage(error: sqlx::Error) -> FlowError {
    FlowError::Storage(error.into())
}
