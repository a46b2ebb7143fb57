//! `auth.apiKey`: App Connect's API-key login form (its fields, managed and
//! secret ones) and where the key may go, and their validation.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::super::{ApiKeyPlacementDecl, ManifestError};

/// App Connect `auth.apiKey`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyBlock {
    /// Where the host may put the key; the `basic-auth` hook, if implemented,
    /// must answer exactly this.
    pub placement: ApiKeyPlacementDecl,
    /// The login form.
    pub page: ApiKeyPage,
}

/// The API-key login form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeyPage {
    /// Form title.
    pub title: String,
    /// Text shown above the form.
    #[serde(default)]
    pub warning: Option<String>,
    /// The fields.
    pub content: Vec<FormField>,
}

/// Value type of a form field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum FieldType {
    /// Text.
    String,
    /// A number.
    Number,
    /// A whole number.
    Integer,
    /// true/false.
    Boolean,
}

/// Who an admin-managed value belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub enum ManagedScope {
    /// One value per account.
    Account,
    /// One value per user.
    User,
}

/// One field of the API-key form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FormField {
    /// The field's key (`apiKey` is the API key itself).
    #[serde(rename = "const")]
    pub key: String,
    /// Label.
    pub title: String,
    /// Value type.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// The user must fill it.
    #[serde(default)]
    pub required: bool,
    /// An admin provides the value.
    #[serde(default)]
    pub managed: bool,
    /// Whose value an admin provides (`account` or `user`; `account` when
    /// absent).
    #[serde(default)]
    pub managed_scope: Option<ManagedScope>,
    /// Not shown to normal users.
    #[serde(default)]
    pub hidden: bool,
    /// A secret (an API secret, a password, a client secret): stored
    /// encrypted, never returned by any route or shown to admins, and handed
    /// to the connector only as a credential reference the host fills in
    /// (`{const}` in a `basic` template, or `credential::host-secret` with
    /// `secret: "field:<const>"`). Only on `string` fields; `apiKey` is
    /// always secret.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub secret: bool,
    /// Rendering hints passed to the client as is.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub ui_schema: Option<serde_json::Value>,
}

/// The const of the form field that holds the API key.
pub const API_KEY_FIELD: &str = "apiKey";

/// How a connector names a secret form field in a credential reference:
/// `credential::host-secret` with `secret: "field:<const>"` (host secret
/// names cannot contain `:`).
pub const SECRET_FIELD_REF_PREFIX: &str = "field:";

impl FormField {
    /// True for the API key and every field declared `secret`.
    pub fn is_secret(&self) -> bool {
        self.secret || self.key == API_KEY_FIELD
    }
}

impl ApiKeyBlock {
    /// Checks `auth.apiKey`: the form, then where the key may go.
    pub(super) fn validate(&self) -> Result<(), ManifestError> {
        self.page.validate()?;
        let fields: Vec<&str> = self.page.content.iter().map(|f| f.key.as_str()).collect();
        self.placement.validate("auth.apiKey.placement", &fields)
    }
}

impl ApiKeyPage {
    fn validate(&self) -> Result<(), ManifestError> {
        let mut seen = BTreeSet::new();
        for (i, field) in self.content.iter().enumerate() {
            let path = format!("auth.apiKey.page.content[{i}]");
            let valid_key = !field.key.is_empty()
                && field
                    .key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !valid_key {
                return Err(ManifestError::new(
                    format!("{path}.const"),
                    format!(
                        "`{}` is not a field key (letters, digits, `_`, `-`)",
                        field.key
                    ),
                ));
            }
            if !seen.insert(field.key.as_str()) {
                return Err(ManifestError::new(
                    format!("{path}.const"),
                    format!("`{}` is used twice", field.key),
                ));
            }
            if field.secret && field.field_type != FieldType::String {
                return Err(ManifestError::new(
                    format!("{path}.secret"),
                    "only allowed on `string` fields",
                ));
            }
            if field.managed_scope.is_some() && !field.managed {
                return Err(ManifestError::new(
                    format!("{path}.managedScope"),
                    "only allowed with `managed: true`",
                ));
            }
        }
        if !seen.contains(API_KEY_FIELD) {
            return Err(ManifestError::new(
                "auth.apiKey.page.content",
                format!("needs a field with `const: \"{API_KEY_FIELD}\"` (the API key itself)"),
            ));
        }
        Ok(())
    }

    /// The managed fields of one scope (fields without `managedScope` are
    /// account-scoped).
    pub fn managed_fields(&self, scope: ManagedScope) -> impl Iterator<Item = &FormField> {
        self.content
            .iter()
            .filter(move |f| f.managed && f.managed_scope.unwrap_or(ManagedScope::Account) == scope)
    }

    /// True when `key` names a secret field (the API key included).
    pub fn is_secret(&self, key: &str) -> bool {
        self.content.iter().any(|f| f.key == key && f.is_secret())
    }

    /// The secret fields other than the API key itself.
    pub fn secret_fields(&self) -> impl Iterator<Item = &FormField> {
        self.content
            .iter()
            .filter(|f| f.secret && f.key != API_KEY_FIELD)
    }

    /// The fields a normal user fills in: without hidden managed fields.
    pub fn user_fields(&self) -> impl Iterator<Item = &FormField> {
        self.content.iter().filter(|f| !(f.hidden && f.managed))
    }
}
