//! OAuth 2.0 client-credentials connections (RFC 6749 §4.4; Nango
//! `OAUTH2_CC`, Membrane client credentials), for connectors whose manifest
//! says `auth.oauth.grantType: client_credentials`.
//!
//! No user is redirected: the host asks the token endpoint for a token with
//! the client's own credentials, exactly as it exchanges a code — `oauth-info`
//! (with the account's admin-managed application, if the connector uses one)
//! for the client id, the client-secret reference and the token URL,
//! `overriding-oauth-option` for changes, the URL checked against the
//! connector's policy, one client-authentication method, the token-endpoint
//! client. The client id and secret never reach the guest. The connection is
//! then completed like an OAuth login (`credentials-from-token-response` and
//! `user-info` when the connector implements them) and saved encrypted.
//!
//! There is no refresh token: when the token is due, the refresh path
//! (`refresh.rs`, under the single flight of `fresh.rs`) requests a new one
//! with the same grant.

use std::sync::Arc;

use connector_abi::hook::Hook;
use connector_abi::manifest::{AuthKind, OAuthBlock};
use connector_sandbox::capabilities::http::CallCredentials;
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::{
    ConnectionInfo, OauthValues, TokenResponseInput, TokenResponseView, UserIdentity,
};
use secrecy::SecretString;

use super::FlowError;
use super::common::{Connectors, Notifier, identity_fields, merge};
use super::managed_apps::ManagedApps;
use super::oauth_client::{OAuthClients, OAuthInfoRequest, client_auth_location_or_discovered};
use super::oauth_start::checked_hostname;
use super::revocation::{GrantToken, Revocation};
use super::token_endpoint::{self, ClientAuth, Endpoint, ResponsePaths, TokenClient, TokenSet};
use crate::events::EventKind;
use crate::registry::LoadedConnector;
use crate::store::{
    Connection, ConnectionSecrets, ConnectionStore, ManagedOAuthApp, NewConnection,
};

/// A request for a client-credentials connection: whose it is. The
/// connection's `oauth-info` inputs are its account and hostname, the same at
/// every renewal.
#[derive(Debug, Clone, Default)]
pub struct ClientCredentialsLogin {
    /// Platform account.
    pub account_id: String,
    /// Platform user the connection belongs to.
    pub user_id: String,
    /// CRM hostname (regional connectors).
    pub hostname: Option<String>,
}

/// Creates client-credentials connections.
#[derive(Clone)]
pub(crate) struct ClientCredentialsFlow {
    connectors: Connectors,
    apps: ManagedApps,
    oauth: OAuthClients,
    connections: ConnectionStore,
    notifier: Notifier,
    revocation: Revocation,
}

/// What the grant obtained, and as which client.
struct Grant {
    tokens: TokenSet,
    info: OauthValues,
    secret: SecretString,
}

impl ClientCredentialsFlow {
    /// Connections of `connectors`, saved in `connections`.
    pub(crate) fn new(
        connectors: Connectors,
        apps: ManagedApps,
        oauth: OAuthClients,
        connections: ConnectionStore,
        notifier: Notifier,
        revocation: Revocation,
    ) -> Self {
        Self {
            connectors,
            apps,
            oauth,
            connections,
            notifier,
            revocation,
        }
    }

    /// Obtains a token with the client-credentials grant and saves the
    /// connection (replacing the user's existing one). Saves nothing unless
    /// every step succeeded; a token obtained before a later step failed is
    /// revoked at `revocationEndpoint`, when the connector declares one.
    pub(crate) async fn connect(
        &self,
        connector_id: &str,
        login: ClientCredentialsLogin,
    ) -> Result<Connection, FlowError> {
        checked_hostname(login.hostname.as_deref())?;
        let (connector, manifest) = self.connectors.oauth(connector_id)?;
        require_client_credentials(&connector, &manifest)?;
        let managed = self.apps.for_login(&connector, &login.account_id).await?;
        let request = OAuthInfoRequest {
            account_id: login.account_id.clone(),
            hostname: login.hostname.clone(),
            ..OAuthInfoRequest::default()
        };
        let info = self
            .oauth
            .info(&connector, &request, managed.as_ref())
            .await?;
        let discovered = self
            .oauth
            .discovered(&connector, &request, &info, managed.as_ref())
            .await?;
        let overrides = if connector.prepared.implements(Hook::OverridingOauthOption) {
            let ctx = CallContext {
                account_id: Some(login.account_id.clone()),
                ..CallContext::default()
            };
            let hook = connector
                .prepared
                .overriding_oauth_option(&ctx, info.clone());
            Some(hook.await.result?)
        } else {
            None
        };
        let token_url = overrides
            .as_ref()
            .and_then(|o| o.token_url.clone())
            .unwrap_or_else(|| info.access_token_uri.clone());
        let outbound = self.connectors.outbound();
        let token_url = token_endpoint::checked_url(
            outbound,
            &connector,
            &login.account_id,
            &token_url,
            Endpoint::ClientCredentials,
        )?;
        // Checked before the client secret is read or anything is sent.
        let headers = token_endpoint::extra_headers(
            overrides
                .as_ref()
                .map(|o| o.extra_headers.as_slice())
                .unwrap_or_default(),
        )?;
        let secret = confidential(self.oauth.secret(&connector, &info, managed.as_ref())?)?;
        let client = ClientAuth {
            client_id: info.client_id.clone(),
            secret: Some(secret.clone()),
            location: client_auth_location_or_discovered(
                overrides.as_ref().and_then(|o| o.client_auth_location),
                &manifest,
                discovered.as_deref(),
            ),
        };
        let extra = overrides.map(|o| o.extra_body_params).unwrap_or_default();
        let tokens = TokenClient::new(outbound, &connector, &login.account_id, &client)
            .client_credentials(
                &token_url,
                scope_param(&info, &manifest).as_ref(),
                &extra,
                headers,
                &ResponsePaths::from_override(None),
            )
            .await?;
        let grant = Grant {
            tokens,
            info,
            secret,
        };
        let completed = self
            .complete(&connector, &manifest, &login, &grant, managed.as_ref())
            .await;
        match completed {
            Ok(connection) => {
                self.notifier
                    .emit(
                        EventKind::ConnectionCreated,
                        &connection,
                        "oauth client credentials",
                    )
                    .await;
                Ok(connection)
            }
            Err(error) => {
                self.undo_grant(&connector, &login, &grant).await;
                Err(error)
            }
        }
    }

    /// With the new access token injected: the fields to keep
    /// (`credentials-from-token-response`) and the identity (`user-info`),
    /// each when implemented, then a pending admin-managed application
    /// promoted (before saving, as at an OAuth callback) and the connection
    /// saved.
    async fn complete(
        &self,
        connector: &LoadedConnector,
        manifest: &OAuthBlock,
        login: &ClientCredentialsLogin,
        grant: &Grant,
        managed: Option<&ManagedOAuthApp>,
    ) -> Result<Connection, FlowError> {
        let tokens = &grant.tokens;
        let hostname = grant.info.hostname.clone().or(login.hostname.clone());
        let ctx = CallContext {
            account_id: Some(login.account_id.clone()),
            user_id: Some(login.user_id.clone()),
            credentials: Arc::new(CallCredentials {
                access_token: Some(tokens.access_token.clone()),
                ..Default::default()
            }),
            deny_outbound: false,
        };
        let prepared = &connector.prepared;
        let kept = if prepared.implements(Hook::CredentialsFromTokenResponse) {
            let input = TokenResponseInput {
                token_response: TokenResponseView {
                    fields_json: serde_json::Value::Object(tokens.fields.clone()).to_string(),
                    token_type: tokens.token_type.clone(),
                    scope: tokens.scope.clone(),
                    expires_in: tokens.expires_in,
                },
                hostname: hostname.clone(),
                callback_query: Vec::new(),
            };
            prepared
                .credentials_from_token_response(&ctx, input)
                .await
                .result?
        } else {
            Vec::new()
        };
        let identity = if prepared.implements(Hook::UserInfo) {
            let info = ConnectionInfo {
                hostname: hostname.clone(),
                platform_user_id: None,
                additional_info: kept.clone(),
            };
            Some(prepared.user_info(&ctx, info).await.result?)
        } else {
            None
        };
        let who = identity.as_ref().map(identity_fields).unwrap_or_default();
        let identity_info = identity.map(|i: UserIdentity| i.additional_info);
        if let Some(app) = managed {
            let id = &connector.info.manifest.id;
            self.apps.promote(&login.account_id, id, app).await?;
        }
        let connection = NewConnection {
            account_id: login.account_id.clone(),
            user_id: login.user_id.clone(),
            connector_id: connector.info.manifest.id.clone(),
            auth_type: AuthKind::OAuth.to_string(),
            hostname,
            platform_user_id: who.platform_user_id,
            user_name: who.user_name,
            timezone_name: who.timezone_name,
            timezone_offset: who.timezone_offset,
            additional_info: merge(&kept, &identity_info.unwrap_or_default()),
            expires_at: tokens
                .expires_in
                .or(manifest.default_token_lifetime_seconds)
                .map(crate::store::expiry_after),
            // Renewed by a new grant: a refresh token the provider sent
            // anyway (RFC 6749 §4.4.3 says it should not) is not kept.
            secrets: ConnectionSecrets {
                access_token: Some(tokens.access_token.clone()),
                refresh_token: None,
                api_key: None,
            },
        };
        Ok(self.connections.save(connection).await?)
    }

    /// Revokes the access token of a connection that failed after the grant
    /// (best effort; the connection's own error is what the caller gets).
    async fn undo_grant(
        &self,
        connector: &LoadedConnector,
        login: &ClientCredentialsLogin,
        grant: &Grant,
    ) {
        let Some(token) = GrantToken::of(
            grant.tokens.refresh_token.as_ref(),
            Some(&grant.tokens.access_token),
        ) else {
            return;
        };
        let revoked = self
            .revocation
            .revoke(
                connector,
                &login.account_id,
                login.hostname.as_deref(),
                &grant.info.client_id,
                Some(grant.secret.clone()),
                token,
            )
            .await;
        if let Err(warning) = revoked {
            tracing::warn!(%warning, "could not revoke the token of a failed client-credentials connection");
        }
    }
}

/// Fails with [`FlowError::WrongAuthType`] unless the connector uses the
/// client-credentials grant.
fn require_client_credentials(
    connector: &LoadedConnector,
    manifest: &OAuthBlock,
) -> Result<(), FlowError> {
    if manifest.is_client_credentials() {
        return Ok(());
    }
    Err(FlowError::WrongAuthType {
        connector: connector.info.manifest.id.clone(),
        actual: "oauth (authorization code)".into(),
        requested: "oauth client credentials",
    })
}

/// The client secret the client-credentials grant needs: only a confidential
/// client may use it (RFC 6749 §4.4).
pub(crate) fn confidential(secret: Option<SecretString>) -> Result<SecretString, FlowError> {
    secret.ok_or_else(|| {
        FlowError::Connector(
            "the client-credentials grant needs a client secret (RFC 6749 §4.4), and `oauth-info` names none".into(),
        )
    })
}

/// The scope of a token request: `oauth-info`'s `scopes` joined with spaces,
/// else the manifest's `scope` fragment as the authorize URL would carry it
/// (`scope=a b` → `scope`; a fragment without `=` is the scope itself).
pub(crate) fn scope_param(info: &OauthValues, manifest: &OAuthBlock) -> Option<(String, String)> {
    if let Some(scopes) = &info.scopes {
        return Some(("scope".into(), scopes.join(" ")));
    }
    let fragment = manifest.scope.as_deref()?;
    Some(match fragment.split_once('=') {
        Some((name, value)) => (name.to_string(), value.to_string()),
        None => ("scope".to_string(), fragment.to_string()),
    })
}
