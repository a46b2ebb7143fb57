//! Insightly: an API-key connector, modelled on App Connect's Insightly
//! connector (`getBasicAuth` + `getUserInfo`).
//!
//! Copy this crate to start an API-key connector. The host requires
//! `auth_type`, `basic_auth` and `user_info`; every other hook is optional.
//! The login form is `auth.apiKey.page` in `connector.json`: the `apiKey` field
//! is the secret (the host keeps it and injects it, you never see it), every
//! other field arrives in `connection.additional_info` under its `const`.

use connector_sdk::prelude::*;
use serde_json::Value;

struct Insightly;

#[connector]
impl Connector for Insightly {
    /// Must equal the manifest's `auth.type`.
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    /// Insightly takes the key as the Basic-auth user name with an empty
    /// password. `{apiKey}` (and `{otherField}`) are filled in by the host.
    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Basic("{apiKey}:".into()))
    }

    /// Who the user is: `GET {apiUrl}/v3.1/Users/Me` with the API key.
    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let api_url = api_url(&connection)?;
        let me = users_me(&api_url)?.error_for_status()?; // 401 → re-auth
        let me: Value = serde_json::from_slice(&me.body).map_err(|e| bad_response(&e))?;
        let id = match &me["USER_ID"] {
            Value::Number(n) => n.to_string(),
            Value::String(s) => s.clone(),
            _ => return Err(bad_response(&"no `USER_ID`")),
        };
        let name = [&me["FIRST_NAME"], &me["LAST_NAME"]]
            .iter()
            .filter_map(|part| part.as_str())
            .collect::<Vec<_>>()
            .join(" ");
        Ok(UserInfo {
            platform_user_id: id,
            name,
            timezone_name: me["TIMEZONE_ID"].as_str().map(Into::into),
            timezone_offset: None,
            // Saved with the connection for later calls.
            additional_info: vec![("apiUrl".into(), api_url)],
            message: None,
        })
    }

    /// The key is valid while `Users/Me` answers 2xx.
    fn auth_validation(connection: ConnectionInfo) -> Result<Validation, ConnectorError> {
        let response = users_me(&api_url(&connection)?)?;
        let successful = response.is_success();
        Ok(Validation {
            successful,
            status: Some(response.status),
            fail_reason: (!successful)
                .then(|| format!("Insightly answered HTTP {}", response.status)),
        })
    }

    /// A cheap call proving the connection works.
    fn test_connection(connection: ConnectionInfo) -> Result<Option<String>, ConnectorError> {
        users_me(&api_url(&connection)?)?.error_for_status()?;
        Ok(Some("Connected to Insightly.".into()))
    }
}

/// The `apiUrl` form field, e.g. `https://api.na1.insightly.com`. The host only
/// lets requests reach the manifest's `allowedHosts`, so a wrong URL fails there.
fn api_url(connection: &ConnectionInfo) -> Result<String, ConnectorError> {
    connection
        .additional_info
        .iter()
        .find(|(key, _)| key == "apiUrl")
        .map(|(_, value)| value.trim().trim_end_matches('/').to_string())
        .filter(|value| !value.is_empty())
        .ok_or_else(|| ConnectorError::BadInput("the `apiUrl` field is required".into()))
}

fn users_me(api_url: &str) -> Result<http::Response, ConnectorError> {
    let response = http::Request::get(format!("{api_url}/v3.1/Users/Me"))
        .header("accept", "application/json")
        .credential(http::Credential::ApiKey)
        .send()?;
    Ok(response)
}

fn bad_response(why: &dyn std::fmt::Display) -> ConnectorError {
    ConnectorError::Provider(ProviderError {
        status: None,
        code: Some("unexpected_response".into()),
        message: format!("unexpected Users/Me response: {why}"),
    })
}
