//! Per-request telemetry: a request id on every response and on every log
//! line written while the request is handled, the API's Prometheus counters,
//! and `GET /metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument as _;

use super::{ApiError, AppState, Caller};
use crate::access::Role;
use crate::telemetry::{
    CHANGE_NOTICES_LIVE, DB_POOL, HTTP_REQUESTS, HTTP_SECONDS, SLOTS, SLOTS_IN_USE, prometheus,
};

/// The request id header, read from the request when the caller sent a
/// usable one, else made here, and always sent back.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest request id taken from a caller.
const MAX_REQUEST_ID: usize = 64;

/// Gives every request an id (the caller's `x-request-id` when it is 1–64
/// characters of `A–Z a–z 0–9 . _ -`, else a new one), handles the request
/// inside a `request` span carrying it, so every log line of the request
/// names it, and returns it in `x-request-id`. Each request ends with a
/// `debug` line of target `connector_host::access` (status, microseconds):
/// an access log, off unless `RUST_LOG` turns it on.
pub(super) async fn request_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|value| usable(value))
        .map(str::to_string)
        .unwrap_or_else(new_request_id);
    let span = tracing::info_span!("request", request_id = %id, method = %request.method());
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            target: "connector_host::access",
            status = response.status().as_u16(),
            duration_us = started.elapsed().as_micros() as u64,
            "request handled"
        )
    });
    let value = HeaderValue::from_str(&id).expect("a usable id is a header value");
    response.headers_mut().insert(REQUEST_ID, value);
    response
}

/// Counts a request that matched a route, by method, route template (never
/// the path with its ids) and status, with its latency.
pub(super) async fn count(matched: MatchedPath, request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let route = matched.as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "method" => method, "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_SECONDS, "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

/// `GET /metrics` (an operator key): the Prometheus text format, with the
/// slot and database-pool gauges read now.
pub(super) async fn metrics_text(
    Caller(caller): Caller,
    State(state): State<AppState>,
) -> Result<Response, ApiError> {
    caller.require_role(&[Role::Operator], "read the metrics")?;
    let Some(handle) = prometheus() else {
        return Ok((
            StatusCode::SERVICE_UNAVAILABLE,
            "no Prometheus recorder in this process\n",
        )
            .into_response());
    };
    let (in_use, total) = state.registry.runtime().slots();
    metrics::gauge!(SLOTS_IN_USE).set(in_use as f64);
    metrics::gauge!(SLOTS).set(total as f64);
    let (idle, size) = state.database.pool_use();
    metrics::gauge!(DB_POOL, "state" => "idle").set(idle as f64);
    metrics::gauge!(DB_POOL, "state" => "in_use").set(size.saturating_sub(idle) as f64);
    let live = state.database.changes().is_live();
    metrics::gauge!(CHANGE_NOTICES_LIVE).set(if live { 1.0 } else { 0.0 });
    Ok((
        [(
            CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response())
}

/// Whether a caller's request id may be used as it is.
fn usable(id: &str) -> bool {
    (1..=MAX_REQUEST_ID).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-_".contains(&b))
}

/// A new request id: `req_` and 16 random hex digits.
fn new_request_id() -> String {
    use rand::RngCore as _;
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!("req_{}", hex::encode(bytes))
}

/// The method as a label: one of the standard methods, else `other` (a
/// client cannot grow the number of series with made-up methods).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_taken_from_callers() {
        assert!(usable("abc-123_x.y"));
        assert!(!usable(""));
        assert!(!usable(&"a".repeat(65)));
        assert!(!usable("id with spaces"));
        assert!(!usable("id\r\nx-evil: 1"));
        let made = new_request_id();
        assert!(usable(&made) && made.starts_with("req_"), "{made}");
        assert_ne!(made, new_request_id());
    }

    #[test]
    fn made_up_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::from_bytes(b"BREW").unwrap()), "other");
    }
}
