//! The `serve --dev` demo in a browser: the page it prints starts a login
//! with each demo connector, an API-key form for `local-insightly`, and for
//! `local-regional` the OAuth button, the local provider's consent page and
//! the host's callback page — a whole login without curl.

use super::Browser;
use crate::{connections, demo, dev_demo_api_key};

/// Opens the demo page `serve --dev` printed in a new browser (screenshots
/// under `test`) and picks the demo connector `connector`.
async fn pick_on_the_demo_page(
    server: &mut connector_test_support::dev_demo::DevServer,
    test: &str,
    connector: &str,
) -> Browser {
    let demo_url = server.server.process.announced("open ");
    assert!(demo_url.ends_with("/connect/demo"), "{demo_url}");
    let mut browser = Browser::open(test).await;
    browser.goto(&demo_url, "demo-page").await;
    browser
        .wait_for(&format!("#demo-{connector}"))
        .await
        .click()
        .await
        .unwrap();
    browser
}

#[tokio::test]
async fn serve_dev_prints_a_page_that_starts_a_demo_login_without_curl() {
    let (_work, mut server) = demo();
    let mut browser = pick_on_the_demo_page(&mut server, "dev-demo", "local-insightly").await;
    browser.wait_for_heading("Insightly", "login").await;
    browser
        .wait_for("#field-apiKey")
        .await
        .send_keys(dev_demo_api_key())
        .await
        .unwrap();
    browser
        .wait_for("#field-apiUrl")
        .await
        .send_keys(&server.provider)
        .await
        .unwrap();
    browser.wait_for("#submit").await.click().await.unwrap();
    browser.wait_for_heading("Connected", "connected").await;
    browser.close().await;
    assert_eq!(connections(&server).await.len(), 1);
}

#[tokio::test]
async fn serve_dev_logs_in_with_oauth_through_the_providers_consent_page() {
    let (_work, mut server) = demo();
    let mut browser = pick_on_the_demo_page(&mut server, "dev-demo-oauth", "local-regional").await;
    browser
        .wait_for("#oauth-start")
        .await
        .click()
        .await
        .unwrap();
    // The provider's page, not the host's: it asks before sending a code.
    let consent = browser.wait_for_heading("Allow access?", "consent").await;
    assert!(consent.contains("regional-public-client"), "{consent}");
    let at = browser.client.current_url().await.unwrap();
    assert!(
        server
            .provider
            .starts_with(&at.origin().ascii_serialization()),
        "the consent page is the provider's: {at}"
    );
    // "Allow": the provider sends the browser to the host's callback page,
    // which completes the login.
    browser.wait_for("#allow").await.click().await.unwrap();
    browser.wait_for_heading("Connected", "connected").await;
    browser.close().await;

    let connections = connections(&server).await;
    assert_eq!(connections.len(), 1, "{connections:?}");
    assert_eq!(connections[0]["connectorId"], "local-regional");
    assert_eq!(connections[0]["authType"], "oauth");
}
