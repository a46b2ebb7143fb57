//! The connect pages: the link a platform hands to its user's browser is
//! opened once (`GET /connect?session=…`) and traded for an HttpOnly cookie;
//! the login page renders the connector's OAuth button or API-key form
//! (`GET /connect/login`); the form posts to `POST /connect/api-key`; the
//! OAuth button starts at `GET /connect/oauth/start` and the provider sends
//! the browser back to `GET /connect/oauth/callback`, which completes the
//! login only for the browser that started it. Every step checks the
//! session (unexpired, not completed) and every form its CSRF token.

use std::collections::BTreeMap;

use axum::Form;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::http::header::{HOST, LOCATION};
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::login_view::{Errors, render_login};
use super::{internal_page, message_page};
use crate::api::{AppState, flow_status};
use crate::console::connect::{CALLBACK_PATH, csrf_matches};
use crate::console::form;
use crate::flows::{FlowError, OAuthCallback, OAuthStart};
use crate::store::{ConnectSession, ConnectSessionError, token_hash};

/// The cookie of a redeemed connect session.
pub(super) const COOKIE: &str = "connect_session";

/// `?session=` of a connect link.
#[derive(Debug, Deserialize)]
pub(super) struct LinkQuery {
    session: Option<String>,
}

/// `GET /connect?session=<token>`: redeems the link once and sends the
/// browser on to the login page with the session's cookie.
pub(super) async fn open_link(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<LinkQuery>, QueryRejection>,
) -> Response {
    let Some(token) = query
        .ok()
        .and_then(|Query(q)| q.session)
        .filter(|t| !t.is_empty())
    else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Link incomplete",
            "This connect link has no `session`: open the whole link you were given.",
            None,
        );
    };
    match state.console.redeem(&token).await {
        Ok(browser) => {
            let secure = state
                .console
                .settings
                .public_url
                .as_deref()
                .is_some_and(|u| u.starts_with("https://"));
            // Lax, not Strict: the provider's redirect back to the callback
            // page is a cross-site navigation, which must carry the cookie.
            let cookie = Cookie::build((COOKIE, browser))
                .http_only(true)
                .same_site(SameSite::Lax)
                .path("/connect")
                .secure(secure);
            (jar.add(cookie), see_other("/connect/login")).into_response()
        }
        Err(error) => session_refused(&error),
    }
}

/// `GET /connect/login`: the connector's login, rendered from its manifest.
pub(super) async fn login_page(State(state): State<AppState>, jar: CookieJar) -> Response {
    match session(&state, &jar).await {
        Ok((cookie, session)) => render_login(&state, &cookie, &session, &Errors::default()),
        Err(response) => response,
    }
}

/// `POST /connect/api-key`: the API-key form.
pub(super) async fn api_key_login(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(posted): Form<Vec<(String, String)>>,
) -> Response {
    let (cookie, session) = match session(&state, &jar).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let csrf = posted.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
    if !csrf.is_some_and(|token| csrf_matches(&cookie, token)) {
        return forged();
    }
    let values: BTreeMap<String, String> = posted
        .into_iter()
        .filter_map(|(k, v)| k.strip_prefix("field.").map(|k| (k.to_string(), v)))
        .collect();
    let page = match state.flows.auth_page(&session.connector_id, false) {
        Ok(view) => view.api_key,
        Err(error) => return flow_error_page(&error),
    };
    let Some(page) = page else {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Not an API-key login",
            "This connector logs in with OAuth: use its button on the login page.",
            Some(("/connect/login", "Back to the login")),
        );
    };
    let fields = match form::fields(&page, &values) {
        Ok(fields) => fields,
        Err(by_field) => {
            let errors = Errors {
                values,
                by_field,
                general: None,
                status: StatusCode::BAD_REQUEST,
            };
            return render_login(&state, &cookie, &session, &errors);
        }
    };
    let login = crate::flows::ApiKeyLogin {
        account_id: session.account_id.clone(),
        user_id: session.user_id.clone(),
        hostname: None,
        fields,
        manual: false,
    };
    match state
        .flows
        .api_key_login(&session.connector_id, login)
        .await
    {
        Ok(connection) => completed(&state, &cookie, &session, &connection.id).await,
        Err(error) => {
            let errors = Errors::from_flow(&error, values);
            render_login(&state, &cookie, &session, &errors)
        }
    }
}

/// `?csrf=` of the OAuth button.
#[derive(Debug, Deserialize)]
pub(super) struct StartQuery {
    csrf: Option<String>,
}

/// `GET /connect/oauth/start?csrf=…`: starts the OAuth login with the host's
/// callback page as redirect URI, binds it to this browser, and sends the
/// browser to the provider. (A link, not a form: a form's redirect to the
/// provider would break the pages' `form-action 'self'`.)
pub(super) async fn oauth_start(
    State(state): State<AppState>,
    jar: CookieJar,
    headers: axum::http::HeaderMap,
    query: Result<Query<StartQuery>, QueryRejection>,
) -> Response {
    let (cookie, session) = match session(&state, &jar).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let csrf = query.ok().and_then(|Query(q)| q.csrf);
    if !csrf.is_some_and(|token| csrf_matches(&cookie, &token)) {
        return forged();
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let redirect_uri = format!("{}{CALLBACK_PATH}", state.console.base_url(host));
    let start = OAuthStart {
        account_id: session.account_id.clone(),
        user_id: session.user_id.clone(),
        ..OAuthStart::default()
    };
    let started = match state
        .flows
        .oauth_start_with_host_redirect(&session.connector_id, start, &redirect_uri)
        .await
    {
        Ok(started) => started,
        Err(error) => {
            let errors = Errors::from_flow(&error, BTreeMap::new());
            return render_login(&state, &cookie, &session, &errors);
        }
    };
    if let Err(error) = state
        .console
        .connect_sessions
        .bind_oauth_state(&cookie, &started.state)
        .await
    {
        return internal_page(&error);
    }
    see_other(&started.authorize_url)
}

/// `GET /connect/oauth/callback`: the provider's redirect back. Completes
/// the login only in the browser whose session started it.
pub(super) async fn oauth_callback(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<OAuthCallback>, QueryRejection>,
) -> Response {
    let (cookie, session) = match session(&state, &jar).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let callback = query.map(|Query(c)| c).unwrap_or_default();
    let started_here = callback
        .state
        .as_deref()
        .is_some_and(|s| session.oauth_state_hash.as_deref() == Some(token_hash(s).as_str()));
    if !started_here {
        return message_page(
            StatusCode::BAD_REQUEST,
            "Login not started here",
            "This login was not started from this browser's connect page. Start again from the login page.",
            Some(("/connect/login", "Back to the login")),
        );
    }
    match state.flows.oauth_callback(callback).await {
        Ok(connected) => completed(&state, &cookie, &session, &connected.connection.id).await,
        Err(error) => {
            let errors = Errors::from_flow(&error, BTreeMap::new());
            render_login(&state, &cookie, &session, &errors)
        }
    }
}

/// The browser's live session, or the page saying why there is none.
async fn session(state: &AppState, jar: &CookieJar) -> Result<(String, ConnectSession), Response> {
    let Some(cookie) = jar.get(COOKIE).map(|c| c.value().to_string()) else {
        return Err(message_page(
            StatusCode::UNAUTHORIZED,
            "No connect session",
            "Open the connect link you were given to log in.",
            None,
        ));
    };
    match state.console.connect_sessions.for_browser(&cookie).await {
        Ok(session) => Ok((cookie, session)),
        Err(error) => Err(session_refused(&error)),
    }
}

/// The page of a refused link or cookie.
fn session_refused(error: &ConnectSessionError) -> Response {
    let (status, title, message) = match error {
        ConnectSessionError::Unknown => (
            StatusCode::NOT_FOUND,
            "Unknown connect link",
            "This connect link is not valid. Ask for a new one.",
        ),
        ConnectSessionError::Reused => (
            StatusCode::GONE,
            "Link already used",
            "This connect link was already used. Each link works once: ask for a new one.",
        ),
        ConnectSessionError::Expired => (
            StatusCode::GONE,
            "Link expired",
            "This connect session has expired. Ask for a new link.",
        ),
        ConnectSessionError::Completed => (
            StatusCode::GONE,
            "Already connected",
            "The login of this connect session is complete. You can close this page.",
        ),
        ConnectSessionError::Storage(cause) => return internal_page(cause),
    };
    message_page(status, title, message, None)
}

/// The answer to a form without its session's CSRF token.
fn forged() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form did not come from your connect page (its security token is missing or wrong). Go back to the login page and try again.",
        Some(("/connect/login", "Back to the login")),
    )
}

/// Marks the session done; returns to the platform, or shows the result.
async fn completed(
    state: &AppState,
    cookie: &str,
    session: &ConnectSession,
    connection_id: &str,
) -> Response {
    if let Err(error) = state
        .console
        .connect_sessions
        .complete(cookie, connection_id)
        .await
    {
        return internal_page(&error);
    }
    tracing::info!(connection = %connection_id, connector = %session.connector_id, "connect page login completed");
    match session.return_url.as_deref().map(url::Url::parse) {
        Some(Ok(mut url)) => {
            url.query_pairs_mut()
                .append_pair("connection", connection_id);
            see_other(url.as_str())
        }
        _ => message_page(
            StatusCode::OK,
            "Connected",
            "You are connected. You can close this page.",
            None,
        ),
    }
}

/// The page of a flow error outside the form (the connector was removed).
pub(super) fn flow_error_page(error: &FlowError) -> Response {
    message_page(
        flow_status(error),
        "Cannot log in",
        &error.to_string(),
        None,
    )
}

/// `303 See Other` to `location`.
fn see_other(location: &str) -> Response {
    (StatusCode::SEE_OTHER, [(LOCATION, location.to_string())]).into_response()
}
