//! `ANY /v1/accounts/{account}/users/{user}/connections/{id}/proxy/{*path}`:
//! the pass-through proxy. The platform's request goes to the provider as it
//! is (method, path, query, headers, body) with the connection's credential
//! injected by the host, and the provider's answer comes back as it is (its
//! status, headers and body), both bodies streamed within
//! `[api] proxy_body_limit_bytes` (`flows/passthrough.rs`).
//!
//! Request headers forwarded: all but [`NOT_FORWARDED`] (and those starting
//! with [`NOT_FORWARDED_PREFIXES`], and those the `Connection` header names).
//! Response headers passed back: all but hop-by-hop ones and `Set-Cookie`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::{Body, HttpBody as _};
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Extension, Router};
use futures_util::StreamExt as _;

use super::{ApiError, AppState, Caller};
use crate::access::Role;
use crate::flows::{FlowError, PassthroughRequest};
use crate::store::ConnectionRef;
use connector_sandbox::capabilities::http::{BoxError, ByteStream, HOP_BY_HOP_HEADERS};

/// The request header naming the origin the path is appended to
/// (`https://eu.api.example.com`); never forwarded.
pub const ORIGIN_HEADER: &str = "connector-host-origin";

/// Request headers never forwarded: the caller's credentials for the host
/// (the host injects the connection's), the origin choice, framing the host
/// redoes, proxy and forwarding headers, and `accept-encoding` (so that the
/// provider answers uncompressed and the answer can be scrubbed).
pub const NOT_FORWARDED: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "expect",
    "accept-encoding",
    "forwarded",
    "via",
    ORIGIN_HEADER,
];

/// Prefixes of request header names never forwarded.
pub const NOT_FORWARDED_PREFIXES: &[&str] = &["proxy-", "x-forwarded-"];

/// The largest request and response body of the pass-through proxy.
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimit(u64);

/// The route, with its body limit.
pub(super) fn routes(body_limit_bytes: usize) -> Router<AppState> {
    Router::new()
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}/proxy/{*path}",
            any(passthrough),
        )
        .layer(Extension(BodyLimit(body_limit_bytes as u64)))
}

#[utoipa::path(
    method(get, post, put, patch, delete),
    path = "/v1/accounts/{account}/users/{user}/connections/{id}/proxy/{path}",
    tag = "flows",
    description = "Pass-through proxy (also HEAD and OPTIONS): the request is sent to the provider at the origin named by `connector-host-origin` (or the connector's only exact allowed origin) with `{path}` and the query appended, the caller's headers except credentials, hop-by-hop, forwarding and `accept-encoding` headers, and the body streamed; the connection's credential is injected by the host. The provider's status, headers (without hop-by-hop ones and `set-cookie`) and body come back as they are, streamed.",
    params(
        ("account" = String, Path),
        ("user" = String, Path),
        ("id" = String, Path),
        ("path" = String, Path, description = "The provider's path (percent-encoded; no empty, `.` or `..` segment, no encoded `/` or `\\`)"),
        ("connector-host-origin" = Option<String>, Header, description = "`scheme://host[:port]` within the connector's allowed hosts; required unless the connector allows exactly one origin"),
    ),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "Forwarded as it is (any content type), at most `api.proxy_body_limit_bytes`"),
    responses(
        (status = "default", description = "The provider's answer: its status, headers and body, streamed"),
        (status = 400, description = "Bad origin, path or method, or the request was refused by the connector's outbound policy (named)", body = ApiError),
        (status = 401, description = "No valid API key, or the provider refused the refresh token: the user must log in again", body = ApiError),
        (status = 403, description = "Not a service key of this account", body = ApiError),
        (status = 404, description = "Unknown connection or connector", body = ApiError),
        (status = 409, description = "The connection is logged out or needs re-auth", body = ApiError),
        (status = 413, description = "The body is larger than `api.proxy_body_limit_bytes`", body = ApiError),
        (status = 502, description = "Provider unreachable or too slow, its answer larger than the limit, or the expired token's refresh failed", body = ApiError),
        (status = 503, description = "A refresh held elsewhere did not finish within `[refresh] max_wait_ms`, or the host is busy; retry after `Retry-After`", body = ApiError),
    )
)]
pub(super) async fn passthrough(
    State(state): State<AppState>,
    Extension(BodyLimit(limit)): Extension<BodyLimit>,
    Path((account, user, id, _path)): Path<(String, String, String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    if !FORWARDED_METHODS.contains(&parts.method.as_str()) {
        return Ok(method_not_allowed(&parts.method));
    }
    // The key and its scope before anything of the connection is read.
    let Caller(caller) = match Caller::from_headers(&parts.headers, &state).await {
        Ok(caller) => caller,
        Err(response) => return Ok(response),
    };
    caller.require_account(Role::Service, &account, "proxy requests")?;
    let at = ConnectionRef {
        account_id: &account,
        user_id: &user,
        id: &id,
    };
    let declared = declared_length(&parts.headers)?;
    if declared.is_some_and(|length| length > limit) {
        return Err(too_large(limit));
    }
    // The path exactly as sent: the route's first nine segments are the
    // host's (`/v1/accounts/{account}/users/{user}/connections/{id}/proxy/`).
    let path = parts
        .uri
        .path()
        .splitn(10, '/')
        .nth(9)
        .unwrap_or_default()
        .to_string();
    let over = Arc::new(AtomicBool::new(false));
    let empty = body.is_end_stream() || declared == Some(0);
    let body = (!empty).then(|| (capped(body, limit, over.clone()), declared));
    let request = PassthroughRequest {
        method: parts.method.clone(),
        origin: header_text(&parts.headers, ORIGIN_HEADER)?,
        path,
        query: parts.uri.query().map(str::to_string),
        headers: forwarded(&parts.headers)?,
        body,
        max_response_bytes: limit,
    };
    let fetched = state
        .connections
        .get_with_secrets(at)
        .await
        .map_err(|e| ApiError::from(FlowError::Storage(e)))?;
    let response = match state.flows.passthrough(at, request, fetched).await {
        Ok(response) => response,
        Err(_) if over.load(Ordering::Relaxed) => return Err(too_large(limit)),
        Err(error) => return Err(error.into()),
    };
    let status = StatusCode::from_u16(response.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut answer = Response::new(Body::from_stream(response.body));
    *answer.status_mut() = status;
    *answer.headers_mut() = response.headers;
    Ok(answer.into_response())
}

/// The methods the route forwards.
const FORWARDED_METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// `405 method_not_allowed` with `Allow`, for `TRACE`, `CONNECT` and
/// methods of no standard.
fn method_not_allowed(method: &axum::http::Method) -> Response {
    let mut response = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        format!("`{method}` is not forwarded: use GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS"),
    )
    .into_response();
    response.headers_mut().insert(
        header::ALLOW,
        axum::http::HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    );
    response
}

/// `413 body_too_large`.
fn too_large(limit: u64) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "body_too_large",
        format!("the body is larger than {limit} bytes (api.proxy_body_limit_bytes)"),
    )
}

/// The request's `Content-Length`, if it declares one.
fn declared_length(headers: &HeaderMap) -> Result<Option<u64>, ApiError> {
    let Some(value) = headers.get(header::CONTENT_LENGTH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .and_then(|text| text.trim().parse::<u64>().ok())
        .map(Some)
        .ok_or_else(|| FlowError::field_error("content-length", "not a length").into())
}

/// A header's value as text, if present.
fn header_text(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    headers
        .get(name)
        .map(|value| {
            value
                .to_str()
                .map(str::to_string)
                .map_err(|_| FlowError::field_error(name, "not visible ASCII").into())
        })
        .transpose()
}

/// The caller's headers that go to the provider.
fn forwarded(headers: &HeaderMap) -> Result<Vec<(String, String)>, ApiError> {
    let named_by_connection: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .collect();
    let mut kept = Vec::new();
    for (name, value) in headers {
        let name = name.as_str();
        if NOT_FORWARDED.contains(&name)
            || HOP_BY_HOP_HEADERS.contains(&name)
            || NOT_FORWARDED_PREFIXES.iter().any(|p| name.starts_with(p))
            || named_by_connection.iter().any(|n| n == name)
        {
            continue;
        }
        let value = value.to_str().map_err(|_| {
            ApiError::from(FlowError::field_error(
                name,
                "a forwarded header value must be visible ASCII",
            ))
        })?;
        kept.push((name.to_string(), value.to_string()));
    }
    Ok(kept)
}

/// The request body as a stream that fails (and sets `over`) once it passes
/// `limit` bytes: nothing beyond the chunk in hand is buffered.
fn capped(body: Body, limit: u64, over: Arc<AtomicBool>) -> ByteStream {
    let mut seen = 0u64;
    Box::pin(body.into_data_stream().map(move |chunk| {
        let chunk = chunk.map_err(BoxError::from)?;
        seen += chunk.len() as u64;
        if seen > limit {
            over.store(true, Ordering::Relaxed);
            return Err(BoxError::from(format!(
                "the request body passed {limit} bytes"
            )));
        }
        Ok(chunk)
    }))
}
