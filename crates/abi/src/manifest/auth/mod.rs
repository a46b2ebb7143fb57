//! The manifest's `auth` block: App Connect's `auth` (OAuth and API-key form)
//! with the Membrane OAuth options, and its validation.
//!
//! - [`oauth`]: `auth.oauth` (the authorization-code and client-credentials
//!   grants, the admin-managed application, issuers);
//! - [`api_key`]: `auth.apiKey` (the login form and its fields).

mod api_key;
mod oauth;

use serde::{Deserialize, Serialize};

pub use api_key::*;
pub use oauth::*;

use super::ManifestError;

/// The manifest's auth mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuthKind {
    /// OAuth 2.0 authorization code.
    #[serde(rename = "oauth")]
    OAuth,
    /// API key plus form fields.
    #[serde(rename = "apiKey")]
    ApiKey,
}

impl std::fmt::Display for AuthKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AuthKind::OAuth => "oauth",
            AuthKind::ApiKey => "apiKey",
        })
    }
}

/// App Connect's `auth` block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuthBlock {
    /// `oauth` or `apiKey`.
    #[serde(rename = "type")]
    pub kind: AuthKind,
    /// Client-visible OAuth values; required when `type` is `oauth`.
    #[serde(default)]
    pub oauth: Option<OAuthBlock>,
    /// The API-key login page; required when `type` is `apiKey`.
    #[serde(default)]
    pub api_key: Option<ApiKeyBlock>,
}

impl AuthBlock {
    pub(super) fn validate(&self) -> Result<(), ManifestError> {
        match self.kind {
            AuthKind::OAuth => {
                let oauth = self.oauth.as_ref().ok_or_else(|| {
                    ManifestError::new("auth.oauth", "required when `auth.type` is `oauth`")
                })?;
                if self.api_key.is_some() {
                    return Err(ManifestError::new(
                        "auth.apiKey",
                        "only allowed when `auth.type` is `apiKey`",
                    ));
                }
                oauth.validate()
            }
            AuthKind::ApiKey => {
                let api_key = self.api_key.as_ref().ok_or_else(|| {
                    ManifestError::new("auth.apiKey", "required when `auth.type` is `apiKey`")
                })?;
                if self.oauth.is_some() {
                    return Err(ManifestError::new(
                        "auth.oauth",
                        "only allowed when `auth.type` is `oauth`",
                    ));
                }
                api_key.validate()
            }
        }
    }
}
