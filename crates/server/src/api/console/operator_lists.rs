//! The operator's lists: connections by status (counts per connector and
//! status, and a filtered page of connections: ids, identity and status,
//! never token material) and the recent webhook deliveries (state,
//! attempts, next attempt; filtered by state). Pages hold at most
//! [`PAGE_SIZE`] rows and go back at most [`MAX_PAGES`] pages.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum_extra::extract::cookie::CookieJar;
use serde::{Deserialize, Serialize};

use super::signin::operator;
use super::{html, internal_page};
use crate::api::AppState;
use crate::console::templates;
use crate::store::console_overview::{
    ConnectionFilter, ConnectionRow, DeliveryRow, DeliveryState, StatusCount,
};

/// Rows per page.
pub const PAGE_SIZE: i64 = 50;
/// The furthest page a list goes back to.
pub const MAX_PAGES: i64 = 200;

/// The statuses a connection can have, for the filter.
const STATUSES: [&str; 3] = ["active", "needs_reauth", "revoked"];
/// The states a delivery can be in, for the filter.
const DELIVERY_STATES: [&str; 3] = ["pending", "delivered", "failed"];

/// Renders `name` with `view`.
fn page(name: &'static str, status: StatusCode, view: impl Serialize) -> Response {
    match templates::render(name, view) {
        Ok(body) => html(status, body),
        Err(error) => internal_page(&error),
    }
}

/// The page number asked for (1 to [`MAX_PAGES`]; 1 when absent or bad).
fn page_number(raw: Option<&str>) -> i64 {
    raw.and_then(|p| p.trim().parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, MAX_PAGES)
}

/// Filters of the connections page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct ConnectionQuery {
    #[serde(default)]
    connector: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    account: String,
    page: Option<String>,
}

#[derive(Serialize)]
struct ConnectionsView {
    title: &'static str,
    csrf: String,
    counts: Vec<StatusCount>,
    statuses: [&'static str; 3],
    connector: String,
    status: String,
    account: String,
    page: i64,
    more: bool,
    connections: Vec<ConnectionRow>,
}

/// `GET /console/connections?connector=&status=&account=&page=`.
pub(super) async fn connections(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<ConnectionQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let operator = match operator(&state, &jar).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let status = if STATUSES.contains(&query.status.as_str()) {
        query.status
    } else {
        String::new()
    };
    let filter = ConnectionFilter {
        connector_id: query.connector.trim().to_string(),
        status,
        account_id: query.account.trim().to_string(),
    };
    let number = page_number(query.page.as_deref());
    let overview = &state.console.overview;
    let counts = match overview.counts_by_status().await {
        Ok(counts) => counts,
        Err(error) => return internal_page(&error),
    };
    // One row more than shown says whether there is a next page.
    let mut rows = match overview
        .connections(&filter, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        .await
    {
        Ok(rows) => rows,
        Err(error) => return internal_page(&error),
    };
    let more = rows.len() as i64 > PAGE_SIZE && number < MAX_PAGES;
    rows.truncate(PAGE_SIZE as usize);
    let view = ConnectionsView {
        title: "Connections",
        csrf: operator.csrf(),
        counts,
        statuses: STATUSES,
        connector: filter.connector_id,
        status: filter.status,
        account: filter.account_id,
        page: number,
        more,
        connections: rows,
    };
    page("operator_connections.html", StatusCode::OK, view)
}

/// Filters of the webhook deliveries page.
#[derive(Debug, Default, Deserialize)]
pub(super) struct DeliveryQuery {
    #[serde(default)]
    state: String,
    page: Option<String>,
}

#[derive(Serialize)]
struct DeliveriesView {
    title: &'static str,
    csrf: String,
    states: [&'static str; 3],
    state: String,
    page: i64,
    more: bool,
    deliveries: Vec<DeliveryRow>,
}

/// `GET /console/webhooks?state=&page=`.
pub(super) async fn webhooks(
    State(state): State<AppState>,
    jar: CookieJar,
    query: Result<Query<DeliveryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let operator = match operator(&state, &jar).await {
        Ok(operator) => operator,
        Err(response) => return response,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let (filter, shown) = match DeliveryState::parse(query.state.trim()) {
        Some(filter) => (filter, query.state.trim().to_string()),
        None => (DeliveryState::Any, String::new()),
    };
    let number = page_number(query.page.as_deref());
    let mut rows = match state
        .console
        .overview
        .deliveries(filter, PAGE_SIZE + 1, (number - 1) * PAGE_SIZE)
        .await
    {
        Ok(rows) => rows,
        Err(error) => return internal_page(&error),
    };
    let more = rows.len() as i64 > PAGE_SIZE && number < MAX_PAGES;
    rows.truncate(PAGE_SIZE as usize);
    let view = DeliveriesView {
        title: "Webhook deliveries",
        csrf: operator.csrf(),
        states: DELIVERY_STATES,
        state: shown,
        page: number,
        more,
        deliveries: rows,
    };
    page("operator_webhooks.html", StatusCode::OK, view)
}
