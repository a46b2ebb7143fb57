//! What the account admin's pages show and accept: the connectors with
//! admin-managed credentials; the form of a managed OAuth application (the
//! client id shown, the client secret only ever "set" or "not set"); the
//! form of managed API-key fields (secret fields masked); the posted forms
//! turned into the flows layer's inputs. No HTTP here.

use std::collections::BTreeMap;

use connector_abi::manifest::{FieldType, ManagedOAuthValue, ManagedScope};
use serde::Serialize;

use super::form::{type_name, typed};
use crate::flows::{ManagedFields, ManagedFieldsUpdate, ManagedOAuthInput, ManagedOAuthView};
use crate::registry::Snapshot;

/// A loaded connector whose credentials an account admin manages.
#[derive(Debug, Clone, Serialize)]
pub struct ManagedConnector {
    /// Its id.
    pub id: String,
    /// Its display name.
    pub name: String,
    /// It declares `auth.oauth.adminManaged`.
    pub oauth: bool,
    /// Its API-key form has account-scoped managed fields.
    pub fields: bool,
}

/// The connectors of `snapshot` with admin-managed credentials, by id.
pub fn managed_connectors(snapshot: &Snapshot) -> Vec<ManagedConnector> {
    snapshot
        .connectors
        .values()
        .map(|c| {
            let auth = &c.info.manifest.auth;
            let oauth = auth
                .oauth
                .as_ref()
                .is_some_and(|o| o.admin_managed.is_some());
            let fields = auth.api_key.as_ref().is_some_and(|a| {
                a.page
                    .managed_fields(ManagedScope::Account)
                    .next()
                    .is_some()
            });
            ManagedConnector {
                id: c.info.manifest.id.clone(),
                name: c
                    .info
                    .manifest
                    .name
                    .clone()
                    .unwrap_or_else(|| c.info.manifest.id.clone()),
                oauth,
                fields,
            }
        })
        .filter(|c| c.oauth || c.fields)
        .collect()
}

/// Every value of an OAuth application, in form order, with its label.
const OAUTH_VALUES: [(ManagedOAuthValue, &str); 7] = [
    (ManagedOAuthValue::ClientId, "Client id"),
    (ManagedOAuthValue::ClientSecret, "Client secret"),
    (ManagedOAuthValue::TokenUrl, "Token URL"),
    (ManagedOAuthValue::AuthorizationUrl, "Authorization URL"),
    (ManagedOAuthValue::RedirectUri, "Redirect URI"),
    (ManagedOAuthValue::Hostname, "Hostname"),
    (ManagedOAuthValue::Issuer, "Issuer"),
];

/// One input of the OAuth application form.
#[derive(Debug, Serialize)]
pub struct OAuthInputView {
    /// The form field's name and id (`clientId`, …).
    pub name: &'static str,
    /// Its label.
    pub label: &'static str,
    /// The connector requires it.
    pub required: bool,
    /// The client secret: a password input, never filled in.
    pub secret: bool,
    /// The current value (never for the secret).
    pub value: Option<String>,
    /// A value is stored.
    pub set: bool,
}

/// The stored application a page shows (active or pending), secret masked.
#[derive(Debug, Serialize)]
pub struct OAuthAppSummary {
    /// `active` or `pending`.
    pub status: String,
    /// Version.
    pub version: i64,
    /// Client id.
    pub client_id: Option<String>,
    /// A client secret is stored (its value is never shown).
    pub secret_set: bool,
}

/// The OAuth application page of one account and connector.
#[derive(Debug, Serialize)]
pub struct OAuthFormView {
    /// Where the provider's portal is and what to enter there.
    pub instructions: Option<String>,
    /// The application users connect with.
    pub active: Option<OAuthAppSummary>,
    /// Newer values waiting for their first successful login.
    pub pending: Option<OAuthAppSummary>,
    /// The inputs, prefilled from the newest application (never the secret).
    pub inputs: Vec<OAuthInputView>,
}

impl From<&ManagedOAuthView> for OAuthFormView {
    fn from(view: &ManagedOAuthView) -> Self {
        let summary = |app: &crate::flows::ManagedOAuthAppView| OAuthAppSummary {
            status: format!("{:?}", app.status).to_lowercase(),
            version: app.version,
            client_id: app.client_id.clone(),
            secret_set: app.client_secret.is_some(),
        };
        let newest = view.pending.as_ref().or(view.active.as_ref());
        let inputs = OAUTH_VALUES
            .iter()
            .map(|&(value, label)| {
                let stored = newest.and_then(|app| match value {
                    ManagedOAuthValue::ClientId => app.client_id.clone(),
                    ManagedOAuthValue::ClientSecret => app.client_secret.clone(),
                    ManagedOAuthValue::TokenUrl => app.token_url.clone(),
                    ManagedOAuthValue::AuthorizationUrl => app.authorization_url.clone(),
                    ManagedOAuthValue::RedirectUri => app.redirect_uri.clone(),
                    ManagedOAuthValue::Hostname => app.hostname.clone(),
                    ManagedOAuthValue::Issuer => app.issuer.clone(),
                });
                let secret = value == ManagedOAuthValue::ClientSecret;
                OAuthInputView {
                    name: value.as_str(),
                    label,
                    required: view.setup.required.contains(&value),
                    secret,
                    set: stored.is_some(),
                    value: if secret { None } else { stored },
                }
            })
            .collect();
        Self {
            instructions: view.setup.instructions.clone(),
            active: view.active.as_ref().map(summary),
            pending: view.pending.as_ref().map(summary),
            inputs,
        }
    }
}

/// The posted OAuth application form as the flows layer's input (empty
/// inputs are absent values).
pub fn oauth_input(posted: &BTreeMap<String, String>) -> ManagedOAuthInput {
    let value = |name: ManagedOAuthValue| {
        posted
            .get(name.as_str())
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    };
    ManagedOAuthInput {
        client_id: value(ManagedOAuthValue::ClientId),
        client_secret: value(ManagedOAuthValue::ClientSecret),
        token_url: value(ManagedOAuthValue::TokenUrl),
        authorization_url: value(ManagedOAuthValue::AuthorizationUrl),
        redirect_uri: value(ManagedOAuthValue::RedirectUri),
        hostname: value(ManagedOAuthValue::Hostname),
        issuer: value(ManagedOAuthValue::Issuer),
    }
}

/// The names of the values an input carries (for the admin audit: names,
/// never values).
pub fn submitted_names(input: &ManagedOAuthInput) -> Vec<&'static str> {
    [
        (ManagedOAuthValue::ClientId, input.client_id.is_some()),
        (
            ManagedOAuthValue::ClientSecret,
            input.client_secret.is_some(),
        ),
        (ManagedOAuthValue::TokenUrl, input.token_url.is_some()),
        (
            ManagedOAuthValue::AuthorizationUrl,
            input.authorization_url.is_some(),
        ),
        (ManagedOAuthValue::RedirectUri, input.redirect_uri.is_some()),
        (ManagedOAuthValue::Hostname, input.hostname.is_some()),
        (ManagedOAuthValue::Issuer, input.issuer.is_some()),
    ]
    .into_iter()
    .filter_map(|(value, set)| set.then_some(value.as_str()))
    .collect()
}

/// One managed field of the fields form.
#[derive(Debug, Serialize)]
pub struct FieldInputView {
    /// The field's `const` (the input is `field.<key>`).
    pub key: String,
    /// Its label.
    pub title: String,
    /// The login needs it.
    pub required: bool,
    /// A password input, never filled in.
    pub secret: bool,
    /// A value is stored.
    pub set: bool,
    /// The stored value (never a secret one).
    pub value: Option<String>,
}

/// The fields form: secret fields (the API key included) never filled in.
pub fn field_inputs(fields: &ManagedFields, secret: impl Fn(&str) -> bool) -> Vec<FieldInputView> {
    fields
        .fields
        .iter()
        .map(|f| {
            let secret = secret(&f.key);
            FieldInputView {
                key: f.key.clone(),
                title: f.title.clone(),
                required: f.required,
                secret,
                set: f.set,
                value: if secret { None } else { f.value.clone() },
            }
        })
        .collect()
}

/// The posted fields form as an update: `field.<key>` sets a value (empty:
/// unchanged, so a secret need not be typed again), `clear.<key>` clears
/// it. `Err` maps each bad field to what was expected.
pub fn fields_update(
    types: &[(String, FieldType)],
    posted: &BTreeMap<String, String>,
) -> Result<ManagedFieldsUpdate, BTreeMap<String, String>> {
    let mut values = serde_json::Map::new();
    let mut errors = BTreeMap::new();
    for (key, field_type) in types {
        if posted.contains_key(&format!("clear.{key}")) {
            values.insert(key.clone(), serde_json::Value::Null);
            continue;
        }
        let raw = posted
            .get(&format!("field.{key}"))
            .map(|v| v.trim())
            .unwrap_or("");
        if raw.is_empty() {
            continue;
        }
        let value = match field_type {
            FieldType::Boolean => raw.parse::<bool>().ok().map(Into::into),
            other => typed(*other, raw),
        };
        match value {
            Some(value) => {
                values.insert(key.clone(), value);
            }
            None => {
                let expected = match field_type {
                    FieldType::Boolean => "true or false",
                    other => type_name(*other),
                };
                errors.insert(key.clone(), format!("{key}: expected {expected}"));
            }
        }
    }
    if errors.is_empty() {
        Ok(ManagedFieldsUpdate { values })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_input_leaves_a_value_and_clear_removes_it() {
        let types = vec![
            ("apiKey".to_string(), FieldType::String),
            ("tenantId".to_string(), FieldType::String),
            ("port".to_string(), FieldType::Integer),
        ];
        let posted = BTreeMap::from([
            ("field.apiKey".to_string(), "".to_string()),
            ("field.tenantId".to_string(), " t-1 ".to_string()),
            ("clear.port".to_string(), "on".to_string()),
        ]);
        let update = fields_update(&types, &posted).unwrap();
        assert_eq!(
            serde_json::Value::Object(update.values),
            serde_json::json!({"tenantId": "t-1", "port": null})
        );
        let bad = BTreeMap::from([("field.port".to_string(), "eighty".to_string())]);
        let errors = fields_update(&types, &bad).unwrap_err();
        assert_eq!(errors["port"], "port: expected whole number");
    }

    #[test]
    fn empty_oauth_inputs_are_absent() {
        let posted = BTreeMap::from([
            ("clientId".to_string(), " id-1 ".to_string()),
            ("clientSecret".to_string(), "".to_string()),
        ]);
        let input = oauth_input(&posted);
        assert_eq!(input.client_id.as_deref(), Some("id-1"));
        assert!(input.client_secret.is_none() && input.token_url.is_none());
    }
}
