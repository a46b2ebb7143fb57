//! The `webhook_outbox` table (migration 0007). Queries run on SQLite and
//! PostgreSQL through `AnyPool`; times are Unix seconds.
//!
//! A row is pending while `delivered_at` and `failed_at` are both empty. A
//! replica claims a due row by setting `locked_until` (and a random `locked_by`
//! token) in one `UPDATE` that only matches while the row is unclaimed or its
//! claim has expired, so two replicas never hold the same row at once; the
//! outcome is written only by the holder of the claim.
//!
//! Each row carries a MAC under the master keys (migration 0010); a claimed row
//! whose MAC does not verify was not written by a host and is never sent.

use sqlx::Row;

use super::{DeliveryStatus, EventsError};
use crate::store::Database;
use crate::store::crypto::Keyring;

/// What the outbox MAC is computed for ([`Keyring::mac`]).
const MAC_PURPOSE: &str = "webhook_outbox";

/// The outbox MAC of a row: over its id, type, payload and creation time, the
/// fields that make up what the host signs and sends.
pub(super) fn row_mac(
    keys: &Keyring,
    id: &str,
    event_type: &str,
    payload: &str,
    created_at: i64,
) -> String {
    keys.mac(
        MAC_PURPOSE,
        &[id, event_type, payload, &created_at.to_string()],
    )
}

/// Adds an event, due now, with its MAC.
pub(super) async fn insert(
    database: &Database,
    keys: &Keyring,
    id: &str,
    event_type: &str,
    url: &str,
    payload: &str,
    now: i64,
) -> Result<(), EventsError> {
    sqlx::query(
        "INSERT INTO webhook_outbox (id, event_type, url, payload, attempts, next_attempt_at, created_at, mac)
         VALUES ($1, $2, $3, $4, 0, $5, $5, $6)",
    )
    .bind(id)
    .bind(event_type)
    .bind(url)
    .bind(payload)
    .bind(now)
    .bind(row_mac(keys, id, event_type, payload, now))
    .execute(&database.pool)
    .await?;
    Ok(())
}

/// The one-time upgrade of migration 0010: gives every pending row written
/// before outbox MACs existed its MAC, so it is still sent. Returns how many.
pub(crate) async fn mac_pending_rows(
    database: &Database,
    keys: &Keyring,
) -> Result<u64, EventsError> {
    let rows = sqlx::query(
        "SELECT id, event_type, payload, created_at FROM webhook_outbox
         WHERE mac IS NULL AND delivered_at IS NULL AND failed_at IS NULL",
    )
    .fetch_all(&database.pool)
    .await?;
    let mut done = 0;
    for row in rows {
        let (id, event_type, payload, created_at): (String, String, String, i64) = (
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        );
        let mac = row_mac(keys, &id, &event_type, &payload, created_at);
        done += sqlx::query("UPDATE webhook_outbox SET mac = $1 WHERE id = $2 AND mac IS NULL")
            .bind(mac)
            .bind(&id)
            .execute(&database.pool)
            .await?
            .rows_affected();
    }
    Ok(done)
}

/// Ids of due, unclaimed events for `url`, oldest first.
pub(super) async fn due(
    database: &Database,
    url: &str,
    now: i64,
    limit: i64,
) -> Result<Vec<String>, EventsError> {
    Ok(sqlx::query_scalar(
        "SELECT id FROM webhook_outbox
         WHERE delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2 AND url = $1
           AND (locked_until IS NULL OR locked_until <= $2)
         ORDER BY next_attempt_at, created_at, id LIMIT $3",
    )
    .bind(url)
    .bind(now)
    .bind(limit)
    .fetch_all(&database.pool)
    .await?)
}

/// A claimed row: what to send.
pub(super) struct Claimed {
    pub event_type: String,
    pub payload: String,
    /// This attempt's number (1 for the first).
    pub attempt: u32,
    /// Unix seconds the row was written.
    pub created_at: i64,
    /// The row's MAC; `None` for a row no host wrote.
    pub mac: Option<String>,
}

impl Claimed {
    /// Whether the host wrote this row as it is: its MAC verifies under the
    /// master keys. A row written or altered by someone with only database
    /// access does not, and must not be signed or sent.
    pub fn authentic(&self, keys: &Keyring, id: &str) -> bool {
        let Some(mac) = &self.mac else {
            return false;
        };
        let created_at = self.created_at.to_string();
        keys.verify_mac(
            MAC_PURPOSE,
            &[id, &self.event_type, &self.payload, &created_at],
            mac,
        )
    }
}

/// Claims one due event until `locked_until` and counts the attempt; `None` if
/// another replica claimed it first or it is no longer due.
pub(super) async fn claim(
    database: &Database,
    id: &str,
    token: &str,
    now: i64,
    locked_until: i64,
) -> Result<Option<Claimed>, EventsError> {
    let done = sqlx::query(
        "UPDATE webhook_outbox SET locked_until = $3, locked_by = $4, attempts = attempts + 1
         WHERE id = $1 AND delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $2
           AND (locked_until IS NULL OR locked_until <= $2)",
    )
    .bind(id)
    .bind(now)
    .bind(locked_until)
    .bind(token)
    .execute(&database.pool)
    .await?;
    if done.rows_affected() != 1 {
        return Ok(None);
    }
    let row = sqlx::query(
        "SELECT event_type, payload, attempts, created_at, mac FROM webhook_outbox WHERE id = $1 AND locked_by = $2",
    )
    .bind(id)
    .bind(token)
    .fetch_optional(&database.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempts: i64 = row.try_get(2)?;
    Ok(Some(Claimed {
        event_type: row.try_get(0)?,
        payload: row.try_get(1)?,
        attempt: u32::try_from(attempts).unwrap_or(u32::MAX),
        created_at: row.try_get(3)?,
        mac: row.try_get(4)?,
    }))
}

/// Records a 2xx answer and releases the claim.
pub(super) async fn delivered(
    database: &Database,
    id: &str,
    token: &str,
    now: i64,
    status: u16,
) -> Result<bool, EventsError> {
    let done = sqlx::query(
        "UPDATE webhook_outbox SET delivered_at = $3, last_status = $4, last_error = NULL,
         locked_until = NULL, locked_by = NULL WHERE id = $1 AND locked_by = $2",
    )
    .bind(id)
    .bind(token)
    .bind(now)
    .bind(i64::from(status))
    .execute(&database.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Records a failed attempt and releases the claim: the next attempt is due at
/// `next_attempt_at`, or, with `None`, the event is marked failed at `now`.
pub(super) async fn attempt_failed(
    database: &Database,
    id: &str,
    token: &str,
    now: i64,
    status: Option<u16>,
    error: &str,
    next_attempt_at: Option<i64>,
) -> Result<bool, EventsError> {
    let (failed_at, next) = match next_attempt_at {
        Some(at) => (None, at),
        None => (Some(now), now),
    };
    let done = sqlx::query(
        "UPDATE webhook_outbox SET last_status = $3, last_error = $4, next_attempt_at = $5, failed_at = $6,
         locked_until = NULL, locked_by = NULL WHERE id = $1 AND locked_by = $2",
    )
    .bind(id)
    .bind(token)
    .bind(status.map(i64::from))
    .bind(error)
    .bind(next)
    .bind(failed_at)
    .execute(&database.pool)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Hands pending events recorded for another URL (the operator changed
/// `webhooks.url`) to `url`; returns how many.
pub(super) async fn adopt(database: &Database, url: &str, now: i64) -> Result<u64, EventsError> {
    let done = sqlx::query(
        "UPDATE webhook_outbox SET url = $1
         WHERE url <> $1 AND delivered_at IS NULL AND failed_at IS NULL
           AND (locked_until IS NULL OR locked_until <= $2)",
    )
    .bind(url)
    .bind(now)
    .execute(&database.pool)
    .await?;
    Ok(done.rows_affected())
}

#[cfg(feature = "test-support")]
/// Test support: every pending, unclaimed event of `url` due now.
pub(super) async fn make_due(database: &Database, url: &str) -> Result<(), EventsError> {
    sqlx::query(
        "UPDATE webhook_outbox SET next_attempt_at = $2
         WHERE url = $1 AND delivered_at IS NULL AND failed_at IS NULL AND locked_until IS NULL",
    )
    .bind(url)
    .bind(crate::store::unix_seconds())
    .execute(&database.pool)
    .await?;
    Ok(())
}

/// One event's delivery state.
pub(super) async fn status(
    database: &Database,
    id: &str,
) -> Result<Option<DeliveryStatus>, EventsError> {
    let row = sqlx::query(
        "SELECT id, event_type, attempts, next_attempt_at, delivered_at, failed_at, last_status, last_error
         FROM webhook_outbox WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(&database.pool)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    let attempts: i64 = row.try_get(2)?;
    let last_status: Option<i64> = row.try_get(6)?;
    Ok(Some(DeliveryStatus {
        id: row.try_get(0)?,
        event_type: row.try_get(1)?,
        attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
        next_attempt_at: row.try_get(3)?,
        delivered_at: row.try_get(4)?,
        failed_at: row.try_get(5)?,
        last_status: last_status.and_then(|s| u16::try_from(s).ok()),
        last_error: row.try_get(7)?,
    }))
}
