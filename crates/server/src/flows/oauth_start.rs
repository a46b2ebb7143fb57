//! The start of an OAuth 2.0 authorization-code login (App Connect
//! `auth.oauth` + `getOauthInfo`, Membrane options): `oauth-info`, then the
//! authorize URL with a server-side single-use state and PKCE S256, and the
//! pending authorization the callback completes. With `discoveryUrl`, the
//! provider's metadata supplies the authorize endpoint and issuer nothing
//! else declares, and a provider listing PKCE methods without S256 is refused.
//!
//! Local tools (the authoring commands `oauth2` and `dev`, never the HTTP API)
//! start with a loopback redirect URI of their own instead of the connector's
//! ([`OAuthStartFlow::start_with_local_redirect`]); everything else is the
//! ordinary flow, and the code exchange uses the redirect URI the authorize
//! request used.

use base64::Engine as _;
use connector_abi::manifest::OAuthBlock;
use connector_sandbox::wit::hooks::OauthValues;
use rand::RngCore;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::FlowError;
use super::common::Connectors;
use super::managed_apps::ManagedApps;
use super::oauth_client::{OAuthClients, OAuthInfoRequest};
use crate::store::{OAuthStateStore, PendingAuthorization};

/// Start of an OAuth login: the `getOauthInfo` inputs plus who is connecting.
#[derive(Debug, Clone, Default)]
pub struct OAuthStart {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// CRM hostname (regional connectors).
    pub hostname: Option<String>,
    /// Token URL saved with the user.
    pub token_url: Option<String>,
    /// Proxy connector id.
    pub proxy_id: Option<String>,
    /// Proxy configuration (any JSON).
    pub proxy_config: Option<serde_json::Value>,
    /// The user's email.
    pub user_email: Option<String>,
    /// Started from MCP.
    pub is_from_mcp: bool,
}

/// Where to send the user.
#[derive(Debug)]
pub struct OAuthStarted {
    /// The provider's authorize URL with every parameter.
    pub authorize_url: String,
    /// The state (also in the URL).
    pub state: String,
    /// Unix seconds after which the callback is refused.
    pub expires_at: i64,
}

/// Starts OAuth logins.
#[derive(Clone)]
pub(crate) struct OAuthStartFlow {
    connectors: Connectors,
    states: OAuthStateStore,
    apps: ManagedApps,
    oauth: OAuthClients,
}

impl OAuthStartFlow {
    /// Logins of `connectors`, pending in `states`.
    pub(crate) fn new(
        connectors: Connectors,
        states: OAuthStateStore,
        apps: ManagedApps,
        oauth: OAuthClients,
    ) -> Self {
        Self {
            connectors,
            states,
            apps,
            oauth,
        }
    }

    /// Builds the authorize URL and records the pending authorization.
    pub(crate) async fn start(
        &self,
        connector_id: &str,
        start: OAuthStart,
    ) -> Result<OAuthStarted, FlowError> {
        checked_hostname(start.hostname.as_deref())?;
        let (connector, manifest) = self.connectors.oauth(connector_id)?;
        if manifest.is_client_credentials() {
            return Err(FlowError::WrongAuthType {
                connector: connector_id.to_string(),
                actual: "oauth client-credentials (no user redirect: `POST /v1/connectors/{id}/oauth/client-credentials`)".into(),
                requested: "oauth authorization code",
            });
        }
        let managed = self.apps.for_login(&connector, &start.account_id).await?;
        let request = OAuthInfoRequest::from(&start);
        let info = self
            .oauth
            .info(&connector, &request, managed.as_ref())
            .await?;
        let discovered = self
            .oauth
            .discovered(&connector, &request, &info, managed.as_ref())
            .await?;
        if let Some(found) = &discovered
            && !manifest.skip_pkce
        {
            found.check_pkce()?;
        }
        let base = info
            .authorization_uri
            .clone()
            .unwrap_or_else(|| manifest.auth_url.clone());
        if base.is_empty()
            && let Some(found) = &discovered
        {
            return Err(FlowError::Provider(format!(
                "the OAuth discovery document at `{}`: field `authorization_endpoint` is missing, and nothing else names the authorize endpoint",
                found.url
            )));
        }
        let state = random_token();
        let verifier = (!manifest.skip_pkce).then(random_token);
        let url = authorize_url(&base, &info, &manifest, &state, verifier.as_deref())?;
        let pending = PendingAuthorization {
            connector_id: connector_id.to_string(),
            account_id: start.account_id.clone(),
            user_id: start.user_id.clone(),
            redirect_uri: info.redirect_uri.clone(),
            code_verifier: verifier.map(SecretString::from),
            authorize_url: base,
            // The issuer this login expects back in `iss` (RFC 9207): the
            // admin's application's, else the manifest's, else the
            // discovery document's.
            issuer: managed
                .as_ref()
                .and_then(|m| m.values.issuer.clone())
                .or_else(|| manifest.issuer.clone())
                .or_else(|| discovered.as_ref().map(|d| d.issuer.clone())),
            inputs: StoredInputs::encode(start, managed.as_ref().map(|m| m.version)),
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

    /// [`OAuthStartFlow::start`], with `redirect_uri` sent to the provider
    /// (and used for the code exchange) instead of the connector's. For local
    /// tools only: `redirect_uri` must be an `http` URL on a loopback address
    /// (`127.0.0.1`, `[::1]` or `localhost`), so this cannot send a user's
    /// code anywhere else.
    pub(crate) async fn start_with_local_redirect(
        &self,
        connector_id: &str,
        start: OAuthStart,
        redirect_uri: &str,
    ) -> Result<OAuthStarted, FlowError> {
        if !is_local_http(redirect_uri) {
            return Err(FlowError::field_error(
                "redirect_uri",
                "a local redirect URI must be http://127.0.0.1, http://[::1] or http://localhost",
            ));
        }
        self.start_redirected(connector_id, start, redirect_uri)
            .await
    }

    /// [`OAuthStartFlow::start`], with `redirect_uri` sent to the provider
    /// (and used for the code exchange) instead of the connector's. The
    /// caller vouches for the URI: a loopback one of a local tool, or the
    /// host's own callback page under the operator's `[console] public_url`.
    pub(crate) async fn start_redirected(
        &self,
        connector_id: &str,
        start: OAuthStart,
        redirect_uri: &str,
    ) -> Result<OAuthStarted, FlowError> {
        let started = self.start(connector_id, start).await?;
        // Re-issue the pending authorization under a fresh state with the
        // local redirect URI; the original state is spent.
        let mut pending = self
            .states
            .take(&started.state)
            .await
            .map_err(|e| FlowError::State(e.to_string()))?;
        pending.redirect_uri = redirect_uri.to_string();
        let state = random_token();
        let expires_at = self
            .states
            .create(&state, &pending)
            .await
            .map_err(|e| FlowError::Storage(e.into()))?;
        let mut url = url::Url::parse(&started.authorize_url)
            .map_err(|e| FlowError::Connector(e.to_string()))?;
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| match k.as_ref() {
                "redirect_uri" => (k.into_owned(), redirect_uri.to_string()),
                "state" => (k.into_owned(), state.clone()),
                _ => (k.into_owned(), v.into_owned()),
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        Ok(OAuthStarted {
            authorize_url: url.to_string(),
            state,
            expires_at,
        })
    }
}

/// The authorize URL: `base` with the client, redirect URI, scopes, state,
/// PKCE challenge and the manifest's extra parameters.
fn authorize_url(
    base: &str,
    info: &OauthValues,
    manifest: &OAuthBlock,
    state: &str,
    verifier: Option<&str>,
) -> Result<url::Url, FlowError> {
    let mut url = url::Url::parse(base)
        .map_err(|e| FlowError::Connector(format!("authorization URI `{base}` is invalid: {e}")))?;
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
    query.append_pair("state", state);
    if let Some(verifier) = verifier {
        let challenge =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
        query.append_pair("code_challenge", &challenge);
        query.append_pair("code_challenge_method", "S256");
    }
    for (name, value) in &manifest.extra {
        query.append_pair(name, value);
    }
    drop(query);
    Ok(url)
}

/// 32 random bytes, URL-safe base64: states and PKCE verifiers.
fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a pending authorization keeps to call `oauth-info` again at the
/// callback: the start request and the managed application version it used.
/// Stored as JSON with the pending authorization, so its form outlives a
/// restart of the host: change it only compatibly.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StoredInputs {
    start: StoredStart,
    #[serde(default)]
    managed_version: Option<i64>,
}

/// [`OAuthStart`] as stored (the form of the API's start request).
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StoredStart {
    account_id: String,
    user_id: String,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    token_url: Option<String>,
    #[serde(default)]
    proxy_id: Option<String>,
    #[serde(default)]
    proxy_config: Option<serde_json::Value>,
    #[serde(default)]
    user_email: Option<String>,
    #[serde(default)]
    is_from_mcp: bool,
}

impl StoredInputs {
    /// The JSON kept with a pending authorization.
    fn encode(start: OAuthStart, managed_version: Option<i64>) -> String {
        let start = StoredStart {
            account_id: start.account_id,
            user_id: start.user_id,
            hostname: start.hostname,
            token_url: start.token_url,
            proxy_id: start.proxy_id,
            proxy_config: start.proxy_config,
            user_email: start.user_email,
            is_from_mcp: start.is_from_mcp,
        };
        serde_json::to_string(&Self {
            start,
            managed_version,
        })
        .expect("serialisable")
    }

    /// The `oauth-info` inputs and managed application version kept with a
    /// pending authorization. (Logins started by an earlier version stored
    /// the start request alone.)
    pub(crate) fn decode(inputs: &str) -> Result<(OAuthInfoRequest, Option<i64>), FlowError> {
        let stored: Self = serde_json::from_str(inputs)
            .or_else(|_| {
                serde_json::from_str(inputs).map(|start| Self {
                    start,
                    managed_version: None,
                })
            })
            .map_err(|e| FlowError::Connector(e.to_string()))?;
        let start = stored.start;
        let request = OAuthInfoRequest {
            account_id: start.account_id,
            hostname: start.hostname,
            token_url: start.token_url,
            proxy_id: start.proxy_id,
            proxy_config: start.proxy_config,
            user_email: start.user_email,
            is_from_mcp: start.is_from_mcp,
        };
        Ok((request, stored.managed_version))
    }
}

/// `http://` on `127.0.0.0/8`, `[::1]` or `localhost`.
fn is_local_http(uri: &str) -> bool {
    let Ok(parsed) = url::Url::parse(uri) else {
        return false;
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    parsed.scheme() == "http" && loopback && parsed.username().is_empty()
}

/// A `hostname` input must be a host name with an optional port and nothing
/// else: it is substituted into URLs (`{hostname}`).
pub(crate) fn checked_hostname(hostname: Option<&str>) -> Result<(), FlowError> {
    match hostname {
        // An empty hostname means none (regional connectors then use their default).
        Some(value) if !value.is_empty() && !connector_abi::manifest::is_hostname(value) => {
            Err(FlowError::Field {
                field: "hostname".into(),
                message: format!(
                    "`{value}` is not a host name (letters, digits, `-` and dots, with an optional `:port`)"
                ),
            })
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_http_redirects_are_local() {
        for ok in [
            "http://127.0.0.1:9002/callback",
            "http://localhost:9002/callback",
            "http://[::1]:9002/callback",
        ] {
            assert!(is_local_http(ok), "{ok}");
        }
        for bad in [
            "https://127.0.0.1/callback",
            "http://apps.example.com/callback",
            "http://127.0.0.1.example.com/callback",
            "http://localhost.example.com/callback",
            "http://user@127.0.0.1/callback",
            "http://10.0.0.1/callback",
            "not a url",
        ] {
            assert!(!is_local_http(bad), "{bad}");
        }
    }

    #[test]
    fn stored_inputs_keep_their_form() {
        let start = OAuthStart {
            account_id: "a".into(),
            user_id: "u".into(),
            hostname: Some("eu.example.com".into()),
            ..OAuthStart::default()
        };
        let json = StoredInputs::encode(start, Some(3));
        assert_eq!(
            json,
            r#"{"start":{"accountId":"a","userId":"u","hostname":"eu.example.com","tokenUrl":null,"proxyId":null,"proxyConfig":null,"userEmail":null,"isFromMcp":false},"managedVersion":3}"#
        );
        let (request, version) = StoredInputs::decode(&json).unwrap();
        assert_eq!(
            (
                request.account_id.as_str(),
                request.hostname.as_deref(),
                version
            ),
            ("a", Some("eu.example.com"), Some(3))
        );
        let (request, version) = StoredInputs::decode(r#"{"accountId":"b","userId":"u"}"#).unwrap();
        assert_eq!((request.account_id.as_str(), version), ("b", None));
    }
}
