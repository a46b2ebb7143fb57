//! Routes of the connection flows. Request and response bodies are JSON;
//! errors are `{code, message, field?}` with a matching status. No route ever
//! returns a secret.

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::{ApiError, AppState};
use crate::flows::{
    ApiKeyLogin, AuthPageView, LogoutResult, OAuthCallback, OAuthConnected, OAuthStart,
    OAuthStarted, ValidationResult,
};
use crate::store::Connection;

/// `GET /v1/connectors/{id}/auth-page`, `POST /v1/connectors/{id}/api-key/login`,
/// `POST /v1/connectors/{id}/oauth/start`, `GET /v1/oauth/callback`,
/// `POST /v1/accounts/{account}/connections/{id}/{logout,validate,refresh-user-info}`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/connectors/{id}/auth-page", get(auth_page))
        .route("/v1/connectors/{id}/api-key/login", post(api_key_login))
        .route("/v1/connectors/{id}/oauth/start", post(oauth_start))
        .route("/v1/oauth/callback", get(oauth_callback))
        .route(
            "/v1/accounts/{account}/connections/{id}/logout",
            post(logout),
        )
        .route(
            "/v1/accounts/{account}/connections/{id}/validate",
            post(validate),
        )
        .route(
            "/v1/accounts/{account}/connections/{id}/refresh-user-info",
            post(refresh_user_info),
        )
}

async fn auth_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AuthPageView>, ApiError> {
    Ok(Json(state.flows.auth_page(&id)?))
}

async fn api_key_login(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ApiKeyLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Connection>, ApiError> {
    let Json(login) = body.map_err(ApiError::bad_body)?;
    Ok(Json(state.flows.api_key_login(&id, login).await?))
}

async fn logout(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<LogoutResult>, ApiError> {
    Ok(Json(state.flows.logout(&account, &id).await?))
}

async fn validate(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<ValidationResult>, ApiError> {
    Ok(Json(state.flows.validate(&account, &id).await?))
}

async fn refresh_user_info(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(state.flows.refresh_user_info(&account, &id).await?))
}

async fn oauth_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<OAuthStart>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<OAuthStarted>, ApiError> {
    let Json(start) = body.map_err(ApiError::bad_body)?;
    Ok(Json(state.flows.oauth_start(&id, start).await?))
}

async fn oauth_callback(
    State(state): State<AppState>,
    axum::extract::Query(callback): axum::extract::Query<OAuthCallback>,
) -> Result<Json<OAuthConnected>, ApiError> {
    Ok(Json(state.flows.oauth_callback(callback).await?))
}
