//! The routes that act on one stored connection beside validate and proxy:
//! `POST …/refresh` (the token refreshed now, single flight), the refresh
//! state in a connection's view, and `POST …/test` (the connector's
//! `test-connection`, Membrane `test`), and the refresh on a 401 for a token
//! the host believed valid, through the proxy and inside a hook. An
//! in-process host and the local provider, both on 127.0.0.1.

use connector_test_support::harness::{API_KEY, Host, assert_no_secret_in_logs};
use connector_test_support::oauth;

/// The OAuth client of `local-regional` at the local provider.
const REGIONAL: &str = "regional-public-client";
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
async fn a_forced_refresh_refreshes_a_valid_token_and_reports_a_failure() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    // A fresh login: valid for an hour, never refreshed, nothing failed.
    let (status, before) = host.get(&path(&id, "")).await;
    assert_eq!(status, 200, "{before}");
    assert_eq!(
        before["refresh"],
        json!({"lastRefreshedAt": null, "consecutiveFailures": 0, "nextAttemptAt": null})
    );

    // A valid token is refreshed when asked: one token request.
    let (status, connection) = host.post(&path(&id, "/refresh"), json!({})).await;
    assert_eq!(status, 200, "{connection}");
    assert!(
        connection["refresh"]["lastRefreshedAt"].is_i64(),
        "{connection}"
    );
    assert!(
        connection.get("accessToken").is_none(),
        "no secret in the view"
    );
    assert_eq!(host.provider.stats().refresh_grants, 1);
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
    // The provider's error text is not in the view: a token endpoint's
    // answer is neither bounded nor scrubbed (docs/SECURITY.md 6.2).
    assert!(refresh.get("lastError").is_none(), "{failed}");
    assert_eq!(
        failed["status"], "active",
        "a transient failure keeps the tokens"
    );

    // The next forced refresh works again and clears the failure.
    let (status, recovered) = host.post(&path(&id, "/refresh"), json!({})).await;
    assert_eq!(status, 200, "{recovered}");
    assert_eq!(recovered["refresh"]["consecutiveFailures"], 0);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_for_a_token_believed_valid_refreshes_once_and_retries_idempotent_requests() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    let old = host.access_token(&id).await;
    host.revoke_at_provider(REGIONAL, &old).await;

    // GET: 401 with the old token, one refresh, the same request again: 200.
    let me = json!({"method": "GET", "url": format!("{}/api/v1/me", host.api_url())});
    let before = host.audit.events().len();
    let (status, answer) = host.post(&path(&id, "/proxy"), me.clone()).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(host.provider.stats().refresh_grants, 1);
    let statuses: Vec<Option<u16>> = host.audit.events()[before..]
        .iter()
        .filter(|e| e.path.as_deref() == Some("/api/v1/me"))
        .map(|e| e.status)
        .collect();
    assert_eq!(
        statuses,
        [Some(401), Some(200)],
        "sent twice, the second with the new token"
    );
    assert_ne!(host.access_token(&id).await, old);

    // Concurrent callers refused with the same token share one refresh.
    host.revoke_at_provider(REGIONAL, &host.access_token(&id).await)
        .await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (http, url, key, body) = (
            host.http.clone(),
            format!("{}{}", host.base, path(&id, "/proxy")),
            host.service_key.clone(),
            me.clone(),
        );
        calls.spawn(async move {
            let response = http
                .post(url)
                .bearer_auth(key)
                .json(&body)
                .send()
                .await
                .unwrap();
            response.json::<Value>().await.unwrap()
        });
    }
    while let Some(answer) = calls.join_next().await {
        assert_eq!(answer.unwrap()["status"], 200);
    }
    assert_eq!(
        host.provider.stats().refresh_grants,
        2,
        "one more refresh for all four"
    );

    // A POST is not sent again: the caller gets the 401, the token is
    // refreshed for the next request. (A CRM on 127.0.0.1 that answers 401
    // to the token it saw first, and counts what it receives.)
    let first_token = host.access_token(&id).await;
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let crm = axum::Router::new().fallback(move |headers: axum::http::HeaderMap| {
        let log = log.clone();
        let first = format!("Bearer {first_token}");
        async move {
            let auth = headers["authorization"].to_str().unwrap().to_string();
            let refused = auth == first;
            log.lock().unwrap().push(auth);
            if refused {
                axum::http::StatusCode::UNAUTHORIZED
            } else {
                axum::http::StatusCode::CREATED
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let crm_url = format!("http://{}/records", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, crm).await.unwrap() });
    let create = json!({"method": "POST", "url": crm_url, "body": "{}"});
    let (status, answer) = host.post(&path(&id, "/proxy"), create.clone()).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(401)),
        "{answer}"
    );
    assert_eq!(seen.lock().unwrap().len(), 1, "a POST is sent once");
    assert_eq!(
        host.provider.stats().refresh_grants,
        3,
        "refreshed for the next call"
    );
    let (_, answer) = host.post(&path(&id, "/proxy"), create).await;
    assert_eq!(answer["status"], 201, "the next POST carries the new token");
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_whose_refresh_token_is_refused_means_re_auth() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    // The provider drops the whole grant: the access and the refresh token.
    let at = connector_server::store::ConnectionRef {
        account_id: "acct-1",
        user_id: "user-1",
        id: &id,
    };
    let (_, secrets) = host
        .connections
        .get_with_secrets(at)
        .await
        .unwrap()
        .unwrap();
    use secrecy::ExposeSecret as _;
    let refresh_token = secrets.refresh_token.unwrap().expose_secret().to_string();
    host.revoke_at_provider(REGIONAL, &refresh_token).await;
    host.revoke_at_provider(REGIONAL, &host.access_token(&id).await)
        .await;
    let me = json!({"method": "GET", "url": format!("{}/api/v1/me", host.api_url())});
    let (status, error) = host.post(&path(&id, "/proxy"), me).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_credentials")),
        "{error}"
    );
    let (_, view) = host.get(&path(&id, "")).await;
    assert_eq!(view["status"], "needs_reauth");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_inside_a_hook_renews_the_token_once_and_the_hook_succeeds() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    let me_statuses = |from: usize| -> Vec<Option<u16>> {
        host.audit.events()[from..]
            .iter()
            .filter(|e| e.path.as_deref() == Some("/api/v1/me"))
            .map(|e| e.status)
            .collect()
    };

    // The provider revokes the access token on its own: `auth-validation`
    // (GET /api/v1/me with the token injected) is answered 401, the host
    // refreshes once and sends the GET again: the hook sees the 200.
    let old = host.access_token(&id).await;
    host.revoke_at_provider(REGIONAL, &old).await;
    let before = host.audit.events().len();
    let (status, validation) = host.post(&path(&id, "/validate"), json!({})).await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(true)),
        "{validation}"
    );
    assert_eq!(me_statuses(before), [Some(401), Some(200)]);
    assert_eq!(host.provider.stats().refresh_grants, 1);
    assert_ne!(host.access_token(&id).await, old);
    let (_, view) = host.get(&path(&id, "")).await;
    assert_eq!(view["status"], "active", "{view}");

    // The same for `refresh-user-info`.
    host.revoke_at_provider(REGIONAL, &host.access_token(&id).await)
        .await;
    let before = host.audit.events().len();
    let (status, refreshed) = host.post(&path(&id, "/refresh-user-info"), json!({})).await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(me_statuses(before), [Some(401), Some(200)]);
    assert_eq!(host.provider.stats().refresh_grants, 2);

    // When the grant itself is gone the renewal fails: the hook gets the
    // provider's 401 (once: no second attempt), and validation marks the
    // connection as needing re-auth, as before.
    let at = connector_server::store::ConnectionRef {
        account_id: "acct-1",
        user_id: "user-1",
        id: &id,
    };
    let (_, secrets) = host
        .connections
        .get_with_secrets(at)
        .await
        .unwrap()
        .unwrap();
    use secrecy::ExposeSecret as _;
    host.revoke_at_provider(REGIONAL, secrets.refresh_token.unwrap().expose_secret())
        .await;
    host.revoke_at_provider(REGIONAL, &host.access_token(&id).await)
        .await;
    let before = host.audit.events().len();
    let (status, validation) = host.post(&path(&id, "/validate"), json!({})).await;
    assert_eq!(
        (status, validation["successful"].as_bool()),
        (200, Some(false)),
        "{validation}"
    );
    assert_eq!(me_statuses(before), [Some(401)], "sent once");
    let (_, view) = host.get(&path(&id, "")).await;
    assert_eq!(view["status"], "needs_reauth");
    assert_no_secret_in_logs();
}

/// A CRM on 127.0.0.1 that answers the n-th request (from 0) with
/// `answers[n]` (status, `Retry-After`), the last one for every later
/// request, and records the methods it received.
async fn crm(
    answers: Vec<(u16, Option<&'static str>)>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |method: axum::http::Method| {
        let (log, answers) = (log.clone(), answers.clone());
        async move {
            let n = {
                let mut log = log.lock().unwrap();
                log.push(method.to_string());
                log.len() - 1
            };
            let (status, retry_after) = answers[n.min(answers.len() - 1)];
            let mut response = axum::response::IntoResponse::into_response(
                axum::http::StatusCode::from_u16(status).unwrap(),
            );
            if let Some(value) = retry_after {
                response
                    .headers_mut()
                    .insert("retry-after", value.parse().unwrap());
            }
            response
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/records", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_retries_idempotent_requests_on_429_and_503_as_retry_after_says() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    let proxy = |method: &str, url: &str| json!({"method": method, "url": url});

    // 503 with `Retry-After: 1`, then 200: the caller sees the 200.
    let (url, seen) = crm(vec![(503, Some("1")), (200, None)]).await;
    let (status, answer) = host.post(&path(&id, "/proxy"), proxy("GET", &url)).await;
    assert_eq!(
        (status, answer["status"].as_u64()),
        (200, Some(200)),
        "{answer}"
    );
    assert_eq!(seen.lock().unwrap().len(), 2);

    // Always 429: two retries at most, then the provider's answer.
    let (url, seen) = crm(vec![(429, Some("0"))]).await;
    let (_, answer) = host.post(&path(&id, "/proxy"), proxy("PUT", &url)).await;
    assert_eq!(answer["status"], 429, "{answer}");
    assert_eq!(
        seen.lock().unwrap().len(),
        3,
        "the first attempt and two retries"
    );

    // A POST is never sent again; nor is a request whose provider asks for
    // longer than the host waits (an hour).
    let (url, seen) = crm(vec![(503, Some("0")), (200, None)]).await;
    let (_, answer) = host.post(&path(&id, "/proxy"), proxy("POST", &url)).await;
    assert_eq!(answer["status"], 503, "{answer}");
    assert_eq!(*seen.lock().unwrap(), ["POST"]);
    let (url, seen) = crm(vec![(503, Some("3600")), (200, None)]).await;
    let (_, answer) = host.post(&path(&id, "/proxy"), proxy("GET", &url)).await;
    assert_eq!(answer["status"], 503, "{answer}");
    assert_eq!(seen.lock().unwrap().len(), 1);
    // Every attempt is audited.
    let retried = host
        .audit
        .events()
        .iter()
        .filter(|e| e.path.as_deref() == Some("/records"))
        .count();
    assert_eq!(retried, 2 + 3 + 1 + 1);
}
