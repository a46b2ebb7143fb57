//! The connect pages in headless Chromium, against `serve --dev` and its
//! local provider: an end user logs in with an API key (keyboard only,
//! every input labelled) and with OAuth (back to the platform's page); a
//! reused link, an expired one and a form with a forged CSRF token are
//! refused; an account admin saves the managed OAuth application after the
//! page warns how many connections must log in again, and managed fields;
//! the `serve --dev` demo page logs in with both connectors
//! (`browser_support/demo_tests.rs`). Screenshots of every page:
//! `target/browser-screenshots/`.

mod browser_support;

use std::path::Path;

use axum::response::Html;
use browser_support::Browser;
use connector_server::store::{ConnectSessionStore, Database};
use connector_test_support::databases::sqlite_url;
use connector_test_support::dev_demo::{self, DevServer};
use fantoccini::key::Key;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// `serve --dev` in a fresh folder (kept while the test runs).
fn demo() -> (tempfile::TempDir, DevServer) {
    let work = tempfile::tempdir().unwrap();
    let server = dev_demo::start(Path::new(BIN), work.path());
    (work, server)
}

/// The platform's backend: a host and its service key.
#[derive(Clone, Copy)]
struct Platform<'a> {
    base: &'a str,
    key: &'a str,
}

impl<'a> From<&'a DevServer> for Platform<'a> {
    fn from(server: &'a DevServer) -> Self {
        Platform {
            base: &server.base,
            key: &server.service_key,
        }
    }
}

/// What the platform's backend does: a connect session for user `me` of
/// account `demo`.
async fn connect_link<'a>(
    platform: impl Into<Platform<'a>>,
    connector: &str,
    return_url: Option<&str>,
) -> Value {
    let platform = platform.into();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/connect-sessions", platform.base))
        .bearer_auth(platform.key)
        .json(
            &json!({"accountId": "demo", "userId": "me", "connectorId": connector,
                      "returnUrl": return_url}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    response.json().await.unwrap()
}

/// The user's connections, as the platform reads them.
async fn connections<'a>(platform: impl Into<Platform<'a>>) -> Vec<Value> {
    let platform = platform.into();
    reqwest::Client::new()
        .get(format!(
            "{}/v1/accounts/demo/users/me/connections",
            platform.base
        ))
        .bearer_auth(platform.key)
        .send()
        .await
        .unwrap()
        .json::<Vec<Value>>()
        .await
        .unwrap()
}

/// Serves `html` at every path of a server on 127.0.0.1 (the platform's
/// return page, an attacker's page); its base URL.
async fn static_site(html: String) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().fallback(move || {
        let html = html.clone();
        async move { Html(html) }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

#[tokio::test]
async fn an_end_user_logs_in_with_an_api_key_using_only_the_keyboard() {
    let (_work, server) = demo();
    let link = connect_link(&server, "local-insightly", None).await;
    let mut browser = Browser::open("api-key-login").await;
    browser
        .goto(link["url"].as_str().unwrap(), "login-form")
        .await;
    let page = browser.wait_for_heading("Insightly", "form").await;
    assert!(
        page.contains("Insightly User Settings"),
        "the warning: {page}"
    );
    let labelled = browser.assert_every_input_labelled().await;
    assert_eq!(labelled, ["field-apiKey", "field-apiUrl"]);

    // The key, then Enter without the URL: the error is next to its field.
    browser.press(&[Key::Tab]).await;
    assert_eq!(browser.focused_id().await, "field-apiKey");
    browser.type_text(dev_demo_api_key()).await;
    browser.press(&[Key::Enter]).await;
    browser.wait_for("#error-apiUrl").await;
    browser.screenshot("error-next-to-field").await;
    let error = browser.text("#error-apiUrl").await;
    assert_eq!(error, "apiUrl is required");

    browser.press(&[Key::Tab]).await;
    assert_eq!(
        browser.focused_id().await,
        "field-apiKey",
        "the key was not kept"
    );
    browser.type_text(dev_demo_api_key()).await;
    browser.press(&[Key::Tab]).await;
    assert_eq!(browser.focused_id().await, "field-apiUrl");
    browser.type_text(&server.provider).await;
    browser.press(&[Key::Tab]).await;
    assert_eq!(browser.focused_id().await, "submit");
    browser.press(&[Key::Enter]).await;
    let page = browser.wait_for_heading("Connected", "connected").await;
    assert!(page.contains("You are connected"), "{page}");
    browser.close().await;

    let connections = connections(&server).await;
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0]["userName"], "Ada Lovelace");
}

/// The demo provider's API key for `local-insightly`.
fn dev_demo_api_key() -> &'static str {
    "dev-api-key"
}

#[tokio::test]
async fn an_end_user_logs_in_with_oauth_and_returns_to_the_platform() {
    let host = browser_support::host::start().await;
    let server = Platform {
        base: &host.base,
        key: &host.service_key,
    };
    let platform = static_site("<!doctype html><h1>Back on the platform</h1>".into()).await;
    let return_url = format!("{platform}/connected");
    let link = connect_link(server, browser_support::host::CONNECTOR, Some(&return_url)).await;
    let mut browser = Browser::open("oauth-login").await;
    browser
        .goto(link["url"].as_str().unwrap(), "oauth-button")
        .await;
    assert!(browser.assert_every_input_labelled().await.is_empty());
    browser.press(&[Key::Tab]).await;
    assert_eq!(browser.focused_id().await, "oauth-start");
    // Enter on the button: the provider approves and sends the browser to
    // the host's callback page, which returns to the platform.
    browser.press(&[Key::Enter]).await;
    browser
        .wait_for_heading("Back on the platform", "returned")
        .await;
    let landed = browser.client.current_url().await.unwrap();
    assert!(landed.as_str().starts_with(&return_url), "{landed}");
    let connection = landed
        .query_pairs()
        .find(|(k, _)| k == "connection")
        .map(|(_, v)| v.into_owned())
        .expect("the connection id is handed back");
    browser.close().await;

    let connections = connections(server).await;
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0]["id"], connection.as_str());
    assert_eq!(connections[0]["authType"], "oauth");
}

#[tokio::test]
async fn a_reused_or_expired_connect_link_is_refused() {
    let (work, server) = demo();
    let link = connect_link(&server, "local-insightly", None).await;
    let url = link["url"].as_str().unwrap();
    let mut browser = Browser::open("refused-links").await;
    browser.goto(url, "first-use").await;
    browser.wait_for("#api-key-form").await;
    browser.goto(url, "reused").await;
    let page = browser
        .wait_for_heading("Link already used", "reused-refused")
        .await;
    assert!(page.contains("ask for a new one"), "{page}");

    let expiring = connect_link(&server, "local-insightly", None).await;
    let database = Database::connect(&sqlite_url(&work.path().join("dev.db")))
        .await
        .unwrap();
    ConnectSessionStore::new(database)
        .expire_for_tests(expiring["token"].as_str().unwrap())
        .await
        .unwrap();
    browser
        .goto(expiring["url"].as_str().unwrap(), "expired")
        .await;
    browser
        .wait_for_heading("Link expired", "expired-refused")
        .await;
    browser.close().await;
    assert!(connections(&server).await.is_empty());
}

#[tokio::test]
async fn a_form_with_a_forged_csrf_token_is_refused() {
    let (_work, server) = demo();
    let link = connect_link(&server, "local-insightly", None).await;
    let mut browser = Browser::open("forged-csrf").await;
    browser
        .goto(link["url"].as_str().unwrap(), "victim-session")
        .await;
    // Another site's page posts the form into the victim's live session
    // (its cookie goes along: same site, another port) without the token.
    let attacker = static_site(format!(
        "<!doctype html><h1>Win a prize</h1><form method=post action=\"{}/connect/api-key\">\
         <input type=hidden name=csrf value=\"{}\">\
         <input type=hidden name=field.apiKey value=\"dev-api-key\">\
         <input type=hidden name=field.apiUrl value=\"{}\">\
         <button id=claim>Claim</button></form>",
        server.base,
        "0".repeat(64),
        server.provider
    ))
    .await;
    browser.goto(&attacker, "attacker-page").await;
    browser.wait_for("#claim").await.click().await.unwrap();
    let page = browser
        .wait_for_heading("Request refused", "forged-refused")
        .await;
    assert!(page.contains("security token"), "{page}");
    browser.close().await;
    assert!(connections(&server).await.is_empty());
}

/// The operator key `serve --dev` wrote.
fn operator_key(work: &Path) -> String {
    std::fs::read_to_string(work.join(".connector-host/dev-api-keys"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("operator="))
        .expect("--dev wrote an operator key")
        .to_string()
}

/// Logs the browser in to the operator console with `key`.
async fn operator_login(browser: &mut Browser, base: &str, key: &str) {
    browser
        .goto(&format!("{base}/console/login"), "operator-login")
        .await;
    assert_eq!(browser.assert_every_input_labelled().await, ["key"]);
    browser.wait_for("#key").await.send_keys(key).await.unwrap();
    browser.wait_for("#submit").await.click().await.unwrap();
    browser.wait_for_heading("Connectors", "connectors").await;
}

/// Also the operator's connections and webhook pages, with screenshots.
#[tokio::test]
async fn an_operator_reads_a_connectors_audit() {
    let (work, server) = demo();
    server.api_key_login().await;
    let mut browser = Browser::open("operator-audit").await;
    operator_login(&mut browser, &server.base, &operator_key(work.path())).await;
    let page = browser.text("#connector-local-insightly").await;
    assert!(page.contains("http://127.0.0.1:*"), "allowed hosts: {page}");
    assert!(page.contains("user-info"), "hooks: {page}");
    browser.assert_every_input_labelled().await;

    // The audit writer stores in the background: reload until the login's
    // requests are there, within a bounded time.
    let audit = format!("{}/console/connectors/local-insightly/audit", server.base);
    let deadline = std::time::Instant::now() + browser_support::PAGE_TIMEOUT;
    loop {
        browser.client.goto(&audit).await.unwrap();
        browser.wait_for("#audit").await;
        let rows = browser
            .client
            .find_all(fantoccini::Locator::Css("tr.event"))
            .await
            .unwrap();
        if !rows.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the login's outbound requests never appeared in the audit"
        );
    }
    browser.screenshot("audit").await;
    let rows = browser.text("#audit").await;
    assert!(rows.contains("sent"), "{rows}");
    assert_eq!(
        browser.assert_every_input_labelled().await,
        ["outcome", "host", "limit"]
    );

    // Filtered to refused requests: none.
    browser
        .wait_for("#outcome option[value=refused]")
        .await
        .click()
        .await
        .unwrap();
    browser.wait_for("#filter").await.click().await.unwrap();
    browser.wait_for("#no-events").await;
    browser.screenshot("audit-refused-only").await;
    let url = browser.client.current_url().await.unwrap();
    assert!(url.as_str().contains("outcome=refused"), "{url}");

    // The connections page counts the login; the webhook page (no webhooks
    // configured) lists no delivery.
    let connections = format!("{}/console/connections", server.base);
    browser.goto(&connections, "connections").await;
    let count = browser.text("#count-local-insightly-active").await;
    assert!(count.ends_with('1'), "{count}");
    assert!(browser.text("#connections").await.contains("Ada Lovelace"));
    let webhooks = format!("{}/console/webhooks", server.base);
    browser.goto(&webhooks, "webhooks").await;
    browser.wait_for("#no-deliveries").await;
    browser.close().await;
}

#[tokio::test]
async fn a_forged_csrf_token_is_refused_in_the_operator_console() {
    let (work, server) = demo();
    let mut browser = Browser::open("operator-forged-csrf").await;
    operator_login(&mut browser, &server.base, &operator_key(work.path())).await;
    browser
        .goto(&format!("{}/console/keys", server.base), "keys")
        .await;
    browser.assert_every_input_labelled().await;
    let service_key_id = {
        let keys = browser.text("#keys").await;
        keys.lines()
            .find(|line| line.contains("dev service"))
            .and_then(|line| line.split_whitespace().next())
            .expect("the dev service key is listed")
            .to_string()
    };
    // Another site's page asks the operator's browser to revoke the
    // platform's key, with a made-up token.
    let attacker = static_site(format!(
        "<!doctype html><h1>Status report</h1><form method=post action=\"{}/console/keys/{service_key_id}/revoke\">\
         <input type=hidden name=csrf value=\"{}\"><button id=go>Read</button></form>",
        server.base,
        "f".repeat(64)
    ))
    .await;
    browser.goto(&attacker, "attacker-page").await;
    browser.wait_for("#go").await.click().await.unwrap();
    browser
        .wait_for_heading("Request refused", "forged-refused")
        .await;
    browser.close().await;
    assert_eq!(
        server.connector_ids().await.len(),
        4,
        "the service key still works"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_saves_managed_credentials() {
    use connector_server::access::Role;
    use connector_test_support::harness::{Host, TENANT_CLIENT_ID, TENANT_CLIENT_SECRET};

    // The account's application, and two users connected with it.
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let api = host.api_url();
    let managed = "/v1/accounts/acct-1/connectors/test-managed-oauth/managed-oauth";
    let app = json!({"clientId": TENANT_CLIENT_ID, "clientSecret": TENANT_CLIENT_SECRET,
                     "tokenUrl": format!("{api}/oauth/token"),
                     "authorizationUrl": format!("{api}/oauth/authorize")});
    assert_eq!(
        host.send("PUT", managed, Some(&admin), Some(app)).await.0,
        200
    );
    for user in ["user-1", "user-2"] {
        let (_, started) = host
            .post(
                "/v1/connectors/test-managed-oauth/oauth/start",
                json!({"accountId": "acct-1", "userId": user}),
            )
            .await;
        let (status, connected) = connector_test_support::oauth::complete(&host, &started).await;
        assert_eq!(status, 200, "{connected}");
    }

    let mut browser = Browser::open("admin-managed-credentials").await;
    browser
        .goto(&format!("{}/console/login", host.base), "login")
        .await;
    browser
        .wait_for("#key")
        .await
        .send_keys(&admin)
        .await
        .unwrap();
    browser.wait_for("#submit").await.click().await.unwrap();
    browser
        .wait_for_heading("Managed credentials", "accounts")
        .await;
    assert_eq!(browser.assert_every_input_labelled().await, ["account"]);
    browser
        .wait_for("#oauth-test-managed-oauth")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_heading("OAuth application", "oauth-form")
        .await;
    assert_eq!(browser.text("#reauth-count").await, "2", "the warning");
    let stored = browser.text("#stored").await;
    assert!(
        stored.contains(TENANT_CLIENT_ID) && stored.contains("set"),
        "{stored}"
    );
    let html = browser.client.source().await.unwrap();
    assert!(
        !html.contains(TENANT_CLIENT_SECRET),
        "the secret is not in the page"
    );
    browser.assert_every_input_labelled().await;

    // A new secret, saved without confirming: the confirmation step.
    let rotated = "cs-tenant-acct-1-rotated";
    let secret = browser.wait_for("#clientSecret").await;
    secret.send_keys(rotated).await.unwrap();
    browser.wait_for("#save").await.click().await.unwrap();
    browser.wait_for("#not-saved").await;
    let warning = browser.text("#reauth-warning").await;
    assert!(warning.contains("2 active connection(s)"), "{warning}");
    assert_eq!(browser.text("#reauth-count").await, "2");
    browser.screenshot("confirm-step").await;
    let html = browser.client.source().await.unwrap();
    assert!(!html.contains(rotated), "the typed secret is not echoed");

    browser
        .wait_for("#clientSecret")
        .await
        .send_keys(rotated)
        .await
        .unwrap();
    browser.wait_for("#confirm").await.click().await.unwrap();
    browser.wait_for("#save").await.click().await.unwrap();
    let saved = browser.text("#saved").await;
    assert!(saved.contains("2 existing connection(s)"), "{saved}");
    browser.screenshot("saved").await;
    let (_, view) = host.send("GET", managed, Some(&admin), None).await;
    assert_eq!(view["pending"]["clientSecret"], "********", "{view}");
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed[0]["status"], "needs_reauth", "{listed}");

    // The managed API-key field of the account.
    browser
        .goto(
            &format!(
                "{}/console/admin/acct-1/fields/test-managed-apikey",
                host.base
            ),
            "fields-form",
        )
        .await;
    assert_eq!(
        browser.assert_every_input_labelled().await,
        ["field-tenantId"]
    );
    browser
        .wait_for("#field-tenantId")
        .await
        .send_keys("tenant-42")
        .await
        .unwrap();
    browser.wait_for("#save").await.click().await.unwrap();
    browser.wait_for("#saved").await;
    browser.screenshot("fields-saved").await;
    assert_eq!(browser.text("#state-tenantId").await, "(set)");
    browser.close().await;
}
