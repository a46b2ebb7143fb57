//! The local fake provider over real HTTP: authorization, code exchange with
//! PKCE, replay and refresh-rotation defences, revocation, the user-info APIs.

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use connector_authoring::dev_provider::{
    DevClient, DevProvider, DevProviderConfig, DevProviderStats,
};
use reqwest::StatusCode;
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use url::Url;

const CLIENT_ID: &str = "regional-public-client";
const CLIENT_SECRET: &str = "s3cret value/with+specials";
const REDIRECT_URI: &str = "https://apps.example.com/oauth/callback";
const OTHER_CLIENT_ID: &str = "other-client";
const OTHER_SECRET: &str = "other-secret";
const API_KEY: &str = "insightly-test-key";
/// 43 unreserved characters: the shortest valid PKCE verifier.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

fn config() -> DevProviderConfig {
    DevProviderConfig {
        clients: vec![
            DevClient {
                client_id: CLIENT_ID.into(),
                client_secret: CLIENT_SECRET.into(),
                redirect_uris: vec![REDIRECT_URI.into(), "http://127.0.0.1:9/cb".into()],
            },
            DevClient {
                client_id: OTHER_CLIENT_ID.into(),
                client_secret: OTHER_SECRET.into(),
                redirect_uris: vec![REDIRECT_URI.into()],
            },
        ],
        api_keys: vec![API_KEY.into()],
        ..DevProviderConfig::default()
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// `GET /oauth/authorize` with `params`; the raw response.
async fn authorize_raw(provider: &DevProvider, params: &[(&str, &str)]) -> reqwest::Response {
    let mut url = Url::parse(&format!("{}/oauth/authorize", provider.base_url())).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    http().get(url).send().await.unwrap()
}

/// The query of the redirect a 302 answer points to.
fn redirect_query(response: &reqwest::Response) -> (Url, Vec<(String, String)>) {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    let url = Url::parse(location).unwrap();
    let query = url.query_pairs().into_owned().collect();
    (url, query)
}

fn get<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// A code for [`CLIENT_ID`] and [`REDIRECT_URI`] with an S256 challenge of
/// [`VERIFIER`].
async fn code(provider: &DevProvider) -> String {
    let challenge = challenge(VERIFIER);
    let response = authorize_raw(
        provider,
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("state", "xyz"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let (_, query) = redirect_query(&response);
    get(&query, "code").unwrap().to_string()
}

/// How a token request authenticates the client.
enum Auth<'a> {
    Header(&'a str, &'a str),
    Body(&'a str, &'a str),
    None,
}

/// `POST {path}` with a form, authenticating as told: status and JSON body
/// (`Null` when empty).
async fn post_form(
    provider: &DevProvider,
    path: &str,
    auth: Auth<'_>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut request = http().post(format!("{}{path}", provider.base_url()));
    match auth {
        Auth::Header(id, secret) => request = request.basic_auth(id, Some(secret)),
        Auth::Body(id, secret) => form.extend([("client_id", id), ("client_secret", secret)]),
        Auth::None => {}
    }
    let response = request.form(&form).send().await.unwrap();
    let status = response.status();
    if path == "/oauth/token" {
        assert_eq!(response.headers()["cache-control"], "no-store");
    }
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap()
    };
    (status, body)
}

async fn exchange(
    provider: &DevProvider,
    auth: Auth<'_>,
    code: &str,
    redirect_uri: &str,
    verifier: Option<&str>,
) -> (StatusCode, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
    ];
    form.extend(verifier.map(|v| ("code_verifier", v)));
    post_form(provider, "/oauth/token", auth, &form).await
}

async fn refresh(provider: &DevProvider, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    let auth = Auth::Header(CLIENT_ID, CLIENT_SECRET);
    post_form(provider, "/oauth/token", auth, &form).await
}

/// `GET /api/v1/me` with a Bearer token: status and JSON body.
async fn me(provider: &DevProvider, access_token: &str) -> (StatusCode, Value) {
    let response = http()
        .get(format!("{}/api/v1/me", provider.base_url()))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (
        status,
        serde_json::from_str(&response.text().await.unwrap()).unwrap(),
    )
}

fn token(body: &Value, name: &str) -> String {
    body[name].as_str().unwrap().to_string()
}

fn assert_error(result: (StatusCode, Value), status: StatusCode, error: &str) {
    assert_eq!(result.0, status, "{}", result.1);
    assert_eq!(result.1["error"], error, "{}", result.1);
}

#[tokio::test]
async fn authorize_redirects_with_code_state_and_iss() {
    let provider = DevProvider::start(config()).await.unwrap();
    assert_eq!(provider.issuer(), provider.base_url());
    assert!(provider.base_url().starts_with("http://127.0.0.1:"));
    let challenge = challenge(VERIFIER);
    let response = authorize_raw(
        &provider,
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("state", "opaque state/+="),
            ("scope", "contacts.read"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let (url, query) = redirect_query(&response);
    assert_eq!(url.origin().ascii_serialization(), "http://127.0.0.1:9");
    assert_eq!(url.path(), "/cb");
    assert!(get(&query, "code").unwrap().len() >= 22);
    assert_eq!(get(&query, "state"), Some("opaque state/+="));
    assert_eq!(get(&query, "iss"), Some(provider.issuer().as_str()));
    assert_eq!(get(&query, "error"), None);
}

#[tokio::test]
async fn with_its_consent_page_the_provider_asks_then_allows_or_denies() {
    let provider = DevProvider::start(DevProviderConfig {
        consent_page: true,
        ..config()
    })
    .await
    .unwrap();
    let request = |decision: Option<&'static str>| {
        let mut params = vec![
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("state", "s-1"),
        ];
        params.extend(decision.map(|d| ("decision", d)));
        params
    };
    let asked = authorize_raw(&provider, &request(None)).await;
    assert_eq!(asked.status(), StatusCode::OK);
    let policy = asked.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'none'"), "{policy}");
    let page = asked.text().await.unwrap();
    assert!(
        page.contains("Allow access?") && page.contains(CLIENT_ID),
        "{page}"
    );
    assert!(
        page.contains("name=\"state\" value=\"s-1\""),
        "the form repeats the request: {page}"
    );

    let (_, denied) = redirect_query(&authorize_raw(&provider, &request(Some("deny"))).await);
    assert_eq!(get(&denied, "error"), Some("access_denied"));
    assert_eq!(get(&denied, "state"), Some("s-1"));
    assert_eq!(get(&denied, "code"), None);

    let (_, allowed) = redirect_query(&authorize_raw(&provider, &request(Some("allow"))).await);
    assert!(get(&allowed, "code").is_some(), "{allowed:?}");
    assert_eq!(get(&allowed, "state"), Some("s-1"));

    // A bad client is refused before any page is shown.
    let mut bad = request(None);
    bad[1] = ("client_id", "unknown-client");
    assert_eq!(
        authorize_raw(&provider, &bad).await.status(),
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn authorize_refuses_bad_clients_and_redirects_with_a_400_not_a_redirect() {
    let provider = DevProvider::start(config()).await.unwrap();
    let cases: [&[(&str, &str)]; 5] = [
        // not registered (a prefix of a registered one does not count)
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            (
                "redirect_uri",
                "https://apps.example.com/oauth/callback/evil",
            ),
        ],
        // registered for another client only
        &[
            ("response_type", "code"),
            ("client_id", OTHER_CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:9/cb"),
        ],
        &[
            ("response_type", "code"),
            ("client_id", "nobody"),
            ("redirect_uri", REDIRECT_URI),
        ],
        &[("response_type", "code"), ("client_id", CLIENT_ID)],
        &[
            ("response_type", "token"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
        ],
    ];
    for params in cases {
        let response = authorize_raw(&provider, params).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{params:?}");
        assert!(response.headers().get("location").is_none());
        let body: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        assert!(body["error"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn authorize_refuses_plain_pkce_with_an_error_redirect() {
    let provider = DevProvider::start(config()).await.unwrap();
    let response = authorize_raw(
        &provider,
        &[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT_URI),
            ("state", "s1"),
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
    )
    .await;
    let (url, query) = redirect_query(&response);
    assert!(url.as_str().starts_with(REDIRECT_URI));
    assert_eq!(get(&query, "error"), Some("invalid_request"));
    assert_eq!(get(&query, "code"), None);
    assert_eq!(get(&query, "state"), Some("s1"));
    assert_eq!(get(&query, "iss"), Some(provider.issuer().as_str()));
}

#[tokio::test]
async fn code_exchange_with_pkce_and_header_auth() {
    let provider = DevProvider::start(config()).await.unwrap();
    let code = code(&provider).await;
    let auth = Auth::Header(CLIENT_ID, CLIENT_SECRET);
    let (status, body) = exchange(&provider, auth, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(body["scope"], "api");
    assert_eq!(body["instance_url"], provider.base_url());
    let access = token(&body, "access_token");
    let refresh_token = token(&body, "refresh_token");
    assert_ne!(access, refresh_token);
    assert!(URL_SAFE_NO_PAD.decode(&access).unwrap().len() >= 16);

    let (status, user) = me(&provider, &access).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], "u-1");
    assert_eq!(user["name"], "Ada Lovelace");
    assert_eq!(user["timezone"], "Europe/London");
    // A refresh token is not an access token.
    assert_error(
        me(&provider, &refresh_token).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    assert_eq!(
        provider.stats(),
        DevProviderStats {
            authorization_code_grants: 1,
            userinfo_requests: 2,
            client_auth_header: 1,
            ..DevProviderStats::default()
        }
    );
}

#[tokio::test]
async fn code_exchange_with_body_auth_and_with_both_when_they_agree() {
    let provider = DevProvider::start(config()).await.unwrap();
    let code1 = code(&provider).await;
    let auth = Auth::Body(CLIENT_ID, CLIENT_SECRET);
    let (status, body) = exchange(&provider, auth, &code1, REDIRECT_URI, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        me(&provider, &token(&body, "access_token")).await.0,
        StatusCode::OK
    );

    // Header and body together, agreeing; the body also carries an extra
    // parameter (the regional connector's `region`), which is ignored.
    let code2 = code(&provider).await;
    let response = http()
        .post(format!("{}/oauth/token", provider.base_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code2),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("region", "eu"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    // Header and body disagreeing.
    let code3 = code(&provider).await;
    let response = http()
        .post(format!("{}/oauth/token", provider.base_url()))
        .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code3),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", OTHER_CLIENT_ID),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn basic_credentials_may_be_form_encoded_as_rfc_6749_says() {
    let provider = DevProvider::start(config()).await.unwrap();
    let code = code(&provider).await;
    let encoded: String = url::form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect();
    assert_ne!(encoded, CLIENT_SECRET);
    let header = format!(
        "Basic {}",
        STANDARD.encode(format!("{CLIENT_ID}:{encoded}"))
    );
    let response = http()
        .post(format!("{}/oauth/token", provider.base_url()))
        .header("authorization", header)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn code_exchange_failures_answer_the_right_error() {
    let provider = DevProvider::start(config()).await.unwrap();
    let code = code(&provider).await;
    let ok = || Auth::Header(CLIENT_ID, CLIENT_SECRET);
    let wrong_verifier = "A".repeat(43);
    let bad_request = StatusCode::BAD_REQUEST;
    let unauthorized = StatusCode::UNAUTHORIZED;

    let result = exchange(&provider, ok(), &code, REDIRECT_URI, Some(&wrong_verifier)).await;
    assert_error(result, bad_request, "invalid_grant");
    let result = exchange(&provider, ok(), &code, REDIRECT_URI, None).await;
    assert_error(result, bad_request, "invalid_grant");
    let other_uri = "http://127.0.0.1:9/cb"; // registered, but not the one authorized
    let result = exchange(&provider, ok(), &code, other_uri, Some(VERIFIER)).await;
    assert_error(result, bad_request, "invalid_grant");
    let wrong_secret = Auth::Header(CLIENT_ID, "wrong");
    let result = exchange(&provider, wrong_secret, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_error(result, unauthorized, "invalid_client");
    let wrong_secret = Auth::Body(CLIENT_ID, "wrong");
    let result = exchange(&provider, wrong_secret, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_error(result, unauthorized, "invalid_client");
    let result = exchange(&provider, Auth::None, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_error(result, unauthorized, "invalid_client");
    // A code belongs to the client it was issued to.
    let other = Auth::Header(OTHER_CLIENT_ID, OTHER_SECRET);
    let result = exchange(&provider, other, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_error(result, bad_request, "invalid_grant");
    let result = exchange(
        &provider,
        ok(),
        "no-such-code",
        REDIRECT_URI,
        Some(VERIFIER),
    )
    .await;
    assert_error(result, bad_request, "invalid_grant");
    let form = [("grant_type", "password"), ("username", "ada")];
    let result = post_form(&provider, "/oauth/token", ok(), &form).await;
    assert_error(result, bad_request, "unsupported_grant_type");
    assert_eq!(provider.stats().token_errors, 9);

    // Refused attempts did not use the code up.
    let result = exchange(&provider, ok(), &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_eq!(result.0, StatusCode::OK, "{}", result.1);
}

#[tokio::test]
async fn a_verifier_without_a_challenge_is_refused() {
    let provider = DevProvider::start(config()).await.unwrap();
    let params = [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
    ];
    let (_, query) = redirect_query(&authorize_raw(&provider, &params).await);
    let code = get(&query, "code").unwrap();
    let ok = || Auth::Header(CLIENT_ID, CLIENT_SECRET);
    let result = exchange(&provider, ok(), code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_error(result, StatusCode::BAD_REQUEST, "invalid_grant");
    let result = exchange(&provider, ok(), code, REDIRECT_URI, None).await;
    assert_eq!(result.0, StatusCode::OK, "{}", result.1);
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_the_tokens_it_produced() {
    let provider = DevProvider::start(config()).await.unwrap();
    let code = code(&provider).await;
    let ok = || Auth::Header(CLIENT_ID, CLIENT_SECRET);
    let (status, first) = exchange(&provider, ok(), &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK);
    let access = token(&first, "access_token");
    let refresh_token = token(&first, "refresh_token");
    assert_eq!(me(&provider, &access).await.0, StatusCode::OK);
    assert!(!provider.is_revoked(&access));

    let replay = exchange(&provider, ok(), &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_error(replay, StatusCode::BAD_REQUEST, "invalid_grant");
    assert!(provider.is_revoked(&access));
    assert!(provider.is_revoked(&refresh_token));
    assert_error(
        me(&provider, &access).await,
        StatusCode::UNAUTHORIZED,
        "invalid_token",
    );
    assert_error(
        refresh(&provider, &refresh_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
}

#[tokio::test]
async fn refresh_rotates_and_reusing_a_spent_refresh_token_revokes_the_grant() {
    let provider = DevProvider::start(config()).await.unwrap();
    let code = code(&provider).await;
    let auth = Auth::Body(CLIENT_ID, CLIENT_SECRET);
    let (_, first) = exchange(&provider, auth, &code, REDIRECT_URI, Some(VERIFIER)).await;
    let (access1, refresh1) = (
        token(&first, "access_token"),
        token(&first, "refresh_token"),
    );

    let (status, second) = refresh(&provider, &refresh1).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    let (access2, refresh2) = (
        token(&second, "access_token"),
        token(&second, "refresh_token"),
    );
    assert_ne!(access2, access1);
    assert_ne!(refresh2, refresh1);
    assert_eq!(second["token_type"], "Bearer");
    assert_eq!(second["scope"], "api");
    // Same grant, same user; a normal rotation revokes nothing.
    assert_eq!(me(&provider, &access2).await.1["id"], "u-1");
    assert_eq!(me(&provider, &access1).await.0, StatusCode::OK);
    assert!(!provider.is_revoked(&refresh1));

    // The new refresh token works once more...
    let (status, third) = refresh(&provider, &refresh2).await;
    assert_eq!(status, StatusCode::OK);
    let (access3, refresh3) = (
        token(&third, "access_token"),
        token(&third, "refresh_token"),
    );

    // ...and a spent one, presented again, revokes everything of the grant.
    assert_error(
        refresh(&provider, &refresh1).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    for revoked in [&access1, &access2, &access3, &refresh2, &refresh3] {
        assert!(provider.is_revoked(revoked));
    }
    assert_eq!(me(&provider, &access3).await.0, StatusCode::UNAUTHORIZED);
    assert_error(
        refresh(&provider, &refresh3).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    assert_error(
        refresh(&provider, "unknown").await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let stats = provider.stats();
    assert_eq!(stats.authorization_code_grants, 1);
    assert_eq!(stats.refresh_grants, 2);
    assert_eq!(stats.token_errors, 3);
}

#[tokio::test]
async fn revocation_makes_userinfo_answer_401() {
    let provider = DevProvider::start(config()).await.unwrap();
    let ok = || Auth::Header(CLIENT_ID, CLIENT_SECRET);

    // An access token alone.
    let code1 = code(&provider).await;
    let (_, grant1) = exchange(&provider, ok(), &code1, REDIRECT_URI, Some(VERIFIER)).await;
    let access1 = token(&grant1, "access_token");
    let form = [
        ("token", access1.as_str()),
        ("token_type_hint", "access_token"),
    ];
    let (status, _) = post_form(&provider, "/oauth/revoke", ok(), &form).await;
    assert_eq!(status, StatusCode::OK);
    assert!(provider.is_revoked(&access1));
    assert_eq!(me(&provider, &access1).await.0, StatusCode::UNAUTHORIZED);
    // Its refresh token still works.
    let refresh1 = token(&grant1, "refresh_token");
    assert_eq!(refresh(&provider, &refresh1).await.0, StatusCode::OK);

    // A refresh token takes its grant with it (and a wrong hint is harmless).
    let code2 = code(&provider).await;
    let auth = Auth::Body(CLIENT_ID, CLIENT_SECRET);
    let (_, grant2) = exchange(&provider, auth, &code2, REDIRECT_URI, Some(VERIFIER)).await;
    let (access2, refresh2) = (
        token(&grant2, "access_token"),
        token(&grant2, "refresh_token"),
    );
    let form = [
        ("token", refresh2.as_str()),
        ("token_type_hint", "access_token"),
    ];
    let auth = Auth::Body(CLIENT_ID, CLIENT_SECRET);
    assert_eq!(
        post_form(&provider, "/oauth/revoke", auth, &form).await.0,
        StatusCode::OK
    );
    assert_eq!(me(&provider, &access2).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        refresh(&provider, &refresh2).await.0,
        StatusCode::BAD_REQUEST
    );

    // Unknown tokens: 200 for a valid client; a bad client is refused.
    let form = [("token", "never-issued")];
    assert_eq!(
        post_form(&provider, "/oauth/revoke", ok(), &form).await.0,
        StatusCode::OK
    );
    let bad = Auth::Header(CLIENT_ID, "wrong");
    let result = post_form(&provider, "/oauth/revoke", bad, &form).await;
    assert_error(result, StatusCode::UNAUTHORIZED, "invalid_client");
    // Another client's token is not revoked.
    let code3 = code(&provider).await;
    let (_, grant3) = exchange(&provider, ok(), &code3, REDIRECT_URI, Some(VERIFIER)).await;
    let access3 = token(&grant3, "access_token");
    let other = Auth::Header(OTHER_CLIENT_ID, OTHER_SECRET);
    let form = [("token", access3.as_str())];
    let result = post_form(&provider, "/oauth/revoke", other, &form).await;
    assert_eq!(result.0, StatusCode::BAD_REQUEST);
    assert!(!provider.is_revoked(&access3));
    assert_eq!(provider.stats().revocations, 3);
}

#[tokio::test]
async fn expired_access_tokens_are_refused() {
    let provider = DevProvider::start(DevProviderConfig {
        access_token_lifetime_secs: 0,
        ..config()
    })
    .await
    .unwrap();
    let code = code(&provider).await;
    let auth = Auth::Header(CLIENT_ID, CLIENT_SECRET);
    let (_, body) = exchange(&provider, auth, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_eq!(body["expires_in"], 0);
    let access = token(&body, "access_token");
    assert_eq!(me(&provider, &access).await.0, StatusCode::UNAUTHORIZED);
    assert!(!provider.is_revoked(&access));
}

#[tokio::test]
async fn api_key_userinfo_accepts_a_known_key_only() {
    let provider = DevProvider::start(config()).await.unwrap();
    let users_me = |authorization: Option<String>| {
        let mut request = http().get(format!("{}/v3.1/Users/Me", provider.base_url()));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            (status, response.text().await.unwrap())
        }
    };
    let basic = |pair: &str| Some(format!("Basic {}", STANDARD.encode(pair)));

    let (status, body) = users_me(basic(&format!("{API_KEY}:"))).await;
    assert_eq!(status, StatusCode::OK);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["USER_ID"], 12345);
    assert_eq!(body["FIRST_NAME"], "Ada");
    assert_eq!(body["LAST_NAME"], "Lovelace");
    assert_eq!(body["TIMEZONE_ID"], "GMT Standard Time");

    for refused in [
        basic("other-key:"),
        basic(&format!("{API_KEY}:password")),
        basic(API_KEY),
        Some(format!("Bearer {API_KEY}")),
        None,
    ] {
        let (status, _) = users_me(refused.clone()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{refused:?}");
    }
    assert_eq!(provider.stats().userinfo_requests, 6);
}

/// A code from the authorization endpoint at `path` (PKCE with [`VERIFIER`])
/// and the redirect's `iss`.
async fn code_at(provider: &DevProvider, path: &str) -> (String, String) {
    let challenge = challenge(VERIFIER);
    let mut url = Url::parse(&format!("{}{path}", provider.base_url())).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT_URI),
        ("code_challenge", &challenge),
        ("code_challenge_method", "S256"),
    ]);
    let response = http().get(url).send().await.unwrap();
    let (_, query) = redirect_query(&response);
    (
        get(&query, "code").unwrap().to_string(),
        get(&query, "iss").unwrap().to_string(),
    )
}

#[tokio::test]
async fn client_credentials_in_both_the_header_and_the_body_are_refused() {
    let provider = DevProvider::start(config()).await.unwrap();
    let two_methods = |result: (StatusCode, Value)| {
        assert_error(result.clone(), StatusCode::BAD_REQUEST, "invalid_request");
        assert_eq!(
            result.1["error_description"],
            "client authentication must only be provided using one mechanism"
        );
    };
    let both = |code: &str| -> Vec<(String, String)> {
        [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            ("client_id", CLIENT_ID),
            ("client_secret", CLIENT_SECRET),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    };
    let code = code(&provider).await;
    let form = both(&code);
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    two_methods(
        post_form(
            &provider,
            "/oauth/token",
            Auth::Header(CLIENT_ID, CLIENT_SECRET),
            &form,
        )
        .await,
    );
    // Refused before the code was looked at: it still works with one method.
    let auth = Auth::Header(CLIENT_ID, CLIENT_SECRET);
    let (status, body) = exchange(&provider, auth, &code, REDIRECT_URI, Some(VERIFIER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let access = token(&body, "access_token");

    // Revocation is as strict.
    two_methods(
        post_form(
            &provider,
            "/oauth/revoke",
            Auth::Header(CLIENT_ID, CLIENT_SECRET),
            &[
                ("token", access.as_str()),
                ("client_id", CLIENT_ID),
                ("client_secret", CLIENT_SECRET),
            ],
        )
        .await,
    );
    assert!(!provider.is_revoked(&access));
    assert_eq!(
        provider.stats(),
        DevProviderStats {
            authorization_code_grants: 1,
            token_errors: 1,
            client_auth_header: 1,
            client_auth_two_methods: 2,
            ..DevProviderStats::default()
        }
    );
}

#[tokio::test]
async fn realms_have_their_own_path_issuer_and_keep_their_codes() {
    let provider = DevProvider::start(DevProviderConfig {
        realms: vec!["acme".into(), "other".into()],
        ..config()
    })
    .await
    .unwrap();
    let base = provider.base_url();
    let acme = format!("{base}/realms/acme");
    assert_eq!(provider.realm_issuer("acme"), Some(acme.clone()));
    assert_eq!(provider.realm_issuer("nope"), None);

    let (code, iss) = code_at(&provider, "/realms/acme/oauth/authorize").await;
    assert_eq!(iss, acme);
    // Another issuer of the same origin does not redeem it.
    for path in ["/oauth/token", "/realms/other/oauth/token"] {
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ];
        let result = post_form(
            &provider,
            path,
            Auth::Header(CLIENT_ID, CLIENT_SECRET),
            &form,
        )
        .await;
        assert_error(result.clone(), StatusCode::BAD_REQUEST, "invalid_grant");
        assert!(
            result.1["error_description"]
                .as_str()
                .unwrap()
                .contains("another issuer"),
            "{path}: {}",
            result.1
        );
    }
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", REDIRECT_URI),
        ("code_verifier", VERIFIER),
    ];
    let (status, body) = post_form(
        &provider,
        "/realms/acme/oauth/token",
        Auth::Header(CLIENT_ID, CLIENT_SECRET),
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        me(&provider, &token(&body, "access_token")).await.0,
        StatusCode::OK
    );
    // Its refresh token is the realm's too.
    let refresh_token = token(&body, "refresh_token");
    assert_error(
        refresh(&provider, &refresh_token).await,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    );
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token.as_str()),
    ];
    let (status, body) = post_form(
        &provider,
        "/realms/acme/oauth/token",
        Auth::Header(CLIENT_ID, CLIENT_SECRET),
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // The root issuer is still the origin; unknown realms do not exist.
    let (_, iss) = code_at(&provider, "/oauth/authorize").await;
    assert_eq!(iss, base);
    let response = http()
        .get(format!("{base}/realms/nope/oauth/authorize"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn issuers_may_be_named_under_a_public_url() {
    let provider = DevProvider::start(DevProviderConfig {
        realms: vec!["acme".into()],
        public_url: Some("https://sso.example.test".into()),
        ..config()
    })
    .await
    .unwrap();
    assert_eq!(provider.issuer(), "https://sso.example.test");
    let (_, iss) = code_at(&provider, "/oauth/authorize").await;
    assert_eq!(iss, "https://sso.example.test");
    let (_, iss) = code_at(&provider, "/realms/acme/oauth/authorize").await;
    assert_eq!(iss, "https://sso.example.test/realms/acme");
}

#[tokio::test]
async fn a_realm_name_must_be_a_path_segment() {
    let error = DevProvider::start(DevProviderConfig {
        realms: vec!["a/b".into()],
        ..config()
    })
    .await
    .unwrap_err();
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidInput);
}
