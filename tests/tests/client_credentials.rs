//! OAuth 2.0 client-credentials connections (RFC 6749 §4.4; Nango
//! `OAUTH2_CC`, Membrane client credentials), end to end through the HTTP API
//! against the local provider, which accepts the grant strictly (one
//! client-authentication method, the right client, the scope echoed):
//! `test-client-credentials` declares `grantType: client_credentials`; the host
//! obtains the token with no user redirect, uses it through the proxy, and
//! renews it with a new grant — when it expires (one token request for many
//! callers), when asked (`POST …/refresh`), in the background, and after a
//! 401 for a token it believed valid (JSON and pass-through proxy). A wrong
//! client secret saves nothing, and no secret reaches an API answer.

use std::sync::Arc;

use connector_server::flows::RefresherSettings;
use connector_test_support::harness::{
    CLIENT_SECRET, Host, Options, assert_no_secret_in_logs, captured_logs,
};
use serde_json::{Value, json};

const CONNECTOR: &str = "test-client-credentials";

/// `POST /v1/connectors/{connector}/oauth/client-credentials` for `user-1` of `acct-1`.
async fn connect(host: &Host, connector: &str) -> (u16, Value) {
    host.post(
        &format!("/v1/connectors/{connector}/oauth/client-credentials"),
        json!({"accountId": "acct-1", "userId": "user-1"}),
    )
    .await
}

fn path(id: &str, suffix: &str) -> String {
    format!("/v1/accounts/acct-1/users/user-1/connections/{id}{suffix}")
}

/// The provider's `/api/v1/me` through the connection: the status of the
/// route and the provider's status.
async fn proxy_me(host: &Host, id: &str) -> (u16, Option<u64>) {
    let url = format!("{}/api/v1/me", host.api_url());
    let (status, answer) = host
        .post(&path(id, "/proxy"), json!({"method": "GET", "url": url}))
        .await;
    (status, answer["status"].as_u64())
}

/// Makes the connection's token expired, as if time had passed.
async fn expire(host: &Host, id: &str) {
    let past = connector_server::store::unix_seconds() - 60;
    host.database
        .set_connection_expiry_for_tests(id, past)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_connection_is_created_without_a_redirect_and_renewed_by_a_new_grant() {
    let host = Arc::new(Host::start().await);

    // The auth page says which grant; there is no authorize URL to show.
    let (status, page) = host
        .get(&format!("/v1/connectors/{CONNECTOR}/auth-page"))
        .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["oauth"]["grantType"], "client_credentials", "{page}");
    assert!(page["oauth"].get("authUrl").is_none(), "{page}");

    // One request, no redirect: the host obtained the token itself.
    let (status, connection) = connect(&host, CONNECTOR).await;
    assert_eq!(status, 200, "{connection}");
    assert_eq!(connection["authType"], "oauth");
    assert_eq!(connection["status"], "active");
    assert_eq!(
        (
            connection["hasAccessToken"].as_bool(),
            connection["hasRefreshToken"].as_bool()
        ),
        (Some(true), Some(false)),
        "{connection}"
    );
    assert!(connection["expiresAt"].is_i64(), "{connection}");
    assert_eq!(connection["userName"], "Ada Lovelace", "user-info ran");
    // The manifest's scope was asked for, and the provider's echo kept.
    assert!(
        connection["additionalInfo"]
            .as_array()
            .unwrap()
            .contains(&json!(["granted_scope", "reports.read reports.write"])),
        "{connection}"
    );
    let stats = host.provider.stats();
    assert_eq!(
        (
            stats.client_credentials_grants,
            stats.authorization_code_grants,
            stats.client_auth_header,
            stats.client_auth_two_methods,
            stats.token_errors,
        ),
        (1, 0, 1, 0, 0),
        "one grant, HTTP Basic only: {stats:?}"
    );
    let id = connection["id"].as_str().unwrap().to_string();

    // Used through the proxy with the token the host holds.
    assert_eq!(proxy_me(&host, &id).await, (200, Some(200)));

    // Asked for: a new grant now, though the token is valid.
    let (status, forced) = host.post(&path(&id, "/refresh"), json!({})).await;
    assert_eq!(status, 200, "{forced}");
    assert!(forced["refresh"]["lastRefreshedAt"].is_i64(), "{forced}");
    assert_eq!(forced["hasRefreshToken"], false);
    assert_eq!(host.provider.stats().client_credentials_grants, 2);
    assert_eq!(host.provider.stats().refresh_grants, 0);

    // Expired: twenty callers at once share one new grant, and all succeed.
    expire(&host, &id).await;
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (host, id) = (host.clone(), id.clone());
        calls.spawn(async move { proxy_me(&host, &id).await });
    }
    while let Some(done) = calls.join_next().await {
        assert_eq!(done.unwrap(), (200, Some(200)));
    }
    let stats = host.provider.stats();
    assert_eq!(
        stats.client_credentials_grants, 3,
        "exactly one token request"
    );
    assert_eq!(stats.token_errors, 0);
    let (_, renewed) = host.get(&path(&id, "")).await;
    assert!(renewed["expiresAt"].as_i64() > Some(connector_server::store::unix_seconds()));

    // The background refresher renews due client-credentials connections too.
    expire(&host, &id).await;
    let run = host
        .flows
        .refresh_due(RefresherSettings::default())
        .await
        .unwrap();
    assert_eq!((run.due, run.refreshed, run.failed), (1, 1, 0), "{run:?}");
    assert_eq!(host.provider.stats().client_credentials_grants, 4);
    assert_eq!(proxy_me(&host, &id).await, (200, Some(200)));
    assert_eq!(host.provider.stats().client_credentials_grants, 4);

    // Every token request is in the outbound audit under its own name.
    let grants = host
        .audit
        .events()
        .into_iter()
        .filter(|e| format!("{e:?}").contains("client-credentials grant"))
        .count();
    assert_eq!(grants, 4);

    // Logging out clears the token like any connection's.
    let (status, out) = host.post(&path(&id, "/logout"), json!({})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["connection"]["status"], "revoked");
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_client_secret_is_a_clear_error_and_saves_nothing() {
    const WRONG: &str = "cs-not-the-providers-secret";
    let host = Host::with(Options {
        client_credentials_secret: Some(WRONG),
        ..Options::default()
    })
    .await;
    let response = host
        .http
        .post(format!(
            "{}/v1/connectors/{CONNECTOR}/oauth/client-credentials",
            host.base
        ))
        .bearer_auth(&host.service_key)
        .json(&json!({"accountId": "acct-1", "userId": "user-1"}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert!(
        !text.contains(WRONG) && !text.contains(CLIENT_SECRET),
        "{text}"
    );
    let error: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("token_exchange_failed")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("invalid_client"),
        "{error}"
    );
    let stats = host.provider.stats();
    assert_eq!(
        (stats.client_credentials_grants, stats.token_errors),
        (0, 1)
    );
    let (status, connections) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!((status, connections), (200, json!([])), "nothing was saved");
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(!logs.contains(WRONG), "the secret appeared in the logs");
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_grant_has_its_own_route() {
    let host = Host::start().await;
    // No authorize URL for a client-credentials connector.
    let (status, error) = host
        .post(
            &format!("/v1/connectors/{CONNECTOR}/oauth/start"),
            json!({"accountId": "acct-1", "userId": "user-1"}),
        )
        .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("wrong_auth_type")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("oauth/client-credentials"),
        "{error}"
    );
    // Neither an authorization-code nor an API-key connector connects
    // without its user.
    for other in ["local-regional", "local-insightly"] {
        let (status, error) = connect(&host, other).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (400, Some("wrong_auth_type")),
            "{other}: {error}"
        );
    }
    let (status, error) = connect(&host, "no-such-connector").await;
    assert_eq!(
        (status, error["code"].as_str()),
        (404, Some("unknown_connector"))
    );
    let stats = host.provider.stats();
    assert_eq!(
        (stats.client_credentials_grants, stats.token_errors),
        (0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_for_a_token_believed_valid_gets_a_new_grant_and_one_retry() {
    let host = Host::start().await;
    let (status, connection) = connect(&host, CONNECTOR).await;
    assert_eq!(status, 200, "{connection}");
    let id = connection["id"].as_str().unwrap().to_string();

    // JSON proxy: 401 with the revoked token, a new grant, the GET again.
    let old = host.access_token(&id).await;
    host.revoke_at_provider("cc-client", &old).await;
    assert_eq!(proxy_me(&host, &id).await, (200, Some(200)));
    assert_eq!(host.provider.stats().client_credentials_grants, 2);
    assert_ne!(host.access_token(&id).await, old);

    // Pass-through proxy: the same.
    host.revoke_at_provider("cc-client", &host.access_token(&id).await)
        .await;
    let response = host
        .http
        .get(format!("{}{}", host.base, path(&id, "/proxy/api/v1/me")))
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", host.api_url())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    assert!(text.contains("Ada Lovelace"), "{text}");
    let stats = host.provider.stats();
    assert_eq!(
        (stats.client_credentials_grants, stats.refresh_grants),
        (3, 0)
    );
    assert_no_secret_in_logs();
}
