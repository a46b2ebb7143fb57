//! Test-only: `user-info` returns an identity with one field blown up, as a
//! connector trying to grow the host's database, logs or API answers would.
//!
//! `additional_info` keys: `field` — `name` (default), `platform-user-id`,
//! `message`, `info-count` (many entries) or `info-value` (one huge value),
//! or an error blown up instead: `error-message` (an internal error) or
//! `provider-error` (a provider error with a huge message and code);
//! `bytes` — the size (default 2 MiB).

use connector_sdk::prelude::*;

struct HugeOutput;

#[connector]
impl Connector for HugeOutput {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let get = |key: &str| {
            connection
                .additional_info
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.clone())
        };
        let bytes: usize = get("bytes").and_then(|b| b.parse().ok()).unwrap_or(2 << 20);
        let huge = "x".repeat(bytes);
        let mut user = UserInfo {
            platform_user_id: "42".into(),
            name: "Ada".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![],
            message: None,
        };
        match get("field").as_deref().unwrap_or("name") {
            "platform-user-id" => user.platform_user_id = huge,
            "message" => user.message = Some(huge),
            "info-count" => {
                user.additional_info = (0..bytes).map(|i| (format!("k{i}"), "v".into())).collect()
            }
            "info-value" => user.additional_info = vec![("big".into(), huge)],
            "error-message" => return Err(ConnectorError::Internal(huge)),
            "provider-error" => {
                return Err(ConnectorError::Provider(ProviderError {
                    status: Some(400),
                    code: Some(huge.clone()),
                    message: huge,
                }));
            }
            _ => user.name = huge,
        }
        Ok(user)
    }
}
