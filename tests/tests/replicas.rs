//! Several host processes on one database: concurrent proxy calls on an
//! expired connection, split between two `connector-host serve` replicas,
//! make exactly one token request; a replica SIGKILLed mid-refresh is taken
//! over by the other within the callers' wait bound; a key revoked from
//! elsewhere is refused by both replicas, whose memory held it. On PostgreSQL when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set (always in CI), else on one
//! SQLite file shared by both processes.

use std::path::Path;
use std::time::Duration;

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_server::store::{ApiKeyStore, Database};
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

/// A provider, a work folder with `local-regional` and `extra_config`
/// appended to its config, a database, master keys and a service key: what
/// the replicas of a test share.
struct Cluster {
    provider: DevProvider,
    provider_host: String,
    work: tempfile::TempDir,
    database_url: String,
    keys: String,
    key: String,
    http: reqwest::Client,
}

impl Cluster {
    async fn new(extra_config: &str) -> Cluster {
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
            regional_config(&provider_host, "REPLICA_CLIENT_SECRET") + extra_config,
        )
        .unwrap();
        // A fresh PostgreSQL database, or one SQLite file the replicas share.
        let database_url = database_url(work.path()).await;
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
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Cluster {
            provider,
            provider_host,
            work,
            database_url,
            keys,
            key,
            http,
        }
    }

    fn serve(&self) -> Server {
        serve(self.work.path(), &self.database_url, &self.keys)
    }

    /// Logs `user-1` in: started through `start`, called back through
    /// `callback`; returns the connection id, its token already expired.
    async fn expired_connection(&self, start: &Server, callback: &Server) -> String {
        let provider_url = self.provider.base_url();
        let dance = Dance {
            http: &self.http,
            provider: &provider_url,
            key: &self.key,
        };
        let started = dance
            .start(
                &start.base,
                "local-regional",
                &json!({"accountId": "acct-1", "userId": "user-1", "hostname": self.provider_host}),
            )
            .await
            .unwrap();
        let query = dance.approve(&started).await.unwrap();
        let connected = dance.callback(&callback.base, &query).await.unwrap();
        let id = connected["connection"]["id"]
            .as_str()
            .expect("connected")
            .to_string();
        Database::connect(&self.database_url)
            .await
            .unwrap()
            .set_connection_expiry_for_tests(&id, 1)
            .await
            .unwrap();
        id
    }

    /// A proxy call of `GET /api/v1/me` on connection `id` through `replica`.
    fn proxy_me(
        &self,
        replica: &Server,
        id: &str,
    ) -> impl std::future::Future<Output = reqwest::Result<(u16, Value)>> + Send + 'static {
        let request = self
            .http
            .post(format!(
                "{}/v1/accounts/acct-1/users/user-1/connections/{id}/proxy",
                replica.base
            ))
            .bearer_auth(&self.key)
            .json(
                &json!({"method": "GET", "url": format!("{}/api/v1/me", self.provider.base_url())}),
            );
        async move {
            let response = request.send().await?;
            let status = response.status().as_u16();
            Ok((status, response.json().await?))
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_refresh_a_connection_once() {
    let cluster = Cluster::new("").await;
    let backend = host_backend();
    let replicas = [cluster.serve(), cluster.serve()];
    let id = cluster.expired_connection(&replicas[0], &replicas[1]).await;
    // 60 concurrent calls, half through each replica.
    let mut calls = tokio::task::JoinSet::new();
    for n in 0..60 {
        calls.spawn(cluster.proxy_me(&replicas[n % 2], &id));
    }
    while let Some(done) = calls.join_next().await {
        let (status, body) = done.unwrap().unwrap();
        assert_eq!(
            (status, body["status"].as_u64()),
            (200, Some(200)),
            "{backend}: {body}"
        );
    }
    let stats = cluster.provider.stats();
    assert_eq!(
        stats.refresh_grants, 1,
        "{backend}: exactly one token request"
    );
    assert_eq!(stats.token_errors, 0, "{backend}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_replica_killed_mid_refresh_is_taken_over_within_the_wait_bound() {
    // Leases of one second; a caller waits at most ten.
    let cluster = Cluster::new("[refresh]\nlease_ttl_ms = 1000\nmax_wait_ms = 10000\n").await;
    let backend = host_backend();
    // Refresh tokens are not rotated, so the token request of the killed
    // replica spends nothing the survivor needs.
    cluster.provider.set_rotate_refresh_tokens(false);
    let doomed = cluster.serve();
    let survivor = cluster.serve();
    let id = cluster.expired_connection(&survivor, &survivor).await;

    // The doomed replica takes the lease and its token request reaches the
    // provider, which holds the answer; then the replica is SIGKILLed.
    let hold = cluster.provider.hold_token_answers();
    let in_flight = tokio::spawn(cluster.proxy_me(&doomed, &id));
    hold.arrived().await;
    let leases = connector_server::store::LeaseStore::new(
        Database::connect(&cluster.database_url).await.unwrap(),
    );
    let (holder, _) = leases.holder(&id).await.unwrap().expect("a lease is held");
    drop(doomed);
    assert!(
        in_flight.await.unwrap().is_err(),
        "{backend}: the killed replica's caller lost its connection"
    );
    hold.release();

    // The survivor serves the next call: it waits for the dead holder's lease
    // to expire (it is no longer renewed), takes it over and refreshes. It
    // answers within the wait bound, or it would have answered 503.
    let (status, body) = cluster.proxy_me(&survivor, &id).await.unwrap();
    assert_eq!(
        (status, body["status"].as_u64()),
        (200, Some(200)),
        "{backend}: {body}"
    );
    assert_eq!(
        cluster.provider.stats().refresh_grants,
        2,
        "{backend}: the killed replica's request and the survivor's"
    );
    assert_ne!(
        leases.holder(&id).await.unwrap().map(|(owner, _)| owner),
        Some(holder),
        "{backend}: the dead replica's lease was taken over"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_key_revoked_elsewhere_is_refused_by_every_replica() {
    // On PostgreSQL the replicas keep a key in memory for five minutes: only
    // the change notice can make them refuse it within the deadline below.
    // A SQLite file carries no notices between processes: there a key is
    // kept one second.
    let backend = host_backend();
    let ttl = if backend == "postgres" { 300 } else { 1 };
    let cluster = Cluster::new(&format!("[api]\napi_key_cache_secs = {ttl}\n")).await;
    let replicas = [cluster.serve(), cluster.serve()];
    let operator = create_api_key(
        Path::new(BIN),
        &cluster.database_url,
        "ops",
        "operator",
        &[],
        &[],
    )
    .secret;
    // Each replica listens for change notices before it keeps any key.
    for (n, replica) in replicas.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let metrics = cluster
                .http
                .get(format!("{}/metrics", replica.base))
                .bearer_auth(&operator)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            if metrics
                .lines()
                .any(|l| l == "connector_host_change_notices_live 1")
            {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: replica {n} never listened: {metrics}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let whoami = |replica: &Server| {
        let request = cluster
            .http
            .get(format!("{}/v1/whoami", replica.base))
            .bearer_auth(&cluster.key);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Each replica has read the key, and keeps it.
    for replica in &replicas {
        assert_eq!(whoami(replica).await, 200, "{backend}");
        assert_eq!(whoami(replica).await, 200, "{backend}");
    }

    // Revoked by a third process on the same database (as `api-keys revoke` does).
    let keys = ApiKeyStore::new(Database::connect(&cluster.database_url).await.unwrap());
    let id = keys
        .list()
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.name == "platform")
        .expect("the cluster's key")
        .id;
    assert!(keys.revoke(&id).await.unwrap());

    for (n, replica) in replicas.iter().enumerate() {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while whoami(replica).await != 401 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{backend}: replica {n} still accepts the revoked key"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
