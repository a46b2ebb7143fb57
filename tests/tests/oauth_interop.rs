//! OAuth interoperability with strict providers, end to end through the HTTP
//! API against the local provider over real HTTP: issuer identification
//! (RFC 9207 `iss` compared with the declared RFC 8414 issuer, paths and
//! siblings on one origin included) and client authentication with one
//! method per request (RFC 6749 §2.3), and the extra token-request headers
//! a connector asks for (sent, or refused by name).

use connector_authoring::dev_provider::DevProviderStats;
use connector_server::access::Role;
use connector_test_support::harness::{
    Host, Options, REALM_PUBLIC_URL, TENANT_CLIENT_ID, TENANT_CLIENT_SECRET,
    assert_no_secret_in_logs,
};
use serde_json::{Value, json};

/// Declares `https://sso.example.test/realms/acme` and no `clientAuthLocation`.
const REALM_CONNECTOR: &str = "test-issuer-realm";
/// Admin-managed; no `clientAuthLocation`, no issuer in its manifest.
const MANAGED_OAUTH: &str = "/v1/accounts/acct-1/connectors/test-managed-oauth/managed-oauth";

/// Starts a login of `user-1` of `acct-1`.
async fn start(host: &Host, connector: &str) -> Value {
    let (status, started) = host
        .post(
            &format!("/v1/connectors/{connector}/oauth/start"),
            json!({"accountId": "acct-1", "userId": "user-1"}),
        )
        .await;
    assert_eq!(status, 200, "{started}");
    started
}

/// The callback's status and answer.
async fn callback(host: &Host, query: &str) -> (u16, Value) {
    host.get(&format!("/v1/oauth/callback?{query}")).await
}

/// The `iss` of a redirect's query.
fn iss(query: &str) -> String {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "iss")
        .map(|(_, v)| v.into_owned())
        .expect("the provider sends iss")
}

/// Asserts an issuer refusal, decided before any token request.
fn assert_issuer_refused(host: &Host, (status, error): (u16, Value)) {
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_state")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("issuer mismatch"),
        "{error}"
    );
    let stats = host.provider.stats();
    assert_eq!(
        (stats.authorization_code_grants, stats.token_errors),
        (0, 0),
        "no code was sent to a token endpoint"
    );
}

/// The admin-managed application of `acct-1` with `extra` values added.
async fn put_managed_app(host: &Host, admin: &str, endpoints: &str, extra: Value) -> (u16, Value) {
    let mut app = json!({
        "clientId": TENANT_CLIENT_ID,
        "clientSecret": TENANT_CLIENT_SECRET,
        "tokenUrl": format!("{}{endpoints}/token", host.api_url()),
        "authorizationUrl": format!("{}{endpoints}/authorize", host.api_url()),
    });
    app.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    host.send("PUT", MANAGED_OAUTH, Some(admin), Some(app))
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_issuer_declared_in_the_manifest_logs_in_and_no_other_issuer_does() {
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        ..Options::default()
    })
    .await;
    let acme = "https://sso.example.test/realms/acme";
    assert_eq!(host.provider.realm_issuer("acme").as_deref(), Some(acme));

    // A sibling realm on the same origin (a mix-up: the user was sent to the
    // wrong realm) and the origin's own root issuer are both refused.
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/other/oauth/authorize")
        .await;
    assert_eq!(iss(&query), "https://sso.example.test/realms/other");
    assert_issuer_refused(&host, callback(&host, &query).await);
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host.approve_at(&started, "/oauth/authorize").await;
    assert_eq!(iss(&query), REALM_PUBLIC_URL);
    assert_issuer_refused(&host, callback(&host, &query).await);
    // The comparison is exact: a trailing slash is another issuer.
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let slashed = query.replace("realms%2Facme", "realms%2Facme%2F");
    assert_ne!(slashed, query);
    assert_issuer_refused(&host, callback(&host, &slashed).await);

    // The declared issuer, with its path: the login completes.
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    assert_eq!(iss(&query), acme);
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    assert_eq!(connected["connection"]["userName"], "Ada Lovelace");
    // A callback without `iss` (a provider that does not send it) is still
    // accepted: the host cannot know the provider sends one.
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let without: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(url::form_urlencoded::parse(query.as_bytes()).filter(|(k, _)| k != "iss"))
        .finish();
    let (status, connected) = callback(&host, &without).await;
    assert_eq!(status, 200, "{connected}");
    assert_eq!(host.provider.stats().authorization_code_grants, 2);
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_managed_issuer_refuses_a_sibling_issuer_on_the_same_origin() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let acme = host.provider.realm_issuer("acme").unwrap();
    assert_eq!(acme, format!("{}/realms/acme", host.api_url()));

    // The issuer is validated and named when wrong.
    for bad in [
        "http://sso.example.com/realms/acme",
        &format!("{acme}?tenant=1"),
        &format!("{acme}#x"),
        "realms/acme",
    ] {
        let (status, error) = put_managed_app(
            &host,
            &admin,
            "/realms/acme/oauth",
            json!({ "issuer": bad }),
        )
        .await;
        assert_eq!(
            (status, error["field"].as_str()),
            (400, Some("issuer")),
            "{bad}: {error}"
        );
    }
    let (status, saved) = put_managed_app(
        &host,
        &admin,
        "/realms/acme/oauth",
        json!({ "issuer": acme }),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["pending"]["issuer"], acme.as_str());

    // The root issuer shares the realm's origin: the origin comparison would
    // take it for the realm; the declared issuer does not.
    let started = start(&host, "test-managed-oauth").await;
    let query = host.approve_at(&started, "/oauth/authorize").await;
    assert_eq!(iss(&query), host.api_url());
    assert_issuer_refused(&host, callback(&host, &query).await);
    // Nor does a sibling realm.
    let started = start(&host, "test-managed-oauth").await;
    let query = host
        .approve_at(&started, "/realms/other/oauth/authorize")
        .await;
    assert_issuer_refused(&host, callback(&host, &query).await);

    // The declared issuer, with its path, logs in (and so promotes the app).
    let started = start(&host, "test-managed-oauth").await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    assert_eq!(iss(&query), acme);
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    let (_, view) = host.send("GET", MANAGED_OAUTH, Some(&admin), None).await;
    assert_eq!(
        (view["active"]["issuer"].as_str(), view["pending"].is_null()),
        (Some(acme.as_str()), true),
        "{view}"
    );
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_client_authenticates_one_way_and_a_strict_provider_accepts_it() {
    // Neither `test-managed-oauth`'s manifest nor its hooks say where the
    // client authenticates; no issuer is declared (the origin fallback).
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let (status, saved) = put_managed_app(&host, &admin, "/oauth", json!({})).await;
    assert_eq!(status, 200, "{saved}");
    let started = start(&host, "test-managed-oauth").await;
    let query = host.approve(&started).await;
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    assert_eq!(
        host.provider.stats(),
        DevProviderStats {
            authorization_code_grants: 1,
            userinfo_requests: 1,
            client_auth_header: 1,
            ..DevProviderStats::default()
        },
        "HTTP Basic only, accepted"
    );
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_client_authentication_also_revokes_at_logout() {
    // `test-issuer-realm` declares a revocation endpoint and nothing about
    // client authentication.
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        ..Options::default()
    })
    .await;
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    let id = connected["connection"]["id"].as_str().unwrap();
    let (status, logout) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/logout"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{logout}");
    assert_eq!(logout["revokedAtProvider"], true, "{logout}");
    let stats = host.provider.stats();
    assert_eq!(
        (
            stats.revocations,
            stats.client_auth_header,
            stats.client_auth_body,
            stats.client_auth_two_methods
        ),
        (1, 2, 0, 0),
        "the exchange and the revocation each sent Basic only"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_methods_asked_for_explicitly_are_refused_by_a_strict_provider() {
    // The connector's `overriding-oauth-option` asks for `both`: the host
    // sends what it is told, and the strict provider refuses it.
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        realm_client_auth: Some("both"),
        ..Options::default()
    })
    .await;
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, error) = callback(&host, &query).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("token_exchange_failed")),
        "{error}"
    );
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("invalid_request")
            && message.contains("client authentication must only be provided using one mechanism"),
        "{error}"
    );
    let stats = host.provider.stats();
    assert_eq!(
        (
            stats.client_auth_two_methods,
            stats.authorization_code_grants
        ),
        (1, 0)
    );
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed, json!([]), "nothing saved");
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn body_credentials_asked_for_explicitly_are_one_method_too() {
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        realm_client_auth: Some("body"),
        ..Options::default()
    })
    .await;
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    let stats = host.provider.stats();
    assert_eq!(
        (
            stats.client_auth_body,
            stats.client_auth_header,
            stats.client_auth_two_methods
        ),
        (1, 0, 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extra_headers_from_overriding_oauth_option_reach_the_code_exchange() {
    // The provider refuses token requests without `X-Api-Version: 2024-01`;
    // the connector's `overriding-oauth-option` asks for it (and another).
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        realm_extra_headers: Some("X-Api-Version: 2024-01\nX-Partner-Id: acme"),
        ..Options::default()
    })
    .await;
    host.provider
        .require_token_request_header(Some(("X-Api-Version", "2024-01")));
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    let stats = host.provider.stats();
    assert_eq!(
        (stats.authorization_code_grants, stats.token_errors),
        (1, 0),
        "the header was sent with the code"
    );
    assert_no_secret_in_logs();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_requiring_a_header_refuses_a_code_exchange_without_it() {
    // The same provider and connector, without the header: the dev
    // provider's requirement is what the test above depends on.
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        realm_extra_headers: Some("X-Partner-Id: acme"),
        ..Options::default()
    })
    .await;
    host.provider
        .require_token_request_header(Some(("X-Api-Version", "2024-01")));
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, error) = callback(&host, &query).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("token_exchange_failed")),
        "{error}"
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("x-api-version is required"),
        "{error}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_extra_header_the_host_controls_is_refused_by_name_before_any_request() {
    for (headers, named) in [
        ("Authorization: Bearer x", "`Authorization`"),
        ("X-Ok: 1\nContent-Type: text/plain", "`Content-Type`"),
        ("Cookie: a=b", "`Cookie`"),
        ("Host: evil.example", "`Host`"),
    ] {
        let host = Host::with(Options {
            provider_public_url: Some(REALM_PUBLIC_URL.into()),
            realm_extra_headers: Some(headers),
            ..Options::default()
        })
        .await;
        let started = start(&host, REALM_CONNECTOR).await;
        let query = host
            .approve_at(&started, "/realms/acme/oauth/authorize")
            .await;
        let (status, error) = callback(&host, &query).await;
        assert_eq!(
            (status, error["code"].as_str()),
            (502, Some("connector_error")),
            "{headers}: {error}"
        );
        let message = error["message"].as_str().unwrap();
        assert!(
            message.contains(named) && message.contains("refuses"),
            "{headers}: {error}"
        );
        assert_eq!(
            host.provider.stats(),
            DevProviderStats::default(),
            "nothing reached the token endpoint"
        );
        let (_, listed) = host
            .get("/v1/accounts/acct-1/users/user-1/connections")
            .await;
        assert_eq!(listed, json!([]), "nothing saved");
    }
}

/// Unix seconds now.
fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_expires_in_the_manifest_default_lifetime_gives_an_expiry_at_login_and_refresh() {
    // `test-issuer-realm` declares `defaultTokenLifetimeSeconds: 7200`;
    // `local-regional` declares none. The provider sends no `expires_in`.
    let host = Host::with(Options {
        provider_public_url: Some(REALM_PUBLIC_URL.into()),
        ..Options::default()
    })
    .await;
    host.provider.set_omit_expires_in(true);
    let before = now();
    let started = start(&host, REALM_CONNECTOR).await;
    let query = host
        .approve_at(&started, "/realms/acme/oauth/authorize")
        .await;
    let (status, connected) = callback(&host, &query).await;
    assert_eq!(status, 200, "{connected}");
    let expires_at = connected["connection"]["expiresAt"]
        .as_i64()
        .unwrap_or_else(|| panic!("an expiry from the default lifetime: {connected}"));
    assert!(
        (before + 7200..=now() + 7200).contains(&expires_at),
        "{connected}"
    );

    // A refresh answer without `expires_in` gets the default too.
    let id = connected["connection"]["id"].as_str().unwrap();
    host.database
        .set_connection_expiry_for_tests(id, now() - 5)
        .await
        .unwrap();
    let before = now();
    let (status, refreshed) = host
        .post(
            &format!("/v1/accounts/acct-1/users/user-1/connections/{id}/refresh"),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(host.provider.stats().refresh_grants, 1);
    let expires_at = refreshed["expiresAt"].as_i64().unwrap();
    assert!(
        (before + 7200..=now() + 7200).contains(&expires_at),
        "{refreshed}"
    );

    // Without a default in the manifest, the connection has no expiry.
    let plain = Host::start().await;
    plain.provider.set_omit_expires_in(true);
    let id = connector_test_support::oauth::login(&plain, "acct-1", "user-2").await;
    let (_, connection) = plain
        .get(&format!(
            "/v1/accounts/acct-1/users/user-2/connections/{id}"
        ))
        .await;
    assert_eq!(connection["expiresAt"], Value::Null, "{connection}");
}
