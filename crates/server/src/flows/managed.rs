//! Admin-managed credentials (App Connect seeds 001/002).
//!
//! - **OAuth**: an account admin submits the tenant's OAuth application
//!   (`auth.oauth.adminManaged` lists what is required). It is stored
//!   encrypted as *pending* for 24 hours; the first successful login of the
//!   account promotes it to *active*. Logins use the pending application when
//!   there is one, else the active one. Submitting new values marks the
//!   account's existing connections to the connector as needing re-auth.
//! - **API-key fields**: form fields marked `managed` are filled by an admin
//!   per account or per user (`managedScope`); the API-key login fills them in
//!   before `user-info`.

use secrecy::{ExposeSecret, SecretString};

use connector_abi::manifest::{
    AdminManagedOAuth, AuthKind, FormField, ManagedOAuthValue, ManagedScope,
};

use super::FlowError;
use super::api_key::as_text;
use super::common::{Connectors, Notifier};
use crate::events::EventKind;
use crate::registry::LoadedConnector;
use crate::store::{ConnectionStore, ManagedOAuthApp, ManagedStore, OAuthAppValues, Slot};

/// What an admin shows in place of a stored secret.
pub const MASK: &str = "********";

/// The OAuth application values an account admin submits. Which are required
/// depends on the connector (`auth.oauth.adminManaged.required`). `Debug`
/// never shows the secret.
#[derive(Clone, Default)]
pub struct ManagedOAuthInput {
    /// Client id of the tenant's application.
    pub client_id: Option<String>,
    /// Its client secret (write-only: never shown again).
    pub client_secret: Option<String>,
    /// The tenant's token endpoint.
    pub token_url: Option<String>,
    /// The tenant's authorization endpoint.
    pub authorization_url: Option<String>,
    /// The redirect URI registered with the application.
    pub redirect_uri: Option<String>,
    /// The tenant's CRM hostname.
    pub hostname: Option<String>,
    /// The tenant's issuer identifier (RFC 8414), compared exactly with a
    /// callback's `iss`; overrides the manifest's `auth.oauth.issuer`.
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

/// A stored application as an admin sees it: the secret masked.
#[derive(Debug)]
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

impl From<&ManagedOAuthApp> for ManagedOAuthAppView {
    fn from(app: &ManagedOAuthApp) -> Self {
        let v = &app.values;
        Self {
            status: app.slot,
            version: app.version,
            client_id: v.client_id.clone(),
            client_secret: v.client_secret.as_ref().map(|_| MASK.to_string()),
            token_url: v.token_url.clone(),
            authorization_url: v.authorization_url.clone(),
            redirect_uri: v.redirect_uri.clone(),
            hostname: v.hostname.clone(),
            issuer: v.issuer.clone(),
            expires_at: app.expires_at,
            updated_by: app.updated_by.clone(),
            updated_at: app.updated_at,
        }
    }
}

/// An account's admin-managed OAuth set-up for one connector.
#[derive(Debug)]
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

/// The answer to a submission.
#[derive(Debug)]
pub struct ManagedOAuthSaved {
    /// The stored values, pending until a login succeeds with them.
    pub pending: ManagedOAuthAppView,
    /// Connections of the account to this connector now needing re-auth.
    pub invalidated_connections: u64,
    /// What happens next, in words.
    pub message: String,
}

/// One managed form field as an admin sees it.
#[derive(Debug)]
pub struct ManagedFieldView {
    /// The field's `const`.
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

/// The managed fields of one scope (an account, or a user of it).
#[derive(Debug)]
pub struct ManagedFields {
    /// The connector.
    pub connector_id: String,
    /// `account` or `user`.
    pub scope: ManagedScope,
    /// The fields of that scope.
    pub fields: Vec<ManagedFieldView>,
}

/// Values to set (`null` clears one) by field `const`. `Debug` shows field
/// names only.
pub struct ManagedFieldsUpdate {
    /// By field `const`.
    pub values: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for ManagedFieldsUpdate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ManagedFieldsUpdate")
            .field("values", &self.values.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// What account admins manage: OAuth applications and API-key form fields.
#[derive(Clone)]
pub(crate) struct ManagedCredentials {
    connectors: Connectors,
    managed: ManagedStore,
    connections: ConnectionStore,
    notifier: Notifier,
}

impl ManagedCredentials {
    /// Credentials stored in `managed`; changes invalidate `connections`.
    pub(crate) fn new(
        connectors: Connectors,
        managed: ManagedStore,
        connections: ConnectionStore,
        notifier: Notifier,
    ) -> Self {
        Self {
            connectors,
            managed,
            connections,
            notifier,
        }
    }

    /// A loaded connector that declares `auth.oauth.adminManaged`.
    fn admin_managed_connector(
        &self,
        connector_id: &str,
    ) -> Result<(std::sync::Arc<LoadedConnector>, AdminManagedOAuth), FlowError> {
        let connector = self
            .connectors
            .of_kind(connector_id, AuthKind::OAuth, "oauth")?;
        let setup = connector
            .info
            .manifest
            .auth
            .oauth
            .as_ref()
            .and_then(|o| o.admin_managed.clone())
            .ok_or_else(|| {
                FlowError::NotManaged(format!(
                    "connector `{connector_id}` does not use admin-managed OAuth (no `auth.oauth.adminManaged`)"
                ))
            })?;
        Ok((connector, setup))
    }

    /// The account's admin-managed OAuth set-up for a connector.
    pub(crate) async fn managed_oauth(
        &self,
        account_id: &str,
        connector_id: &str,
    ) -> Result<ManagedOAuthView, FlowError> {
        let (_, setup) = self.admin_managed_connector(connector_id)?;
        let (active, pending) = self.managed.oauth_apps(account_id, connector_id).await?;
        Ok(ManagedOAuthView {
            connector_id: connector_id.to_string(),
            setup,
            active: active.as_ref().map(Into::into),
            pending: pending.as_ref().map(Into::into),
        })
    }

    /// Stores an admin's OAuth application as pending and marks the
    /// account's connections to the connector as needing re-auth. Nothing is
    /// stored when a value is missing or invalid (the error names it).
    pub(crate) async fn set_managed_oauth(
        &self,
        account_id: &str,
        connector_id: &str,
        input: ManagedOAuthInput,
        updated_by: &str,
    ) -> Result<ManagedOAuthSaved, FlowError> {
        let (connector, setup) = self.admin_managed_connector(connector_id)?;
        let values = self.checked_app_values(&connector, &setup, input)?;
        let app = self
            .managed
            .set_pending(account_id, connector_id, &values, updated_by)
            .await?;
        let invalidated = self
            .invalidate_connections(
                account_id,
                connector_id,
                "the account's admin-managed OAuth application changed",
            )
            .await?;
        let message = if invalidated > 0 {
            format!(
                "stored as pending; {invalidated} existing connection(s) of this account now need re-auth; the first successful login makes these values active"
            )
        } else {
            "stored as pending; the first successful login makes these values active".to_string()
        };
        Ok(ManagedOAuthSaved {
            pending: (&app).into(),
            invalidated_connections: invalidated,
            message,
        })
    }

    /// Removes the account's application (active and pending) and marks its
    /// connections to the connector as needing re-auth; returns how many.
    pub(crate) async fn delete_managed_oauth(
        &self,
        account_id: &str,
        connector_id: &str,
    ) -> Result<u64, FlowError> {
        self.admin_managed_connector(connector_id)?;
        let removed = self
            .managed
            .delete_oauth_apps(account_id, connector_id)
            .await?;
        if removed == 0 {
            return Err(FlowError::NotManaged(format!(
                "account `{account_id}` has no managed OAuth application for `{connector_id}`"
            )));
        }
        self.invalidate_connections(
            account_id,
            connector_id,
            "the account's admin-managed OAuth application was removed",
        )
        .await
    }

    /// Marks the account's active connections to the connector as needing
    /// re-auth, with one `connection.needs_reauth` event each; returns how many.
    async fn invalidate_connections(
        &self,
        account_id: &str,
        connector_id: &str,
        reason: &str,
    ) -> Result<u64, FlowError> {
        let invalidated = self
            .connections
            .invalidate_account_connector(account_id, connector_id)
            .await?;
        for connection in &invalidated {
            self.notifier
                .emit(EventKind::NeedsReauth, connection, reason)
                .await;
        }
        Ok(invalidated.len() as u64)
    }

    fn checked_app_values(
        &self,
        connector: &LoadedConnector,
        setup: &AdminManagedOAuth,
        input: ManagedOAuthInput,
    ) -> Result<OAuthAppValues, FlowError> {
        let trimmed = |v: Option<String>| v.map(|s| s.trim().to_string()).filter(|s| !s.is_empty());
        let values = OAuthAppValues {
            client_id: trimmed(input.client_id),
            client_secret: trimmed(input.client_secret).map(SecretString::from),
            token_url: trimmed(input.token_url),
            authorization_url: trimmed(input.authorization_url),
            redirect_uri: trimmed(input.redirect_uri),
            hostname: trimmed(input.hostname),
            issuer: trimmed(input.issuer),
        };
        super::oauth_start::checked_hostname(values.hostname.as_deref())?;
        for required in &setup.required {
            let present = match required {
                ManagedOAuthValue::ClientId => values.client_id.is_some(),
                ManagedOAuthValue::ClientSecret => values.client_secret.is_some(),
                ManagedOAuthValue::TokenUrl => values.token_url.is_some(),
                ManagedOAuthValue::AuthorizationUrl => values.authorization_url.is_some(),
                ManagedOAuthValue::RedirectUri => values.redirect_uri.is_some(),
                ManagedOAuthValue::Hostname => values.hostname.is_some(),
                ManagedOAuthValue::Issuer => values.issuer.is_some(),
            };
            if !present {
                return Err(FlowError::field_error(
                    required.as_str(),
                    "required by this connector",
                ));
            }
        }
        let outbound = self.connectors.outbound();
        if let Some(url) = &values.token_url {
            outbound
                .check_url(connector.prepared.policy(), url)
                .map_err(|e| {
                    FlowError::field_error(
                        "tokenUrl",
                        format!("not an endpoint this connector may call: {e:?}"),
                    )
                })?;
        }
        for (field, value) in [
            ("authorizationUrl", &values.authorization_url),
            ("redirectUri", &values.redirect_uri),
        ] {
            if let Some(value) = value {
                let url = url::Url::parse(value).map_err(|e| {
                    FlowError::field_error(field, format!("not an absolute URL: {e}"))
                })?;
                if !matches!(url.scheme(), "https" | "http") {
                    return Err(FlowError::field_error(field, "must be an http(s) URL"));
                }
            }
        }
        if let Some(issuer) = &values.issuer {
            connector_abi::manifest::check_issuer(issuer)
                .map_err(|message| FlowError::field_error("issuer", message))?;
        }
        if let Some(hostname) = &values.hostname {
            let valid =
                url::Host::parse(hostname).is_ok() && !hostname.contains(['/', ':', '@', '?', '#']);
            if !valid {
                return Err(FlowError::field_error(
                    "hostname",
                    "a host name such as `eu.crm.example.com` (no scheme, port or path)",
                ));
            }
        }
        Ok(values)
    }

    /// The managed fields of one scope, as an admin sees them.
    pub(crate) async fn managed_fields(
        &self,
        account_id: &str,
        connector_id: &str,
        user_id: Option<&str>,
    ) -> Result<ManagedFields, FlowError> {
        let (fields, scope) = self.managed_field_defs(connector_id, user_id)?;
        let stored = self
            .managed
            .fields(account_id, connector_id, user_id)
            .await?;
        Ok(ManagedFields {
            connector_id: connector_id.to_string(),
            scope,
            fields: fields
                .iter()
                .map(|f| {
                    // A secret field (the API key included) is reported as
                    // set, never shown.
                    let value = stored.get(&f.key).map(|v| {
                        if f.is_secret() {
                            MASK.to_string()
                        } else {
                            v.expose_secret().to_string()
                        }
                    });
                    ManagedFieldView {
                        key: f.key.clone(),
                        title: f.title.clone(),
                        required: f.required,
                        hidden: f.hidden,
                        set: value.is_some(),
                        value,
                    }
                })
                .collect(),
        })
    }

    /// Sets or clears managed field values of one scope, all or none.
    pub(crate) async fn set_managed_fields(
        &self,
        account_id: &str,
        connector_id: &str,
        user_id: Option<&str>,
        update: ManagedFieldsUpdate,
        updated_by: &str,
    ) -> Result<ManagedFields, FlowError> {
        let (fields, scope) = self.managed_field_defs(connector_id, user_id)?;
        let scope_name = format!("{scope:?}").to_lowercase();
        let mut values = Vec::new();
        for (key, value) in &update.values {
            let path = format!("values.{key}");
            let field = fields.iter().find(|f| &f.key == key).ok_or_else(|| {
                let names: Vec<&str> = fields.iter().map(|f| f.key.as_str()).collect();
                FlowError::field_error(
                    &path,
                    format!(
                        "not one of the {scope_name}-scoped managed fields of `{connector_id}`: {}",
                        if names.is_empty() {
                            "(none)".to_string()
                        } else {
                            names.join(", ")
                        }
                    ),
                )
            })?;
            let text = match value {
                serde_json::Value::Null => None,
                value => {
                    let text =
                        as_text(field, value).map_err(|m| FlowError::field_error(&path, m))?;
                    if text.trim().is_empty() {
                        return Err(FlowError::field_error(
                            &path,
                            "empty; use null to clear a value",
                        ));
                    }
                    Some(text)
                }
            };
            values.push((key.clone(), text.map(SecretString::from)));
        }
        self.managed
            .set_fields(account_id, connector_id, user_id, &values, updated_by)
            .await?;
        self.managed_fields(account_id, connector_id, user_id).await
    }

    fn managed_field_defs(
        &self,
        connector_id: &str,
        user_id: Option<&str>,
    ) -> Result<(Vec<FormField>, ManagedScope), FlowError> {
        let connector = self
            .connectors
            .of_kind(connector_id, AuthKind::ApiKey, "apiKey")?;
        let page = &connector
            .info
            .manifest
            .auth
            .api_key
            .as_ref()
            .expect("validated apiKey manifest")
            .page;
        let scope = if user_id.is_some() {
            ManagedScope::User
        } else {
            ManagedScope::Account
        };
        let fields: Vec<FormField> = page.managed_fields(scope).cloned().collect();
        if page.content.iter().all(|f| !f.managed) {
            return Err(FlowError::NotManaged(format!(
                "connector `{connector_id}` has no managed form fields"
            )));
        }
        Ok((fields, scope))
    }
}
