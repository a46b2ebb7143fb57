//! The outbound audit log in the database, read by `connector-host audit`
//! and `/v1/connectors/{id}/audit` (written by [`super::AuditWriter`]).

use sqlx::Row;

use super::Database;
use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome};

pub(super) fn outcome_name(outcome: AuditOutcome) -> &'static str {
    match outcome {
        AuditOutcome::Sent => "sent",
        AuditOutcome::Refused => "refused",
        AuditOutcome::Failed => "failed",
    }
}

fn outcome_from(name: &str) -> AuditOutcome {
    match name {
        "sent" => AuditOutcome::Sent,
        "refused" => AuditOutcome::Refused,
        _ => AuditOutcome::Failed,
    }
}

impl Database {
    /// A connector's most recent outbound requests, newest first.
    pub async fn outbound_audit(
        &self,
        connector_id: &str,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditEvent>> {
        let rows = sqlx::query(
            "SELECT at_ms, connector_id, connector_version, account_id, method, scheme, host, port, path, outcome,
             reason, status, request_bytes, response_bytes, duration_us, credential, scrubbed
             FROM outbound_audit WHERE connector_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(connector_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                let port: Option<i32> = row.try_get(7)?;
                let status: Option<i32> = row.try_get(11)?;
                let outcome: String = row.try_get(9)?;
                Ok(AuditEvent {
                    at_ms: row.try_get(0)?,
                    connector_id: row.try_get(1)?,
                    connector_version: row.try_get(2)?,
                    account_id: row.try_get(3)?,
                    method: row.try_get(4)?,
                    scheme: row.try_get(5)?,
                    host: row.try_get(6)?,
                    port: port.map(|p| p as u16),
                    path: row.try_get(8)?,
                    outcome: outcome_from(&outcome),
                    reason: row.try_get(10)?,
                    status: status.map(|s| s as u16),
                    request_bytes: row.try_get::<i64, _>(12)? as u64,
                    response_bytes: row.try_get::<i64, _>(13)? as u64,
                    duration_us: row.try_get::<i64, _>(14)? as u64,
                    credential: row.try_get(15)?,
                    scrubbed: row.try_get::<i64, _>(16)? != 0,
                })
            })
            .collect()
    }
}
