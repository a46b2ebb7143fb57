//! Test-only: the smallest OAuth connector. The operator configures
//! `token-url` and `api-base`; the manifest turns PKCE off and puts the client
//! credentials in the Authorization header (the two options the examples do
//! not use), and the `credentials-from-token-response` hook.

use connector_sdk::prelude::*;

struct OAuthBasic;

fn config(key: &str) -> Result<String, ConnectorError> {
    config::get(key)
        .ok_or_else(|| ConnectorError::BadInput(format!("operator config `{key}` is not set")))
}

#[connector]
impl Connector for OAuthBasic {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    fn oauth_info(_input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        Ok(OauthInfo {
            client_id: "basic-client".into(),
            client_secret: ClientSecretRef::HostSecret("basic-client-secret".into()),
            access_token_uri: config("token-url")?,
            redirect_uri: "https://apps.example.com/basic/callback".into(),
            authorization_uri: None,
            scopes: Some(vec!["api".into()]),
            hostname: None,
            fail_message: None,
        })
    }

    /// Keeps `instance_url` from the token response, and reports which field
    /// names it was shown (the host removes the token fields first).
    fn credentials_from_token_response(
        input: TokenResponseInput,
    ) -> Result<Vec<KeyValue>, ConnectorError> {
        let fields: serde_json::Value = serde_json::from_str(&input.token_response.fields_json)
            .map_err(|e| ConnectorError::Internal(e.to_string()))?;
        let mut names: Vec<&str> = fields
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        names.sort();
        Ok(vec![
            (
                "instance_url".into(),
                fields["instance_url"].as_str().unwrap_or_default().into(),
            ),
            ("seen_fields".into(), names.join(",")),
            (
                "seen_expires_in".into(),
                input
                    .token_response
                    .expires_in
                    .map(|s| s.to_string())
                    .unwrap_or_default(),
            ),
            (
                "seen_callback_query".into(),
                input
                    .callback_query
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("&"),
            ),
        ])
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
            timezone_name: me["timezone"].as_str().map(Into::into),
            timezone_offset: None,
            additional_info: connection.additional_info,
            message: None,
        })
    }
}
