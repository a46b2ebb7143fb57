//! OAuth 2.0 authorization code (App Connect `auth.oauth` + `getOauthInfo`,
//! Membrane options): build the authorize URL with a server-side single-use
//! state and PKCE S256; at the callback check state and `iss`, exchange the
//! code with the `oauth2` crate through the host's checked client (no
//! redirects), keep the tokens on the host, call `user-info`, save.

use std::sync::Arc;

use base64::Engine as _;
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthType, AuthorizationCode, ClientId, ClientSecret, EndpointNotSet, EndpointSet,
    ExtraTokenFields, PkceCodeVerifier, RedirectUrl, RequestTokenError, StandardRevocableToken,
    StandardTokenResponse, TokenResponse, TokenUrl,
};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{FlowError, Flows, identity_fields, merge};
use connector_sandbox::capabilities::http::CallCredentials;
use connector_abi::hook::Hook;
use connector_abi::manifest::{AuthKind, ClientAuthLocation as ManifestAuthLocation, OAuthBlock};
use crate::registry::LoadedConnector;
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::{
    ClientAuthLocation, ClientSecretRef, ManagedOauthApp, OauthInfoInput, OauthValues,
    TokenResponseInput, TokenResponseView,
};
use crate::store::unix_seconds;
use crate::store::{
    Connection, ConnectionSecrets, ManagedOAuthApp, NewConnection, PendingAuthorization, StateError,
};

/// Time limit of the requests the host makes itself (code exchange, revocation).
pub(super) const HOST_REQUEST_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Token-response fields other than the standard ones (e.g. `instance_url`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct ExtraFields {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
}

impl ExtraTokenFields for ExtraFields {}

pub(super) type Tokens = StandardTokenResponse<ExtraFields, BasicTokenType>;
/// The `oauth2` client of the host's own token requests (code exchange and
/// refresh): token endpoint set, nothing else.
pub(super) type OAuthClient = oauth2::Client<
    BasicErrorResponse,
    Tokens,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

/// Start of an OAuth login: the `getOauthInfo` inputs plus who is connecting.
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct OAuthStart {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// CRM hostname (regional connectors).
    #[serde(default)]
    pub hostname: Option<String>,
    /// Token URL saved with the user.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Proxy connector id.
    #[serde(default)]
    pub proxy_id: Option<String>,
    /// Proxy configuration (any JSON).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub proxy_config: Option<serde_json::Value>,
    /// The user's email.
    #[serde(default)]
    pub user_email: Option<String>,
    /// Started from MCP.
    #[serde(default)]
    pub is_from_mcp: bool,
}

/// Where to send the user.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthStarted {
    /// The provider's authorize URL with every parameter.
    pub authorize_url: String,
    /// The state (also in the URL).
    pub state: String,
    /// Unix seconds after which the callback is refused.
    pub expires_at: i64,
}

/// The provider's redirect back to us.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct OAuthCallback {
    /// Authorization code.
    pub code: Option<String>,
    /// The state we issued.
    pub state: Option<String>,
    /// RFC 9207 issuer.
    pub iss: Option<String>,
    /// Provider error code, when the user or provider refused.
    pub error: Option<String>,
    /// Provider error text.
    pub error_description: Option<String>,
    /// Any other query parameters (passed to `credentials-from-token-response`).
    #[serde(flatten)]
    pub other: std::collections::BTreeMap<String, String>,
}

/// A completed OAuth login.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OAuthConnected {
    /// The saved connection (no secrets).
    pub connection: Connection,
    /// The manifest's `customState`, kept from the start.
    pub custom_state: Option<String>,
}

fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a pending authorization keeps to call `oauth-info` again at the
/// callback: the start request and the managed application version it used.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredInputs {
    start: OAuthStart,
    #[serde(default)]
    managed_version: Option<i64>,
}

fn inputs(start: &OAuthStart, managed: Option<&ManagedOAuthApp>) -> OauthInfoInput {
    let app = managed.map(|m| &m.values);
    OauthInfoInput {
        token_url: start
            .token_url
            .clone()
            .or_else(|| app.and_then(|a| a.token_url.clone())),
        hostname: start
            .hostname
            .clone()
            .or_else(|| app.and_then(|a| a.hostname.clone())),
        account_id: Some(start.account_id.clone()),
        proxy_id: start.proxy_id.clone(),
        proxy_config: start.proxy_config.as_ref().map(|v| v.to_string()),
        user_email: start.user_email.clone(),
        is_from_mcp: start.is_from_mcp,
        managed: app.map(|a| ManagedOauthApp {
            client_id: a.client_id.clone(),
            token_url: a.token_url.clone(),
            authorization_url: a.authorization_url.clone(),
            redirect_uri: a.redirect_uri.clone(),
            hostname: a.hostname.clone(),
        }),
    }
}

/// The admin's values win over what `oauth-info` returned.
fn apply_managed(info: &mut OauthValues, managed: Option<&ManagedOAuthApp>) {
    let Some(app) = managed.map(|m| &m.values) else {
        return;
    };
    if let Some(v) = &app.client_id {
        info.client_id = v.clone();
    }
    if let Some(v) = &app.token_url {
        info.access_token_uri = v.clone();
    }
    if let Some(v) = &app.authorization_url {
        info.authorization_uri = Some(v.clone());
    }
    if let Some(v) = &app.redirect_uri {
        info.redirect_uri = v.clone();
    }
    if let Some(v) = &app.hostname {
        info.hostname = Some(v.clone());
    }
}

impl Flows {
    /// A loaded connector that uses OAuth, with its manifest's OAuth block.
    fn oauth_connector(&self, id: &str) -> Result<(Arc<LoadedConnector>, OAuthBlock), FlowError> {
        let connector = self.connector(id)?;
        Self::require(&connector, AuthKind::OAuth, "oauth")?;
        let block = connector
            .info
            .manifest
            .auth
            .oauth
            .clone()
            .expect("an oauth manifest has its block");
        Ok((connector, block))
    }

    /// `oauth-info` with the account's managed application (if any) passed
    /// in and applied over the answer.
    pub(super) async fn oauth_info(
        &self,
        connector: &LoadedConnector,
        start: &OAuthStart,
        managed: Option<&ManagedOAuthApp>,
    ) -> Result<OauthValues, FlowError> {
        let ctx = CallContext {
            account_id: Some(start.account_id.clone()),
            ..CallContext::default()
        };
        let mut info = connector
            .prepared
            .oauth_info(&ctx, inputs(start, managed))
            .await
            .result?;
        if let Some(message) = info.fail_message.clone() {
            return Err(FlowError::OAuthFailed(message));
        }
        apply_managed(&mut info, managed);
        Ok(info)
    }

    /// The client secret of a login: the managed application's when there is
    /// one, else what `oauth-info` referred to.
    pub(super) fn client_secret(
        &self,
        connector: &LoadedConnector,
        info: &OauthValues,
        managed: Option<&ManagedOAuthApp>,
    ) -> Result<Option<SecretString>, FlowError> {
        if let Some(app) = managed {
            return Ok(app.values.client_secret.clone());
        }
        let outbound = self.registry.runtime().outbound();
        match &info.client_secret {
            ClientSecretRef::HostSecret(name) => outbound
                .host_secret(connector.prepared.policy(), &connector.info.manifest.id, name)
                .map(Some)
                .ok_or_else(|| {
                    FlowError::Connector(format!(
                        "host secret `{name}` is not configured for this connector"
                    ))
                }),
            ClientSecretRef::Managed => Err(FlowError::ManagedCredentialsMissing(
                "the connector asks for an admin-managed client secret, but it does not declare `auth.oauth.adminManaged`".into(),
            )),
            ClientSecretRef::None => Ok(None),
        }
    }

    /// Builds the authorize URL and records the pending authorization.
    pub async fn oauth_start(
        &self,
        connector_id: &str,
        start: OAuthStart,
    ) -> Result<OAuthStarted, FlowError> {
        let (connector, manifest) = self.oauth_connector(connector_id)?;
        let managed = self.login_app(&connector, &start.account_id).await?;
        let info = self
            .oauth_info(&connector, &start, managed.as_ref())
            .await?;
        let base = info
            .authorization_uri
            .clone()
            .unwrap_or_else(|| manifest.auth_url.clone());
        let mut url = url::Url::parse(&base).map_err(|e| {
            FlowError::Connector(format!("authorization URI `{base}` is invalid: {e}"))
        })?;
        let state = random_token();
        let verifier = (!manifest.skip_pkce).then(random_token);
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("response_type", "code");
            query.append_pair("client_id", &info.client_id);
            query.append_pair("redirect_uri", &info.redirect_uri);
            match (&info.scopes, &manifest.scope) {
                (Some(scopes), _) => {
                    query.append_pair("scope", &scopes.join(" "));
                }
                // App Connect style: `scope=contacts.read contacts.write` or `scopes=a,b`.
                (None, Some(fragment)) => match fragment.split_once('=') {
                    Some((name, value)) => {
                        query.append_pair(name, value);
                    }
                    None => {
                        query.append_pair("scope", fragment);
                    }
                },
                (None, None) => {}
            }
            query.append_pair("state", &state);
            if let Some(verifier) = &verifier {
                let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
                    .encode(Sha256::digest(verifier.as_bytes()));
                query.append_pair("code_challenge", &challenge);
                query.append_pair("code_challenge_method", "S256");
            }
            for (name, value) in &manifest.extra {
                query.append_pair(name, value);
            }
        }
        let pending = PendingAuthorization {
            connector_id: connector_id.to_string(),
            account_id: start.account_id.clone(),
            user_id: start.user_id.clone(),
            redirect_uri: info.redirect_uri.clone(),
            code_verifier: verifier.map(SecretString::from),
            authorize_url: base,
            inputs: serde_json::to_string(&StoredInputs {
                start,
                managed_version: managed.as_ref().map(|m| m.version),
            })
            .expect("serialisable"),
            custom_state: manifest.custom_state.clone(),
        };
        let expires_at = self
            .states
            .create(&state, &pending)
            .await
            .map_err(|e| FlowError::Storage(e.into()))?;
        Ok(OAuthStarted {
            authorize_url: url.to_string(),
            state,
            expires_at,
        })
    }

    /// Completes a login from the provider's redirect.
    pub async fn oauth_callback(
        &self,
        callback: OAuthCallback,
    ) -> Result<OAuthConnected, FlowError> {
        let state = callback
            .state
            .as_deref()
            .ok_or_else(|| FlowError::State("missing `state`".into()))?;
        let pending = self.states.take(state).await.map_err(|e| match e {
            StateError::Storage(m) => FlowError::Connector(format!("state storage: {m}")),
            other => FlowError::State(other.to_string()),
        })?;
        if let Some(error) = &callback.error {
            let description = callback.error_description.as_deref().unwrap_or("");
            return Err(FlowError::OAuthFailed(
                format!("the provider answered `{error}` {description}")
                    .trim()
                    .to_string(),
            ));
        }
        let code = callback
            .code
            .as_deref()
            .ok_or_else(|| FlowError::field_error("code", "missing"))?;
        // The connector may have been replaced since the start: checked again.
        let (connector, manifest) = self.oauth_connector(&pending.connector_id)?;
        // (Logins started by an earlier version stored the start request alone.)
        let stored: StoredInputs = serde_json::from_str(&pending.inputs)
            .or_else(|_| {
                serde_json::from_str(&pending.inputs).map(|start| StoredInputs {
                    start,
                    managed_version: None,
                })
            })
            .map_err(|e| FlowError::Connector(e.to_string()))?;
        let start = stored.start;
        // The same managed application as at the start, or none.
        let managed = match stored.managed_version {
            Some(version) => Some(
                self.app_version(&connector, &pending.account_id, version)
                    .await?,
            ),
            None => None,
        };
        let info = self
            .oauth_info(&connector, &start, managed.as_ref())
            .await?;

        let overrides = if connector.prepared.implements(Hook::OverridingOauthOption) {
            let ctx = CallContext {
                account_id: Some(pending.account_id.clone()),
                ..CallContext::default()
            };
            Some(
                connector
                    .prepared
                    .overriding_oauth_option(&ctx, info.clone())
                    .await
                    .result?,
            )
        } else {
            None
        };
        let token_url = overrides
            .as_ref()
            .and_then(|o| o.token_url.clone())
            .unwrap_or_else(|| info.access_token_uri.clone());
        let outbound = self.registry.runtime().outbound().clone();
        let token_url = checked_token_url(&outbound, &connector, &token_url)?;
        let audited_token_url = token_url.clone();
        if let Some(iss) = &callback.iss {
            let accepted = [origin(&pending.authorize_url), origin(token_url.as_str())];
            if !accepted
                .iter()
                .flatten()
                .any(|o| o == iss.trim_end_matches('/'))
            {
                return Err(FlowError::State(format!(
                    "issuer mismatch: `{iss}` is not the authorization server"
                )));
            }
        }
        if overrides
            .as_ref()
            .is_some_and(|o| !o.extra_headers.is_empty())
        {
            return Err(FlowError::NotImplemented(
                "extra token-request headers are not supported yet".into(),
            ));
        }
        let secret = self.client_secret(&connector, &info, managed.as_ref())?;
        let location = client_auth_location(
            overrides.as_ref().and_then(|o| o.client_auth_location),
            &manifest,
        );

        let redirect = RedirectUrl::new(pending.redirect_uri.clone())
            .map_err(|e| FlowError::Connector(e.to_string()))?;
        let mut client: OAuthClient = oauth2::Client::new(ClientId::new(info.client_id.clone()))
            .set_token_uri(TokenUrl::from_url(token_url))
            .set_redirect_uri(redirect)
            .set_auth_type(if location == ManifestAuthLocation::Body {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            });
        if let Some(secret) = &secret {
            client =
                client.set_client_secret(ClientSecret::new(secret.expose_secret().to_string()));
        }
        let mut request = client.exchange_code(AuthorizationCode::new(code.to_string()));
        if let Some(verifier) = &pending.code_verifier {
            request = request
                .set_pkce_verifier(PkceCodeVerifier::new(verifier.expose_secret().to_string()));
        }
        // `both`: the header (above) and the body. A public client (no secret)
        // already sends its id in the body; do not repeat it.
        if location == ManifestAuthLocation::Both
            && let Some(secret) = &secret
        {
            request = request.add_extra_param("client_id", info.client_id.clone());
            request = request.add_extra_param("client_secret", secret.expose_secret().to_string());
        }
        for (name, value) in overrides.iter().flat_map(|o| o.extra_body_params.iter()) {
            request = request.add_extra_param(name.clone(), value.clone());
        }
        let started = std::time::Instant::now();
        let exchange = tokio::time::timeout(
            HOST_REQUEST_TIMEOUT,
            request.request_async(outbound.client()),
        )
        .await
        .map_err(|_| FlowError::Provider("the token endpoint did not answer in time".into()))
        .and_then(|result| result.map_err(token_error));
        outbound.audit_host_request(
            connector.prepared.connector(),
            Some(&pending.account_id),
            &audited_token_url,
            "client-credentials (code exchange)",
            started,
            exchange.as_ref().map(|_| None).map_err(|e| e.to_string()),
        );
        let tokens = exchange?;

        let access = SecretString::from(tokens.access_token().secret().clone());
        let refresh = tokens
            .refresh_token()
            .map(|t| SecretString::from(t.secret().clone()));
        let custom_state = pending.custom_state.clone();
        let login: Result<Connection, FlowError> = async {
            let expires_in = tokens.expires_in().map(|d| d.as_secs());
            let mut fields = tokens.extra_fields().fields.clone();
            for secret_field in ["access_token", "refresh_token", "id_token"] {
                fields.remove(secret_field);
            }
            let hostname = info.hostname.clone().or(start.hostname.clone());
            let ctx = CallContext {
                account_id: Some(pending.account_id.clone()),
                user_id: Some(pending.user_id.clone()),
                credentials: Arc::new(CallCredentials {
                    access_token: Some(access.clone()),
                    ..Default::default()
                }),
                deny_outbound: false,
            };
            let mut kept = Vec::new();
            if connector
                .prepared
                .implements(Hook::CredentialsFromTokenResponse)
            {
                let view = TokenResponseView {
                    fields_json: serde_json::Value::Object(fields).to_string(),
                    token_type: Some(format!("{:?}", tokens.token_type()).to_lowercase()),
                    scope: tokens
                        .scopes()
                        .map(|s| s.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
                    expires_in,
                };
                let input = TokenResponseInput {
                    token_response: view,
                    hostname: hostname.clone(),
                    callback_query: callback.other.clone().into_iter().collect(),
                };
                kept = connector
                    .prepared
                    .credentials_from_token_response(&ctx, input)
                    .await
                    .result?;
            }
            let connection_info = connector_sandbox::wit::hooks::ConnectionInfo {
                hostname: hostname.clone(),
                platform_user_id: None,
                additional_info: kept.clone(),
            };
            let identity = connector
                .prepared
                .user_info(&ctx, connection_info)
                .await
                .result?;
            let who = identity_fields(&identity);
            // The login worked with the admin's application: it becomes the
            // account's active one (before saving, so a connection never
            // exists with an application that is not).
            if let Some(app) = &managed {
                self.promote_app(&pending.account_id, &pending.connector_id, app)
                    .await?;
            }
            let connection = self
                .connections
                .save(NewConnection {
                    account_id: pending.account_id,
                    user_id: pending.user_id,
                    connector_id: pending.connector_id,
                    auth_type: AuthKind::OAuth.to_string(),
                    hostname,
                    platform_user_id: who.platform_user_id,
                    user_name: who.user_name,
                    timezone_name: who.timezone_name,
                    timezone_offset: who.timezone_offset,
                    additional_info: merge(&kept, &identity.additional_info),
                    expires_at: expires_in.map(|s| unix_seconds() + s as i64),
                    secrets: ConnectionSecrets {
                        access_token: Some(access.clone()),
                        refresh_token: refresh.clone(),
                        api_key: None,
                    },
                })
                .await?;
            Ok(connection)
        }
        .await;
        match login {
            Ok(connection) => {
                self.emit(
                    crate::events::EventKind::ConnectionCreated,
                    &connection,
                    "oauth login",
                )
                .await;
                Ok(OAuthConnected {
                    connection,
                    custom_state,
                })
            }
            Err(error) => {
                // Do not leave a live grant behind a failed login.
                let (token, hint) = match &refresh {
                    Some(refresh) => (refresh.clone(), "refresh_token"),
                    None => (access.clone(), "access_token"),
                };
                if let Err(warning) = self
                    .revoke_token(&connector, &start, managed.as_ref(), &token, hint)
                    .await
                {
                    tracing::warn!(%warning, "could not revoke the tokens of a failed login");
                }
                Err(error)
            }
        }
    }
}

impl Flows {
    /// RFC 7009 revocation at the manifest's `revocationEndpoint` (with
    /// `{hostname}` replaced), authenticated as the OAuth client. Revokes the
    /// refresh token when there is one (which ends the grant), else the access
    /// token. `Ok(false)` when the connector declares no endpoint.
    pub(crate) async fn revoke_at_provider(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<bool, String> {
        if connector.info.manifest.revocation_endpoint.is_none() {
            return Ok(false);
        }
        let secrets = self
            .connections
            .secrets(connection)
            .await
            .map_err(|e| e.to_string())?;
        let (token, hint) = match (&secrets.refresh_token, &secrets.access_token) {
            (Some(refresh), _) => (refresh.clone(), "refresh_token"),
            (None, Some(access)) => (access.clone(), "access_token"),
            (None, None) => return Ok(false),
        };
        let start = OAuthStart {
            account_id: connection.account_id.clone(),
            user_id: connection.user_id.clone(),
            hostname: connection.hostname.clone(),
            ..OAuthStart::default()
        };
        let managed = self
            .connection_app(connector, &connection.account_id)
            .await
            .map_err(|e| e.to_string())?;
        self.revoke_token(connector, &start, managed.as_ref(), &token, hint)
            .await
    }

    /// RFC 7009: revokes one token at the connector's `revocationEndpoint`.
    async fn revoke_token(
        &self,
        connector: &LoadedConnector,
        start: &OAuthStart,
        managed: Option<&ManagedOAuthApp>,
        token: &SecretString,
        hint: &str,
    ) -> Result<bool, String> {
        let Some(template) = connector.info.manifest.revocation_endpoint.clone() else {
            return Ok(false);
        };
        let manifest = connector
            .info
            .manifest
            .auth
            .oauth
            .clone()
            .ok_or("not an OAuth connector")?;
        let hostname = start.hostname.clone().unwrap_or_default();
        let endpoint = template.replace(connector_abi::manifest::HOSTNAME_PLACEHOLDER, &hostname);
        let outbound = self.registry.runtime().outbound().clone();
        let policy = connector.prepared.policy();
        let url = outbound
            .check_url(policy, &endpoint)
            .map_err(|e| format!("revocation endpoint refused: {e:?}"))?;
        let audited_url = url.clone();
        let info = self
            .oauth_info(connector, start, managed)
            .await
            .map_err(|e| e.to_string())?;
        let secret = self
            .client_secret(connector, &info, managed)
            .map_err(|e| e.to_string())?;
        let location = manifest
            .client_auth_location
            .unwrap_or(ManifestAuthLocation::Both);
        let mut form = vec![
            ("token", token.expose_secret().to_string()),
            ("token_type_hint", hint.to_string()),
        ];
        let mut request = outbound.client().post(url);
        if location != ManifestAuthLocation::Body {
            request = request.basic_auth(
                &info.client_id,
                secret.as_ref().map(|s| s.expose_secret().to_string()),
            );
        }
        if location != ManifestAuthLocation::Header {
            form.push(("client_id", info.client_id.clone()));
            if let Some(secret) = &secret {
                form.push(("client_secret", secret.expose_secret().to_string()));
            }
        }
        let started = std::time::Instant::now();
        let response = request
            .form(&form)
            .timeout(HOST_REQUEST_TIMEOUT)
            .send()
            .await
            .map_err(|e| format!("revocation request failed: {}", e.without_url()));
        outbound.audit_host_request(
            connector.prepared.connector(),
            Some(&start.account_id),
            &audited_url,
            "client-credentials (revocation)",
            started,
            response
                .as_ref()
                .map(|r| Some(r.status().as_u16()))
                .map_err(Clone::clone),
        );
        let response = response?;
        if response.status().is_success() {
            Ok(true)
        } else {
            Err(format!(
                "the revocation endpoint answered {}",
                response.status()
            ))
        }
    }
}

/// Where the client authenticates at the token endpoint: the hook's choice,
/// else the manifest's, else both (code exchange and refresh).
pub(super) fn client_auth_location(
    from_hook: Option<ClientAuthLocation>,
    manifest: &OAuthBlock,
) -> ManifestAuthLocation {
    from_hook
        .map(|l| match l {
            ClientAuthLocation::Header => ManifestAuthLocation::Header,
            ClientAuthLocation::Body => ManifestAuthLocation::Body,
            ClientAuthLocation::Both => ManifestAuthLocation::Both,
        })
        .or(manifest.client_auth_location)
        .unwrap_or(ManifestAuthLocation::Both)
}

/// A token endpoint checked against the connector's outbound policy.
pub(super) fn checked_token_url(
    outbound: &connector_sandbox::capabilities::http::Outbound,
    connector: &LoadedConnector,
    url: &str,
) -> Result<url::Url, FlowError> {
    outbound
        .check_url(connector.prepared.policy(), url)
        .map_err(|e| FlowError::Connector(format!("token endpoint refused: {e:?}")))
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

fn token_error<RE: std::error::Error + 'static>(
    error: RequestTokenError<RE, BasicErrorResponse>,
) -> FlowError {
    match error {
        RequestTokenError::ServerResponse(response) => {
            let description = response
                .error_description()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            FlowError::TokenExchange(format!("{}{description}", response.error().as_ref()))
        }
        RequestTokenError::Request(error) => {
            let mut message = error.to_string();
            let mut source = error.source();
            while let Some(cause) = source {
                message = format!("{message}: {cause}");
                source = cause.source();
            }
            FlowError::Provider(format!("token endpoint unreachable: {message}"))
        }
        RequestTokenError::Parse(_, _) => FlowError::Provider(
            "the token endpoint answered something that is not a token response".into(),
        ),
        RequestTokenError::Other(message) => {
            FlowError::Provider(format!("token endpoint: {message}"))
        }
    }
}

impl Flows {
    /// The account a live OAuth state belongs to, without consuming it.
    pub async fn state_account(&self, state: &str) -> anyhow::Result<Option<String>> {
        Ok(self.states.account_of(state).await?)
    }
}
