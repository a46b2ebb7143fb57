//! Test-only: `user-info` panics. With `panic = "abort"` the message goes to
//! stderr and the instance traps.

use connector_sdk::prelude::*;

struct Panic;

#[connector]
impl Connector for Panic {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        panic!("test-panic connector panicked on purpose")
    }
}
