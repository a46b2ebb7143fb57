//! RFC 7009 revocation at the manifest's `revocationEndpoint` (with
//! `{hostname}` replaced), else the discovery document's
//! `revocation_endpoint`, authenticated as the OAuth client: at logout, and
//! to undo the grant of a login that failed after its code exchange.
//! Failures are warnings (text), never errors of the flow that asked.

use connector_abi::manifest::HOSTNAME_PLACEHOLDER;
use secrecy::SecretString;

use super::common::Connectors;
use super::managed_apps::ManagedApps;
use super::oauth_client::{OAuthClients, OAuthInfoRequest, client_auth_location_or_discovered};
use super::token_endpoint::{self, ClientAuth, Endpoint, TokenClient, TokenError};
use crate::registry::LoadedConnector;
use crate::store::{Connection, ConnectionStore};

/// The token that ends a grant, with its `token_type_hint`.
pub(crate) struct GrantToken<'a> {
    token: &'a SecretString,
    hint: &'static str,
}

impl<'a> GrantToken<'a> {
    /// The refresh token when there is one (revoking it ends the grant), else
    /// the access token.
    pub(crate) fn of(
        refresh: Option<&'a SecretString>,
        access: Option<&'a SecretString>,
    ) -> Option<Self> {
        match (refresh, access) {
            (Some(token), _) => Some(Self {
                token,
                hint: "refresh_token",
            }),
            (None, Some(token)) => Some(Self {
                token,
                hint: "access_token",
            }),
            (None, None) => None,
        }
    }
}

/// Revokes grants at the provider.
#[derive(Clone)]
pub(crate) struct Revocation {
    connectors: Connectors,
    connections: ConnectionStore,
    apps: ManagedApps,
    oauth: OAuthClients,
}

impl Revocation {
    /// Revocation of the grants of `connections`.
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

    /// Revokes the grant of a stored connection, with the client its account
    /// uses now. `Ok(false)` when the connector declares no endpoint or the
    /// connection holds no token.
    pub(crate) async fn revoke_connection(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
    ) -> Result<bool, String> {
        let discovers = connector
            .info
            .manifest
            .auth
            .oauth
            .as_ref()
            .is_some_and(|o| o.discovery_url.is_some());
        if connector.info.manifest.revocation_endpoint.is_none() && !discovers {
            return Ok(false);
        }
        let secrets = self
            .connections
            .secrets(connection)
            .await
            .map_err(|e| e.to_string())?;
        let Some(grant) = GrantToken::of(
            secrets.refresh_token.as_ref(),
            secrets.access_token.as_ref(),
        ) else {
            return Ok(false);
        };
        let managed = self
            .apps
            .for_connection(connector, &connection.account_id)
            .await
            .map_err(|e| e.to_string())?;
        let request = OAuthInfoRequest::for_connection(connection);
        let info = self
            .oauth
            .info(connector, &request, managed.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let secret = self
            .oauth
            .secret(connector, &info, managed.as_ref())
            .map_err(|e| e.to_string())?;
        let hostname = connection.hostname.as_deref();
        self.revoke(
            connector,
            &connection.account_id,
            hostname,
            &info.client_id,
            secret,
            grant,
        )
        .await
    }

    /// Revokes one token for `account_id`, authenticated as `client_id` where
    /// the manifest (else the discovery document) says. `Ok(false)` when
    /// neither the manifest nor the discovery document names an endpoint.
    pub(crate) async fn revoke(
        &self,
        connector: &LoadedConnector,
        account_id: &str,
        hostname: Option<&str>,
        client_id: &str,
        secret: Option<SecretString>,
        grant: GrantToken<'_>,
    ) -> Result<bool, String> {
        let manifest = connector
            .info
            .manifest
            .auth
            .oauth
            .as_ref()
            .ok_or("not an OAuth connector")?;
        let outbound = self.connectors.outbound();
        // The login checked the document's issuer against the declared one;
        // revocation needs only its endpoint and client authentication.
        let discovered = self
            .oauth
            .discovery()
            .document(outbound, connector, account_id, hostname, None)
            .await
            .map_err(|e| e.to_string())?;
        let endpoint = match (&connector.info.manifest.revocation_endpoint, &discovered) {
            (Some(template), _) => {
                // The stored hostname came from a user or the connector:
                // substitute it only when it is a host name and nothing else.
                let hostname = hostname.unwrap_or_default();
                if template.contains(HOSTNAME_PLACEHOLDER)
                    && !connector_abi::manifest::is_hostname(hostname)
                {
                    return Err("the connection's hostname is not a host name".into());
                }
                template.replace(HOSTNAME_PLACEHOLDER, hostname)
            }
            (None, Some(found)) => match &found.revocation_endpoint {
                Some(endpoint) => endpoint.clone(),
                None => return Ok(false),
            },
            (None, None) => return Ok(false),
        };
        let url = token_endpoint::checked_url(
            outbound,
            connector,
            account_id,
            &endpoint,
            Endpoint::Revocation,
        )
        .map_err(|e| e.to_string())?;
        let client = ClientAuth {
            client_id: client_id.to_string(),
            secret,
            location: client_auth_location_or_discovered(None, manifest, discovered.as_deref()),
        };
        TokenClient::new(outbound, connector, account_id, &client)
            .revoke(&url, grant.token, grant.hint)
            .await
            .map(|()| true)
            .map_err(|error| match error {
                TokenError::Failed(message) => message,
                refused => format!("the revocation endpoint refused: {refused}"),
            })
    }
}
