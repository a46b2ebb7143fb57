//! Test-only: the `refresh` hook (App Connect `checkAndRefreshAccessToken`,
//! Membrane `refreshCredentials`) sending the refresh to another endpoint with
//! an extra parameter, and reading the tokens from nested fields.

use connector_sdk::prelude::*;

struct RefreshPaths;

fn config(key: &str) -> Result<String, ConnectorError> {
    config::get(key)
        .ok_or_else(|| ConnectorError::BadInput(format!("operator config `{key}` is not set")))
}

#[connector]
impl Connector for RefreshPaths {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    fn oauth_info(_input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        Ok(OauthInfo {
            client_id: "paths-client".into(),
            client_secret: ClientSecretRef::HostSecret("paths-client-secret".into()),
            access_token_uri: config("token-url")?,
            redirect_uri: "https://apps.example.com/paths/callback".into(),
            authorization_uri: Some(config("authorize-url")?),
            scopes: Some(vec!["api".into()]),
            hostname: None,
            fail_message: None,
        })
    }

    fn refresh(_connection: ConnectionInfo) -> Result<RefreshOverride, ConnectorError> {
        Ok(RefreshOverride {
            token_url: Some(config("refresh-url")?),
            extra_params: vec![("audience".into(), "crm-api".into())],
            client_auth_location: Some(ClientAuthLocation::Body),
            access_token_path: Some("/data/token".into()),
            refresh_token_path: Some("/data/refresh".into()),
            expires_in_path: Some("/data/ttl".into()),
        })
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let me = http::Request::get(format!("{}/api/v1/me", config("api-base")?))
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
            additional_info: Vec::new(),
            message: None,
        })
    }
}
