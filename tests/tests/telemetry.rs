//! Telemetry an operator scrapes and reads: `GET /metrics` (Prometheus, an
//! operator key) moves with a login — the login route, the connection event,
//! the hook call and the outbound request — and shows slot and database-pool
//! gauges; every answer carries a request id, which the log lines of that
//! request name, also as JSON (`--log-format json`).

use connector_server::access::Role;
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
