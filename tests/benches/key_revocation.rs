//! `key_revocation`: what keeping live API keys in memory saves per request,
//! and how long a revocation takes to reach another replica's memory.
//!
//! 1. The key check (`ApiKeyStore::authenticate`) answered from memory
//!    beside the same check reading the database (`api_key_cache_secs = 0`),
//!    on SQLite and, when `CONNECTOR_HOST_TEST_POSTGRES_URL` is set, on
//!    PostgreSQL (`api_key_check_*_p50`, µs).
//! 2. PostgreSQL only: two pools on one database stand for two replicas.
//!    Replica A keeps keys for five minutes; replica B revokes. The time from
//!    B's `revoke` returning until A refuses the key (`revocation_reaches_*`).
//!
//! Bounded: a fixed number of checks and of revocations (each wait for a
//! notice is capped at 10 s). Prints `name: value unit` lines.

use std::time::{Duration, Instant};

use connector_server::access::Role;
use connector_server::store::{ApiKeyStore, Database};
use connector_test_support::bench::{p50_us, percentile_us};
use connector_test_support::databases::sqlite_url;
use secrecy::ExposeSecret;

const CHECKS: usize = 2_000;
const REVOCATIONS: usize = 200;
const POSTGRES_ENV: &str = "CONNECTOR_HOST_TEST_POSTGRES_URL";

/// p50 of `CHECKS` key checks through `store`, in µs.
async fn check_p50(store: &ApiKeyStore, token: &str) -> f64 {
    let mut samples = Vec::with_capacity(CHECKS);
    for _ in 0..CHECKS {
        let started = Instant::now();
        let principal = store.authenticate(token).await.unwrap();
        samples.push(started.elapsed());
        assert!(principal.is_some(), "the key is live");
    }
    p50_us(&mut samples)
}

/// Waits until `database` hears change notices (its listener is up).
async fn until_live(database: &Database) {
    database.changes().start();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !database.changes().is_live() {
        assert!(Instant::now() < deadline, "the change feed never came up");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The key check from memory and from the database, on `database`.
async fn key_checks(backend: &str, database: &Database) {
    until_live(database).await;
    let cached = ApiKeyStore::with_cache_ttl(database.clone(), Duration::from_secs(300));
    let uncached = ApiKeyStore::with_cache_ttl(database.clone(), Duration::ZERO);
    let (_, secret) = cached
        .create("bench", Role::Service, &["acct-1".to_string()])
        .await
        .unwrap();
    let token = secret.expose_secret().to_string();
    let from_memory = check_p50(&cached, &token).await;
    let from_database = check_p50(&uncached, &token).await;
    println!("api_key_check_{backend}_memory_p50: {from_memory:.1} us");
    println!("api_key_check_{backend}_database_p50: {from_database:.1} us");
    println!(
        "api_key_check_{backend}_saved_p50: {:.1} us",
        from_database - from_memory
    );
}

/// How long a revocation through one pool takes to reach another pool's memory.
async fn propagation(url: &str) {
    let keeper = Database::connect(url).await.unwrap();
    let revoker = Database::connect(url).await.unwrap();
    until_live(&keeper).await;
    let kept = ApiKeyStore::with_cache_ttl(keeper, Duration::from_secs(300));
    let revoking = ApiKeyStore::new(revoker);
    let mut samples = Vec::with_capacity(REVOCATIONS);
    for n in 0..REVOCATIONS {
        let (record, secret) = revoking
            .create(
                &format!("revoked-{n}"),
                Role::Service,
                &["acct-1".to_string()],
            )
            .await
            .unwrap();
        let token = secret.expose_secret().to_string();
        assert!(kept.authenticate(&token).await.unwrap().is_some());
        assert!(revoking.revoke(&record.id).await.unwrap());
        let revoked = Instant::now();
        while kept.authenticate(&token).await.unwrap().is_some() {
            assert!(
                revoked.elapsed() < Duration::from_secs(10),
                "revocation {n} never reached the other pool"
            );
            tokio::task::yield_now().await;
        }
        samples.push(revoked.elapsed());
    }
    println!(
        "revocation_reaches_replica_p50: {:.2} ms",
        percentile_us(&mut samples, 0.5) / 1e3
    );
    println!(
        "revocation_reaches_replica_p99: {:.2} ms",
        percentile_us(&mut samples, 0.99) / 1e3
    );
    println!(
        "revocation_reaches_replica_max: {:.2} ms",
        percentile_us(&mut samples, 1.0) / 1e3
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = Database::connect(&sqlite_url(&dir.path().join("keys.db")))
        .await
        .unwrap();
    key_checks("sqlite", &sqlite).await;
    match std::env::var(POSTGRES_ENV) {
        Ok(server) => {
            let url = Database::fresh_postgres_for_tests(&server).await.unwrap();
            let postgres = Database::connect(&url).await.unwrap();
            key_checks("postgres", &postgres).await;
            propagation(&url).await;
        }
        Err(_) => println!("revocation_reaches_replica: skipped (set {POSTGRES_ENV})"),
    }
}
