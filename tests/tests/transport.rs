//! Transport rules of issue 14 item 8 through the whole host: with `[network]
//! require_https` on (the default of `serve`), no credential goes to a plain
//! `http` provider — not the host's own code exchange, refresh or revocation,
//! and no connector or proxy request with an injected credential — and every
//! refusal is audited with its destination before anything is sent. The
//! provider is the local test provider, plain http on 127.0.0.1. (The
//! per-request rules, and host-secret purposes, are in `outbound.rs`.)

use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome};
use connector_server::store::{ConnectionSecrets, NewConnection};
use connector_test_support::harness::{API_KEY, Host, Options};
use secrecy::SecretString;
use serde_json::json;

async fn https_required() -> Host {
    Host::with(Options {
        require_https: true,
        ..Options::default()
    })
    .await
}

/// The one refused audit event at `path`, which must name the local provider
/// and the setting.
fn refused_at(host: &Host, path: &str) -> AuditEvent {
    let events: Vec<AuditEvent> = host
        .audit
        .events()
        .into_iter()
        .filter(|e| e.path.as_deref() == Some(path))
        .collect();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = events.into_iter().next().unwrap();
    assert_eq!(event.outcome, AuditOutcome::Refused, "{event:?}");
    assert_eq!(
        (event.scheme.as_deref(), event.host.as_deref()),
        (Some("http"), Some("127.0.0.1"))
    );
    let reason = event.reason.clone().unwrap();
    assert!(
        reason.starts_with("not-permitted") && reason.contains("require_https"),
        "{reason}"
    );
    event
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_code_exchange_and_an_injected_api_key_never_go_over_plain_http() {
    let host = https_required().await;

    // OAuth: the authorization happens in the browser; the host's own token
    // request is refused before it is sent.
    let (_, callback) = host.authorize("acct-1", &host.provider_host()).await;
    let (status, error) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (502, Some("connector_error")),
        "{error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("http://{}", host.provider_host()))
            && message.contains("require_https"),
        "{message}"
    );
    let exchange = refused_at(&host, "/oauth/token");
    assert_eq!(
        (
            exchange.credential.as_deref(),
            exchange.account_id.as_deref()
        ),
        (Some("client-credentials (code exchange)"), Some("acct-1"))
    );
    let stats = host.provider.stats();
    assert_eq!(
        (stats.authorization_code_grants, stats.token_errors),
        (0, 0),
        "the token endpoint was never called"
    );

    // API key: `user-info` asks the host to inject the key into a request to
    // the provider's plain-http API: refused, so the login fails.
    let login = json!({
        "accountId": "acct-1", "userId": "user-2",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let (status, error) = host
        .post("/v1/connectors/local-insightly/api-key/login", login)
        .await;
    assert_ne!(status, 200, "{error}");
    let users_me = refused_at(&host, "/v3.1/Users/Me");
    assert_eq!(users_me.credential.as_deref(), Some("api-key"));
    assert_eq!(host.provider.stats().userinfo_requests, 0);
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-2/connections")
        .await;
    assert_eq!(listed.as_array().map(Vec::len), Some(0), "nothing saved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_proxy_and_revocation_never_go_over_plain_http() {
    let host = https_required().await;
    // A connection made earlier (the code exchange itself is refused now).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let connection = host
        .connections
        .save(NewConnection {
            account_id: "acct-1".into(),
            user_id: "user-1".into(),
            connector_id: "local-regional".into(),
            auth_type: "oauth".into(),
            hostname: Some(host.provider_host()),
            platform_user_id: Some("12345".into()),
            user_name: Some("Ada Lovelace".into()),
            timezone_name: None,
            timezone_offset: None,
            additional_info: Vec::new(),
            expires_at: Some(now + 3600),
            secrets: ConnectionSecrets {
                access_token: Some(SecretString::from("at-transport-test")),
                refresh_token: Some(SecretString::from("rt-transport-test")),
                api_key: None,
            },
        })
        .await
        .unwrap();
    let path = |suffix: &str| {
        format!(
            "/v1/accounts/acct-1/users/user-1/connections/{}/{suffix}",
            connection.id
        )
    };
    let proxy_me = json!({"method": "GET", "url": format!("{}/api/v1/me", host.api_url())});

    // The proxy injects the access token: refused for a plain-http URL.
    let (status, error) = host.post(&path("proxy"), proxy_me.clone()).await;
    assert_eq!(
        (status, error["field"].as_str()),
        (400, Some("url")),
        "{error}"
    );
    assert!(
        error["message"].as_str().unwrap().contains("require_https"),
        "{error}"
    );
    let me = refused_at(&host, "/api/v1/me");
    assert_eq!(me.credential.as_deref(), Some("access-token"));
    assert_eq!(host.provider.stats().userinfo_requests, 0);

    // Expired: the refresh the proxy asks for is refused before it is sent.
    host.database
        .set_connection_expiry_for_tests(&connection.id, 1)
        .await
        .unwrap();
    let (status, error) = host.post(&path("proxy"), proxy_me).await;
    assert_ne!(status, 200, "{error}");
    let refresh = refused_at(&host, "/oauth/token");
    assert_eq!(
        refresh.credential.as_deref(),
        Some("client-credentials (token refresh)")
    );
    let stats = host.provider.stats();
    assert_eq!((stats.refresh_grants, stats.token_errors), (0, 0));

    // Logout: the revocation is refused (a warning); our copy is cleared anyway.
    let (status, logout) = host.post(&path("logout"), json!({})).await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["revokedAtProvider"], false, "{logout}");
    assert_eq!(logout["connection"]["hasRefreshToken"], false);
    let revocation = refused_at(&host, "/oauth/revoke");
    assert_eq!(
        revocation.credential.as_deref(),
        Some("client-credentials (revocation)")
    );
    assert_eq!(host.provider.stats().revocations, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_https_not_required_the_same_login_goes_over_plain_http() {
    // The harness default (what `serve --dev` and an explicit
    // `require_https = false` do): the exchange is sent and audited.
    let host = Host::start().await;
    let id = connector_test_support::oauth::login(&host, "acct-1", "user-1").await;
    assert!(!id.is_empty());
    assert_eq!(host.provider.stats().authorization_code_grants, 1);
    let exchange = host
        .audit
        .events()
        .into_iter()
        .find(|e| e.path.as_deref() == Some("/oauth/token"))
        .unwrap();
    assert_eq!(
        (exchange.outcome, exchange.status),
        (AuditOutcome::Sent, Some(200))
    );
}
