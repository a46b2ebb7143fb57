//! A connector's OAuth client for one account: what `oauth-info` returns
//! (with the account's admin-managed application applied over it), the client
//! secret the host resolves, and where the client authenticates. The login,
//! the refresh and revocation all start here, and so does OAuth discovery
//! (`auth.oauth.discoveryUrl`, [`super::discovery`]): what `oauth-info`, the
//! managed application and the manifest leave out comes from the provider's
//! metadata.

use connector_abi::manifest::{ClientAuthLocation as ManifestAuthLocation, OAuthBlock};
use connector_sandbox::capabilities::http::SecretPurpose;
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::{
    ClientAuthLocation, ClientSecretRef, ManagedOauthApp, OauthInfoInput, OauthValues,
};
use secrecy::SecretString;
use std::sync::Arc;

use super::FlowError;
use super::common::{Connectors, oauth_block};
use super::discovery::{Discovered, Discovery};
use super::oauth_start::OAuthStart;
use crate::registry::LoadedConnector;
use crate::store::{Connection, ManagedOAuthApp};

/// What `oauth-info` is called with: the inputs of the login (at the start
/// and the callback) or of the stored connection (refresh, revocation).
#[derive(Debug, Clone, Default)]
pub(crate) struct OAuthInfoRequest {
    /// Platform account.
    pub(crate) account_id: String,
    /// CRM hostname (regional connectors).
    pub(crate) hostname: Option<String>,
    /// Token URL saved with the user.
    pub(crate) token_url: Option<String>,
    /// Proxy connector id.
    pub(crate) proxy_id: Option<String>,
    /// Proxy configuration (any JSON).
    pub(crate) proxy_config: Option<serde_json::Value>,
    /// The user's email.
    pub(crate) user_email: Option<String>,
    /// Started from MCP.
    pub(crate) is_from_mcp: bool,
}

impl OAuthInfoRequest {
    /// The inputs of an existing connection: its account and hostname.
    pub(crate) fn for_connection(connection: &Connection) -> Self {
        Self {
            account_id: connection.account_id.clone(),
            hostname: connection.hostname.clone(),
            ..Self::default()
        }
    }

    /// The hook's input, with the managed application's values as defaults.
    fn input(&self, managed: Option<&ManagedOAuthApp>) -> OauthInfoInput {
        let app = managed.map(|m| &m.values);
        OauthInfoInput {
            token_url: self
                .token_url
                .clone()
                .or_else(|| app.and_then(|a| a.token_url.clone())),
            hostname: self
                .hostname
                .clone()
                .or_else(|| app.and_then(|a| a.hostname.clone())),
            account_id: Some(self.account_id.clone()),
            proxy_id: self.proxy_id.clone(),
            proxy_config: self.proxy_config.as_ref().map(|v| v.to_string()),
            user_email: self.user_email.clone(),
            is_from_mcp: self.is_from_mcp,
            managed: app.map(|a| ManagedOauthApp {
                client_id: a.client_id.clone(),
                token_url: a.token_url.clone(),
                authorization_url: a.authorization_url.clone(),
                redirect_uri: a.redirect_uri.clone(),
                hostname: a.hostname.clone(),
            }),
        }
    }
}

impl From<&OAuthStart> for OAuthInfoRequest {
    fn from(start: &OAuthStart) -> Self {
        Self {
            account_id: start.account_id.clone(),
            hostname: start.hostname.clone(),
            token_url: start.token_url.clone(),
            proxy_id: start.proxy_id.clone(),
            proxy_config: start.proxy_config.clone(),
            user_email: start.user_email.clone(),
            is_from_mcp: start.is_from_mcp,
        }
    }
}

/// Resolves connectors' OAuth clients.
#[derive(Clone)]
pub(crate) struct OAuthClients {
    connectors: Connectors,
    discovery: Discovery,
}

impl OAuthClients {
    /// Clients of `connectors`.
    pub(crate) fn new(connectors: Connectors) -> Self {
        Self {
            connectors,
            discovery: Discovery::default(),
        }
    }

    /// `oauth-info` with the account's managed application (if any) passed
    /// in and applied over the answer; its `failMessage` stops the flow. The
    /// token and authorize endpoints nothing declares come from the
    /// discovery document, when the connector has one.
    pub(crate) async fn info(
        &self,
        connector: &LoadedConnector,
        request: &OAuthInfoRequest,
        managed: Option<&ManagedOAuthApp>,
    ) -> Result<OauthValues, FlowError> {
        let ctx = CallContext {
            account_id: Some(request.account_id.clone()),
            ..CallContext::default()
        };
        let mut info = connector
            .prepared
            .oauth_info(&ctx, request.input(managed))
            .await
            .result?;
        if let Some(message) = info.fail_message.clone() {
            return Err(FlowError::OAuthFailed(message));
        }
        apply_managed(&mut info, managed);
        if let Some(discovered) = self.discovered(connector, request, &info, managed).await? {
            discovered.fill(&mut info, &oauth_block(connector));
        }
        Ok(info)
    }

    /// The cache of discovery documents, for callers without `oauth-info`
    /// values at hand (revocation).
    pub(crate) fn discovery(&self) -> &Discovery {
        &self.discovery
    }

    /// The connector's discovery document for this login or connection
    /// (cached), checked against the declared issuer (the managed
    /// application's, else the manifest's); `None` without `discoveryUrl`.
    /// `{hostname}` is the hostname `oauth-info` answered, else the request's.
    pub(crate) async fn discovered(
        &self,
        connector: &LoadedConnector,
        request: &OAuthInfoRequest,
        info: &OauthValues,
        managed: Option<&ManagedOAuthApp>,
    ) -> Result<Option<Arc<Discovered>>, FlowError> {
        let manifest = connector.info.manifest.auth.oauth.as_ref();
        let declared = managed
            .and_then(|m| m.values.issuer.as_deref())
            .or_else(|| manifest.and_then(|o| o.issuer.as_deref()));
        let hostname = info.hostname.as_deref().or(request.hostname.as_deref());
        Ok(self
            .discovery
            .document(
                self.connectors.outbound(),
                connector,
                &request.account_id,
                hostname,
                declared,
            )
            .await?)
    }

    /// The client secret: the managed application's when there is one, else
    /// the host secret `oauth-info` names (if it is declared by the connector
    /// and granted to it for `client-secret`).
    pub(crate) fn secret(
        &self,
        connector: &LoadedConnector,
        info: &OauthValues,
        managed: Option<&ManagedOAuthApp>,
    ) -> Result<Option<SecretString>, FlowError> {
        if let Some(app) = managed {
            return Ok(app.values.client_secret.clone());
        }
        let outbound = self.connectors.outbound();
        match &info.client_secret {
            ClientSecretRef::HostSecret(name) => outbound
                .host_secret(
                    connector.prepared.policy(),
                    &connector.info.manifest.id,
                    name,
                    SecretPurpose::ClientSecret,
                )
                .map(Some)
                .map_err(|reason| FlowError::Connector(format!("host {reason}"))),
            ClientSecretRef::Managed => Err(FlowError::ManagedCredentialsMissing(
                "the connector asks for an admin-managed client secret, but it does not declare `auth.oauth.adminManaged`".into(),
            )),
            ClientSecretRef::None => Ok(None),
        }
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

/// Where the client authenticates at the token endpoint: the hook's choice,
/// else the manifest's, else [`DEFAULT_CLIENT_AUTH`] (the flows use
/// [`client_auth_location_or_discovered`], which this is without a discovery
/// document).
#[cfg(test)]
fn client_auth_location(
    from_hook: Option<ClientAuthLocation>,
    manifest: &OAuthBlock,
) -> ManifestAuthLocation {
    client_auth_location_or_discovered(from_hook, manifest, None)
}

/// [`client_auth_location`], with the method the discovery document leads
/// to (if any) before the default: the hook's choice, else the manifest's,
/// else the discovered one, else [`DEFAULT_CLIENT_AUTH`].
pub(crate) fn client_auth_location_or_discovered(
    from_hook: Option<ClientAuthLocation>,
    manifest: &OAuthBlock,
    discovered: Option<&Discovered>,
) -> ManifestAuthLocation {
    from_hook
        .map(|l| match l {
            ClientAuthLocation::Header => ManifestAuthLocation::Header,
            ClientAuthLocation::Body => ManifestAuthLocation::Body,
            ClientAuthLocation::Both => ManifestAuthLocation::Both,
        })
        .or(manifest.client_auth_location)
        .or(discovered.and_then(|d| d.client_auth))
        .unwrap_or(DEFAULT_CLIENT_AUTH)
}

/// Where the client authenticates when neither a hook nor the manifest says:
/// HTTP Basic only. RFC 6749 §2.3 allows one method per request, and strict
/// servers refuse a request that carries two ("client authentication must
/// only be provided using one mechanism"); §2.3.1 makes Basic the one every
/// server must support. `both` is sent only when a connector asks for it.
pub const DEFAULT_CLIENT_AUTH: ManifestAuthLocation = ManifestAuthLocation::Header;

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest(location: Option<&str>) -> OAuthBlock {
        let mut block = serde_json::json!({
            "authUrl": "https://crm.example.com/authorize", "clientId": "c",
            "redirectUri": "https://app.example.com/cb"
        });
        if let Some(location) = location {
            block["clientAuthLocation"] = location.into();
        }
        serde_json::from_value(block).unwrap()
    }

    #[test]
    fn one_client_auth_method_unless_both_is_asked_for() {
        assert_eq!(
            client_auth_location(None, &manifest(None)),
            ManifestAuthLocation::Header
        );
        assert_eq!(
            client_auth_location(None, &manifest(Some("both"))),
            ManifestAuthLocation::Both
        );
        assert_eq!(
            client_auth_location(None, &manifest(Some("body"))),
            ManifestAuthLocation::Body
        );
        assert_eq!(
            client_auth_location(Some(ClientAuthLocation::Both), &manifest(None)),
            ManifestAuthLocation::Both
        );
    }
}
