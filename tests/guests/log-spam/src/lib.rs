//! Test-only: `user-info` logs 100 000 lines of 4 KiB and writes 1 MiB to
//! stderr, then succeeds. The host's per-call log budget must hold.

use connector_sdk::prelude::*;

struct LogSpam;

const LINES: usize = 100_000;
const LINE_BYTES: usize = 4096;
const STDERR_BYTES: usize = 1 << 20;

#[connector]
impl Connector for LogSpam {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let filler = "x".repeat(LINE_BYTES);
        for i in 0..LINES {
            // Exactly LINE_BYTES bytes: a numbered prefix padded with filler.
            let prefix = format!("log-spam line {i:06} ");
            log::info(format!("{prefix}{}", &filler[prefix.len()..]));
        }
        // 4 KiB per line including eprintln's newline.
        let chunk = "e".repeat(LINE_BYTES - 1);
        for _ in 0..STDERR_BYTES / LINE_BYTES {
            eprintln!("{chunk}");
        }
        Ok(UserInfo {
            platform_user_id: "spam".into(),
            name: "log-spam".into(),
            timezone_name: None,
            timezone_offset: None,
            additional_info: vec![],
            message: None,
        })
    }
}
