//! The outbound audit writer (`store/audit_writer.rs`) on SQLite and, when
//! configured, PostgreSQL: a burst from many tasks arrives whole, each event
//! once; events still queued when the last writer handle is dropped (a
//! graceful shutdown) are written without a flush; and events are written
//! without a flush (the linger), within a bounded deadline.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome, AuditSink};
use connector_server::store::{AuditWriter, Database};
use connector_test_support::databases::{databases, unique};

/// How long a test polls for rows before it fails.
const DEADLINE: Duration = Duration::from_secs(20);

fn event(connector_id: &str, n: usize) -> AuditEvent {
    AuditEvent {
        at_ms: 1_700_000_000_000,
        connector_id: connector_id.into(),
        connector_version: "1.0.0".into(),
        account_id: Some("acct-1".into()),
        method: "GET".into(),
        scheme: Some("https".into()),
        host: Some("api.example.com".into()),
        port: Some(443),
        path: Some(format!("/n/{n}")),
        outcome: AuditOutcome::Sent,
        reason: None,
        status: Some(200),
        request_bytes: 0,
        response_bytes: 42,
        duration_us: 1234,
        credential: Some("access-token".into()),
        scrubbed: false,
    }
}

/// The `n`s of a connector's audit rows, sorted, with their count.
async fn written(database: &Database, connector_id: &str) -> (usize, BTreeSet<usize>) {
    let rows = database
        .outbound_audit(connector_id, 100_000)
        .await
        .unwrap();
    let numbers = rows
        .iter()
        .filter_map(|e| e.path.as_deref()?.strip_prefix("/n/")?.parse().ok())
        .collect();
    (rows.len(), numbers)
}

/// Polls until `connector_id` has `expected` rows or [`DEADLINE`] passes.
async fn wait_for_rows(
    database: &Database,
    connector_id: &str,
    expected: usize,
) -> (usize, BTreeSet<usize>) {
    let started = Instant::now();
    loop {
        let seen = written(database, connector_id).await;
        if seen.0 >= expected || started.elapsed() > DEADLINE {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_from_many_tasks_is_written_whole_and_once() {
    for backend in databases().await {
        let id = unique("audit-burst");
        let writer = AuditWriter::start(&backend.database);
        let mut tasks = Vec::new();
        for task in 0..16 {
            let (writer, id) = (writer.clone(), id.clone());
            tasks.push(tokio::spawn(async move {
                for i in 0..250 {
                    writer.record(event(&id, task * 250 + i));
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        writer.flush().await;
        let (count, numbers) = written(&backend.database, &id).await;
        assert_eq!(
            count, 4000,
            "{}: every event of the burst, once",
            backend.name
        );
        assert_eq!(
            numbers,
            (0..4000).collect(),
            "{}: each event exactly once",
            backend.name
        );
    }
}

#[tokio::test]
async fn events_queued_when_the_writer_is_dropped_are_still_written() {
    for backend in databases().await {
        let id = unique("audit-shutdown");
        let writer = AuditWriter::start(&backend.database);
        for i in 0..600 {
            writer.record(event(&id, i));
        }
        // No flush: dropping the last handle ends the writer task, which
        // writes what it holds first.
        drop(writer);
        let (count, numbers) = wait_for_rows(&backend.database, &id, 600).await;
        assert_eq!(count, 600, "{}: nothing queued is lost", backend.name);
        assert_eq!(numbers, (0..600).collect(), "{}", backend.name);
    }
}

#[tokio::test]
async fn a_single_event_is_written_without_a_flush() {
    for backend in databases().await {
        let id = unique("audit-linger");
        let writer = AuditWriter::start(&backend.database);
        writer.record(event(&id, 7));
        let (count, numbers) = wait_for_rows(&backend.database, &id, 1).await;
        assert_eq!(count, 1, "{}: written once the linger passes", backend.name);
        assert_eq!(numbers, BTreeSet::from([7]), "{}", backend.name);
        drop(writer);
    }
}
