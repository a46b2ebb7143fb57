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
mod capability;
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
pub use capability::HttpCapability;
pub(crate) use capability::error_kind;
use capability::{is_refusal, map_error, plain_http_refused};
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

use wasmtime::component::{HasData, Linker};

use crate::ConnectorRef;
use crate::capabilities::{LogCapability, LogLevel};
use crate::generated::connector::auth::http::{self as wit, Host, HttpError, Request, Response};

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
