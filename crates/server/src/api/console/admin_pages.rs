//! The account admin's pages: the connectors with admin-managed
//! credentials of one of the key's accounts; the managed OAuth application
//! of a connector (the client secret never rendered back, only "set"); the
//! managed API-key fields (secret fields masked). Saving an application
//! sends the account's active connections to the connector back to re-auth,
//! so the form warns how many first and the change is refused until the
//! admin confirms that number. Every page needs an account-admin session
//! ([`super::signin::admin`]) scoped to the account; every form its CSRF
//! token; every change goes through the flows layer and into the admin audit.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use connector_abi::manifest::ManagedScope;
use serde::{Deserialize, Serialize};

use super::signin::{ConsoleUser, admin, forged};
use super::{html, internal_page, message_page};
use crate::access::{ALL_ACCOUNTS, Role};
use crate::api::AppState;
use crate::console::admin::{
    FieldInputView, ManagedConnector, OAuthFormView, field_inputs, fields_update,
    managed_connectors, oauth_input,
};
use crate::console::templates;
use crate::flows::FlowError;
use crate::store::AdminChange;

/// Renders `name` with `view`.
fn page(name: &'static str, status: StatusCode, view: impl Serialize) -> Response {
    match templates::render(name, view) {
        Ok(body) => html(status, body),
        Err(error) => internal_page(&error),
    }
}

/// The admin of the request, scoped to `account`; else the answer.
async fn admin_of(
    state: &AppState,
    jar: &CookieJar,
    account: &str,
) -> Result<ConsoleUser, Response> {
    let user = admin(state, jar).await?;
    match user
        .principal()
        .require_account(Role::AccountAdmin, account, "manage credentials")
    {
        Ok(()) => Ok(user),
        Err(denied) => {
            tracing::info!(key = %user.key.id, "console admin refused an account outside its scope");
            Err(message_page(
                StatusCode::FORBIDDEN,
                "Not your account",
                &denied.to_string(),
                Some(("/console/admin", "Back to your accounts")),
            ))
        }
    }
}

/// The page of a flows error that is not about one field.
fn flow_error_page(error: &FlowError) -> Response {
    let status = match error {
        FlowError::UnknownConnector(_) => StatusCode::NOT_FOUND,
        FlowError::Storage(_) | FlowError::ManagedStorage(_) => return internal_page(error),
        _ => StatusCode::CONFLICT,
    };
    message_page(
        status,
        "Not available",
        &error.to_string(),
        Some(("/console/admin", "Back to your accounts")),
    )
}

/// Records an admin's change made in the console.
async fn record(state: &AppState, user: &ConsoleUser, change: AdminChange<'_>) -> Option<Response> {
    match state.admin_audit.record(&user.principal(), change).await {
        Ok(()) => None,
        Err(error) => Some(internal_page(&error)),
    }
}

/// `?account=` of the home page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct HomeQuery {
    #[serde(default)]
    account: String,
}

#[derive(Serialize)]
struct HomeView {
    title: &'static str,
    csrf: String,
    /// The key's accounts (empty when it has every account).
    accounts: Vec<String>,
    /// The account shown.
    account: String,
    connectors: Vec<ManagedConnector>,
}

/// `GET /console/admin?account=`: the managed connectors of one account.
pub(super) async fn home(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<HomeQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let user = match admin(&state, &jar).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    let accounts: Vec<String> = user
        .key
        .accounts
        .iter()
        .filter(|a| a.as_str() != ALL_ACCOUNTS)
        .cloned()
        .collect();
    let asked = query.map(|Query(q)| q.account).unwrap_or_default();
    let account = match asked.trim() {
        "" => accounts.first().cloned().unwrap_or_default(),
        asked => asked.to_string(),
    };
    if !account.is_empty()
        && let Err(response) = admin_of(&state, &jar, &account).await
    {
        return response;
    }
    let view = HomeView {
        title: "Managed credentials",
        csrf: user.csrf(),
        accounts,
        account,
        connectors: managed_connectors(&state.registry.snapshot()),
    };
    page("admin_home.html", StatusCode::OK, view)
}

#[derive(Serialize)]
struct OAuthPage {
    title: String,
    csrf: String,
    account: String,
    connector: String,
    form: OAuthFormView,
    /// Active connections a save sends back to re-auth.
    reauth: i64,
    /// The save was refused until the admin confirms `reauth`.
    confirm_needed: bool,
    error: Option<String>,
    error_field: Option<String>,
    saved: Option<String>,
}

/// What a rendering of the OAuth page adds to the stored state.
#[derive(Default)]
struct OAuthOutcome {
    confirm_needed: bool,
    error: Option<(Option<String>, String)>,
    saved: Option<String>,
}

/// Renders the OAuth application page as stored now.
async fn oauth_page(
    state: &AppState,
    user: &ConsoleUser,
    account: String,
    connector: String,
    status: StatusCode,
    outcome: OAuthOutcome,
) -> Response {
    let view = match state.flows.managed_oauth(&account, &connector).await {
        Ok(view) => view,
        Err(error) => return flow_error_page(&error),
    };
    let reauth = match state
        .console
        .overview
        .reauth_count(&account, &connector)
        .await
    {
        Ok(count) => count,
        Err(error) => return internal_page(&error),
    };
    let (error_field, error) = outcome.error.unzip();
    let view = OAuthPage {
        title: format!("OAuth application of {connector}"),
        csrf: user.csrf(),
        form: OAuthFormView::from(&view),
        account,
        connector,
        reauth,
        confirm_needed: outcome.confirm_needed,
        error,
        error_field: error_field.flatten(),
        saved: outcome.saved,
    };
    page("admin_oauth.html", status, view)
}

/// `GET /console/admin/{account}/oauth/{connector}`.
pub(super) async fn oauth(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((account, connector)): Path<(String, String)>,
) -> Response {
    match admin_of(&state, &jar, &account).await {
        Ok(user) => {
            oauth_page(
                &state,
                &user,
                account,
                connector,
                StatusCode::OK,
                OAuthOutcome::default(),
            )
            .await
        }
        Err(response) => response,
    }
}

/// `POST /console/admin/{account}/oauth/{connector}`: stores the
/// application as pending, once the admin has confirmed how many
/// connections it sends back to re-auth (`confirm` = that number or more).
pub(super) async fn save_oauth(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((account, connector)): Path<(String, String)>,
    Form(posted): Form<BTreeMap<String, String>>,
) -> Response {
    let user = match admin_of(&state, &jar, &account).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    if !user.csrf_ok(posted.get("csrf").map(String::as_str)) {
        return forged();
    }
    let reauth = match state
        .console
        .overview
        .reauth_count(&account, &connector)
        .await
    {
        Ok(count) => count,
        Err(error) => return internal_page(&error),
    };
    let confirmed = posted
        .get("confirm")
        .and_then(|c| c.trim().parse::<i64>().ok())
        .is_some_and(|c| c >= reauth);
    if reauth > 0 && !confirmed {
        let outcome = OAuthOutcome {
            confirm_needed: true,
            ..OAuthOutcome::default()
        };
        return oauth_page(
            &state,
            &user,
            account,
            connector,
            StatusCode::CONFLICT,
            outcome,
        )
        .await;
    }
    let input = oauth_input(&posted);
    let submitted = crate::console::admin::submitted_names(&input);
    match state
        .flows
        .set_managed_oauth(&account, &connector, input, &user.key.id)
        .await
    {
        Ok(saved) => {
            let change = AdminChange {
                account_id: Some(&account),
                connector_id: Some(&connector),
                user_id: None,
                action: "managed-oauth.set",
                detail: format!(
                    "fields: {}; version {}; {} connection(s) invalidated (console)",
                    submitted.join(", "),
                    saved.pending.version,
                    saved.invalidated_connections
                ),
            };
            if let Some(response) = record(&state, &user, change).await {
                return response;
            }
            let outcome = OAuthOutcome {
                saved: Some(format!("Saved: {}.", saved.message)),
                ..OAuthOutcome::default()
            };
            oauth_page(&state, &user, account, connector, StatusCode::OK, outcome).await
        }
        Err(error @ FlowError::Field { .. }) => {
            let outcome = OAuthOutcome {
                error: Some((error.field().map(str::to_string), error.to_string())),
                ..OAuthOutcome::default()
            };
            oauth_page(
                &state,
                &user,
                account,
                connector,
                StatusCode::BAD_REQUEST,
                outcome,
            )
            .await
        }
        Err(error) => flow_error_page(&error),
    }
}

#[derive(Serialize)]
struct FieldsPage {
    title: String,
    csrf: String,
    account: String,
    connector: String,
    inputs: Vec<FieldInputView>,
    errors: BTreeMap<String, String>,
    saved: bool,
}

/// Renders the managed fields page as stored now.
async fn fields_page(
    state: &AppState,
    user: &ConsoleUser,
    (account, connector): (String, String),
    status: StatusCode,
    errors: BTreeMap<String, String>,
    saved: bool,
) -> Response {
    let fields = match state.flows.managed_fields(&account, &connector, None).await {
        Ok(fields) => fields,
        Err(error) => return flow_error_page(&error),
    };
    let secret = |key: &str| {
        state.registry.get(&connector).is_none_or(|c| {
            c.info
                .manifest
                .auth
                .api_key
                .as_ref()
                .is_none_or(|a| a.page.is_secret(key))
        })
    };
    let inputs = field_inputs(&fields, secret);
    let view = FieldsPage {
        title: format!("Managed fields of {connector}"),
        csrf: user.csrf(),
        account,
        connector,
        inputs,
        errors,
        saved,
    };
    page("admin_fields.html", status, view)
}

/// `GET /console/admin/{account}/fields/{connector}`.
pub(super) async fn fields(
    State(state): State<AppState>,
    jar: CookieJar,
    Path(at): Path<(String, String)>,
) -> Response {
    match admin_of(&state, &jar, &at.0).await {
        Ok(user) => fields_page(&state, &user, at, StatusCode::OK, BTreeMap::new(), false).await,
        Err(response) => response,
    }
}

/// `POST /console/admin/{account}/fields/{connector}`: sets the typed
/// values (an empty input leaves its value) and clears the ticked ones.
pub(super) async fn save_fields(
    State(state): State<AppState>,
    jar: CookieJar,
    Path((account, connector)): Path<(String, String)>,
    Form(posted): Form<BTreeMap<String, String>>,
) -> Response {
    let user = match admin_of(&state, &jar, &account).await {
        Ok(user) => user,
        Err(response) => return response,
    };
    if !user.csrf_ok(posted.get("csrf").map(String::as_str)) {
        return forged();
    }
    let types: Vec<_> = state
        .registry
        .get(&connector)
        .and_then(|c| {
            c.info.manifest.auth.api_key.as_ref().map(|a| {
                a.page
                    .managed_fields(ManagedScope::Account)
                    .map(|f| (f.key.clone(), f.field_type))
                    .collect()
            })
        })
        .unwrap_or_default();
    let at = (account, connector);
    let update = match fields_update(&types, &posted) {
        Ok(update) => update,
        Err(errors) => {
            return fields_page(&state, &user, at, StatusCode::BAD_REQUEST, errors, false).await;
        }
    };
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
    let (account, connector) = &at;
    match state
        .flows
        .set_managed_fields(account, connector, None, update, &user.key.id)
        .await
    {
        Ok(_) => {
            let change = AdminChange {
                account_id: Some(account.as_str()),
                connector_id: Some(connector.as_str()),
                user_id: None,
                action: "managed-fields.set",
                detail: format!("fields: {} (console)", changed.join(", ")),
            };
            if let Some(response) = record(&state, &user, change).await {
                return response;
            }
            fields_page(&state, &user, at, StatusCode::OK, BTreeMap::new(), true).await
        }
        Err(error @ FlowError::Field { .. }) => {
            let field = error.field().unwrap_or_default();
            let key = field.strip_prefix("values.").unwrap_or(field).to_string();
            let errors = BTreeMap::from([(key, error.to_string())]);
            fields_page(&state, &user, at, StatusCode::BAD_REQUEST, errors, false).await
        }
        Err(error) => flow_error_page(&error),
    }
}
