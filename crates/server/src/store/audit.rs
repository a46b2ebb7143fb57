//! The outbound audit log in the database: written in batches by a background
//! task (a request never waits for the database), read by `connector-host
//! audit` and `/v1/connectors/{id}/audit`.

use sqlx::{AnyPool, Row};
use tokio::sync::{mpsc, oneshot};

use super::Database;
use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome, AuditSink};

/// Most events written in one transaction.
const BATCH: usize = 256;

enum Message {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// An [`AuditSink`] writing to the database.
#[derive(Clone)]
pub struct AuditWriter {
    sender: mpsc::UnboundedSender<Message>,
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(database: &Database) -> Self {
        let (sender, mut receiver) = mpsc::unbounded_channel::<Message>();
        let pool = database.pool.clone();
        tokio::spawn(async move {
            let mut batch = Vec::with_capacity(BATCH);
            while let Some(first) = receiver.recv().await {
                let mut flushes = Vec::new();
                for message in
                    std::iter::once(first).chain(std::iter::from_fn(|| receiver.try_recv().ok()))
                {
                    match message {
                        Message::Event(event) => batch.push(*event),
                        Message::Flush(done) => flushes.push(done),
                    }
                    if batch.len() >= BATCH {
                        write(&pool, &mut batch).await;
                    }
                }
                write(&pool, &mut batch).await;
                for done in flushes {
                    let _ = done.send(());
                }
            }
        });
        Self { sender }
    }

    /// Waits until every event recorded so far is in the database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.await;
        }
    }
}

impl AuditSink for AuditWriter {
    fn record(&self, event: AuditEvent) {
        if self.sender.send(Message::Event(Box::new(event))).is_err() {
            tracing::error!(
                "audit writer stopped: an outbound request was not recorded in the database"
            );
        }
    }
}

async fn write(pool: &AnyPool, batch: &mut Vec<AuditEvent>) {
    if batch.is_empty() {
        return;
    }
    let result: Result<(), sqlx::Error> = async {
        let mut tx = pool.begin().await?;
        for e in batch.iter() {
            sqlx::query(
                "INSERT INTO outbound_audit (at_ms, connector_id, connector_version, account_id, method, scheme, host,
                 port, path, outcome, reason, status, request_bytes, response_bytes, duration_us, credential,
                 scrubbed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
            )
            .bind(e.at_ms)
            .bind(&e.connector_id)
            .bind(&e.connector_version)
            .bind(&e.account_id)
            .bind(&e.method)
            .bind(&e.scheme)
            .bind(&e.host)
            .bind(e.port.map(i32::from))
            .bind(&e.path)
            .bind(outcome_name(e.outcome))
            .bind(&e.reason)
            .bind(e.status.map(i32::from))
            .bind(e.request_bytes as i64)
            .bind(e.response_bytes as i64)
            .bind(e.duration_us as i64)
            .bind(&e.credential)
            .bind(i64::from(e.scrubbed))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
    .await;
    if let Err(error) = result {
        tracing::error!(%error, events = batch.len(), "cannot write outbound audit events");
    }
    batch.clear();
}

fn outcome_name(outcome: AuditOutcome) -> &'static str {
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
