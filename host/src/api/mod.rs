//! The HTTP API (axum). No wasmtime types here: routes talk to the registry.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

mod flows;
mod openapi;

use crate::registry::{InspectReport, Registry};
use crate::store::Database;

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
}

/// The router: `/healthz`; connectors: `/v1/connectors`, `/v1/connectors/{id}`,
/// `…/{id}/versions`, `…/{id}/audit`; connections (never with secrets):
/// `/v1/accounts/{account}/users/{user}/connections`,
/// `/v1/accounts/{account}/connections/{id}`.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/openapi.json", get(openapi::document))
        .route("/v1/connectors", get(list_connectors))
        .route("/v1/connectors/{id}", get(get_connector))
        .route("/v1/connectors/{id}/versions", get(connector_versions))
        .route("/v1/connectors/{id}/audit", get(connector_audit))
        .route(
            "/v1/accounts/{account}/users/{user}/connections",
            get(list_connections),
        )
        .route(
            "/v1/accounts/{account}/connections/{id}",
            get(get_connection),
        )
        .merge(flows::routes())
        .with_state(state)
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
    #[serde(skip)]
    status: StatusCode,
}

impl From<crate::flows::FlowError> for ApiError {
    fn from(error: crate::flows::FlowError) -> Self {
        if let crate::flows::FlowError::Storage(inner) = &error {
            tracing::error!(error = %inner, "storage failure in a flow");
        }
        Self {
            code: error.code(),
            message: error.to_string(),
            field: error.field().map(str::to_string),
            status: error.status(),
        }
    }
}

impl ApiError {
    fn not_found(message: String) -> Self {
        Self {
            code: "not_found",
            message,
            field: None,
            status: StatusCode::NOT_FOUND,
        }
    }

    /// A request body that is not the expected JSON (the message names the
    /// field serde complained about).
    fn bad_body(rejection: axum::extract::rejection::JsonRejection) -> Self {
        Self {
            code: "invalid_body",
            message: rejection.body_text(),
            field: None,
            status: StatusCode::BAD_REQUEST,
        }
    }

    fn internal(error: anyhow::Error) -> Self {
        tracing::error!(error = %format!("{error:#}"), "request failed");
        Self {
            code: "internal",
            message: "internal error".into(),
            field: None,
            status: StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self)).into_response()
    }
}

/// One entry of the connector list.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ConnectorSummary {
    id: String,
    version: String,
    sha256: String,
    auth_type: crate::manifest::AuthKind,
    file: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
struct ConnectorList {
    connectors: Vec<ConnectorSummary>,
    /// Files in the plugins folder that failed to load, with the reason.
    errors: std::collections::BTreeMap<String, String>,
}

#[utoipa::path(get, path = "/v1/connectors", tag = "connectors", responses((status = 200, description = "Loaded connectors and files that failed to load", body = ConnectorList)))]
async fn list_connectors(State(state): State<AppState>) -> Json<ConnectorList> {
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
        })
        .collect();
    Json(ConnectorList {
        connectors,
        errors: snapshot.errors.clone(),
    })
}

#[utoipa::path(get, path = "/v1/connectors/{id}", tag = "connectors", params(("id" = String, Path, description = "Connector id")), responses((status = 200, description = "What the connector is and may do", body = InspectReport), (status = 404, description = "Not found", body = ApiError)))]
async fn get_connector(
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
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<Vec<crate::store::RecordedVersion>>, ApiError> {
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

#[utoipa::path(get, path = "/v1/connectors/{id}/audit", tag = "connectors", params(("id" = String, Path, description = "Connector id"), ("limit" = Option<i64>, Query, description = "How many, newest first (1–1000, default 50)")), responses((status = 200, description = "Outbound requests, allowed or refused", body = Vec<crate::capabilities::http::AuditEvent>)))]
async fn connector_audit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    axum::extract::Query(query): axum::extract::Query<AuditQuery>,
) -> Result<Json<Vec<crate::capabilities::http::AuditEvent>>, ApiError> {
    let limit = query.limit.unwrap_or(50).clamp(1, 1000);
    let events = state
        .database
        .outbound_audit(&id, limit)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(events))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/users/{user}/connections", tag = "connections", params(("account" = String, Path), ("user" = String, Path)), responses((status = 200, description = "The user's connections (never secrets)", body = Vec<crate::store::Connection>)))]
async fn list_connections(
    State(state): State<AppState>,
    Path((account, user)): Path<(String, String)>,
) -> Result<Json<Vec<crate::store::Connection>>, ApiError> {
    let connections = state
        .connections
        .list(&account, &user)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(connections))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/connections/{id}", tag = "connections", params(("account" = String, Path), ("id" = String, Path)), responses((status = 200, description = "Connection status (never secrets)", body = crate::store::Connection), (status = 404, description = "Not found", body = ApiError)))]
async fn get_connection(
    State(state): State<AppState>,
    Path((account, id)): Path<(String, String)>,
) -> Result<Json<crate::store::Connection>, ApiError> {
    let connection = state
        .connections
        .get(&account, &id)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    connection
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no connection `{id}` in account `{account}`")))
}
