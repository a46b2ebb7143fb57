//! The operator's lists over plain HTTP: connections by status (counts per
//! connector and status, a filtered page of at most 50 rows, never a token)
//! and the webhook deliveries (filtered by state, never a payload).

use connector_server::access::Role;
use connector_test_support::harness::Host;
use connector_test_support::oauth::login;

/// An operator's console session (`name=value`).
async fn operator_session(host: &Host) -> String {
    let key = host.key(Role::Operator, &[]).await;
    let login = host
        .http
        .get(format!("{}/console/login", host.base))
        .send()
        .await
        .unwrap();
    let pre = cookie(&login, "console_login");
    let html = login.text().await.unwrap();
    let after = &html[html.find("name=\"csrf\" value=\"").unwrap() + 19..];
    let csrf = &after[..64];
    let admitted = host
        .http
        .post(format!("{}/console/login", host.base))
        .header("cookie", &pre)
        .form(&[("csrf", csrf), ("key", key.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(admitted.status().as_u16(), 303);
    cookie(&admitted, "console_session")
}

fn cookie(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("a {name} cookie"))
        .split(';')
        .next()
        .unwrap()
        .to_string()
}

/// `GET path` with `cookie`: status and HTML, after checking the CSP.
async fn page(host: &Host, path: &str, cookie: &str) -> (u16, String) {
    let response = host
        .http
        .get(format!("{}{path}", host.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

/// How many `<tr class="{class}…">` rows a page has.
fn rows(html: &str, class: &str) -> usize {
    html.matches(&format!("<tr class=\"{class}")).count()
}

/// Adds `n` connections of `connector` with `status` straight to the table,
/// each holding `token` in its token column (as a stored connection would).
async fn insert_connections(host: &Host, connector: &str, status: &str, n: usize, token: &str) {
    for i in 0..n {
        host.database
            .execute_for_tests(
                "INSERT INTO connections (id, account_id, user_id, connector_id, auth_type, status,
                 additional_info, access_token, created_at, updated_at)
                 VALUES ($1, 'acct-9', $2, $3, 'oauth', $4, '[]', $5, 1700000000, 1700000000)",
                &[
                    &format!("conn-{connector}-{status}-{i}"),
                    &format!("user-{status}-{i}"),
                    connector,
                    status,
                    token,
                ],
            )
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_are_counted_by_status_and_listed_without_tokens() {
    let host = Host::start().await;
    let id = login(&host, "acct-1", "user-1").await;
    let token = host.access_token(&id).await;
    let marker = "stored-token-material-7d1e";
    insert_connections(&host, "test-oauth-basic", "needs_reauth", 3, marker).await;
    insert_connections(&host, "test-oauth-basic", "active", 60, marker).await;
    let session = operator_session(&host).await;

    let (status, html) = page(&host, "/console/connections", &session).await;
    assert_eq!(status, 200, "{html}");
    for (row, count) in [
        ("count-local-regional-active", 1),
        ("count-test-oauth-basic-active", 60),
        ("count-test-oauth-basic-needs_reauth", 3),
    ] {
        let at = html.find(&format!("id=\"{row}\"")).expect(row);
        let end = at + html[at..].find("</tr>").unwrap();
        assert!(
            html[at..end].ends_with(&format!("<td>{count}</td>")),
            "{row}: {}",
            &html[at..end]
        );
    }
    assert_eq!(rows(&html, "connection"), 50, "one page holds 50");
    assert!(html.contains("id=\"next\""), "a next page");
    assert!(!html.contains(&token) && !html.contains(marker), "no token");

    let (_, second) = page(&host, "/console/connections?page=2", &session).await;
    assert_eq!(rows(&second, "connection"), 14, "64 in all");
    assert!(!second.contains("id=\"next\"") && second.contains("id=\"previous\""));

    let filtered = "/console/connections?connector=test-oauth-basic&status=needs_reauth";
    let (_, html) = page(&host, filtered, &session).await;
    assert_eq!(rows(&html, "connection"), 3, "{html}");
    let (_, html) = page(&host, "/console/connections?account=acct-1", &session).await;
    assert_eq!(rows(&html, "connection"), 1, "{html}");
    assert!(html.contains(&format!("<code>{id}</code>")), "{html}");

    // Bad filters and pages are answered, not failed; pages are bounded.
    for path in [
        "/console/connections?status=%27%20OR%201%3D1",
        "/console/connections?page=-5",
        "/console/connections?page=999999999999",
    ] {
        let (status, html) = page(&host, path, &session).await;
        assert_eq!(status, 200, "{path}: {html}");
    }
    let (_, html) = page(&host, "/console/connections?page=999999999999", &session).await;
    assert!(html.contains("Page 200."), "{html}");

    let (status, _) = page(&host, "/console/connections", "console_session=forged").await;
    assert_eq!(status, 303, "no session, no list");
}

/// Adds an outbox row in `state` straight to the table.
async fn insert_delivery(host: &Host, id: &str, delivered: &str, failed: &str, payload: &str) {
    host.database
        .execute_for_tests(
            &format!(
                "INSERT INTO webhook_outbox (id, event_type, url, payload, attempts, next_attempt_at,
                 delivered_at, failed_at, last_status, last_error, created_at)
                 VALUES ($1, 'connection.created', 'https://hooks.example.com', $2, 3, 1900000000,
                 {delivered}, {failed}, 500, 'receiver answered 500', 1800000000)"
            ),
            &[id, payload],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn webhook_deliveries_are_listed_by_state_without_payloads() {
    let host = Host::start().await;
    let payload = "{\"secret-payload-marker\":1}";
    insert_delivery(&host, "evt_pending", "NULL", "NULL", payload).await;
    insert_delivery(&host, "evt_delivered", "1800000100", "NULL", payload).await;
    insert_delivery(&host, "evt_failed", "NULL", "1800000200", payload).await;
    let session = operator_session(&host).await;

    let (status, html) = page(&host, "/console/webhooks", &session).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(rows(&html, "delivery"), 3, "{html}");
    assert!(!html.contains("secret-payload-marker"), "no payload");
    let pending = &html[html.find("id=\"delivery-evt_pending\"").unwrap()..];
    assert!(
        pending.starts_with(
            "id=\"delivery-evt_pending\"><td><code>evt_pending</code></td><td>connection.created</td><td>pending</td><td>3</td><td>1900000000</td>"
        ),
        "state, attempts and next attempt: {pending}"
    );
    for state in ["pending", "delivered", "failed"] {
        let (_, html) = page(&host, &format!("/console/webhooks?state={state}"), &session).await;
        assert_eq!(rows(&html, "delivery"), 1, "{state}: {html}");
        assert!(
            html.contains(&format!("id=\"delivery-evt_{state}\"")),
            "{html}"
        );
    }
    let (status, html) = page(&host, "/console/webhooks?state=bogus", &session).await;
    assert_eq!(
        (status, rows(&html, "delivery")),
        (200, 3),
        "an unknown state is any"
    );
}
