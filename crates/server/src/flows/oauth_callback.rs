//! The end of an OAuth login: the provider's redirect back to us. It reads as
//! its steps ([`OAuthCallbackFlow::complete`]): take the single-use state,
//! exchange the code at the token endpoint (checked against the connector's
//! policy, `iss` checked against the issuer the login expects), complete the
//! login with the tokens kept on the host (`credentials-from-token-response`,
//! `user-info`, save), and undo the grant if that last step fails, so no live
//! token is left behind.

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_abi::hook::Hook;
use connector_abi::manifest::{AuthKind, OAuthBlock};
use connector_sandbox::capabilities::http::CallCredentials;
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::{
    ConnectionInfo, OauthValues, TokenRequestOverride, TokenResponseInput, TokenResponseView,
};
use secrecy::SecretString;
use serde::Deserialize;

use super::FlowError;
use super::common::{Connectors, Notifier, identity_fields, merge};
use super::managed_apps::ManagedApps;
use super::oauth_client::{OAuthClients, OAuthInfoRequest, client_auth_location_or_discovered};
use super::oauth_start::StoredInputs;
use super::revocation::{GrantToken, Revocation};
use super::token_endpoint::{self, ClientAuth, Endpoint, TokenClient, TokenSet};
use crate::events::EventKind;
use crate::registry::LoadedConnector;
use crate::store::{
    Connection, ConnectionSecrets, ConnectionStore, ManagedOAuthApp, NewConnection,
    OAuthStateStore, PendingAuthorization, StateError,
};

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
    pub other: BTreeMap<String, String>,
}

/// A completed OAuth login.
#[derive(Debug)]
pub struct OAuthConnected {
    /// The saved connection (no secrets).
    pub connection: Connection,
    /// The manifest's `customState`, kept from the start.
    pub custom_state: Option<String>,
}

/// Completes OAuth logins.
#[derive(Clone)]
pub(crate) struct OAuthCallbackFlow {
    connectors: Connectors,
    states: OAuthStateStore,
    apps: ManagedApps,
    oauth: OAuthClients,
    connections: ConnectionStore,
    notifier: Notifier,
    revocation: Revocation,
}

/// A login whose state was taken: what its start recorded, the connector
/// (checked again: it may have been replaced since), and the code.
struct PendingLogin {
    pending: PendingAuthorization,
    connector: Arc<LoadedConnector>,
    manifest: OAuthBlock,
    request: OAuthInfoRequest,
    managed: Option<ManagedOAuthApp>,
    code: String,
}

/// What the code exchange obtained, and the client that obtained it.
struct Grant {
    tokens: TokenSet,
    info: OauthValues,
    secret: Option<SecretString>,
}

impl OAuthCallbackFlow {
    /// Completes logins started in `states`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        connectors: Connectors,
        states: OAuthStateStore,
        apps: ManagedApps,
        oauth: OAuthClients,
        connections: ConnectionStore,
        notifier: Notifier,
        revocation: Revocation,
    ) -> Self {
        Self {
            connectors,
            states,
            apps,
            oauth,
            connections,
            notifier,
            revocation,
        }
    }

    /// The account a live OAuth state belongs to, without consuming it.
    pub(crate) async fn state_account(&self, state: &str) -> anyhow::Result<Option<String>> {
        Ok(self.states.account_of(state).await?)
    }

    /// Completes a login from the provider's redirect.
    pub(crate) async fn complete(
        &self,
        callback: OAuthCallback,
    ) -> Result<OAuthConnected, FlowError> {
        let login = self.take_state(&callback).await?;
        let grant = self.exchange_code(&login, callback.iss.as_deref()).await?;
        match self.complete_login(&login, &grant, &callback.other).await {
            Ok(connection) => {
                self.notifier
                    .emit(EventKind::ConnectionCreated, &connection, "oauth login")
                    .await;
                Ok(OAuthConnected {
                    connection,
                    custom_state: login.pending.custom_state,
                })
            }
            Err(error) => {
                self.undo_grant(&login, &grant).await;
                Err(error)
            }
        }
    }

    /// Consumes the state (once), refuses a provider error, and reloads what
    /// the start recorded: the connector, the `oauth-info` inputs and the same
    /// managed application (or none).
    async fn take_state(&self, callback: &OAuthCallback) -> Result<PendingLogin, FlowError> {
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
            .clone()
            .ok_or_else(|| FlowError::field_error("code", "missing"))?;
        let (connector, manifest) = self.connectors.oauth(&pending.connector_id)?;
        let (request, managed_version) = StoredInputs::decode(&pending.inputs)?;
        let managed = match managed_version {
            Some(version) => Some(
                self.apps
                    .version(&connector, &pending.account_id, version)
                    .await?,
            ),
            None => None,
        };
        Ok(PendingLogin {
            pending,
            connector,
            manifest,
            request,
            managed,
            code,
        })
    }

    /// `oauth-info` (and `overriding-oauth-option`) again, then the code and
    /// PKCE verifier for tokens at the checked token endpoint.
    async fn exchange_code(
        &self,
        login: &PendingLogin,
        iss: Option<&str>,
    ) -> Result<Grant, FlowError> {
        let (connector, managed) = (&login.connector, login.managed.as_ref());
        let info = self.oauth.info(connector, &login.request, managed).await?;
        let discovered = (self.oauth)
            .discovered(connector, &login.request, &info, managed)
            .await?;
        let overrides = self.token_request_override(login, &info).await?;
        let token_url = overrides
            .as_ref()
            .and_then(|o| o.token_url.clone())
            .unwrap_or_else(|| info.access_token_uri.clone());
        let outbound = self.connectors.outbound();
        let token_url = token_endpoint::checked_url(
            outbound,
            connector,
            &login.pending.account_id,
            &token_url,
            Endpoint::CodeExchange,
        )?;
        check_issuer(
            iss,
            login.pending.issuer.as_deref(),
            &login.pending.authorize_url,
            &token_url,
        )?;
        // Checked before the client secret is read or anything is sent.
        let headers = token_endpoint::extra_headers(
            overrides
                .as_ref()
                .map(|o| o.extra_headers.as_slice())
                .unwrap_or_default(),
        )?;
        let secret = self.oauth.secret(connector, &info, managed)?;
        let client = ClientAuth {
            client_id: info.client_id.clone(),
            secret: secret.clone(),
            location: client_auth_location_or_discovered(
                overrides.as_ref().and_then(|o| o.client_auth_location),
                &login.manifest,
                discovered.as_deref(),
            ),
        };
        let extra = overrides.map(|o| o.extra_body_params).unwrap_or_default();
        let tokens = TokenClient::new(outbound, connector, &login.pending.account_id, &client)
            .exchange_code(
                &token_url,
                &login.code,
                &login.pending.redirect_uri,
                login.pending.code_verifier.as_ref(),
                &extra,
                headers,
            )
            .await?;
        Ok(Grant {
            tokens,
            info,
            secret,
        })
    }

    /// The connector's `overriding-oauth-option`, if it implements it.
    async fn token_request_override(
        &self,
        login: &PendingLogin,
        info: &OauthValues,
    ) -> Result<Option<TokenRequestOverride>, FlowError> {
        let prepared = &login.connector.prepared;
        if !prepared.implements(Hook::OverridingOauthOption) {
            return Ok(None);
        }
        let ctx = CallContext {
            account_id: Some(login.pending.account_id.clone()),
            ..CallContext::default()
        };
        let overrides = prepared
            .overriding_oauth_option(&ctx, info.clone())
            .await
            .result?;
        Ok(Some(overrides))
    }

    /// With the new access token injected: the fields to keep, the user's
    /// identity, then the managed application promoted and the connection
    /// saved.
    async fn complete_login(
        &self,
        login: &PendingLogin,
        grant: &Grant,
        callback_query: &BTreeMap<String, String>,
    ) -> Result<Connection, FlowError> {
        let pending = &login.pending;
        let tokens = &grant.tokens;
        let hostname = grant
            .info
            .hostname
            .clone()
            .or(login.request.hostname.clone());
        let ctx = CallContext {
            account_id: Some(pending.account_id.clone()),
            user_id: Some(pending.user_id.clone()),
            credentials: Arc::new(CallCredentials {
                access_token: Some(tokens.access_token.clone()),
                ..Default::default()
            }),
            deny_outbound: false,
        };
        let kept = self
            .kept_fields(login, tokens, &ctx, &hostname, callback_query)
            .await?;
        let connection_info = ConnectionInfo {
            hostname: hostname.clone(),
            platform_user_id: None,
            additional_info: kept.clone(),
        };
        let prepared = &login.connector.prepared;
        let identity = prepared.user_info(&ctx, connection_info).await.result?;
        let who = identity_fields(&identity);
        // The login worked with the admin's application: it becomes the
        // account's active one (before saving, so a connection never exists
        // with an application that is not).
        if let Some(app) = &login.managed {
            self.apps
                .promote(&pending.account_id, &pending.connector_id, app)
                .await?;
        }
        let connection = NewConnection {
            account_id: pending.account_id.clone(),
            user_id: pending.user_id.clone(),
            connector_id: pending.connector_id.clone(),
            auth_type: AuthKind::OAuth.to_string(),
            hostname,
            platform_user_id: who.platform_user_id,
            user_name: who.user_name,
            timezone_name: who.timezone_name,
            timezone_offset: who.timezone_offset,
            additional_info: merge(&kept, &identity.additional_info),
            expires_at: tokens
                .expires_in
                .or(login.manifest.default_token_lifetime_seconds)
                .map(crate::store::expiry_after),
            secrets: ConnectionSecrets {
                access_token: Some(tokens.access_token.clone()),
                refresh_token: tokens.refresh_token.clone(),
                api_key: None,
            },
        };
        Ok(self.connections.save(connection).await?)
    }

    /// `credentials-from-token-response`, if implemented: the non-secret
    /// values to keep from the token response (its tokens removed).
    async fn kept_fields(
        &self,
        login: &PendingLogin,
        tokens: &TokenSet,
        ctx: &CallContext,
        hostname: &Option<String>,
        callback_query: &BTreeMap<String, String>,
    ) -> Result<Vec<(String, String)>, FlowError> {
        let prepared = &login.connector.prepared;
        if !prepared.implements(Hook::CredentialsFromTokenResponse) {
            return Ok(Vec::new());
        }
        // Only the parameters the manifest declares (`callbackParams`), each
        // bounded, reach the guest.
        let declared = login
            .connector
            .info
            .manifest
            .auth
            .oauth
            .as_ref()
            .map(|oauth| oauth.callback_params.as_slice())
            .unwrap_or_default();
        let callback_query: Vec<(String, String)> = callback_query
            .iter()
            .filter(|(name, _)| declared.contains(name))
            .map(|(name, value)| {
                let mut value = value.clone();
                connector_sandbox::capabilities::http::truncate_marked(&mut value, 2048);
                (name.clone(), value)
            })
            .collect();
        let input = TokenResponseInput {
            token_response: TokenResponseView {
                fields_json: serde_json::Value::Object(tokens.fields.clone()).to_string(),
                token_type: tokens.token_type.clone(),
                scope: tokens.scope.clone(),
                expires_in: tokens.expires_in,
            },
            hostname: hostname.clone(),
            callback_query,
        };
        Ok(prepared
            .credentials_from_token_response(ctx, input)
            .await
            .result?)
    }

    /// Revokes the grant of a login that failed after its code exchange: the
    /// refresh token when there is one, else the access token. A failure is
    /// logged; the login's own error is what the caller gets.
    async fn undo_grant(&self, login: &PendingLogin, grant: &Grant) {
        let tokens = &grant.tokens;
        let Some(token) = GrantToken::of(tokens.refresh_token.as_ref(), Some(&tokens.access_token))
        else {
            return;
        };
        let revoked = self
            .revocation
            .revoke(
                &login.connector,
                &login.pending.account_id,
                login.request.hostname.as_deref(),
                &grant.info.client_id,
                grant.secret.clone(),
                token,
            )
            .await;
        if let Err(warning) = revoked {
            tracing::warn!(%warning, "could not revoke the tokens of a failed login");
        }
    }
}

/// RFC 9207 (mix-up defence). With a declared issuer (the managed
/// application's or the manifest's `auth.oauth.issuer`, recorded at the
/// start), `iss` must equal it as an exact string (RFC 9207 §2.4: simple
/// string comparison, no normalisation). Without one, the fallback: `iss`
/// must be the origin of the authorize or the token endpoint, which cannot
/// tell apart issuers that share an origin (`…/realms/a` and `…/realms/b`)
/// and refuses every issuer with a path. A callback without `iss` is accepted
/// either way: the host does not know whether the provider sends it
/// (RFC 9207 §2.4 requires it only of clients that know the server does).
fn check_issuer(
    iss: Option<&str>,
    expected: Option<&str>,
    authorize_url: &str,
    token_url: &url::Url,
) -> Result<(), FlowError> {
    let Some(iss) = iss else {
        return Ok(());
    };
    let accepted = match expected {
        Some(expected) => iss == expected,
        None => [origin(authorize_url), origin(token_url.as_str())]
            .iter()
            .flatten()
            .any(|o| o == iss.trim_end_matches('/')),
    };
    if accepted {
        Ok(())
    } else {
        Err(FlowError::State(format!(
            "issuer mismatch: `{iss}` is not the authorization server"
        )))
    }
}

/// `scheme://host[:port]` of a URL.
fn origin(url: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()
        .map(|u| u.origin().ascii_serialization())
}

#[cfg(test)]
mod tests {
    use super::check_issuer;

    #[test]
    fn a_declared_issuer_is_compared_exactly() {
        let token = url::Url::parse("https://sso.example.com/realms/acme/token").unwrap();
        let authorize = "https://sso.example.com/realms/acme/auth";
        let acme = Some("https://sso.example.com/realms/acme");
        let check = |iss: &str| check_issuer(Some(iss), acme, authorize, &token);
        assert!(check("https://sso.example.com/realms/acme").is_ok());
        for refused in [
            "https://sso.example.com/realms/other",
            "https://sso.example.com",
            "https://sso.example.com/",
            "https://sso.example.com/realms/acme/",
            "https://SSO.example.com/realms/acme",
        ] {
            assert!(check(refused).is_err(), "{refused}");
        }
        assert!(check_issuer(None, acme, authorize, &token).is_ok());
    }

    #[test]
    fn without_a_declared_issuer_the_endpoint_origins_are_accepted() {
        let token = url::Url::parse("https://token.example.com/token").unwrap();
        let authorize = "https://login.example.com/authorize";
        let check = |iss: &str| check_issuer(Some(iss), None, authorize, &token);
        assert!(check("https://login.example.com").is_ok());
        assert!(check("https://token.example.com/").is_ok());
        assert!(check("https://evil.example.com").is_err());
        assert!(check("https://login.example.com/realms/acme").is_err());
    }
}
