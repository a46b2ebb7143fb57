// Test-only: a well-behaved connector that reports its own version, for
// upgrade / side-by-side tests. versioned-v2 compiles this same file with
// `include!`, so only plain `//` comments here (no inner `//!` docs), and
// `env!` / `CARGO_MANIFEST_DIR` resolve to the including crate.

use connector_sdk::prelude::*;

static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

struct Versioned;

#[connector]
impl Connector for Versioned {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    // No HTTP: the name is the crate version, the additional info is echoed.
    fn user_info(connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        Ok(UserInfo {
            platform_user_id: "versioned".into(),
            name: env!("CARGO_PKG_VERSION").into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: connection.additional_info,
            message: None,
        })
    }

    // Counts calls in a static: a fresh instance per call always answers `#1`.
    fn test_connection(_connection: ConnectionInfo) -> Result<Option<String>, ConnectorError> {
        let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
        Ok(Some(format!("v{}#{calls}", env!("CARGO_PKG_VERSION"))))
    }
}
