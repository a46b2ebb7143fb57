//! One call's outbound requests ([`HttpCapability`]): the pipeline every
//! request of a connector takes (origin policy, header rules, credential
//! injection, the checking client, response caps, scrubbing), the audit event
//! of each, and the mapping of client errors to the guest's typed errors.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::audit::{AuditEvent, AuditOutcome};
use super::credentials;
use super::{AddressBlocked, CallCredentials, ConnectorPolicy, Outbound, policy};
use crate::ConnectorRef;
use crate::generated::connector::auth::http::{HttpError, Method, Request, Response};

/// Per-call outbound state.
pub struct HttpCapability {
    pub(super) outbound: Arc<Outbound>,
    pub(super) policy: Arc<ConnectorPolicy>,
    pub(super) credentials: Arc<CallCredentials>,
    pub(super) connector: Arc<ConnectorRef>,
    pub(super) account_id: Option<String>,
    pub(super) deadline: Instant,
    pub(super) refused: u32,
    /// Requests this call has asked for so far.
    pub(super) attempts: u32,
    pub(super) deny_all: bool,
    /// Whether this call has renewed its access token (at most once).
    pub(super) renewed: bool,
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
            scrubber = injected.attach(&mut headers, &mut url);
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
pub(super) fn plain_http_refused(checked: &policy::CheckedUrl, what: &str) -> HttpError {
    HttpError::NotPermitted(format!(
        "{}://{}:{} is not https, and {what} only over https (operator setting [network] require_https)",
        checked.scheme, checked.host, checked.port
    ))
}

pub(super) fn method(method: Method) -> reqwest::Method {
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
pub(super) fn map_error(error: reqwest::Error) -> HttpError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(cause) = source {
        if let Some(blocked) = cause.downcast_ref::<AddressBlocked>() {
            return HttpError::AddressBlocked(blocked.to_string());
        }
        if let Some(unresolved) = cause.downcast_ref::<super::resolver::NotResolved>() {
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

pub(super) fn is_refusal(error: &HttpError) -> bool {
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
