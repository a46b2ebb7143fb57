//! The `connector-host` binary: `inspect`, `check` and `serve` end to end.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use connector_test_support::databases::sqlite_url;
use connector_test_support::guest;
use connector_test_support::process::run_ok;
use connector_test_support::serve::{Serve, create_api_key};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// One master key for every server these tests start.
static TEST_KEYS: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| connector_server::store::crypto::Keyring::generate_entry("test1"));

fn run(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(BIN)
        .args(args)
        .output()
        .expect("run connector-host");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn inspect_prints_every_field_for_the_examples() {
    for (name, id, auth) in [
        ("oauth_regional", "regional-crm", "oauth"),
        ("apikey_insightly", "insightly", "apiKey"),
    ] {
        let path = guest(name);
        let (ok, stdout, stderr) = run(&["inspect", "--json", path.to_str().unwrap()]);
        assert!(ok, "{stderr}");
        let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        assert_eq!(report["id"], id);
        assert_eq!(report["version"], "1.0.0");
        assert_eq!(report["witVersion"], "connector:auth@0.1.0");
        assert_eq!(report["authType"], auth);
        assert_eq!(report["sha256"].as_str().unwrap().len(), 64);
        assert!(
            report["hooks"]
                .as_array()
                .unwrap()
                .iter()
                .any(|h| h == "user-info")
        );
        assert!(!report["allowedHosts"].as_array().unwrap().is_empty());
        assert!(report["secrets"].is_array());
        assert_eq!(report["authPage"]["type"], auth);

        let (ok, text, _) = run(&["inspect", path.to_str().unwrap()]);
        assert!(ok);
        for label in [
            "connector",
            "version",
            "sha256",
            "wit",
            "auth type",
            "hooks",
            "allowed hosts",
            "secrets",
            "auth page",
        ] {
            assert!(text.contains(label), "text output lacks `{label}`:\n{text}");
        }
    }
    let (_, stdout, _) = run(&[
        "inspect",
        "--json",
        guest("apikey_insightly").to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let fields: Vec<&str> = report["authPage"]["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["const"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["insightlyGetApiKey", "apiKey", "apiUrl"]);
    let (_, stdout, _) = run(&[
        "inspect",
        "--json",
        guest("oauth_regional").to_str().unwrap(),
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["secrets"][0], "regional-crm-client-secret");
    assert_eq!(report["authPage"]["customState"], "platform=regional-crm");
}

#[test]
fn check_accepts_good_connectors_and_names_the_problem_of_bad_ones() {
    for good in ["oauth_regional", "apikey_insightly", "versioned_v1"] {
        let (ok, stdout, stderr) = run(&["check", guest(good).to_str().unwrap()]);
        assert!(ok, "{good}: {stderr}");
        assert!(stdout.starts_with("ok: "), "{stdout}");
    }
    for (bad, expected) in [
        ("wrong_world", "missing export `connector:auth/hooks@0.1.0`"),
        (
            "auth_mismatch",
            "the manifest's auth.type is `apiKey` but the auth-type hook returns `oauth`",
        ),
        (
            "bad_manifest",
            "manifest field `auth.apiKey.page.content[0].sensitive`: unknown field `sensitive`",
        ),
    ] {
        let (ok, _, stderr) = run(&["check", guest(bad).to_str().unwrap()]);
        assert!(!ok, "{bad} passed check");
        assert!(stderr.contains(expected), "{bad}: {stderr}");
    }
}

#[test]
fn check_reports_a_wit_version_mismatch_and_non_components() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = std::fs::read(guest("versioned_v1")).unwrap();
    let (from, to) = (b"connector:auth/hooks@0.1.0", b"connector:auth/hooks@0.9.0");
    let mut patched = 0;
    for i in 0..bytes.len() - from.len() {
        if &bytes[i..i + from.len()] == from {
            bytes[i..i + from.len()].copy_from_slice(to);
            patched += 1;
        }
    }
    assert!(patched > 0);
    let future = dir.path().join("future.wasm");
    std::fs::write(&future, bytes).unwrap();
    let (ok, _, stderr) = run(&["check", future.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        stderr.contains("WIT version mismatch: the component targets connector:auth@0.9.0"),
        "{stderr}"
    );

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let (ok, _, stderr) = run(&["check", core.to_str().unwrap()]);
    assert!(!ok);
    assert!(stderr.contains("core wasm module"), "{stderr}");
}

/// Creates an API key with the CLI; returns its secret.
fn create_key(database_url: &str, role: &str, accounts: &[&str]) -> String {
    let key = create_api_key(
        Path::new(BIN),
        database_url,
        "cli test",
        role,
        accounts,
        &[],
    );
    assert!(
        key.stderr.contains("only time the key is shown"),
        "{}",
        key.stderr
    );
    key.secret
}

fn get(url: &str, key: &str) -> (u16, serde_json::Value) {
    let response = ureq_get(url, key);
    (
        response.0,
        serde_json::from_str(&response.1).unwrap_or(serde_json::Value::Null),
    )
}

/// A minimal HTTP/1.1 GET over a std TCP stream (the API is plain JSON on loopback).
fn ureq_get(url: &str, key: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").unwrap();
    let (authority, path) = rest.split_at(rest.find('/').unwrap());
    let mut stream = std::net::TcpStream::connect(authority).unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {key}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response[9..12].parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    // axum answers small bodies with Content-Length, so the body is plain.
    (status, body)
}

#[test]
fn serve_loads_the_folder_hot_reloads_it_and_records_versions() {
    let plugins = tempfile::tempdir().unwrap();
    let work = tempfile::tempdir().unwrap();
    std::fs::copy(
        guest("apikey_insightly"),
        plugins.path().join("insightly.wasm"),
    )
    .unwrap();
    std::fs::write(plugins.path().join("broken.wasm"), b"nope").unwrap();
    let database_url = sqlite_url(&work.path().join("host.db"));
    // Keys are read from the database on every request: `api-keys revoke`,
    // run below in another process, sends this SQLite host no change notice.
    let config = work.path().join("host.toml");
    std::fs::write(&config, "[api]\napi_key_cache_secs = 0\n").unwrap();
    let server = Serve::new(BIN)
        .plugins_dir(plugins.path())
        .database_url(&database_url)
        .cache_dir(work.path().join("cache"))
        .config(&config)
        .master_keys(&TEST_KEYS)
        .start();
    let operator = create_key(&database_url, "operator", &[]);
    let service = create_key(&database_url, "service", &["acct-1"]);
    let (status, error) = get(&format!("{}/v1/connectors", server.base), "chk_wrong");
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("unauthenticated"))
    );

    let (status, list) = get(&format!("{}/v1/connectors", server.base), &operator);
    assert_eq!(status, 200);
    assert_eq!(list["connectors"][0]["id"], "insightly");
    assert!(
        list["errors"]["broken.wasm"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly component")
    );

    // Drop a new connector in while serving: it goes live without a restart.
    let temp = plugins.path().join(".versioned.partial");
    std::fs::copy(guest("versioned_v1"), &temp).unwrap();
    std::fs::rename(&temp, plugins.path().join("versioned.wasm")).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (status, report) = get(
            &format!("{}/v1/connectors/test-versioned", server.base),
            &operator,
        );
        if status == 200 {
            assert_eq!(report["version"], "1.0.0");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "new connector never went live"
        );
        std::thread::park_timeout(Duration::from_millis(50));
    }
    let (status, versions) = get(
        &format!("{}/v1/connectors/test-versioned/versions", server.base),
        &operator,
    );
    assert_eq!(status, 200);
    assert_eq!(versions[0]["sha256"].as_str().unwrap().len(), 64);
    let (status, audit) = get(
        &format!("{}/v1/connectors/test-versioned/audit?limit=5", server.base),
        &operator,
    );
    assert_eq!(status, 200);
    assert_eq!(
        audit,
        serde_json::json!([]),
        "loading makes no outbound request"
    );
    let connections = format!("{}/v1/accounts/acct-1/users/u1/connections", server.base);
    let (status, list) = get(&connections, &service);
    assert_eq!((status, list), (200, serde_json::json!([])));
    let (status, error) = get(&connections, &operator);
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("forbidden")),
        "operators do not run flows"
    );
    let (status, _) = get(
        &format!(
            "{}/v1/accounts/acct-1/users/u1/connections/conn_nope",
            server.base
        ),
        &service,
    );
    assert_eq!(status, 404);
    let (status, error) = get(&format!("{}/v1/connectors/nope", server.base), &operator);
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));

    // `api-keys list` shows keys without secrets; `revoke` ends one at once.
    let (ok, listed, _) = run(&[
        "api-keys",
        "list",
        "--json",
        "--database-url",
        &database_url,
    ]);
    assert!(ok);
    assert!(!listed.contains(&service) && !listed.contains(&operator));
    let service_id = listed
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|k| k["role"] == "service")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (ok, _, stderr) = run(&[
        "api-keys",
        "revoke",
        &service_id,
        "--database-url",
        &database_url,
    ]);
    assert!(ok, "{stderr}");
    // Without the in-memory key cache the revocation by another process
    // takes effect on the very next request.
    assert_eq!(
        get(&connections, &service).0,
        401,
        "a key revoked by another process is refused at once"
    );
    let (ok, _, _) = run(&[
        "api-keys",
        "revoke",
        &service_id,
        "--database-url",
        &database_url,
    ]);
    assert!(!ok, "revoking twice says there is no such active key");
    let (ok, _, stderr) = run(&[
        "api-keys",
        "create",
        "--name",
        "x",
        "--role",
        "service",
        "--database-url",
        &database_url,
    ]);
    assert!(!ok);
    assert!(stderr.contains("accounts"), "{stderr}");
}

#[test]
fn audit_lists_a_connectors_outbound_requests() {
    use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome, AuditSink};
    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("host.db"));
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let database = connector_server::store::Database::connect(&url)
            .await
            .unwrap();
        let writer = connector_server::store::AuditWriter::start(&database);
        writer.record(AuditEvent {
            at_ms: 1,
            connector_id: "insightly".into(),
            connector_version: "1.0.0".into(),
            account_id: None,
            method: "GET".into(),
            scheme: Some("https".into()),
            host: Some("api.na1.insightly.com".into()),
            port: Some(443),
            path: Some("/v3.1/Users/Me".into()),
            outcome: AuditOutcome::Sent,
            reason: None,
            status: Some(200),
            request_bytes: 0,
            response_bytes: 10,
            duration_us: 5,
            credential: Some("api-key".into()),
            scrubbed: false,
        });
        writer.flush().await;
    });
    let (ok, stdout, stderr) = run(&["audit", "insightly", "--database-url", &url, "--json"]);
    assert!(ok, "{stderr}");
    let event: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(event["host"], "api.na1.insightly.com");
    assert_eq!(event["credential"], "api-key");
    let (ok, text, _) = run(&["audit", "insightly", "--database-url", &url]);
    assert!(ok);
    assert!(
        text.contains("https://api.na1.insightly.com:443/v3.1/Users/Me")
            && text.contains("cred=api-key"),
        "{text}"
    );
    let (ok, text, _) = run(&["audit", "nobody", "--database-url", &url]);
    assert!(
        ok && text.contains("no outbound requests recorded"),
        "{text}"
    );
}

#[test]
fn serve_refuses_to_start_without_a_master_key() {
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--plugins-dir"])
        .arg(work.path())
        .arg("--database-url")
        .arg(sqlite_url(&work.path().join("h.db")))
        .env_remove("CONNECTOR_HOST_MASTER_KEYS")
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("no master key") && stderr.contains("keys generate"),
        "{stderr}"
    );
}

#[test]
fn keys_generate_and_rotate_re_encrypt_stored_secrets() {
    use connector_server::store::crypto::Keyring;
    use connector_server::store::{ConnectionSecrets, ConnectionStore, Database, NewConnection};
    use secrecy::ExposeSecret;

    let (ok, entry, _) = run(&["keys", "generate", "--id", "new"]);
    assert!(ok);
    let new = entry.trim().to_string();
    assert!(
        new.starts_with("new:") && Keyring::from_spec(&new).is_ok(),
        "{new}"
    );
    let old = Keyring::generate_entry("old");

    let dir = tempfile::tempdir().unwrap();
    let url = sqlite_url(&dir.path().join("host.db"));
    let tokio = tokio::runtime::Runtime::new().unwrap();
    let saved = tokio.block_on(async {
        let database = Database::connect(&url).await.unwrap();
        let store = ConnectionStore::new(
            database,
            std::sync::Arc::new(Keyring::from_spec(&old).unwrap()),
        );
        store
            .save(NewConnection {
                account_id: "a".into(),
                user_id: "u".into(),
                connector_id: "insightly".into(),
                auth_type: "apiKey".into(),
                hostname: None,
                platform_user_id: None,
                user_name: None,
                timezone_name: None,
                timezone_offset: None,
                additional_info: vec![],
                expires_at: None,
                secrets: ConnectionSecrets {
                    api_key: Some("k-secret".into()),
                    ..Default::default()
                },
            })
            .await
            .unwrap()
    });
    let stdout = run_ok(
        Command::new(BIN)
            .args(["keys", "rotate", "--database-url", &url])
            .env("CONNECTOR_HOST_MASTER_KEYS", format!("{new},{old}")),
    );
    assert!(stdout.contains("re-encrypted 1 value(s) under key `new`"));
    tokio.block_on(async {
        let database = Database::connect(&url).await.unwrap();
        let store = ConnectionStore::new(
            database,
            std::sync::Arc::new(Keyring::from_spec(&new).unwrap()),
        );
        let secrets = store.secrets(&saved).await.unwrap();
        assert_eq!(
            secrets.api_key.unwrap().expose_secret(),
            "k-secret",
            "readable with the new key alone"
        );
    });
}

#[tokio::test]
async fn serve_dev_demos_a_whole_login_offline() {
    let work = tempfile::tempdir().unwrap();
    let server = connector_test_support::dev_demo::start(Path::new(BIN), work.path());
    assert!(
        work.path().join(".connector-host/dev-master-keys").exists(),
        "--dev generated a key file"
    );
    let mut ids = server.connector_ids().await;
    ids.sort();
    assert_eq!(
        ids,
        [
            "insightly",
            "local-insightly",
            "local-regional",
            "regional-crm"
        ],
        "--dev serves the four embedded examples"
    );
    assert!(
        work.path()
            .join(".connector-host/examples/local-insightly.wasm")
            .is_file(),
        "the examples were written next to the working folder, not read from a checkout"
    );
    let connection = server.api_key_login().await;
    assert_eq!(connection["userName"], "Ada Lovelace");

    // The README's OAuth login over the API: the authorize URL is the local
    // provider's, whose consent page answers a redirect to "allow".
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let started: serde_json::Value = http
        .post(format!(
            "{}/v1/connectors/local-regional/oauth/start",
            server.base
        ))
        .bearer_auth(&server.service_key)
        .json(&serde_json::json!({"accountId": "demo", "userId": "me"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authorize = started["authorizeUrl"].as_str().expect("an authorize URL");
    assert!(
        authorize.starts_with(&format!("{}/oauth/authorize?", server.provider)),
        "{authorize}"
    );
    let consent = http.get(authorize).send().await.unwrap();
    assert_eq!(consent.status(), 200, "the provider asks first");
    let approved = http
        .get(format!("{authorize}&decision=allow"))
        .send()
        .await
        .unwrap();
    let callback = approved.headers()["location"].to_str().unwrap().to_string();
    let query = callback.split_once('?').expect("a query").1;
    let connected = http
        .get(format!("{}/v1/oauth/callback?{query}", server.base))
        .bearer_auth(&server.service_key)
        .send()
        .await
        .unwrap();
    assert_eq!(connected.status(), 200);
}
