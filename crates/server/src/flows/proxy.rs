//! Using a connection from the platform: the authenticated proxy (a request
//! for the provider, sent with the connection's credential injected by the
//! host, through the same checked and audited path as a guest's request) and
//! raw credentials for trusted services. Either refreshes the token first
//! when it is due.
//!
//! **Refresh on 401.** When the provider answers 401 to an OAuth connection's
//! token the host believed valid, the host refreshes it once — shared with
//! every caller that saw the same refusal (`FreshConnections::refreshed_since`)
//! — and sends an idempotent request (GET, HEAD, OPTIONS, PUT, DELETE) once
//! more with the new token. Other requests get the 401; the next one uses the
//! new token. A refresh token the provider refuses ends it: `401
//! invalid_credentials`, the connection `needs_reauth`.
//!
//! **Retries on 429 and 503.** Idempotent requests the provider answers with
//! 429 or 503 are sent again, boundedly, honouring `Retry-After`
//! ([`super::proxy_retry`]).

use std::time::Duration;

use connector_abi::manifest::AuthKind;
use connector_sandbox::wit::http::{Credential, HttpError, Method, Request};
use secrecy::SecretString;

use super::FlowError;
use super::call_context::ConnectionCalls;
use super::common::Connectors;
use super::fresh::{FreshConnections, due, renews_by_grant};
use super::proxy_retry::RetryPolicy;
use crate::store::{
    Connection, ConnectionRef, ConnectionSecrets, ConnectionStatus, ConnectionStore, unix_seconds,
};

/// Time limit of a proxied request.
pub(super) const PROXY_TIMEOUT: Duration = Duration::from_secs(30);

/// A request for the provider, sent through a connection.
#[derive(Debug, Clone)]
pub struct ProxyRequest {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE` or `OPTIONS`.
    pub method: String,
    /// Absolute URL; its origin must be in the connector's allowed hosts.
    pub url: String,
    /// Request headers (credential headers are refused: the host injects the
    /// connection's credential).
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
}

/// The provider's answer.
#[derive(Debug)]
pub struct ProxyResponse {
    /// The provider's status.
    pub status: u16,
    /// The provider's headers (without `set-cookie`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

/// A connection's raw access token (trusted services only). `Debug` never
/// shows the token.
pub struct RawCredentials {
    /// `Bearer`.
    pub token_type: &'static str,
    /// The access token.
    pub access_token: SecretString,
    /// Its expiry, Unix seconds.
    pub expires_at: Option<i64>,
}

impl std::fmt::Debug for RawCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawCredentials")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// The proxy and raw credentials.
#[derive(Clone)]
pub(crate) struct ProxyFlow {
    connectors: Connectors,
    pub(super) connections: ConnectionStore,
    pub(super) calls: ConnectionCalls,
    pub(super) fresh: FreshConnections,
}

/// A connection ready for a proxied request.
pub(super) struct Usable {
    /// Its connector.
    pub(super) connector: std::sync::Arc<crate::registry::LoadedConnector>,
    /// The connection (token fresh).
    pub(super) connection: Connection,
    /// Its secrets.
    pub(super) secrets: ConnectionSecrets,
    /// When the token was read (Unix ms): a refresh committed after it makes
    /// the token stale.
    pub(super) read_at: i64,
}

impl ProxyFlow {
    /// Requests through `connections`.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        calls: ConnectionCalls,
        fresh: FreshConnections,
    ) -> Self {
        Self {
            connectors,
            connections,
            calls,
            fresh,
        }
    }

    /// Sends a request to the provider through a connection: the URL is
    /// checked against the connector's allowed origins, the connection's
    /// credential (access token or API key) injected, the request audited.
    pub(crate) async fn proxy(
        &self,
        at: ConnectionRef<'_>,
        request: ProxyRequest,
    ) -> Result<ProxyResponse, FlowError> {
        let fetched = self.connections.get_with_secrets(at).await?;
        self.proxy_fetched(at, request, fetched).await
    }

    /// [`ProxyFlow::proxy`] with the connection and its secrets already read
    /// (by `ConnectionStore::get_with_secrets` for `at`).
    pub(crate) async fn proxy_fetched(
        &self,
        at: ConnectionRef<'_>,
        request: ProxyRequest,
        fetched: Option<(Connection, ConnectionSecrets)>,
    ) -> Result<ProxyResponse, FlowError> {
        let method = method(&request.method)?;
        let Usable {
            connector,
            connection,
            secrets,
            read_at,
        } = self.usable(at, fetched).await?;
        let oauth = connection.auth_type == AuthKind::OAuth.to_string();
        let retry = (oauth && idempotent(method)).then(|| request.clone());
        let response = self
            .send_retrying(&connector, &connection, secrets, method, request)
            .await?;
        if response.status != 401 || !oauth {
            return Ok(response);
        }
        let Some(refreshed) = self
            .refreshed_after_401(at, &connector, &connection, read_at, "the proxy")
            .await?
        else {
            return Ok(response);
        };
        let Some(request) = retry else {
            return Ok(response);
        };
        let secrets = self.connections.secrets(&refreshed).await?;
        self.send_retrying(&connector, &refreshed, secrets, method, request)
            .await
    }

    /// The connection of `at` (read with its secrets just before, `fetched`)
    /// ready for a request: its connector, and an OAuth token refreshed first
    /// when it is due. Shared by the JSON proxy and the pass-through proxy.
    pub(super) async fn usable(
        &self,
        at: ConnectionRef<'_>,
        fetched: Option<(Connection, ConnectionSecrets)>,
    ) -> Result<Usable, FlowError> {
        // When the token was read (just before this call): a refresh
        // committed after it makes that token stale.
        let mut read_at = crate::store::unix_millis();
        // One query on the common path (token not due); a refresh re-reads.
        let (connection, secrets) =
            fetched.ok_or_else(|| FlowError::UnknownConnection(at.id.to_string()))?;
        let connector = self.connectors.get(&connection.connector_id)?;
        let margin = connector.info.manifest.refresh_margin_seconds as i64;
        let (connection, secrets) = if connection.status == ConnectionStatus::Active
            && (connection.auth_type != AuthKind::OAuth.to_string() || !due(&connection, margin))
        {
            (connection, secrets)
        } else {
            let connection = self.fresh.get(at).await?;
            read_at = crate::store::unix_millis();
            let secrets = self.connections.secrets(&connection).await?;
            (connection, secrets)
        };
        Ok(Usable {
            connector,
            connection,
            secrets,
            read_at,
        })
    }

    /// After the provider answered 401 to an OAuth connection's token the
    /// host believed valid (read at `read_at`, through `route`): the
    /// connection refreshed since then — by this caller or another that saw
    /// the same refusal, one refresh for all of them — or `None` when it
    /// cannot be renewed or the refresh failed for a passing reason (the
    /// caller then returns the provider's answer). A refused refresh token is
    /// `InvalidCredentials` (the connection now needs re-auth).
    pub(super) async fn refreshed_after_401(
        &self,
        at: ConnectionRef<'_>,
        connector: &crate::registry::LoadedConnector,
        connection: &Connection,
        read_at: i64,
        route: &str,
    ) -> Result<Option<Connection>, FlowError> {
        if !connection.has_refresh_token && !renews_by_grant(connector) {
            return Ok(None);
        }
        tracing::info!(connection = %at.id, "the provider answered 401 through {route}: refreshing");
        match self.fresh.refreshed_since(at, read_at).await {
            Ok(connection) => Ok(Some(connection)),
            Err(error @ FlowError::InvalidCredentials(_)) => Err(error),
            Err(error) => {
                tracing::warn!(connection = %at.id, %error, "no refresh after a 401: the provider's answer is returned");
                Ok(None)
            }
        }
    }

    /// [`ProxyFlow::send`], and for an idempotent request the bounded
    /// retries the provider asks for with 429 or 503.
    async fn send_retrying(
        &self,
        connector: &crate::registry::LoadedConnector,
        connection: &Connection,
        secrets: ConnectionSecrets,
        method: Method,
        request: ProxyRequest,
    ) -> Result<ProxyResponse, FlowError> {
        let mut policy = RetryPolicy::new(std::time::Instant::now() + PROXY_TIMEOUT);
        let again = idempotent(method).then(|| (request.clone(), secrets.clone()));
        let mut response = self
            .send(connector, connection, secrets, method, request)
            .await?;
        let Some((request, secrets)) = again else {
            return Ok(response);
        };
        while let Some(wait) = policy.delay(response.status, &response.headers) {
            tracing::info!(connection = %connection.id, status = response.status, ?wait, "the provider asked to retry");
            tokio::time::sleep(wait).await;
            response = self
                .send(
                    connector,
                    connection,
                    secrets.clone(),
                    method,
                    request.clone(),
                )
                .await?;
        }
        Ok(response)
    }

    /// Sends `request` with `connection`'s credential injected, through the
    /// connector's checked and audited outbound path.
    async fn send(
        &self,
        connector: &crate::registry::LoadedConnector,
        connection: &Connection,
        secrets: ConnectionSecrets,
        method: Method,
        request: ProxyRequest,
    ) -> Result<ProxyResponse, FlowError> {
        let ctx = self
            .calls
            .context_with(connector, connection, secrets)
            .await?;
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
                body: request.body,
                credential: Some(credential),
            })
            .await
            .map_err(|error| match error {
                HttpError::Timeout | HttpError::Connection(_) | HttpError::ResponseTooLarge(_) => {
                    FlowError::Provider(format!("{error:?}"))
                }
                other => FlowError::field_error("url", format!("refused: {other:?}")),
            })?;
        Ok(ProxyResponse {
            status: response.status,
            headers: response.headers,
            body: response.body,
        })
    }

    /// The connection's access token, refreshed first when due (for trusted
    /// service keys that call the provider themselves).
    pub(crate) async fn raw_credentials(
        &self,
        at: ConnectionRef<'_>,
    ) -> Result<RawCredentials, FlowError> {
        let connection = self.fresh.get(at).await?;
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
}

/// Methods a request may be sent again with (RFC 9110 §9.2.2).
fn idempotent(method: Method) -> bool {
    matches!(
        method,
        Method::Get | Method::Head | Method::Options | Method::Put | Method::Delete
    )
}

/// The HTTP method of a proxied request.
fn method(name: &str) -> Result<Method, FlowError> {
    Ok(match name.to_ascii_uppercase().as_str() {
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
    })
}
