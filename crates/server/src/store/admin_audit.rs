//! The admin audit log: who changed which admin setting of which account,
//! and when. It records field names, never values.

use rand::RngCore as _;
use serde::Serialize;
use sqlx::Row;

use super::{Database, unix_seconds};
use crate::access::Principal;

/// One admin change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AdminEvent {
    /// Unix seconds.
    pub at: i64,
    /// The API key that made the change.
    pub key_id: String,
    /// That key's name.
    pub key_name: String,
    /// That key's role.
    pub role: String,
    /// The account changed.
    pub account_id: Option<String>,
    /// The connector concerned.
    pub connector_id: Option<String>,
    /// The user concerned (user-scoped values).
    pub user_id: Option<String>,
    /// What was done, e.g. `managed-oauth.set`.
    pub action: String,
    /// Which fields changed and the effect (never values).
    pub detail: String,
}

/// What an admin change was about.
#[derive(Debug, Clone, Default)]
pub struct AdminChange<'a> {
    /// The account.
    pub account_id: Option<&'a str>,
    /// The connector.
    pub connector_id: Option<&'a str>,
    /// The user.
    pub user_id: Option<&'a str>,
    /// The action.
    pub action: &'a str,
    /// Field names and effects, never values.
    pub detail: String,
}

/// Nanoseconds since the epoch, strictly increasing within this process:
/// audit ids sort in the order changes were made (across replicas, by clock).
fn sortable_now() -> u128 {
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    *last = now.max(*last + 1);
    *last
}

/// The admin audit table.
#[derive(Clone)]
pub struct AdminAudit {
    database: Database,
}

impl AdminAudit {
    /// The log of `database`.
    pub fn new(database: Database) -> Self {
        Self { database }
    }

    /// Records a change made by `who`.
    pub async fn record(
        &self,
        who: &Principal,
        change: AdminChange<'_>,
    ) -> Result<(), sqlx::Error> {
        let mut random = [0u8; 6];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let id = format!("{:020}-{}", sortable_now(), hex::encode(random));
        sqlx::query(
            "INSERT INTO admin_audit (id, at, key_id, key_name, role, account_id, connector_id, user_id, action, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&id)
        .bind(unix_seconds())
        .bind(&who.key_id)
        .bind(&who.name)
        .bind(who.role.as_str())
        .bind(change.account_id)
        .bind(change.connector_id)
        .bind(change.user_id)
        .bind(change.action)
        .bind(&change.detail)
        .execute(&self.database.pool)
        .await?;
        tracing::info!(
            key = %who.key_id,
            account = change.account_id.unwrap_or("-"),
            connector = change.connector_id.unwrap_or("-"),
            action = change.action,
            detail = %change.detail,
            "admin change"
        );
        Ok(())
    }

    /// The newest changes, of one account or of all (`None`).
    pub async fn list(
        &self,
        account_id: Option<&str>,
        limit: i64,
    ) -> Result<Vec<AdminEvent>, sqlx::Error> {
        let columns =
            "at, key_id, key_name, role, account_id, connector_id, user_id, action, detail";
        let rows = match account_id {
            Some(account) => sqlx::query(&format!(
                "SELECT {columns} FROM admin_audit WHERE account_id = $1 ORDER BY id DESC LIMIT $2"
            ))
            .bind(account)
            .bind(limit)
            .fetch_all(&self.database.pool)
            .await?,
            None => {
                sqlx::query(&format!(
                    "SELECT {columns} FROM admin_audit ORDER BY id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.database.pool)
                .await?
            }
        };
        rows.iter()
            .map(|row| {
                Ok(AdminEvent {
                    at: row.try_get(0)?,
                    key_id: row.try_get(1)?,
                    key_name: row.try_get(2)?,
                    role: row.try_get(3)?,
                    account_id: row.try_get(4)?,
                    connector_id: row.try_get(5)?,
                    user_id: row.try_get(6)?,
                    action: row.try_get(7)?,
                    detail: row.try_get(8)?,
                })
            })
            .collect()
    }
}
