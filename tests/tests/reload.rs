//! Loading from a folder and hot reload while serving.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connector_sandbox::runtime::CallContext;
use connector_server::registry::{CompileCache, Registry};
use connector_test_support::wait::eventually;
use connector_test_support::{connection, guest_bytes, test_runtime};

/// Replaces `name` in `dir` atomically, the way operators are told to.
fn install(dir: &Path, name: &str, bytes: &[u8]) {
    let temp = dir.join(format!(".{name}.partial"));
    std::fs::write(&temp, bytes).unwrap();
    std::fs::rename(&temp, dir.join(name)).unwrap();
}

/// A folder holding `versioned.wasm` (v1) and a registry synced with it.
async fn registry_with_v1() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "versioned.wasm", &guest_bytes("versioned_v1"));
    let registry = Registry::new(
        test_runtime(),
        dir.path(),
        CompileCache::disabled(),
        Default::default(),
    );
    registry.sync().await;
    (dir, registry)
}

async fn version_of(registry: &Registry) -> Option<String> {
    let connector = registry.get("test-versioned")?;
    let user = connector
        .prepared
        .user_info(&CallContext::default(), connection())
        .await
        .result
        .ok()?;
    Some(user.name)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hot_reload_under_a_stream_of_calls_loses_no_call() {
    let dir = tempfile::tempdir().unwrap();
    install(dir.path(), "versioned.wasm", &guest_bytes("versioned_v1"));
    let registry = Arc::new(Registry::new(
        test_runtime(),
        dir.path(),
        CompileCache::disabled(),
        Default::default(),
    ));
    let summary = registry.sync().await;
    assert_eq!(summary.loaded.len(), 1, "{summary:?}");
    let _watch = registry.watch();

    let (calls, failures) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let caller = {
        let (registry, calls, failures) = (registry.clone(), calls.clone(), failures.clone());
        tokio::spawn(async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
            while tokio::time::Instant::now() < deadline {
                calls.fetch_add(1, Ordering::SeqCst);
                match version_of(&registry).await.as_deref() {
                    Some("2.0.0") => return true,
                    Some("1.0.0") => {}
                    _ => {
                        failures.fetch_add(1, Ordering::SeqCst);
                    }
                }
                tokio::task::yield_now().await;
            }
            false
        })
    };
    // Let the stream get going on v1, then replace the file.
    eventually("calls on v1", Duration::from_secs(30), || {
        let calls = calls.clone();
        async move { calls.load(Ordering::SeqCst) > 10 }
    })
    .await;
    install(dir.path(), "versioned.wasm", &guest_bytes("versioned_v2"));

    assert!(caller.await.unwrap(), "the new version was never observed");
    assert_eq!(
        failures.load(Ordering::SeqCst),
        0,
        "calls failed during the reload"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_replacement_leaves_the_old_version_serving() {
    let (dir, registry) = registry_with_v1().await;

    for (broken, expected) in [
        (b"not wasm at all".to_vec(), "not a WebAssembly component"),
        (
            guest_bytes("wrong_world"),
            "missing export `connector:auth/hooks@0.1.0`",
        ),
        (guest_bytes("auth_mismatch"), "auth-type hook returns"),
    ] {
        // A non-atomic overwrite, as a careless operator would do it.
        std::fs::write(dir.path().join("versioned.wasm"), &broken).unwrap();
        let summary = registry.sync().await;
        assert_eq!(summary.failed.len(), 1, "{summary:?}");
        assert!(
            summary.failed[0].1.contains(expected),
            "{}",
            summary.failed[0].1
        );
        assert_eq!(
            version_of(&registry).await.as_deref(),
            Some("1.0.0"),
            "old version keeps serving"
        );
        assert!(registry.snapshot().errors["versioned.wasm"].contains(expected));
    }

    // A good file afterwards clears the error.
    install(dir.path(), "versioned.wasm", &guest_bytes("versioned_v2"));
    registry.sync().await;
    assert_eq!(version_of(&registry).await.as_deref(), Some("2.0.0"));
    assert!(registry.snapshot().errors.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_finish_on_the_version_they_started_with() {
    let (dir, registry) = registry_with_v1().await;
    let started_on = registry.get("test-versioned").unwrap();

    install(dir.path(), "versioned.wasm", &guest_bytes("versioned_v2"));
    registry.sync().await;
    assert_eq!(
        registry
            .get("test-versioned")
            .unwrap()
            .info
            .manifest
            .version,
        "2.0.0"
    );
    let user = started_on
        .prepared
        .user_info(&CallContext::default(), connection())
        .await
        .result
        .unwrap();
    assert_eq!(user.name, "1.0.0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_added_removed_and_ids_are_unique() {
    let dir = tempfile::tempdir().unwrap();
    let registry = Registry::new(
        test_runtime(),
        dir.path(),
        CompileCache::disabled(),
        Default::default(),
    );
    assert!(registry.sync().await.loaded.is_empty());

    install(dir.path(), "a.wasm", &guest_bytes("versioned_v1"));
    install(
        dir.path(),
        "insightly.wasm",
        &guest_bytes("apikey_insightly"),
    );
    std::fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
    let summary = registry.sync().await;
    assert_eq!(summary.loaded.len(), 2);

    install(dir.path(), "b.wasm", &guest_bytes("versioned_v2"));
    let summary = registry.sync().await;
    assert!(
        summary.failed[0].1.contains("already provided by a.wasm"),
        "{summary:?}"
    );
    assert_eq!(version_of(&registry).await.as_deref(), Some("1.0.0"));

    // Once the id is free, the rejected file is retried without being touched.
    std::fs::remove_file(dir.path().join("a.wasm")).unwrap();
    let summary = registry.sync().await;
    assert_eq!(summary.removed, vec!["test-versioned".to_string()]);
    assert_eq!(summary.loaded.len(), 1, "{summary:?}");
    assert_eq!(version_of(&registry).await.as_deref(), Some("2.0.0"));

    std::fs::remove_file(dir.path().join("b.wasm")).unwrap();
    let summary = registry.sync().await;
    assert_eq!(summary.removed, vec!["test-versioned".to_string()]);
    assert!(registry.get("test-versioned").is_none());
    assert!(registry.get("insightly").is_some());

    // A link that leads out of the folder is never read, and is reported.
    let linked = dir.path().join("LINKED.WASM");
    std::os::unix::fs::symlink(connector_test_support::guest("versioned_v1"), &linked).unwrap();
    registry.sync().await;
    assert!(registry.get("test-versioned").is_none());
    let link_error = |registry: &Registry| registry.snapshot().errors.get("LINKED.WASM").cloned();
    assert_eq!(
        link_error(&registry).as_deref(),
        Some("a link that leads out of the plugins folder: not read")
    );
    // A link to a file inside the folder is followed, and the extension is
    // matched in any case.
    std::fs::remove_file(&linked).unwrap();
    install(dir.path(), "v1.bin", &guest_bytes("versioned_v1"));
    std::os::unix::fs::symlink("v1.bin", &linked).unwrap();
    registry.sync().await;
    assert_eq!(version_of(&registry).await.as_deref(), Some("1.0.0"));
    assert_eq!(link_error(&registry), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compiled_code_is_cached_by_hash_and_engine() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = tempfile::tempdir().unwrap();
    install(dir.path(), "versioned.wasm", &guest_bytes("versioned_v1"));
    let runtime = test_runtime();

    let first = Registry::new(
        runtime.clone(),
        dir.path(),
        CompileCache::new(cache_dir.path()),
        Default::default(),
    );
    first.sync().await;
    assert!(!first.get("test-versioned").unwrap().from_cache);
    let sha = first.get("test-versioned").unwrap().info.sha256.clone();
    let entry = CompileCache::new(cache_dir.path())
        .entry(&runtime, &sha)
        .unwrap();
    assert!(
        entry.exists(),
        "cache entry named by sha256 and engine fingerprint"
    );

    let second = Registry::new(
        runtime,
        dir.path(),
        CompileCache::new(cache_dir.path()),
        Default::default(),
    );
    second.sync().await;
    let loaded = second.get("test-versioned").unwrap();
    assert!(loaded.from_cache);
    assert_eq!(version_of(&second).await.as_deref(), Some("1.0.0"));

    // A corrupt entry is discarded and recompiled, not trusted. (Replaced, not
    // overwritten in place: earlier components still map the old file.)
    std::fs::remove_file(&entry).unwrap();
    std::fs::write(&entry, b"garbage").unwrap();
    let third = Registry::new(
        test_runtime(),
        dir.path(),
        CompileCache::new(cache_dir.path()),
        Default::default(),
    );
    third.sync().await;
    assert!(!third.get("test-versioned").unwrap().from_cache);

    // An entry that is a link leading out of the cache folder is never read
    // (here a valid compiled file planted elsewhere): the component is
    // compiled again and the link replaced by a real entry.
    let elsewhere = tempfile::tempdir().unwrap();
    let planted = elsewhere.path().join("planted.cwasm");
    std::fs::copy(&entry, &planted).unwrap();
    std::fs::remove_file(&entry).unwrap();
    std::os::unix::fs::symlink(&planted, &entry).unwrap();
    let fourth = Registry::new(
        test_runtime(),
        dir.path(),
        CompileCache::new(cache_dir.path()),
        Default::default(),
    );
    fourth.sync().await;
    assert!(!fourth.get("test-versioned").unwrap().from_cache);
    let kind = std::fs::symlink_metadata(&entry).unwrap().file_type();
    assert!(kind.is_file(), "the link was replaced by an entry");
}
