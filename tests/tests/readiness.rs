//! `/readyz` (readiness, no key) next to `/healthz` (liveness): ready while
//! the database answers, `503` with `Retry-After` once it does not, and the
//! body names nothing about the connectors.

use connector_test_support::harness::Host;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_follows_the_database_and_liveness_does_not() {
    let host = Host::start().await;
    let ready = host
        .http
        .get(format!("{}/readyz", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body, json!({"status": "ready", "reason": null}));

    // The database goes away: not ready, retry later; still alive.
    host.database.close().await;
    let not_ready = host
        .http
        .get(format!("{}/readyz", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(not_ready.status(), 503);
    assert_eq!(not_ready.headers()["retry-after"], "1");
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(body["status"], "not ready");
    assert_eq!(body["reason"], "the database does not answer");
    let alive = host
        .http
        .get(format!("{}/healthz", host.base))
        .send()
        .await
        .unwrap();
    assert_eq!(alive.status(), 200);
}
