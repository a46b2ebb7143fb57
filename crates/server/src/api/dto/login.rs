//! Bodies of the login routes: the auth page, API-key login, OAuth start and
//! callback, and client-credentials connections.

use connector_abi::manifest::{ApiKeyPage, AuthKind, OAuthBlock};
use serde::{Deserialize, Serialize};

use crate::flows;
use crate::store::Connection;

/// An API-key login request. `Debug` shows field names only (the form holds
/// the API key and the secret fields).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyLogin {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// CRM hostname, when the connector is regional.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The form values by field `const` (the API key is `apiKey`).
    #[schema(value_type = Object)]
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Ignore admin-managed values: the user fills the full form (the
    /// fallback after a managed login failed).
    #[serde(default)]
    pub manual: bool,
}

impl std::fmt::Debug for ApiKeyLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyLogin")
            .field("account_id", &self.account_id)
            .field("user_id", &self.user_id)
            .field("hostname", &self.hostname)
            .field("fields", &self.fields.keys().collect::<Vec<_>>())
            .field("manual", &self.manual)
            .finish()
    }
}

impl From<ApiKeyLogin> for flows::ApiKeyLogin {
    fn from(login: ApiKeyLogin) -> Self {
        Self {
            account_id: login.account_id,
            user_id: login.user_id,
            hostname: login.hostname,
            fields: login.fields,
            manual: login.manual,
        }
    }
}

/// A client-credentials connection request: whose connection it is. The
/// host obtains the token itself; no user is redirected.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClientCredentialsLogin {
    /// Platform account.
    pub account_id: String,
    /// Platform user the connection belongs to.
    pub user_id: String,
    /// CRM hostname (regional connectors).
    #[serde(default)]
    pub hostname: Option<String>,
}

impl From<ClientCredentialsLogin> for flows::ClientCredentialsLogin {
    fn from(login: ClientCredentialsLogin) -> Self {
        Self {
            account_id: login.account_id,
            user_id: login.user_id,
            hostname: login.hostname,
        }
    }
}

/// What a client renders to log in.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AuthPageView {
    /// The connector.
    pub connector_id: String,
    /// Its display name.
    pub name: String,
    /// `oauth` or `apiKey`.
    pub auth_type: AuthKind,
    /// OAuth button data (client-visible values only).
    pub oauth: Option<OAuthBlock>,
    /// The API-key form: without hidden managed fields, or every field for
    /// the manual form.
    pub api_key: Option<ApiKeyPage>,
}

impl From<flows::AuthPageView> for AuthPageView {
    fn from(view: flows::AuthPageView) -> Self {
        Self {
            connector_id: view.connector_id,
            name: view.name,
            auth_type: view.auth_type,
            oauth: view.oauth,
            api_key: view.api_key,
        }
    }
}

/// Start of an OAuth login: the `getOauthInfo` inputs plus who is connecting.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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

impl From<OAuthStart> for flows::OAuthStart {
    fn from(start: OAuthStart) -> Self {
        Self {
            account_id: start.account_id,
            user_id: start.user_id,
            hostname: start.hostname,
            token_url: start.token_url,
            proxy_id: start.proxy_id,
            proxy_config: start.proxy_config,
            user_email: start.user_email,
            is_from_mcp: start.is_from_mcp,
        }
    }
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

impl From<flows::OAuthStarted> for OAuthStarted {
    fn from(started: flows::OAuthStarted) -> Self {
        Self {
            authorize_url: started.authorize_url,
            state: started.state,
            expires_at: started.expires_at,
        }
    }
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

impl From<flows::OAuthConnected> for OAuthConnected {
    fn from(connected: flows::OAuthConnected) -> Self {
        Self {
            connection: connected.connection,
            custom_state: connected.custom_state,
        }
    }
}
