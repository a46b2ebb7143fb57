//! OAuth 2.0 token refresh (RFC 6749 §6) for a stored connection.
//!
//! The host does the refresh itself, with the `oauth2` crate, through the
//! checked outbound client (the token URL must pass the connector's policy,
//! no redirects, audited like the code exchange). The connector only
//! *declares* changes through its optional `refresh` hook (App Connect
//! `checkAndRefreshAccessToken`, Membrane `refreshCredentials`): another token
//! URL, extra form parameters, where the client authenticates, and JSON
//! pointers of the token-response fields (a response that nests its tokens is
//! read with a plain form POST instead of the crate's typed parser).
//!
//! Rules (design §2, RFC 9700): a response without a refresh token keeps the
//! stored one; `invalid_grant` means the grant is gone, so the connection is
//! marked `needs_reauth` and the caller gets [`RefreshError::InvalidGrant`].
//! Tokens never appear in errors or logs.
//!
//! This function is not single-flight by itself: two concurrent calls for one
//! connection would spend the same refresh token twice. The API and the
//! background refresher call it through `Flows::fresh_connection`
//! (`lifecycle.rs`), which serialises refreshes per connection across callers
//! and replicas; the authoring `oauth2` command calls it directly (one process,
//! one caller).

use oauth2::basic::{BasicErrorResponse, BasicErrorResponseType};
use oauth2::{
    AuthType, ClientId, ClientSecret, RefreshToken, RequestTokenError, TokenResponse, TokenUrl,
};
use secrecy::{ExposeSecret, SecretString};

use super::{FlowError, Flows};
use connector_abi::hook::Hook;
use connector_abi::manifest::{AuthKind, ClientAuthLocation as ManifestAuthLocation};
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::ConnectionInfo;
use crate::store::{Connection, ConnectionRef, ConnectionStatus, unix_seconds};

/// Time limit of the refresh request (the same as the code exchange's).
const REFRESH_TIMEOUT: std::time::Duration = super::oauth::HOST_REQUEST_TIMEOUT;

/// A successful refresh.
#[derive(Debug)]
pub struct Refreshed {
    /// The connection after the refresh (active, new expiry; no secrets).
    pub connection: Connection,
    /// The provider sent a new refresh token (rotation); otherwise the old one
    /// was kept.
    pub refresh_token_rotated: bool,
    /// The token URL used (after the `refresh` hook's override), for display.
    pub token_url: String,
}

/// Why a refresh did not happen.
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// The provider answered `invalid_grant`: the refresh token is expired,
    /// revoked or spent. The connection is now `needs_reauth`; the user must
    /// log in again.
    #[error("the provider refused the refresh token (invalid_grant{0}): log in again")]
    InvalidGrant(String),
    /// The connection has no refresh token (the provider issued none, or it
    /// was logged out).
    #[error("connection `{0}` has no refresh token: log in again")]
    NoRefreshToken(String),
    /// Anything else: unknown connection, connector errors, provider errors,
    /// storage.
    #[error(transparent)]
    Flow(#[from] FlowError),
}

impl From<crate::store::ConnectionStoreError> for RefreshError {
    fn from(error: crate::store::ConnectionStoreError) -> Self {
        RefreshError::Flow(FlowError::Storage(error))
    }
}

impl Flows {
    /// Refreshes the access token of connection `id` of `account_id` with its
    /// stored refresh token, and stores the result encrypted.
    ///
    /// Steps: `oauth-info` (client id, secret reference, token URL) → the
    /// `refresh` hook if the connector implements it (token URL, extra
    /// params, client auth location) → the URL checked against the
    /// connector's outbound policy → `grant_type=refresh_token` through the
    /// host's checked client → stored with [`ConnectionStore::update_tokens`]
    /// (the old refresh token is kept when the response has none).
    ///
    /// [`ConnectionStore::update_tokens`]: crate::store::ConnectionStore::update_tokens
    pub async fn refresh_tokens(&self, at: ConnectionRef<'_>) -> Result<Refreshed, RefreshError> {
        self.refresh_tokens_as(at, None).await
    }

    /// [`Flows::refresh_tokens`] by the holder `lease_owner` of the
    /// connection's refresh lease: the new tokens are saved only while it
    /// still holds the lease.
    pub(crate) async fn refresh_tokens_as(
        &self,
        at: ConnectionRef<'_>,
        lease_owner: Option<&str>,
    ) -> Result<Refreshed, RefreshError> {
        let (account_id, id) = (at.account_id, at.id);
        let connection = self.connection(at).await?;
        if connection.status == ConnectionStatus::Revoked {
            return Err(FlowError::NotUsable(format!("connection `{id}` is logged out")).into());
        }
        let connector = self.connector(&connection.connector_id)?;
        Self::require(&connector, AuthKind::OAuth, "oauth")?;
        let manifest = connector
            .info
            .manifest
            .auth
            .oauth
            .clone()
            .expect("an oauth manifest has its block");
        let secrets = self.connections.secrets(&connection).await?;
        let refresh_token = secrets
            .refresh_token
            .ok_or_else(|| RefreshError::NoRefreshToken(id.to_string()))?;

        let ctx = CallContext {
            account_id: Some(account_id.to_string()),
            ..CallContext::default()
        };
        // The same client as the login: `oauth-info`, with the account's
        // admin-managed application when the connector uses one.
        let managed = self.connection_app(&connector, account_id).await?;
        let start = super::OAuthStart {
            account_id: account_id.to_string(),
            user_id: connection.user_id.clone(),
            hostname: connection.hostname.clone(),
            ..super::OAuthStart::default()
        };
        let info = self
            .oauth_info(&connector, &start, managed.as_ref())
            .await?;
        let overrides = if connector.prepared.implements(Hook::Refresh) {
            let info = ConnectionInfo {
                hostname: connection.hostname.clone(),
                platform_user_id: connection.platform_user_id.clone(),
                additional_info: connection.additional_info.clone(),
            };
            Some(
                connector
                    .prepared
                    .refresh(&ctx, info)
                    .await
                    .result
                    .map_err(FlowError::from)?,
            )
        } else {
            None
        };
        let token_url = overrides
            .as_ref()
            .and_then(|o| o.token_url.clone())
            .unwrap_or_else(|| info.access_token_uri.clone());
        let outbound = self.registry.runtime().outbound().clone();
        let checked = super::oauth::checked_token_url(&outbound, &connector, &token_url)?;
        let audited = checked.clone();
        let secret = self.client_secret(&connector, &info, managed.as_ref())?;
        let location = super::oauth::client_auth_location(
            overrides.as_ref().and_then(|o| o.client_auth_location),
            &manifest,
        );

        let paths = ResponsePaths::from(overrides.as_ref());
        let started = std::time::Instant::now();
        let request = async {
            if paths.is_standard() {
                standard_refresh(
                    outbound.client(),
                    checked,
                    &info.client_id,
                    secret.as_ref(),
                    location,
                    &refresh_token,
                    overrides.iter().flat_map(|o| o.extra_params.iter()),
                )
                .await
            } else {
                custom_refresh(
                    outbound.client(),
                    checked,
                    &info.client_id,
                    secret.as_ref(),
                    location,
                    &refresh_token,
                    overrides.iter().flat_map(|o| o.extra_params.iter()),
                    &paths,
                )
                .await
            }
        };
        let response = tokio::time::timeout(REFRESH_TIMEOUT, request)
            .await
            .map_err(|_| {
                RefreshError::Flow(FlowError::Provider(
                    "the token endpoint did not answer in time".into(),
                ))
            })
            .and_then(|result| result);
        outbound.audit_host_request(
            connector.prepared.connector(),
            Some(account_id),
            &audited,
            "client-credentials (token refresh)",
            started,
            response.as_ref().map(|_| None).map_err(|e| e.to_string()),
        );
        let tokens = match response {
            Ok(tokens) => tokens,
            Err(RefreshError::InvalidGrant(detail)) => {
                self.connections
                    .set_status(at, ConnectionStatus::NeedsReauth)
                    .await?;
                return Err(RefreshError::InvalidGrant(detail));
            }
            Err(other) => return Err(other),
        };
        let (access, rotated, expires_at) = (
            tokens.access_token,
            tokens.refresh_token,
            tokens.expires_in.map(|secs| unix_seconds() + secs as i64),
        );
        let stored = self
            .connections
            .update_tokens(
                &connection,
                &access,
                rotated.as_ref(),
                expires_at,
                lease_owner,
            )
            .await?;
        if !stored {
            return Err(FlowError::NotUsable(format!(
                "connection `{id}` was logged out, marked for re-auth, or refreshed by another holder during the refresh"
            ))
            .into());
        }
        let connection = self.connection(at).await?;
        Ok(Refreshed {
            connection,
            refresh_token_rotated: rotated.is_some(),
            token_url,
        })
    }
}

/// The tokens of a refresh answer.
struct NewTokens {
    access_token: SecretString,
    refresh_token: Option<SecretString>,
    expires_in: Option<u64>,
}

/// JSON pointers of the token-response fields (the `refresh` hook may move
/// them; RFC 6749 names by default).
struct ResponsePaths {
    access_token: String,
    refresh_token: String,
    expires_in: String,
}

impl ResponsePaths {
    fn from(overrides: Option<&connector_sandbox::wit::hooks::RefreshOverride>) -> Self {
        let pick = |value: Option<&String>, default: &str| {
            value.cloned().unwrap_or_else(|| default.to_string())
        };
        Self {
            access_token: pick(
                overrides.and_then(|o| o.access_token_path.as_ref()),
                "/access_token",
            ),
            refresh_token: pick(
                overrides.and_then(|o| o.refresh_token_path.as_ref()),
                "/refresh_token",
            ),
            expires_in: pick(
                overrides.and_then(|o| o.expires_in_path.as_ref()),
                "/expires_in",
            ),
        }
    }

    fn is_standard(&self) -> bool {
        self.access_token == "/access_token"
            && self.refresh_token == "/refresh_token"
            && self.expires_in == "/expires_in"
    }
}

/// The standard refresh (RFC 6749 §6) with the `oauth2` crate.
#[allow(clippy::too_many_arguments)]
async fn standard_refresh<'a>(
    http: &reqwest::Client,
    token_url: url::Url,
    client_id: &str,
    secret: Option<&SecretString>,
    location: ManifestAuthLocation,
    refresh_token: &SecretString,
    extra: impl Iterator<Item = &'a (String, String)>,
) -> Result<NewTokens, RefreshError> {
    let mut client: super::oauth::OAuthClient =
        oauth2::Client::new(ClientId::new(client_id.to_string()))
            .set_token_uri(TokenUrl::from_url(token_url))
            .set_auth_type(if location == ManifestAuthLocation::Body {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            });
    if let Some(secret) = secret {
        client = client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
    }
    let old = RefreshToken::new(refresh_token.expose_secret().to_string());
    let mut request = client.exchange_refresh_token(&old);
    // `both`: the Basic header (above) and the body, as for the code exchange.
    if location == ManifestAuthLocation::Both
        && let Some(secret) = secret
    {
        request = request.add_extra_param("client_id", client_id.to_string());
        request = request.add_extra_param("client_secret", secret.expose_secret().to_string());
    }
    for (name, value) in extra {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    let tokens = request.request_async(http).await.map_err(refresh_error)?;
    Ok(NewTokens {
        access_token: SecretString::from(tokens.access_token().secret().clone()),
        refresh_token: tokens
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone())),
        expires_in: tokens.expires_in().map(|d| d.as_secs()),
    })
}

/// A refresh whose answer keeps its tokens elsewhere than RFC 6749 says (the
/// `refresh` hook's JSON pointers): the same form request, read by pointer.
#[allow(clippy::too_many_arguments)]
async fn custom_refresh<'a>(
    http: &reqwest::Client,
    token_url: url::Url,
    client_id: &str,
    secret: Option<&SecretString>,
    location: ManifestAuthLocation,
    refresh_token: &SecretString,
    extra: impl Iterator<Item = &'a (String, String)>,
    paths: &ResponsePaths,
) -> Result<NewTokens, RefreshError> {
    let mut form = vec![
        ("grant_type".to_string(), "refresh_token".to_string()),
        (
            "refresh_token".to_string(),
            refresh_token.expose_secret().to_string(),
        ),
    ];
    let mut request = http
        .post(token_url)
        .header(reqwest::header::ACCEPT, "application/json");
    if location != ManifestAuthLocation::Body {
        request = request.basic_auth(client_id, secret.map(|s| s.expose_secret().to_string()));
    }
    if location != ManifestAuthLocation::Header {
        form.push(("client_id".into(), client_id.to_string()));
        if let Some(secret) = secret {
            form.push(("client_secret".into(), secret.expose_secret().to_string()));
        }
    }
    form.extend(extra.cloned());
    let response = request.form(&form).send().await.map_err(|e| {
        FlowError::Provider(format!("token endpoint unreachable: {}", e.without_url()))
    })?;
    let status = response.status();
    let not_json = || {
        FlowError::Provider(format!(
            "the token endpoint answered {status} with something that is not JSON"
        ))
    };
    let bytes = response.bytes().await.map_err(|_| not_json())?;
    let body: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| not_json())?;
    if !status.is_success() {
        let code = body["error"].as_str().unwrap_or("");
        let description = body["error_description"]
            .as_str()
            .map(|d| format!(": {d}"))
            .unwrap_or_default();
        return Err(if code == "invalid_grant" {
            RefreshError::InvalidGrant(description)
        } else if status.is_server_error() {
            FlowError::Provider(format!("the token endpoint answered {status}")).into()
        } else {
            FlowError::TokenExchange(format!("{code}{description}")).into()
        });
    }
    let text = |pointer: &str| {
        body.pointer(pointer)
            .and_then(|v| v.as_str())
            .map(str::to_string)
    };
    let access_token = text(&paths.access_token).ok_or_else(|| {
        FlowError::Provider(format!(
            "the token response has no access token at `{}`",
            paths.access_token
        ))
    })?;
    let expires_in = body.pointer(&paths.expires_in).and_then(|v| {
        v.as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
    });
    Ok(NewTokens {
        access_token: SecretString::from(access_token),
        refresh_token: text(&paths.refresh_token).map(SecretString::from),
        expires_in,
    })
}

/// Maps the `oauth2` crate's error, keeping `invalid_grant` apart.
fn refresh_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, BasicErrorResponse>,
) -> RefreshError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let description = response
                .error_description()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            if *response.error() == BasicErrorResponseType::InvalidGrant {
                RefreshError::InvalidGrant(description)
            } else {
                FlowError::TokenExchange(format!("{}{description}", response.error().as_ref()))
                    .into()
            }
        }
        RequestTokenError::Request(error) => {
            let mut message = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            FlowError::Provider(format!("token endpoint unreachable: {message}")).into()
        }
        RequestTokenError::Parse(_, _) => FlowError::Provider(
            "the token endpoint answered something that is not a token response".into(),
        )
        .into(),
        RequestTokenError::Other(message) => {
            FlowError::Provider(format!("token endpoint: {message}")).into()
        }
    }
}
