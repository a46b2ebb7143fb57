//! The connect pages over plain HTTP (the browser tests drive them in
//! Chromium, `tests/tests/browser.rs`): connect sessions created with a
//! service key, single use and expiring; the API-key form rendered from the
//! manifest and posted with its CSRF token; forged tokens, other accounts'
//! keys and reused or expired links refused; every page with a strict CSP.

use connector_server::access::Role;
use connector_server::store::ConnectSessionStore;
use connector_test_support::harness::{API_KEY, Host, assert_no_secret_in_logs};
use serde_json::{Value, json};

/// `POST /v1/connect-sessions` for `user-1` of `acct-1`.
async fn create_session(host: &Host, connector: &str) -> Value {
    let (status, created) = host
        .post(
            "/v1/connect-sessions",
            json!({"accountId": "acct-1", "userId": "user-1", "connectorId": connector}),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    created
}

/// Opens a connect link: the cookie the host sets, after checking the
/// redirect to the login page.
async fn open(host: &Host, url: &str) -> String {
    let response = host.http.get(url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 303, "the link is redeemed");
    assert_eq!(response.headers()["location"], "/connect/login");
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_string();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/connect"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    cookie.split(';').next().unwrap().to_string()
}

/// `GET path` with `cookie`; status and HTML, after checking the headers
/// every console page carries.
async fn page(host: &Host, path: &str, cookie: &str) -> (u16, String) {
    let response = host
        .http
        .get(format!("{}{path}", host.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    checked_page(response).await
}

async fn checked_page(response: reqwest::Response) -> (u16, String) {
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(headers["x-frame-options"], "DENY");
    assert_eq!(headers["cache-control"], "no-store");
    let status = response.status().as_u16();
    let body = response.text().await.unwrap();
    assert!(!body.contains("<script"), "no script in a page: {body}");
    (status, body)
}

/// The CSRF token of a page (the hidden `csrf` input's value, or the
/// OAuth button's `csrf` parameter): the first run of 64 hex digits after
/// `csrf`.
fn csrf_of(html: &str) -> String {
    let after = &html[html.find("csrf").expect("a csrf token")..];
    let bytes = after.as_bytes();
    (0..bytes.len().saturating_sub(64))
        .find(|&i| bytes[i..i + 64].iter().all(u8::is_ascii_hexdigit))
        .map(|i| after[i..i + 64].to_string())
        .expect("a 64-digit token")
}

/// Posts the API-key form.
async fn post_form(host: &Host, cookie: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = host
        .http
        .post(format!("{}/connect/api-key", host.base))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .unwrap();
    checked_page(response).await
}

#[tokio::test]
async fn an_api_key_login_completes_through_the_connect_pages() {
    let host = Host::start().await;
    let created = create_session(&host, "local-insightly").await;
    let cookie = open(&host, created["url"].as_str().unwrap()).await;
    let (status, html) = page(&host, "/connect/login", &cookie).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("<h1>Insightly</h1>"),
        "the page's title: {html}"
    );
    assert!(html.contains("Insightly User Settings"), "its warning");
    assert!(html.contains("for=\"field-apiKey\""), "a label for the key");
    assert!(html.contains("type=\"password\""), "the key is masked");
    assert!(
        !html.contains("insightlyGetApiKey"),
        "a ui:field button is not an input"
    );
    let csrf = csrf_of(&html);

    // A missing field is named next to it; the key typed is not echoed.
    let (status, html) = post_form(
        &host,
        &cookie,
        &[
            ("csrf", &csrf),
            ("field.apiKey", API_KEY),
            ("field.apiUrl", ""),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("id=\"error-apiUrl\""), "{html}");
    assert!(!html.contains(API_KEY), "the key is never sent back");

    let api = host.api_url();
    let (status, html) = post_form(
        &host,
        &cookie,
        &[
            ("csrf", &csrf),
            ("field.apiKey", API_KEY),
            ("field.apiUrl", &api),
        ],
    )
    .await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("You are connected"), "{html}");
    let (_, connections) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(connections.as_array().unwrap().len(), 1, "{connections}");

    // The session is done: its cookie opens nothing more.
    let (status, html) = page(&host, "/connect/login", &cookie).await;
    assert_eq!(status, 410, "{html}");
    assert_no_secret_in_logs();
}

#[tokio::test]
async fn wrong_credentials_are_shown_above_the_form_and_saved_nowhere() {
    let host = Host::start().await;
    let created = create_session(&host, "local-insightly").await;
    let cookie = open(&host, created["url"].as_str().unwrap()).await;
    let (_, html) = page(&host, "/connect/login", &cookie).await;
    let csrf = csrf_of(&html);
    let api = host.api_url();
    let (status, html) = post_form(
        &host,
        &cookie,
        &[
            ("csrf", &csrf),
            ("field.apiKey", "wrong"),
            ("field.apiUrl", &api),
        ],
    )
    .await;
    assert_eq!(status, 401, "{html}");
    assert!(html.contains("id=\"form-error\""), "{html}");
    assert!(
        html.contains(&host.provider_host()),
        "the non-secret value is kept"
    );
    let (_, connections) = host
        .get("/v1/accounts/acct-1/users/user-1/connections")
        .await;
    assert_eq!(connections, json!([]));
}

#[tokio::test]
async fn a_forged_csrf_token_is_refused() {
    let host = Host::start().await;
    let created = create_session(&host, "local-insightly").await;
    let cookie = open(&host, created["url"].as_str().unwrap()).await;
    let api = host.api_url();
    let forged = "0".repeat(64);
    for form in [
        vec![("field.apiKey", API_KEY), ("field.apiUrl", api.as_str())],
        vec![
            ("csrf", forged.as_str()),
            ("field.apiKey", API_KEY),
            ("field.apiUrl", api.as_str()),
        ],
    ] {
        let (status, html) = post_form(&host, &cookie, &form).await;
        assert_eq!(status, 403, "{html}");
    }
    // Another session's token does not fit this one either.
    let other = create_session(&host, "local-insightly").await;
    let other_cookie = open(&host, other["url"].as_str().unwrap()).await;
    let (_, other_html) = page(&host, "/connect/login", &other_cookie).await;
    let (status, _) = post_form(
        &host,
        &cookie,
        &[
            ("csrf", &csrf_of(&other_html)),
            ("field.apiKey", API_KEY),
            ("field.apiUrl", &api),
        ],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = page(&host, "/connect/oauth/start?csrf=forged", &cookie).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_reused_or_expired_link_is_refused() {
    let host = Host::start().await;
    let created = create_session(&host, "local-insightly").await;
    let url = created["url"].as_str().unwrap();
    open(&host, url).await;
    let (status, html) = checked_page(host.http.get(url).send().await.unwrap()).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("already used"), "{html}");

    let expiring = create_session(&host, "local-insightly").await;
    ConnectSessionStore::new(host.database.clone())
        .expire_for_tests(expiring["token"].as_str().unwrap())
        .await
        .unwrap();
    let url = expiring["url"].as_str().unwrap();
    let (status, html) = checked_page(host.http.get(url).send().await.unwrap()).await;
    assert_eq!(status, 410, "{html}");
    assert!(html.contains("expired"), "{html}");

    let (status, _) = checked_page(
        host.http
            .get(format!("{}/connect?session=never-issued", host.base))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = page(&host, "/connect/login", "connect_session=guessed").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn only_a_service_key_of_the_account_creates_sessions() {
    let host = Host::start().await;
    let body = json!({"accountId": "acct-1", "userId": "user-1", "connectorId": "local-insightly"});
    let other_account = host.key(Role::Service, &["acct-2"]).await;
    let operator = host.key(Role::Operator, &[]).await;
    for key in [other_account.as_str(), operator.as_str()] {
        let (status, answer) = host
            .send(
                "POST",
                "/v1/connect-sessions",
                Some(key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, 403, "{answer}");
    }
    let (status, _) = host
        .send("POST", "/v1/connect-sessions", None, Some(body))
        .await;
    assert_eq!(status, 401);
    let (status, answer) = host
        .post(
            "/v1/connect-sessions",
            json!({"accountId": "acct-1", "userId": "user-1", "connectorId": "nope"}),
        )
        .await;
    assert_eq!(
        (status, answer["code"].as_str()),
        (404, Some("unknown_connector"))
    );
    let (status, answer) = host
        .post(
            "/v1/connect-sessions",
            json!({"accountId": "acct-1", "userId": "user-1", "connectorId": "local-insightly",
                   "returnUrl": "javascript:alert(1)"}),
        )
        .await;
    assert_eq!((status, answer["field"].as_str()), (400, Some("returnUrl")));
}

#[tokio::test]
async fn an_oauth_callback_is_completed_only_in_the_browser_that_started_it() {
    let host = Host::start().await;
    let created = create_session(&host, "local-regional").await;
    let cookie = open(&host, created["url"].as_str().unwrap()).await;
    let (status, html) = page(&host, "/connect/login", &cookie).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("id=\"oauth-start\""), "{html}");
    let csrf = csrf_of(&html[html.find("oauth-start").unwrap()..]);
    let response = host
        .http
        .get(format!("{}/connect/oauth/start?csrf={csrf}", host.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303);
    let authorize = url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let redirect_uri = authorize
        .query_pairs()
        .find(|(k, _)| k == "redirect_uri")
        .unwrap()
        .1
        .into_owned();
    assert_eq!(
        redirect_uri,
        format!("{}/connect/oauth/callback", host.base)
    );
    let state = authorize
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    // A victim's browser with a session of its own, sent to the callback
    // with the attacker's state: refused, and the state is not spent.
    let victim = create_session(&host, "local-regional").await;
    let victim_cookie = open(&host, victim["url"].as_str().unwrap()).await;
    let path = format!("/connect/oauth/callback?code=x&state={state}");
    let (status, html) = page(&host, &path, &victim_cookie).await;
    assert_eq!(status, 400, "{html}");
    assert!(html.contains("not started from this browser"), "{html}");
    let (status, _) = page(&host, &path, "connect_session=none").await;
    assert_eq!(status, 404);
    assert!(
        host.states.account_of(&state).await.unwrap().is_some(),
        "the state is still live"
    );
}

#[tokio::test]
async fn the_operator_console_admits_only_a_live_operator_key() {
    let host = Host::start().await;
    let (status, _) = page(&host, "/console/connectors", "").await;
    assert_eq!(status, 303, "no session: to the login page");
    let login = host
        .http
        .get(format!("{}/console/login", host.base))
        .send()
        .await
        .unwrap();
    let pre = login.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        pre.contains("SameSite=Strict") && pre.contains("HttpOnly"),
        "{pre}"
    );
    let pre = pre.split(';').next().unwrap().to_string();
    let (_, html) = checked_page(login).await;
    let csrf = csrf_of(&html);
    let post_login = |key: String, csrf: String| {
        host.http
            .post(format!("{}/console/login", host.base))
            .header("cookie", &pre)
            .form(&[("csrf", csrf), ("key", key)])
            .send()
    };
    let refused = post_login(host.service_key.clone(), csrf.clone())
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        401,
        "a service key opens no console"
    );
    let forged = post_login(host.key(Role::Operator, &[]).await, "0".repeat(64))
        .await
        .unwrap();
    assert_eq!(
        forged.status().as_u16(),
        403,
        "the login form's token is checked"
    );

    let (record, secret) = host
        .api_keys
        .create("console operator", Role::Operator, &[])
        .await
        .unwrap();
    use secrecy::ExposeSecret;
    let admitted = post_login(secret.expose_secret().to_string(), csrf)
        .await
        .unwrap();
    assert_eq!(admitted.status().as_u16(), 303);
    let session = admitted
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("console_session="))
        .expect("a session cookie");
    assert!(session.contains("SameSite=Strict") && session.contains("HttpOnly"));
    let session = session.split(';').next().unwrap().to_string();
    let (status, html) = page(&host, "/console/connectors", &session).await;
    assert_eq!(status, 200);
    assert!(html.contains("connector-local-insightly"), "{html}");
    host.api_keys.revoke(&record.id).await.unwrap();
    let (status, _) = page(&host, "/console/connectors", &session).await;
    assert_eq!(status, 303, "revoking the key ends the session");
}
