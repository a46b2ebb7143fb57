//! Test-only: the manifest says `apiKey` but `auth-type` answers `oauth`. The
//! host must refuse to load it.

use connector_sdk::prelude::*;

struct AuthMismatch;

#[connector]
impl Connector for AuthMismatch {
    fn auth_type() -> AuthType {
        AuthType::Oauth // connector.json says "apiKey"
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        Ok(UserInfo {
            platform_user_id: "auth-mismatch".into(),
            name: "auth-mismatch".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![],
            message: None,
        })
    }
}
