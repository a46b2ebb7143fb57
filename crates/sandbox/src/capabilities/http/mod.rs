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
mod renewal;
mod resolver;
mod scrub_stream;
mod streamed;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use audit::{
    AuditEvent, AuditOutcome, AuditSink, MAX_HOST_BYTES, MAX_PATH_BYTES, MAX_REASON_BYTES,
    MemoryAuditSink, TracingOnlyAuditSink, truncate_marked,
};
/// Removing injected secrets from responses (the `connector-scrub` crate).
pub use connector_scrub as scrub;
pub use credentials::{
    ApiKeyCredential, ApiKeyPlacement, CallCredentials, ClientCredentials, HostSecret, HostSecrets,
    SecretPurpose,
};
pub use ip::{NetworkPolicy, non_global_reason};
pub use policy::ConnectorPolicy;
pub use renewal::{Renewal, TokenRenewal};
pub use resolver::{AddressBlocked, Resolver, StaticResolver, SystemResolver};
pub use streamed::{BoxError, ByteStream, HOP_BY_HOP_HEADERS, StreamedRequest, StreamedResponse};

use connector_scrub::Scrubber;
use credentials::Injection;
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

    /// Records a request the host made itself on a connector's behalf that
    /// [`Outbound::audit_host_request`] does not describe (another method,
    /// no credential), such as reading an OAuth discovery document: same
    /// audit log, bounded like every event.
    pub fn audit_host_event(&self, event: AuditEvent) {
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
    /// Whether this call has renewed its access token (at most once).
    renewed: bool,
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
            renewed: false,
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
                &self.policy,
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
        crate::runtime::metrics::outbound_request(
            &event.connector_id,
            match event.outcome {
                AuditOutcome::Sent => "sent",
                AuditOutcome::Refused => "refused",
                AuditOutcome::Failed => "failed",
            },
        );
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
        let result = self.http.send_renewing(request).await;
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
mod tests;
