//! Publishing components to the database through a running host
//! (`connector-host publish`, `components …`, `sign`): the checks of `check`
//! at publish time, versions (list, pin, unpin, roll back, retire), the
//! precedence over the plugins folder, signatures, and the replica status.
//! One `serve` replica, on PostgreSQL when `CONNECTOR_HOST_TEST_POSTGRES_URL`
//! is set (always in CI), else on a SQLite file: publishing works in the
//! single process.

#[path = "publishing_support/mod.rs"]
mod publishing_support;

use connector_test_support::databases::host_backend;
use connector_test_support::serve::install_guests;
use publishing_support::{BIN, Site, VERSIONED, guest_copy};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn published_versions_are_served_pinned_rolled_back_and_retired() {
    let backend = host_backend();
    let site = Site::new("").await;
    let host = site.serve("one");
    let files = tempfile::tempdir().unwrap();
    let v1 = guest_copy(files.path(), "versioned_v1");
    let v2 = guest_copy(files.path(), "versioned_v2");

    let out = site.publish_ok(&host, &v1);
    assert!(out.contains("test-versioned 1.0.0"), "{out}");
    assert!(out.contains("live on every replica"), "{out}");
    site.await_everywhere(&[&host], VERSIONED, "1.0.0", "published")
        .await;
    // Publishing the same bytes again changes nothing.
    let out = site.publish_ok(&host, &v1);
    assert!(out.contains("already published"), "{backend}: {out}");

    site.publish_ok(&host, &v2);
    site.await_everywhere(&[&host], VERSIONED, "2.0.0", "published")
        .await;
    let (_, report) = site.get(&host, "/v1/connectors/test-versioned").await;
    assert_eq!(report["version"], "2.0.0");

    // Roll back: 1.0.0 is served, pinned; a later publication is stored only.
    let (ok, out, err) = site.cli(&host, &["components", "rollback", VERSIONED]);
    assert!(ok, "{err}");
    assert!(out.contains("\"version\": \"1.0.0\""), "{out}");
    site.await_everywhere(&[&host], VERSIONED, "1.0.0", "published")
        .await;
    assert_eq!(
        site.versions(&host, VERSIONED).await,
        [
            ("2.0.0".to_string(), false, false, false),
            ("1.0.0".to_string(), true, true, false)
        ]
    );

    // The live version cannot be retired; another one can, and is then
    // refused as a pin target.
    let (ok, _, err) = site.cli(&host, &["components", "retire", VERSIONED, "1.0.0"]);
    assert!(!ok && err.contains("is live"), "{err}");
    let (ok, _, err) = site.cli(&host, &["components", "retire", VERSIONED, "2.0.0"]);
    assert!(ok, "{err}");
    let (ok, _, err) = site.cli(&host, &["components", "pin", VERSIONED, "2.0.0"]);
    assert!(!ok && err.contains("retired"), "{err}");
    let (ok, _, err) = site.cli(&host, &["components", "pin", VERSIONED, "9.9.9"]);
    assert!(!ok && err.contains("never published"), "{err}");
    let (ok, _, err) = site.cli(&host, &["components", "rollback", VERSIONED]);
    assert!(!ok && err.contains("no earlier"), "{err}");
    site.await_everywhere(&[&host], VERSIONED, "1.0.0", "published")
        .await;

    // Unpinned, the newest unretired version (1.0.0) stays live.
    let (ok, out, err) = site.cli(&host, &["components", "unpin", VERSIONED]);
    assert!(ok && out.contains("\"pinned\": false"), "{out}{err}");

    // The publisher, the time and the admin audit are recorded.
    let (_, listed) = site.get(&host, "/v1/components/test-versioned").await;
    assert!(
        listed[0]["publisher"]
            .as_str()
            .unwrap()
            .starts_with("release-bot ("),
        "{listed}"
    );
    assert!(listed[0]["publishedAtMs"].as_i64().unwrap() > 0);
    let (_, audit) = site.get(&host, "/v1/admin-audit").await;
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for action in [
        "component.publish",
        "component.rollback",
        "component.retire",
        "component.unpin",
    ] {
        assert!(actions.contains(&action), "{backend}: {actions:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_components_are_refused_and_nothing_changes() {
    let site = Site::new("").await;
    let host = site.serve("one");
    let files = tempfile::tempdir().unwrap();
    site.publish_ok(&host, &guest_copy(files.path(), "versioned_v1"));
    let before = site.versions(&host, VERSIONED).await;

    // An invalid manifest, another world, a hook disagreeing with its
    // manifest (found only by loading it, as `check` does), not wasm at all.
    let garbage = files.path().join("garbage.wasm");
    std::fs::write(&garbage, b"\0asm this is not a component").unwrap();
    for (file, expected) in [
        (guest_copy(files.path(), "bad_manifest"), "manifest"),
        (guest_copy(files.path(), "wrong_world"), "connector:auth"),
        (guest_copy(files.path(), "auth_mismatch"), "auth-type hook"),
        (garbage, "not a WebAssembly component"),
    ] {
        let (ok, _, err) = site.cli(&host, &["publish", file.to_str().unwrap()]);
        assert!(!ok, "{} was published", file.display());
        assert!(
            err.contains("component_rejected") && err.contains(expected),
            "{}: {err}",
            file.display()
        );
    }
    assert_eq!(site.versions(&host, VERSIONED).await, before);
    let (status, _) = site.get(&host, "/v1/components/test-auth-mismatch").await;
    assert_eq!(status, 404, "nothing was stored for the refused component");
    site.await_everywhere(&[&host], VERSIONED, "1.0.0", "published")
        .await;

    // A service key may not publish.
    let service = connector_test_support::serve::create_api_key(
        std::path::Path::new(BIN),
        &site.database_url,
        "svc",
        "service",
        &["acct"],
        &[],
    )
    .secret;
    let response = site
        .http
        .post(format!("{}/v1/components", host.base))
        .bearer_auth(service)
        .json(&serde_json::json!({"component": "AGFzbQ=="}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    // Bad base64 names the field.
    let response = site
        .http
        .post(format!("{}/v1/components", host.base))
        .bearer_auth(&site.operator)
        .json(&serde_json::json!({"component": "%%%"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["field"], "component", "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_published_version_wins_over_a_folder_file_with_the_same_id() {
    let site = Site::new("").await;
    install_guests(&site.plugins(), &["versioned_v1"]);
    let host = site.serve("one");
    site.await_everywhere(&[&host], VERSIONED, "1.0.0", "folder")
        .await;
    let files = tempfile::tempdir().unwrap();
    site.publish_ok(&host, &guest_copy(files.path(), "versioned_v2"));
    site.await_everywhere(&[&host], VERSIONED, "2.0.0", "published")
        .await;

    // The replica status names the source and since when.
    let deadline = std::time::Instant::now() + publishing_support::PROPAGATION;
    loop {
        let (status, replicas) = site.get(&host, "/v1/replicas").await;
        assert_eq!(status, 200, "{replicas}");
        let serves = replicas.as_array().unwrap().iter().any(|r| {
            r["connectors"].as_array().unwrap().iter().any(|c| {
                c["connectorId"] == VERSIONED
                    && c["version"] == "2.0.0"
                    && c["source"] == "published"
                    && c["servingSince"].as_i64().unwrap() > 0
            })
        });
        if serves {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no replica reports 2.0.0: {replicas}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A key pair made by `signing-key`: (private key file, public key).
fn signing_key(dir: &std::path::Path, name: &str) -> (std::path::PathBuf, String) {
    let path = dir.join(name);
    let output = std::process::Command::new(BIN)
        .args(["signing-key", "--out", path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(output.status.success());
    let public = String::from_utf8(output.stdout).unwrap().trim().to_string();
    (path, public)
}

/// `sign FILE --key KEY`.
fn sign(file: &std::path::Path, key: &std::path::Path) {
    let output = std::process::Command::new(BIN)
        .args([
            "sign",
            file.to_str().unwrap(),
            "--key",
            key.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_signatures_refuse_unsigned_foreign_and_misapplied_ones() {
    let keys = tempfile::tempdir().unwrap();
    let (release, public) = signing_key(keys.path(), "release.key");
    let (stranger, _) = signing_key(keys.path(), "stranger.key");
    let site = Site::new(&format!(
        "[publishing]\nrequire_signatures = true\ntrusted_keys = {{ release = \"{public}\" }}\n"
    ))
    .await;
    let host = site.serve("one");
    let files = tempfile::tempdir().unwrap();
    let v1 = guest_copy(files.path(), "versioned_v1");
    let v2 = guest_copy(files.path(), "versioned_v2");
    let refused = |file: &std::path::Path, expected: &str| {
        let (ok, _, err) = site.cli(&host, &["publish", file.to_str().unwrap()]);
        assert!(!ok, "{} was published", file.display());
        assert!(
            err.contains("signature_rejected") && err.contains(expected),
            "{err}"
        );
    };

    refused(&v1, "requires signed components");
    sign(&v1, &stranger);
    refused(&v1, "untrusted key");
    // v1's valid signature presented for v2's bytes.
    sign(&v1, &release);
    std::fs::copy(
        files.path().join("versioned_v1.wasm.sig"),
        files.path().join("versioned_v2.wasm.sig"),
    )
    .unwrap();
    refused(&v2, "does not match this component");
    let (status, _) = site.get(&host, "/v1/components/test-versioned").await;
    assert_eq!(status, 404, "nothing was stored");

    // `inspect` shows the digest and the signer.
    let output = std::process::Command::new(BIN)
        .args(["inspect", "--json", v1.to_str().unwrap()])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["signature"]["publicKey"], public.as_str());
    assert_eq!(report["signature"]["valid"], true);
    assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
    let output = std::process::Command::new(BIN)
        .args(["inspect", v2.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("signer") && text.contains("INVALID"),
        "{text}"
    );

    let out = site.publish_ok(&host, &v1);
    assert!(out.contains("signer release"), "{out}");
    site.await_everywhere(&[&host], VERSIONED, "1.0.0", "published")
        .await;
    let (_, listed) = site.get(&host, "/v1/components/test-versioned").await;
    assert_eq!(listed[0]["signer"], "release");
}

/// `versioned_v1` or `_v2` as a component to store (as the publish route
/// would after its checks).
fn new_component(guest: &str) -> connector_server::store::NewComponent {
    let bytes = connector_test_support::guest_bytes(guest);
    let info = connector_server::registry::inspect::inspect(&bytes).unwrap();
    connector_server::store::NewComponent {
        connector_id: info.manifest.id.clone(),
        version: info.manifest.version.clone(),
        sha256: info.sha256.clone(),
        manifest: serde_json::to_string(&info.manifest).unwrap(),
        bytes,
        publisher: "test".into(),
        signer: None,
        signature: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_in_flight_keeps_the_published_version_it_started_with() {
    use connector_server::registry::{CompileCache, Registry};
    use connector_server::store::{ComponentStore, Database};
    let work = tempfile::tempdir().unwrap();
    let database =
        Database::connect(&connector_test_support::harness::database_url(work.path()).await)
            .await
            .unwrap();
    let store = ComponentStore::new(database);
    let plugins = tempfile::tempdir().unwrap();
    let registry = Registry::new(
        connector_test_support::test_runtime(),
        plugins.path(),
        CompileCache::disabled(),
        Default::default(),
    );
    store.publish(&new_component("versioned_v1")).await.unwrap();
    let summary = registry.reconcile_published(&store).await.unwrap();
    assert_eq!(summary.loaded, ["test-versioned@1.0.0"]);
    let started_on = registry.get(VERSIONED).unwrap();

    store.publish(&new_component("versioned_v2")).await.unwrap();
    registry.reconcile_published(&store).await.unwrap();
    let now = registry.get(VERSIONED).unwrap();
    assert_eq!(now.info.manifest.version, "2.0.0");
    assert_eq!(now.source, connector_server::registry::Source::Published);
    // The call that started on 1.0.0 runs on 1.0.0 (the guest names its
    // version as the user's name).
    let user = started_on
        .prepared
        .user_info(
            &connector_sandbox::runtime::CallContext::default(),
            connector_test_support::connection(),
        )
        .await
        .result
        .unwrap();
    assert_eq!(user.name, "1.0.0");
}
