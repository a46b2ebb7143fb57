//! The OpenAPI document of the HTTP API, generated from the handlers'
//! annotations and the types' schemas; served at `/openapi.json`.

use axum::Json;
use utoipa::OpenApi;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "connector-host",
        description = "Runs third-party auth connectors as sandboxed WebAssembly components. No route ever returns a secret. Every /v1 route needs `Authorization: Bearer <API key>`; the key's role (operator, account-admin, service) and accounts decide what it may do."
    ),
    modifiers(&BearerKeys),
    security(("bearer" = [])),
    paths(
        super::whoami,
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
        super::flows::proxy,
        super::flows::credentials,
        super::admin::get_managed_oauth,
        super::admin::put_managed_oauth,
        super::admin::delete_managed_oauth,
        super::admin::get_account_fields,
        super::admin::put_account_fields,
        super::admin::get_user_fields,
        super::admin::put_user_fields,
        super::admin::account_admin_audit,
        super::admin::all_admin_audit,
    ),
    tags(
        (name = "access", description = "The caller's API key"),
        (name = "admin", description = "Admin-managed credentials of an account, and the admin audit"),
        (name = "connectors", description = "Loaded connectors, their versions and outbound audit"),
        (name = "connections", description = "Connections (status only, never secrets)"),
        (name = "flows", description = "Login, logout, validation")
    )
)]
pub struct ApiDoc;

/// Declares the `bearer` scheme: `Authorization: Bearer <API key>` on every
/// `/v1` route.
struct BearerKeys;

impl utoipa::Modify for BearerKeys {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "An API key created with `connector-host api-keys create`",
                    ))
                    .build(),
            ),
        );
    }
}

/// `GET /openapi.json`.
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
