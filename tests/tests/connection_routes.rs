//! The routes that act on one stored connection beside validate and proxy:
//! `POST …/refresh` (the token refreshed now, single flight), the refresh
//! state in a connection's view, and `POST …/test` (the connector's
//! `test-connection`, Membrane `test`). An in-process host and the local
//! provider, both on 127.0.0.1.

use connector_test_support::harness::{API_KEY, Host, assert_no_secret_in_logs};
use connector_test_support::oauth;
use serde_json::{Value, json};

fn path(id: &str, suffix: &str) -> String {
    format!("/v1/accounts/acct-1/users/user-1/connections/{id}{suffix}")
}

async fn api_key_connection(host: &Host) -> String {
    let login = json!({
        "accountId": "acct-1", "userId": "user-1",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let (status, connection) = host
        .post("/v1/connectors/local-insightly/api-key/login", login)
        .await;
    assert_eq!(status, 200, "{connection}");
    connection["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forced_refresh_refreshes_a_valid_token_once_for_concurrent_callers() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    // A fresh login: valid for an hour, never refreshed, nothing failed.
    let (status, before) = host.get(&path(&id, "")).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        before["refresh"],
        json!({"lastRefreshedAt": null, "consecutiveFailures": 0, "nextAttemptAt": null, "lastError": null})
    );

    // Five callers force a refresh at once: one token request.
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let (http, url, key) = (
            host.http.clone(),
            format!("{}{}", host.base, path(&id, "/refresh")),
            host.service_key.clone(),
        );
        calls.spawn(async move {
            let response = http.post(url).bearer_auth(key).send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    while let Some(done) = calls.join_next().await {
        let (status, connection) = done.unwrap();
        assert_eq!(status, 200, "{connection}");
        assert!(
            connection["refresh"]["lastRefreshedAt"].is_i64(),
            "{connection}"
        );
        assert!(
            connection.get("accessToken").is_none(),
            "no secret in the view"
        );
    }
    assert_eq!(host.provider.stats().refresh_grants, 1, "single flight");
    let (_, after) = host.get(&path(&id, "")).await;
    assert!(after["expiresAt"].as_i64() >= before["expiresAt"].as_i64());

    // A failing provider: the forced refresh says so (502) although the old
    // token still works, and the view shows the failure and the next attempt.
    host.provider.fail_token_requests(1, 503);
    let (status, error) = host.post(&path(&id, "/refresh"), json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("provider_error")),
        "{error}"
    );
    let (_, failed) = host.get(&path(&id, "")).await;
    let refresh = &failed["refresh"];
    assert_eq!(refresh["consecutiveFailures"], 1, "{failed}");
    assert!(refresh["nextAttemptAt"].as_i64() > refresh["lastRefreshedAt"].as_i64());
    assert!(
        refresh["lastError"].as_str().unwrap().contains("503"),
        "{failed}"
    );
    assert_eq!(
        failed["status"], "active",
        "a transient failure keeps the tokens"
    );

    // The next forced refresh works again and clears the failure.
    let (status, recovered) = host.post(&path(&id, "/refresh"), json!({})).await;
    assert_eq!(status, 200, "{recovered}");
    assert_eq!(recovered["refresh"]["consecutiveFailures"], 0);
    assert_eq!(recovered["refresh"]["lastError"], Value::Null);
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_key_connections_have_no_token_to_refresh_and_no_refresh_state() {
    let host = Host::start().await;
    let id = api_key_connection(&host).await;
    let (_, view) = host.get(&path(&id, "")).await;
    assert!(view.get("refresh").is_none(), "{view}");
    let (status, error) = host.post(&path(&id, "/refresh"), json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("connection_not_usable")),
        "{error}"
    );
    assert_eq!(host.provider.stats().refresh_grants, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn test_runs_the_connectors_check_and_says_when_there_is_none() {
    let host = Host::start().await;
    // `local-insightly` implements `test-connection` (GET /v3.1/Users/Me with the key).
    let id = api_key_connection(&host).await;
    let before = host.audit.events().len();
    let (status, result) = host.post(&path(&id, "/test"), json!({})).await;
    assert_eq!(status, 200, "{result}");
    assert_eq!(
        result,
        json!({"successful": true, "message": "Connected to Insightly."})
    );
    let events = host.audit.events();
    assert!(
        events[before..]
            .iter()
            .any(|e| e.path.as_deref() == Some("/v3.1/Users/Me") && e.status == Some(200)),
        "the check reached the provider with the key injected"
    );

    // `local-regional` does not implement it: 501, named.
    let oauth_id = oauth::login(&host, "acct-1", "user-1").await;
    let (status, error) = host.post(&path(&oauth_id, "/test"), json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (501, Some("not_implemented")),
        "{error}"
    );

    // A logged-out connection is not tested.
    let (status, _) = host.post(&path(&id, "/logout"), json!({})).await;
    assert_eq!(status, 200);
    let (status, error) = host.post(&path(&id, "/test"), json!({})).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (409, Some("connection_not_usable")),
        "{error}"
    );
    assert_no_secret_in_logs();
}
