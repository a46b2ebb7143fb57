//! Misbehaving connectors get their typed error within their limit while a
//! well-behaved connector keeps answering.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use connector_abi::hook::Hook;
use connector_sandbox::runtime::{CallContext, CallError};
use connector_sandbox::wit::ConnectorError;
use connector_sandbox::wit::hooks::ConnectionInfo;
use connector_test_support::{connection, load, test_runtime};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misbehaving_connectors_get_typed_errors_while_others_keep_working() {
    let runtime = test_runtime();
    let polite = Arc::new(load(&runtime, "versioned_v1").await);
    let done = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));

    // A steady stream of calls to a well-behaved connector, until the
    // misbehaving calls are over (bounded in count as well).
    let background = {
        let (polite, done, ok, failed) = (polite.clone(), done.clone(), ok.clone(), failed.clone());
        tokio::spawn(async move {
            for _ in 0..200_000 {
                if done.load(Ordering::SeqCst) {
                    break;
                }
                match polite
                    .prepared
                    .user_info(&CallContext::default(), connection())
                    .await
                    .result
                {
                    Ok(user) if user.name == "1.0.0" => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        })
    };

    let spin = load(&runtime, "spin").await;
    let bomb = load(&runtime, "memory_bomb").await;
    let recursion = load(&runtime, "recursion").await;
    let panic = load(&runtime, "panic").await;
    let ctx = CallContext::default();
    let (spin, bomb, recursion, panic) = tokio::join!(
        spin.prepared.user_info(&ctx, connection()),
        bomb.prepared.user_info(&ctx, connection()),
        recursion.prepared.user_info(&ctx, connection()),
        panic.prepared.user_info(&ctx, connection()),
    );
    done.store(true, Ordering::SeqCst);
    background.await.unwrap();

    match spin.result {
        Err(CallError::Timeout {
            connector, hook, ..
        }) => {
            assert_eq!((connector.id.as_str(), hook), ("test-spin", Hook::UserInfo));
        }
        other => panic!("spin: expected a timeout, got {other:?}"),
    }
    match bomb.result {
        Err(CallError::OutOfMemory {
            connector,
            limit_bytes,
            ..
        }) => {
            assert_eq!(connector.id, "test-memory-bomb");
            assert_eq!(limit_bytes, 32 << 20);
        }
        other => panic!("memory bomb: expected out of memory, got {other:?}"),
    }
    match recursion.result {
        Err(CallError::Trap { message, .. }) => {
            assert!(message.contains("stack overflow"), "{message}")
        }
        other => panic!("recursion: expected a stack-overflow trap, got {other:?}"),
    }
    match panic.result {
        Err(CallError::Trap {
            message, connector, ..
        }) => {
            assert_eq!(connector.to_string(), "test-panic@1.0.0");
            assert!(
                message.contains("panicked on purpose"),
                "the guest's panic message is reported: {message}"
            );
        }
        other => panic!("panic: expected a trap, got {other:?}"),
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "well-behaved calls failed"
    );
    assert!(
        ok.load(Ordering::SeqCst) > 0,
        "no well-behaved call completed meanwhile"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_spam_is_capped_and_counted() {
    // 100 000 log calls take a while on a loaded machine: a generous deadline
    // (this test is about the log budget, not the time limit).
    let runtime = std::sync::Arc::new(
        connector_sandbox::runtime::Runtime::new(connector_sandbox::runtime::RuntimeLimits {
            call_timeout_ms: 20_000,
            memory_bytes: 32 << 20,
            log_lines_per_call: 50,
            ..connector_sandbox::runtime::RuntimeLimits::default()
        })
        .expect("runtime"),
    );
    let spam = load(&runtime, "log_spam").await;
    let outcome = spam
        .prepared
        .user_info(&CallContext::default(), connection())
        .await;
    let user = outcome.result.expect("log spam still answers");
    assert_eq!(user.name, "log-spam");
    let report = outcome.report;
    let kept_bytes: usize = report.logs.iter().map(|l| l.message.len()).sum();
    assert!(
        !report.logs.is_empty() && report.logs.len() <= 50,
        "kept {} lines",
        report.logs.len()
    );
    assert!(
        kept_bytes <= 64 << 10,
        "kept {kept_bytes} bytes, over the byte budget"
    );
    assert!(
        report.dropped_log_lines >= 100_000 - 50,
        "dropped {}",
        report.dropped_log_lines
    );
    assert!(
        report.dropped_output_bytes > 0,
        "stderr beyond the cap is dropped, not a trap"
    );
}

#[tokio::test]
async fn hooks_not_implemented_are_never_called() {
    let runtime = test_runtime();
    let polite = load(&runtime, "versioned_v1").await;
    let outcome = polite
        .prepared
        .unauthorize(&CallContext::default(), connection())
        .await;
    match outcome.result {
        Err(CallError::NotImplemented { hook, connector }) => {
            assert_eq!(hook, Hook::Unauthorize);
            assert_eq!(connector.version, "1.0.0");
        }
        other => panic!("expected not implemented, got {other:?}"),
    }
}

#[tokio::test]
async fn guest_errors_keep_their_variant() {
    let runtime = test_runtime();
    let insightly = load(&runtime, "apikey_insightly").await;
    let info = ConnectionInfo {
        hostname: None,
        platform_user_id: None,
        additional_info: vec![("apiUrl".into(), "https://api.na1.insightly.com".into())],
    };
    let outcome = insightly
        .prepared
        .user_info(&CallContext::default(), info)
        .await;
    match outcome.result {
        Err(CallError::Guest {
            error: ConnectorError::Provider(provider),
            connector,
            ..
        }) => {
            assert_eq!(connector.id, "insightly");
            assert!(
                provider.message.contains("credential unavailable"),
                "{}",
                provider.message
            );
        }
        other => panic!("expected the guest's provider error, got {other:?}"),
    }
    assert_eq!(outcome.report.refused_requests, 1);

    let missing = insightly
        .prepared
        .user_info(&CallContext::default(), connection())
        .await;
    assert!(
        matches!(
            missing.result,
            Err(CallError::Guest {
                error: ConnectorError::BadInput(_),
                ..
            })
        ),
        "{:?}",
        missing.result
    );
}

#[tokio::test]
async fn each_call_gets_a_fresh_instance() {
    // The guest counts calls in a static; a reused instance would answer #2, #3…
    let runtime = test_runtime();
    let polite = load(&runtime, "versioned_v1").await;
    for _ in 0..5 {
        let answer = polite
            .prepared
            .test_connection(&CallContext::default(), connection())
            .await
            .result
            .unwrap();
        assert_eq!(answer.as_deref(), Some("v1.0.0#1"));
    }
}

#[tokio::test]
async fn a_component_importing_sockets_is_refused_before_running() {
    let runtime = test_runtime();
    let error = connector_server::registry::load_file(
        &runtime,
        &connector_server::registry::CompileCache::disabled(),
        &connector_test_support::guest("socket_user"),
        &Default::default(),
    )
    .await
    .err()
    .expect("a socket-using component must not load");
    let message = error.to_string();
    assert!(message.contains("wasi:sockets/tcp@"), "{message}");
    assert!(message.contains("does not provide"), "{message}");
}
