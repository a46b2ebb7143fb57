//! Bodies of the admin routes: admin-managed OAuth applications and API-key
//! form fields.

use connector_abi::manifest::{AdminManagedOAuth, ManagedScope};
use serde::{Deserialize, Serialize};

use crate::flows::{self, MASK};
use crate::store::Slot;

/// The OAuth application values an account admin submits. Which are required
/// depends on the connector (`auth.oauth.adminManaged.required`). `Debug`
/// never shows the secret.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedOAuthInput {
    /// Client id of the tenant's application.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Its client secret (write-only: never shown again).
    #[serde(default)]
    pub client_secret: Option<String>,
    /// The tenant's token endpoint.
    #[serde(default)]
    pub token_url: Option<String>,
    /// The tenant's authorization endpoint.
    #[serde(default)]
    pub authorization_url: Option<String>,
    /// The redirect URI registered with the application.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The tenant's CRM hostname.
    #[serde(default)]
    pub hostname: Option<String>,
    /// The tenant's issuer identifier (RFC 8414, e.g.
    /// `https://sso.example.com/realms/acme`): a callback's `iss` must equal
    /// it exactly. Overrides the connector's `auth.oauth.issuer`.
    #[serde(default)]
    pub issuer: Option<String>,
}

impl std::fmt::Debug for ManagedOAuthInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedOAuthInput")
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| MASK))
            .field("token_url", &self.token_url)
            .field("authorization_url", &self.authorization_url)
            .field("redirect_uri", &self.redirect_uri)
            .field("hostname", &self.hostname)
            .field("issuer", &self.issuer)
            .finish()
    }
}

impl From<ManagedOAuthInput> for flows::ManagedOAuthInput {
    fn from(input: ManagedOAuthInput) -> Self {
        Self {
            client_id: input.client_id,
            client_secret: input.client_secret,
            token_url: input.token_url,
            authorization_url: input.authorization_url,
            redirect_uri: input.redirect_uri,
            hostname: input.hostname,
            issuer: input.issuer,
        }
    }
}

/// A stored application as an admin sees it: the secret masked.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedOAuthAppView {
    /// `pending` (waiting for a first successful login) or `active`.
    pub status: Slot,
    /// Increases with every submission.
    pub version: i64,
    /// Client id.
    pub client_id: Option<String>,
    /// `********` when a secret is stored.
    pub client_secret: Option<String>,
    /// Token endpoint.
    pub token_url: Option<String>,
    /// Authorization endpoint.
    pub authorization_url: Option<String>,
    /// Redirect URI.
    pub redirect_uri: Option<String>,
    /// Hostname.
    pub hostname: Option<String>,
    /// Issuer identifier.
    pub issuer: Option<String>,
    /// When a pending application expires (Unix seconds).
    pub expires_at: Option<i64>,
    /// The API key id that submitted it.
    pub updated_by: String,
    /// Unix seconds.
    pub updated_at: i64,
}

impl From<flows::ManagedOAuthAppView> for ManagedOAuthAppView {
    fn from(app: flows::ManagedOAuthAppView) -> Self {
        Self {
            status: app.status,
            version: app.version,
            client_id: app.client_id,
            client_secret: app.client_secret,
            token_url: app.token_url,
            authorization_url: app.authorization_url,
            redirect_uri: app.redirect_uri,
            hostname: app.hostname,
            issuer: app.issuer,
            expires_at: app.expires_at,
            updated_by: app.updated_by,
            updated_at: app.updated_at,
        }
    }
}

/// An account's admin-managed OAuth set-up for one connector.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedOAuthView {
    /// The connector.
    pub connector_id: String,
    /// What the connector requires and how to find it.
    pub setup: AdminManagedOAuth,
    /// The application users connect with.
    pub active: Option<ManagedOAuthAppView>,
    /// Newer values waiting for their first successful login (used first).
    pub pending: Option<ManagedOAuthAppView>,
}

impl From<flows::ManagedOAuthView> for ManagedOAuthView {
    fn from(view: flows::ManagedOAuthView) -> Self {
        Self {
            connector_id: view.connector_id,
            setup: view.setup,
            active: view.active.map(Into::into),
            pending: view.pending.map(Into::into),
        }
    }
}

/// The answer to a submission.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedOAuthSaved {
    /// The stored values, pending until a login succeeds with them.
    pub pending: ManagedOAuthAppView,
    /// Connections of the account to this connector now needing re-auth.
    pub invalidated_connections: u64,
    /// What happens next, in words.
    pub message: String,
}

impl From<flows::ManagedOAuthSaved> for ManagedOAuthSaved {
    fn from(saved: flows::ManagedOAuthSaved) -> Self {
        Self {
            pending: saved.pending.into(),
            invalidated_connections: saved.invalidated_connections,
            message: saved.message,
        }
    }
}

/// One managed form field as an admin sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedFieldView {
    /// The field's `const`.
    #[serde(rename = "const")]
    pub key: String,
    /// Its label.
    pub title: String,
    /// The login needs it.
    pub required: bool,
    /// Hidden from normal users.
    pub hidden: bool,
    /// A value is stored.
    pub set: bool,
    /// The stored value (`********` for the API key and every secret field).
    pub value: Option<String>,
}

impl From<flows::ManagedFieldView> for ManagedFieldView {
    fn from(field: flows::ManagedFieldView) -> Self {
        Self {
            key: field.key,
            title: field.title,
            required: field.required,
            hidden: field.hidden,
            set: field.set,
            value: field.value,
        }
    }
}

/// The managed fields of one scope (an account, or a user of it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ManagedFields {
    /// The connector.
    pub connector_id: String,
    /// `account` or `user`.
    pub scope: ManagedScope,
    /// The fields of that scope.
    pub fields: Vec<ManagedFieldView>,
}

impl From<flows::ManagedFields> for ManagedFields {
    fn from(fields: flows::ManagedFields) -> Self {
        Self {
            connector_id: fields.connector_id,
            scope: fields.scope,
            fields: fields.fields.into_iter().map(Into::into).collect(),
        }
    }
}

/// Values to set (`null` clears one). `Debug` shows field names only.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ManagedFieldsUpdate {
    /// By field `const`.
    #[schema(value_type = Object)]
    pub values: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ManagedFieldsUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedFieldsUpdate")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl From<ManagedFieldsUpdate> for flows::ManagedFieldsUpdate {
    fn from(update: ManagedFieldsUpdate) -> Self {
        Self {
            values: update.values,
        }
    }
}
