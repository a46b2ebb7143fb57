//! The login page of a connector: what a client renders before a login (the
//! OAuth button's client-visible values, or the API-key form).

use connector_abi::manifest::{ApiKeyPage, AuthKind, OAuthBlock};

use super::FlowError;
use super::common::Connectors;

/// What a client renders to log in.
#[derive(Debug)]
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

/// Login pages of the live connectors.
#[derive(Clone)]
pub(crate) struct LoginPage {
    connectors: Connectors,
}

impl LoginPage {
    /// Pages of `connectors`.
    pub(crate) fn new(connectors: Connectors) -> Self {
        Self { connectors }
    }

    /// The login page of a connector; `manual` asks for the full form (every
    /// field, managed ones included).
    pub(crate) fn view(&self, connector_id: &str, manual: bool) -> Result<AuthPageView, FlowError> {
        let connector = self.connectors.get(connector_id)?;
        let manifest = &connector.info.manifest;
        let api_key = manifest.auth.api_key.as_ref().map(|block| ApiKeyPage {
            content: if manual {
                block.page.content.clone()
            } else {
                block.page.user_fields().cloned().collect()
            },
            ..block.page.clone()
        });
        Ok(AuthPageView {
            connector_id: manifest.id.clone(),
            name: manifest.display_name().to_string(),
            auth_type: manifest.auth.kind,
            oauth: manifest.auth.oauth.clone(),
            api_key,
        })
    }
}
