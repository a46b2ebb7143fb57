//! Requests whose bodies are streamed through the host in both directions
//! (the platform's pass-through proxy), through the same checks as every
//! other outbound request: the origin policy, `require_https` for a request
//! that carries a credential, the header rules, the credential injected on
//! the host after the checks, the checking resolver, no redirect, no proxy,
//! the time limit, the response header cap, `Set-Cookie` dropped, echoed
//! secrets masked (while streaming, [`super::scrub_stream`]) and one audit
//! event per request.
//!
//! The audit event of a request that got an answer is recorded when its
//! response body ends (or is dropped), so that it holds the body sizes and
//! whether the body was cut.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _};
use reqwest::header::{CONTENT_LENGTH, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;

use super::audit::{AuditEvent, AuditOutcome};
use super::credentials;
use super::scrub_stream::StreamScrubber;
use super::{HttpCapability, Outbound, error_kind, is_refusal, map_error, plain_http_refused};
use crate::generated::connector::auth::http::{Credential, HttpError};

/// An error of a streamed body.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A body streamed through the host.
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, BoxError>> + Send>>;

/// Response headers that describe one hop, not the message: never passed on.
pub const HOP_BY_HOP_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A request whose body is streamed to the provider.
pub struct StreamedRequest {
    /// The method.
    pub method: reqwest::Method,
    /// Absolute URL; checked against the connector's policy like any other.
    pub url: String,
    /// Request headers, under the same rules as a connector's (credential
    /// headers refused, host-controlled ones dropped, total capped).
    pub headers: Vec<(String, String)>,
    /// The body, if any, and its declared length (sent as `Content-Length`;
    /// a body of another length fails the request).
    pub body: Option<(ByteStream, Option<u64>)>,
    /// The credential the host injects.
    pub credential: Credential,
    /// Largest response body passed on: a larger declared length is refused
    /// before the body is read, a longer body is cut (and the request
    /// audited as failed).
    pub max_response_bytes: u64,
}

/// The provider's answer, its body still streaming.
pub struct StreamedResponse {
    /// The provider's status.
    pub status: u16,
    /// Its headers, without hop-by-hop ones and `Set-Cookie`, echoed secrets
    /// masked.
    pub headers: HeaderMap,
    /// The body: capped, echoed secrets masked; the request's audit event is
    /// recorded when it ends or is dropped.
    pub body: ByteStream,
}

impl std::fmt::Debug for StreamedResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamedResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl HttpCapability {
    /// Checks, sends and audits one request with a streamed body; the
    /// response's body streams too.
    pub async fn send_streamed(
        &mut self,
        request: StreamedRequest,
    ) -> Result<StreamedResponse, HttpError> {
        let started = Instant::now();
        let mut event = AuditEvent::new(
            &self.connector,
            self.account_id.clone(),
            request.method.as_str(),
        );
        self.attempts = self.attempts.saturating_add(1);
        let url_text = request.url.clone();
        let sent = Arc::new(AtomicU64::new(0));
        match self.start_streamed(request, &mut event, sent.clone()).await {
            Ok((status, headers, body, scrubber, max)) => Ok(StreamedResponse {
                status,
                headers,
                body: Box::pin(AuditedBody {
                    inner: body,
                    scrubber,
                    max,
                    received: 0,
                    sent,
                    started,
                    event: Some(event),
                    outbound: self.outbound.clone(),
                    flushed: false,
                }),
            }),
            Err(error) => {
                event.duration_us = started.elapsed().as_micros() as u64;
                event.request_bytes = sent.load(Ordering::Relaxed);
                event.outcome = if is_refusal(&error) {
                    AuditOutcome::Refused
                } else {
                    AuditOutcome::Failed
                };
                event.reason = Some(format!("{}: {error:?}", error_kind(&error)));
                event.attempted(&url_text);
                record(&self.outbound, event);
                Err(error)
            }
        }
    }

    /// Everything up to the response's headers.
    async fn start_streamed(
        &self,
        request: StreamedRequest,
        event: &mut AuditEvent,
        sent: Arc<AtomicU64>,
    ) -> Result<StartedResponse, HttpError> {
        let outbound = &self.outbound;
        let config = &outbound.config;
        let checked = self.policy.check_url(&request.url, &outbound.network)?;
        event.scheme = Some(checked.scheme.clone());
        event.host = Some(checked.host.clone());
        event.port = Some(checked.port);
        event.path = Some(checked.url.path().to_string());
        let kind = credentials::kind(&request.credential);
        event.credential = Some(kind.clone());
        if config.require_https && checked.scheme != "https" {
            return Err(plain_http_refused(
                &checked,
                &format!("the host injects a credential (`{kind}`)"),
            ));
        }
        let mut headers =
            super::policy::request_headers(&request.headers, true, config.max_header_bytes)?;
        let mut url = checked.url;
        let injected = credentials::injection(
            &request.credential,
            &self.credentials,
            &outbound.host_secrets,
            &self.policy,
            &self.connector.id,
        )?;
        let longest = injected
            .secrets
            .iter()
            .map(|secret| secret.expose_secret().len())
            .max()
            .unwrap_or(0);
        let scrubber = injected.attach(&mut headers, &mut url);
        let head = request.method == reqwest::Method::HEAD;
        let remaining = self.deadline.saturating_duration_since(Instant::now());
        let timeout = remaining.min(Duration::from_millis(config.request_timeout_ms));
        let mut builder = outbound
            .client
            .request(request.method, url)
            .timeout(timeout);
        if let Some((body, length)) = request.body {
            if let Some(length) = length {
                headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
            }
            let counted = body.inspect(move |chunk| {
                if let Ok(chunk) = chunk {
                    sent.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                }
            });
            builder = builder.body(reqwest::Body::wrap_stream(counted));
        }
        let response = builder.headers(headers).send().await.map_err(map_error)?;
        let status = response.status().as_u16();
        event.status = Some(status);
        let mut header_bytes = 0;
        let mut kept = HeaderMap::new();
        for (name, value) in response.headers() {
            header_bytes += name.as_str().len() + value.len();
            if name == reqwest::header::SET_COOKIE || HOP_BY_HOP_HEADERS.contains(&name.as_str()) {
                continue;
            }
            let mut bytes = value.as_bytes().to_vec();
            if let Some(scrubber) = &scrubber {
                event.scrubbed |= scrubber.scrub(&mut bytes);
            }
            // Masking writes ASCII over bytes that were a valid value.
            let value = HeaderValue::from_bytes(&bytes).unwrap_or_else(|_| value.clone());
            kept.append(name.clone(), value);
        }
        if header_bytes > config.max_header_bytes {
            return Err(HttpError::ResponseTooLarge(config.max_header_bytes as u64));
        }
        if !head
            && response
                .content_length()
                .is_some_and(|length| length > request.max_response_bytes)
        {
            return Err(HttpError::ResponseTooLarge(request.max_response_bytes));
        }
        let scrubber = scrubber.map(|scrubber| StreamScrubber::new(scrubber, longest));
        let body: ByteStream =
            Box::pin(response.bytes_stream().map(|chunk| {
                chunk.map_err(|error| BoxError::from(format!("{:?}", map_error(error))))
            }));
        Ok((status, kept, body, scrubber, request.max_response_bytes))
    }
}

/// Status, headers, raw body, its scrubber and cap.
type StartedResponse = (u16, HeaderMap, ByteStream, Option<StreamScrubber>, u64);

/// The response body as passed on: capped, scrubbed, audited at its end.
struct AuditedBody {
    inner: ByteStream,
    scrubber: Option<StreamScrubber>,
    max: u64,
    received: u64,
    sent: Arc<AtomicU64>,
    started: Instant,
    /// Recorded (and taken) once: at the end, on an error, or on drop.
    event: Option<AuditEvent>,
    outbound: Arc<Outbound>,
    flushed: bool,
}

impl AuditedBody {
    /// Records the audit event, once; `failure` when the body did not end
    /// normally.
    fn finish(&mut self, failure: Option<String>) {
        let Some(mut event) = self.event.take() else {
            return;
        };
        event.duration_us = self.started.elapsed().as_micros() as u64;
        event.request_bytes = self.sent.load(Ordering::Relaxed);
        event.response_bytes = self.received;
        event.scrubbed |= self.scrubber.as_ref().is_some_and(StreamScrubber::found);
        if let Some(reason) = failure {
            event.outcome = AuditOutcome::Failed;
            event.reason = Some(reason);
        }
        record(&self.outbound, event);
    }
}

impl Stream for AuditedBody {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if this.flushed {
                return Poll::Ready(None);
            }
            match this.inner.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    this.received += chunk.len() as u64;
                    if this.received > this.max {
                        let error = HttpError::ResponseTooLarge(this.max);
                        this.finish(Some(format!("{}: {error:?}", error_kind(&error))));
                        this.flushed = true;
                        return Poll::Ready(Some(Err(BoxError::from(format!("{error:?}")))));
                    }
                    let ready = match &mut this.scrubber {
                        Some(scrubber) => scrubber.push(&chunk),
                        None => chunk,
                    };
                    if !ready.is_empty() {
                        return Poll::Ready(Some(Ok(ready)));
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    this.finish(Some(format!("body: {error}")));
                    this.flushed = true;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    this.flushed = true;
                    let rest = this.scrubber.as_mut().map(StreamScrubber::finish);
                    this.finish(None);
                    return Poll::Ready(rest.filter(|rest| !rest.is_empty()).map(Ok));
                }
            }
        }
    }
}

impl Drop for AuditedBody {
    fn drop(&mut self) {
        self.finish(Some(
            "connection: the caller stopped reading the response body".into(),
        ));
    }
}

/// Logs and records the event of a streamed request.
fn record(outbound: &Outbound, event: AuditEvent) {
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
        request_bytes = event.request_bytes,
        response_bytes = event.response_bytes,
        duration_us = event.duration_us,
        "outbound request (streamed)"
    );
    outbound.audit.record(event);
}
