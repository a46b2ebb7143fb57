//! `chaos`: three `serve` replicas on one database (PostgreSQL when
//! `CONNECTOR_HOST_TEST_POSTGRES_URL` is set, else one SQLite file), a
//! client-side round robin running API-key logins, OAuth logins (started on
//! one replica, called back on the next) and proxy calls, and one replica
//! SIGKILLed mid-run. Loopback only; bounded in requests and time.
//!
//! At the kill, the doomed replica holds the refresh leases of
//! `DOOMED_LEASES` connections: their token requests reached the provider,
//! which holds the answers until the replica is dead (so their leases are
//! certainly held; the hold delays every other token answer by that long
//! too). Printed:
//!
//! - `lost_connections`: logins that answered success but are not readable
//!   afterwards through the survivors (must be 0);
//! - `duplicated_refreshes`: token refreshes beyond one per expired
//!   connection, not counting the ones whose answer died with the killed
//!   replica (`refreshes_lost_with_killed_replica`) (must be 0);
//! - `errors_in_flight_on_killed_replica` (allowed) and `errors_elsewhere`
//!   (must be 0): failed requests, by whether they were sent to the killed
//!   replica before it died;
//! - `lease_takeover`: from the kill until a survivor has refreshed every
//!   connection whose lease the killed replica held (about `lease_ttl_ms`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_server::store::Database;
use connector_test_support::databases::host_backend;
use connector_test_support::harness::database_url;
use connector_test_support::oauth::Dance;
use connector_test_support::serve::{Serve, create_api_key, install_guests, regional_config};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");
const CLIENT_SECRET: &str = "cs-chaos-secret";
const API_KEY: &str = "chaos-api-key";
const ACCOUNT: &str = "chaos";
/// Concurrent clients.
const WORKERS: usize = 12;
/// Operations per client, at most.
const OPS_PER_WORKER: usize = 150;
/// The load runs at most this long; the kill comes at a third of it.
const RUN: Duration = Duration::from_secs(9);
/// Connections whose token is expired when the load starts (refreshed by
/// the load's proxy calls, from every replica at once).
const EXPIRED: usize = 8;
/// Connections whose refresh the doomed replica holds when it dies.
const DOOMED_LEASES: usize = 3;
/// Longest wait for the survivors to take over.
const TAKEOVER_BOUND: Duration = Duration::from_secs(30);

/// The replicas' base URLs and which one died, and when.
struct Ring {
    bases: Vec<String>,
    next: AtomicUsize,
    /// The index of the killed replica and the instant of the kill.
    killed: std::sync::OnceLock<(usize, Instant)>,
}

impl Ring {
    /// The next replica in round robin, skipping the killed one.
    fn pick(&self) -> usize {
        loop {
            let n = self.next.fetch_add(1, Ordering::Relaxed) % self.bases.len();
            if self.killed.get().map(|(k, _)| *k) != Some(n) {
                return n;
            }
        }
    }
}

/// What the clients saw.
#[derive(Default)]
struct Tally {
    requests: AtomicUsize,
    api_key_logins: AtomicUsize,
    oauth_logins: AtomicUsize,
    proxy_calls: AtomicUsize,
    errors_in_flight_on_killed: AtomicUsize,
    errors_elsewhere: AtomicUsize,
    /// (user, connection id) of every login that answered success.
    connected: std::sync::Mutex<Vec<(String, String)>>,
}

impl Tally {
    /// Counts a failed request sent to `replica` at `sent`.
    fn error(&self, ring: &Ring, replicas: &[usize], sent: Instant, what: &str) {
        let on_killed = ring
            .killed
            .get()
            .is_some_and(|(k, at)| replicas.contains(k) && sent <= *at);
        if on_killed {
            self.errors_in_flight_on_killed
                .fetch_add(1, Ordering::Relaxed);
        } else {
            eprintln!("error not explained by the kill: {what}");
            self.errors_elsewhere.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Bench {
    provider: DevProvider,
    provider_url: String,
    provider_host: String,
    key: String,
    http: reqwest::Client,
    ring: Ring,
    tally: Tally,
}

impl Bench {
    fn dance(&self) -> Dance<'_> {
        Dance {
            http: &self.http,
            provider: &self.provider_url,
            key: &self.key,
        }
    }

    /// An OAuth login of `user`, started on one replica, called back on the
    /// next; the connection id.
    async fn oauth_login(&self, user: &str) -> anyhow::Result<String> {
        let (first, second) = (self.ring.pick(), self.ring.pick());
        let dance = self.dance();
        let body = json!({"accountId": ACCOUNT, "userId": user, "hostname": self.provider_host});
        let sent = Instant::now();
        let outcome = async {
            let started = dance
                .start(&self.ring.bases[first], "local-regional", &body)
                .await?;
            let query = dance.approve(&started).await?;
            let connected = dance.callback(&self.ring.bases[second], &query).await?;
            connected["connection"]["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("no connection in {connected}"))
        }
        .await;
        self.record(outcome, &[first, second], sent, user, "oauth login")
    }

    /// An API-key login of `user` through one replica; the connection id.
    async fn api_key_login(&self, user: &str) -> anyhow::Result<String> {
        let replica = self.ring.pick();
        let sent = Instant::now();
        let outcome = async {
            let answer: Value = self
                .http
                .post(format!(
                    "{}/v1/connectors/local-insightly/api-key/login",
                    self.ring.bases[replica]
                ))
                .bearer_auth(&self.key)
                .json(&json!({"accountId": ACCOUNT, "userId": user,
                    "fields": {"apiKey": API_KEY, "apiUrl": self.provider.base_url()}}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            // The answer is the new connection.
            answer["id"]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| anyhow::anyhow!("no connection in {answer}"))
        }
        .await;
        self.record(outcome, &[replica], sent, user, "api-key login")
    }

    /// Counts a login's outcome; remembers the connection of a success.
    fn record(
        &self,
        outcome: anyhow::Result<String>,
        replicas: &[usize],
        sent: Instant,
        user: &str,
        what: &str,
    ) -> anyhow::Result<String> {
        self.tally.requests.fetch_add(1, Ordering::Relaxed);
        match &outcome {
            Ok(id) => self
                .tally
                .connected
                .lock()
                .unwrap()
                .push((user.to_string(), id.clone())),
            Err(error) => {
                self.tally
                    .error(&self.ring, replicas, sent, &format!("{what}: {error:#}"))
            }
        }
        outcome
    }

    /// A proxy call of `GET /api/v1/me` on `user`'s connection `id` through
    /// `replica`: whether it answered 200 with the provider's 200.
    async fn proxy(&self, replica: usize, user: &str, id: &str) -> anyhow::Result<()> {
        let answer: Value = self
            .http
            .post(format!(
                "{}/v1/accounts/{ACCOUNT}/users/{user}/connections/{id}/proxy",
                self.ring.bases[replica]
            ))
            .bearer_auth(&self.key)
            .json(
                &json!({"method": "GET", "url": format!("{}/api/v1/me", self.provider.base_url())}),
            )
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        anyhow::ensure!(answer["status"] == 200, "provider answered {answer}");
        Ok(())
    }

    /// One client: logins and proxy calls in turn until the deadline.
    async fn client(&self, worker: usize, proxied: &[(String, String)], deadline: Instant) {
        for op in 0..OPS_PER_WORKER {
            if Instant::now() >= deadline {
                return;
            }
            let user = format!("w{worker}-{op}");
            match op % 3 {
                0 => {
                    self.tally.api_key_logins.fetch_add(1, Ordering::Relaxed);
                    let _ = self.api_key_login(&user).await;
                }
                1 => {
                    self.tally.oauth_logins.fetch_add(1, Ordering::Relaxed);
                    let _ = self.oauth_login(&user).await;
                }
                _ => {
                    self.tally.proxy_calls.fetch_add(1, Ordering::Relaxed);
                    self.tally.requests.fetch_add(1, Ordering::Relaxed);
                    let (user, id) = &proxied[(worker + op) % proxied.len()];
                    let replica = self.ring.pick();
                    let sent = Instant::now();
                    if let Err(error) = self.proxy(replica, user, id).await {
                        self.tally.error(
                            &self.ring,
                            &[replica],
                            sent,
                            &format!("proxy: {error:#}"),
                        );
                    }
                }
            }
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 4)]
async fn main() {
    let provider = DevProvider::start(DevProviderConfig {
        clients: vec![DevClient {
            client_id: "regional-public-client".into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec!["https://apps.example.com/oauth/callback".into()],
        }],
        api_keys: vec![API_KEY.into()],
        ..DevProviderConfig::default()
    })
    .await
    .unwrap();
    // The killed replica's refresh spends nothing the survivor needs.
    provider.set_rotate_refresh_tokens(false);
    let provider_host = provider
        .base_url()
        .trim_start_matches("http://")
        .to_string();
    let work = tempfile::tempdir().unwrap();
    install_guests(
        &work.path().join("plugins"),
        &["local_regional", "local_insightly"],
    );
    std::fs::write(
        work.path().join("host.toml"),
        regional_config(&provider_host, "CHAOS_CLIENT_SECRET")
            + "[api]\nrequests_per_second_per_key = 1000000\nburst_per_key = 1000000\n\
               [refresh]\nlease_ttl_ms = 1000\nmax_wait_ms = 20000\n",
    )
    .unwrap();
    let database_url = database_url(work.path()).await;
    let keys = connector_server::store::crypto::Keyring::generate_entry("chaos");
    let key = create_api_key(
        Path::new(BIN),
        &database_url,
        "chaos",
        "service",
        &[ACCOUNT],
        &[],
    )
    .secret;
    let mut replicas: Vec<Option<_>> = (0..3)
        .map(|i| {
            Some(
                Serve::new(BIN)
                    .config(work.path().join("host.toml"))
                    .plugins_dir(work.path().join("plugins"))
                    .database_url(&database_url)
                    .cache_dir(work.path().join(format!("cache-{i}")))
                    .master_keys(&keys)
                    .env("CHAOS_CLIENT_SECRET", CLIENT_SECRET)
                    .env("RUST_LOG", "warn,connector_host=info")
                    .start(),
            )
        })
        .collect();
    let bases = replicas
        .iter()
        .map(|r| r.as_ref().unwrap().base.clone())
        .collect();
    let bench = Arc::new(Bench {
        provider_url: provider.base_url(),
        provider,
        provider_host,
        key,
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        ring: Ring {
            bases,
            next: AtomicUsize::new(0),
            killed: Default::default(),
        },
        tally: Tally::default(),
    });

    // OAuth connections for the proxy calls: `EXPIRED` of them with an
    // expired token, `DOOMED_LEASES` kept for the kill.
    let database = Database::connect(&database_url).await.unwrap();
    let mut prepared = Vec::new();
    for n in 0..EXPIRED + DOOMED_LEASES + 4 {
        let user = format!("prepared-{n}");
        let id = bench.oauth_login(&user).await.expect("prepared login");
        prepared.push((user, id));
    }
    bench.tally.connected.lock().unwrap().clear();
    bench.tally.requests.store(0, Ordering::Relaxed);
    for (_, id) in &prepared[..EXPIRED + DOOMED_LEASES] {
        database
            .set_connection_expiry_for_tests(id, 1)
            .await
            .unwrap();
    }
    let doomed_connections = prepared[EXPIRED..EXPIRED + DOOMED_LEASES].to_vec();
    let proxied: Vec<_> = prepared[..EXPIRED]
        .iter()
        .chain(&prepared[EXPIRED + DOOMED_LEASES..])
        .cloned()
        .collect();
    let grants_before = bench.provider.stats().refresh_grants;

    // The load.
    let started = Instant::now();
    let deadline = started + RUN;
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..WORKERS {
        let (bench, proxied) = (bench.clone(), proxied.clone());
        clients.spawn(async move { bench.client(worker, &proxied, deadline).await });
    }

    // A third in: the doomed replica takes `DOOMED_LEASES` leases, their
    // token requests reach the provider, and it is SIGKILLed.
    let third = started + RUN / 3;
    tokio::time::sleep_until(third.into()).await;
    let doomed = 0;
    let hold = bench.provider.hold_token_answers();
    let mut doomed_calls = Vec::new();
    for (user, id) in &doomed_connections {
        let (bench, user, id) = (bench.clone(), user.clone(), id.clone());
        doomed_calls.push(tokio::spawn(async move {
            bench.proxy(doomed, &user, &id).await
        }));
    }
    for _ in 0..DOOMED_LEASES {
        tokio::time::timeout(TAKEOVER_BOUND, hold.arrived())
            .await
            .expect("the doomed replica's token requests arrive");
    }
    let killed_at = Instant::now();
    bench.ring.killed.set((doomed, killed_at)).unwrap();
    drop(replicas[doomed].take()); // SIGKILL
    hold.release();
    for call in doomed_calls {
        assert!(
            call.await.unwrap().is_err(),
            "a call held on the killed replica cannot have answered"
        );
    }

    // The survivors take the dead replica's leases over once they expire.
    let mut takeovers = tokio::task::JoinSet::new();
    for (user, id) in doomed_connections {
        let bench = bench.clone();
        takeovers.spawn(async move {
            let bound = killed_at + TAKEOVER_BOUND;
            loop {
                let replica = bench.ring.pick();
                if bench.proxy(replica, &user, &id).await.is_ok() {
                    return killed_at.elapsed();
                }
                assert!(Instant::now() < bound, "no survivor took over {id}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
    }
    let mut takeover = Duration::ZERO;
    while let Some(done) = takeovers.join_next().await {
        takeover = takeover.max(done.unwrap());
    }
    while clients.join_next().await.is_some() {}

    // Every login that answered success is readable through the survivors.
    let connected = bench.tally.connected.lock().unwrap().clone();
    let mut lost = 0;
    for (user, id) in &connected {
        let replica = bench.ring.pick();
        let response = bench
            .http
            .get(format!(
                "{}/v1/accounts/{ACCOUNT}/users/{user}/connections/{id}",
                bench.ring.bases[replica]
            ))
            .bearer_auth(&bench.key)
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            lost += 1;
        }
    }

    let grants = bench.provider.stats().refresh_grants - grants_before;
    // One refresh per expired connection (the doomed ones included), plus
    // the doomed replica's requests whose answers died with it.
    let needed = (EXPIRED + DOOMED_LEASES) as u64;
    let lost_with_killed = DOOMED_LEASES as u64;
    let tally = &bench.tally;
    let count = |n: &AtomicUsize| n.load(Ordering::Relaxed);
    println!("backend: {}", host_backend());
    println!("requests: {} count", count(&tally.requests));
    println!("api_key_logins: {} count", count(&tally.api_key_logins));
    println!("oauth_logins: {} count", count(&tally.oauth_logins));
    println!("proxy_calls: {} count", count(&tally.proxy_calls));
    println!("successful_logins: {} count", connected.len());
    println!("lost_connections: {lost} count");
    println!(
        "duplicated_refreshes: {} count",
        grants.saturating_sub(needed + lost_with_killed)
    );
    println!("refreshes_lost_with_killed_replica: {lost_with_killed} count");
    println!(
        "errors_in_flight_on_killed_replica: {} count",
        count(&tally.errors_in_flight_on_killed)
    );
    println!("errors_elsewhere: {} count", count(&tally.errors_elsewhere));
    println!("lease_takeover: {} ms", takeover.as_millis());
    println!("run: {} ms", started.elapsed().as_millis());
    assert_eq!(lost, 0, "lost connections");
    assert_eq!(
        count(&tally.errors_elsewhere),
        0,
        "errors not explained by the kill"
    );
    assert!(
        grants >= needed,
        "fewer refreshes ({grants}) than expired connections ({needed})"
    );
}
