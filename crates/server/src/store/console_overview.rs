//! Read-only overviews the web console shows: how many connections each
//! connector has per status, a filtered page of connections (identity and
//! status only: no column holding token material is ever selected), how many
//! connections an admin's change would send back to re-auth, and the recent
//! webhook deliveries. Every list is bounded by [`MAX_PAGE`].

use serde::Serialize;
use sqlx::Row;

use super::Database;

/// The most rows one page of a list holds.
pub const MAX_PAGE: i64 = 200;

/// How many connections of one connector have one status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusCount {
    /// The connector.
    pub connector_id: String,
    /// `active`, `needs_reauth` or `revoked`.
    pub status: String,
    /// How many.
    pub count: i64,
}

/// Which connections a list shows (empty: any).
#[derive(Debug, Clone, Default)]
pub struct ConnectionFilter {
    /// Exactly this connector.
    pub connector_id: String,
    /// Exactly this status.
    pub status: String,
    /// Exactly this account.
    pub account_id: String,
}

/// One connection as the console lists it: never a token, key or secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionRow {
    /// Connection id.
    pub id: String,
    /// Platform account.
    pub account_id: String,
    /// Platform user.
    pub user_id: String,
    /// Connector.
    pub connector_id: String,
    /// `active`, `needs_reauth` or `revoked`.
    pub status: String,
    /// The CRM user's name, if known.
    pub user_name: Option<String>,
    /// Unix seconds.
    pub updated_at: i64,
}

/// Which webhook deliveries a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Any.
    Any,
    /// Neither delivered nor given up.
    Pending,
    /// A receiver answered 2xx.
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryState {
    /// Parses a filter value (`""` is any); `None` for an unknown one.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "" => Some(Self::Any),
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }

    fn condition(self) -> &'static str {
        match self {
            Self::Any => "1 = 1",
            Self::Pending => "delivered_at IS NULL AND failed_at IS NULL",
            Self::Delivered => "delivered_at IS NOT NULL",
            Self::Failed => "failed_at IS NOT NULL",
        }
    }
}

/// One webhook event's delivery, as the console lists it (never its payload).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    /// Event id.
    pub id: String,
    /// `connection.created`, ….
    pub event_type: String,
    /// `pending`, `delivered` or `failed`.
    pub state: &'static str,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the next attempt is due (Unix seconds), while pending.
    pub next_attempt_at: Option<i64>,
    /// HTTP status of the last answer.
    pub last_status: Option<i64>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Unix seconds.
    pub created_at: i64,
}

/// The console's overviews over one database.
#[derive(Clone, Debug)]
pub struct ConsoleOverview {
    database: Database,
}

impl ConsoleOverview {
    /// The overviews of `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Connections per connector and status, by connector then status.
    pub async fn counts_by_status(&self) -> Result<Vec<StatusCount>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT connector_id, status, COUNT(*) FROM connections
             GROUP BY connector_id, status ORDER BY connector_id, status",
        )
        .fetch_all(&self.database.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(StatusCount {
                    connector_id: row.try_get(0)?,
                    status: row.try_get(1)?,
                    count: row.try_get(2)?,
                })
            })
            .collect()
    }

    /// A page of connections matching `filter`, newest change first:
    /// `limit` (at most [`MAX_PAGE`]) rows after skipping `offset`.
    pub async fn connections(
        &self,
        filter: &ConnectionFilter,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<ConnectionRow>, sqlx::Error> {
        let rows = sqlx::query(
            "SELECT id, account_id, user_id, connector_id, status, user_name, updated_at
             FROM connections
             WHERE ($1 = '' OR connector_id = $1) AND ($2 = '' OR status = $2)
               AND ($3 = '' OR account_id = $3)
             ORDER BY updated_at DESC, id LIMIT $4 OFFSET $5",
        )
        .bind(&filter.connector_id)
        .bind(&filter.status)
        .bind(&filter.account_id)
        .bind(limit.clamp(1, MAX_PAGE))
        .bind(offset.max(0))
        .fetch_all(&self.database.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ConnectionRow {
                    id: row.try_get(0)?,
                    account_id: row.try_get(1)?,
                    user_id: row.try_get(2)?,
                    connector_id: row.try_get(3)?,
                    status: row.try_get(4)?,
                    user_name: row.try_get(5)?,
                    updated_at: row.try_get(6)?,
                })
            })
            .collect()
    }

    /// How many connections of the account to the connector a change of its
    /// admin-managed OAuth application sends back to re-auth: its `active`
    /// ones, the rule the change itself applies
    /// (`ConnectionStore::invalidate_account_connector`).
    pub async fn reauth_count(
        &self,
        account_id: &str,
        connector_id: &str,
    ) -> Result<i64, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM connections
             WHERE account_id = $1 AND connector_id = $2 AND status = 'active'",
        )
        .bind(account_id)
        .bind(connector_id)
        .fetch_one(&self.database.pool)
        .await
    }

    /// The newest webhook deliveries in `state`, at most `limit` (up to
    /// [`MAX_PAGE`]) after skipping `offset`.
    pub async fn deliveries(
        &self,
        state: DeliveryState,
        limit: i64,
        offset: i64,
    ) -> Result<Vec<DeliveryRow>, sqlx::Error> {
        let rows = sqlx::query(&format!(
            "SELECT id, event_type, attempts, next_attempt_at, delivered_at, failed_at,
                    last_status, last_error, created_at
             FROM webhook_outbox WHERE {}
             ORDER BY created_at DESC, id LIMIT $1 OFFSET $2",
            state.condition()
        ))
        .bind(limit.clamp(1, MAX_PAGE))
        .bind(offset.max(0))
        .fetch_all(&self.database.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let delivered: Option<i64> = row.try_get(4)?;
                let failed: Option<i64> = row.try_get(5)?;
                let state = match (delivered, failed) {
                    (Some(_), _) => "delivered",
                    (None, Some(_)) => "failed",
                    (None, None) => "pending",
                };
                let next: i64 = row.try_get(3)?;
                Ok(DeliveryRow {
                    id: row.try_get(0)?,
                    event_type: row.try_get(1)?,
                    state,
                    attempts: row.try_get(2)?,
                    next_attempt_at: (state == "pending").then_some(next),
                    last_status: row.try_get(6)?,
                    last_error: row.try_get(7)?,
                    created_at: row.try_get(8)?,
                })
            })
            .collect()
    }
}
