//! OAuth 2.0 token refresh (RFC 6749 §6) for a stored connection.
//!
//! The host does the refresh itself, through the same token-endpoint client
//! as the code exchange (`token_endpoint`: the URL checked against the
//! connector's policy, no redirects, audited). The connector only *declares*
//! changes through its optional `refresh` hook (App Connect
//! `checkAndRefreshAccessToken`, Membrane `refreshCredentials`): another token
//! URL, extra form parameters, where the client authenticates, and JSON
//! pointers of the token-response fields.
//!
//! Rules (design §2, RFC 9700): a response without a refresh token keeps the
//! stored one; `invalid_grant` means the grant is gone, so the connection is
//! marked `needs_reauth` and the caller gets [`RefreshError::InvalidGrant`].
//! Tokens never appear in errors or logs.
//!
//! A connection of a client-credentials connector (`grantType:
//! client_credentials`) has no refresh token: its refresh is a new
//! client-credentials grant (`client_credentials::scope_param`, the same
//! request otherwise), and nothing of it is `invalid_grant` but a refusal.
//!
//! A refresh is not single-flight by itself: two concurrent calls for one
//! connection would spend the same refresh token twice. The API and the
//! background refresher go through `fresh` (`FreshConnections`), which
//! serialises refreshes per connection across callers and replicas; the
//! authoring `oauth2` command calls it directly (one process, one caller).

use connector_abi::hook::Hook;
use connector_abi::manifest::AuthKind;
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::RefreshOverride;
use secrecy::SecretString;

use super::FlowError;
use super::call_context::saved_info;
use super::client_credentials;
use super::common::{Connectors, load, oauth_block};
use super::managed_apps::ManagedApps;
use super::oauth_client::{OAuthClients, OAuthInfoRequest, client_auth_location_or_discovered};
use super::token_endpoint::{
    self, ClientAuth, Endpoint, ResponsePaths, TokenClient, TokenError, TokenSet,
};
use crate::registry::LoadedConnector;
use crate::store::{Connection, ConnectionRef, ConnectionStatus, ConnectionStore};

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

/// Refreshes the tokens of stored connections.
#[derive(Clone)]
pub(crate) struct TokenRefresh {
    connectors: Connectors,
    connections: ConnectionStore,
    apps: ManagedApps,
    oauth: OAuthClients,
}

/// The refresh request of one connection: where, as which client, with what.
struct RefreshRequest {
    token_url: String,
    checked_url: url::Url,
    client: ClientAuth,
    extra: Vec<(String, String)>,
    paths: ResponsePaths,
    /// The scope parameter, sent with a client-credentials grant only.
    scope: Option<(String, String)>,
}

impl TokenRefresh {
    /// Refreshes of `connections`' tokens.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        apps: ManagedApps,
        oauth: OAuthClients,
    ) -> Self {
        Self {
            connectors,
            connections,
            apps,
            oauth,
        }
    }

    /// Refreshes the access token of the connection at `at` with its stored
    /// refresh token, and stores the result encrypted.
    ///
    /// Steps: `oauth-info` (client id, secret reference, token URL) → the
    /// `refresh` hook if the connector implements it (token URL, extra
    /// params, client auth location, answer paths) → the refresh through the
    /// token-endpoint client → stored with `ConnectionStore::update_tokens`
    /// (the old refresh token is kept when the response has none). When
    /// `lease_owner` is given, the new tokens are saved only while it still
    /// holds the connection's refresh lease.
    pub(crate) async fn refresh(
        &self,
        at: ConnectionRef<'_>,
        lease_owner: Option<&str>,
    ) -> Result<Refreshed, RefreshError> {
        let connection = load(&self.connections, at).await?;
        if connection.status == ConnectionStatus::Revoked {
            return Err(
                FlowError::NotUsable(format!("connection `{}` is logged out", at.id)).into(),
            );
        }
        let connector =
            self.connectors
                .of_kind(&connection.connector_id, AuthKind::OAuth, "oauth")?;
        // A client-credentials connection is renewed by a new grant.
        let refresh_token = if oauth_block(&connector).is_client_credentials() {
            None
        } else {
            let secrets = self.connections.secrets(&connection).await?;
            let token = secrets.refresh_token;
            Some(token.ok_or_else(|| RefreshError::NoRefreshToken(at.id.to_string()))?)
        };
        let request = self.request(&connector, &connection).await?;
        let sent = self
            .send(&connector, at, &request, refresh_token.as_ref())
            .await;
        let mut tokens = match sent {
            Err(TokenError::InvalidGrant(detail)) => {
                self.connections
                    .set_status(at, ConnectionStatus::NeedsReauth)
                    .await?;
                return Err(RefreshError::InvalidGrant(detail));
            }
            other => other.map_err(FlowError::from)?,
        };
        if refresh_token.is_none() {
            tokens.refresh_token = None; // as at the connection's creation
        }
        let rotated = tokens.refresh_token.is_some();
        let default_lifetime = oauth_block(&connector).default_token_lifetime_seconds;
        self.store(&connection, tokens, default_lifetime, lease_owner)
            .await?;
        Ok(Refreshed {
            connection: load(&self.connections, at).await?,
            refresh_token_rotated: rotated,
            token_url: request.token_url,
        })
    }

    /// The same client as the login (`oauth-info`, with the account's
    /// admin-managed application when the connector uses one), changed by the
    /// `refresh` hook.
    async fn request(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<RefreshRequest, FlowError> {
        let managed = self
            .apps
            .for_connection(connector, &connection.account_id)
            .await?;
        let info = self
            .oauth
            .info(
                connector,
                &OAuthInfoRequest::for_connection(connection),
                managed.as_ref(),
            )
            .await?;
        let overrides = refresh_override(connector, connection).await?;
        let discovered = (self.oauth)
            .discovered(
                connector,
                &OAuthInfoRequest::for_connection(connection),
                &info,
                managed.as_ref(),
            )
            .await?;
        let token_url = overrides
            .as_ref()
            .and_then(|o| o.token_url.clone())
            .unwrap_or_else(|| info.access_token_uri.clone());
        let outbound = self.connectors.outbound();
        let checked_url = token_endpoint::checked_url(
            outbound,
            connector,
            &connection.account_id,
            &token_url,
            Endpoint::Refresh,
        )?;
        let block = oauth_block(connector);
        let mut secret = self.oauth.secret(connector, &info, managed.as_ref())?;
        if block.is_client_credentials() {
            secret = Some(client_credentials::confidential(secret)?);
        }
        let scope = client_credentials::scope_param(&info, &block);
        let client = ClientAuth {
            secret,
            client_id: info.client_id,
            location: client_auth_location_or_discovered(
                overrides.as_ref().and_then(|o| o.client_auth_location),
                &block,
                discovered.as_deref(),
            ),
        };
        let paths = ResponsePaths::from_override(overrides.as_ref());
        Ok(RefreshRequest {
            token_url,
            checked_url,
            client,
            extra: overrides.map(|o| o.extra_params).unwrap_or_default(),
            paths,
            scope,
        })
    }

    /// Sends the refresh through the checked, audited token-endpoint client:
    /// with the refresh token, or without one a client-credentials grant.
    async fn send(
        &self,
        connector: &LoadedConnector,
        at: ConnectionRef<'_>,
        request: &RefreshRequest,
        refresh_token: Option<&SecretString>,
    ) -> Result<TokenSet, TokenError> {
        let outbound = self.connectors.outbound();
        let client = TokenClient::new(outbound, connector, at.account_id, &request.client);
        let Some(refresh_token) = refresh_token else {
            return client
                .client_credentials(
                    &request.checked_url,
                    request.scope.as_ref(),
                    &request.extra,
                    reqwest::header::HeaderMap::new(),
                    &request.paths,
                )
                .await;
        };
        client
            .refresh(
                &request.checked_url,
                refresh_token,
                &request.extra,
                &request.paths,
            )
            .await
    }

    /// Stores the new tokens; fails when the connection changed meanwhile
    /// (logged out, marked for re-auth, or refreshed by another holder). An
    /// answer without a lifetime gets the manifest's
    /// `defaultTokenLifetimeSeconds`, if it sets one.
    async fn store(
        &self,
        connection: &Connection,
        tokens: TokenSet,
        default_lifetime: Option<u64>,
        lease_owner: Option<&str>,
    ) -> Result<(), RefreshError> {
        let expires_at = tokens
            .expires_in
            .or(default_lifetime)
            .map(crate::store::expiry_after);
        let stored = self
            .connections
            .update_tokens(
                connection,
                &tokens.access_token,
                tokens.refresh_token.as_ref(),
                expires_at,
                lease_owner,
            )
            .await?;
        if stored {
            Ok(())
        } else {
            Err(FlowError::NotUsable(format!(
                "connection `{}` was logged out, marked for re-auth, or refreshed by another holder during the refresh",
                connection.id
            ))
            .into())
        }
    }
}

/// The connector's `refresh` hook, if it implements it.
async fn refresh_override(
    connector: &LoadedConnector,
    connection: &Connection,
) -> Result<Option<RefreshOverride>, FlowError> {
    if !connector.prepared.implements(Hook::Refresh) {
        return Ok(None);
    }
    let ctx = CallContext {
        account_id: Some(connection.account_id.clone()),
        ..CallContext::default()
    };
    let overrides = connector
        .prepared
        .refresh(&ctx, saved_info(connection))
        .await
        .result?;
    Ok(Some(overrides))
}
