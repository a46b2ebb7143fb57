//! Injected secrets never come back to the guest: a server on the connector's
//! allowlist that echoes everything it received — headers, the URL with its
//! query, in `Location`, `Link` and `Content-Location`, base64-, percent- and
//! JSON-encoded — hands the `http-probe` connector nothing secret, and the audit
//! records that the response was scrubbed.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use connector_sandbox::capabilities::http::scrub::REDACTED;
use connector_sandbox::capabilities::http::{
    ApiKeyPlacement, HostSecret, MemoryAuditSink, SecretPurpose,
};
use connector_sandbox::runtime::{CallContext, RuntimeLimits};
use connector_server::config::ConnectorSettings;
use connector_server::registry::{CompileCache, LoadedConnector, load_file};
use connector_test_support::guest;
use connector_test_support::sandbox::{loopback_runtime, probe_request};
use secrecy::SecretString;

use connector_test_support::sandbox::{HOST_SECRET, SECRETS, probe_credentials as credentials};

/// Every encoding of every secret a careless check would miss.
fn encodings(secret: &str) -> Vec<String> {
    let percent: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
    vec![
        secret.to_string(),
        percent.clone(),
        percent.to_lowercase(),
        percent.replace('+', "%20"),
        STANDARD.encode(secret),
        URL_SAFE_NO_PAD.encode(secret),
        serde_json::to_string(secret)
            .unwrap()
            .trim_matches('"')
            .to_string(),
    ]
}

/// A server that reflects the request in every way a real API might:
/// `/reflect` answers 200, `/moved` answers 302 with the URL as `Location`.
async fn start_reflector() -> String {
    let app = Router::new().fallback(|request: Request| async move {
        let target = request.uri().to_string();
        let headers: BTreeMap<String, String> = request
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), String::from_utf8_lossy(v.as_bytes()).into()))
            .collect();
        let all_headers = format!("{headers:?}");
        let encoded_target: String =
            url::form_urlencoded::byte_serialize(target.as_bytes()).collect();
        let body = serde_json::json!({
            "error": format!("invalid request to {target}"),
            "headers": headers,
            "headersBase64": STANDARD.encode(&all_headers),
            "targetEncoded": encoded_target,
        })
        .to_string();
        let status = if target.starts_with("/moved") {
            StatusCode::FOUND
        } else {
            StatusCode::OK
        };
        let echoed = headers
            .get("authorization")
            .or(headers.get("x-api-key"))
            .or(headers.get("x-host-token"))
            .cloned()
            .unwrap_or_default();
        Response::builder()
            .status(status)
            .header("location", format!("http://elsewhere.example{target}"))
            .header("link", format!("<{target}&page=2>; rel=\"next\""))
            .header("content-location", &target)
            .header("x-echo", echoed)
            .body(axum::body::Body::from(body))
            .unwrap()
            .into_response()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

async fn load_probe(audit: Arc<MemoryAuditSink>) -> LoadedConnector {
    // Granted for placement into the probe's requests, which these tests echo.
    let grant = HostSecret::new(
        SecretString::from(HOST_SECRET),
        ["test-http-probe".to_string()],
    )
    .for_purposes([SecretPurpose::RequestHeader]);
    let secrets = BTreeMap::from([("probe-secret".to_string(), grant)]);
    let runtime = loopback_runtime(RuntimeLimits::default(), secrets, audit);
    let path = guest("http_probe");
    // The probe's API key goes into a query string in some cases.
    let settings = BTreeMap::from([(
        "test-http-probe".to_string(),
        ConnectorSettings {
            allow_query_credential: true,
            ..Default::default()
        },
    )]);
    load_file(&runtime, &CompileCache::disabled(), &path, &settings)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_echoing_server_hands_the_guest_no_injected_secret() {
    let base = start_reflector().await;
    let audit = Arc::new(MemoryAuditSink::default());
    let probe = load_probe(audit.clone()).await;
    let cases: Vec<(&str, &str, ApiKeyPlacement)> = vec![
        ("/reflect?page=1", "access-token", ApiKeyPlacement::Bearer),
        ("/reflect?page=1", "api-key", ApiKeyPlacement::Bearer),
        (
            "/reflect?page=1",
            "api-key",
            ApiKeyPlacement::Basic("{apiKey}:{tenantId}".into()),
        ),
        (
            "/reflect?page=1",
            "api-key",
            ApiKeyPlacement::Header("X-Api-Key".into()),
        ),
        (
            "/reflect?page=1",
            "api-key",
            ApiKeyPlacement::Query("key".into()),
        ),
        (
            "/moved?page=1",
            "api-key",
            ApiKeyPlacement::Query("key".into()),
        ),
        (
            "/reflect?page=1",
            "client-credentials",
            ApiKeyPlacement::Bearer,
        ),
        (
            "/reflect?page=1",
            "secret:probe-secret:X-Host-Token",
            ApiKeyPlacement::Bearer,
        ),
    ];
    for (path, credential, placement) in cases {
        let url = format!("{base}{path}");
        let info = probe_request(&[("url", &url), ("credential", credential)]);
        let ctx = CallContext {
            account_id: Some("acct-1".into()),
            credentials: credentials(placement.clone()),
            ..CallContext::default()
        };
        let seen = probe
            .prepared
            .user_info(&ctx, info)
            .await
            .result
            .expect("the probe reports what it saw");
        let view = format!("{seen:?}");
        assert!(
            seen.name == "200" || seen.name == "302",
            "{credential} {placement:?}: {}",
            seen.name
        );
        for secret in SECRETS {
            for encoded in encodings(secret) {
                assert!(
                    !view.contains(&encoded),
                    "{credential} {placement:?} {path}: the guest saw `{encoded}`:\n{view}"
                );
            }
        }
        assert!(
            view.contains(REDACTED),
            "{credential} {placement:?}: nothing was echoed?"
        );
        let event = audit.events().pop().unwrap();
        assert!(
            event.scrubbed,
            "{credential} {placement:?}: the audit records the scrub"
        );
    }
}

#[tokio::test]
async fn a_response_that_echoes_nothing_secret_is_untouched_and_not_marked() {
    let base = start_reflector().await;
    let audit = Arc::new(MemoryAuditSink::default());
    let probe = load_probe(audit.clone()).await;
    let info = probe_request(&[("url", &format!("{base}/reflect?page=1"))]);
    let ctx = CallContext {
        credentials: credentials(ApiKeyPlacement::Bearer),
        ..CallContext::default()
    };
    let seen = probe.prepared.user_info(&ctx, info).await.result.unwrap();
    assert_eq!(seen.name, "200");
    assert!(!format!("{seen:?}").contains(REDACTED));
    assert!(!audit.events().pop().unwrap().scrubbed);
}
