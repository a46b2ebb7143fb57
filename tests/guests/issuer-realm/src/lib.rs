//! Test-only: a connector of realm `acme` of a provider serving several
//! realms on one origin (Keycloak style). The manifest declares the realm's
//! issuer, `https://sso.example.test/realms/acme` (the provider's public name,
//! not the address the host reaches it at), and no `clientAuthLocation`, so
//! the host's default client authentication is used. The operator configures
//! `authorize-url`, `token-url`, `api-base` and `hostname` (the provider's
//! `host:port`, for the revocation endpoint), and may set
//! `client-auth-location` (`header`, `body`, `both`), which
//! `overriding-oauth-option` then asks for explicitly, and `extra-headers`
//! (lines of `name: value`), which it asks the host to send on the code
//! exchange.

use connector_sdk::prelude::*;

struct IssuerRealm;

fn config(key: &str) -> Result<String, ConnectorError> {
    config::get(key)
        .ok_or_else(|| ConnectorError::BadInput(format!("operator config `{key}` is not set")))
}

#[connector]
impl Connector for IssuerRealm {
    fn auth_type() -> AuthType {
        AuthType::Oauth
    }

    fn oauth_info(_input: OauthInfoInput) -> Result<OauthInfo, ConnectorError> {
        Ok(OauthInfo {
            client_id: "realm-client".into(),
            client_secret: ClientSecretRef::HostSecret("realm-client-secret".into()),
            access_token_uri: config("token-url")?,
            redirect_uri: "https://apps.example.com/realm/callback".into(),
            authorization_uri: Some(config("authorize-url")?),
            scopes: Some(vec!["api".into()]),
            hostname: Some(config("hostname")?),
            fail_message: None,
        })
    }

    fn overriding_oauth_option(_info: OauthInfo) -> Result<TokenRequestOverride, ConnectorError> {
        let client_auth_location = match config::get("client-auth-location").as_deref() {
            None => None,
            Some("header") => Some(ClientAuthLocation::Header),
            Some("body") => Some(ClientAuthLocation::Body),
            Some("both") => Some(ClientAuthLocation::Both),
            Some(other) => {
                return Err(ConnectorError::BadInput(format!(
                    "`{other}` is not a client-auth-location"
                )));
            }
        };
        let extra_headers = config::get("extra-headers")
            .unwrap_or_default()
            .lines()
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        Ok(TokenRequestOverride {
            token_url: None,
            extra_body_params: Vec::new(),
            extra_headers,
            client_auth_location,
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
