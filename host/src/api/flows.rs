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

#[utoipa::path(get, path = "/v1/connectors/{id}/auth-page", tag = "flows", params(("id" = String, Path)), responses((status = 200, description = "What a client renders to log in", body = AuthPageView), (status = 404, description = "Unknown connector", body = ApiError)))]
pub(super) async fn auth_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<AuthPageView>, ApiError> {
    Ok(Json(state.flows.auth_page(&id)?))
}

#[utoipa::path(post, path = "/v1/connectors/{id}/api-key/login", tag = "flows", params(("id" = String, Path)), request_body = ApiKeyLogin, responses((status = 200, description = "The saved connection", body = Connection), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn api_key_login(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<ApiKeyLogin>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<Connection>, ApiError> {
    let Json(login) = body.map_err(ApiError::bad_body)?;
    Ok(Json(state.flows.api_key_login(&id, login).await?))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/connections/{id}/logout", tag = "flows", params(("account" = String, Path), ("id" = String, Path)), responses((status = 200, description = "Logged out; our copy of the credentials is cleared", body = LogoutResult), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn logout(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<LogoutResult>, ApiError> {
    Ok(Json(state.flows.logout(&account, &id).await?))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/connections/{id}/validate", tag = "flows", params(("account" = String, Path), ("id" = String, Path)), responses((status = 200, description = "Validation outcome", body = ValidationResult), (status = 409, description = "The connection is logged out", body = ApiError), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn validate(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<ValidationResult>, ApiError> {
    Ok(Json(state.flows.validate(&account, &id).await?))
}

#[utoipa::path(post, path = "/v1/accounts/{account}/connections/{id}/refresh-user-info", tag = "flows", params(("account" = String, Path), ("id" = String, Path)), responses((status = 200, description = "The connection with the refreshed identity", body = Connection), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn refresh_user_info(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<Connection>, ApiError> {
    Ok(Json(state.flows.refresh_user_info(&account, &id).await?))
}

#[utoipa::path(post, path = "/v1/connectors/{id}/oauth/start", tag = "flows", params(("id" = String, Path)), request_body = OAuthStart, responses((status = 200, description = "Where to send the user", body = OAuthStarted), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn oauth_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    body: Result<Json<OAuthStart>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<OAuthStarted>, ApiError> {
    let Json(start) = body.map_err(ApiError::bad_body)?;
    Ok(Json(state.flows.oauth_start(&id, start).await?))
}

#[utoipa::path(get, path = "/v1/oauth/callback", tag = "flows", params(("code" = Option<String>, Query), ("state" = Option<String>, Query), ("iss" = Option<String>, Query), ("error" = Option<String>, Query), ("error_description" = Option<String>, Query)), responses((status = 200, description = "The saved connection", body = OAuthConnected), (status = 400, description = "Bad input (the field is named)", body = ApiError), (status = 401, description = "The provider rejected the credentials", body = ApiError), (status = 404, description = "Unknown connector or connection", body = ApiError), (status = 502, description = "Provider or connector failure", body = ApiError)))]
pub(super) async fn oauth_callback(
    State(state): State<AppState>,
    axum::extract::Query(callback): axum::extract::Query<OAuthCallback>,
) -> Result<Json<OAuthConnected>, ApiError> {
    Ok(Json(state.flows.oauth_callback(callback).await?))
}
