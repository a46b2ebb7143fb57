//! Test-only: well-behaved code, but `connector.json` has an unknown field
//! (`auth.apiKey.page.content[0].sensitive`). The host must refuse to load it.

use connector_sdk::prelude::*;

struct BadManifest;

#[connector]
impl Connector for BadManifest {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        Ok(UserInfo {
            platform_user_id: "bad-manifest".into(),
            name: "bad-manifest".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![],
            message: None,
        })
    }
}
