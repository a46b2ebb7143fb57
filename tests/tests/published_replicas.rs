//! Three `connector-host serve` replicas on one database follow published
//! components without a restart: a publication through one is served by
//! all three (read through each one's API), a rollback through another
//! brings all three back, and a broken or badly signed component is
//! refused with nothing changed.
//!
//! On PostgreSQL (`CONNECTOR_HOST_TEST_POSTGRES_URL`, always set in CI) the
//! replicas reconcile only once an hour, so what reaches them within the
//! test's deadline came through `LISTEN/NOTIFY`. Without it the replicas
//! share one SQLite file and follow it by reconciling every second.

#[path = "publishing_support/mod.rs"]
mod publishing_support;

use connector_test_support::databases::host_backend;
use publishing_support::{PROPAGATION, Site, VERSIONED, guest_copy};
use serde_json::Value;

/// The `[publishing]` section for this backend (see the module docs).
fn publishing_config() -> &'static str {
    if host_backend() == "postgres" {
        "[publishing]\nreconcile_interval_secs = 3600\n"
    } else {
        "[publishing]\nreconcile_interval_secs = 1\n"
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_replicas_serve_a_publication_and_a_rollback_without_restart() {
    let backend = host_backend();
    let site = Site::new(publishing_config()).await;
    let replicas = [site.serve("a"), site.serve("b"), site.serve("c")];
    let all: Vec<_> = replicas.iter().collect();
    let files = tempfile::tempdir().unwrap();
    let v1 = guest_copy(files.path(), "versioned_v1");
    let v2 = guest_copy(files.path(), "versioned_v2");

    // 1. Publish through one replica: all three serve it.
    site.publish_ok(&replicas[0], &v1);
    site.await_everywhere(&all, VERSIONED, "1.0.0", "published")
        .await;
    site.publish_ok(&replicas[1], &v2);
    site.await_everywhere(&all, VERSIONED, "2.0.0", "published")
        .await;

    // 2. Roll back through the third: all three serve the old version.
    let (ok, _, err) = site.cli(&replicas[2], &["components", "rollback", VERSIONED]);
    assert!(ok, "{backend}: {err}");
    site.await_everywhere(&all, VERSIONED, "1.0.0", "published")
        .await;

    // 3. A broken component and a badly signed one are refused; nothing
    // changes on any replica.
    let before = site.versions(&replicas[0], VERSIONED).await;
    let broken = guest_copy(files.path(), "auth_mismatch");
    let (ok, _, err) = site.cli(&replicas[0], &["publish", broken.to_str().unwrap()]);
    assert!(
        !ok && err.contains("component_rejected"),
        "{backend}: {err}"
    );
    let keys = tempfile::tempdir().unwrap();
    let key = keys.path().join("release.key");
    let signed = |args: &[&str]| {
        let output = std::process::Command::new(publishing_support::BIN)
            .args(args)
            .output()
            .unwrap();
        assert!(output.status.success(), "{args:?}");
    };
    signed(&["signing-key", "--out", key.to_str().unwrap()]);
    signed(&["sign", v1.to_str().unwrap(), "--key", key.to_str().unwrap()]);
    // A valid component, not published yet, with v1's signature.
    let other = guest_copy(files.path(), "apikey_insightly");
    std::fs::copy(
        files.path().join("versioned_v1.wasm.sig"),
        files.path().join("apikey_insightly.wasm.sig"),
    )
    .unwrap();
    let (ok, _, err) = site.cli(&replicas[1], &["publish", other.to_str().unwrap()]);
    assert!(
        !ok && err.contains("signature_rejected"),
        "{backend}: {err}"
    );
    let (status, _) = site.get(&replicas[2], "/v1/components/insightly").await;
    assert_eq!(status, 404, "{backend}: nothing was stored");
    for replica in &replicas {
        assert_eq!(site.versions(replica, VERSIONED).await, before, "{backend}");
        assert_eq!(
            site.served(replica, VERSIONED).await,
            Some(("1.0.0".into(), "published".into())),
            "{backend}: {}",
            replica.base
        );
    }

    // Every replica reports what it serves.
    let deadline = std::time::Instant::now() + PROPAGATION;
    loop {
        let (status, status_list) = site.get(&replicas[0], "/v1/replicas").await;
        assert_eq!(status, 200, "{status_list}");
        if reporting(&status_list, "1.0.0") == 3 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{backend}: not every replica reports 1.0.0: {status_list}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// How many replicas report serving `version` of the versioned connector.
fn reporting(replicas: &Value, version: &str) -> usize {
    replicas
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| {
            r["connectors"]
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["connectorId"] == VERSIONED && c["version"] == version)
        })
        .count()
}
