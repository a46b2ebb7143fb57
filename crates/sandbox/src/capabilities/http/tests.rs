//! Unit tests of the outbound pipeline: `Outbound` and `HttpCapability`.

use std::collections::{BTreeMap, BTreeSet};

use connector_abi::manifest::AllowedOrigin;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::generated::connector::auth::http::{Credential, Method, SecretHeader};

const TOKEN: &str = "tok-unit-very-secret";
const SECRET: &str = "hs-unit-very-secret";

fn outbound(require_https: bool, purposes: &[SecretPurpose]) -> (Outbound, Arc<MemoryAuditSink>) {
    let audit = Arc::new(MemoryAuditSink::default());
    let config = OutboundConfig {
        allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
        require_https,
        ..OutboundConfig::default()
    };
    let secrets = BTreeMap::from([(
        "unit-secret".to_string(),
        HostSecret::new(SecretString::from(SECRET), ["unit".to_string()])
            .for_purposes(purposes.iter().copied()),
    )]);
    let outbound = Outbound::new(
        config,
        Arc::new(SystemResolver),
        Arc::new(secrets),
        audit.clone(),
    )
    .unwrap();
    (outbound, audit)
}

fn policy() -> ConnectorPolicy {
    ConnectorPolicy {
        manifest_origins: ["http://127.0.0.1:*", "https://allowed.example"]
            .iter()
            .map(|o| AllowedOrigin::parse(o).unwrap())
            .collect(),
        operator_origins: None,
        declared_secrets: BTreeSet::from(["unit-secret".to_string()]),
        allow_query_credential: false,
    }
}

fn capability(outbound: Outbound) -> HttpCapability {
    HttpCapability::new(
        Arc::new(outbound),
        Arc::new(policy()),
        Arc::new(CallCredentials {
            access_token: Some(SecretString::from(TOKEN)),
            ..CallCredentials::default()
        }),
        Arc::new(ConnectorRef {
            id: "unit".into(),
            version: "1.0.0".into(),
        }),
        Some("acct-1".into()),
        Instant::now() + Duration::from_secs(30),
    )
}

fn get(url: &str, credential: Option<Credential>) -> Request {
    Request {
        method: Method::Get,
        url: url.to_string(),
        headers: Vec::new(),
        body: None,
        credential,
    }
}

/// A server on 127.0.0.1 answering `200` to every request, and how many
/// connections it accepted.
async fn server() -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = stream.read(&mut buffer).await;
                let _ = stream
                    .write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                    )
                    .await;
            });
        }
    });
    (base, accepted)
}

fn not_permitted(result: Result<Response, HttpError>) -> String {
    match result {
        Err(HttpError::NotPermitted(message)) => message,
        other => panic!("expected not-permitted, got {other:?}"),
    }
}

#[test]
fn the_hosts_own_requests_need_https_when_required() {
    let (required, _) = outbound(true, SecretPurpose::DEFAULT);
    let error = required
        .check_url(&policy(), "http://127.0.0.1:8080/oauth/token")
        .unwrap_err();
    let HttpError::NotPermitted(message) = &error else {
        panic!("{error:?}");
    };
    assert!(
        message.contains("http://127.0.0.1:8080") && message.contains("require_https"),
        "{message}"
    );
    assert!(
        required
            .check_url(&policy(), "https://allowed.example/oauth/token")
            .is_ok()
    );
    let (allowed, _) = outbound(false, SecretPurpose::DEFAULT);
    assert!(
        allowed
            .check_url(&policy(), "http://127.0.0.1:8080/oauth/token")
            .is_ok()
    );
    assert!(OutboundConfig::default().require_https, "on by default");
}

#[test]
fn a_host_refusal_is_audited_naming_the_destination() {
    let (outbound, audit) = outbound(true, SecretPurpose::DEFAULT);
    let url = "http://127.0.0.1:8080/oauth/token?x=1";
    let error = outbound.check_url(&policy(), url).unwrap_err();
    let connector = ConnectorRef {
        id: "unit".into(),
        version: "1.0.0".into(),
    };
    outbound.audit_host_refusal(
        &connector,
        Some("acct-1"),
        url,
        "client-credentials (code exchange)",
        &error,
    );
    let events = audit.events();
    assert_eq!(events.len(), 1);
    let event = &events[0];
    assert_eq!(event.outcome, AuditOutcome::Refused);
    assert_eq!(
        (event.host.as_deref(), event.port, event.path.as_deref()),
        (Some("127.0.0.1"), Some(8080), Some("/oauth/token"))
    );
    assert!(
        event
            .reason
            .as_deref()
            .unwrap()
            .starts_with("not-permitted")
    );
    assert_eq!(event.account_id.as_deref(), Some("acct-1"));
}

#[tokio::test]
async fn a_credential_goes_over_plain_http_only_when_allowed() {
    let (base, accepted) = server().await;
    let url = format!("{base}/v1/me");

    // Required: refused before anything is sent, and audited.
    let (required, audit) = outbound(true, &[SecretPurpose::RequestHeader]);
    let mut http = capability(required);
    let secret = Credential::HostSecret(SecretHeader {
        secret: "unit-secret".into(),
        header: "x-token".into(),
        prefix: None,
    });
    for credential in [Credential::AccessToken, secret] {
        let message = not_permitted(http.send_audited(get(&url, Some(credential))).await);
        assert!(
            message.contains(&base) && message.contains("require_https"),
            "{message}"
        );
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    // Without a credential, plain http is still allowed.
    let response = http.send_audited(get(&url, None)).await.unwrap();
    assert_eq!(response.status, 200);
    let events = audit.events();
    assert_eq!(events.len(), 3);
    for (event, kind) in events
        .iter()
        .zip(["access-token", "host-secret:unit-secret"])
    {
        assert_eq!(event.outcome, AuditOutcome::Refused);
        assert_eq!(event.credential.as_deref(), Some(kind));
        assert_eq!(event.host.as_deref(), Some("127.0.0.1"));
        assert_eq!(event.path.as_deref(), Some("/v1/me"));
    }
    assert_eq!(events[2].outcome, AuditOutcome::Sent);
    assert_eq!(http.refused(), 2);

    // Allowed by the operator: the same credential is sent.
    let (allowed, _) = outbound(false, SecretPurpose::DEFAULT);
    let mut http = capability(allowed);
    let response = http
        .send_audited(get(&url, Some(Credential::AccessToken)))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
}

#[tokio::test]
async fn a_host_secret_goes_into_a_request_only_when_granted_for_it() {
    let (base, accepted) = server().await;
    let url = format!("{base}/v1/me");
    let secret = || {
        Some(Credential::HostSecret(SecretHeader {
            secret: "unit-secret".into(),
            header: "x-anything".into(),
            prefix: None,
        }))
    };
    // Granted for the OAuth client secret only (the default).
    let (exchange_only, audit) = outbound(false, SecretPurpose::DEFAULT);
    assert!(
        exchange_only
            .host_secret(
                &policy(),
                "unit",
                "unit-secret",
                SecretPurpose::ClientSecret
            )
            .is_ok()
    );
    let mut http = capability(exchange_only);
    match http.send_audited(get(&url, secret())).await {
        Err(HttpError::CredentialUnavailable(message)) => assert!(
            message.contains("`client-secret` only")
                && message.contains("`request-header`")
                && message.contains("purposes"),
            "{message}"
        ),
        other => panic!("expected credential-unavailable, got {other:?}"),
    }
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 0);
    let event = &audit.events()[0];
    assert_eq!(event.outcome, AuditOutcome::Refused);
    assert_eq!(event.credential.as_deref(), Some("host-secret:unit-secret"));
    assert_eq!(event.host.as_deref(), Some("127.0.0.1"));

    // Granted for requests only: injected, and not usable as a client secret.
    let (request_only, _) = outbound(false, &[SecretPurpose::RequestHeader]);
    let refused = request_only
        .host_secret(
            &policy(),
            "unit",
            "unit-secret",
            SecretPurpose::ClientSecret,
        )
        .unwrap_err();
    assert!(refused.contains("not for `client-secret`"), "{refused}");
    let mut http = capability(request_only);
    let response = http.send_audited(get(&url, secret())).await.unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
}
