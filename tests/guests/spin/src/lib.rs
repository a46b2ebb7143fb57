//! Test-only: `user-info` never returns. The host must stop it (fuel or epoch
//! deadline) and report a timeout.

use connector_sdk::prelude::*;

struct Spin;

#[connector]
impl Connector for Spin {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        // `black_box` keeps the counter opaque so the loop stays a real, busy loop.
        let mut spins: u64 = 0;
        loop {
            spins = std::hint::black_box(spins.wrapping_add(1));
        }
    }
}
