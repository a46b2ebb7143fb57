//! The console login of operators and account admins: an operator or
//! account-admin API key, typed once into `POST /console/login`, opens a
//! server-side session whose cookie is HttpOnly and SameSite=Strict; the key
//! is checked again on every page (revoking it ends the session, and its
//! role decides which pages it sees: [`operator`] or [`admin`]). Every form
//! carries the session's CSRF token; the login form a token of its own
//! pre-session cookie.

use axum::Form;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::{Deserialize, Serialize};

use super::{html, internal_page, message_page};
use crate::access::{AccountScope, Principal, Role};
use crate::api::AppState;
use crate::console::connect::{csrf_matches, csrf_token, random_secret};
use crate::console::templates;
use crate::store::ApiKeyRecord;

/// The cookie of a console session (operator or account admin).
const SESSION_COOKIE: &str = "console_session";
/// The cookie the login form's CSRF token is derived from.
const LOGIN_COOKIE: &str = "console_login";

/// A logged-in console user: their session cookie (for CSRF tokens) and the
/// live key they logged in with (its role and accounts).
pub(super) struct ConsoleUser {
    /// The session cookie's value.
    pub cookie: String,
    /// The key of the session, as listed (never its secret).
    pub key: ApiKeyRecord,
}

impl ConsoleUser {
    /// The CSRF token of this session's forms.
    pub fn csrf(&self) -> String {
        csrf_token(&self.cookie)
    }

    /// Whether `presented` is this session's CSRF token.
    pub fn csrf_ok(&self, presented: Option<&str>) -> bool {
        presented.is_some_and(|token| csrf_matches(&self.cookie, token))
    }

    /// The caller the key stands for (what the admin audit records).
    pub fn principal(&self) -> Principal {
        Principal {
            key_id: self.key.id.clone(),
            name: self.key.name.clone(),
            role: self.key.role,
            accounts: AccountScope::from_list(self.key.accounts.clone()),
            raw_tokens: self.key.raw_tokens,
        }
    }
}

/// The operator of the request, or the answer sending them to log in.
pub(super) async fn operator(state: &AppState, jar: &CookieJar) -> Result<ConsoleUser, Response> {
    signed_in(state, jar, Role::Operator).await
}

/// The account admin of the request, or the answer sending them to log in.
pub(super) async fn admin(state: &AppState, jar: &CookieJar) -> Result<ConsoleUser, Response> {
    signed_in(state, jar, Role::AccountAdmin).await
}

/// The user of the request's session whose live key has `role`, or the
/// answer sending them to log in.
async fn signed_in(state: &AppState, jar: &CookieJar, role: Role) -> Result<ConsoleUser, Response> {
    match session_user(state, jar).await? {
        Some(user) if user.key.role == role => Ok(user),
        _ => Err(to_login()),
    }
}

/// The user of the request's live session, whatever their role; `None`
/// without a session, or when its key is revoked or no console role.
async fn session_user(state: &AppState, jar: &CookieJar) -> Result<Option<ConsoleUser>, Response> {
    let Some(cookie) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) else {
        return Err(to_login());
    };
    let key_id = match state.console.operator_sessions.key_of(&cookie).await {
        Ok(Some(key_id)) => key_id,
        Ok(None) => return Ok(None),
        Err(error) => return Err(internal_page(&error)),
    };
    let keys = match state.api_keys.list().await {
        Ok(keys) => keys,
        Err(error) => return Err(internal_page(&error)),
    };
    let key = keys
        .into_iter()
        .find(|k| k.id == key_id && k.revoked_at.is_none() && CONSOLE_ROLES.contains(&k.role));
    Ok(key.map(|key| ConsoleUser { cookie, key }))
}

/// The roles that may log in to the console.
const CONSOLE_ROLES: [Role; 2] = [Role::Operator, Role::AccountAdmin];

/// The first page of a role.
fn home(role: Role) -> &'static str {
    match role {
        Role::AccountAdmin => "/console/admin",
        _ => "/console/connectors",
    }
}

/// `GET /console`: the first page of the session's role, else the login.
pub(super) async fn start(State(state): State<AppState>, jar: CookieJar) -> Response {
    match session_user(&state, &jar).await {
        Ok(Some(user)) => (
            StatusCode::SEE_OTHER,
            [(axum::http::header::LOCATION, home(user.key.role))],
        )
            .into_response(),
        Ok(None) => to_login(),
        Err(response) => response,
    }
}

/// `303` to the login page.
fn to_login() -> Response {
    (
        StatusCode::SEE_OTHER,
        [(axum::http::header::LOCATION, "/console/login")],
    )
        .into_response()
}

/// A cookie of the console: HttpOnly, SameSite=Strict, under `/console`.
fn console_cookie(name: &'static str, value: String, secure: bool) -> Cookie<'static> {
    Cookie::build((name, value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/console")
        .secure(secure)
        .build()
}

/// Whether cookies must be `Secure` (the host is reached over https).
fn secure(state: &AppState) -> bool {
    state
        .console
        .settings
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"))
}

#[derive(Serialize)]
struct LoginView<'a> {
    title: &'static str,
    csrf: String,
    error: Option<&'a str>,
}

/// `GET /console/login`.
pub(super) async fn login_page(State(state): State<AppState>, jar: CookieJar) -> Response {
    let pre = random_secret();
    let page = render_login(StatusCode::OK, &pre, None);
    (
        jar.add(console_cookie(LOGIN_COOKIE, pre, secure(&state))),
        page,
    )
        .into_response()
}

fn render_login(status: StatusCode, pre: &str, error: Option<&str>) -> Response {
    let view = LoginView {
        title: "Console",
        csrf: csrf_token(pre),
        error,
    };
    match templates::render("operator_login.html", view) {
        Ok(body) => html(status, body),
        Err(error) => internal_page(&error),
    }
}

/// The login form.
#[derive(Deserialize)]
pub(super) struct LoginForm {
    csrf: Option<String>,
    key: Option<String>,
}

/// `POST /console/login`: an operator or account-admin key opens a session.
pub(super) async fn login(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Response {
    let Some(pre) = jar.get(LOGIN_COOKIE).map(|c| c.value().to_string()) else {
        return forged();
    };
    if !form.csrf.is_some_and(|t| csrf_matches(&pre, &t)) {
        return forged();
    }
    let key = form.key.unwrap_or_default();
    let principal = match state.api_keys.authenticate(key.trim()).await {
        Ok(principal) => principal,
        Err(error) => return internal_page(&error),
    };
    let Some(principal) = principal.filter(|p| CONSOLE_ROLES.contains(&p.role)) else {
        tracing::info!("console login refused");
        return render_login(
            StatusCode::UNAUTHORIZED,
            &pre,
            Some("Not a valid operator or account-admin API key."),
        );
    };
    let cookie = random_secret();
    let lifetime = state.console.settings.operator_session_secs as i64;
    if let Err(error) = state
        .console
        .operator_sessions
        .create(&cookie, &principal.key_id, lifetime)
        .await
    {
        return internal_page(&error);
    }
    tracing::info!(key = %principal.key_id, role = %principal.role, "logged in to the console");
    let jar = jar
        .remove(Cookie::build(LOGIN_COOKIE).path("/console"))
        .add(console_cookie(SESSION_COOKIE, cookie, secure(&state)));
    (
        StatusCode::SEE_OTHER,
        jar,
        [(axum::http::header::LOCATION, home(principal.role))],
    )
        .into_response()
}

/// A form with only the CSRF token.
#[derive(Deserialize)]
pub(super) struct CsrfForm {
    pub(super) csrf: Option<String>,
}

/// `POST /console/logout`.
pub(super) async fn logout(
    State(state): State<AppState>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Response {
    let user = match session_user(&state, &jar).await {
        Ok(Some(user)) => user,
        Ok(None) => return to_login(),
        Err(response) => return response,
    };
    if !user.csrf_ok(form.csrf.as_deref()) {
        return forged();
    }
    if let Err(error) = state.console.operator_sessions.delete(&user.cookie).await {
        return internal_page(&error);
    }
    (
        jar.remove(Cookie::build(SESSION_COOKIE).path("/console")),
        to_login(),
    )
        .into_response()
}

/// The answer to a form without its session's CSRF token.
pub(super) fn forged() -> Response {
    message_page(
        StatusCode::FORBIDDEN,
        "Request refused",
        "This form did not come from your console page (its security token is missing or wrong). Reload the page and try again.",
        Some(("/console", "Back to the console")),
    )
}
