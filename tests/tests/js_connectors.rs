//! Connectors written in JavaScript and TypeScript (`sdk-js/`, built once per
//! test run by `tests/support/build.rs` with componentize-js): the TypeScript
//! twins of the examples (`plugins-ts/`) log in end to end against the local
//! provider under the Rust examples' ids, settings and secrets, `inspect`
//! reads them like Rust components, and the adversarial JavaScript guests of
//! `tests/guests-js/` get the same typed errors as their Rust twins.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::Request;
use connector_abi::hook::Hook;
use connector_sandbox::capabilities::http::{ApiKeyPlacement, MemoryAuditSink};
use connector_sandbox::runtime::{CallContext, CallError, Runtime, RuntimeLimits};
use connector_server::registry::{CompileCache, LoadedConnector, load_file};
use connector_test_support::harness::{API_KEY, Host, Options, assert_no_secret_in_logs};
use connector_test_support::sandbox::{
    SECRETS, loopback_runtime, probe_credentials, probe_request,
};
use connector_test_support::{connection, guest, guest_bytes};
use serde_json::json;

/// The compile cache every test of this file shares: each JavaScript
/// component (a whole JS engine) is compiled once per run, not per test.
fn compile_cache() -> CompileCache {
    CompileCache::new(
        std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("js-compile-cache"),
    )
}

/// A runtime with the default memory cap and a short deadline.
fn js_runtime() -> Arc<Runtime> {
    Arc::new(
        Runtime::new(RuntimeLimits {
            call_timeout_ms: 2_000,
            ..RuntimeLimits::default()
        })
        .expect("runtime"),
    )
}

async fn load_js(runtime: &Arc<Runtime>, name: &str) -> LoadedConnector {
    load_file(runtime, &compile_cache(), &guest(name), &Default::default())
        .await
        .unwrap_or_else(|e| panic!("loading {name}: {e}"))
}

/// A host serving the TypeScript examples in place of the Rust ones.
async fn typescript_host() -> Host {
    Host::with(Options {
        substitutes: vec![
            ("ts_local_insightly", "local_insightly"),
            ("ts_local_regional", "local_regional"),
        ],
        compile_cache: Some(
            std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("js-compile-cache"),
        ),
        ..Options::default()
    })
    .await
}

#[test]
fn inspect_reads_a_typescript_component_like_a_rust_one() {
    let info = connector_server::registry::inspect::inspect(&guest_bytes("ts_local_regional"))
        .expect("the TypeScript example passes the checks of `check`");
    assert_eq!(info.manifest.id, "local-regional");
    assert_eq!(
        info.hooks.iter().copied().collect::<Vec<_>>(),
        [
            Hook::AuthType,
            Hook::OauthInfo,
            Hook::OverridingOauthOption,
            Hook::UserInfo,
            Hook::AuthValidation,
            Hook::RefreshUserInfo,
        ],
        "the hooks defineConnector recorded, nothing defaulted"
    );
    for import in &info.imports {
        assert!(
            import.starts_with("connector:auth/"),
            "no WASI, nothing but the host's capabilities: {import}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_api_key_login_validation_and_logout() {
    let host = typescript_host().await;
    let login = json!({
        "accountId": "acct-1", "userId": "user-1",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let (status, connection) = host
        .post("/v1/connectors/local-insightly/api-key/login", login)
        .await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(connection["platformUserId"], "12345");
    assert_eq!(connection["userName"], "Ada Lovelace");
    assert_eq!(connection["hasApiKey"], true);
    let id = connection["id"].as_str().unwrap().to_string();
    let users_me = host
        .audit
        .events()
        .into_iter()
        .find(|e| e.path.as_deref() == Some("/v3.1/Users/Me"))
        .expect("user-info reached the provider");
    assert_eq!(
        (users_me.status, users_me.credential.as_deref()),
        (Some(200), Some("api-key"))
    );

    // A bad login: the TypeScript hook's typed `bad-input` error is the
    // client's error, and nothing is saved.
    let missing_url = json!({"accountId": "acct-1", "userId": "user-2", "fields": {"apiKey": API_KEY, "apiUrl": " "}});
    let (status, error) = host
        .post("/v1/connectors/local-insightly/api-key/login", missing_url)
        .await;
    assert!((400..500).contains(&status), "{status} {error}");
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-2/connections")
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "{listed}");

    let base = format!("/v1/accounts/acct-1/users/user-1/connections/{id}");
    let (status, validation) = host.post(&format!("{base}/validate"), json!({})).await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(true)),
        "{validation}"
    );
    let (status, logout) = host.post(&format!("{base}/logout"), json!({})).await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["connection"]["status"], "revoked");
    assert_eq!(logout["connection"]["hasApiKey"], false);
    let (status, error) = host.post(&format!("{base}/validate"), json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("connection_not_usable"))
    );
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typescript_oauth_login_validation_and_logout() {
    let host = typescript_host().await;
    let (_, callback) = host.authorize("acct-1", &host.provider_host()).await;
    let (status, connected) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(status, 200, "{connected}");
    let connection = &connected["connection"];
    assert_eq!(connection["userName"], "Ada Lovelace");
    assert_eq!(connection["hostname"], host.provider_host());
    // overridingOauthOption asked for the client credentials in the body.
    assert!(host.provider.stats().client_auth_body >= 1);

    let id = connection["id"].as_str().unwrap();
    let base = format!("/v1/accounts/acct-1/users/user-1/connections/{id}");
    let (status, validation) = host.post(&format!("{base}/validate"), json!({})).await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(true)),
        "{validation}"
    );
    let (status, logout) = host.post(&format!("{base}/logout"), json!({})).await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["revokedAtProvider"], true, "{logout}");
    assert_eq!(host.provider.stats().revocations, 1);

    // A hostname outside the region's domain: oauthInfo's fail message stops
    // the login before the provider is asked.
    let start = json!({"accountId": "acct-1", "userId": "user-1", "hostname": "evil.example"});
    let (status, refused) = host
        .post("/v1/connectors/local-regional/oauth/start", start)
        .await;
    assert!((400..500).contains(&status), "{status} {refused}");
    assert!(
        refused.to_string().contains("not a Regional CRM hostname"),
        "{refused}"
    );
    assert_no_secret_in_logs();
}

/// The connection that makes `js_hostile`'s user-info misbehave so.
fn misbehave(kind: &str) -> connector_sandbox::wit::hooks::ConnectionInfo {
    probe_request(&[("misbehave", kind)])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_js_guests_get_the_typed_errors_of_their_rust_twins() {
    let runtime = js_runtime();
    let ctx = CallContext::default();
    let hostile = load_js(&runtime, "js_hostile").await;
    let call = |kind: &'static str| hostile.prepared.user_info(&ctx, misbehave(kind));
    match call("spin").await.result {
        Err(CallError::Timeout {
            connector, hook, ..
        }) => {
            assert_eq!(
                (connector.id.as_str(), hook),
                ("test-js-hostile", Hook::UserInfo)
            )
        }
        other => panic!("spin: expected a timeout, got {other:?}"),
    }
    match call("memory-bomb").await.result {
        Err(CallError::OutOfMemory { limit_bytes, .. }) => {
            assert_eq!(limit_bytes, RuntimeLimits::default().memory_bytes);
        }
        other => panic!("memory bomb: expected out of memory, got {other:?}"),
    }
    // Recursion without end: the same trap as the Rust twin (tests/sandbox.rs
    // expects `CallError::Trap` too), not a typed connector error the guest
    // seems to have chosen, and never a crash of the host. The engine's own
    // recursion limit comes first ("too much recursion"): the SDK makes it a
    // trap and logs the engine's reason.
    let outcome = call("recursion").await;
    match outcome.result {
        Err(CallError::Trap {
            connector, hook, ..
        }) => assert_eq!(
            (connector.id.as_str(), hook),
            ("test-js-hostile", Hook::UserInfo)
        ),
        other => panic!("recursion: expected a trap like the Rust twin, got {other:?}"),
    }
    let said: Vec<&str> = outcome
        .report
        .logs
        .iter()
        .map(|line| line.message.as_str())
        .collect();
    assert!(
        said.iter().any(|line| line.contains("too much recursion")),
        "the SDK names the engine's reason: {said:?}"
    );
    // A typed error the connector chose stays a typed error.
    match call("no-such-misbehaviour").await.result {
        Err(CallError::Guest { error, .. }) => assert!(
            format!("{error:?}").contains("unknown misbehaviour"),
            "{error:?}"
        ),
        other => panic!("expected the connector's internal error, got {other:?}"),
    }
    // After all that, the same runtime still serves a well-behaved call.
    let fine = call("ambient").await.result.expect("a polite call");
    assert_eq!(fine.name, "call #1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_guest_has_no_ambient_authority_and_a_fresh_instance_per_call() {
    let runtime = js_runtime();
    let ambient = load_js(&runtime, "js_hostile").await;
    let call = |probe: &'static str| {
        let prepared = &ambient.prepared;
        async move {
            prepared
                .user_info(
                    &CallContext::default(),
                    probe_request(&[("misbehave", "ambient"), ("probe", probe)]),
                )
                .await
        }
    };
    // Globals of a fresh instance: a reused one would count #2, #3…
    for _ in 0..3 {
        assert_eq!(call("").await.result.unwrap().name, "call #1");
    }
    // No fetch: the engine was built without it, calling it aborts the call.
    match call("fetch").await.result {
        Err(CallError::Trap { .. }) => {}
        other => panic!("fetch: expected the call to trap, got {other:?}"),
    }
    // No process, no require.
    for (probe, failure) in [
        ("process", "failed: ReferenceError"),
        ("require", "failed: TypeError"),
    ] {
        let seen = call(probe).await.result.unwrap();
        assert_eq!(
            seen.additional_info,
            [(probe.to_string(), failure.to_string())]
        );
    }
    // console exists but writes nowhere: no stdio, nothing in the call's output.
    let console = call("console").await;
    assert_eq!(console.report.logs.len(), 0, "{:?}", console.report.logs);
    assert_eq!(console.report.dropped_output_bytes, 0);
}

#[tokio::test]
async fn a_js_component_importing_what_the_host_does_not_grant_is_refused_before_running() {
    let runtime = js_runtime();
    let error = load_file(
        &runtime,
        &CompileCache::disabled(),
        &guest("js_undeclared_import"),
        &Default::default(),
    )
    .await
    .err()
    .expect("a component importing wasi:http must not load");
    let message = error.to_string();
    assert!(message.contains("wasi:"), "{message}");
    assert!(
        message.contains("does not provide") || message.contains("import"),
        "{message}"
    );
}

/// A server that echoes the request's headers in its body and in `x-echo`.
async fn reflector() -> String {
    let app = axum::Router::new().fallback(|request: Request| async move {
        let headers: BTreeMap<String, String> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let echoed = headers.get("authorization").cloned().unwrap_or_default();
        axum::response::Response::builder()
            .header("x-echo", echoed)
            .body(axum::body::Body::from(format!(
                "{headers:?} {}",
                request.uri()
            )))
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_js_guest_never_reads_an_injected_secret() {
    let base = reflector().await;
    let audit = Arc::new(MemoryAuditSink::default());
    let runtime = loopback_runtime(RuntimeLimits::default(), BTreeMap::new(), audit.clone());
    let probe = load_file(
        &runtime,
        &compile_cache(),
        &guest("js_hostile"),
        &Default::default(),
    )
    .await
    .expect("load the probe");
    for (credential, placement) in [
        ("apiKey", ApiKeyPlacement::Bearer),
        (
            "apiKey",
            ApiKeyPlacement::Basic("{apiKey}:{tenantId}".into()),
        ),
        ("accessToken", ApiKeyPlacement::Bearer),
        ("clientCredentials", ApiKeyPlacement::Bearer),
    ] {
        let ctx = CallContext {
            account_id: Some("acct-1".into()),
            credentials: probe_credentials(placement.clone()),
            ..CallContext::default()
        };
        let info = probe_request(&[
            ("misbehave", "secret-probe"),
            ("url", &format!("{base}/reflect")),
            ("credential", credential),
        ]);
        let seen = probe
            .prepared
            .user_info(&ctx, info)
            .await
            .result
            .expect("the probe reports what it saw");
        assert_eq!(seen.name, "200", "{credential} {placement:?}");
        let view = format!("{seen:?}");
        for secret in SECRETS {
            assert!(
                !view.contains(secret),
                "{credential} {placement:?}: the guest saw a secret:\n{view}"
            );
        }
        assert!(
            view.contains("authorization"),
            "the echo came back (scrubbed): {view}"
        );
        assert!(
            audit.events().pop().unwrap().scrubbed,
            "the audit records the scrub"
        );
    }
}

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// `plugins-ts/<name>` of this checkout.
fn typescript_example(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins-ts")
        .join(name)
}

#[test]
fn connector_host_build_builds_a_typescript_folder_that_check_accepts() {
    let out = tempfile::tempdir().unwrap();
    let printed = connector_test_support::process::run_ok(
        std::process::Command::new(BIN)
            .arg("build")
            .arg(typescript_example("apikey-insightly"))
            .arg("--target-dir")
            .arg(out.path()),
    );
    let wasm = out.path().join("apikey_insightly.wasm");
    assert!(printed.contains("insightly@1.0.0"), "{printed}");
    assert!(
        printed
            .contains("hooks: auth-type, user-info, basic-auth, auth-validation, test-connection"),
        "{printed}"
    );
    connector_test_support::process::run_ok(
        std::process::Command::new(BIN).arg("check").arg(&wasm),
    );
}

#[test]
fn building_without_node_names_the_fix() {
    let out = tempfile::tempdir().unwrap();
    // A PATH with neither node nor npm.
    let output = std::process::Command::new(BIN)
        .arg("build")
        .arg(typescript_example("apikey-insightly"))
        .arg("--target-dir")
        .arg(out.path())
        .env("PATH", out.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("cannot run `node`"), "{stderr}");
    assert!(stderr.contains("install Node.js 18 or newer"), "{stderr}");
}

#[test]
fn new_lang_ts_scaffolds_packages_that_type_check_and_build() {
    let work = tempfile::tempdir().unwrap();
    for (name, auth) in [("acme-key", "api-key"), ("acme-oauth", "oauth")] {
        connector_test_support::process::run_ok(
            std::process::Command::new(BIN)
                .args(["new", name, "--auth", auth, "--lang", "ts", "--dir"])
                .arg(work.path()),
        );
        let package = work.path().join(name);
        assert!(package.join("src/index.ts").is_file());
        // Outside this checkout: the binary's own sdk-js is found.
        let printed = connector_test_support::process::run_ok(
            std::process::Command::new(BIN).arg("build").arg(&package),
        );
        assert!(printed.contains(&format!("{name}@0.1.0")), "{printed}");
        assert!(
            package
                .join("dist")
                .join(format!("{}.wasm", name.replace('-', "_")))
                .is_file()
        );
    }
}

/// A CRM on 127.0.0.1 whose `/api/v1/me` answers the user when the probe's
/// access token arrives as a Bearer token, and 401 otherwise.
async fn test_crm() -> String {
    let app = axum::Router::new().route(
        "/api/v1/me",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let expected = format!("Bearer {}", connector_test_support::sandbox::TOKEN);
            if headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(expected.as_str())
            {
                (
                    axum::http::StatusCode::OK,
                    r#"{"id":"u-7","name":"Grace Hopper","timezone":"America/New_York"}"#,
                )
            } else {
                (axum::http::StatusCode::UNAUTHORIZED, "{}")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_app_connect_template_port_answers_its_four_interfaces() {
    use connector_sandbox::wit::hooks::{ClientSecretRef, OauthInfoInput};
    let crm = test_crm().await;
    let runtime = loopback_runtime(
        RuntimeLimits::default(),
        BTreeMap::new(),
        Arc::new(MemoryAuditSink::default()),
    );
    let settings = BTreeMap::from([(
        "appconnect-template".to_string(),
        connector_server::config::ConnectorSettings {
            config: BTreeMap::from([("api-base".to_string(), crm)]),
            ..Default::default()
        },
    )]);
    let port = load_file(
        &runtime,
        &compile_cache(),
        &guest("ts_appconnect_template"),
        &settings,
    )
    .await
    .expect("the port loads");
    let ctx = CallContext {
        credentials: probe_credentials(ApiKeyPlacement::Bearer),
        ..CallContext::default()
    };
    // getOauthInfo: the secret by reference only.
    let input = OauthInfoInput {
        token_url: None,
        hostname: None,
        account_id: None,
        proxy_id: None,
        proxy_config: None,
        user_email: None,
        is_from_mcp: false,
        managed: None,
    };
    let info = port.prepared.oauth_info(&ctx, input).await.result.unwrap();
    assert_eq!(info.client_id, "test-crm-client-id");
    assert!(
        matches!(info.client_secret, ClientSecretRef::HostSecret(ref name) if name == "test-crm-client-secret")
    );
    assert_eq!(info.access_token_uri, "http://127.0.0.1:9100/oauth/token");
    // getUserInfo: the CRM reached with the injected token, App Connect's
    // platformUserInfo mapped to the identity.
    let user = port
        .prepared
        .user_info(&ctx, connection())
        .await
        .result
        .unwrap();
    assert_eq!(
        (user.platform_user_id.as_str(), user.name.as_str()),
        ("u-7", "Grace Hopper")
    );
    assert_eq!(user.timezone_name.as_deref(), Some("America/New_York"));
    assert_eq!(user.message.as_deref(), Some("Connected to TestCRM."));
    // With a token the CRM refuses, it answers 401: a typed re-auth error.
    let mut revoked = (*probe_credentials(ApiKeyPlacement::Bearer)).clone();
    revoked.access_token = Some(secrecy::SecretString::from("tok-revoked"));
    let revoked = CallContext {
        credentials: Arc::new(revoked),
        ..CallContext::default()
    };
    match port.prepared.user_info(&revoked, connection()).await.result {
        Err(CallError::Guest { error, .. }) => {
            assert!(
                format!("{error:?}").to_lowercase().contains("reauth"),
                "{error:?}"
            )
        }
        other => panic!("expected reauth-required, got {other:?}"),
    }
    // getBasicAuth: a template the host fills; unAuthorize: the message.
    let placement = port
        .prepared
        .basic_auth(&ctx, connection())
        .await
        .result
        .unwrap();
    assert_eq!(
        format!("{placement:?}"),
        format!(
            "{:?}",
            connector_sandbox::wit::hooks::ApiKeyPlacement::Basic("{apiKey}:".into())
        )
    );
    let message = port
        .prepared
        .unauthorize(&ctx, connection())
        .await
        .result
        .unwrap();
    assert_eq!(message.as_deref(), Some("Logged out of TestCRM."));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_per_connector_memory_cap_is_enforced_below_the_runtime_cap() {
    const CAP: usize = 24 << 20;
    let runtime = js_runtime();
    let capped = |id: &str| {
        BTreeMap::from([(
            id.to_string(),
            connector_server::config::ConnectorSettings {
                memory_bytes: Some(CAP),
                ..Default::default()
            },
        )])
    };
    let hostile = load_file(
        &runtime,
        &compile_cache(),
        &guest("js_hostile"),
        &capped("test-js-hostile"),
    )
    .await
    .unwrap();
    assert_eq!(hostile.prepared.memory_cap(), CAP);
    match hostile
        .prepared
        .user_info(&CallContext::default(), misbehave("memory-bomb"))
        .await
        .result
    {
        Err(CallError::OutOfMemory { limit_bytes, .. }) => assert_eq!(limit_bytes, CAP),
        other => panic!("expected out of memory at the connector's cap, got {other:?}"),
    }
    // A JS connector's hooks run within that cap (the engine starts at 9.1 MiB).
    let user = hostile
        .prepared
        .user_info(&CallContext::default(), misbehave("ambient"))
        .await
        .result;
    assert_eq!(user.unwrap().name, "call #1");
    // A cap above the runtime's (the pool's slot size) is lowered to it.
    let wide = load_file(
        &runtime,
        &compile_cache(),
        &guest("js_hostile"),
        &BTreeMap::from([(
            "test-js-hostile".to_string(),
            connector_server::config::ConnectorSettings {
                memory_bytes: Some(usize::MAX),
                ..Default::default()
            },
        )]),
    )
    .await
    .unwrap();
    assert_eq!(
        wide.prepared.memory_cap(),
        RuntimeLimits::default().memory_bytes
    );
}

/// The lines of this process's memory map that map `path`.
fn mappings_of(path: &std::path::Path) -> usize {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let path = path.canonicalize().unwrap();
    let path = path.to_str().unwrap();
    maps.lines().filter(|line| line.ends_with(path)).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loaders_of_one_component_compile_it_once_and_map_the_cached_entry() {
    // The compile cache is the same for every language; a small Rust guest
    // keeps this test fast. Two loaders at once, an empty cache: one
    // compiles while the other waits for its lock and maps what it wrote.
    let runtime = connector_test_support::test_runtime();
    let dir = tempfile::tempdir().unwrap();
    let cache = CompileCache::new(dir.path());
    let file = guest("apikey_insightly");
    let settings = BTreeMap::new();
    let (first, second) = tokio::join!(
        load_file(&runtime, &cache, &file, &settings),
        load_file(&runtime, &cache, &file, &settings),
    );
    let (first, second) = (first.unwrap(), second.unwrap());
    assert_eq!(
        [first.from_cache, second.from_cache]
            .iter()
            .filter(|cached| !**cached)
            .count(),
        1,
        "exactly one of them compiled"
    );
    // Both map the entry (file-backed pages, shared), the compiler included:
    // it maps what it wrote instead of keeping its private copy.
    let entry = cache
        .entry(&runtime, &first.info.sha256)
        .expect("a cache entry");
    assert!(
        mappings_of(&entry) >= 2,
        "the compiled code is mapped from {}",
        entry.display()
    );
    for loaded in [&first, &second] {
        let placement = loaded
            .prepared
            .basic_auth(&CallContext::default(), connection())
            .await
            .result;
        assert!(placement.is_ok(), "{placement:?}");
    }
    // A damaged entry is discarded and compiled again, never loaded. (It is
    // swapped in by a rename, as the cache writes: a mapped entry must never
    // be rewritten in place.)
    drop((first, second));
    let damaged = dir.path().join("damaged");
    std::fs::write(&damaged, b"not compiled code").unwrap();
    std::fs::rename(&damaged, &entry).unwrap();
    let again = load_file(&runtime, &cache, &file, &Default::default())
        .await
        .unwrap();
    assert!(!again.from_cache);
    assert!(std::fs::metadata(&entry).unwrap().len() > 1024);
}

/// Runs `command`, returning whether it succeeded and its stdout as JSON.
fn json_output(command: &mut std::process::Command) -> (bool, serde_json::Value) {
    let output = tokio::task::block_in_place(|| command.output().unwrap());
    let json = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
    (output.status.success(), json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_oauth2_and_dev_work_on_a_typescript_folder() {
    use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
    use connector_test_support::process::Process;
    use std::process::Command;
    use std::time::Duration;
    // Each JavaScript build takes ~20 s and each first compile of its
    // component as long again (a debug host): generous bounds, no sleeps.
    const BUILD_TIMEOUT: Duration = Duration::from_secs(600);
    const STEP_TIMEOUT: Duration = Duration::from_secs(300);

    let work = tempfile::tempdir().unwrap();
    connector_test_support::process::run_ok(
        Command::new(BIN)
            .args(["new", "ts-loop", "--auth", "oauth", "--lang", "ts", "--dir"])
            .arg(work.path()),
    );
    let package = work.path().join("ts-loop");
    // One state folder: its compile cache serves every command after the
    // first, and an unchanged package is not built again.
    let state = work.path().join("state");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "ts-loop-client".into(),
            client_secret: "test-client-secret".into(),
            redirect_uris: vec![format!("http://127.0.0.1:{port}/callback")],
        }],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let base = provider.base_url();
    let command = |verb: &str| {
        let mut command = Command::new(BIN);
        command
            .arg(verb)
            .arg(&package)
            .arg("--state-dir")
            .arg(&state)
            .env("OAUTH2_PORT", port.to_string())
            .env(
                "CONNECTOR_SECRET_TS_LOOP_CLIENT_SECRET",
                "test-client-secret",
            );
        command
    };

    // `call`: builds the folder, runs one hook, prints it as JSON.
    let (ok, out) = json_output(
        command("call")
            .args(["oauth-info", "--json", "--set"])
            .arg(format!("base-url={base}")),
    );
    assert!(ok, "{out:#}");
    assert_eq!(out["connector"], "ts-loop@0.1.0");
    assert_eq!(out["result"]["clientId"], "ts-loop-client");
    assert_eq!(
        out["result"]["accessTokenUri"],
        format!("{base}/oauth/token")
    );
    // Again: the package is unchanged, so it is neither built nor compiled
    // again (the compile cache of the state folder).
    let (ok, out) = json_output(command("call").args(["auth-type", "--json"]));
    assert!(ok, "{out:#}");
    assert_eq!(out["result"], "oauth");
    let cache = std::fs::read_dir(state.join("compile-cache"))
        .unwrap()
        .flatten()
        .filter(|entry| entry.file_name().to_string_lossy().ends_with(".cwasm"))
        .count();
    assert_eq!(cache, 1, "one compiled entry for the unchanged package");

    // `oauth2`: a login through the provider (the test is the browser).
    let mut running = Process::spawn(
        command("oauth2")
            .args(["--timeout", "120", "--set"])
            .arg(format!("base-url={base}")),
    );
    let url = tokio::task::block_in_place(|| {
        running.next_line_within(BUILD_TIMEOUT, |l| {
            l.starts_with(&format!("{base}/oauth/authorize"))
        })
    });
    let page = reqwest::get(&url).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("Logged in"));
    let (ok, lines) = tokio::task::block_in_place(|| running.finish(STEP_TIMEOUT));
    assert!(ok, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("logged in:")),
        "{lines:#?}"
    );
    assert_eq!(provider.stats().authorization_code_grants, 1);

    // `dev`: serves the folder and builds it again on save.
    let mut dev = Process::spawn(command("dev").args(["--listen", "127.0.0.1:0"]));
    // Edit only once the watcher is set up: it says so after its watches.
    dev.next_line_within(BUILD_TIMEOUT, |l| l.starts_with("watching "));
    let manifest = package.join("connector.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"0.1.0\"", "\"0.2.0\"")).unwrap();
    dev.next_line_within(BUILD_TIMEOUT, |l| l.starts_with("reloaded ts-loop@0.2.0"));
    // A type error keeps the last good version and says so.
    let index = package.join("src/index.ts");
    let code = std::fs::read_to_string(&index).unwrap();
    std::fs::write(
        &index,
        format!("{code}\nconst broken: number = \"text\";\n"),
    )
    .unwrap();
    let failed = dev.next_line_within(BUILD_TIMEOUT, |l| l.starts_with("build failed"));
    assert!(failed.contains("ts-loop"), "{failed}");
}
