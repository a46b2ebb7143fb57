//! The account admin's console over plain HTTP (the browser test drives it
//! in Chromium, `tests/tests/browser.rs`): an account-admin key logs in to
//! a session scoped to its accounts; another account's pages and forms are
//! refused; a forged CSRF token is refused; a stored client secret or
//! secret field never appears in a page; saving an OAuth application asks
//! to confirm how many connections it sends back to re-auth, and nothing is
//! stored until the admin confirms that number.

use connector_server::access::Role;
use connector_test_support::harness::{Host, TENANT_CLIENT_ID, TENANT_CLIENT_SECRET};
use connector_test_support::oauth::complete;
use serde_json::{Value, json};

const OAUTH_PAGE: &str = "/console/admin/acct-1/oauth/test-managed-oauth";
const MANAGED_OAUTH: &str = "/v1/accounts/acct-1/connectors/test-managed-oauth/managed-oauth";

/// Logs in to the console with `key`; the session cookie (`name=value`).
async fn console_login(host: &Host, key: &str) -> String {
    let login = host
        .http
        .get(format!("{}/console/login", host.base))
        .send()
        .await
        .unwrap();
    let pre = cookie_named(&login, "console_login");
    let csrf = csrf_of(&login.text().await.unwrap());
    let admitted = host
        .http
        .post(format!("{}/console/login", host.base))
        .header("cookie", &pre)
        .form(&[("csrf", csrf.as_str()), ("key", key)])
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status().as_u16(), 303, "the key is admitted");
    let session = cookie_named(&admitted, "console_session");
    assert_eq!(
        admitted.headers()["location"],
        "/console/admin",
        "an admin starts on the admin pages"
    );
    session
}

/// The `name=value` of the cookie `name` a response sets, after checking it
/// is HttpOnly and SameSite=Strict.
fn cookie_named(response: &reqwest::Response, name: &str) -> String {
    let cookie = response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("a {name} cookie"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

/// The first 64-hex-digit token after `csrf` in a page.
fn csrf_of(html: &str) -> String {
    let after = &html[html.find("csrf").expect("a csrf token")..];
    let bytes = after.as_bytes();
    (0..bytes.len().saturating_sub(64))
        .find(|&i| bytes[i..i + 64].iter().all(u8::is_ascii_hexdigit))
        .map(|i| after[i..i + 64].to_string())
        .expect("a 64-digit token")
}

/// `GET path` with `cookie`: status and HTML, after checking the headers
/// every console page carries.
async fn page(host: &Host, path: &str, cookie: &str) -> (u16, String) {
    let response = host
        .http
        .get(format!("{}{path}", host.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    checked(response).await
}

/// `POST path` of a form with `cookie`.
async fn post(host: &Host, path: &str, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = host
        .http
        .post(format!("{}{path}", host.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    checked(response).await
}

async fn checked(response: reqwest::Response) -> (u16, String) {
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        csp.contains("default-src 'none'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(!body.contains("<script"), "no script in a page: {body}");
    (status, body)
}

/// The tenant's application as the form posts it.
fn app_form<'a>(host_api: &'a str, csrf: &'a str) -> Vec<(&'a str, String)> {
    vec![
        ("csrf", csrf.to_string()),
        ("clientId", TENANT_CLIENT_ID.to_string()),
        ("clientSecret", TENANT_CLIENT_SECRET.to_string()),
        ("tokenUrl", format!("{host_api}/oauth/token")),
        ("authorizationUrl", format!("{host_api}/oauth/authorize")),
    ]
}

fn as_pairs<'a>(form: &'a [(&'a str, String)]) -> Vec<(&'a str, &'a str)> {
    form.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The account's stored application as the API shows it.
async fn stored(host: &Host, admin: &str) -> Value {
    let (status, view) = host.send("GET", MANAGED_OAUTH, Some(admin), None).await;
    assert_eq!(status, 200, "{view}");
    view
}

#[tokio::test]
async fn an_admin_sees_and_changes_only_the_accounts_of_its_key() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let session = console_login(&host, &admin).await;

    let (status, html) = page(&host, "/console/admin", &session).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"oauth-test-managed-oauth\""), "{html}");
    assert!(html.contains("id=\"fields-test-managed-apikey\""), "{html}");
    let csrf = csrf_of(&html);

    // Account B: neither its list, nor its pages, nor its forms.
    let (status, _) = page(&host, "/console/admin?account=acct-2", &session).await;
    assert_eq!(status, 403);
    let other = "/console/admin/acct-2/oauth/test-managed-oauth";
    let (status, html) = page(&host, other, &session).await;
    assert_eq!(status, 403, "{html}");
    assert!(html.contains("not scoped to account `acct-2`"), "{html}");
    let api = host.api_url();
    let form = app_form(&api, &csrf);
    let (status, _) = post(&host, other, &session, &as_pairs(&form)).await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &host,
        "/console/admin/acct-2/fields/test-managed-apikey",
        &session,
        &[("csrf", &csrf), ("field.tenantId", "stolen")],
    )
    .await;
    assert_eq!(status, 403);
    let admin_b = host.key(Role::AccountAdmin, &["acct-2"]).await;
    let (_, view) = host
        .send(
            "GET",
            "/v1/accounts/acct-2/connectors/test-managed-oauth/managed-oauth",
            Some(&admin_b),
            None,
        )
        .await;
    assert!(
        view["active"].is_null() && view["pending"].is_null(),
        "nothing stored for account B: {view}"
    );
    let (_, fields) = host
        .send(
            "GET",
            "/v1/accounts/acct-2/connectors/test-managed-apikey/managed-fields",
            Some(&admin_b),
            None,
        )
        .await;
    assert_eq!(fields["fields"][0]["set"], false, "{fields}");

    // An admin's session opens no operator page, an operator's no admin page.
    let (status, _) = page(&host, "/console/connectors", &session).await;
    assert_eq!(status, 303);
    let operator = console_session_of_operator(&host).await;
    let (status, _) = page(&host, OAUTH_PAGE, &operator).await;
    assert_eq!(status, 303);
}

/// An operator's console session.
async fn console_session_of_operator(host: &Host) -> String {
    let key = host.key(Role::Operator, &[]).await;
    let login = host
        .http
        .get(format!("{}/console/login", host.base))
        .send()
        .await
        .unwrap();
    let pre = cookie_named(&login, "console_login");
    let csrf = csrf_of(&login.text().await.unwrap());
    let admitted = host
        .http
        .post(format!("{}/console/login", host.base))
        .header("cookie", &pre)
        .form(&[("csrf", csrf.as_str()), ("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.headers()["location"], "/console/connectors");
    cookie_named(&admitted, "console_session")
}

#[tokio::test]
async fn a_forged_csrf_token_is_refused_on_the_admin_forms() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let session = console_login(&host, &admin).await;
    let api = host.api_url();
    for csrf in ["0".repeat(64), String::new()] {
        let form = app_form(&api, &csrf);
        let (status, html) = post(&host, OAUTH_PAGE, &session, &as_pairs(&form)).await;
        assert_eq!(status, 403, "{html}");
        assert!(html.contains("security token"), "{html}");
    }
    // The token of another session of the same admin is not this one's.
    let (_, other) = page(&host, OAUTH_PAGE, &console_login(&host, &admin).await).await;
    let other_csrf = csrf_of(&other);
    let form = app_form(&api, &other_csrf);
    let (status, _) = post(&host, OAUTH_PAGE, &session, &as_pairs(&form)).await;
    assert_eq!(status, 403);
    let (status, _) = post(
        &host,
        "/console/admin/acct-1/fields/test-managed-apikey",
        &session,
        &[("csrf", &"0".repeat(64)), ("field.tenantId", "t-1")],
    )
    .await;
    assert_eq!(status, 403);
    let view = stored(&host, &admin).await;
    assert!(view["pending"].is_null(), "nothing stored: {view}");
}

#[tokio::test]
async fn a_stored_secret_never_appears_in_a_page() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let session = console_login(&host, &admin).await;
    let (_, html) = page(&host, OAUTH_PAGE, &session).await;
    let api = host.api_url();
    let csrf = csrf_of(&html);
    let form = app_form(&api, &csrf);
    let (status, html) = post(&host, OAUTH_PAGE, &session, &as_pairs(&form)).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"saved\""), "{html}");
    for html in [html, page(&host, OAUTH_PAGE, &session).await.1] {
        assert!(!html.contains(TENANT_CLIENT_SECRET), "{html}");
        assert!(html.contains(TENANT_CLIENT_ID), "the client id is shown");
        assert!(html.contains("<td>set</td>"), "the secret is set: {html}");
    }
    let view = stored(&host, &admin).await;
    assert_eq!(view["pending"]["clientId"], TENANT_CLIENT_ID);

    // A secret managed field: saved, reported set, never shown back.
    let fields = "/console/admin/acct-1/fields/test-secret-fields";
    let (status, html) = page(&host, fields, &session).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("type=\"password\" name=\"field.partnerSecret\""));
    let partner = "ps-9c2e-partner-secret";
    let csrf = csrf_of(&html);
    let (status, html) = post(
        &host,
        fields,
        &session,
        &[("csrf", &csrf), ("field.partnerSecret", partner)],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    for html in [html, page(&host, fields, &session).await.1] {
        assert!(!html.contains(partner), "{html}");
        assert!(html.contains("id=\"state-partnerSecret\">(set)"), "{html}");
    }
    // An empty secret input keeps the stored value.
    let (status, _) = post(
        &host,
        fields,
        &session,
        &[("csrf", &csrf), ("field.partnerSecret", "")],
    )
    .await;
    assert_eq!(status, 200);
    let (_, view) = host
        .send(
            "GET",
            "/v1/accounts/acct-1/connectors/test-secret-fields/managed-fields",
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(view["fields"][0]["set"], true, "{view}");
    let (_, audit) = host
        .send("GET", "/v1/accounts/acct-1/admin-audit", Some(&admin), None)
        .await;
    let audit = audit.to_string();
    assert!(
        audit.contains("(console)"),
        "console changes audited: {audit}"
    );
    assert!(!audit.contains(partner) && !audit.contains(TENANT_CLIENT_SECRET));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_an_application_first_confirms_how_many_connections_need_reauth() {
    let host = Host::start().await;
    let admin = host.key(Role::AccountAdmin, &["acct-1"]).await;
    let api = host.api_url();
    let app = json!({
        "clientId": TENANT_CLIENT_ID, "clientSecret": TENANT_CLIENT_SECRET,
        "tokenUrl": format!("{api}/oauth/token"),
        "authorizationUrl": format!("{api}/oauth/authorize"),
    });
    let (status, _) = host
        .send("PUT", MANAGED_OAUTH, Some(&admin), Some(app))
        .await;
    assert_eq!(status, 200);
    for user in ["user-1", "user-2"] {
        let (status, started) = host
            .post(
                "/v1/connectors/test-managed-oauth/oauth/start",
                json!({"accountId": "acct-1", "userId": user}),
            )
            .await;
        assert_eq!(status, 200, "{started}");
        let (status, connected) = complete(&host, &started).await;
        assert_eq!(status, 200, "{connected}");
    }
    let before = stored(&host, &admin).await;

    let session = console_login(&host, &admin).await;
    let (status, html) = page(&host, OAUTH_PAGE, &session).await;
    assert_eq!(status, 200);
    assert!(
        html.contains("<strong id=\"reauth-count\">2</strong>"),
        "{html}"
    );
    let csrf = csrf_of(&html);
    let form = app_form(&api, &csrf);

    // Unconfirmed, or confirmed for fewer than it affects: nothing stored.
    for confirm in [None, Some("1")] {
        let mut pairs = as_pairs(&form);
        pairs.extend(confirm.map(|c| ("confirm", c)));
        let (status, html) = post(&host, OAUTH_PAGE, &session, &pairs).await;
        assert_eq!(status, 409, "{html}");
        assert!(html.contains("Nothing was saved"), "{html}");
        assert!(html.contains("<strong id=\"reauth-count\">2</strong>"));
        assert!(!html.contains(TENANT_CLIENT_SECRET), "not echoed");
    }
    assert_eq!(stored(&host, &admin).await, before, "nothing changed");

    let mut pairs = as_pairs(&form);
    pairs.push(("confirm", "2"));
    let (status, html) = post(&host, OAUTH_PAGE, &session, &pairs).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("2 existing connection(s)"), "{html}");
    assert!(!html.contains("id=\"reauth-warning\""), "none left: {html}");
    let (_, listed) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(listed[0]["status"], "needs_reauth", "{listed}");

    // A missing value is named and nothing is stored.
    let (status, html) = post(
        &host,
        OAUTH_PAGE,
        &session,
        &[("csrf", &csrf), ("clientId", TENANT_CLIENT_ID)],
    )
    .await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("clientSecret"), "{html}");
}
