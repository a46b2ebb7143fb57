//! The connector author commands end to end, with the real binary: `new` →
//! build → `check`; `dev` reloading a changed crate; `oauth2` logging in
//! against the local test provider, refreshing, and starting over; `call`.
//!
//! Scaffolded crates build in one shared target folder
//! (`target/scaffold-tests`), so the SDK is compiled for wasm once per run.
//! Synchronisation is on output lines and process exits, with overall
//! timeouts; nothing sleeps.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use connector_authoring::authoring::{
    ConnectorCrate, Progress, TEST_ACCOUNT, TEST_USER, build_crate,
};
use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_server::store::{ConnectionStatus, ConnectionStore, Database};
use connector_test_support::databases::sqlite_url;
use connector_test_support::process::{Process, run_ok};
use secrecy::ExposeSecret;

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
/// Builds can wait for each other on the shared target folder.
const BUILD_TIMEOUT: Duration = Duration::from_secs(900);
const STEP_TIMEOUT: Duration = Duration::from_secs(120);

fn shared_target() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target")
        .join("scaffold-tests")
}

/// A fresh crate from a template in a temporary folder.
fn new_crate(name: &str, auth: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        Command::new(BIN)
            .args(["new", name, "--auth", auth, "--dir"])
            .arg(dir.path())
            .arg("--sdk-path")
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/sdk")),
    );
    let krate = dir.path().join(name);
    for file in [
        "Cargo.toml",
        "connector.json",
        "src/lib.rs",
        "README.md",
        "rust-toolchain.toml",
    ] {
        assert!(krate.join(file).is_file(), "missing {file}");
    }
    (dir, krate)
}

fn build(krate: &Path) -> PathBuf {
    let krate = ConnectorCrate::open(krate).unwrap();
    build_crate(
        &krate,
        Some(&shared_target()),
        &Progress::start("test build"),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn scaffold_builds_and_passes_check() {
    for (name, auth, kind) in [
        ("scaffold-oauth", "oauth", "oauth"),
        ("scaffold-key", "api-key", "apiKey"),
    ] {
        let (_dir, krate) = new_crate(name, auth);
        let wasm = build(&krate);
        assert!(wasm.ends_with(format!("{}.wasm", name.replace('-', "_"))));
        let output = Command::new(BIN).arg("check").arg(&wasm).output().unwrap();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(stdout.starts_with(&format!("ok: {name}@0.1.0")), "{stdout}");
        let output = Command::new(BIN)
            .args(["inspect", "--json"])
            .arg(&wasm)
            .output()
            .unwrap();
        let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(report["authType"], kind);
        assert_eq!(report["allowedHosts"][0], "http://127.0.0.1:*");
        // The crate's own unit tests pass on the machine's target.
        let output = Command::new("cargo")
            .current_dir(&krate)
            .args(["test", "--quiet", "--target-dir"])
            .arg(shared_target())
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_ENCODED_RUSTFLAGS")
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("2 passed"));
    }
    // Refuses a bad name and an existing folder, saying why.
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["new", "Bad_Name", "--auth", "oauth", "--dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("cannot be a connector id"));

    // Without cargo on PATH, the error names the fix.
    let (_dir, krate) = new_crate("no-cargo", "api-key");
    let output = Command::new(BIN)
        .args(["call"])
        .arg(&krate)
        .arg("auth-type")
        .env("PATH", "")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot run `cargo`")
            && stderr.contains("https://rustup.rs")
            && stderr.contains("rustup target add wasm32-wasip2"),
        "{stderr}"
    );
}

#[test]
fn dev_serves_the_login_and_reloads_a_changed_crate() {
    let (dir, krate) = new_crate("dev-loop", "api-key");
    build(&krate); // warm the shared target folder before the timed steps
    let mut dev = Process::spawn(
        Command::new(BIN)
            .args(["dev"])
            .arg(&krate)
            .args(["--provider", "--listen", "127.0.0.1:0", "--target-dir"])
            .arg(shared_target())
            .arg("--state-dir")
            .arg(dir.path().join("state")),
    );
    let line = dev.next_line_within(BUILD_TIMEOUT, |l| l.starts_with("dev server: "));
    let base = line
        .trim_start_matches("dev server: ")
        .split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = reqwest::Client::new();
    let status: serde_json::Value = runtime.block_on(async {
        client
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(status["id"], "dev-loop");
    assert_eq!(status["version"], "0.1.0");
    assert_eq!(status["loads"], 1);

    // The page shows the manifest's form; a login goes through the flows.
    let page = runtime.block_on(async {
        client
            .get(format!("{base}/"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(page.contains("name=\"apiKey\""), "{page}");
    assert!(
        !page.contains("/v1/"),
        "the dev page must not use the /v1 API"
    );
    let (code, body) = runtime.block_on(async {
        let response = client
            .post(format!("{base}/login"))
            .form(&[("apiKey", "dev-api-key")])
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    });
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("Ada Lovelace") && body.contains("12345"),
        "{body}"
    );
    let request = dev.next_line_within(STEP_TIMEOUT, |l| l.contains("outbound: GET"));
    assert!(
        request.contains("/v3.1/Users/Me → 200 [api-key]"),
        "{request}"
    );
    dev.next_line_within(STEP_TIMEOUT, |l| l.starts_with("login ok"));
    // The guest's own log line, in the host log.
    let logged = dev.line_within(STEP_TIMEOUT, |l| l.contains("fetched the connected user"));
    assert!(logged.contains("dev-loop"), "{logged}");
    let (code, _) = runtime.block_on(async {
        let response = client
            .post(format!("{base}/login"))
            .form(&[("apiKey", "wrong")])
            .send()
            .await
            .unwrap();
        (response.status(), response.text().await.unwrap())
    });
    assert_eq!(code, 401);

    // A source change: a new version is built and served.
    let manifest = krate.join("connector.json");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("\"0.1.0\"", "\"0.2.0\"")).unwrap();
    dev.next_line_within(BUILD_TIMEOUT, |l| l.starts_with("reloaded dev-loop@0.2.0"));
    let status: serde_json::Value = runtime.block_on(async {
        client
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(status["version"], "0.2.0");
    assert_eq!(status["loads"], 2);
    assert!(status["error"].is_null());

    // A broken change keeps the last good version and reports the error.
    let lib = krate.join("src/lib.rs");
    let code_text = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(&lib, format!("{code_text}\nfn broken( {{\n")).unwrap();
    dev.next_line_within(BUILD_TIMEOUT, |l| l.starts_with("build failed"));
    let status: serde_json::Value = runtime.block_on(async {
        client
            .get(format!("{base}/status"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    });
    assert_eq!(status["version"], "0.2.0");
    assert!(
        status["error"].as_str().unwrap().contains("dev-loop"),
        "{status}"
    );
}

/// Decrypted tokens of the test account in `state`.
async fn stored_tokens(state: &Path) -> (ConnectionStore, String, String) {
    let keyring = connector_authoring::authoring::dev_keyring(state).unwrap();
    let url = sqlite_url(&state.join("test-accounts.db"));
    let database = Database::connect(&url).await.unwrap();
    let store = ConnectionStore::new(database, std::sync::Arc::new(keyring));
    let connections = store.list(TEST_ACCOUNT, TEST_USER).await.unwrap();
    assert_eq!(connections.len(), 1, "{connections:?}");
    let secrets = store.secrets(&connections[0]).await.unwrap();
    let access = secrets.access_token.unwrap().expose_secret().to_string();
    let refresh = secrets.refresh_token.unwrap().expose_secret().to_string();
    (store, access, refresh)
}

/// Whether `needle` appears in the database files as bytes. Read by `grep`
/// in another process: opening and closing the files here would drop this
/// process's SQLite locks (POSIX locks are per process) and break its pools.
fn in_database_files(state: &Path, needle: &str) -> bool {
    assert!(state.join("test-accounts.db").exists());
    // The WAL file may come and go (checkpoints): read whatever exists.
    let status = Command::new("sh")
        .arg("-c")
        .arg("cat \"$1\" \"$2\" 2>/dev/null | grep -q -a -F -- \"$0\"")
        .arg(needle)
        .arg(state.join("test-accounts.db"))
        .arg(state.join("test-accounts.db-wal"))
        .status()
        .unwrap();
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!("grep failed: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oauth2_logs_in_refreshes_and_starts_over() {
    let (dir, krate) = new_crate("oauth2-login", "oauth");
    let krate_for_build = krate.clone();
    tokio::task::spawn_blocking(move || build(&krate_for_build))
        .await
        .unwrap();
    let state = dir.path().join("state");
    // A free port for the callback (the provider must know the redirect URI).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "oauth2-login-client".into(),
            client_secret: "test-client-secret".into(),
            redirect_uris: vec![format!("http://127.0.0.1:{port}/callback")],
        }],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let command = |reauth: bool| {
        let mut command = Command::new(BIN);
        command
            .arg("oauth2")
            .arg(&krate)
            .args(["--timeout", "120", "--set"])
            .arg(format!("base-url={}", provider.base_url()))
            .arg("--target-dir")
            .arg(shared_target())
            .arg("--state-dir")
            .arg(&state)
            .env("OAUTH2_PORT", port.to_string())
            .env(
                "CONNECTOR_SECRET_OAUTH2_LOGIN_CLIENT_SECRET",
                "test-client-secret",
            );
        if reauth {
            command.arg("--reauth");
        }
        command
    };
    // A browser: follow the provider's redirect to the local callback.
    let base = provider.base_url();
    let login = |mut running: Process| {
        let base = base.clone();
        async move {
            let url = tokio::task::block_in_place(|| {
                running.next_line_within(BUILD_TIMEOUT, |l| {
                    l.starts_with(&format!("{base}/oauth/authorize"))
                })
            });
            let page = reqwest::get(&url).await.unwrap();
            assert_eq!(page.status(), 200);
            let page = page.text().await.unwrap();
            assert!(page.contains("Logged in"), "{page}");
            tokio::task::block_in_place(|| running.finish(STEP_TIMEOUT))
        }
    };

    // 1. A first login.
    let (ok, lines) = login(Process::spawn(&mut command(false))).await;
    assert!(ok, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("logged in:")),
        "{lines:#?}"
    );
    assert_eq!(provider.stats().authorization_code_grants, 1);
    let (_, access1, refresh1) = stored_tokens(&state).await;
    assert!(
        !in_database_files(&state, &access1) && !in_database_files(&state, &refresh1),
        "tokens stored in clear"
    );

    // 2. Again: refreshed with the stored refresh token, no new login.
    let (ok, lines) =
        tokio::task::block_in_place(|| Process::spawn(&mut command(false)).finish(STEP_TIMEOUT));
    assert!(ok, "{lines:#?}");
    assert!(
        lines.iter().any(|l| l.starts_with("refreshed:")),
        "{lines:#?}"
    );
    assert_eq!(provider.stats().refresh_grants, 1);
    assert_eq!(provider.stats().authorization_code_grants, 1);
    let (store, access2, refresh2) = stored_tokens(&state).await;
    assert_ne!(access1, access2);
    assert_ne!(refresh1, refresh2, "the provider rotates refresh tokens");
    assert!(!in_database_files(&state, &access2));

    // 3. A spent refresh token (replayed): invalid_grant, needs re-auth.
    let connection = store.list(TEST_ACCOUNT, TEST_USER).await.unwrap().remove(0);
    store
        .update_tokens(
            &connection,
            &access2.clone().into(),
            Some(&refresh1.clone().into()),
            None,
            None,
        )
        .await
        .unwrap();
    let (ok, lines) =
        tokio::task::block_in_place(|| Process::spawn(&mut command(false)).finish(STEP_TIMEOUT));
    assert!(!ok, "{lines:#?}");
    let connection = store.list(TEST_ACCOUNT, TEST_USER).await.unwrap().remove(0);
    assert_eq!(connection.status, ConnectionStatus::NeedsReauth);

    // 4. --reauth: a new login replaces the tokens.
    let (ok, lines) = login(Process::spawn(&mut command(true))).await;
    assert!(ok, "{lines:#?}");
    assert_eq!(provider.stats().authorization_code_grants, 2);
    let (store, access3, _) = stored_tokens(&state).await;
    assert_ne!(access3, access2, "{lines:#?}");
    let connection = store.list(TEST_ACCOUNT, TEST_USER).await.unwrap().remove(0);
    assert_eq!(connection.status, ConnectionStatus::Active);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_shows_result_logs_and_requests() {
    let (dir, krate) = new_crate("call-key", "api-key");
    let krate_for_build = krate.clone();
    let wasm = tokio::task::spawn_blocking(move || build(&krate_for_build))
        .await
        .unwrap();
    let provider = DevProvider::start(DevProviderConfig {
        api_keys: vec!["k-123".into()],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let run = |hook: &str, key: Option<&str>, target: &Path| {
        let mut command = Command::new(BIN);
        command
            .arg("call")
            .arg(target)
            .args([
                hook,
                "--json",
                "--input",
                "{\"additionalInfo\":{\"team\":\"a\"}}",
                "--set",
            ])
            .arg(format!("base-url={}", provider.base_url()))
            .arg("--target-dir")
            .arg(shared_target())
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .env_remove("CONNECTOR_API_KEY");
        if let Some(key) = key {
            command.env("CONNECTOR_API_KEY", key);
        }
        let output = tokio::task::block_in_place(|| command.output().unwrap());
        let json: serde_json::Value = serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&output.stderr)));
        (output.status.success(), json)
    };

    let (ok, out) = run("user-info", Some("k-123"), &krate);
    assert!(ok, "{out:#}");
    assert_eq!(out["connector"], "call-key@0.1.0");
    assert_eq!(out["result"]["platformUserId"], "12345");
    assert_eq!(out["result"]["name"], "Ada Lovelace");
    assert_eq!(out["result"]["additionalInfo"]["team"], "a");
    assert!(
        out["logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["message"] == "fetched the connected user")
    );
    let outbound = out["outbound"].as_array().unwrap();
    assert_eq!(outbound.len(), 1, "{out:#}");
    assert_eq!(outbound[0]["path"], "/v3.1/Users/Me");
    assert_eq!(outbound[0]["status"], 200);
    assert_eq!(outbound[0]["credential"], "api-key");

    // A `.wasm` file works too; a hook error is reported with exit status 1.
    let (ok, out) = run("auth-type", None, &wasm);
    assert!(ok, "{out:#}");
    assert_eq!(out["result"], "apiKey");
    let (ok, out) = run("user-info", Some("wrong"), &wasm);
    assert!(!ok);
    assert_eq!(out["error"]["kind"], "guest");
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("re-authentication required"),
        "{out:#}"
    );
    let (ok, out) = run("user-info", None, &wasm);
    assert!(!ok);
    assert!(
        out["error"]["message"]
            .as_str()
            .unwrap()
            .contains("credential unavailable"),
        "{out:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_honours_the_connectors_refresh_hook() {
    let (dir, krate) = new_crate("refresh-hook", "oauth");
    // A `refresh` hook: client authentication in the header (the manifest
    // says body), and a token URL the operator config may replace.
    let lib = krate.join("src/lib.rs");
    let code = std::fs::read_to_string(&lib).unwrap();
    let hook = r#"
    fn refresh(_connection: ConnectionInfo) -> Result<RefreshOverride, ConnectorError> {
        Ok(RefreshOverride {
            token_url: Some(
                config::get("refresh-token-url")
                    .unwrap_or_else(|| format!("{}/oauth/token", base_url())),
            ),
            extra_params: vec![("resource".into(), "contacts".into())],
            client_auth_location: Some(ClientAuthLocation::Header),
            access_token_path: None,
            refresh_token_path: None,
            expires_in_path: None,
        })
    }

    /// Must equal the manifest's `auth.type`."#;
    let code = code.replacen("\n    /// Must equal the manifest's `auth.type`.", hook, 1);
    std::fs::write(&lib, code).unwrap();
    let krate_for_build = krate.clone();
    tokio::task::spawn_blocking(move || build(&krate_for_build))
        .await
        .unwrap();
    let state = dir.path().join("state");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "refresh-hook-client".into(),
            client_secret: "s".into(),
            redirect_uris: vec![format!("http://127.0.0.1:{port}/callback")],
        }],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let command = |extra: &[&str]| {
        let mut command = Command::new(BIN);
        command
            .arg("oauth2")
            .arg(&krate)
            .args(["--timeout", "120", "--set"])
            .arg(format!("base-url={}", provider.base_url()))
            .args(extra)
            .arg("--target-dir")
            .arg(shared_target())
            .arg("--state-dir")
            .arg(&state)
            .env("OAUTH2_PORT", port.to_string())
            .env("CONNECTOR_SECRET_REFRESH_HOOK_CLIENT_SECRET", "s");
        command
    };
    let mut running = Process::spawn(&mut command(&[]));
    let base = provider.base_url();
    let url = tokio::task::block_in_place(|| {
        running.next_line_within(BUILD_TIMEOUT, |l| {
            l.starts_with(&format!("{base}/oauth/authorize"))
        })
    });
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    let (ok, lines) = tokio::task::block_in_place(|| running.finish(STEP_TIMEOUT));
    assert!(ok, "{lines:#?}");
    // The code exchange follows the manifest (body)…
    assert_eq!(provider.stats().client_auth_body, 1);
    assert_eq!(provider.stats().client_auth_header, 0);

    // …the refresh follows the hook (header).
    let (ok, lines) =
        tokio::task::block_in_place(|| Process::spawn(&mut command(&[])).finish(STEP_TIMEOUT));
    assert!(ok, "{lines:#?}");
    assert_eq!(provider.stats().refresh_grants, 1);
    assert_eq!(provider.stats().client_auth_header, 1);
    assert_eq!(provider.stats().client_auth_body, 1);

    // A token URL outside the manifest's allowedHosts is refused before any
    // request, and the stored tokens stay usable.
    let (ok, lines) = tokio::task::block_in_place(|| {
        Process::spawn(&mut command(&[
            "--set",
            "refresh-token-url=https://token.example.com/oauth/token",
        ]))
        .finish(STEP_TIMEOUT)
    });
    assert!(!ok, "{lines:#?}");
    assert_eq!(provider.stats().refresh_grants, 1);
    let (store, _, _) = stored_tokens(&state).await;
    let connection = store.list(TEST_ACCOUNT, TEST_USER).await.unwrap().remove(0);
    assert_eq!(connection.status, ConnectionStatus::Active);
}
