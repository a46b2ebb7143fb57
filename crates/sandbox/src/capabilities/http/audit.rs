//! The record of every outbound request, allowed or refused. Never holds a
//! credential value or a query string.

use std::sync::Mutex;

use serde::Serialize;

/// What happened to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum AuditOutcome {
    /// Sent; the provider answered (`status` is set).
    Sent,
    /// Refused by the host's policy before anything left the host.
    Refused,
    /// Allowed but failed (connection, timeout, size caps).
    Failed,
}

/// One outbound request.
#[derive(Debug, Clone, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Unix time in milliseconds.
    pub at_ms: i64,
    /// Connector id.
    pub connector_id: String,
    /// Connector version.
    pub connector_version: String,
    /// Platform account the call was for.
    pub account_id: Option<String>,
    /// HTTP method.
    pub method: String,
    /// URL scheme, when the URL parsed.
    pub scheme: Option<String>,
    /// Destination host, when the URL parsed.
    pub host: Option<String>,
    /// Destination port.
    pub port: Option<u16>,
    /// Path without the query.
    pub path: Option<String>,
    /// Outcome.
    pub outcome: AuditOutcome,
    /// For refused and failed requests: the error kind and its explanation.
    pub reason: Option<String>,
    /// The provider's status.
    pub status: Option<u16>,
    /// Request body bytes.
    pub request_bytes: u64,
    /// Response body bytes.
    pub response_bytes: u64,
    /// Time spent, in microseconds.
    pub duration_us: u64,
    /// The kind of credential injected (`access-token`, `api-key`, …), never
    /// its value.
    pub credential: Option<String>,
    /// Whether the response echoed an injected secret, which was removed
    /// before the guest saw it (`scrub`).
    pub scrubbed: bool,
}

impl AuditEvent {
    /// An event for a request of `connector` starting now: outcome `sent`,
    /// destination and counters to be filled in as the request proceeds.
    pub fn new(
        connector: &crate::runtime::ConnectorRef,
        account_id: Option<String>,
        method: &str,
    ) -> Self {
        Self {
            at_ms: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or_default(),
            connector_id: connector.id.clone(),
            connector_version: connector.version.clone(),
            account_id,
            method: method.to_string(),
            scheme: None,
            host: None,
            port: None,
            path: None,
            outcome: AuditOutcome::Sent,
            reason: None,
            status: None,
            request_bytes: 0,
            response_bytes: 0,
            duration_us: 0,
            credential: None,
            scrubbed: false,
        }
    }

    /// Fills the destination a request tried from the guest's URL text when
    /// the policy refused it before parsing was done, so a refused request's
    /// row still says where it was going (query and userinfo never kept).
    pub fn attempted(&mut self, url_text: &str) {
        if self.host.is_some() {
            return;
        }
        match url::Url::parse(url_text) {
            Ok(url) => {
                self.scheme = Some(url.scheme().to_string());
                self.host = url.host_str().map(str::to_string);
                self.port = url.port_or_known_default();
                self.path = Some(url.path().to_string());
            }
            // Not a URL at all: keep a bounded, query-less prefix of the text.
            Err(_) => {
                let without_query = url_text.split(['?', '#']).next().unwrap_or_default();
                self.path = Some(without_query.to_string());
            }
        }
    }

    /// Caps every field a guest controls (host, path, reason) at a documented
    /// size, marking a cut with `…`, so a connector cannot grow the log or the
    /// audit table with one request: [`MAX_HOST_BYTES`], [`MAX_PATH_BYTES`],
    /// [`MAX_REASON_BYTES`].
    pub fn bounded(mut self) -> Self {
        for (field, max) in [
            (&mut self.host, MAX_HOST_BYTES),
            (&mut self.path, MAX_PATH_BYTES),
            (&mut self.reason, MAX_REASON_BYTES),
        ] {
            if let Some(value) = field {
                truncate_marked(value, max);
            }
        }
        self
    }
}

/// Longest host kept in an audit event (a DNS name is at most 253).
pub const MAX_HOST_BYTES: usize = 255;
/// Longest path kept in an audit event.
pub const MAX_PATH_BYTES: usize = 1024;
/// Longest refusal or failure reason kept in an audit event.
pub const MAX_REASON_BYTES: usize = 512;

/// Cuts `value` to at most `max` bytes (on a character boundary) plus `…`.
pub fn truncate_marked(value: &mut String, max: usize) {
    if value.len() <= max {
        return;
    }
    let mut cut = max;
    while !value.is_char_boundary(cut) {
        cut -= 1;
    }
    value.truncate(cut);
    value.push('…');
}

/// Where audit events go (the database in `serve`, memory in tests).
pub trait AuditSink: Send + Sync + 'static {
    /// Records one event. Must not block.
    fn record(&self, event: AuditEvent);
}

/// Keeps events in memory (tests, `check`).
#[derive(Debug, Default)]
pub struct MemoryAuditSink {
    events: Mutex<Vec<AuditEvent>>,
}

impl MemoryAuditSink {
    /// Every event so far.
    pub fn events(&self) -> Vec<AuditEvent> {
        self.events.lock().expect("audit lock").clone()
    }
}

impl AuditSink for MemoryAuditSink {
    fn record(&self, event: AuditEvent) {
        self.events.lock().expect("audit lock").push(event);
    }
}

/// Only the `tracing` event (which every sink also gets).
#[derive(Debug, Default)]
pub struct TracingOnlyAuditSink;

impl AuditSink for TracingOnlyAuditSink {
    fn record(&self, _event: AuditEvent) {}
}
