//! The `http` capability as a security boundary, driven by the adversarial
//! `http-probe` connector against real servers on 127.0.0.1.

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_sandbox::capabilities::http::{
    ApiKeyPlacement, AuditOutcome, CallCredentials, HostSecret, MemoryAuditSink, Outbound,
    OutboundConfig, Resolver, SecretPurpose, StaticResolver, SystemResolver,
};
use connector_sandbox::runtime::{CallContext, Runtime, RuntimeLimits};
use connector_sandbox::wit::hooks::{ConnectionInfo, UserIdentity};
use connector_server::config::ConnectorSettings;
use connector_server::registry::{CompileCache, LoadedConnector, load_file};
use connector_test_support::guest;
use connector_test_support::servers::{Behaviour, start};
use secrecy::SecretString;

use connector_test_support::sandbox::{
    API_KEY, CLIENT_SECRET, HOST_SECRET, SECRETS, TOKEN, probe_credentials as credentials,
};

struct Probe {
    connector: LoadedConnector,
    audit: Arc<MemoryAuditSink>,
}

struct Setup {
    private: bool,
    resolver: Arc<dyn Resolver>,
    operator_hosts: Option<Vec<&'static str>>,
    config: OutboundConfig,
    secret_grantee: &'static str,
    secret_purposes: &'static [SecretPurpose],
    /// `[connectors.test-http-probe] allow_query_credential`.
    allow_query_credential: bool,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            private: true,
            resolver: Arc::new(SystemResolver),
            operator_hosts: None,
            // The test servers speak plain http on 127.0.0.1, and most tests
            // inject credentials into requests to them.
            config: OutboundConfig {
                require_https: false,
                ..OutboundConfig::default()
            },
            secret_grantee: "test-http-probe",
            // `probe-secret` may be placed into the probe's requests.
            secret_purposes: &[SecretPurpose::RequestHeader],
            allow_query_credential: false,
        }
    }
}

async fn probe(setup: Setup) -> Probe {
    let mut config = setup.config;
    if setup.private {
        config.allow_private_networks = vec!["127.0.0.1/32".parse().unwrap()];
    }
    let audit = Arc::new(MemoryAuditSink::default());
    let grant = HostSecret::new(
        SecretString::from(HOST_SECRET),
        [setup.secret_grantee.to_string()],
    )
    .for_purposes(setup.secret_purposes.iter().copied());
    let secrets = BTreeMap::from([("probe-secret".to_string(), grant)]);
    let outbound = Outbound::new(config, setup.resolver, Arc::new(secrets), audit.clone()).unwrap();
    let limits = RuntimeLimits {
        call_timeout_ms: 5_000,
        ..RuntimeLimits::default()
    };
    let runtime = Arc::new(Runtime::with_outbound(limits, outbound).unwrap());
    let settings = BTreeMap::from([(
        "test-http-probe".to_string(),
        ConnectorSettings {
            allowed_hosts: setup
                .operator_hosts
                .map(|hosts| hosts.iter().map(|h| h.to_string()).collect()),
            allow_query_credential: setup.allow_query_credential,
            ..Default::default()
        },
    )]);
    let connector = load_file(
        &runtime,
        &CompileCache::disabled(),
        &guest("http_probe"),
        &settings,
    )
    .await
    .unwrap();
    Probe { connector, audit }
}

impl Probe {
    /// Asks the guest to make one request; returns what the guest saw.
    async fn request(
        &self,
        spec: &[(&str, &str)],
        credentials: Arc<CallCredentials>,
    ) -> UserIdentity {
        let info = ConnectionInfo {
            hostname: None,
            platform_user_id: None,
            additional_info: spec
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        let ctx = CallContext {
            account_id: Some("acct-1".into()),
            credentials,
            ..CallContext::default()
        };
        let outcome = self.connector.prepared.user_info(&ctx, info).await;
        for line in &outcome.report.logs {
            for secret in SECRETS {
                assert!(
                    !line.message.contains(secret),
                    "a secret reached the log: {}",
                    line.message
                );
            }
        }
        outcome
            .result
            .expect("the probe reports errors instead of failing")
    }
}

fn error_kind(seen: &UserIdentity) -> &str {
    seen.additional_info
        .iter()
        .find(|(k, _)| k == "error-kind")
        .map(|(_, v)| v.as_str())
        .unwrap_or("none")
}

/// The guest's whole view of the exchange, for "did it see a secret" checks.
fn guest_view(seen: &UserIdentity) -> String {
    format!("{seen:?}")
}

fn assert_no_secret_in_audit(audit: &MemoryAuditSink) {
    let events = format!("{:?}", audit.events());
    for secret in SECRETS {
        assert!(!events.contains(secret), "a secret reached the audit log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_refusal_has_its_typed_error_and_is_audited() {
    let echo = start(Behaviour::Echo).await;
    let port = echo.addr.port();
    let probe = probe(Setup {
        private: false,
        config: OutboundConfig {
            max_request_bytes: 1024,
            ..OutboundConfig::default()
        },
        ..Setup::default()
    })
    .await;
    let creds = credentials(ApiKeyPlacement::Bearer);
    let big = "x".repeat(2048);
    let loopback = format!("http://127.0.0.1:{port}/");
    // Passes the URL stage (resolution comes last), so later checks are reached.
    let allowed = "https://allowed.example/".to_string();
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (vec![("url", "not a url".into())], "invalid-url"),
        (vec![("url", "ftp://127.0.0.1/".into())], "invalid-url"),
        (
            vec![("url", "https://not-allowed.example/".into())],
            "origin-not-allowed",
        ),
        (
            vec![("url", "https://allowed.example:8443/".into())],
            "origin-not-allowed",
        ),
        (
            vec![("url", format!("https://127.0.0.1:{port}/"))],
            "origin-not-allowed",
        ),
        (
            vec![("url", format!("http://user:pw@127.0.0.1:{port}/"))],
            "userinfo-not-allowed",
        ),
        (vec![("url", loopback.clone())], "address-blocked"),
        (
            vec![("url", format!("http://2130706433:{port}/"))],
            "address-blocked",
        ),
        (
            vec![("url", format!("http://0x7f000001:{port}/"))],
            "address-blocked",
        ),
        (
            vec![("url", format!("http://0177.0.0.1:{port}/"))],
            "address-blocked",
        ),
        (
            vec![("url", format!("http://127.0.0.1.:{port}/"))],
            "address-blocked",
        ),
        (
            vec![("url", format!("http://[::ffff:127.0.0.1]:{port}/"))],
            "origin-not-allowed",
        ),
        (
            vec![
                ("url", allowed.clone()),
                ("credential", "access-token".into()),
                ("header:Authorization", "Bearer mine".into()),
            ],
            "credential-header",
        ),
        (
            vec![
                ("url", allowed.clone()),
                ("credential", "api-key".into()),
                ("header:Cookie", "a=b".into()),
            ],
            "credential-header",
        ),
        (
            vec![
                ("url", allowed.clone()),
                ("credential", "secret:undeclared:X-Key".into()),
            ],
            "credential-unavailable",
        ),
        (
            vec![
                ("url", allowed.clone()),
                ("method", "POST".into()),
                ("body", big),
            ],
            "request-too-large",
        ),
    ];
    for (spec, expected) in &cases {
        let spec: Vec<(&str, &str)> = spec.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let seen = probe.request(&spec, creds.clone()).await;
        assert_eq!(error_kind(&seen), *expected, "{spec:?} → {}", seen.name);
    }
    // No credential at all for this call: naming one is refused, not sent bare.
    let seen = probe
        .request(
            &[("url", &allowed), ("credential", "access-token")],
            Arc::default(),
        )
        .await;
    assert_eq!(error_kind(&seen), "credential-unavailable");

    assert!(
        echo.seen.requests().is_empty(),
        "a refused request reached the server"
    );
    let events = probe.audit.events();
    assert_eq!(events.len(), cases.len() + 1, "every attempt is audited");
    for (event, (_, expected)) in events.iter().zip(&cases) {
        assert_eq!(event.outcome, AuditOutcome::Refused);
        assert!(
            event.reason.as_deref().unwrap().starts_with(expected),
            "{:?}",
            event.reason
        );
        assert_eq!(event.connector_id, "test-http-probe");
        assert_eq!(event.account_id.as_deref(), Some("acct-1"));
    }
    assert_no_secret_in_audit(&probe.audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn allowed_names_resolving_to_private_addresses_are_refused() {
    let resolver = StaticResolver::default()
        .with("allowed.example", &["127.0.0.1"])
        .with("mixed.allowed.example", &["93.184.216.34", "10.0.0.7"])
        .with("metadata.allowed.example", &["169.254.169.254"])
        .with("mapped.allowed.example", &["::ffff:127.0.0.1"]);
    let probe = probe(Setup {
        private: false,
        resolver: Arc::new(resolver),
        ..Setup::default()
    })
    .await;
    for host in [
        "allowed.example",
        "allowed.example.",
        "mixed.allowed.example",
        "metadata.allowed.example",
        "mapped.allowed.example",
    ] {
        let url = format!("https://{host}/v1/me");
        let seen = probe
            .request(
                &[("url", &url), ("credential", "access-token")],
                credentials(ApiKeyPlacement::Bearer),
            )
            .await;
        assert_eq!(
            error_kind(&seen),
            "address-blocked",
            "{host}: {}",
            seen.name
        );
    }
    let events = probe.audit.events();
    assert!(
        events.iter().all(|e| e.outcome == AuditOutcome::Refused
            && e.credential.as_deref() == Some("access-token"))
    );
    assert_eq!(
        events[1].host.as_deref(),
        Some("allowed.example"),
        "a trailing dot is normalised before the checks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirects_come_back_as_is_and_credentials_never_follow_them() {
    let elsewhere = start(Behaviour::Echo).await;
    let redirect = start(Behaviour::Redirect(elsewhere.url("/steal"))).await;
    let probe = probe(Setup::default()).await;
    let url = redirect.url("/start");
    let seen = probe
        .request(
            &[("url", &url), ("credential", "access-token")],
            credentials(ApiKeyPlacement::Bearer),
        )
        .await;
    assert_eq!(seen.name, "302");
    let location = seen
        .additional_info
        .iter()
        .find(|(k, _)| k == "location")
        .map(|(_, v)| v.clone());
    assert_eq!(location, Some(elsewhere.url("/steal")));
    assert_eq!(redirect.seen.requests().len(), 1);
    assert!(
        elsewhere.seen.requests().is_empty(),
        "the redirect was followed"
    );
    assert!(!guest_view(&seen).contains(TOKEN));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_guest_never_holds_an_injected_secret() {
    let echo = start(Behaviour::Echo).await;
    let url = echo.url("/reflect?page=1");

    // Not an allowed origin (the operator narrowed the list): refused before
    // anything is sent; the guest sees no secret and the server nothing.
    let narrowed = probe(Setup {
        operator_hosts: Some(vec!["https://allowed.example"]),
        ..Setup::default()
    })
    .await;
    let seen = narrowed
        .request(
            &[("url", &url), ("credential", "access-token")],
            credentials(ApiKeyPlacement::Bearer),
        )
        .await;
    assert_eq!(error_kind(&seen), "origin-not-allowed");
    assert!(echo.seen.requests().is_empty());
    assert!(SECRETS.iter().all(|s| !guest_view(&seen).contains(s)));

    // An allowed origin: the credential reaches exactly that server, placed as
    // declared; this server reflects it, and the host scrubs the echo (see
    // tests/tests/scrub.rs for every encoding).
    let probe = probe(Setup {
        allow_query_credential: true,
        ..Setup::default()
    })
    .await;
    // (extra probe keys, API-key placement, header expected at the server, its value)
    type Case<'a> = (Vec<(&'a str, &'a str)>, ApiKeyPlacement, &'a str, String);
    let cases: Vec<Case> = vec![
        (
            vec![("credential", "access-token")],
            ApiKeyPlacement::Bearer,
            "authorization",
            format!("Bearer {TOKEN}"),
        ),
        (
            vec![("credential", "api-key")],
            ApiKeyPlacement::Bearer,
            "authorization",
            format!("Bearer {API_KEY}"),
        ),
        (
            vec![("credential", "api-key")],
            ApiKeyPlacement::Basic("{apiKey}:{tenantId}".into()),
            "authorization",
            format!("Basic {}", base64(&format!("{API_KEY}:acme"))),
        ),
        (
            vec![("credential", "api-key")],
            ApiKeyPlacement::Header("X-Api-Key".into()),
            "x-api-key",
            API_KEY.into(),
        ),
        (
            vec![("credential", "client-credentials")],
            ApiKeyPlacement::Bearer,
            "authorization",
            format!("Basic {}", base64(&format!("client-1:{CLIENT_SECRET}"))),
        ),
        (
            vec![
                ("credential", "secret:probe-secret:X-Host-Token"),
                ("credential-prefix", "Token "),
            ],
            ApiKeyPlacement::Bearer,
            "x-host-token",
            format!("Token {HOST_SECRET}"),
        ),
    ];
    for (extra, placement, header, value) in cases {
        let before = echo.seen.requests().len();
        let mut spec = vec![("url", url.as_str())];
        spec.extend(extra);
        let seen = probe.request(&spec, credentials(placement)).await;
        assert_eq!(seen.name, "200", "{spec:?}: {}", seen.name);
        let requests = echo.seen.requests();
        assert_eq!(requests.len(), before + 1);
        assert_eq!(requests[before].1[header], value.as_str(), "{spec:?}");
        // The response headers handed to the guest carry no secret and no cookie.
        assert!(
            seen.additional_info
                .iter()
                .all(|(k, v)| k == "body" || SECRETS.iter().all(|s| !v.contains(s)))
        );
        assert!(
            seen.additional_info.iter().all(|(k, _)| k != "set-cookie"),
            "set-cookie reached the guest"
        );
    }

    // A query-parameter key goes in the URL, never into the audit log.
    let seen = probe
        .request(
            &[("url", &url), ("credential", "api-key")],
            credentials(ApiKeyPlacement::Query("key".into())),
        )
        .await;
    assert_eq!(seen.name, "200");
    let last = echo.seen.requests().last().unwrap().0.clone();
    assert_eq!(last, format!("/reflect?page=1&key={API_KEY}"));

    let events = probe.audit.events();
    assert!(
        events
            .iter()
            .all(|e| e.outcome == AuditOutcome::Sent && e.status == Some(200))
    );
    assert!(
        events.iter().all(
            |e| e.host.as_deref() == Some("127.0.0.1") && e.path.as_deref() == Some("/reflect")
        )
    );
    let kinds: Vec<_> = events
        .iter()
        .map(|e| e.credential.clone().unwrap())
        .collect();
    assert_eq!(kinds[0], "access-token");
    assert_eq!(kinds[5], "host-secret:probe-secret");
    assert_no_secret_in_audit(&probe.audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_goes_into_a_query_string_only_where_the_operator_opts_in() {
    let echo = start(Behaviour::Echo).await;
    let url = echo.url("/reflect");
    let probe = probe(Setup::default()).await;
    let seen = probe
        .request(
            &[("url", &url), ("credential", "api-key")],
            credentials(ApiKeyPlacement::Query("key".into())),
        )
        .await;
    assert_eq!(error_kind(&seen), "credential-unavailable", "{}", seen.name);
    assert!(
        seen.name.contains("allow_query_credential"),
        "the refusal names the setting: {}",
        seen.name
    );
    assert!(echo.seen.requests().is_empty(), "nothing was sent");
    let events = probe.audit.events();
    assert_eq!(events.len(), 1, "the attempt is audited");
    assert_ne!(events[0].outcome, AuditOutcome::Sent);
    assert_no_secret_in_audit(&probe.audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_huge_responses_hit_their_caps() {
    let hang = start(Behaviour::Hang).await;
    let huge = start(Behaviour::Huge(64 << 10)).await;
    let config = OutboundConfig {
        request_timeout_ms: 300,
        max_response_bytes: 16 << 10,
        ..OutboundConfig::default()
    };
    let probe = probe(Setup {
        config,
        ..Setup::default()
    })
    .await;
    let seen = probe
        .request(&[("url", &hang.url("/"))], Arc::default())
        .await;
    assert_eq!(error_kind(&seen), "timeout", "{}", seen.name);
    let seen = probe
        .request(&[("url", &huge.url("/"))], Arc::default())
        .await;
    assert_eq!(error_kind(&seen), "response-too-large", "{}", seen.name);
    let events = probe.audit.events();
    assert!(
        events.iter().all(|e| e.outcome == AuditOutcome::Failed),
        "{events:?}"
    );
    assert!(events[1].response_bytes > 16 << 10);
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_go_only_to_granted_connectors_and_never_into_host_controlled_headers() {
    let echo = start(Behaviour::Echo).await;
    let url = echo.url("/");
    // Declared in the manifest, but granted to another connector by the operator.
    let ungranted = probe(Setup {
        secret_grantee: "someone-else",
        ..Setup::default()
    })
    .await;
    let seen = ungranted
        .request(
            &[("url", &url), ("credential", "secret:probe-secret:X-Token")],
            Arc::default(),
        )
        .await;
    assert_eq!(error_kind(&seen), "credential-unavailable", "{}", seen.name);

    let probe = probe(Setup::default()).await;
    for header in ["Host", "Content-Length", "Transfer-Encoding", "Connection"] {
        let spec = format!("secret:probe-secret:{header}");
        let seen = probe
            .request(&[("url", &url), ("credential", &spec)], Arc::default())
            .await;
        assert_eq!(
            error_kind(&seen),
            "credential-header",
            "{header}: {}",
            seen.name
        );
        let seen = probe
            .request(
                &[("url", &url), ("credential", "api-key")],
                credentials(ApiKeyPlacement::Header(header.into())),
            )
            .await;
        assert_eq!(
            error_kind(&seen),
            "credential-header",
            "{header}: {}",
            seen.name
        );
    }
    assert!(echo.seen.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loading_a_connector_makes_no_outbound_request() {
    // The load-time auth-type call runs with outbound HTTP denied; loading the
    // probe (whose hooks could make requests) records no audit event.
    let probe = probe(Setup::default()).await;
    assert!(probe.audit.events().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_go_over_plain_http_only_when_the_operator_allows_it() {
    let echo = start(Behaviour::Echo).await;
    let url = echo.url("/v1/me");
    // `require_https` as `serve` has it by default.
    let required = probe(Setup {
        config: OutboundConfig::default(),
        ..Setup::default()
    })
    .await;
    let kinds = [
        "access-token",
        "api-key",
        "client-credentials",
        "secret:probe-secret:X-Token",
    ];
    for credential in kinds {
        let seen = required
            .request(
                &[("url", &url), ("credential", credential)],
                credentials(ApiKeyPlacement::Query("key".into())),
            )
            .await;
        assert_eq!(error_kind(&seen), "not-permitted", "{credential}");
        assert!(
            seen.name
                .contains(&format!("http://127.0.0.1:{}", echo.addr.port()))
                && seen.name.contains("require_https"),
            "the refusal names the destination and the setting: {}",
            seen.name
        );
        assert!(SECRETS.iter().all(|s| !guest_view(&seen).contains(s)));
    }
    assert!(
        echo.seen.requests().is_empty(),
        "a credential went over plain http"
    );
    let events = required.audit.events();
    assert_eq!(events.len(), kinds.len(), "every refusal is audited");
    for (event, kind) in events.iter().zip([
        "access-token",
        "api-key",
        "client-credentials",
        "host-secret:probe-secret",
    ]) {
        assert_eq!(event.outcome, AuditOutcome::Refused);
        assert_eq!(event.credential.as_deref(), Some(kind));
        assert_eq!(
            (event.host.as_deref(), event.path.as_deref()),
            (Some("127.0.0.1"), Some("/v1/me"))
        );
        assert!(
            event
                .reason
                .as_deref()
                .unwrap()
                .starts_with("not-permitted"),
            "{:?}",
            event.reason
        );
    }
    assert_no_secret_in_audit(&required.audit);

    // A request without a credential is not affected.
    let seen = required.request(&[("url", &url)], Arc::default()).await;
    assert_eq!(seen.name, "200");
    assert_eq!(echo.seen.requests().len(), 1);

    // Turned off (`serve --dev`, or `require_https = false`): sent.
    let allowed = probe(Setup::default()).await;
    let seen = allowed
        .request(
            &[("url", &url), ("credential", "access-token")],
            credentials(ApiKeyPlacement::Bearer),
        )
        .await;
    assert_eq!(seen.name, "200");
    assert_eq!(
        echo.seen.requests()[1].1["authorization"],
        format!("Bearer {TOKEN}").as_str()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_secret_granted_for_the_client_secret_cannot_be_placed_in_a_request() {
    let echo = start(Behaviour::Echo).await;
    let url = echo.url("/anything");
    // The default grant: the OAuth client secret the host sends itself.
    let client_secret_only = probe(Setup {
        secret_purposes: &[SecretPurpose::ClientSecret],
        ..Setup::default()
    })
    .await;
    for header in ["X-Token", "X-Anything-Else"] {
        let spec = format!("secret:probe-secret:{header}");
        let seen = client_secret_only
            .request(&[("url", &url), ("credential", &spec)], Arc::default())
            .await;
        assert_eq!(error_kind(&seen), "credential-unavailable", "{}", seen.name);
        assert!(
            seen.name.contains("`client-secret` only")
                && seen.name.contains("`request-header`")
                && seen.name.contains("purposes"),
            "{}",
            seen.name
        );
    }
    assert!(echo.seen.requests().is_empty(), "the secret was sent");
    let events = client_secret_only.audit.events();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e.outcome == AuditOutcome::Refused
        && e.credential.as_deref() == Some("host-secret:probe-secret")
        && e.host.as_deref() == Some("127.0.0.1")
        && e.path.as_deref() == Some("/anything")));

    // Granted for requests too: placed.
    let both = probe(Setup {
        secret_purposes: &[SecretPurpose::ClientSecret, SecretPurpose::RequestHeader],
        ..Setup::default()
    })
    .await;
    let seen = both
        .request(
            &[("url", &url), ("credential", "secret:probe-secret:X-Token")],
            Arc::default(),
        )
        .await;
    assert_eq!(seen.name, "200");
    assert_eq!(echo.seen.requests()[0].1["x-token"], HOST_SECRET);
}
