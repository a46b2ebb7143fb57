//! Routes of account admins: admin-managed OAuth applications and API-key
//! form fields of their accounts, and the admin audit. Every change is
//! recorded in the admin audit (who, what, when — field names, never values).

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::dto::{
    ManagedFields, ManagedFieldsUpdate, ManagedOAuthInput, ManagedOAuthSaved, ManagedOAuthView,
};
use super::query::{ApiQuery, checked_limit};
use super::{ApiError, AppState, Caller};
use crate::access::Role;
use crate::store::{AdminChange, AdminEvent};

/// `…/managed-oauth` (GET, PUT, DELETE), `…/managed-fields` for the account
/// and for one user (GET, PUT), `/v1/accounts/{account}/admin-audit`, and
/// the operator's `/v1/admin-audit`.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/v1/accounts/{account}/connectors/{connector}/managed-oauth",
            get(get_managed_oauth)
                .put(put_managed_oauth)
                .delete(delete_managed_oauth),
        )
        .route(
            "/v1/accounts/{account}/connectors/{connector}/managed-fields",
            get(get_account_fields).put(put_account_fields),
        )
        .route(
            "/v1/accounts/{account}/users/{user}/connectors/{connector}/managed-fields",
            get(get_user_fields).put(put_user_fields),
        )
        .route(
            "/v1/accounts/{account}/admin-audit",
            get(account_admin_audit),
        )
        .route("/v1/admin-audit", get(all_admin_audit))
}

async fn record(
    state: &AppState,
    caller: &crate::access::Principal,
    change: AdminChange<'_>,
) -> Result<(), ApiError> {
    state
        .admin_audit
        .record(caller, change)
        .await
        .map_err(|e| ApiError::internal(e.into()))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/connectors/{connector}/managed-oauth", tag = "admin", params(("account" = String, Path), ("connector" = String, Path)), responses((status = 200, description = "The account's OAuth application (secret masked) and what the connector requires", body = ManagedOAuthView), (status = 403, description = "Not an admin of this account", body = ApiError), (status = 409, description = "The connector does not use admin-managed OAuth", body = ApiError)))]
pub(super) async fn get_managed_oauth(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, connector)): Path<(String, String)>,
) -> Result<Json<ManagedOAuthView>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "read managed credentials")?;
    Ok(Json(
        state
            .flows
            .managed_oauth(&account, &connector)
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/v1/accounts/{account}/connectors/{connector}/managed-oauth", tag = "admin", params(("account" = String, Path), ("connector" = String, Path)), request_body = ManagedOAuthInput, responses((status = 200, description = "Stored as pending; connections invalidated", body = ManagedOAuthSaved), (status = 400, description = "A value is missing or invalid (named)", body = ApiError), (status = 403, description = "Not an admin of this account", body = ApiError), (status = 409, description = "The connector does not use admin-managed OAuth", body = ApiError)))]
pub(super) async fn put_managed_oauth(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, connector)): Path<(String, String)>,
    body: Result<Json<ManagedOAuthInput>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ManagedOAuthSaved>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "change managed credentials")?;
    let Json(input) = body.map_err(ApiError::bad_body)?;
    let submitted: Vec<&str> = [
        ("clientId", input.client_id.is_some()),
        ("clientSecret", input.client_secret.is_some()),
        ("tokenUrl", input.token_url.is_some()),
        ("authorizationUrl", input.authorization_url.is_some()),
        ("redirectUri", input.redirect_uri.is_some()),
        ("hostname", input.hostname.is_some()),
        ("issuer", input.issuer.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect();
    let saved: ManagedOAuthSaved = state
        .flows
        .set_managed_oauth(&account, &connector, input.into(), &caller.key_id)
        .await?
        .into();
    record(
        &state,
        &caller,
        AdminChange {
            account_id: Some(&account),
            connector_id: Some(&connector),
            user_id: None,
            action: "managed-oauth.set",
            detail: format!(
                "fields: {}; version {}; {} connection(s) invalidated",
                submitted.join(", "),
                saved.pending.version,
                saved.invalidated_connections
            ),
        },
    )
    .await?;
    Ok(Json(saved))
}

/// The answer to a deletion.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct ManagedOAuthDeleted {
    /// Connections of the account to this connector now needing re-auth.
    invalidated_connections: u64,
}

#[utoipa::path(delete, path = "/v1/accounts/{account}/connectors/{connector}/managed-oauth", tag = "admin", params(("account" = String, Path), ("connector" = String, Path)), responses((status = 200, description = "Removed; connections invalidated", body = ManagedOAuthDeleted), (status = 403, description = "Not an admin of this account", body = ApiError), (status = 409, description = "Nothing to remove", body = ApiError)))]
pub(super) async fn delete_managed_oauth(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, connector)): Path<(String, String)>,
) -> Result<Json<ManagedOAuthDeleted>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "change managed credentials")?;
    let invalidated = state
        .flows
        .delete_managed_oauth(&account, &connector)
        .await?;
    record(
        &state,
        &caller,
        AdminChange {
            account_id: Some(&account),
            connector_id: Some(&connector),
            user_id: None,
            action: "managed-oauth.delete",
            detail: format!("{invalidated} connection(s) invalidated"),
        },
    )
    .await?;
    Ok(Json(ManagedOAuthDeleted {
        invalidated_connections: invalidated,
    }))
}

#[utoipa::path(get, path = "/v1/accounts/{account}/connectors/{connector}/managed-fields", tag = "admin", params(("account" = String, Path), ("connector" = String, Path)), responses((status = 200, description = "Account-scoped managed fields and their values (API key masked)", body = ManagedFields), (status = 403, description = "Not an admin of this account", body = ApiError)))]
pub(super) async fn get_account_fields(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, connector)): Path<(String, String)>,
) -> Result<Json<ManagedFields>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "read managed fields")?;
    Ok(Json(
        state
            .flows
            .managed_fields(&account, &connector, None)
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/v1/accounts/{account}/connectors/{connector}/managed-fields", tag = "admin", params(("account" = String, Path), ("connector" = String, Path)), request_body = ManagedFieldsUpdate, responses((status = 200, description = "The fields after the change", body = ManagedFields), (status = 400, description = "Unknown field or wrong type (named)", body = ApiError), (status = 403, description = "Not an admin of this account", body = ApiError)))]
pub(super) async fn put_account_fields(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, connector)): Path<(String, String)>,
    body: Result<Json<ManagedFieldsUpdate>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ManagedFields>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "change managed fields")?;
    let Json(update) = body.map_err(ApiError::bad_body)?;
    put_fields(&state, &caller, &account, &connector, None, update).await
}

#[utoipa::path(get, path = "/v1/accounts/{account}/users/{user}/connectors/{connector}/managed-fields", tag = "admin", params(("account" = String, Path), ("user" = String, Path), ("connector" = String, Path)), responses((status = 200, description = "User-scoped managed fields of one user", body = ManagedFields), (status = 403, description = "Not an admin of this account", body = ApiError)))]
pub(super) async fn get_user_fields(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, user, connector)): Path<(String, String, String)>,
) -> Result<Json<ManagedFields>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "read managed fields")?;
    Ok(Json(
        state
            .flows
            .managed_fields(&account, &connector, Some(&user))
            .await?
            .into(),
    ))
}

#[utoipa::path(put, path = "/v1/accounts/{account}/users/{user}/connectors/{connector}/managed-fields", tag = "admin", params(("account" = String, Path), ("user" = String, Path), ("connector" = String, Path)), request_body = ManagedFieldsUpdate, responses((status = 200, description = "The user's fields after the change", body = ManagedFields), (status = 400, description = "Unknown field or wrong type (named)", body = ApiError), (status = 403, description = "Not an admin of this account", body = ApiError)))]
pub(super) async fn put_user_fields(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path((account, user, connector)): Path<(String, String, String)>,
    body: Result<Json<ManagedFieldsUpdate>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<ManagedFields>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "change managed fields")?;
    let Json(update) = body.map_err(ApiError::bad_body)?;
    put_fields(&state, &caller, &account, &connector, Some(&user), update).await
}

async fn put_fields(
    state: &AppState,
    caller: &crate::access::Principal,
    account: &str,
    connector: &str,
    user: Option<&str>,
    update: ManagedFieldsUpdate,
) -> Result<Json<ManagedFields>, ApiError> {
    let changed: Vec<String> = update
        .values
        .iter()
        .map(|(k, v)| {
            if v.is_null() {
                format!("{k} (cleared)")
            } else {
                k.clone()
            }
        })
        .collect();
    let fields: ManagedFields = state
        .flows
        .set_managed_fields(account, connector, user, update.into(), &caller.key_id)
        .await?
        .into();
    record(
        state,
        caller,
        AdminChange {
            account_id: Some(account),
            connector_id: Some(connector),
            user_id: user,
            action: "managed-fields.set",
            detail: format!("fields: {}", changed.join(", ")),
        },
    )
    .await?;
    Ok(Json(fields))
}

/// Query of the admin audit routes.
#[derive(Debug, serde::Deserialize)]
pub(super) struct AdminAuditQuery {
    /// How many, newest first (default 50, at most 1000).
    limit: Option<i64>,
}

#[utoipa::path(get, path = "/v1/accounts/{account}/admin-audit", tag = "admin", params(("account" = String, Path), ("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "How many, newest first (1–1000, default 50)")), responses((status = 200, description = "Admin changes of the account, newest first", body = Vec<AdminEvent>), (status = 403, description = "Not an admin of this account", body = ApiError)))]
pub(super) async fn account_admin_audit(
    Caller(caller): Caller,
    State(state): State<AppState>,
    Path(account): Path<String>,
    ApiQuery(query): ApiQuery<AdminAuditQuery>,
) -> Result<Json<Vec<AdminEvent>>, ApiError> {
    caller.require_account(Role::AccountAdmin, &account, "read the admin audit")?;
    let limit = checked_limit(query.limit)?;
    let events = state
        .admin_audit
        .list(Some(&account), limit)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(events))
}

#[utoipa::path(get, path = "/v1/admin-audit", tag = "admin", params(("limit" = Option<i64>, Query, minimum = 1, maximum = 1000, description = "How many, newest first (1–1000, default 50)")), responses((status = 200, description = "Admin changes of every account, newest first", body = Vec<AdminEvent>), (status = 403, description = "Not an operator", body = ApiError)))]
pub(super) async fn all_admin_audit(
    Caller(caller): Caller,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<AdminAuditQuery>,
) -> Result<Json<Vec<AdminEvent>>, ApiError> {
    caller.require_role(&[Role::Operator], "read the admin audit of every account")?;
    let limit = checked_limit(query.limit)?;
    let events = state
        .admin_audit
        .list(None, limit)
        .await
        .map_err(|e| ApiError::internal(e.into()))?;
    Ok(Json(events))
}
