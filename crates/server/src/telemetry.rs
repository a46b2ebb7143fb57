//! Prometheus metrics: the one recorder of the `metrics` facade in this
//! process, the names of what the server counts, and the gauges read when
//! `/metrics` is scraped. The sandbox counts hook calls and outbound
//! requests itself (`connector_sandbox::runtime::metrics`).
//!
//! Labels are connector ids, hook and route templates and fixed outcome
//! words — never a path with ids in it, an account or a value a guest
//! chooses — so the number of series stays bounded.

use std::sync::OnceLock;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// API requests by method, route template and status.
pub const HTTP_REQUESTS: &str = "connector_host_http_requests_total";
/// API request latency by method and route template, in seconds.
pub const HTTP_SECONDS: &str = "connector_host_http_request_duration_seconds";
/// Connection events by connector and type (`connection.created` is a login,
/// `connection.refresh_failed`, `connection.needs_reauth`, …).
pub const CONNECTION_EVENTS: &str = "connector_host_connection_events_total";
/// Token refreshes by connector and outcome (`ok`, `failed`).
pub const TOKEN_REFRESHES: &str = "connector_host_token_refreshes_total";
/// Webhook delivery attempts by outcome (`delivered`, `retry`, `gave_up`,
/// `forged`).
pub const WEBHOOK_DELIVERIES: &str = "connector_host_webhook_deliveries_total";
/// Hook-call slots in use, and in all (gauges read at scrape time).
pub const SLOTS_IN_USE: &str = "connector_host_call_slots_in_use";
/// See [`SLOTS_IN_USE`].
pub const SLOTS: &str = "connector_host_call_slots";
/// Database pool connections by state (`idle`, `in_use`), at scrape time.
pub const DB_POOL: &str = "connector_host_db_pool_connections";
/// 1 while this process hears the change notices of every replica (always on
/// SQLite); 0 while its PostgreSQL listening connection is down, when cached
/// API keys are not used. At scrape time.
pub const CHANGE_NOTICES_LIVE: &str = "connector_host_change_notices_live";

/// Latency buckets, in seconds: 1 ms to 30 s.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's Prometheus recorder, installed on first use; `None` when
/// another recorder was installed first (then `/metrics` says so).
pub fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .and_then(|builder| builder.install_recorder());
            match handle {
                Ok(handle) => {
                    describe();
                    Some(handle)
                }
                Err(error) => {
                    tracing::warn!(%error, "no Prometheus recorder: /metrics is unavailable");
                    None
                }
            }
        })
        .as_ref()
}

/// The help text of every metric.
fn describe() {
    use connector_sandbox::runtime::metrics as sandbox;
    metrics::describe_counter!(HTTP_REQUESTS, "API requests by method, route and status");
    metrics::describe_histogram!(HTTP_SECONDS, metrics::Unit::Seconds, "API request latency");
    metrics::describe_counter!(
        CONNECTION_EVENTS,
        "Connection events by connector and type (connection.created is a login)"
    );
    metrics::describe_counter!(TOKEN_REFRESHES, "Token refreshes by connector and outcome");
    metrics::describe_counter!(WEBHOOK_DELIVERIES, "Webhook delivery attempts by outcome");
    metrics::describe_gauge!(SLOTS_IN_USE, "Hook-call slots in use");
    metrics::describe_gauge!(SLOTS, "Hook-call slots in all");
    metrics::describe_gauge!(DB_POOL, "Database pool connections by state");
    metrics::describe_gauge!(
        CHANGE_NOTICES_LIVE,
        "1 while change notices from every replica are heard"
    );
    metrics::describe_counter!(
        sandbox::HOOK_CALLS,
        "Hook calls by connector, hook and outcome"
    );
    metrics::describe_histogram!(
        sandbox::HOOK_CALL_SECONDS,
        metrics::Unit::Seconds,
        "Hook call latency, waiting for a slot included"
    );
    metrics::describe_counter!(
        sandbox::OUTBOUND_REQUESTS,
        "Outbound requests by connector and outcome"
    );
}

/// Counts a connection event.
pub(crate) fn connection_event(connector_id: &str, kind: &'static str) {
    metrics::counter!(CONNECTION_EVENTS, "connector" => connector_id.to_string(), "type" => kind)
        .increment(1);
}

/// Counts a token refresh.
pub(crate) fn token_refresh(connector_id: &str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    metrics::counter!(TOKEN_REFRESHES, "connector" => connector_id.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Counts a webhook delivery attempt.
pub(crate) fn webhook_delivery(outcome: &'static str) {
    metrics::counter!(WEBHOOK_DELIVERIES, "outcome" => outcome).increment(1);
}
