//! The OpenAPI document of the HTTP API, generated from the handlers'
//! annotations and the types' schemas; served at `/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "connector-host",
        description = "Runs third-party auth connectors as sandboxed WebAssembly components. No route ever returns a secret."
    ),
    paths(
        super::list_connectors,
        super::get_connector,
        super::connector_versions,
        super::connector_audit,
        super::list_connections,
        super::get_connection,
        super::flows::auth_page,
        super::flows::api_key_login,
        super::flows::oauth_start,
        super::flows::oauth_callback,
        super::flows::logout,
        super::flows::validate,
        super::flows::refresh_user_info,
    ),
    tags(
        (name = "connectors", description = "Loaded connectors, their versions and outbound audit"),
        (name = "connections", description = "Connections (status only, never secrets)"),
        (name = "flows", description = "Login, logout, validation")
    )
)]
pub struct ApiDoc;

/// `GET /openapi.json`.
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
