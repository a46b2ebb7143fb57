//! Several host processes on one database: concurrent proxy calls on an
//! expired connection, split between two `connector-host serve` replicas,
//! make exactly one token request. On PostgreSQL when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set (always in CI), else on one
//! SQLite file shared by both processes.

use std::path::Path;

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_server::store::Database;
use connector_test_support::databases::host_backend;
use connector_test_support::harness::database_url;
use connector_test_support::oauth::Dance;
use connector_test_support::serve::{
    Serve, Server, create_api_key, install_guests, regional_config,
};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
const CLIENT_SECRET: &str = "cs-replica-secret";

fn serve(work: &Path, database_url: &str, keys: &str) -> Server {
    Serve::new(BIN)
        .config(work.join("host.toml"))
        .plugins_dir(work.join("plugins"))
        .database_url(database_url)
        .cache_dir(work.join("cache"))
        .master_keys(keys)
        .env("REPLICA_CLIENT_SECRET", CLIENT_SECRET)
        .start()
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
    install_guests(&work.path().join("plugins"), &["local_regional"]);
    std::fs::write(
        work.path().join("host.toml"),
        regional_config(&provider_host, "REPLICA_CLIENT_SECRET"),
    )
    .unwrap();
    // A fresh PostgreSQL database, or one SQLite file both replicas share.
    let database_url = database_url(work.path()).await;
    let backend = host_backend();
    let keys = connector_server::store::crypto::Keyring::generate_entry("replicas");
    let key = create_api_key(
        Path::new(BIN),
        &database_url,
        "platform",
        "service",
        &["acct-1"],
        &[],
    )
    .secret;
    let replicas = [
        serve(work.path(), &database_url, &keys),
        serve(work.path(), &database_url, &keys),
    ];
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    // Log in: started through the first replica, called back through the second.
    let provider_url = provider.base_url();
    let dance = Dance {
        http: &http,
        provider: &provider_url,
        key: &key,
    };
    let started = dance
        .start(
            &replicas[0].base,
            "local-regional",
            &json!({"accountId": "acct-1", "userId": "user-1", "hostname": provider_host}),
        )
        .await
        .unwrap();
    let query = dance.approve(&started).await.unwrap();
    let connected = dance.callback(&replicas[1].base, &query).await.unwrap();
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
