//! The store on a real SQLite file and, when `CONNECTOR_HOST_TEST_POSTGRES_URL`
//! is set (always in CI), on a real PostgreSQL.

use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome, AuditSink};
use connector_server::registry::inspect::inspect;
use connector_server::store::{AuditWriter, Database};
use connector_test_support::databases::{POSTGRES_ENV, databases, sqlite_url};

fn info() -> connector_server::registry::inspect::ComponentInfo {
    inspect(&connector_test_support::guest_bytes("versioned_v1")).unwrap()
}

async fn records_versions(database: &Database, connector_id: &str) {
    let mut info = info();
    info.manifest.id = connector_id.to_string();
    database
        .record_connector_version(&info, "a.wasm")
        .await
        .unwrap();
    database
        .record_connector_version(&info, "b.wasm")
        .await
        .unwrap();
    let versions = database.connector_versions(connector_id).await.unwrap();
    assert_eq!(versions.len(), 1, "the same file hash is one version");
    assert_eq!(versions[0].sha256, info.sha256);
    assert_eq!(versions[0].file_name, "b.wasm");
    assert!(
        database
            .connector_versions("never-loaded")
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn sqlite_file_is_created_migrated_and_records_versions() {
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("host.db"));
    let database = Database::connect(&url).await.unwrap();
    records_versions(&database, "test-versioned").await;
    // Reconnecting runs migrations again without harm and keeps the data.
    let again = Database::connect(&url).await.unwrap();
    assert_eq!(
        again
            .connector_versions("test-versioned")
            .await
            .unwrap()
            .len(),
        1
    );
}

#[tokio::test]
async fn postgres_records_versions_when_configured() {
    let Ok(url) = std::env::var(POSTGRES_ENV) else {
        assert!(
            std::env::var("CI").is_err(),
            "CI must set CONNECTOR_HOST_TEST_POSTGRES_URL"
        );
        eprintln!("CONNECTOR_HOST_TEST_POSTGRES_URL not set: PostgreSQL part not run");
        return;
    };
    let database = Database::connect(&url).await.expect("PostgreSQL reachable");
    let id = format!("pg-test-{}", std::process::id());
    records_versions(&database, &id).await;
}

#[tokio::test]
async fn unsupported_urls_are_refused_with_a_clear_message() {
    let error = Database::connect("mysql://localhost/x").await.unwrap_err();
    assert!(
        error.to_string().contains("unsupported database URL"),
        "{error}"
    );
}

fn event(connector_id: &str, outcome: AuditOutcome, status: Option<u16>) -> AuditEvent {
    AuditEvent {
        at_ms: 1_700_000_000_000,
        connector_id: connector_id.into(),
        connector_version: "1.0.0".into(),
        account_id: Some("acct-1".into()),
        method: "GET".into(),
        scheme: Some("https".into()),
        host: Some("api.example.com".into()),
        port: Some(443),
        path: Some("/v1/me".into()),
        outcome,
        reason: (outcome == AuditOutcome::Refused).then(|| "origin-not-allowed: …".into()),
        status,
        request_bytes: 0,
        response_bytes: 42,
        duration_us: 1234,
        credential: Some("access-token".into()),
        scrubbed: false,
    }
}

async fn audit_round_trip(database: &Database, connector_id: &str) {
    let writer = AuditWriter::start(database);
    for i in 0..300 {
        let outcome = if i % 2 == 0 {
            AuditOutcome::Sent
        } else {
            AuditOutcome::Refused
        };
        writer.record(event(
            connector_id,
            outcome,
            (outcome == AuditOutcome::Sent).then_some(200),
        ));
    }
    writer.record(event("someone-else", AuditOutcome::Sent, Some(200)));
    writer.flush().await;
    let events = database.outbound_audit(connector_id, 1000).await.unwrap();
    assert_eq!(
        events.len(),
        300,
        "every event is written, and only this connector's are listed"
    );
    assert_eq!(events[0].outcome, AuditOutcome::Refused, "newest first");
    assert_eq!(events[1].status, Some(200));
    assert_eq!(events[1].credential.as_deref(), Some("access-token"));
    assert_eq!(events[1].path.as_deref(), Some("/v1/me"));
    assert_eq!(
        database
            .outbound_audit(connector_id, 5)
            .await
            .unwrap()
            .len(),
        5
    );
}

#[tokio::test]
async fn the_outbound_audit_is_written_in_batches_and_listed_per_connector() {
    for backend in databases().await {
        let id = match backend.name {
            "sqlite" => "test-http-probe".to_string(),
            _ => format!("pg-audit-{}", std::process::id()),
        };
        audit_round_trip(&backend.database, &id).await;
    }
}

#[tokio::test]
async fn a_new_sqlite_database_and_its_wal_are_readable_by_the_host_only() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("private.db");
    let database = Database::connect(&format!("sqlite://{}?mode=rwc", path.display()))
        .await
        .unwrap();
    connector_server::store::ApiKeyStore::new(database.clone())
        .create("a write", connector_server::access::Role::Operator, &[])
        .await
        .unwrap();
    for file in ["private.db", "private.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}: {mode:o}");
    }
}
