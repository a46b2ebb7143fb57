//! The background validation of connections no token expiry checks (API
//! keys, OAuth connections without `expiresAt`): the connector's
//! `auth-validation` runs on those not validated for an interval, a refusal
//! marks the connection `needs_reauth` with its webhook event, a pass is
//! bounded, and concurrent passes (replicas) never validate one connection
//! twice in an interval.

use connector_server::flows::ValidationSettings;
use connector_test_support::harness::{API_KEY, Host};
use connector_test_support::oauth;
use connector_test_support::webhooks::host_with_receiver;
use serde_json::{Value, json};

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// A daily validation, as configured by default, bounded to `max_per_pass`.
fn settings(max_per_pass: u32) -> ValidationSettings {
    ValidationSettings {
        interval_secs: 86_400,
        max_per_pass,
        concurrency: 2,
        ..ValidationSettings::default()
    }
}

/// An API-key login of `user` of `acct-1` through `local-insightly`.
async fn key_login(host: &Host, user: &str) -> String {
    let login = json!({
        "accountId": "acct-1", "userId": user,
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let (status, connection) = host
        .post("/v1/connectors/local-insightly/api-key/login", login)
        .await;
    assert_eq!(status, 200, "{connection}");
    connection["id"].as_str().unwrap().to_string()
}

async fn connection(host: &Host, user: &str, id: &str) -> Value {
    let (status, connection) = host
        .get(&format!(
            "/v1/accounts/acct-1/users/{user}/connections/{id}"
        ))
        .await;
    assert_eq!(status, 200, "{connection}");
    connection
}

/// Makes a connection look created (and, if it was, validated) two days ago.
async fn age(host: &Host, id: &str) {
    host.database
        .age_connection_for_tests(id, now() - 2 * 86_400)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_key_is_marked_for_reauth_and_connections_with_an_expiry_are_left_alone() {
    let (host, hooks) = host_with_receiver().await;
    let key = key_login(&host, "user-1").await;
    host.provider.set_omit_expires_in(true);
    let no_expiry = oauth::login(&host, "acct-1", "user-2").await;
    host.provider.set_omit_expires_in(false);
    let expiring = oauth::login(&host, "acct-1", "user-3").await;
    assert_eq!(
        connection(&host, "user-2", &no_expiry).await["expiresAt"],
        Value::Null
    );
    assert!(connection(&host, "user-3", &expiring).await["expiresAt"].is_i64());

    // Just created: nothing is due yet.
    let run = host.flows.validate_due(&settings(10)).await.unwrap();
    assert_eq!(run.due, 0, "{run:?}");

    for id in [&key, &no_expiry, &expiring] {
        age(&host, id).await;
    }
    host.provider.revoke_api_key(API_KEY);
    let before = host.provider.stats().userinfo_requests;
    let run = host.flows.validate_due(&settings(10)).await.unwrap();
    assert_eq!(
        (run.due, run.claimed, run.valid, run.rejected, run.failed),
        (2, 2, 1, 1, 0),
        "{run:?}"
    );
    assert_eq!(
        host.provider.stats().userinfo_requests - before,
        2,
        "the key and the OAuth connection without expiry were checked, nothing else"
    );
    assert_eq!(
        connection(&host, "user-1", &key).await["status"],
        "needs_reauth"
    );
    assert_eq!(
        connection(&host, "user-2", &no_expiry).await["status"],
        "active"
    );
    let events = hooks.events(&host).await;
    let reauth: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "connection.needs_reauth")
        .collect();
    assert_eq!(reauth.len(), 1, "{events:?}");
    assert_eq!(reauth[0]["connection"]["id"], key.as_str(), "{events:?}");

    // Validated now: not due again within the interval.
    let run = host.flows.validate_due(&settings(10)).await.unwrap();
    assert_eq!(run.due, 0, "{run:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_are_bounded_and_concurrent_passes_never_validate_a_connection_twice() {
    let host = Host::start().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        let id = key_login(&host, &format!("user-{n}")).await;
        age(&host, &id).await;
        ids.push(id);
    }
    let before = host.provider.stats().userinfo_requests;
    // Two passes at once, as two replicas would run them, each bounded to 3.
    let three = settings(3);
    let (a, b) = tokio::join!(
        host.flows.validate_due(&three),
        host.flows.validate_due(&three)
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.due <= 3 && b.due <= 3, "{a:?} {b:?}");
    let mut claimed = a.claimed + b.claimed;
    loop {
        let run = host.flows.validate_due(&settings(3)).await.unwrap();
        assert!(run.due <= 3, "{run:?}");
        if run.due == 0 {
            break;
        }
        claimed += run.claimed;
    }
    assert_eq!(claimed, 5, "each connection validated once");
    assert_eq!(
        host.provider.stats().userinfo_requests - before,
        5,
        "one auth-validation request per connection"
    );

    // The claim itself: one of two claims for the same interval wins.
    let id = &ids[0];
    age(&host, id).await;
    let at = connector_server::store::ConnectionRef {
        account_id: "acct-1",
        user_id: "user-0",
        id,
    };
    let cutoff = now() - 86_400;
    assert!(
        host.connections
            .claim_validation(at, cutoff, now())
            .await
            .unwrap()
    );
    assert!(
        !host
            .connections
            .claim_validation(at, cutoff, now())
            .await
            .unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn validating_through_the_route_postpones_the_background_validation() {
    let host = Host::start().await;
    let id = key_login(&host, "user-1").await;
    age(&host, &id).await;
    let (status, validated) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/validate"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{validated}");
    let run = host.flows.validate_due(&settings(10)).await.unwrap();
    assert_eq!(run.due, 0, "validated by the route just now: {run:?}");
}
