//! The host's own API under abuse (`[api]`): a body over the limit is refused
//! with 413, a key over its rate with 429 and `Retry-After` (other keys are
//! not affected), requests beyond the in-flight limit are shed with 503, and a
//! request past its time limit answers 408; a client slow to send its
//! headers (or sending nothing) has its connection closed.

use std::sync::Arc;
use std::time::Duration;

use connector_server::access::Role;
use connector_server::config::ApiLimits;
use connector_test_support::harness::{Host, Options};
use serde_json::json;

async fn host(api: ApiLimits) -> Host {
    Host::with(Options {
        api,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_before_it_is_read() {
    let host = host(ApiLimits {
        body_limit_bytes: 4096,
        ..ApiLimits::default()
    })
    .await;
    let login = |padding: usize| {
        json!({
            "accountId": "acct-1", "userId": "user-1",
            "fields": {"apiKey": "x".repeat(padding), "apiUrl": "http://127.0.0.1:1"}
        })
    };
    let (status, body) = host
        .post("/v1/connectors/local-insightly/api-key/login", login(8192))
        .await;
    assert_eq!(status, 413, "{body}");
    let (status, _) = host
        .post("/v1/connectors/local-insightly/api-key/login", login(16))
        .await;
    assert_ne!(status, 413, "a small body passes the limit");
}

/// Publishing takes whole components (a JavaScript one is about 12 MB): its
/// route has a limit of its own, and only an operator's body is read.
#[tokio::test]
async fn publishing_has_its_own_body_limit_and_reads_only_an_operators_body() {
    let host = host(ApiLimits {
        body_limit_bytes: 4096,
        publish_body_limit_bytes: 64 << 10,
        ..ApiLimits::default()
    })
    .await;
    let operator = host.key(Role::Operator, &[]).await;
    let service = host.key(Role::Service, &["acct-1"]).await;
    let publish = |key: &str, size: usize| {
        let body = json!({ "component": "A".repeat(size) });
        let request = host
            .http
            .post(format!("{}/v1/components", host.base))
            .bearer_auth(key)
            .json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.text().await.unwrap())
        }
    };
    // Over the general limit, under publishing's: read and checked.
    let (status, body) = publish(&operator, 32 << 10).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("component_rejected"), "{body}");
    // Another role is refused before its body is read.
    let (status, body) = publish(&service, 32 << 10).await;
    assert_eq!(status, 403, "{body}");
    // Over publishing's own limit.
    let (status, body) = publish(&operator, 128 << 10).await;
    assert_eq!(status, 413, "{body}");
    // The other routes keep the general limit.
    let (status, _) = host
        .http
        .post(format!("{}/v1/components/x/pin", host.base))
        .bearer_auth(&operator)
        .json(&json!({ "version": "1".repeat(8192) }))
        .send()
        .await
        .map(|r| (r.status().as_u16(), ()))
        .unwrap();
    assert_eq!(status, 413);
}

#[tokio::test]
async fn a_key_over_its_rate_gets_429_and_other_keys_do_not() {
    let host = host(ApiLimits {
        requests_per_second_per_key: 1,
        burst_per_key: 3,
        ..ApiLimits::default()
    })
    .await;
    let greedy = host.key(Role::Service, &["acct-1"]).await;
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..10 {
        let response = host
            .http
            .get(format!("{}/v1/whoami", host.base))
            .bearer_auth(&greedy)
            .send()
            .await
            .unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "the burst is served");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some(), "429 says when to retry");
    let (status, _) = host.get("/v1/whoami").await;
    assert_eq!(status, 200, "another key keeps its own rate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_in_flight_limit_are_shed_and_slow_ones_time_out() {
    let host = Arc::new(
        host(ApiLimits {
            max_in_flight: 1,
            request_timeout_secs: 600,
            ..ApiLimits::default()
        })
        .await,
    );
    // A callback whose token exchange the provider holds keeps the only slot.
    let (_, callback) = host.authorize("acct-1", "").await;
    let hold = host.provider.hold_token_answers();
    let held = {
        let host = host.clone();
        tokio::spawn(async move { host.get(&format!("/v1/oauth/callback?{callback}")).await })
    };
    hold.arrived().await;
    let response = host
        .http
        .get(format!("{}/v1/whoami", host.base))
        .bearer_auth(&host.service_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().get("retry-after").is_some());
    hold.release();
    assert_eq!(held.await.unwrap().0, 200, "the held request completes");
    assert_eq!(
        host.get("/v1/whoami").await.0,
        200,
        "the slot is free again"
    );

    // The same held exchange under a one-second time limit answers 408.
    let host = host_with_timeout().await;
    let (_, callback) = host.authorize("acct-1", "").await;
    let _hold = host.provider.hold_token_answers();
    let (status, body) = host.get(&format!("/v1/oauth/callback?{callback}")).await;
    assert_eq!(status, 408, "{body}");
}

#[tokio::test]
async fn a_client_slow_to_send_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let host = host(ApiLimits {
        header_read_timeout_secs: 1,
        ..ApiLimits::default()
    })
    .await;
    let address = host.base.trim_start_matches("http://").to_string();
    // Half a request, then silence; and a connection that sends nothing.
    let mut half = tokio::net::TcpStream::connect(&address).await.unwrap();
    half.write_all(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await
        .unwrap();
    let mut silent = tokio::net::TcpStream::connect(&address).await.unwrap();
    for (name, stream) in [("half headers", &mut half), ("nothing sent", &mut silent)] {
        // The host closes the connection: the read ends. (The guard only
        // turns a hang, the behaviour without the timeout, into a failure.)
        let mut answer = Vec::new();
        let closed =
            tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut answer)).await;
        assert!(closed.is_ok(), "{name}: the connection stayed open");
        assert!(
            !String::from_utf8_lossy(&answer).contains("200 OK"),
            "{name}: no request was served"
        );
    }
    // A client that sends its request in time is served.
    assert_eq!(host.get("/healthz").await.0, 200);
}

async fn host_with_timeout() -> Host {
    host(ApiLimits {
        request_timeout_secs: 1,
        ..ApiLimits::default()
    })
    .await
}

#[test]
fn out_of_range_limits_are_refused_naming_their_key() {
    let limits = ApiLimits {
        max_in_flight: 0,
        ..ApiLimits::default()
    };
    assert!(limits.validate().unwrap_err().contains("api.max_in_flight"));
    assert!(ApiLimits::default().validate().is_ok());
}
