//! The demo page of `serve --dev` (`[console] dev_demo`): `GET /connect/demo`
//! lists the connectors; `GET /connect/demo/{id}` creates a connect session
//! for user `me` of account `demo` and opens it, as a platform's backend
//! would, so a whole login needs a browser only. Absent (404) otherwise.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::{HOST, LOCATION};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::{html, internal_page, message_page};
use crate::api::AppState;
use crate::console::connect::ConnectRequest;
use crate::console::templates;

#[derive(Serialize)]
struct DemoConnector {
    id: String,
    name: String,
    hint: Option<&'static str>,
}

#[derive(Serialize)]
struct DemoView {
    title: &'static str,
    connectors: Vec<DemoConnector>,
}

/// The answer when the host is not `serve --dev`.
fn not_demo() -> Response {
    message_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "The demo page exists only with `serve --dev`.",
        None,
    )
}

/// `GET /connect/demo`.
pub(super) async fn page(State(state): State<AppState>) -> Response {
    if !state.console.settings.dev_demo {
        return not_demo();
    }
    let snapshot = state.registry.snapshot();
    let connectors = snapshot
        .connectors
        .values()
        .map(|c| DemoConnector {
            id: c.info.manifest.id.clone(),
            name: c.info.manifest.display_name().to_string(),
            hint: demo_hint(&c.info.manifest.id),
        })
        .collect();
    let view = DemoView {
        title: "connector-host demo",
        connectors,
    };
    match templates::render("demo.html", view) {
        Ok(body) => html(StatusCode::OK, body),
        Err(error) => internal_page(&error),
    }
}

/// What to type or expect when logging in to a demo connector.
fn demo_hint(id: &str) -> Option<&'static str> {
    match id {
        "local-insightly" => {
            Some("API key `dev-api-key`, apiUrl: the dev provider's URL printed by serve --dev")
        }
        "local-regional" => {
            Some("OAuth: the dev provider asks you to allow access, then sends you back here")
        }
        _ => None,
    }
}

/// `GET /connect/demo/{id}`.
pub(super) async fn start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
) -> Response {
    if !state.console.settings.dev_demo {
        return not_demo();
    }
    if state.registry.get(&id).is_none() {
        return message_page(
            StatusCode::NOT_FOUND,
            "Unknown connector",
            "No connector with this id is loaded.",
            Some(("/connect/demo", "Back to the demo")),
        );
    }
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let base = state.console.base_url(host);
    let request = ConnectRequest {
        account_id: "demo".into(),
        user_id: "me".into(),
        connector_id: id,
        return_url: None,
    };
    match state
        .console
        .create_session(request, "dev-demo", &base)
        .await
    {
        Ok(link) => (StatusCode::SEE_OTHER, [(LOCATION, link.url)]).into_response(),
        Err(error) => internal_page(&error),
    }
}
