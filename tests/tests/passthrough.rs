//! The pass-through proxy (`ANY …/connections/{id}/proxy/{*path}`) against
//! real HTTP servers on 127.0.0.1: what the platform sends arrives upstream
//! (method, path, query, headers, body) with the connection's credential
//! injected and the platform's own key and cookies left out; what the
//! provider answers comes back as it is (any status, headers without
//! `set-cookie`, body with an echoed credential masked); a path that could
//! leave the origin is refused before anything is sent; a body over
//! `[api] proxy_body_limit_bytes` is refused with 413 while it streams, an
//! answer over it with 502 (declared) or cut (streamed); and
//! a 401 to a bodyless GET refreshes the token once and sends it again,
//! while only a request without a body is sent again after a 429.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::Request;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use connector_sandbox::capabilities::http::AuditOutcome;
use connector_server::config::ApiLimits;
use connector_test_support::harness::{API_KEY, Host, Options};
use connector_test_support::oauth;
use futures_util::StreamExt as _;
use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// What the upstream received: method, path and query, headers, body.
type Received = Arc<Mutex<Vec<(String, String, HeaderMap, Bytes)>>>;

/// An upstream on 127.0.0.1 that records each request and answers `status`
/// with a few headers (a cookie among them) and a body that quotes the
/// request's `authorization` and its body. Returns its origin.
async fn upstream(status: u16) -> (String, Received) {
    let received: Received = Arc::default();
    let log = received.clone();
    let app = axum::Router::new().fallback(move |request: Request| {
        let log = log.clone();
        async move {
            let (parts, body) = request.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let target = parts.uri.path_and_query().unwrap().to_string();
            let auth = parts
                .headers
                .get("authorization")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            let answer = format!("you sent {} bytes with authorization {auth}", body.len());
            log.lock()
                .unwrap()
                .push((parts.method.to_string(), target, parts.headers, body));
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                [
                    ("x-upstream", "yes"),
                    ("set-cookie", "session=provider-side"),
                    ("content-type", "text/plain"),
                ],
                answer,
            )
                .into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (origin, received)
}

/// An API-key connection of `local-insightly` (allowed hosts
/// `http://127.0.0.1:*`, the key placed as Basic `{apiKey}:`).
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

fn proxy_url(host: &Host, id: &str, rest: &str) -> String {
    format!(
        "{}/v1/accounts/acct-1/users/user-1/connections/{id}/proxy/{rest}",
        host.base
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_and_the_answer_pass_through_with_the_credential_injected_by_the_host() {
    let host = Host::start().await;
    let id = api_key_connection(&host).await;
    for status in [201u16, 404, 500] {
        let (origin, received) = upstream(status).await;
        let before = host.audit.events().len();
        let response = host
            .http
            .patch(proxy_url(
                &host,
                &id,
                "api/v2/contacts/%40ada?fields=a,b&x=%20y",
            ))
            .bearer_auth(&host.service_key)
            .header("connector-host-origin", &origin)
            .header("content-type", "application/json")
            .header("x-custom", "kept")
            .header("cookie", "platform-session=1")
            .header("x-forwarded-for", "10.1.2.3")
            .header("accept-encoding", "gzip")
            .body(r#"{"name":"Ada"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), status, "the provider's status");
        assert_eq!(response.headers()["x-upstream"], "yes");
        assert!(
            response.headers().get("set-cookie").is_none(),
            "the provider's cookies stay with the host"
        );
        let body = response.text().await.unwrap();
        assert!(
            body.starts_with("you sent 14 bytes with authorization "),
            "{body}"
        );
        assert!(
            body.contains("[redacted]") && !body.contains(API_KEY),
            "the echoed credential is masked: {body}"
        );
        let received = received.lock().unwrap().clone();
        assert_eq!(received.len(), 1, "sent once");
        let (method, target, headers, sent) = &received[0];
        assert_eq!(method, "PATCH");
        assert_eq!(target, "/api/v2/contacts/%40ada?fields=a,b&x=%20y");
        assert_eq!(&sent[..], br#"{"name":"Ada"}"#);
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["x-custom"], "kept");
        use base64::Engine as _;
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{API_KEY}:"));
        assert_eq!(headers["authorization"], format!("Basic {basic}").as_str());
        let all = format!("{headers:?}");
        assert!(
            !all.contains(&host.service_key),
            "the platform's key stays with the host"
        );
        for dropped in [
            "cookie",
            "x-forwarded-for",
            "accept-encoding",
            "connector-host-origin",
        ] {
            assert!(headers.get(dropped).is_none(), "{dropped} was forwarded");
        }
        let events = host.audit.events();
        let event = events[before..]
            .iter()
            .find(|e| e.path.as_deref() == Some("/api/v2/contacts/%40ada"))
            .expect("audited");
        assert_eq!(
            (
                event.status,
                event.request_bytes,
                event.credential.as_deref(),
                event.scrubbed
            ),
            (Some(status), 14, Some("api-key"), true)
        );
    }
}

/// Sends `target` as it is (no client-side normalisation of `..` or
/// percent-encodings) over a raw HTTP/1.1 connection; the status.
async fn raw_status(host: &Host, target: &str, origin: &str) -> u16 {
    let address = host.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let request = format!(
        "GET {target} HTTP/1.1\r\nhost: {address}\r\nauthorization: Bearer {}\r\n\
         connector-host-origin: {origin}\r\nconnection: close\r\n\r\n",
        host.service_key
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.unwrap();
    let answer = String::from_utf8_lossy(&answer);
    answer
        .split_whitespace()
        .nth(1)
        .and_then(|status| status.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_path_that_could_leave_the_origin_is_refused_before_anything_is_sent() {
    let host = Host::start().await;
    let id = api_key_connection(&host).await;
    let (origin, received) = upstream(200).await;
    let prefix = format!("/v1/accounts/acct-1/users/user-1/connections/{id}/proxy/");
    for path in [
        "..",
        "../../../healthz",
        "api/../../admin",
        "%2e%2e/admin",
        "%2E%2e/admin",
        ".%2e/admin",
        "api/.",
        "/evil.example/x",
        "api//x",
        "http://evil.example/x",
        "https:%2F%2Fevil.example/x",
        "api%2F..%2Fadmin",
        "api%5C..%5Cadmin",
        "api\\..\\admin",
        "api/%00",
        "api/%0d%0aX-Injected:%201",
        "api/%zz",
    ] {
        let status = raw_status(&host, &format!("{prefix}{path}"), &origin).await;
        assert!(status == 400 || status == 404, "{path:?} answered {status}");
    }
    // Another origin than the connector allows, or a pattern, is refused too.
    for other in [
        "https://evil.example",
        "http://127.0.0.1:*",
        "http://127.0.0.2:80",
    ] {
        let status = raw_status(&host, &format!("{prefix}api/x"), other).await;
        assert_eq!(status, 400, "origin {other}");
    }
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
    // Methods other than the seven are not forwarded.
    let trace = host
        .http
        .request(
            reqwest::Method::TRACE,
            format!("{}{prefix}api/x", host.base),
        )
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(trace.status().as_u16(), 405);
    assert!(
        received.lock().unwrap().is_empty(),
        "nothing reached the upstream"
    );
    // A `@` or `:` inside a segment is a path, under the same origin.
    let status = raw_status(&host, &format!("{prefix}@evil.example/x:y"), &origin).await;
    assert_eq!(status, 200);
    assert_eq!(received.lock().unwrap()[0].1, "/@evil.example/x:y");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_over_the_limit_is_refused_with_413_while_it_streams() {
    const LIMIT: usize = 64 << 10;
    let host = Host::with(Options {
        api: ApiLimits {
            proxy_body_limit_bytes: LIMIT,
            ..ApiLimits::default()
        },
        ..Options::default()
    })
    .await;
    let id = api_key_connection(&host).await;
    let (origin, received) = upstream(200).await;
    let url = proxy_url(&host, &id, "upload");

    // Declared too long: refused before a byte of it is read.
    let response = host
        .http
        .post(&url)
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .body(vec![b'x'; LIMIT + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 413);
    assert!(received.lock().unwrap().is_empty());

    // Streamed without a length: cut once it passes the limit. The sender
    // would produce 1 GiB; it is stopped long before (not buffered whole).
    const OFFERED: u64 = 1 << 30;
    let produced = Arc::new(AtomicU64::new(0));
    let counter = produced.clone();
    let chunks = futures_util::stream::iter(0..OFFERED / (16 << 10)).map(move |_| {
        counter.fetch_add(16 << 10, Ordering::Relaxed);
        Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 16 << 10]))
    });
    let response = host
        .http
        .post(&url)
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    match response {
        Ok(response) => {
            assert_eq!(response.status().as_u16(), 413);
            let error: serde_json::Value = response.json().await.unwrap();
            assert_eq!(error["code"], "body_too_large");
        }
        // The host may close the connection while the client still sends.
        Err(error) => assert!(!error.is_timeout(), "{error}"),
    }
    let produced = produced.load(Ordering::Relaxed);
    assert!(
        produced < OFFERED / 4,
        "the host read {produced} bytes of a body it refuses after {LIMIT}"
    );
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .all(|(_, _, _, body)| body.len() <= LIMIT),
        "the upstream never got more than the limit"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_to_a_bodyless_get_refreshes_the_token_once_and_sends_it_again() {
    let host = Host::start().await;
    let id = oauth::login(&host, "acct-1", "user-1").await;
    let old = host.access_token(&id).await;
    host.revoke_at_provider("regional-public-client", &old)
        .await;

    let before = host.audit.events().len();
    let response = host
        .http
        .get(proxy_url(&host, &id, "api/v1/me"))
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", host.api_url())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
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
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_request_without_a_body_is_sent_again_after_a_429() {
    let host = Host::start().await;
    let id = api_key_connection(&host).await;
    // An upstream that answers 429 (Retry-After: 0) to every other request.
    let count = Arc::new(AtomicU64::new(0));
    let seen = count.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            if seen.fetch_add(1, Ordering::SeqCst).is_multiple_of(2) {
                (
                    axum::http::StatusCode::TOO_MANY_REQUESTS,
                    [("retry-after", "0")],
                    "slow down",
                )
                    .into_response()
            } else {
                "ok".into_response()
            }
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let get = host
        .http
        .get(proxy_url(&host, &id, "records"))
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status().as_u16(), 200, "a bodyless GET is sent again");
    assert_eq!(get.text().await.unwrap(), "ok");
    assert_eq!(count.load(Ordering::SeqCst), 2);

    let put = host
        .http
        .put(proxy_url(&host, &id, "records/1"))
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .body("a streamed body is read once")
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 429, "a request with a body is not");
    assert_eq!(put.headers()["retry-after"], "0");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_over_the_limit_is_refused_or_cut_while_it_streams() {
    const LIMIT: usize = 64 << 10;
    let host = Host::with(Options {
        api: ApiLimits {
            proxy_body_limit_bytes: LIMIT,
            ..ApiLimits::default()
        },
        ..Options::default()
    })
    .await;
    let id = api_key_connection(&host).await;
    let chunk = Bytes::from(vec![b'a'; 16 << 10]);
    let app = axum::Router::new()
        .route(
            "/declared",
            axum::routing::get(|| async { vec![b'a'; 2 * LIMIT] }),
        )
        .route(
            "/streamed",
            axum::routing::get(move || {
                let chunk = chunk.clone();
                async move {
                    let chunks = futures_util::stream::iter(0..8)
                        .map(move |_| Ok::<_, std::io::Error>(chunk.clone()));
                    axum::body::Body::from_stream(chunks)
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // A declared length over the limit: 502 before any of the body.
    let declared = host
        .http
        .get(proxy_url(&host, &id, "declared"))
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(declared.status().as_u16(), 502);
    let error: serde_json::Value = declared.json().await.unwrap();
    assert_eq!(error["code"], "provider_error", "{error}");

    // No declared length: the answer starts, and is cut at the limit.
    let before = host.audit.events().len();
    let streamed = host
        .http
        .get(proxy_url(&host, &id, "streamed"))
        .bearer_auth(&host.service_key)
        .header("connector-host-origin", &origin)
        .send()
        .await
        .unwrap();
    assert_eq!(streamed.status().as_u16(), 200);
    assert!(
        streamed.bytes().await.is_err(),
        "the body is cut, not completed"
    );
    let events = host.audit.events();
    let event = events[before..]
        .iter()
        .find(|e| e.path.as_deref() == Some("/streamed"))
        .expect("audited");
    assert_eq!(event.outcome, AuditOutcome::Failed, "{event:?}");
    assert!(event.response_bytes <= (LIMIT + (16 << 10)) as u64);
}
