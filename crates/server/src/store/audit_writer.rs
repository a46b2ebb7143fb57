//! Writing the outbound audit log: [`AuditWriter`] queues each event in a
//! bounded channel (a request never waits for the database) and one task
//! writes them in batches, one multi-row `INSERT` per batch.
//!
//! Staleness: an event is written at most [`LINGER`] after it was recorded,
//! plus the time of the write itself; [`AuditWriter::flush`] (which `serve`
//! calls on a graceful shutdown) writes everything recorded before it at
//! once. A crash (or SIGKILL) loses what is still queued: at most the events
//! of the last [`LINGER`] and the batch being written. When more than
//! [`CAPACITY`] events wait (the database stalled), further events are not
//! recorded in the database and an ERROR is logged; the request itself goes
//! on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::AnyPool;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use super::Database;
use super::audit::outcome_name;
use connector_sandbox::capabilities::http::{AuditEvent, AuditSink};

/// Most events written in one statement (17 parameters each, well under the
/// 32 766 parameters SQLite allows and PostgreSQL's 65 535).
const BATCH: usize = 256;
/// Most events waiting to be written.
pub const CAPACITY: usize = 16_384;
/// Longest an event waits for others to share its write.
pub const LINGER: Duration = Duration::from_millis(5);

enum Message {
    Event(Box<AuditEvent>),
    Flush(oneshot::Sender<()>),
}

/// An [`AuditSink`] writing to the database.
#[derive(Clone)]
pub struct AuditWriter {
    sender: mpsc::Sender<Message>,
    dropped: Arc<AtomicU64>,
}

impl AuditWriter {
    /// Starts the writer task on the current tokio runtime.
    pub fn start(database: &Database) -> Self {
        let (sender, receiver) = mpsc::channel::<Message>(CAPACITY);
        tokio::spawn(write_batches(database.pool.clone(), receiver));
        Self {
            sender,
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Waits until every event recorded so far is in the database.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.sender.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

impl AuditSink for AuditWriter {
    fn record(&self, event: AuditEvent) {
        match self.sender.try_send(Message::Event(Box::new(event))) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged at the 1st, 2nd, 4th, 8th… drop: bounded logging
                // while the database stalls.
                if dropped.is_power_of_two() {
                    tracing::error!(
                        dropped,
                        capacity = CAPACITY,
                        "outbound audit queue full: events not recorded in the database"
                    );
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => tracing::error!(
                "audit writer stopped: an outbound request was not recorded in the database"
            ),
        }
    }
}

/// The writer task: gathers events until [`BATCH`] of them, [`LINGER`]
/// after the first, or a flush, then writes them; ends when every sender is
/// gone (after writing what it holds).
async fn write_batches(pool: AnyPool, mut receiver: mpsc::Receiver<Message>) {
    let mut batch = Vec::with_capacity(BATCH);
    while let Some(first) = receiver.recv().await {
        let deadline = Instant::now() + LINGER;
        let mut flushes = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => batch.push(*event),
                Message::Flush(done) => flushes.push(done),
            }
            if batch.len() >= BATCH {
                write(&pool, &mut batch).await;
            }
            if !flushes.is_empty() {
                // Take what is already queued, without lingering.
                next = receiver.try_recv().ok();
                continue;
            }
            next = tokio::time::timeout_at(deadline, receiver.recv())
                .await
                .ok()
                .flatten();
        }
        write(&pool, &mut batch).await;
        for done in flushes {
            let _ = done.send(());
        }
    }
}

/// Writes `batch` in one statement and empties it; a failure is logged (the
/// events are lost, the host goes on).
async fn write(pool: &AnyPool, batch: &mut Vec<AuditEvent>) {
    if batch.is_empty() {
        return;
    }
    let mut sql = String::from(
        "INSERT INTO outbound_audit (at_ms, connector_id, connector_version, account_id, method, scheme, host,
         port, path, outcome, reason, status, request_bytes, response_bytes, duration_us, credential,
         scrubbed) VALUES ",
    );
    for row in 0..batch.len() {
        if row > 0 {
            sql.push(',');
        }
        sql.push('(');
        for column in 0..17 {
            if column > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("${}", row * 17 + column + 1));
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for e in batch.iter() {
        query = query
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
            .bind(i64::from(e.scrubbed));
    }
    if let Err(error) = query.execute(pool).await {
        tracing::error!(%error, events = batch.len(), "cannot write outbound audit events");
    }
    batch.clear();
}
