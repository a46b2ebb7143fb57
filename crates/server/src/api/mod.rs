//! The HTTP API (axum). No wasmtime types here: routes talk to the registry.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

mod admin;
mod auth;
mod components;
mod console;
pub mod dto;
mod flows;
pub mod limits;
mod openapi;
mod passthrough;
mod query;
mod serve;
mod telemetry;

pub use auth::Caller;
pub use serve::serve;

use crate::access::Role;
use crate::flows::FlowError;
use crate::registry::{InspectReport, Registry};
use crate::store::{AdminAudit, ApiKeyStore, ConnectionRef, Database};

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    /// Live connectors.
    pub registry: Arc<Registry>,
    /// The database.
    pub database: Database,
    /// Connections (encrypted secrets; routes never return them).
    pub connections: crate::store::ConnectionStore,
    /// The connection flows.
    pub flows: crate::flows::Flows,
    /// The API keys every `/v1` request is checked against.
    pub api_keys: ApiKeyStore,
    /// Where admin changes are recorded.
    pub admin_audit: AdminAudit,
    /// Each API key's request rate.
    pub rates: limits::KeyRates,
    /// Published components.
    pub components: crate::store::ComponentStore,
    /// The web console's settings and sessions.
    pub console: crate::console::Console,
}

impl AppState {
    /// The state over one database (keys and admin audit live there too).
    pub fn new(
        registry: Arc<Registry>,
        database: Database,
        connections: crate::store::ConnectionStore,
        flows: crate::flows::Flows,
    ) -> Self {
        Self {
            api_keys: ApiKeyStore::new(database.clone()),
            admin_audit: AdminAudit::new(database.clone()),
            rates: limits::KeyRates::new(&limits::ApiLimits::default()),
            components: crate::store::ComponentStore::new(database.clone()),
            console: crate::console::Console::new(database.clone(), Default::default()),
            registry,
            database,
            connections,
            flows,
        }
    }

    /// The per-key rates and the key cache lifetime of these limits instead
    /// of the defaults.
    pub fn with_api_limits(mut self, limits: &limits::ApiLimits) -> Self {
        self.rates = limits::KeyRates::new(limits);
        self.database.changes().start();
        self.api_keys = ApiKeyStore::with_cache_ttl(
            self.database.clone(),
            std::time::Duration::from_secs(limits.api_key_cache_secs),
        );
        self
    }

    /// The console with these settings instead of the defaults.
    pub fn with_console(mut self, settings: crate::console::ConsoleSettings) -> Self {
        self.console = crate::console::Console::new(self.database.clone(), settings);
        self
    }
}

/// The router. `/healthz` and `/openapi.json` are public; every `/v1` route
/// needs a bearer API key ([`crate::access`] lists what each role may do):
/// connectors (`/v1/connectors…`), connections and flows
/// (`/v1/accounts/{account}/users/{user}/connections…`, `…/oauth/…`,
/// `…/api-key/login`), admin-managed credentials
/// (`/v1/accounts/{account}/connectors/{connector}/managed-…`), audit.
pub fn router(state: AppState) -> Router {
    router_with(state, &limits::ApiLimits::default())
}

/// The router with these body, time and in-flight limits around every
/// route, a request id on every answer, and every matched request counted
/// for `/metrics` ([`telemetry`]).
pub fn router_with(state: AppState, limits: &limits::ApiLimits) -> Router {
    let _ = crate::telemetry::prometheus();
    limited_routes(state, limits)
        .route_layer(axum::middleware::from_fn(telemetry::count))
        .layer(axum::middleware::from_fn(telemetry::request_id))
}

/// Every route with the `[api]` limits around it.
fn limited_routes(state: AppState, limits: &limits::ApiLimits) -> Router {
    let routes = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(telemetry::metrics_text))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/whoami", get(whoami))
        .route("/v1/connectors", get(list_connectors))
        .route("/v1/connectors/{id}", get(get_connector))
        .route("/v1/connectors/{id}/versions", get(connector_versions))
        .route("/v1/connectors/{id}/audit", get(connector_audit))
        .route(
            "/v1/accounts/{account}/users/{user}/connections",
            get(list_connections),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connections/{id}",
            get(get_connection),
        )
        .merge(flows::routes())
        .merge(admin::routes())
        .merge(components::routes())
        .merge(console::routes())
        .with_state(state.clone());
    // Streamed both ways: its own body limit, enforced while streaming.
    let streamed = passthrough::routes(limits.proxy_body_limit_bytes).with_state(state.clone());
    // Whole components: a body limit of its own.
    let publishing = components::publish_route().with_state(state);
    limits.apply(routes, publishing, streamed)
}

/// Readiness (`GET /readyz`, no key): `200` when this replica can serve —
/// its connectors are loaded (the router exists only after the first load)
/// and the database answers within 2 s — else `503` naming what is not.
/// `/healthz` stays the liveness check. The body names no connector and no
/// count: it is public.
async fn readyz(State(state): State<AppState>) -> Response {
    let database = state.database.ping(std::time::Duration::from_secs(2)).await;
    let body = |status: &str, reason: Option<&str>| {
        Json(serde_json::json!({"status": status, "reason": reason}))
    };
    if database {
        (StatusCode::OK, body("ready", None)).into_response()
    } else {
        let mut response = (
            StatusCode::SERVICE_UNAVAILABLE,
            body("not ready", Some("the database does not answer")),
        )
            .into_response();
        response
            .headers_mut()
            .insert(axum::http::header::RETRY_AFTER, 1u64.into());
        response
    }
}

/// Who the presented key is.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct WhoAmI {
    key_id: String,
    name: String,
    role: Role,
    /// `*` for every account; empty for operators.
    accounts: Vec<String>,
    /// A service key trusted with raw access tokens.
    raw_tokens: bool,
}

#[utoipa::path(get, path = "/v1/whoami", tag = "access", responses((status = 200, description = "The caller's key: id, name, role, accounts", body = WhoAmI), (status = 401, description = "Missing, unknown or revoked key", body = ApiError)))]
async fn whoami(Caller(caller): Caller) -> Json<WhoAmI> {
    Json(WhoAmI {
        key_id: caller.key_id,
        name: caller.name,
        role: caller.role,
        accounts: caller.accounts.to_list(),
        raw_tokens: caller.raw_tokens,
    })
}

/// A JSON error body: a stable code, a message, and the field it is about.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The request field the error is about, for bad input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Required admin-managed fields without a value (code
    /// `managed_fields_missing`, App Connect's warning).
    #[serde(
        rename = "missingRequiredFieldConsts",
        skip_serializing_if = "Option::is_none"
    )]
    pub missing_required_field_consts: Option<Vec<String>>,
    /// A login with admin-managed values failed: the client may offer the full
    /// manual form (`auth-page?form=manual`, login with `manual: true`).
    #[serde(
        rename = "manualFormAvailable",
        skip_serializing_if = "Option::is_none"
    )]
    pub manual_form_available: Option<bool>,
    #[serde(skip)]
    status: StatusCode,
    /// Seconds for the `Retry-After` header of a retryable answer.
    #[serde(skip)]
    retry_after_secs: Option<u64>,
}

impl From<crate::flows::FlowError> for ApiError {
    fn from(error: crate::flows::FlowError) -> Self {
        match &error {
            crate::flows::FlowError::Storage(inner) => {
                tracing::error!(error = %inner, "storage failure in a flow")
            }
            crate::flows::FlowError::ManagedStorage(inner) => {
                tracing::error!(error = %inner, "managed-credential storage failure")
            }
            _ => {}
        }
        Self {
            code: error.code(),
            message: error.to_string(),
            field: error.field().map(str::to_string),
            missing_required_field_consts: error
                .missing_required_field_consts()
                .map(<[String]>::to_vec),
            manual_form_available: matches!(error, crate::flows::FlowError::ManagedLoginFailed(_))
                .then_some(true),
            status: flow_status(&error),
            retry_after_secs: match &error {
                crate::flows::FlowError::RefreshBusy {
                    retry_after_secs, ..
                } => Some(*retry_after_secs),
                _ => None,
            },
        }
    }
}

/// The HTTP status of a flow error: the flows know no HTTP, the HTTP layers
/// (this API and the author's `dev` page) decide.
pub fn flow_status(error: &FlowError) -> StatusCode {
    match error {
        FlowError::UnknownConnector(_) | FlowError::UnknownConnection(_) => StatusCode::NOT_FOUND,
        FlowError::WrongAuthType { .. }
        | FlowError::Field { .. }
        | FlowError::State(_)
        | FlowError::OAuthFailed(_)
        | FlowError::TokenExchange(_) => StatusCode::BAD_REQUEST,
        FlowError::InvalidCredentials(_) => StatusCode::UNAUTHORIZED,
        FlowError::NotUsable(_) => StatusCode::CONFLICT,
        FlowError::Provider(_) | FlowError::Connector(_) => StatusCode::BAD_GATEWAY,
        FlowError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
        FlowError::NotManaged(_) | FlowError::ManagedCredentialsMissing(_) => StatusCode::CONFLICT,
        FlowError::ManagedFieldsMissing(_) => StatusCode::UNPROCESSABLE_ENTITY,
        FlowError::ManagedLoginFailed(cause) => flow_status(cause),
        FlowError::RefreshBusy { .. } => StatusCode::SERVICE_UNAVAILABLE,
        FlowError::Storage(_) | FlowError::ManagedStorage(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl ApiError {
    /// An error with this status, stable code and message.
    pub fn new(status: StatusCode, code: &'static str, message: String) -> Self {
        Self {
            code,
            message,
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status,
        }
    }

    fn not_found(message: String) -> Self {
        Self {
            code: "not_found",
            message,
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status: StatusCode::NOT_FOUND,
        }
    }

    /// A request body that is not the expected JSON (the message names the
    /// field serde complained about).
    fn bad_query(rejection: axum::extract::rejection::QueryRejection) -> Self {
        Self {
            code: "invalid_query",
            message: rejection.body_text(),
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status: StatusCode::BAD_REQUEST,
        }
    }

    fn bad_body(rejection: axum::extract::rejection::JsonRejection) -> Self {
        // A body that streamed past its route's limit (no `Content-Length`).
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                rejection.body_text(),
            );
        }
        Self {
            code: "invalid_body",
            message: rejection.body_text(),
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status: StatusCode::BAD_REQUEST,
        }
    }

    fn internal(error: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{error:#}"), "request failed");
        Self {
            code: "internal",
            message: "internal error".into(),
            field: None,
            missing_required_field_consts: None,
            manual_form_available: None,
            retry_after_secs: None,
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.retry_after_secs;
        let mut response = (self.status, Json(self)).into_response();
        if let Some(secs) = retry_after {
            response
                .headers_mut()
                .insert(axum::http::header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// One entry of the connector list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ConnectorSummary {
    id: String,
    version: String,
    sha256: String,
    auth_type: connector_abi::manifest::AuthKind,
    file: String,
    /// The plugins folder or the database (a published version).
    source: crate::registry::Source,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ConnectorList {
    connectors: Vec<ConnectorSummary>,
    /// Files in the plugins folder that failed to load, with the reason.
    errors: std::collections::BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/v1/connectors", tag = "connectors", responses((status = 200, description = "Loaded connectors and files that failed to load", body = ConnectorList)))]
async fn list_connectors(_: Caller, State(state): State<AppState>) -> Json<ConnectorList> {
    let snapshot = state.registry.snapshot();
    let connectors = snapshot
        .connectors
        .values()
        .map(|c| ConnectorSummary {
            id: c.info.manifest.id.clone(),
            version: c.info.manifest.version.clone(),
            sha256: c.info.sha256.clone(),
            auth_type: c.info.manifest.auth.kind,
            file: c
                .file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            source: c.source,
        })
        .collect();
    Json(ConnectorList {
        connectors,
        errors: snapshot.errors.clone(),
    })
}

#[utoipa::path(get, path = "/v1/connectors/{id}", tag = "connectors", params(("id" = String, Path, description = "Connector id")), responses((status = 200, description = "What the connector is and may do", body = InspectReport), (status = 404, description = "Not found", body = ApiError)))]
async fn get_connector(
    _: Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<InspectReport>, ApiError> {
    let connector = state
        .registry
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no connector `{id}` is loaded")))?;
    Ok(Json(InspectReport::new(&connector.info)))
}

#[utoipa::path(get, path = "/v1/connectors/{id}/versions", tag = "connectors", params(("id" = String, Path, description = "Connector id")), responses((status = 200, description = "Every version loaded, newest first", body = Vec<crate::store::RecordedVersion>), (status = 404, description = "Not found", body = ApiError)))]
async fn connector_versions(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::store::RecordedVersion>>, ApiError> {
    caller.require_role(&[Role::Operator], "read connector versions")?;
    let versions = state
        .database
        .connector_versions(&id)
        .await
        .map_err(ApiError::internal)?;
    if versions.is_empty() {
        return Err(ApiError::not_found(format!(
            "connector `{id}` was never loaded"
        )));
    }
    Ok(Json(versions))
}

/// Query of the audit route.
#[derive(Debug, serde::Deserialize)]
struct AuditQuery {
    /// How many requests, newest first (default 50, at most 1000).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/connectors/{id}/audit", tag = "connectors", params(("id" = String, Path, description = "Connector id"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "How many, newest first (1–1000, default 50)")), responses((status = 200, description = "Outbound requests, allowed or refused", body = Vec<connector_sandbox::capabilities::http::AuditEvent>)))]
async fn connector_audit(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(id): Path<String>,
    query::ApiQuery(query): query::ApiQuery<AuditQuery>,
) -> Result<Json<Vec<connector_sandbox::capabilities::http::AuditEvent>>, ApiError> {
    caller.require_role(&[Role::Operator], "read the outbound audit")?;
    let limit = query::checked_limit(query.limit)?;
    let events = state
        .database
        .outbound_audit(&id, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(events))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/users/{user}/connections", tag = "connections", params(("account" = String, Path), ("user" = String, Path)), responses((status = 200, description = "The user's connections (never secrets)", body = Vec<crate::store::Connection>)))]
async fn list_connections(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, user)): Path<(String, String)>,
) -> Result<Json<Vec<crate::store::Connection>>, ApiError> {
    caller.require_account(Role::Service, &account, "list connections")?;
    let connections = state
        .connections
        .list(&account, &user)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(connections))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/users/{user}/connections/{id}", tag = "connections", params(("account" = String, Path), ("user" = String, Path), ("id" = String, Path)), responses((status = 200, description = "Connection status (never secrets)", body = crate::store::Connection), (status = 404, description = "Not found", body = ApiError)))]
async fn get_connection(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, user, id)): Path<(String, String, String)>,
) -> Result<Json<crate::store::Connection>, ApiError> {
    caller.require_account(Role::Service, &account, "read connections")?;
    let at = ConnectionRef {
        account_id: &account,
        user_id: &user,
        id: &id,
    };
    let connection = state
        .connections
        .get(at)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    connection.map(Json).ok_or_else(|| {
        ApiError::not_found(format!(
            "no connection `{id}` for user `{user}` of account `{account}`"
        ))
    })
}
