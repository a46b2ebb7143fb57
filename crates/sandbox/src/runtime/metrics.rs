//! What the runtime counts, through the `metrics` facade (the server renders
//! it for Prometheus at `/metrics`; without a recorder these are no-ops).
//! Labels are connector ids, hook names and fixed outcome words: never a
//! value a guest chooses.

use std::time::Duration;

use connector_abi::hook::Hook;

use crate::connector_ref::ConnectorRef;

/// Hook calls by connector, hook and outcome (`ok` or a `CallError` kind).
pub const HOOK_CALLS: &str = "connector_host_hook_calls_total";
/// Hook call latency by connector and hook, in seconds.
pub const HOOK_CALL_SECONDS: &str = "connector_host_hook_call_duration_seconds";
/// Outbound requests by connector and outcome (`sent`, `refused`, `failed`).
pub const OUTBOUND_REQUESTS: &str = "connector_host_outbound_requests_total";

/// Counts one hook call and its latency.
pub(crate) fn hook_call(
    connector: &ConnectorRef,
    hook: Hook,
    outcome: &'static str,
    took: Duration,
) {
    let (id, name) = (connector.id.clone(), hook.name());
    metrics::counter!(HOOK_CALLS, "connector" => id.clone(), "hook" => name, "outcome" => outcome)
        .increment(1);
    metrics::histogram!(HOOK_CALL_SECONDS, "connector" => id, "hook" => name)
        .record(took.as_secs_f64());
}

/// Counts one outbound request.
pub(crate) fn outbound_request(connector_id: &str, outcome: &'static str) {
    metrics::counter!(OUTBOUND_REQUESTS, "connector" => connector_id.to_string(), "outcome" => outcome)
        .increment(1);
}
