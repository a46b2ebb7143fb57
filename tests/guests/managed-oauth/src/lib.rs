//! Test-only: admin-managed OAuth. The host passes the account's application
//! (`input.managed`, non-secret values only) and applies it over this hook's
//! answer; the client secret stays on the host (`ClientSecretRef::Managed`).
//! The CRM's API base comes from operator config (`api-base`).

use connector_sdk::prelude::*;

struct ManagedOAuth;

#[connector]
impl Connector for ManagedOAuth {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    fn oauth_info(input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        let app = input.managed.ok_or_else(|| {
            ConnectorError::BadInput("no admin-managed application was passed".into())
        })?;
        Ok(OauthInfo {
            client_id: app.client_id.unwrap_or_default(),
            client_secret: ClientSecretRef::Managed,
            access_token_uri: app.token_url.unwrap_or_default(),
            redirect_uri: "https://apps.example.com/managed/callback".into(),
            authorization_uri: app.authorization_url,
            scopes: Some(vec!["api".into()]),
            hostname: None,
            fail_message: None,
        })
    }

    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let base = config::get("api-base").ok_or_else(|| {
            ConnectorError::BadInput("operator config `api-base` is not set".into())
        })?;
        let me = http::Request::get(format!("{base}/api/v1/me"))
            .credential(http::Credential::AccessToken)
            .send()?
            .error_for_status()?;
        let me: serde_json::Value = serde_json::from_slice(&me.body)
            .map_err(|e| ConnectorError::Internal(e.to_string()))?;
        Ok(UserInfo {
            platform_user_id: me["id"].as_str().unwrap_or_default().into(),
            name: me["name"].as_str().unwrap_or_default().into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: connection.additional_info,
            message: None,
        })
    }
}
