//! Several host processes on one database: concurrent proxy calls on an
//! expired connection, split between two `connector-host serve` replicas,
//! make exactly one token request. On PostgreSQL when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set (always in CI), else on one
//! SQLite file shared by both processes.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_server::store::Database;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
const CLIENT_SECRET: &str = "cs-replica-secret";

struct Replica {
    child: Child,
    base: String,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(work: &Path, database_url: &str, keys: &str) -> Replica {
    let mut child = Command::new(BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(work.join("host.toml"))
        .arg("--plugins-dir")
        .arg(work.join("plugins"))
        .args(["--database-url", database_url])
        .arg("--cache-dir")
        .arg(work.join("cache"))
        .env("CONNECTOR_HOST_MASTER_KEYS", keys)
        .env("REPLICA_CLIENT_SECRET", CLIENT_SECRET)
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("start a replica");
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("listening on http://") {
                let _ = tx.send(line[at + "listening on ".len()..].trim().to_string());
            }
        }
    });
    let base = rx
        .recv_timeout(Duration::from_secs(120))
        .expect("the replica announced its address");
    Replica { child, base }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_refresh_a_connection_once() {
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "regional-public-client".into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec!["https://apps.example.com/oauth/callback".into()],
        }],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    let provider_host = provider
        .base_url()
        .trim_start_matches("http://")
        .to_string();
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir(work.path().join("plugins")).unwrap();
    std::fs::copy(
        Path::new(connector_test_support::GUESTS_DIR).join("local_regional.wasm"),
        work.path().join("plugins/local_regional.wasm"),
    )
    .unwrap();
    std::fs::write(
        work.path().join("host.toml"),
        format!(
            "[network]\nallow_private_networks = [\"127.0.0.1/32\"]\n\
             [secrets]\nregional-crm-client-secret = {{ env = \"REPLICA_CLIENT_SECRET\", connectors = [\"local-regional\"] }}\n\
             [connectors.local-regional.config]\nscheme = \"http\"\ndefault-hostname = \"{provider_host}\"\n"
        ),
    )
    .unwrap();
    let (database_url, backend) = match std::env::var("CONNECTOR_HOST_TEST_POSTGRES_URL") {
        Ok(server) => (
            Database::fresh_postgres_for_tests(&server).await.unwrap(),
            "postgres",
        ),
        Err(_) => (
            format!(
                "sqlite://{}?mode=rwc",
                work.path().join("shared.db").display()
            ),
            "sqlite",
        ),
    };
    let keys = connector_server::store::crypto::Keyring::generate_entry("replicas");
    let created = Command::new(BIN)
        .args([
            "api-keys", "create", "--name", "platform", "--role", "service",
        ])
        .args(["--account", "acct-1", "--database-url", &database_url])
        .output()
        .unwrap();
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let key = String::from_utf8(created.stdout)
        .unwrap()
        .trim()
        .to_string();
    let replicas = [
        serve(work.path(), &database_url, &keys),
        serve(work.path(), &database_url, &keys),
    ];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Log in through the first replica.
    let started: Value = http
        .post(format!(
            "{}/v1/connectors/local-regional/oauth/start",
            replicas[0].base
        ))
        .bearer_auth(&key)
        .json(&json!({"accountId": "acct-1", "userId": "user-1", "hostname": provider_host}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let authorize = url::Url::parse(started["authorizeUrl"].as_str().unwrap()).unwrap();
    let redirect = http
        .get(format!(
            "{}/oauth/authorize?{}",
            provider.base_url(),
            authorize.query().unwrap()
        ))
        .send()
        .await
        .unwrap();
    let location = url::Url::parse(redirect.headers()["location"].to_str().unwrap()).unwrap();
    let connected: Value = http
        .get(format!(
            "{}/v1/oauth/callback?{}",
            replicas[1].base,
            location.query().unwrap()
        ))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = connected["connection"]["id"]
        .as_str()
        .expect("connected")
        .to_string();

    // The token expires; 60 concurrent calls, half through each replica.
    Database::connect(&database_url)
        .await
        .unwrap()
        .set_connection_expiry_for_tests(&id, 1)
        .await
        .unwrap();
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..60 {
        let url = format!(
            "{}/v1/accounts/acct-1/users/user-1/connections/{id}/proxy",
            replicas[n % 2].base
        );
        let (http, key, me) = (
            http.clone(),
            key.clone(),
            format!("{}/api/v1/me", provider.base_url()),
        );
        calls.spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(key)
                .json(&json!({"method": "GET", "url": me}))
                .send()
                .await
                .unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (status, body)
        });
    }
    while let Some(done) = calls.join_next().await {
        let (status, body) = done.unwrap();
        assert_eq!(
            (status, body["status"].as_u64()),
            (200, Some(200)),
            "{backend}: {body}"
        );
    }
    let stats = provider.stats();
    assert_eq!(
        stats.refresh_grants, 1,
        "{backend}: exactly one token request"
    );
    assert_eq!(stats.token_errors, 0, "{backend}");
}
