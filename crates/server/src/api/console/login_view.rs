//! The connect login page: the connector's OAuth button or API-key form
//! (built by [`crate::console::form`]), with the values and errors of the
//! last attempt.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::connect::flow_error_page;
use super::{html, internal_page};
use crate::api::{AppState, flow_status};
use crate::console::connect::csrf_token;
use crate::console::{form, templates};
use crate::flows::FlowError;
use crate::store::ConnectSession;

/// What went wrong in the form: values to show again, errors by field and
/// for the whole form.
#[derive(Debug)]
pub(super) struct Errors {
    pub(super) values: BTreeMap<String, String>,
    pub(super) by_field: BTreeMap<String, String>,
    pub(super) general: Option<String>,
    pub(super) status: StatusCode,
}

impl Default for Errors {
    fn default() -> Self {
        Self {
            values: BTreeMap::new(),
            by_field: BTreeMap::new(),
            general: None,
            status: StatusCode::OK,
        }
    }
}

impl Errors {
    /// A flow's error: next to its field (`fields.<const>`), else above the form.
    pub(super) fn from_flow(error: &FlowError, values: BTreeMap<String, String>) -> Self {
        let mut errors = Errors {
            values,
            status: flow_status(error),
            ..Errors::default()
        };
        match error.field().and_then(|f| f.strip_prefix("fields.")) {
            Some(field) => {
                errors.by_field.insert(field.to_string(), error.to_string());
            }
            None => errors.general = Some(error.to_string()),
        }
        errors
    }
}

/// The login page's template values.
#[derive(Serialize)]
struct LoginView {
    title: String,
    warning: Option<String>,
    connector_name: String,
    account_id: String,
    user_id: String,
    oauth: bool,
    oauth_start_url: String,
    csrf: String,
    inputs: Vec<form::InputView>,
    error: Option<String>,
}

/// Renders the login page of the session's connector.
pub(super) fn render_login(
    state: &AppState,
    cookie: &str,
    session: &ConnectSession,
    errors: &Errors,
) -> Response {
    let view = match state.flows.auth_page(&session.connector_id, false) {
        Ok(view) => view,
        Err(error) => return flow_error_page(&error),
    };
    let csrf = csrf_token(cookie);
    let page = view.api_key.as_ref();
    let login = LoginView {
        title: page
            .map(|p| p.title.clone())
            .unwrap_or_else(|| format!("Connect {}", view.name)),
        warning: page.and_then(|p| p.warning.clone()),
        connector_name: view.name.clone(),
        account_id: session.account_id.clone(),
        user_id: session.user_id.clone(),
        oauth: page.is_none(),
        oauth_start_url: format!("/connect/oauth/start?csrf={csrf}"),
        inputs: page
            .map(|p| form::inputs(p, &errors.values, &errors.by_field))
            .unwrap_or_default(),
        csrf,
        error: errors.general.clone(),
    };
    match templates::render("connect_login.html", login) {
        Ok(body) => html(errors.status, body),
        Err(error) => internal_page(&error),
    }
}
