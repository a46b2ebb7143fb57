//! Test-only: tries to use `std::net`, which imports `wasi:sockets`. The host
//! links no sockets, so this component must be rejected at load time.

use connector_sdk::prelude::*;

struct SocketUser;

#[connector]
impl Connector for SocketUser {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let stream = std::net::TcpStream::connect("169.254.169.254:80")
            .map_err(|e| ConnectorError::Internal(e.to_string()))?;
        Ok(UserInfo {
            platform_user_id: format!("{:?}", stream.peer_addr()),
            name: "socket".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![],
            message: None,
        })
    }
}
