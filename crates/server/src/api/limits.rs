//! The host's own API under abuse: every route has a body limit and a time
//! limit, the number of requests in flight is bounded (more are shed with
//! 503), and each API key gets a rate (more are refused with 429 and a
//! `Retry-After`). Set in `[api]` of the config file.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::error_handling::HandleErrorLayer;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use tower::ServiceBuilder;

use super::ApiError;

/// Limits of the HTTP API (`[api]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiLimits {
    /// Largest request body, in bytes (413 above), of every route but the
    /// two below.
    pub body_limit_bytes: usize,
    /// Largest request body of `POST /v1/components` (publishing: a JSON
    /// body with the component in base64; a JavaScript connector is about
    /// 12 MB, 16 MiB encoded), in bytes (413 above). Read only for an
    /// operator key.
    pub publish_body_limit_bytes: usize,
    /// Largest request body, and largest response body, of the pass-through
    /// proxy (`…/proxy/{path}`), in bytes; enforced while streaming (413
    /// above for the request, the response is cut).
    pub proxy_body_limit_bytes: usize,
    /// Time limit of one request, in seconds (408 after).
    pub request_timeout_secs: u64,
    /// Time a client has to send a request's headers, in seconds; the
    /// connection is closed after it (slow-headers clients).
    pub header_read_timeout_secs: u64,
    /// Requests handled at once; more are refused with 503 at once.
    pub max_in_flight: usize,
    /// Sustained requests per second one API key may make (429 above).
    pub requests_per_second_per_key: u32,
    /// Requests one API key may make in a burst above its rate.
    pub burst_per_key: u32,
    /// How long a live API key is kept in memory after it was read, in
    /// seconds (0: every request reads the database). Revocation reaches
    /// every replica's memory at once through change notices; this bounds
    /// staleness when a notice is lost, and on SQLite when another process
    /// (`connector-host api-keys revoke`) revokes.
    pub api_key_cache_secs: u64,
}

impl Default for ApiLimits {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            publish_body_limit_bytes: 32 << 20,
            proxy_body_limit_bytes: 32 << 20,
            request_timeout_secs: 30,
            header_read_timeout_secs: 10,
            max_in_flight: 1024,
            requests_per_second_per_key: 200,
            burst_per_key: 400,
            api_key_cache_secs: crate::store::DEFAULT_KEY_CACHE_TTL.as_secs(),
        }
    }
}

impl ApiLimits {
    /// Checks the settings, naming the key of a bad value.
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, u64, u64, u64); 9] = [
            (
                "body_limit_bytes",
                self.body_limit_bytes as u64,
                1024,
                64 << 20,
            ),
            (
                "publish_body_limit_bytes",
                self.publish_body_limit_bytes as u64,
                1024,
                256 << 20,
            ),
            (
                "proxy_body_limit_bytes",
                self.proxy_body_limit_bytes as u64,
                1024,
                4 << 30,
            ),
            ("request_timeout_secs", self.request_timeout_secs, 1, 3600),
            (
                "header_read_timeout_secs",
                self.header_read_timeout_secs,
                1,
                300,
            ),
            ("max_in_flight", self.max_in_flight as u64, 1, 1 << 20),
            (
                "requests_per_second_per_key",
                self.requests_per_second_per_key.into(),
                1,
                1_000_000,
            ),
            ("burst_per_key", self.burst_per_key.into(), 1, 1_000_000),
            ("api_key_cache_secs", self.api_key_cache_secs, 0, 300),
        ];
        for (key, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(format!("api.{key}: must be between {min} and {max}"));
            }
        }
        Ok(())
    }

    /// `router` with the body, time and in-flight limits around every route
    /// (the in-flight limit is one semaphore for the whole API: `Router::layer`
    /// wraps each route separately), `publishing` the same with
    /// `publish_body_limit_bytes` instead, and `streamed` (the pass-through
    /// proxy, which enforces `proxy_body_limit_bytes` while streaming) with the
    /// time and in-flight limits only.
    pub fn apply(&self, router: Router, publishing: Router, streamed: Router) -> Router {
        let layers = ServiceBuilder::new()
            .layer(HandleErrorLayer::new(|error: tower::BoxError| async move {
                overloaded(&error)
            }))
            .load_shed()
            .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
                self.max_in_flight,
            ))
            .timeout(Duration::from_secs(self.request_timeout_secs));
        router
            .layer(DefaultBodyLimit::max(self.body_limit_bytes))
            .layer(tower_http::limit::RequestBodyLimitLayer::new(
                self.body_limit_bytes,
            ))
            .merge(
                publishing
                    .layer(DefaultBodyLimit::max(self.publish_body_limit_bytes))
                    .layer(tower_http::limit::RequestBodyLimitLayer::new(
                        self.publish_body_limit_bytes,
                    )),
            )
            .merge(streamed)
            .layer(layers)
    }
}

/// 503 when shed, 408 when timed out.
fn overloaded(error: &tower::BoxError) -> Response {
    let (status, code, message) = if error.is::<tower::timeout::error::Elapsed>() {
        (
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request took longer than the host allows (api.request_timeout_secs)",
        )
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "overloaded",
            "the host is handling as many requests as it allows (api.max_in_flight); retry shortly",
        )
    };
    let mut response = ApiError::new(status, code, message.to_string()).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert("retry-after", "1".parse().expect("valid"));
    }
    response
}

/// The per-key rate: one bucket per API key id (so its memory is bounded by
/// the number of keys, not by what callers send).
#[derive(Clone)]
pub struct KeyRates {
    limiter: Arc<DefaultKeyedRateLimiter<String>>,
}

impl KeyRates {
    /// Rates from the settings.
    pub fn new(limits: &ApiLimits) -> Self {
        let rate = NonZeroU32::new(limits.requests_per_second_per_key).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(limits.burst_per_key).unwrap_or(NonZeroU32::MIN);
        Self {
            limiter: Arc::new(RateLimiter::keyed(
                Quota::per_second(rate).allow_burst(burst),
            )),
        }
    }

    /// Takes one request from `key_id`'s bucket, or says when to retry.
    pub fn check(&self, key_id: &str) -> Result<(), RateLimited> {
        self.limiter
            .check_key(&key_id.to_string())
            .map_err(|not_until| RateLimited {
                retry_after_secs: not_until
                    .wait_time_from(DefaultClock::default().now())
                    .as_secs()
                    .max(1),
            })
    }
}

/// A key over its rate: 429 with `Retry-After`.
#[derive(Debug)]
pub struct RateLimited {
    /// Seconds until the key may send again.
    pub retry_after_secs: u64,
}

impl IntoResponse for RateLimited {
    fn into_response(self) -> Response {
        let seconds = self.retry_after_secs;
        let mut response = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "this API key is over its rate (api.requests_per_second_per_key); retry in {seconds} s"
            ),
        )
        .into_response();
        response.headers_mut().insert(
            "retry-after",
            seconds.to_string().parse().expect("a number"),
        );
        response
    }
}
