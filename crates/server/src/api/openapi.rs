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
    modifiers(&BearerKeys, &CommonResponses, &ClosedAuthPage),
    components(schemas(super::flows::AuthForm)),
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
        super::flows::client_credentials_login,
        super::flows::logout,
        super::flows::validate,
        super::flows::refresh_user_info,
        super::flows::test_connection,
        super::flows::force_refresh,
        super::flows::proxy,
        super::passthrough::passthrough,
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
        super::components::publish,
        super::components::versions,
        super::components::pin,
        super::components::unpin,
        super::components::rollback,
        super::components::retire,
        super::components::replicas,
        super::console::sessions::create,
    ),
    tags(
        (name = "access", description = "The caller's API key"),
        (name = "admin", description = "Admin-managed credentials of an account, and the admin audit"),
        (name = "connectors", description = "Loaded connectors, their versions and outbound audit"),
        (name = "components", description = "Components published to the database, their versions, and what each replica serves"),
        (name = "connections", description = "Connections (status only, never secrets)"),
        (name = "console", description = "Connect sessions: single-use links to the host's connect pages for one user's login"),
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

/// Adds the answers every `/v1` route can give whatever its handler does
/// (the key check, the `[api]` limits, unknown ids in the path, a malformed
/// body), so that the document names every status the API sends.
struct CommonResponses;

impl utoipa::Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            let has_path_ids = path.contains('{');
            let is_managed = path.contains("/managed-oauth") || path.contains("/managed-fields");
            let is_query = |parameter: &utoipa::openapi::path::Parameter| {
                matches!(
                    parameter.parameter_in,
                    utoipa::openapi::path::ParameterIn::Query
                )
            };
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                let has_body = operation.request_body.is_some();
                let has_query = operation
                    .parameters
                    .as_ref()
                    .is_some_and(|parameters| parameters.iter().any(is_query));
                for (status, description, applies) in [
                    (
                        "400",
                        "Bad input (the field is named)",
                        has_body || has_query,
                    ),
                    (
                        "401",
                        "No API key, or not a valid one (`unauthenticated`)",
                        true,
                    ),
                    (
                        "403",
                        "The key's role or accounts do not allow this (`forbidden`)",
                        true,
                    ),
                    ("404", "Unknown id in the path", has_path_ids),
                    (
                        "408",
                        "The request took longer than `api.request_timeout_secs`",
                        true,
                    ),
                    (
                        "413",
                        "The body is larger than `api.body_limit_bytes`",
                        has_body,
                    ),
                    (
                        "429",
                        "This API key is over its rate; retry after `Retry-After` seconds",
                        true,
                    ),
                    (
                        "503",
                        "The host is handling `api.max_in_flight` requests; retry after `Retry-After` seconds",
                        true,
                    ),
                ] {
                    if applies {
                        operation
                            .responses
                            .responses
                            .entry(status.to_string())
                            .or_insert_with(|| error_response(description, status));
                    }
                }
                if is_managed {
                    for (status, description) in MANAGED_ROUTE_RESPONSES {
                        operation
                            .responses
                            .responses
                            .entry(status.to_string())
                            .or_insert_with(|| error_response(description, status));
                    }
                }
            }
        }
    }
}

/// `AuthPage` as what it is on the wire: the OAuth block or the API-key page
/// with a `type` beside their fields. (The derived schema says
/// `allOf: [OAuthBlock, {type}]`, which no value can match, as `OAuthBlock`
/// and `ApiKeyPage` allow no property beyond their own.)
struct ClosedAuthPage;

impl utoipa::Modify for ClosedAuthPage {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let tagged = |name: &str, tag: &str| -> Option<Schema> {
            let Some(RefOr::T(Schema::Object(object))) = components.schemas.get(name) else {
                return None;
            };
            let mut object = object.clone();
            let tag_schema = ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([tag]))
                .build();
            object
                .properties
                .insert("type".to_string(), tag_schema.into());
            object.required.push("type".to_string());
            Some(Schema::Object(object))
        };
        let (Some(oauth), Some(api_key)) = (
            tagged("OAuthBlock", "oauth"),
            tagged("ApiKeyPage", "apiKey"),
        ) else {
            return;
        };
        let auth_page = OneOfBuilder::new()
            .item(oauth)
            .item(api_key)
            .description(Some(
                "What a client renders to log in: `type` `oauth` with the OAuth block, or `apiKey` with the form",
            ))
            .build();
        components
            .schemas
            .insert("AuthPage".to_string(), Schema::OneOf(auth_page).into());
    }
}

/// What the managed-credential routes answer when the connector does not fit.
const MANAGED_ROUTE_RESPONSES: [(&str, &str); 2] = [
    (
        "400",
        "`wrong_auth_type`: managed-oauth of an API-key connector, or managed-fields of an OAuth connector",
    ),
    (
        "409",
        "`not_admin_managed`: the connector declares no admin-managed OAuth application or form fields",
    ),
];

/// An `ApiError` answer; 429 and 503 carry `Retry-After`.
fn error_response(
    description: &str,
    status: &str,
) -> utoipa::openapi::RefOr<utoipa::openapi::Response> {
    use utoipa::openapi::{
        Content, Ref, ResponseBuilder, Type, header::HeaderBuilder, schema::ObjectBuilder,
    };
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        Content::new(Some(Ref::from_schema_name("ApiError"))),
    );
    if status == "429" || status == "503" {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    response.build().into()
}

/// `GET /openapi.json`.
pub(super) async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
