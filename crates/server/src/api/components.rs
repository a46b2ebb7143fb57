//! Operator routes of published components: publish a component (the
//! checks of `check`, and the signature rule of `[publishing]`), list its
//! versions, pin one, unpin, roll back, retire one; and the replicas'
//! status. A change is made live on this replica at once and on the others
//! through the database ([`crate::registry::distribution`]). Every change is
//! recorded in the admin audit.

use axum::extract::{FromRequest, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::{ApiError, AppState, Caller};
use crate::access::{Principal, Role};
use crate::registry::published::PublishError;
use crate::registry::signature::ComponentSignature;
use crate::store::{
    AdminChange, ComponentStoreError, NewComponent, Published, PublishedVersion, ReplicaStatus,
};

/// `POST /v1/components` alone: it takes whole components, so it gets its
/// own body limit (`[api] publish_body_limit_bytes`, see `ApiLimits::apply`).
pub(super) fn publish_route() -> Router<AppState> {
    Router::new().route("/v1/components", post(publish))
}

/// `/v1/components/{connector}` (GET), its `pin`, `unpin`, `rollback` and
/// `versions/{version}/retire` (POST), and `/v1/replicas` (GET).
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/components/{connector}", get(versions))
        .route("/v1/components/{connector}/pin", post(pin))
        .route("/v1/components/{connector}/unpin", post(unpin))
        .route("/v1/components/{connector}/rollback", post(rollback))
        .route(
            "/v1/components/{connector}/versions/{version}/retire",
            post(retire),
        )
        .route("/v1/replicas", get(replicas))
}

/// A component to publish.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PublishRequest {
    /// The `.wasm` component, base64.
    component: String,
    /// Its detached signature (the `FILE.wasm.sig` that `connector-host
    /// sign` writes); required when the host requires signatures.
    #[serde(default)]
    signature: Option<ComponentSignature>,
}

/// What a publication did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PublishResult {
    connector_id: String,
    version: String,
    sha256: String,
    /// The trusted key that signed it, if signed.
    signer: Option<String>,
    /// `live` (replicas now serve it), `stored` (another version is
    /// pinned) or `unchanged` (these bytes were already published).
    outcome: &'static str,
    /// The pinned version that stays live, for `stored`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pinned_version: Option<String>,
}

/// A version to pin.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(super) struct PinRequest {
    /// A published, unretired version.
    version: String,
}

/// The live version after a change.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveVersion {
    connector_id: String,
    version: String,
    /// Whether later publications stay unpublished until `unpin`.
    pinned: bool,
}

impl From<ComponentStoreError> for ApiError {
    fn from(error: ComponentStoreError) -> Self {
        match error {
            ComponentStoreError::NotFound(message) => {
                ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
            }
            ComponentStoreError::VersionTaken { .. } => {
                ApiError::new(StatusCode::CONFLICT, "version_taken", error.to_string())
            }
            ComponentStoreError::Conflict(message) => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message)
            }
            ComponentStoreError::Storage(inner) => ApiError::internal(inner.into()),
        }
    }
}

impl From<PublishError> for ApiError {
    fn from(error: PublishError) -> Self {
        let (code, field) = match &error {
            PublishError::Load(_) => ("component_rejected", "component"),
            PublishError::Signature(_) => ("signature_rejected", "signature"),
        };
        let mut api = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, error.to_string());
        api.field = Some(field.into());
        api
    }
}

#[utoipa::path(post, path = "/v1/components", tag = "components", request_body = PublishRequest, responses((status = 201, description = "Checked and stored; live unless another version is pinned", body = PublishResult), (status = 400, description = "The body or the base64 is malformed (field named)", body = ApiError), (status = 409, description = "This version is published with other bytes", body = ApiError), (status = 413, description = "The body is larger than `api.publish_body_limit_bytes`", body = ApiError), (status = 422, description = "The component fails the checks of `check`, or its signature is missing, invalid or untrusted; nothing changed", body = ApiError)))]
pub(super) async fn publish(
    Caller(caller): Caller,
    State(state): State<AppState>,
    request: axum::extract::Request,
) -> Result<(StatusCode, Json<PublishResult>), ApiError> {
    // The role first: only an operator's body (up to the larger publishing
    // limit) is ever read.
    caller.require_role(&[Role::Operator], "publish components")?;
    let Json(request) = Json::<PublishRequest>::from_request(request, &state)
        .await
        .map_err(ApiError::bad_body)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(request.component.trim())
        .map_err(|e| {
            let mut error = ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_body",
                format!("component: expected the .wasm file in base64: {e}"),
            );
            error.field = Some("component".into());
            error
        })?;
    let checked = state
        .registry
        .check_publication(bytes.clone(), request.signature.as_ref())
        .await?;
    let manifest = &checked.info.manifest;
    let new = NewComponent {
        connector_id: manifest.id.clone(),
        version: manifest.version.clone(),
        sha256: checked.info.sha256.clone(),
        bytes,
        manifest: serde_json::to_string(manifest).map_err(|e| ApiError::internal(e.into()))?,
        publisher: format!("{} ({})", caller.name, caller.key_id),
        signer: checked.signer.clone(),
        signature: request
            .signature
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| ApiError::internal(e.into()))?,
    };
    let outcome = state.components.publish(&new).await?;
    let (outcome, pinned_version) = match outcome {
        Published::Live => ("live", None),
        Published::StoredPinned { pinned } => ("stored", Some(pinned)),
        Published::Unchanged => ("unchanged", None),
    };
    audit(
        &state,
        &caller,
        &new.connector_id,
        "component.publish",
        format!(
            "version {} sha256 {} signer {}: {outcome}",
            new.version,
            new.sha256,
            new.signer.as_deref().unwrap_or("(unsigned)")
        ),
    )
    .await?;
    reconcile_here(&state).await;
    Ok((
        StatusCode::CREATED,
        Json(PublishResult {
            connector_id: new.connector_id,
            version: new.version,
            sha256: new.sha256,
            signer: new.signer,
            outcome,
            pinned_version,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/components/{connector}", tag = "components", params(("connector" = String, Path, description = "Connector id")), responses((status = 200, description = "Every published version, newest first, with the live one marked", body = Vec<PublishedVersion>), (status = 404, description = "Nothing published for this connector", body = ApiError)))]
pub(super) async fn versions(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(connector): Path<String>,
) -> Result<Json<Vec<PublishedVersion>>, ApiError> {
    caller.require_role(&[Role::Operator], "read published components")?;
    published_versions(&state, &connector).await.map(Json)
}

#[utoipa::path(post, path = "/v1/components/{connector}/pin", tag = "components", params(("connector" = String, Path, description = "Connector id")), request_body = PinRequest, responses((status = 200, description = "The version is live and pinned", body = LiveVersion), (status = 404, description = "No such version", body = ApiError), (status = 409, description = "The version is retired", body = ApiError)))]
pub(super) async fn pin(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(connector): Path<String>,
    body: Result<Json<PinRequest>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<LiveVersion>, ApiError> {
    caller.require_role(&[Role::Operator], "pin component versions")?;
    let Json(request) = body.map_err(ApiError::bad_body)?;
    state
        .components
        .pin(&connector, &request.version, &caller.key_id)
        .await?;
    changed(
        &state,
        &caller,
        connector,
        request.version,
        true,
        "component.pin",
    )
    .await
}

#[utoipa::path(post, path = "/v1/components/{connector}/unpin", tag = "components", params(("connector" = String, Path, description = "Connector id")), responses((status = 200, description = "The newest unretired version is live, unpinned", body = LiveVersion), (status = 404, description = "Nothing published for this connector", body = ApiError)))]
pub(super) async fn unpin(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(connector): Path<String>,
) -> Result<Json<LiveVersion>, ApiError> {
    caller.require_role(&[Role::Operator], "unpin component versions")?;
    let version = state.components.unpin(&connector, &caller.key_id).await?;
    changed(
        &state,
        &caller,
        connector,
        version,
        false,
        "component.unpin",
    )
    .await
}

#[utoipa::path(post, path = "/v1/components/{connector}/rollback", tag = "components", params(("connector" = String, Path, description = "Connector id")), responses((status = 200, description = "The version published before the live one is live and pinned", body = LiveVersion), (status = 404, description = "Nothing live for this connector", body = ApiError), (status = 409, description = "No earlier unretired version", body = ApiError)))]
pub(super) async fn rollback(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(connector): Path<String>,
) -> Result<Json<LiveVersion>, ApiError> {
    caller.require_role(&[Role::Operator], "roll back components")?;
    let version = state
        .components
        .rollback(&connector, &caller.key_id)
        .await?;
    changed(
        &state,
        &caller,
        connector,
        version,
        true,
        "component.rollback",
    )
    .await
}

#[utoipa::path(post, path = "/v1/components/{connector}/versions/{version}/retire", tag = "components", params(("connector" = String, Path, description = "Connector id"), ("version" = String, Path, description = "A version that is not live")), responses((status = 200, description = "Retired: it can no longer be pinned or rolled back to", body = Vec<PublishedVersion>), (status = 404, description = "No such version", body = ApiError), (status = 409, description = "The version is live", body = ApiError)))]
pub(super) async fn retire(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((connector, version)): Path<(String, String)>,
) -> Result<Json<Vec<PublishedVersion>>, ApiError> {
    caller.require_role(&[Role::Operator], "retire component versions")?;
    state.components.retire(&connector, &version).await?;
    audit(
        &state,
        &caller,
        &connector,
        "component.retire",
        format!("version {version}"),
    )
    .await?;
    published_versions(&state, &connector).await.map(Json)
}

#[utoipa::path(get, path = "/v1/replicas", tag = "components", responses((status = 200, description = "Every replica's last report: the connector versions it serves and since when", body = Vec<ReplicaStatus>)))]
pub(super) async fn replicas(
    Caller(caller): Caller,
    State(state): State<AppState>,
) -> Result<Json<Vec<ReplicaStatus>>, ApiError> {
    caller.require_role(&[Role::Operator], "read the replica status")?;
    let replicas = state
        .database
        .replicas()
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(replicas))
}

/// The published versions of `connector`, or 404 when there are none.
async fn published_versions(
    state: &AppState,
    connector: &str,
) -> Result<Vec<PublishedVersion>, ApiError> {
    let versions = state.components.versions(connector).await?;
    if versions.is_empty() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("nothing is published for connector `{connector}`"),
        ));
    }
    Ok(versions)
}

/// Audits a change of the live version, serves it here, and answers it.
async fn changed(
    state: &AppState,
    caller: &Principal,
    connector: String,
    version: String,
    pinned: bool,
    action: &'static str,
) -> Result<Json<LiveVersion>, ApiError> {
    let detail = format!(
        "version {version} live{}",
        if pinned { ", pinned" } else { "" }
    );
    audit(state, caller, &connector, action, detail).await?;
    reconcile_here(state).await;
    Ok(Json(LiveVersion {
        connector_id: connector,
        version,
        pinned,
    }))
}

/// Records a change in the admin audit.
async fn audit(
    state: &AppState,
    caller: &Principal,
    connector: &str,
    action: &'static str,
    detail: String,
) -> Result<(), ApiError> {
    state
        .admin_audit
        .record(
            caller,
            AdminChange {
                account_id: None,
                connector_id: Some(connector),
                user_id: None,
                action,
                detail,
            },
        )
        .await
        .map_err(|e| ApiError::internal(e.into()))
}

/// Serves the change on this replica now (the only one on SQLite; the
/// others follow the notification). A failure is logged: the periodic
/// reconciliation tries again.
async fn reconcile_here(state: &AppState) {
    if let Err(error) = state.registry.reconcile_published(&state.components).await {
        tracing::warn!(%error, "cannot serve the published change on this replica yet");
    }
}
