//! `connector:auth/http`: the connector's only way to the network, and the
//! security boundary of the sandbox.
//!
//! Every request goes: origin policy (manifest ∩ operator) → header rules →
//! credential lookup → the host resolves the name and refuses it if any address
//! is not globally routable (unless the operator allowed that private range) →
//! the client connects to exactly those addresses, follows no redirect, uses
//! no proxy → response capped → audit event. Secrets are attached by the host
//! after the checks, to that request only; the guest never sees them.

mod audit;
mod credentials;
mod ip;
mod policy;
mod resolver;
pub mod scrub;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use audit::{
    AuditEvent, AuditOutcome, AuditSink, MAX_HOST_BYTES, MAX_PATH_BYTES, MAX_REASON_BYTES,
    MemoryAuditSink, TracingOnlyAuditSink, truncate_marked,
};
pub use credentials::{
    ApiKeyCredential, ApiKeyPlacement, CallCredentials, ClientCredentials, HostSecret, HostSecrets,
    SecretPurpose,
};
pub use ip::{NetworkPolicy, non_global_reason};
pub use policy::ConnectorPolicy;
pub use resolver::{AddressBlocked, Resolver, StaticResolver, SystemResolver};

use credentials::Injection;
use scrub::Scrubber;
use secrecy::ExposeSecret;

use wasmtime::component::{HasData, Linker};

use crate::ConnectorRef;
use crate::capabilities::{LogCapability, LogLevel};
use crate::generated::connector::auth::http::{
    self as wit, Host, HttpError, Method, Request, Response,
};

/// Operator settings for outbound HTTP (`[network]` in the config file).
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutboundConfig {
    /// Private ranges connectors may reach anyway (e.g. `127.0.0.1/32` for a
    /// local test provider). Empty by default; logged at startup when set.
    pub allow_private_networks: Vec<ipnet::IpNet>,
    /// Time limit of one request, in milliseconds (also bounded by the call's).
    pub request_timeout_ms: u64,
    /// Largest request body.
    pub max_request_bytes: usize,
    /// Largest response body.
    pub max_response_bytes: usize,
    /// Largest total size of request or response headers.
    pub max_header_bytes: usize,
    /// Requests one hook call may send (refused ones count too); more are
    /// refused with `not-permitted`.
    pub max_requests_per_call: u32,
    /// Credentials travel only over `https`: the host's own token, refresh and
    /// revocation requests, and every connector (or proxy) request into which
    /// it injects a credential, are refused with `not-permitted` before
    /// anything is sent when their URL is `http`. On by default; `serve --dev`
    /// turns it off, and so may the operator (`serve` then logs a WARN).
    /// Requests without a credential are not affected.
    pub require_https: bool,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            allow_private_networks: Vec::new(),
            request_timeout_ms: 10_000,
            max_request_bytes: 1 << 20,
            max_response_bytes: 4 << 20,
            max_header_bytes: 32 << 10,
            max_requests_per_call: 100,
            require_https: true,
        }
    }
}

/// The shared outbound client: one per runtime.
pub struct Outbound {
    client: reqwest::Client,
    network: Arc<NetworkPolicy>,
    config: OutboundConfig,
    host_secrets: HostSecrets,
    audit: Arc<dyn AuditSink>,
}

impl Outbound {
    /// Builds the client: checking resolver, no redirects, no proxy.
    pub fn new(
        config: OutboundConfig,
        resolver: Arc<dyn Resolver>,
        host_secrets: HostSecrets,
        audit: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        let network = Arc::new(NetworkPolicy::new(config.allow_private_networks.clone()));
        if !network.allowed_private().is_empty() {
            tracing::warn!(
                ranges = ?network.allowed_private(),
                "connectors may reach these private networks (operator setting allow_private_networks)"
            );
        }
        if !config.require_https {
            tracing::warn!(
                "credentials may be sent over plain http: token, refresh and revocation requests, and connector requests carrying an injected credential (operator setting require_https = false, or serve --dev)"
            );
        }
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(resolver::CheckingResolver {
                resolver,
                network: network.clone(),
            }))
            .connect_timeout(Duration::from_millis(config.request_timeout_ms))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            network,
            config,
            host_secrets,
            audit,
        })
    }

    /// Default settings, the system resolver, no secrets, audit to the log only.
    pub fn default_for_tests_and_tools() -> Self {
        Self::new(
            OutboundConfig::default(),
            Arc::new(SystemResolver),
            Arc::default(),
            Arc::new(TracingOnlyAuditSink),
        )
        .expect("default outbound client")
    }
}

impl Outbound {
    /// The checking client (host-side DNS filter, no redirects, no proxy), for
    /// requests the host makes on a connector's behalf (token exchange,
    /// revocation).
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// Checks a URL the host will call for a connector (a token, refresh or
    /// revocation endpoint: every such request carries a credential) against
    /// its policy, and, when `require_https` is on, that it is `https`.
    pub fn check_url(&self, policy: &ConnectorPolicy, url: &str) -> Result<url::Url, HttpError> {
        let checked = policy.check_url(url, &self.network)?;
        if self.config.require_https && checked.scheme != "https" {
            return Err(plain_http_refused(
                &checked,
                "the host sends OAuth client credentials, codes and tokens",
            ));
        }
        Ok(checked.url)
    }

    /// Records a request the host was about to make on a connector's behalf
    /// (OAuth code exchange, refresh, revocation) and refused before sending
    /// it, e.g. because [`Outbound::check_url`] refused `url_text`: same audit
    /// log as guest requests, outcome `refused`, naming the destination.
    pub fn audit_host_refusal(
        &self,
        connector: &ConnectorRef,
        account_id: Option<&str>,
        url_text: &str,
        credential: &str,
        error: &HttpError,
    ) {
        let mut event = AuditEvent::new(connector, account_id.map(str::to_string), "POST");
        event.outcome = AuditOutcome::Refused;
        event.reason = Some(format!("{}: {error:?}", error_kind(error)));
        event.credential = Some(credential.to_string());
        event.attempted(url_text);
        self.record_host_event(event.bounded());
    }

    /// Records a request the host made itself on a connector's behalf (OAuth
    /// code exchange, revocation): same audit log as guest requests. `outcome`
    /// is the status (when known) or why it failed.
    pub fn audit_host_request(
        &self,
        connector: &ConnectorRef,
        account_id: Option<&str>,
        url: &url::Url,
        credential: &str,
        started: Instant,
        outcome: Result<Option<u16>, String>,
    ) {
        let (outcome, status, reason) = match outcome {
            Ok(status) => (AuditOutcome::Sent, status, None),
            Err(reason) => (AuditOutcome::Failed, None, Some(reason)),
        };
        let mut event = AuditEvent::new(connector, account_id.map(str::to_string), "POST");
        event.scheme = Some(url.scheme().to_string());
        event.host = url.host_str().map(str::to_string);
        event.port = url.port_or_known_default();
        event.path = Some(url.path().to_string());
        event.outcome = outcome;
        event.reason = reason;
        event.status = status;
        event.duration_us = started.elapsed().as_micros() as u64;
        event.credential = Some(credential.to_string());
        self.record_host_event(event.bounded());
    }

    /// Logs and records an event of a host request.
    fn record_host_event(&self, event: AuditEvent) {
        tracing::info!(
            target: "connector::outbound",
            connector = %event.connector_id,
            host = ?event.host,
            path = ?event.path,
            outcome = ?event.outcome,
            status = ?event.status,
            "host request for a connector"
        );
        self.audit.record(event);
    }

    /// A host secret, if it is declared by the connector and granted to it for
    /// `purpose`; otherwise why not (never the value).
    pub fn host_secret(
        &self,
        policy: &ConnectorPolicy,
        connector_id: &str,
        name: &str,
        purpose: SecretPurpose,
    ) -> Result<secrecy::SecretString, String> {
        credentials::granted_secret(
            &self.host_secrets,
            &policy.declared_secrets,
            connector_id,
            name,
            purpose,
        )
        .cloned()
    }
}

/// Per-call outbound state.
pub struct HttpCapability {
    outbound: Arc<Outbound>,
    policy: Arc<ConnectorPolicy>,
    credentials: Arc<CallCredentials>,
    connector: Arc<ConnectorRef>,
    account_id: Option<String>,
    deadline: Instant,
    refused: u32,
    /// Requests this call has asked for so far.
    attempts: u32,
    deny_all: bool,
}

impl HttpCapability {
    /// State for one call that must end by `deadline`.
    pub fn new(
        outbound: Arc<Outbound>,
        policy: Arc<ConnectorPolicy>,
        credentials: Arc<CallCredentials>,
        connector: Arc<ConnectorRef>,
        account_id: Option<String>,
        deadline: Instant,
    ) -> Self {
        Self {
            outbound,
            policy,
            credentials,
            connector,
            account_id,
            deadline,
            refused: 0,
            attempts: 0,
            deny_all: false,
        }
    }

    /// Refuses every request of this call with `not-permitted` (used while the
    /// host loads a connector).
    pub fn deny_all(mut self, deny: bool) -> Self {
        self.deny_all = deny;
        self
    }

    /// How many requests this call had refused by the policy.
    pub fn refused(&self) -> u32 {
        self.refused
    }

    /// Checks and sends one request, filling `event` as it goes.
    async fn send(&self, request: Request, event: &mut AuditEvent) -> Result<Response, HttpError> {
        if self.deny_all {
            return Err(HttpError::NotPermitted(
                "outbound HTTP is not available while the host loads a connector".into(),
            ));
        }
        let outbound = &self.outbound;
        let config = &outbound.config;
        if self.attempts > config.max_requests_per_call {
            return Err(HttpError::NotPermitted(format!(
                "this call has used its {} requests (operator setting max_requests_per_call)",
                config.max_requests_per_call
            )));
        }
        let checked = self.policy.check_url(&request.url, &outbound.network)?;
        event.scheme = Some(checked.scheme.clone());
        event.host = Some(checked.host.clone());
        event.port = Some(checked.port);
        event.path = Some(checked.url.path().to_string());
        if let Some(credential) = &request.credential {
            let kind = credentials::kind(credential);
            // Checked before anything else about the credential: a request
            // that would carry one in clear is refused whatever it names.
            if config.require_https && checked.scheme != "https" {
                let refused = plain_http_refused(
                    &checked,
                    &format!("the host injects a credential (`{kind}`)"),
                );
                event.credential = Some(kind);
                return Err(refused);
            }
            event.credential = Some(kind);
        }

        let body = request.body.unwrap_or_default();
        event.request_bytes = body.len() as u64;
        if body.len() > config.max_request_bytes {
            return Err(HttpError::RequestTooLarge(config.max_request_bytes as u64));
        }
        let mut headers = policy::request_headers(
            &request.headers,
            request.credential.is_some(),
            config.max_header_bytes,
        )?;
        let mut url = checked.url;
        let mut scrubber = None;
        if let Some(credential) = &request.credential {
            let injected = credentials::injection(
                credential,
                &self.credentials,
                &outbound.host_secrets,
                &self.policy.declared_secrets,
                &self.connector.id,
            )?;
            scrubber = Scrubber::new(
                injected
                    .secrets
                    .iter()
                    .map(|secret| secret.expose_secret().as_bytes()),
            );
            match injected.place {
                Injection::Header(name, value) => {
                    headers.insert(name, value);
                }
                Injection::Query(name, value) => {
                    url.query_pairs_mut()
                        .append_pair(&name, value.expose_secret());
                }
            }
        }
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let timeout = remaining.min(Duration::from_millis(config.request_timeout_ms));
        let response = outbound
            .client
            .request(method(request.method), url)
            .headers(headers)
            .body(body)
            .timeout(timeout)
            .send()
            .await
            .map_err(map_error)?;

        let status = response.status().as_u16();
        event.status = Some(status);
        let mut header_bytes = 0;
        let mut response_headers = Vec::new();
        for (name, value) in response.headers() {
            header_bytes += name.as_str().len() + value.len();
            if name == reqwest::header::SET_COOKIE {
                continue;
            }
            response_headers.push((
                name.as_str().to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ));
        }
        if header_bytes > config.max_header_bytes {
            return Err(HttpError::ResponseTooLarge(config.max_header_bytes as u64));
        }
        let mut response = response;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(map_error)? {
            if body.len() + chunk.len() > config.max_response_bytes {
                event.response_bytes = (body.len() + chunk.len()) as u64;
                return Err(HttpError::ResponseTooLarge(
                    config.max_response_bytes as u64,
                ));
            }
            body.extend_from_slice(&chunk);
        }
        event.response_bytes = body.len() as u64;
        if let Some(scrubber) = &scrubber {
            let mut found = scrubber.scrub(&mut body);
            for (_, value) in &mut response_headers {
                found |= scrubber.scrub_text(value);
            }
            event.scrubbed = found;
        }
        Ok(Response {
            status,
            headers: response_headers,
            body,
        })
    }
}

/// The refusal of a credential-carrying request to a plain `http` URL: names
/// the scheme, host and port, and the operator setting.
fn plain_http_refused(checked: &policy::CheckedUrl, what: &str) -> HttpError {
    HttpError::NotPermitted(format!(
        "{}://{}:{} is not https, and {what} only over https (operator setting [network] require_https)",
        checked.scheme, checked.host, checked.port
    ))
}

fn method(method: Method) -> reqwest::Method {
    match method {
        Method::Get => reqwest::Method::GET,
        Method::Head => reqwest::Method::HEAD,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
        Method::Options => reqwest::Method::OPTIONS,
    }
}

/// Maps a client error to the guest's typed error. The URL (which may carry an
/// injected query credential) is removed from every message.
fn map_error(error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<AddressBlocked>() {
            return HttpError::AddressBlocked(blocked.to_string());
        }
        if let Some(unresolved) = cause.downcast_ref::<resolver::NotResolved>() {
            return HttpError::Connection(unresolved.to_string());
        }
        source = cause.source();
    }
    if error.is_timeout() {
        return HttpError::Timeout;
    }
    let error = error.without_url();
    let mut message = error.to_string();
    let mut cause = std::error::Error::source(&error);
    while let Some(inner) = cause {
        message = format!("{message}: {inner}");
        cause = inner.source();
    }
    HttpError::Connection(message)
}

/// `kebab-case` name of an error case, for the audit log.
pub(crate) fn error_kind(error: &HttpError) -> &'static str {
    match error {
        HttpError::InvalidUrl(_) => "invalid-url",
        HttpError::OriginNotAllowed(_) => "origin-not-allowed",
        HttpError::UserinfoNotAllowed => "userinfo-not-allowed",
        HttpError::AddressBlocked(_) => "address-blocked",
        HttpError::CredentialHeader(_) => "credential-header",
        HttpError::CredentialUnavailable(_) => "credential-unavailable",
        HttpError::RequestTooLarge(_) => "request-too-large",
        HttpError::ResponseTooLarge(_) => "response-too-large",
        HttpError::Timeout => "timeout",
        HttpError::Connection(_) => "connection",
        HttpError::NotPermitted(_) => "not-permitted",
    }
}

fn is_refusal(error: &HttpError) -> bool {
    !matches!(
        error,
        HttpError::Timeout | HttpError::Connection(_) | HttpError::ResponseTooLarge(_)
    )
}

impl HttpCapability {
    /// Checks, sends and audits one request: what a guest's `http.send` does,
    /// and what the proxy route does for a platform. Returns the audit event's
    /// refusal reason with the error, for the guest's log.
    pub async fn send_audited(&mut self, request: Request) -> Result<Response, HttpError> {
        let started = Instant::now();
        let mut event = AuditEvent::new(
            &self.connector,
            self.account_id.clone(),
            method(request.method).as_str(),
        );
        self.attempts = self.attempts.saturating_add(1);
        let url_text = request.url.clone();
        let result = self.send(request, &mut event).await;
        event.duration_us = started.elapsed().as_micros() as u64;
        if let Err(error) = &result {
            let refused = is_refusal(error);
            event.outcome = if refused {
                AuditOutcome::Refused
            } else {
                AuditOutcome::Failed
            };
            event.reason = Some(format!("{}: {error:?}", error_kind(error)));
            event.attempted(&url_text);
            if refused {
                self.refused += 1;
            }
        }
        let event = event.bounded();
        tracing::info!(
            target: "connector::outbound",
            connector = %event.connector_id,
            version = %event.connector_version,
            account = ?event.account_id,
            method = %event.method,
            host = ?event.host,
            path = ?event.path,
            outcome = ?event.outcome,
            status = ?event.status,
            credential = ?event.credential,
            duration_us = event.duration_us,
            "outbound request"
        );
        self.outbound.audit.record(event);
        result
    }
}

/// The `http` import's view of a call: its [`HttpCapability`], and its log
/// (a refused request is also a line in the connector's log).
pub struct HttpView<'a> {
    http: &'a mut HttpCapability,
    log: &'a mut LogCapability,
}

impl<'a> HttpView<'a> {
    /// The view over a call's HTTP capability and log.
    pub fn new(http: &'a mut HttpCapability, log: &'a mut LogCapability) -> Self {
        Self { http, log }
    }
}

impl Host for HttpView<'_> {
    async fn send(&mut self, request: Request) -> Result<Response, HttpError> {
        let result = self.http.send_audited(request).await;
        if let Err(error) = &result
            && is_refusal(error)
        {
            let line = format!("outbound request refused: {}: {error:?}", error_kind(error));
            self.log.record(LogLevel::Warn, &line);
        }
        result
    }
}

/// Links `connector:auth/http`; `view` finds the capability in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> HttpView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasHttp>(linker, view)
}

struct HasHttp;

impl HasData for HasHttp {
    type Data<'a> = HttpView<'a>;
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use connector_abi::manifest::AllowedOrigin;
    use secrecy::SecretString;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::generated::connector::auth::http::{Credential, SecretHeader};

    const TOKEN: &str = "tok-unit-very-secret";
    const SECRET: &str = "hs-unit-very-secret";

    fn outbound(
        require_https: bool,
        purposes: &[SecretPurpose],
    ) -> (Outbound, Arc<MemoryAuditSink>) {
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
}
