//! What a guest sends out is bounded: a 100 kB path does not become a 100 kB
//! audit row or log line, a refused request's row still names where it tried
//! to go, and one call cannot send more than its budget of requests.

use std::sync::Arc;

use connector_sandbox::capabilities::http::{
    AuditOutcome, CallCredentials, MAX_HOST_BYTES, MAX_PATH_BYTES, MAX_REASON_BYTES,
    MemoryAuditSink, OutboundConfig,
};
use connector_sandbox::runtime::{CallContext, RuntimeLimits};
use connector_sandbox::wit::hooks::UserIdentity;
use connector_server::registry::LoadedConnector;
use connector_test_support::load;
use connector_test_support::sandbox::{loopback_runtime, probe_request};
use connector_test_support::servers::{Behaviour, start};

async fn probe(audit: &Arc<MemoryAuditSink>) -> LoadedConnector {
    let runtime = loopback_runtime(RuntimeLimits::default(), Default::default(), audit.clone());
    load(&runtime, "http_probe").await
}

async fn send(probe: &LoadedConnector, pairs: &[(&str, &str)]) -> UserIdentity {
    let ctx = CallContext {
        credentials: Arc::new(CallCredentials::default()),
        ..CallContext::default()
    };
    probe
        .prepared
        .user_info(&ctx, probe_request(pairs))
        .await
        .result
        .expect("the probe reports what happened")
}

fn assert_bounded(event: &connector_sandbox::capabilities::http::AuditEvent) {
    let marker = '…'.len_utf8();
    for (field, max) in [
        (&event.host, MAX_HOST_BYTES),
        (&event.path, MAX_PATH_BYTES),
        (&event.reason, MAX_REASON_BYTES),
    ] {
        if let Some(value) = field {
            assert!(value.len() <= max + marker, "{} bytes kept", value.len());
        }
    }
}

#[tokio::test]
async fn a_huge_path_is_cut_in_the_audit_allowed_or_refused() {
    let audit = Arc::new(MemoryAuditSink::default());
    let probe = probe(&audit).await;
    let server = start(Behaviour::Echo).await;
    let long = "a".repeat(100_000);

    // Allowed destination: sent, and its row keeps a bounded path (60 kB: the
    // HTTP client refuses a URI over 64 kB).
    let sixty = "a".repeat(60_000);
    let seen = send(&probe, &[("url", &server.url(&format!("/{sixty}")))]).await;
    assert_eq!(seen.name, "200");
    // Refused destination with a huge host label and path: the row names it, cut.
    let refused = format!("https://{}.evil.example/{long}?key=secret", "h".repeat(300));
    let seen = send(&probe, &[("url", &refused)]).await;
    assert!(seen.name.starts_with("error:"), "{}", seen.name);

    let events = audit.events();
    assert_eq!(events.len(), 2);
    for event in &events {
        assert_bounded(event);
    }
    assert_eq!(events[0].outcome, AuditOutcome::Sent);
    assert!(events[0].path.as_deref().unwrap().ends_with('…'));
    let refused_row = &events[1];
    assert_eq!(refused_row.outcome, AuditOutcome::Refused);
    assert!(
        refused_row.host.as_deref().unwrap().starts_with("hhhh"),
        "the refused row names the destination it tried: {:?}",
        refused_row.host
    );
    assert!(refused_row.path.as_deref().unwrap().starts_with("/aaaa"));
    assert!(
        !format!("{refused_row:?}").contains("key=secret"),
        "never the query"
    );
}

#[tokio::test]
async fn a_refused_url_that_does_not_parse_is_still_recorded() {
    let audit = Arc::new(MemoryAuditSink::default());
    let probe = probe(&audit).await;
    let junk = format!("not a url/{}?token=abc", "x".repeat(5_000));
    let seen = send(&probe, &[("url", &junk)]).await;
    assert!(seen.name.starts_with("error:"));
    let event = audit.events().pop().unwrap();
    assert_eq!(event.outcome, AuditOutcome::Refused);
    assert_bounded(&event);
    let path = event.path.unwrap();
    assert!(path.starts_with("not a url/xxx"), "{path}");
    assert!(!path.contains("token=abc"));
}

#[tokio::test]
async fn a_call_cannot_send_more_than_its_budget_of_requests() {
    let budget = OutboundConfig::default().max_requests_per_call;
    let audit = Arc::new(MemoryAuditSink::default());
    let probe = probe(&audit).await;
    let server = start(Behaviour::Echo).await;
    let flood = (budget + 20).to_string();
    let seen = send(
        &probe,
        &[("url", &server.url("/again")), ("repeat", &flood)],
    )
    .await;
    let sent = seen
        .additional_info
        .iter()
        .find(|(k, _)| k == "sent")
        .map(|(_, v)| v.parse::<u32>().unwrap())
        .unwrap();
    assert_eq!(sent, budget, "exactly the budget went out");
    assert_eq!(server.seen.requests().len(), budget as usize);
    assert!(seen.name.contains("max_requests_per_call"), "{}", seen.name);
    let refused = audit
        .events()
        .iter()
        .filter(|e| e.outcome == AuditOutcome::Refused)
        .count();
    assert_eq!(refused, 20, "every refused attempt is audited");
}

#[tokio::test]
async fn a_hook_result_over_a_cap_is_refused_naming_the_field() {
    use connector_sandbox::runtime::CallError;
    use connector_sandbox::runtime::bounds::{
        MAX_ENTRIES, MAX_ID_BYTES, MAX_TEXT_BYTES, MAX_VALUE_BYTES,
    };

    let runtime = loopback_runtime(
        RuntimeLimits::default(),
        Default::default(),
        Default::default(),
    );
    let guest = load(&runtime, "huge_output").await;
    let cases = [
        ("name", "2097152", "name", MAX_TEXT_BYTES),
        ("platform-user-id", "300", "platform-user-id", MAX_ID_BYTES),
        ("message", "5000", "message", MAX_TEXT_BYTES),
        ("info-count", "65", "additional-info", MAX_ENTRIES),
        (
            "info-value",
            "5000",
            "additional-info[0].value",
            MAX_VALUE_BYTES,
        ),
    ];
    for (field, bytes, named, limit) in cases {
        let outcome = guest
            .prepared
            .user_info(
                &CallContext::default(),
                probe_request(&[("field", field), ("bytes", bytes)]),
            )
            .await;
        match outcome.result {
            Err(CallError::OutputTooLarge {
                field: reported,
                limit: reported_limit,
                ..
            }) => {
                assert_eq!(reported, named);
                assert_eq!(reported_limit, limit);
            }
            other => panic!("{field}: {other:?}"),
        }
    }
    // At the caps exactly, the same answers are fine.
    for (field, bytes) in [("name", MAX_TEXT_BYTES), ("info-count", MAX_ENTRIES)] {
        let outcome = guest
            .prepared
            .user_info(
                &CallContext::default(),
                probe_request(&[("field", field), ("bytes", &bytes.to_string())]),
            )
            .await;
        assert!(
            outcome.result.is_ok(),
            "{field}: {:?}",
            outcome.result.err()
        );
    }
}

#[tokio::test]
async fn a_huge_connector_error_is_cut_not_passed_on() {
    use connector_sandbox::runtime::CallError;
    use connector_sandbox::runtime::bounds::{MAX_ID_BYTES, MAX_TEXT_BYTES};
    use connector_sandbox::wit::ConnectorError;

    let runtime = loopback_runtime(
        RuntimeLimits::default(),
        Default::default(),
        Default::default(),
    );
    let guest = load(&runtime, "huge_output").await;
    let marker = '…'.len_utf8();
    for field in ["error-message", "provider-error"] {
        let outcome = guest
            .prepared
            .user_info(
                &CallContext::default(),
                probe_request(&[("field", field), ("bytes", "2097152")]),
            )
            .await;
        let Err(CallError::Guest { error, .. }) = outcome.result else {
            panic!("{field}: {:?}", outcome.result.err());
        };
        let (message, code) = match error {
            ConnectorError::Internal(message) => (message, None),
            ConnectorError::Provider(provider) => (provider.message, provider.code),
            other => panic!("{field}: {other:?}"),
        };
        assert!(
            message.len() <= MAX_TEXT_BYTES + marker,
            "{field}: {} bytes",
            message.len()
        );
        assert!(message.ends_with('…'), "{field}: the cut is marked");
        if let Some(code) = code {
            assert!(
                code.len() <= MAX_ID_BYTES + marker,
                "{field}: code of {} bytes",
                code.len()
            );
        }
    }
}

#[tokio::test]
async fn a_manifest_number_out_of_range_is_refused_naming_its_field() {
    use connector_server::registry::{CompileCache, load_file};
    let runtime = connector_test_support::test_runtime();
    let error = load_file(
        &runtime,
        &CompileCache::disabled(),
        &connector_test_support::guest("huge_margin"),
        &Default::default(),
    )
    .await
    .err()
    .expect("the connector is refused");
    let message = error.to_string();
    assert!(message.contains("refreshMarginSeconds"), "{message}");
}
