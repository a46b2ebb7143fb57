//! Authentication of API requests: `Authorization: Bearer <key>` on every
//! `/v1` route, checked against the key store on every request (so a revoked
//! key stops working at once). Routes then check the role and account scope
//! of the [`Caller`] with [`Principal::require_role`] and
//! [`Principal::require_account`].

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};

use super::{ApiError, AppState};
use crate::access::{Denied, Principal};

/// The authenticated caller of a `/v1` route.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// A missing, malformed, unknown or revoked key: 401 with a `WWW-Authenticate`
/// challenge (RFC 6750).
pub struct Unauthenticated(&'static str);

impl IntoResponse for Unauthenticated {
    fn into_response(self) -> Response {
        let mut response = ApiError {
            code: "unauthenticated",
            message: self.0.to_string(),
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status: StatusCode::UNAUTHORIZED,
        }
        .into_response();
        response.headers_mut().insert(
            WWW_AUTHENTICATE,
            "Bearer realm=\"connector-host\"".parse().expect("valid"),
        );
        response
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Caller::from_headers(&parts.headers, state).await
    }
}

impl Caller {
    /// Authenticates the bearer key of `headers` (for handlers that overlap
    /// the key check with other work).
    pub(super) async fn from_headers(
        headers: &axum::http::HeaderMap,
        state: &AppState,
    ) -> Result<Self, Response> {
        let header = headers
            .get(AUTHORIZATION)
            .ok_or(Unauthenticated(
                "this route needs an API key: `Authorization: Bearer <key>`",
            ))
            .map_err(IntoResponse::into_response)?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or(Unauthenticated(
                "the Authorization header must be `Bearer <key>`",
            ))
            .map_err(IntoResponse::into_response)?;
        match state.api_keys.authenticate(token).await {
            Ok(Some(principal)) => {
                state
                    .rates
                    .check(&principal.key_id)
                    .map_err(IntoResponse::into_response)?;
                Ok(Caller(principal))
            }
            Ok(None) => Err(Unauthenticated("unknown or revoked API key").into_response()),
            Err(error) => Err(ApiError::internal(error.into()).into_response()),
        }
    }
}

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        ApiError {
            code: "forbidden",
            message: denied.to_string(),
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status: StatusCode::FORBIDDEN,
        }
    }
}
