//! Test-only: an OAuth connector whose tokens the host obtains with the
//! client-credentials grant (`grantType: client_credentials`). The operator
//! configures `token-url` and `api-base`; `oauth-info` names the host secret
//! `cc-client-secret` and no scopes, so the manifest's `scope` fragment is
//! what the host asks for. `credentials-from-token-response` keeps the scope
//! the provider granted; `user-info` reads who the token belongs to.

use connector_sdk::prelude::*;

struct ClientCredentials;

fn config(key: &str) -> Result<String, ConnectorError> {
    config::get(key)
        .ok_or_else(|| ConnectorError::BadInput(format!("operator config `{key}` is not set")))
}

#[connector]
impl Connector for ClientCredentials {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    fn oauth_info(_input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        Ok(OauthInfo {
            client_id: "cc-client".into(),
            client_secret: ClientSecretRef::HostSecret("cc-client-secret".into()),
            access_token_uri: config("token-url")?,
            redirect_uri: String::new(),
            authorization_uri: None,
            scopes: None,
            hostname: None,
            fail_message: None,
        })
    }

    /// Keeps the scope the provider granted (never a token: the host removed
    /// them).
    fn credentials_from_token_response(
        input: TokenResponseInput,
    ) -> Result<Vec<KeyValue>, ConnectorError> {
        Ok(vec![(
            "granted_scope".into(),
            input.token_response.scope.unwrap_or_default(),
        )])
    }

    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
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
            additional_info: connection.additional_info,
            message: None,
        })
    }
}
