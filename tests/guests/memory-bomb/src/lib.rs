//! Test-only: `user-info` allocates and touches 1 MiB blocks until the host's
//! memory limit stops it.

use connector_sdk::prelude::*;

struct MemoryBomb;

#[connector]
impl Connector for MemoryBomb {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        const MIB: usize = 1 << 20;
        let mut hoard: Vec<Vec<u8>> = Vec::new();
        loop {
            // A non-zero fill writes every byte, so each block is really used.
            let block = vec![0xA5u8; MIB];
            hoard.push(std::hint::black_box(block));
            std::hint::black_box(&hoard);
        }
    }
}
