//! Telemetry an operator scrapes and reads: `GET /metrics` (Prometheus, an
//! operator key) moves with a login — the login route, the connection event,
//! the hook call and the outbound request — and shows slot and database-pool
//! gauges; every answer carries a request id, which the log lines of that
//! request name, also as JSON (`--log-format json`); and with an OTLP
//! endpoint, the request and hook spans reach a real collector on loopback,
//! the last of them at SIGTERM, with no secret among them.

use connector_server::access::Role;
use connector_test_support::dev_demo;
use connector_test_support::harness::{API_KEY, Host, captured_logs};
use connector_test_support::serve::Serve;
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// The value of the sample of `name` with every one of `labels`, 0 when
/// there is none (a counter not yet incremented).
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse().unwrap())
        .unwrap_or(0.0)
}

async fn scrape(host: &Host, key: Option<&str>) -> (u16, String) {
    let mut request = host.http.get(format!("{}/metrics", host.base));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_with_a_login_and_answers_carry_a_request_id() {
    let host = Host::start().await;
    let operator = host.key(Role::Operator, &[]).await;
    let (status, before) = scrape(&host, Some(&operator)).await;
    assert_eq!(status, 200, "{before}");

    let login = json!({
        "accountId": "acct-1", "userId": "user-1",
        "fields": {"apiKey": API_KEY, "apiUrl": host.api_url()}
    });
    let response = host
        .http
        .post(format!(
            "{}/v1/connectors/local-insightly/api-key/login",
            host.base
        ))
        .bearer_auth(&host.service_key)
        .header("x-request-id", "tele-login-1")
        .json(&login)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-request-id"], "tele-login-1");

    let (_, after) = scrape(&host, Some(&operator)).await;
    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    let connector = ("connector", "local-insightly");
    assert_eq!(
        moved(
            "connector_host_http_requests_total",
            &[
                ("method", "POST"),
                ("route", "/v1/connectors/{id}/api-key/login"),
                ("status", "200")
            ]
        ),
        1.0,
        "{after}"
    );
    assert_eq!(
        moved(
            "connector_host_connection_events_total",
            &[connector, ("type", "connection.created")]
        ),
        1.0,
        "a login is a connection.created event"
    );
    assert_eq!(
        moved(
            "connector_host_hook_calls_total",
            &[connector, ("hook", "user-info"), ("outcome", "ok")]
        ),
        1.0
    );
    assert_eq!(
        moved(
            "connector_host_hook_call_duration_seconds_count",
            &[connector, ("hook", "user-info")]
        ),
        1.0,
        "latency is a histogram"
    );
    assert!(
        moved(
            "connector_host_outbound_requests_total",
            &[connector, ("outcome", "sent")]
        ) >= 1.0,
        "user-info called the CRM"
    );
    assert!(sample(&after, "connector_host_call_slots", &[]) >= 1.0);
    assert!(
        after.contains("connector_host_db_pool_connections{state=\"idle\"}"),
        "{after}"
    );
    // Change notices: always heard on SQLite; on PostgreSQL once the
    // listening connection is up.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let (_, now) = scrape(&host, Some(&operator)).await;
        if sample(&now, "connector_host_change_notices_live", &[]) == 1.0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{now}");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // The log lines written while the login was handled name its id.
    let logs = String::from_utf8_lossy(&captured_logs().lock().unwrap()).into_owned();
    assert!(
        logs.lines()
            .any(|line| line.contains("tele-login-1") && line.contains("outbound request")),
        "no log line of the login names its request id"
    );

    // Only operators read the metrics.
    assert_eq!(scrape(&host, None).await.0, 401);
    assert_eq!(scrape(&host, Some(&host.service_key)).await.0, 403);

    // An id the caller sends is kept only when it is short and plain;
    // otherwise the host makes one. Answers the router makes itself have one too.
    for (sent, kept) in [
        ("ok-id_1.2", true),
        ("has space", false),
        (&*"x".repeat(65), false),
    ] {
        let response = host
            .http
            .get(format!("{}/healthz", host.base))
            .header("x-request-id", sent)
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_string();
        assert_eq!(id == sent, kept, "{sent:?} → {id}");
        assert!(kept || id.starts_with("req_"), "{id}");
    }
    let missing = host
        .http
        .get(format!("{}/no/such/route", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert!(missing.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_are_one_object_per_line_and_name_the_request() {
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("plugins")).unwrap();
    let database = format!("sqlite://{}/host.db?mode=rwc", work.path().display());
    let mut server = Serve::new(BIN)
        .plugins_dir(work.path().join("plugins"))
        .database_url(&database)
        .cache_dir(work.path().join("cache"))
        .master_keys(&connector_server::store::crypto::Keyring::generate_entry(
            "telemetry",
        ))
        .args(["--log-format", "json"])
        .env("RUST_LOG", "info,connector_host::access=debug")
        .start();
    let response = reqwest::Client::new()
        .get(format!("{}/healthz", server.base))
        .header("x-request-id", "json-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let line = server.process.line(|line| line.contains("json-req-1"));
    let entry: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(entry["span"]["request_id"], "json-req-1", "{line}");
    assert_eq!(entry["target"], "connector_host::access", "{line}");
    assert_eq!(entry["fields"]["status"], 200, "{line}");
    let listening = server
        .process
        .line(|line| line.contains("listening on http://"));
    let entry: Value = serde_json::from_str(&listening).expect("every line is JSON");
    assert_eq!(entry["level"], "INFO");
}

/// An OTLP/HTTP collector on loopback: keeps the body of every
/// `POST /v1/traces` (protobuf).
async fn collector() -> (String, std::sync::Arc<std::sync::Mutex<Vec<bytes::Bytes>>>) {
    use axum::http::{HeaderMap, StatusCode, header::CONTENT_TYPE};
    let bodies = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |headers: HeaderMap, body: bytes::Bytes| {
            let kept = kept.clone();
            async move {
                if headers[CONTENT_TYPE] != "application/x-protobuf" {
                    return StatusCode::UNSUPPORTED_MEDIA_TYPE;
                }
                kept.lock().unwrap().push(body);
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (base, bodies)
}

/// A span as the collector received it: name, trace, parent and string attributes.
#[derive(Debug)]
struct Exported {
    name: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent_span_id: Vec<u8>,
    attributes: std::collections::BTreeMap<String, String>,
}

/// Decodes every export request; also returns the `service.name` of each.
fn exported_spans(bodies: &[bytes::Bytes]) -> (Vec<Exported>, Vec<String>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value as Any};
    use prost::Message as _;
    let text = |attributes: &[KeyValue]| {
        attributes
            .iter()
            .filter_map(|kv| match kv.value.as_ref()?.value.as_ref()? {
                Any::StringValue(s) => Some((kv.key.clone(), s.clone())),
                _ => None,
            })
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let (mut spans, mut services) = (Vec::new(), Vec::new());
    for body in bodies {
        let request = ExportTraceServiceRequest::decode(body.clone()).expect("OTLP protobuf");
        for resource in request.resource_spans {
            let attributes = resource.resource.map(|r| text(&r.attributes));
            services.extend(attributes.and_then(|a| a.get("service.name").cloned()));
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                spans.push(Exported {
                    attributes: text(&span.attributes),
                    name: span.name,
                    trace_id: span.trace_id,
                    span_id: span.span_id,
                    parent_span_id: span.parent_span_id,
                });
            }
        }
    }
    (spans, services)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_and_hook_spans_reach_an_otlp_collector_by_shutdown() {
    let (endpoint, bodies) = collector().await;
    let work = tempfile::tempdir().unwrap();
    let server = dev_demo::start_with(std::path::Path::new(BIN), work.path(), |serve| {
        serve.env("CONNECTOR_HOST_OTLP_ENDPOINT", &endpoint)
    });
    let response = server
        .api_key_login_request()
        .header("x-request-id", "otlp-login-1")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let service_key = server.service_key.clone();

    // The last spans are sent at shutdown: nothing here waits for a batch.
    let (exited, lines) = server.server.terminate(std::time::Duration::from_secs(60));
    assert!(
        exited,
        "serve exits cleanly on SIGTERM:\n{}",
        lines.join("\n")
    );
    let bodies = bodies.lock().unwrap().clone();
    let (spans, services) = exported_spans(&bodies);
    assert!(!services.is_empty() && services.iter().all(|s| s == "connector-host"));

    let request = spans
        .iter()
        .find(|s| {
            s.name == "request"
                && s.attributes.get("request_id").map(String::as_str) == Some("otlp-login-1")
        })
        .unwrap_or_else(|| panic!("the login's request span: {spans:#?}"));
    assert_eq!(request.attributes["method"], "POST");
    let hook = spans
        .iter()
        .find(|s| s.name == "hook" && s.trace_id == request.trace_id)
        .unwrap_or_else(|| panic!("a hook span in the login's trace: {spans:#?}"));
    assert_eq!(hook.attributes["connector"], "local-insightly@1.0.0");
    // The hook span descends from the request span.
    let mut parent = hook.parent_span_id.clone();
    let mut hops = 0;
    while parent != request.span_id {
        let up = spans
            .iter()
            .find(|s| s.span_id == parent)
            .unwrap_or_else(|| panic!("the hook span's ancestors lead to the request: {spans:#?}"));
        parent = up.parent_span_id.clone();
        hops += 1;
        assert!(hops < 10, "{spans:#?}");
    }
    // Neither the provider's API key nor the caller's service key is exported.
    for body in &bodies {
        for secret in ["dev-api-key", service_key.as_str()] {
            assert!(
                memchr::memmem::find(body, secret.as_bytes()).is_none(),
                "an export carries a secret"
            );
        }
    }
}
