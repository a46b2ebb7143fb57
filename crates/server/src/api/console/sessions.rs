//! `POST /v1/connect-sessions`: a platform's backend (a service key scoped
//! to the account) creates a short-lived, single-use connect session for one
//! user and one connector, and hands the answer's `url` to that user's
//! browser. The API key itself never reaches a browser.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::super::{ApiError, AppState, Caller};
use crate::access::Role;
use crate::console::connect::{ConnectRequest, CreateError};
use crate::flows::FlowError;

/// A connect session request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(in crate::api) struct CreateConnectSession {
    /// Platform account (within the key's scope).
    account_id: String,
    /// Platform user who will log in.
    user_id: String,
    /// The connector to log in to.
    connector_id: String,
    /// The platform's page the browser returns to after a successful login
    /// (`?connection=<id>` is appended); without it, the host shows the
    /// result itself.
    #[serde(default)]
    return_url: Option<String>,
}

/// A created connect session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(in crate::api) struct ConnectSessionCreated {
    /// The single-use token (already in `url`).
    token: String,
    /// The page to open in the user's browser: valid once, until `expiresAt`.
    url: String,
    /// Unix seconds after which the link and the session are refused.
    expires_at: i64,
}

#[utoipa::path(post, path = "/v1/connect-sessions", tag = "console", request_body = CreateConnectSession, responses((status = 201, description = "The connect link for the user's browser (single use, short-lived)", body = ConnectSessionCreated), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 404, description = "Unknown connector", body = ApiError)))]
pub(in crate::api) async fn create(
    Caller(caller): Caller,
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Json<CreateConnectSession>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = body.map_err(ApiError::bad_body)?;
    caller.require_account(
        Role::Service,
        &request.account_id,
        "create connect sessions",
    )?;
    if state.registry.get(&request.connector_id).is_none() {
        return Err(FlowError::UnknownConnector(request.connector_id).into());
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let base = state.console.base_url(host);
    let link = state
        .console
        .create_session(
            ConnectRequest {
                account_id: request.account_id,
                user_id: request.user_id,
                connector_id: request.connector_id,
                return_url: request.return_url,
            },
            &caller.key_id,
            &base,
        )
        .await
        .map_err(|error| match error {
            CreateError::Field { field, message } => {
                ApiError::from(FlowError::field_error(field, message))
            }
            CreateError::Storage(error) => ApiError::internal(error.into()),
        })?;
    tracing::info!(key = %caller.key_id, expires_at = link.expires_at, "connect session created");
    let mut response = (
        StatusCode::CREATED,
        Json(ConnectSessionCreated {
            token: link.token,
            url: link.url,
            expires_at: link.expires_at,
        }),
    )
        .into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}
