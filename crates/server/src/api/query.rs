//! Query strings: axum's `Query` answers a malformed one with a plain-text
//! 400; [`ApiQuery`] answers with the API's JSON error, as the document says.
//! And the `limit` of the list routes, checked rather than clamped, so that
//! what the document allows is exactly what is accepted.

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::ApiError;
use crate::flows::FlowError;

/// A deserialised query string; a malformed one is `400 invalid_query`.
pub(super) struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        match Query::<T>::from_request_parts(parts, state).await {
            Ok(Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::bad_query(rejection)),
        }
    }
}

/// The smallest and largest `limit` of the list routes.
pub(super) const LIMITS: std::ops::RangeInclusive<i64> = 1..=1000;
/// The `limit` when none is given.
pub(super) const DEFAULT_LIMIT: i64 = 50;

/// `limit` of a list route: [`DEFAULT_LIMIT`] when absent, an error naming the
/// field outside [`LIMITS`].
pub(super) fn checked_limit(limit: Option<i64>) -> Result<i64, ApiError> {
    match limit {
        None => Ok(DEFAULT_LIMIT),
        Some(limit) if LIMITS.contains(&limit) => Ok(limit),
        Some(limit) => Err(FlowError::field_error(
            "limit",
            format!(
                "{limit} is out of range: must be between {} and {}",
                LIMITS.start(),
                LIMITS.end()
            ),
        )
        .into()),
    }
}
