//! The web console over HTTP: the JSON route a platform's backend creates
//! connect sessions with ([`sessions`]), and the connect pages an end user
//! logs in through ([`connect`]), the console login of operators and
//! account admins ([`signin`]), the operator's pages ([`operator_pages`], [`operator_lists`])
//! and the account admin's ([`admin_pages`]). Every page is server-rendered HTML sent
//! with a strict Content-Security-Policy (no script at all, styles from the
//! host only, forms posting to the host only, never framed), `no-store`
//! and no referrer ([`security_headers`]).

mod admin_pages;
mod connect;
mod demo;
mod login_view;
mod operator_lists;
mod operator_pages;
pub(super) mod sessions;
mod signin;

use axum::Router;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::AppState;
use crate::console::templates::{self, Message, STYLESHEET, STYLESHEET_PATH};

/// The policy of every console page: nothing but the host's own stylesheet
/// and images, forms posting back to the host, no framing, no `<base>`.
pub const CONTENT_SECURITY_POLICY_VALUE: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The console's routes: `/connect…` pages, the stylesheet, and
/// `POST /v1/connect-sessions`.
pub(super) fn routes() -> Router<AppState> {
    let pages = Router::new()
        .route("/connect", get(connect::open_link))
        .route("/connect/login", get(connect::login_page))
        .route("/connect/api-key", post(connect::api_key_login))
        .route("/connect/oauth/start", get(connect::oauth_start))
        .route("/connect/oauth/callback", get(connect::oauth_callback))
        .route("/connect/demo", get(demo::page))
        .route("/connect/demo/{id}", get(demo::start))
        .route("/console", get(signin::start))
        .route(
            "/console/login",
            get(signin::login_page).post(signin::login),
        )
        .route("/console/logout", post(signin::logout))
        .route("/console/admin", get(admin_pages::home))
        .route(
            "/console/admin/{account}/oauth/{connector}",
            get(admin_pages::oauth).post(admin_pages::save_oauth),
        )
        .route(
            "/console/admin/{account}/fields/{connector}",
            get(admin_pages::fields).post(admin_pages::save_fields),
        )
        .route("/console/connectors", get(operator_pages::connectors))
        .route("/console/connectors/{id}/audit", get(operator_pages::audit))
        .route("/console/connections", get(operator_lists::connections))
        .route("/console/webhooks", get(operator_lists::webhooks))
        .route(
            "/console/keys",
            get(operator_pages::keys).post(operator_pages::create_key),
        )
        .route(
            "/console/keys/{id}/revoke",
            post(operator_pages::revoke_key),
        )
        .route(STYLESHEET_PATH, get(stylesheet))
        .layer(axum::middleware::map_response(security_headers));
    Router::new()
        .route("/v1/connect-sessions", post(sessions::create))
        .merge(pages)
}

/// Adds the console's security headers to a page's answer.
async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_VALUE),
        (X_FRAME_OPTIONS, "DENY"),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (REFERRER_POLICY, "no-referrer"),
        (CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `GET /console/static/console.css`.
async fn stylesheet() -> Response {
    ([(CONTENT_TYPE, "text/css; charset=utf-8")], STYLESHEET).into_response()
}

/// An HTML answer.
fn html(status: StatusCode, body: String) -> Response {
    (status, [(CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

/// A page with one message (an error, or a result), and a link onwards.
fn message_page(
    status: StatusCode,
    title: &str,
    message: &str,
    link: Option<(&str, &str)>,
) -> Response {
    let tone = if status.is_success() {
        "success"
    } else {
        "error"
    };
    let rendered = templates::render(
        "message.html",
        Message {
            title,
            message,
            tone,
            link: link.map(|(href, _)| href),
            link_text: link.map(|(_, text)| text).unwrap_or_default(),
        },
    );
    match rendered {
        Ok(body) => html(status, body),
        Err(error) => internal_page(&error),
    }
}

/// The page of a failure of the host itself; the cause goes to the log only.
fn internal_page(error: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %error, "console page failed");
    html(
        StatusCode::INTERNAL_SERVER_ERROR,
        "<!doctype html><title>Error</title><p>Something went wrong on our side. Please try again.</p>"
            .into(),
    )
}
