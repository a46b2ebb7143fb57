//! Test-only: `user-info` recurses without bound until the stack runs out.

use connector_sdk::prelude::*;
use std::hint::black_box;

struct Recursion;

#[connector]
impl Connector for Recursion {
    fn auth_type() -> AuthType {
        AuthType::ApiKey
    }

    fn basic_auth(_connection: ConnectionInfo) -> Result<ApiKeyPlacement, ConnectorError> {
        Ok(ApiKeyPlacement::Bearer)
    }

    fn user_info(_connection: ConnectionInfo) -> Result<UserInfo, ConnectorError> {
        let depth = descend(0);
        Err(ConnectorError::Internal(format!(
            "recursion ended at depth {depth}"
        )))
    }
}

/// Not a tail call (the result is used after the call returns) and the base
/// case depends on a `black_box`ed value, so the optimiser can neither turn it
/// into a loop nor prove it never ends.
#[inline(never)]
fn descend(depth: u64) -> u64 {
    if black_box(depth) == u64::MAX {
        return depth;
    }
    let below = descend(black_box(depth + 1));
    black_box(below ^ depth)
}
