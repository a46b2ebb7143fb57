//! Test-only: a connector of realm `acme` that declares nothing about the
//! authorization server but its discovery URL,
//! `http://{hostname}/realms/acme/.well-known/openid-configuration`.
//! `oauth-info` names no token or authorize endpoint (an empty
//! `access-token-uri`), so the host takes them from the document; the
//! hostname is the login's when it gives one (a test pointing discovery at a
//! server of its own), else the operator's `hostname` config (the local
//! provider's `host:port`). `user-info` calls `{api-base}/api/v1/me`.

use connector_sdk::prelude::*;

struct DiscoveryRealm;

fn config(key: &str) -> Result<String, ConnectorError> {
    config::get(key)
        .ok_or_else(|| ConnectorError::BadInput(format!("operator config `{key}` is not set")))
}

#[connector]
impl Connector for DiscoveryRealm {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    fn oauth_info(input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        let hostname = match input.hostname.filter(|h| !h.is_empty()) {
            Some(hostname) => hostname,
            None => config("hostname")?,
        };
        Ok(OauthInfo {
            client_id: "realm-client".into(),
            client_secret: ClientSecretRef::HostSecret("realm-client-secret".into()),
            access_token_uri: String::new(),
            redirect_uri: "https://apps.example.com/realm/callback".into(),
            authorization_uri: None,
            scopes: Some(vec!["api".into()]),
            hostname: Some(hostname),
            fail_message: None,
        })
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
