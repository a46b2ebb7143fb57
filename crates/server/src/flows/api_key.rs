//! API-key login (App Connect `auth.apiKey`): validate the submitted form
//! against the manifest, ask `basic-auth` how the key is placed, call
//! `user-info` with the key injected by the host, save the connection.

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_abi::manifest::{
    API_KEY_FIELD, ApiKeyPage, AuthKind, FieldType, FormField, ManagedScope,
};
use connector_sandbox::capabilities::http::{ApiKeyCredential, CallCredentials};
use connector_sandbox::runtime::CallContext;
use connector_sandbox::wit::hooks::ConnectionInfo;
use secrecy::{ExposeSecret, SecretString};

use super::FlowError;
use super::common::{Connectors, Notifier, identity_fields, merge};
use crate::events::EventKind;
use crate::registry::LoadedConnector;
use crate::store::{Connection, ConnectionSecrets, ConnectionStore, ManagedStore, NewConnection};

/// An API-key login request. `Debug` shows field names only (the form holds
/// the API key and the secret fields).
pub struct ApiKeyLogin {
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// CRM hostname, when the connector is regional.
    pub hostname: Option<String>,
    /// The form values by field `const` (the API key is `apiKey`).
    pub fields: serde_json::Map<String, serde_json::Value>,
    /// Ignore admin-managed values: the user fills the full form (the
    /// fallback after a managed login failed).
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

/// Logs users in with an API key.
#[derive(Clone)]
pub(crate) struct ApiKeyFlow {
    connectors: Connectors,
    connections: ConnectionStore,
    managed: ManagedStore,
    notifier: Notifier,
}

impl ApiKeyFlow {
    /// Logins saved in `connections`, with admin-managed values from `managed`.
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        managed: ManagedStore,
        notifier: Notifier,
    ) -> Self {
        Self {
            connectors,
            connections,
            managed,
            notifier,
        }
    }

    /// Logs a user in with an API key. Saves nothing unless `user-info` succeeds.
    pub(crate) async fn login(
        &self,
        connector_id: &str,
        login: ApiKeyLogin,
    ) -> Result<Connection, FlowError> {
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
        let (submitted, filled) = if login.manual {
            (login.fields.clone(), Vec::new())
        } else {
            self.with_managed_values(page, connector_id, &login).await?
        };
        let form = validate_form(page, &submitted)?;
        let result = self.connect(&connector, page, login, form, &filled).await;
        match result {
            Err(error) if !filled.is_empty() && !matches!(error, FlowError::Storage(_)) => {
                Err(FlowError::ManagedLoginFailed(Box::new(error)))
            }
            other => other,
        }
    }

    /// The submitted form with the admin-managed values filled in (an admin's
    /// value wins over a submitted one). Fails with the
    /// `missingRequiredFieldConsts` warning when a required managed field has
    /// no value. Also returns which fields were filled from admin storage.
    async fn with_managed_values(
        &self,
        page: &ApiKeyPage,
        connector_id: &str,
        login: &ApiKeyLogin,
    ) -> Result<(serde_json::Map<String, serde_json::Value>, Vec<String>), FlowError> {
        if page.content.iter().all(|f| !f.managed) {
            return Ok((login.fields.clone(), Vec::new()));
        }
        let account = self
            .managed
            .fields(&login.account_id, connector_id, None)
            .await?;
        let user = self
            .managed
            .fields(&login.account_id, connector_id, Some(&login.user_id))
            .await?;
        let mut merged = login.fields.clone();
        let mut filled = Vec::new();
        let mut missing = Vec::new();
        for field in page.content.iter().filter(|f| f.managed) {
            let stored = match field.managed_scope.unwrap_or(ManagedScope::Account) {
                ManagedScope::Account => account.get(&field.key),
                ManagedScope::User => user.get(&field.key),
            };
            match stored {
                Some(value) => {
                    filled.push(field.key.clone());
                    merged.insert(field.key.clone(), typed_value(field, value.expose_secret()));
                }
                None => {
                    let submitted = merged
                        .get(&field.key)
                        .is_some_and(|v| !v.is_null() && v.as_str() != Some(""));
                    if (field.required || field.key == API_KEY_FIELD) && !submitted {
                        missing.push(field.key.clone());
                    }
                }
            }
        }
        if !missing.is_empty() {
            return Err(FlowError::ManagedFieldsMissing(missing));
        }
        Ok((merged, filled))
    }

    /// `basic-auth`, `user-info` with the key injected, then save.
    async fn connect(
        &self,
        connector: &LoadedConnector,
        page: &ApiKeyPage,
        login: ApiKeyLogin,
        form: Form,
        filled: &[String],
    ) -> Result<Connection, FlowError> {
        let Form {
            key,
            fields,
            secret_fields,
        } = form;
        super::oauth_start::checked_hostname(login.hostname.as_deref())?;
        let connector_id = connector.info.manifest.id.clone();
        let info = ConnectionInfo {
            hostname: login.hostname.clone(),
            platform_user_id: None,
            additional_info: fields.clone(),
        };
        let bare = CallContext {
            account_id: Some(login.account_id.clone()),
            ..CallContext::default()
        };
        let placement = self
            .connectors
            .api_key_placement(connector, &bare, info.clone())
            .await?;
        let credentials = CallCredentials {
            api_key: Some(ApiKeyCredential {
                key: key.clone(),
                placement,
                fields: fields.iter().cloned().collect::<BTreeMap<_, _>>(),
                secret_fields: secret_fields.clone(),
            }),
            ..Default::default()
        };
        let ctx = CallContext {
            account_id: Some(login.account_id.clone()),
            user_id: Some(login.user_id.clone()),
            credentials: Arc::new(credentials),
            deny_outbound: false,
        };
        let identity = connector.prepared.user_info(&ctx, info).await.result?;
        let who = identity_fields(&identity);
        // Secret fields are stored encrypted, except hidden ones an admin set:
        // later hooks get the admin's current values, like other hidden fields.
        let stored_secrets: BTreeMap<String, SecretString> = secret_fields
            .into_iter()
            .filter(|(k, _)| !(filled.contains(k) && is_hidden_managed(page, k)))
            .collect();
        let saved = self
            .connections
            .save_with_secret_fields(
                NewConnection {
                    account_id: login.account_id,
                    user_id: login.user_id,
                    connector_id,
                    auth_type: AuthKind::ApiKey.to_string(),
                    hostname: login.hostname,
                    platform_user_id: who.platform_user_id,
                    user_name: who.user_name,
                    timezone_name: who.timezone_name,
                    timezone_offset: who.timezone_offset,
                    // Hidden values an admin set are not saved with the connection
                    // (whose values the API returns): later hooks get the admin's
                    // current values. Nothing under a secret field's name is
                    // saved in plain text, whoever returned it.
                    additional_info: merge(&fields, &identity.additional_info)
                        .into_iter()
                        .filter(|(k, _)| !(filled.contains(k) && is_hidden_managed(page, k)))
                        .filter(|(k, _)| !page.is_secret(k))
                        .collect(),
                    expires_at: None,
                    secrets: ConnectionSecrets {
                        api_key: Some(key),
                        ..Default::default()
                    },
                },
                &stored_secrets,
            )
            .await?;
        self.notifier
            .emit(EventKind::ConnectionCreated, &saved, "api-key login")
            .await;
        Ok(saved)
    }
}

/// A checked login form: the key, the plain fields, the secret fields.
struct Form {
    key: SecretString,
    /// Fields not declared secret, as text (saved in `additional_info`,
    /// given to hooks).
    fields: Vec<(String, String)>,
    /// Fields declared `secret` (other than the key): stored encrypted, only
    /// injected by reference.
    secret_fields: BTreeMap<String, SecretString>,
}

/// Checks the submitted form against the manifest: unknown fields are named,
/// required fields must be present and non-empty, types must match. Returns the
/// key, the plain fields and the secret fields.
fn validate_form(
    page: &ApiKeyPage,
    submitted: &serde_json::Map<String, serde_json::Value>,
) -> Result<Form, FlowError> {
    let known: Vec<&str> = page.content.iter().map(|f| f.key.as_str()).collect();
    if let Some(unknown) = submitted.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(FlowError::field_error(
            format!("fields.{unknown}"),
            format!("unknown field; the form has: {}", known.join(", ")),
        ));
    }
    let mut key = None;
    let mut fields = Vec::new();
    let mut secret_fields = BTreeMap::new();
    for field in &page.content {
        let path = format!("fields.{}", field.key);
        let text = match submitted.get(&field.key) {
            None | Some(serde_json::Value::Null) => None,
            Some(value) => {
                Some(as_text(field, value).map_err(|m| FlowError::field_error(&path, m))?)
            }
        };
        let text = text.filter(|t| !t.trim().is_empty());
        match text {
            None if field.required || field.key == API_KEY_FIELD => {
                return Err(FlowError::field_error(&path, "required"));
            }
            None => {}
            Some(text) if field.key == API_KEY_FIELD => key = Some(SecretString::from(text)),
            Some(text) if field.secret => {
                secret_fields.insert(field.key.clone(), SecretString::from(text));
            }
            Some(text) => fields.push((field.key.clone(), text)),
        }
    }
    Ok(Form {
        key: key.expect("apiKey is required above"),
        fields,
        secret_fields,
    })
}

/// True for a field users never see, whose value an admin sets.
pub(crate) fn is_hidden_managed(page: &ApiKeyPage, key: &str) -> bool {
    page.content
        .iter()
        .any(|f| f.key == key && f.managed && f.hidden)
}

/// A stored managed value as the JSON type its field expects.
fn typed_value(field: &FormField, text: &str) -> serde_json::Value {
    match field.field_type {
        FieldType::String => serde_json::Value::String(text.to_string()),
        FieldType::Boolean => text
            .parse::<bool>()
            .map(serde_json::Value::Bool)
            .unwrap_or_else(|_| serde_json::Value::String(text.to_string())),
        FieldType::Number | FieldType::Integer => serde_json::from_str(text)
            .ok()
            .filter(serde_json::Value::is_number)
            .unwrap_or_else(|| serde_json::Value::String(text.to_string())),
    }
}

/// A submitted value as text, if its JSON type is the field's.
pub(crate) fn as_text(field: &FormField, value: &serde_json::Value) -> Result<String, String> {
    use serde_json::Value;
    match (field.field_type, value) {
        (FieldType::String, Value::String(s)) => Ok(s.clone()),
        (FieldType::Number, Value::Number(n)) => Ok(n.to_string()),
        (FieldType::Integer, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        (FieldType::Boolean, Value::Bool(b)) => Ok(b.to_string()),
        (expected, _) => Err(format!(
            "expected a {}",
            format!("{expected:?}").to_lowercase()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_login_request_debug_shows_field_names_only() {
        let login = ApiKeyLogin {
            account_id: "acct".into(),
            user_id: "user".into(),
            hostname: None,
            fields: serde_json::json!({"apiKey": "k-value-1", "apiSecret": "s-value-2"})
                .as_object()
                .unwrap()
                .clone(),
            manual: false,
        };
        let shown = format!("{login:?}");
        assert!(shown.contains("apiSecret"), "{shown}");
        assert!(
            !shown.contains("k-value-1") && !shown.contains("s-value-2"),
            "{shown}"
        );
    }
}
