//! `connector:auth/http`: the connector's only way to the network.
//!
//! The policy (allowlist, SSRF filtering, credential injection, audit) is the
//! subject of its own work item; until it lands, this host refuses every
//! outbound request with a typed `not-permitted` error, so no connector can reach
//! any network. That is the safe default, not a partial policy.

use crate::runtime::CallState;
use crate::runtime::bindings::connector::auth::http::{Host, HttpError, Request, Response};

/// Per-call outbound HTTP state.
#[derive(Debug, Default)]
pub struct HttpCapability {
    refused: u32,
}

impl HttpCapability {
    /// How many requests this call had refused.
    pub fn refused(&self) -> u32 {
        self.refused
    }
}

impl Host for CallState {
    async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        self.http.refused += 1;
        // Through the connector's log budget, tagged with connector and version.
        self.log.record(
            crate::capabilities::LogLevel::Warn,
            &format!(
                "outbound HTTP refused ({:?} request): not enabled on this host",
                request.method
            ),
        );
        Err(HttpError::NotPermitted(
            "outbound HTTP is not enabled on this host".to_string(),
        ))
    }
}
