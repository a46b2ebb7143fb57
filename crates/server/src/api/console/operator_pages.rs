//! The operator's pages: the connectors with their inspect data and the
//! files that failed to load; a connector's outbound audit with filters;
//! the API keys, created and revoked from the page (the new key's secret
//! is shown once). Every page needs an operator session
//! ([`super::signin::operator`]); every form its CSRF token.

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::signin::{forged, operator};
use super::{html, internal_page};
use crate::access::Role;
use crate::api::AppState;
use crate::console::templates;
use crate::registry::InspectReport;

/// Renders `name` with `view`.
fn page(name: &'static str, status: StatusCode, view: impl Serialize) -> Response {
    match templates::render(name, view) {
        Ok(body) => html(status, body),
        Err(error) => internal_page(&error),
    }
}

#[derive(Serialize)]
struct ConnectorsView {
    title: &'static str,
    csrf: String,
    connectors: Vec<InspectReport>,
    errors: std::collections::BTreeMap<String, String>,
}

/// `GET /console/connectors`.
pub(super) async fn connectors(State(state): State<AppState>, jar: CookieJar) -> Response {
    let operator = match operator(&state, &jar).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let snapshot = state.registry.snapshot();
    let view = ConnectorsView {
        title: "Connectors",
        csrf: operator.csrf(),
        connectors: snapshot
            .connectors
            .values()
            .map(|c| InspectReport::new(&c.info))
            .collect(),
        errors: snapshot.errors.clone(),
    };
    page("operator_connectors.html", StatusCode::OK, view)
}

/// Filters of the audit page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct AuditFilters {
    /// `sent`, `refused` or `failed`; empty for any.
    #[serde(default)]
    outcome: String,
    /// A substring of the host.
    #[serde(default)]
    host: String,
    /// How many of the newest requests are searched (1–1000, default 100).
    limit: Option<String>,
}

#[derive(Serialize)]
struct AuditView {
    title: String,
    csrf: String,
    connector: String,
    outcome: String,
    host: String,
    limit: i64,
    events: Vec<serde_json::Value>,
}

/// `GET /console/connectors/{id}/audit?outcome=&host=&limit=`.
pub(super) async fn audit(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    filters: Result<Query<AuditFilters>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let operator = match operator(&state, &jar).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let filters = filters.map(|Query(f)| f).unwrap_or_default();
    let limit = filters
        .limit
        .as_deref()
        .and_then(|l| l.trim().parse::<i64>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let events = match state.database.outbound_audit(&id, limit).await {
        Ok(events) => events,
        Err(error) => return internal_page(&format!("{error:#}")),
    };
    let events = events
        .into_iter()
        .filter_map(|event| serde_json::to_value(event).ok())
        .filter(|event| {
            filters.outcome.is_empty() || event["outcome"].as_str() == Some(&filters.outcome)
        })
        .filter(|event| {
            filters.host.is_empty()
                || event["host"]
                    .as_str()
                    .is_some_and(|h| h.contains(filters.host.trim()))
        })
        .collect();
    let view = AuditView {
        title: format!("Outbound audit of {id}"),
        csrf: operator.csrf(),
        connector: id,
        outcome: filters.outcome,
        host: filters.host,
        limit,
        events,
    };
    page("operator_audit.html", StatusCode::OK, view)
}

#[derive(Serialize)]
struct Created {
    id: String,
    secret: String,
}

#[derive(Serialize)]
struct KeysView {
    title: &'static str,
    csrf: String,
    keys: Vec<crate::store::ApiKeyRecord>,
    created: Option<Created>,
    error: Option<String>,
}

/// Renders the keys page with what the last form did.
async fn keys_page(
    state: &AppState,
    csrf: String,
    status: StatusCode,
    created: Option<Created>,
    error: Option<String>,
) -> Response {
    match state.api_keys.list().await {
        Ok(keys) => page(
            "operator_keys.html",
            status,
            KeysView {
                title: "API keys",
                csrf,
                keys,
                created,
                error,
            },
        ),
        Err(error) => internal_page(&error),
    }
}

/// `GET /console/keys`.
pub(super) async fn keys(State(state): State<AppState>, jar: CookieJar) -> Response {
    match operator(&state, &jar).await {
        Ok(operator) => keys_page(&state, operator.csrf(), StatusCode::OK, None, None).await,
        Err(response) => response,
    }
}

/// The key creation form.
#[derive(Deserialize)]
pub(super) struct CreateKeyForm {
    csrf: Option<String>,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    accounts: String,
}

/// `POST /console/keys`: creates a key; its secret is shown once.
pub(super) async fn create_key(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CreateKeyForm>,
) -> Response {
    let operator = match operator(&state, &jar).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    if !operator.csrf_ok(form.csrf.as_deref()) {
        return forged();
    }
    let csrf = operator.csrf();
    let Some(role) = Role::parse(form.role.trim()) else {
        let error = "role: choose service, account-admin or operator".to_string();
        return keys_page(&state, csrf, StatusCode::BAD_REQUEST, None, Some(error)).await;
    };
    let accounts: Vec<String> = form
        .accounts
        .split(',')
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map(str::to_string)
        .collect();
    match state
        .api_keys
        .create(form.name.trim(), role, &accounts)
        .await
    {
        Ok((record, secret)) => {
            use secrecy::ExposeSecret;
            tracing::info!(key = %record.id, role = %role, "API key created in the console");
            let created = Created {
                id: record.id,
                secret: secret.expose_secret().to_string(),
            };
            keys_page(&state, csrf, StatusCode::OK, Some(created), None).await
        }
        Err(error) => {
            let message = error.to_string();
            keys_page(&state, csrf, StatusCode::BAD_REQUEST, None, Some(message)).await
        }
    }
}

/// `POST /console/keys/{id}/revoke`.
pub(super) async fn revoke_key(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(id): Path<String>,
    Form(form): Form<super::signin::CsrfForm>,
) -> Response {
    let operator = match operator(&state, &jar).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    if !operator.csrf_ok(form.csrf.as_deref()) {
        return forged();
    }
    match state.api_keys.revoke(&id).await {
        Ok(_) => {
            tracing::info!(key = %id, "API key revoked in the console");
            (
                StatusCode::SEE_OTHER,
                [(axum::http::header::LOCATION, "/console/keys")],
            )
                .into_response()
        }
        Err(error) => internal_page(&error),
    }
}
