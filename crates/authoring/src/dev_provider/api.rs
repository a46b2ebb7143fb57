//! The CRM APIs the example connectors call to learn who the user is:
//! `GET /api/v1/me` (OAuth, `oauth-regional`) and `GET /v3.1/Users/Me`
//! (API key, `apikey-insightly`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::header::WWW_AUTHENTICATE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{Shared, authorization, constant_time_eq, decode_basic};

/// `GET /api/v1/me`: the user of a valid Bearer access token, else 401
/// `{"error":"invalid_token"}` (RFC 6750 §3.1).
pub(super) async fn me(State(shared): State<Arc<Shared>>, headers: HeaderMap) -> Response {
    let mut store = shared.store();
    store.stats.userinfo_requests += 1;
    let user = match authorization(&headers, "Bearer") {
        Ok(Some(token)) => store.access_token_user(token),
        Ok(None) | Err(()) => None,
    };
    drop(store);
    match user {
        Some(n) => Json(json!({
            "id": format!("u-{n}"),
            "name": "Ada Lovelace",
            "timezone": "Europe/London",
        }))
        .into_response(),
        None => (
            StatusCode::UNAUTHORIZED,
            [(
                WWW_AUTHENTICATE,
                "Bearer realm=\"dev-provider\", error=\"invalid_token\"",
            )],
            Json(json!({ "error": "invalid_token" })),
        )
            .into_response(),
    }
}

/// `GET /v3.1/Users/Me`, Insightly style: `Authorization: Basic
/// base64(<api key>:)` (the key as user name, an empty password) with a
/// configured key, else 401.
pub(super) async fn insightly_users_me(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
) -> Response {
    shared.store().stats.userinfo_requests += 1;
    let revoked = shared.faults().revoked_api_keys.clone();
    let known = match authorization(&headers, "Basic") {
        Ok(Some(credentials)) => decode_basic(credentials).is_some_and(|(key, password)| {
            password.is_empty()
                && shared
                    .config
                    .api_keys
                    .iter()
                    .filter(|known| !revoked.contains(known))
                    .any(|known| constant_time_eq(known.as_bytes(), key.as_bytes()))
        }),
        Ok(None) | Err(()) => false,
    };
    if known {
        Json(json!({
            "USER_ID": 12345,
            "FIRST_NAME": "Ada",
            "LAST_NAME": "Lovelace",
            "TIMEZONE_ID": "GMT Standard Time",
        }))
        .into_response()
    } else {
        (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Basic realm=\"Insightly\"")],
            Json(json!({ "error": "invalid_api_key" })),
        )
            .into_response()
    }
}
