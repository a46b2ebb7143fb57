//! The token lifecycle through the HTTP API: the proxy and credentials routes
//! refresh first when a token is within the refresh margin, one refresh per
//! connection however many callers (single flight with a database lease),
//! `noRefreshToken`, a missing refresh token in the answer, `invalid_grant`,
//! transient failures and recovery, a dead lease holder, the background
//! refresher, and the events they publish.

use std::sync::{Arc, Mutex};

use connector_authoring::dev_provider::TokenHold;
use connector_server::access::Role;
use connector_server::flows::RefresherSettings;
use connector_server::store::LeaseStore;
use connector_test_support::harness::{Host, Options};
use connector_test_support::oauth;
use connector_test_support::webhooks::host_with_receiver;
use serde_json::{Value, json};

/// Logs `user` of `acct-1` in through `local-regional`; returns the connection id.
async fn login(host: &Host, user: &str) -> String {
    oauth::login(host, "acct-1", user).await
}

fn path(user: &str, id: &str, suffix: &str) -> String {
    format!("/v1/accounts/acct-1/users/{user}/connections/{id}/{suffix}")
}

/// `GET /api/v1/me` at the provider through the proxy.
async fn proxy_me(host: &Host, user: &str, id: &str) -> (u16, Value) {
    host.post(
        &path(user, id, "proxy"),
        json!({"method": "GET", "url": format!("{}/api/v1/me", host.api_url())}),
    )
    .await
}

/// Starts a proxy call of `user-1` on connection `id` whose refresh reaches
/// the provider, which spends the refresh token, mints new ones and holds
/// its answer; returns once the answer is held.
async fn proxy_with_held_token_answer(
    host: &Arc<Host>,
    id: &str,
) -> (TokenHold, tokio::task::JoinHandle<(u16, Value)>) {
    let hold = host.provider.hold_token_answers();
    let caller = {
        let (host, id) = (host.clone(), id.to_string());
        tokio::spawn(async move { proxy_me(&host, "user-1", &id).await })
    };
    hold.arrived().await;
    (hold, caller)
}

async fn expire(host: &Host, id: &str, in_secs: i64) {
    let at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        + in_secs;
    host.database
        .set_connection_expiry_for_tests(id, at)
        .await
        .unwrap();
}

async fn status_of(host: &Host, user: &str, id: &str) -> Value {
    let (_, connection) = host
        .get(&format!(
            "/v1/accounts/acct-1/users/{user}/connections/{id}"
        ))
        .await;
    connection["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_concurrent_proxy_calls_on_an_expired_token_make_one_refresh() {
    let host = Arc::new(Host::start().await);
    let id = login(&host, "user-1").await;
    expire(&host, &id, -60).await;
    assert_eq!(host.provider.stats().refresh_grants, 0);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let (host, id) = (host.clone(), id.clone());
        calls.spawn(async move { proxy_me(&host, "user-1", &id).await });
    }
    let mut ok = 0;
    while let Some(done) = calls.join_next().await {
        let (status, answer) = done.unwrap();
        assert_eq!(
            (status, answer["status"].as_u64()),
            (200, Some(200)),
            "{answer}"
        );
        assert!(answer["body"].as_str().unwrap().contains("Ada Lovelace"));
        ok += 1;
    }
    assert_eq!(ok, 100);
    let stats = host.provider.stats();
    assert_eq!(stats.refresh_grants, 1, "exactly one token request");
    assert_eq!(stats.token_errors, 0, "no spent refresh token was replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_margin_decides_and_a_missing_refresh_token_keeps_the_old_one() {
    let host = Host::start().await;
    let id = login(&host, "user-1").await;
    // Beyond the margin (300 s): used as is.
    expire(&host, &id, 900).await;
    assert_eq!(proxy_me(&host, "user-1", &id).await.0, 200);
    assert_eq!(host.provider.stats().refresh_grants, 0);
    // Within the margin, not yet expired: refreshed first.
    expire(&host, &id, 120).await;
    assert_eq!(proxy_me(&host, "user-1", &id).await.0, 200);
    assert_eq!(host.provider.stats().refresh_grants, 1);
    // A provider that sends no new refresh token: the stored one is kept and
    // works again next time.
    host.provider.set_rotate_refresh_tokens(false);
    for expected in [2, 3] {
        expire(&host, &id, -1).await;
        let (status, answer) = proxy_me(&host, "user-1", &id).await;
        assert_eq!(
            (status, answer["status"].as_u64()),
            (200, Some(200)),
            "{answer}"
        );
        assert_eq!(host.provider.stats().refresh_grants, expected);
    }
    assert_eq!(host.provider.stats().token_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_failures_keep_the_tokens_and_recover_with_events() {
    let (host, hooks) = host_with_receiver().await;
    let id = login(&host, "user-1").await;
    assert_eq!(hooks.received(&host).await, ["connection.created"]);

    // Within the margin: the refresh fails (503), the still-valid token is used.
    expire(&host, &id, 120).await;
    host.provider.fail_token_requests(1, 503);
    let (status, answer) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    // Expired and the provider still down: a 502, the tokens are kept.
    expire(&host, &id, -1).await;
    host.provider.fail_token_requests(1, 502);
    let (status, error) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("provider_error")),
        "{error}"
    );
    assert_eq!(status_of(&host, "user-1", &id).await, "active");
    let at = connector_server::store::ConnectionRef {
        account_id: "acct-1",
        user_id: "user-1",
        id: &id,
    };
    let (failures, retry_at) = host.connections.refresh_state(at).await.unwrap();
    assert_eq!(failures, 2);
    assert!(retry_at.is_some(), "the background refresher cools down");
    // The provider is back: the same refresh token still works.
    let (status, answer) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(host.connections.refresh_state(at).await.unwrap().0, 0);
    assert_eq!(host.provider.stats().refresh_grants, 1);
    // (Deliveries of one pass run concurrently: compare as a set with counts.)
    let mut received = hooks.received(&host).await;
    received.sort();
    assert_eq!(
        received,
        [
            "connection.created",
            "connection.recovered",
            "connection.refresh_failed",
            "connection.refresh_failed"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_grant_and_no_refresh_token_mean_re_auth() {
    let (host, hooks) = host_with_receiver().await;
    let id = login(&host, "user-1").await;
    // Someone else spent the refresh token (a stale copy is put back).
    let stale = host
        .database
        .secret_column_for_tests(&id, "refresh_token")
        .await
        .unwrap();
    expire(&host, &id, -1).await;
    assert_eq!(proxy_me(&host, "user-1", &id).await.0, 200);
    host.database
        .set_secret_column_for_tests(&id, "refresh_token", stale)
        .await
        .unwrap();
    expire(&host, &id, -1).await;
    let (status, error) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_credentials")),
        "{error}"
    );
    assert_eq!(status_of(&host, "user-1", &id).await, "needs_reauth");
    let (status, error) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("connection_not_usable"))
    );

    // `noRefreshToken`: an expired token is never handed out.
    let (started, callback) = host.authorize_with("test-oauth-basic", "acct-1", "").await;
    assert!(started["authorizeUrl"].is_string());
    let (status, connected) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(status, 200, "{connected}");
    let basic = connected["connection"]["id"].as_str().unwrap().to_string();
    expire(&host, &basic, -1).await;
    let grants = host.provider.stats().refresh_grants;
    let (status, _) = proxy_me(&host, "user-1", &basic).await;
    assert_eq!(status, 409);
    assert_eq!(
        host.provider.stats().refresh_grants,
        grants,
        "no refresh attempted"
    );
    assert_eq!(status_of(&host, "user-1", &basic).await, "needs_reauth");
    let mut received = hooks.received(&host).await;
    received.sort();
    assert_eq!(
        received,
        [
            "connection.created",
            "connection.created",
            "connection.needs_reauth",
            "connection.needs_reauth"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_lease_holder_releases_by_expiry_and_no_token_is_lost() {
    let host = Host::with(Options {
        lease_ttl_ms: Some(5_000),
        ..Options::default()
    })
    .await;
    let id = login(&host, "user-1").await;
    expire(&host, &id, -1).await;
    // Another replica took the lease, then died before refreshing.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    host.database
        .hold_lease_for_tests(&id, "dead-replica", now_ms + 1_500)
        .await
        .unwrap();
    let (status, answer) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(
        host.provider.stats().refresh_grants,
        1,
        "refreshed once the lease expired"
    );
    // Nothing was lost: the rotated refresh token works for the next refresh.
    expire(&host, &id, -1).await;
    assert_eq!(proxy_me(&host, "user-1", &id).await.0, 200);
    assert_eq!(host.provider.stats().refresh_grants, 2);
    assert_eq!(host.provider.stats().token_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_never_waits_past_the_bound_for_a_dead_holder() {
    // `[refresh] max_wait_ms = 300`, leases of 2 s.
    let host = Host::with(Options {
        lease_ttl_ms: Some(2_000),
        refresh_max_wait_ms: Some(300),
        ..Options::default()
    })
    .await;
    let id = login(&host, "user-1").await;
    expire(&host, &id, -1).await;
    // A replica took the lease a moment ago and was killed: the lease stays
    // until it expires, a minute from now, longer than any caller may wait.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    host.database
        .hold_lease_for_tests(&id, "killed-replica", now_ms + 60_000)
        .await
        .unwrap();
    let response = host
        .http
        .post(format!("{}{}", host.base, path("user-1", &id, "proxy")))
        .bearer_auth(&host.service_key)
        .json(&json!({"method": "GET", "url": format!("{}/api/v1/me", host.api_url())}))
        .send()
        .await
        .unwrap();
    // A clear, retryable answer instead of a hang: 503, `Retry-After` of
    // one lease lifetime, and nothing sent to the provider.
    assert_eq!(response.status(), 503);
    assert_eq!(
        response.headers()["retry-after"].to_str().unwrap(),
        "2",
        "one lease lifetime"
    );
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["code"], "refresh_busy", "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("retry in 2 s"),
        "{error}"
    );
    assert_eq!(host.provider.stats().refresh_grants, 0);
    // Once the dead holder's lease is gone, the next caller refreshes.
    host.database
        .hold_lease_for_tests(&id, "killed-replica", now_ms - 1)
        .await
        .unwrap();
    let (status, answer) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(host.provider.stats().refresh_grants, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_that_goes_away_mid_refresh_loses_no_token() {
    let host = Arc::new(
        Host::with(Options {
            lease_ttl_ms: Some(5_000),
            ..Options::default()
        })
        .await,
    );
    let id = login(&host, "user-1").await;
    expire(&host, &id, -1).await;
    // The provider spends the refresh token, mints new ones, and holds its
    // answer; meanwhile the platform's HTTP client gives up on the proxy call.
    let (hold, caller) = proxy_with_held_token_answer(&host, &id).await;
    caller.abort();
    assert!(caller.await.unwrap_err().is_cancelled());
    hold.release();
    // The refresh went on without its caller and committed the rotated
    // tokens: the next call uses them, and the refresh after that works.
    let (status, answer) = proxy_me(&host, "user-1", &id).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(host.provider.stats().refresh_grants, 1);
    expire(&host, &id, -1).await;
    assert_eq!(proxy_me(&host, "user-1", &id).await.0, 200);
    let stats = host.provider.stats();
    assert_eq!(stats.refresh_grants, 2);
    assert_eq!(stats.token_errors, 0, "no spent refresh token was replayed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_longer_than_its_lease_keeps_it() {
    const TTL_MS: i64 = 1_500;
    let host = Arc::new(
        Host::with(Options {
            lease_ttl_ms: Some(TTL_MS),
            ..Options::default()
        })
        .await,
    );
    let id = login(&host, "user-1").await;
    expire(&host, &id, -1).await;
    let (hold, caller) = proxy_with_held_token_answer(&host, &id).await;
    // The token request outlasts the lease several times over; another
    // replica never gets the lease meanwhile, because the holder renews it.
    let leases = LeaseStore::new(host.database.clone());
    let (_, first_expiry) = leases.holder(&id).await.unwrap().unwrap();
    let mut checks = 0;
    loop {
        assert!(
            !leases
                .try_acquire(&id, "other-replica", TTL_MS)
                .await
                .unwrap(),
            "the lease was free while the refresh ran"
        );
        let (_, expiry) = leases.holder(&id).await.unwrap().unwrap();
        if expiry > first_expiry + 2 * TTL_MS {
            break; // renewed well past its first expiry
        }
        checks += 1;
        assert!(checks < 100, "the lease was not renewed");
        tokio::time::sleep(std::time::Duration::from_millis(TTL_MS as u64 / 4)).await;
    }
    hold.release();
    let (status, answer) = caller.await.unwrap();
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert!(leases.holder(&id).await.unwrap().is_none(), "released");
    assert_eq!(host.provider.stats().refresh_grants, 1);
    assert_eq!(host.provider.stats().token_errors, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_background_refresher_refreshes_due_connections_once() {
    let host = Host::start().await;
    let mut ids = Vec::new();
    for n in 0..12 {
        let id = login(&host, &format!("user-{n}")).await;
        expire(&host, &id, if n < 8 { -5 } else { 3600 }).await;
        ids.push(id);
    }
    let settings = RefresherSettings {
        batch: 3,
        concurrency: 2,
        ..RefresherSettings::default()
    };
    let run = host.flows.refresh_due(settings).await.unwrap();
    assert_eq!((run.due, run.refreshed, run.failed), (8, 8, 0), "{run:?}");
    assert_eq!(host.provider.stats().refresh_grants, 8);
    let again = host.flows.refresh_due(settings).await.unwrap();
    assert_eq!(again.due, 0, "nothing left due");
    // A failing provider: counted, cooled down, not retried in the same pass.
    expire(&host, &ids[0], -5).await;
    host.provider.fail_token_requests(1, 503);
    let run = host.flows.refresh_due(settings).await.unwrap();
    assert_eq!((run.due, run.failed), (1, 1), "{run:?}");
    let cooling = host.flows.refresh_due(settings).await.unwrap();
    assert_eq!(cooling.due, 0, "cooling down after a failure");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_credentials_only_for_trusted_keys_and_the_proxy_stays_in_allowed_hosts() {
    let host = Host::start().await;
    let id = login(&host, "user-1").await;
    let credentials = path("user-1", &id, "credentials");
    let (status, error) = host.get(&credentials).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (403, Some("forbidden")),
        "{error}"
    );
    let (_, secret) = host
        .api_keys
        .create_with("trusted", Role::Service, &["acct-1".to_string()], true)
        .await
        .unwrap();
    let trusted = secrecy::ExposeSecret::expose_secret(&secret).to_string();
    expire(&host, &id, -1).await;
    let response = host
        .http
        .get(format!("{}{credentials}", host.base))
        .bearer_auth(&trusted)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let raw: Value = response.json().await.unwrap();
    assert_eq!(
        host.provider.stats().refresh_grants,
        1,
        "refreshed before handing out"
    );
    let token = raw["accessToken"].as_str().unwrap();
    let me = host
        .http
        .get(format!("{}/api/v1/me", host.api_url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status().as_u16(), 200, "the token works at the provider");

    // The proxy only goes where the connector may go, and refuses credential headers.
    let (status, error) = host
        .post(
            &path("user-1", &id, "proxy"),
            json!({"method": "GET", "url": "https://attacker.example.net/steal"}),
        )
        .await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("url")),
        "{error}"
    );
    let (status, _) = host
        .post(
            &path("user-1", &id, "proxy"),
            json!({"method": "GET", "url": format!("{}/api/v1/me", host.api_url()),
                   "headers": [["authorization", "Bearer mine"]]}),
        )
        .await;
    assert_eq!(status, 400);
    let (status, error) = host
        .post(
            &path("user-1", &id, "proxy"),
            json!({"method": "TRACE", "url": format!("{}/api/v1/me", host.api_url())}),
        )
        .await;
    assert_eq!((status, error["field"].as_str()), (400, Some("method")));
    let refused = host
        .audit
        .events()
        .into_iter()
        .filter(|e| {
            e.reason
                .as_deref()
                .is_some_and(|r| r.contains("attacker.example.net"))
        })
        .count();
    assert_eq!(refused, 1, "the refused request is audited");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_refresh_hook_moves_the_endpoint_and_the_token_fields() {
    // A token endpoint that nests its answer: {"data": {"token", "refresh", "ttl"}}.
    let seen = Arc::new(Mutex::new(
        Vec::<std::collections::BTreeMap<String, String>>::new(),
    ));
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/custom/token",
        axum::routing::post(
            move |axum::extract::Form(form): axum::extract::Form<
                std::collections::BTreeMap<String, String>,
            >| {
                let record = record.clone();
                async move {
                    let n = {
                        let mut seen = record.lock().unwrap();
                        seen.push(form);
                        seen.len()
                    };
                    axum::Json(json!({"data": {
                        "token": format!("nested-access-{n}"),
                        "refresh": format!("nested-refresh-{n}"),
                        "ttl": "3600"
                    }}))
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/custom/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let host = Host::with(Options {
        refresh_paths_url: Some(url),
        ..Options::default()
    })
    .await;
    let (_, callback) = host
        .authorize_with("test-refresh-paths", "acct-1", "")
        .await;
    let (status, connected) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(status, 200, "{connected}");
    let id = connected["connection"]["id"].as_str().unwrap().to_string();
    let (_, secret) = host
        .api_keys
        .create_with("trusted", Role::Service, &["acct-1".to_string()], true)
        .await
        .unwrap();
    let trusted = secrecy::ExposeSecret::expose_secret(&secret).to_string();
    for n in 1..=2 {
        expire(&host, &id, -1).await;
        let credentials = format!("{}{}", host.base, path("user-1", &id, "credentials"));
        let raw = oauth::get_json(&host.http, &credentials, &trusted).await;
        assert_eq!(raw["accessToken"], format!("nested-access-{n}"), "{raw}");
        assert!(raw["expiresAt"].as_i64().unwrap() > 0);
    }
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0]["grant_type"], "refresh_token");
    assert_eq!(seen[0]["audience"], "crm-api", "extra params");
    assert_eq!(
        seen[0]["client_id"], "paths-client",
        "client auth in the body"
    );
    assert_eq!(
        seen[1]["refresh_token"], "nested-refresh-1",
        "the refresh token was read from its custom path"
    );
}
