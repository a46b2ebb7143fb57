//! OpenTelemetry trace export over OTLP/HTTP (protobuf), off unless `serve`
//! is given an endpoint (`[telemetry] otlp_endpoint` or `--otlp-endpoint`).
//!
//! What is exported is what the host's spans carry, never more:
//! - the `request` span of every API request (`request_id`, `method`);
//! - the `hook` span of every hook call inside it (`connector` as
//!   `id@version`, `hook`, `account`), a debug-level span that only this exporter turns on;
//! - other spans of the host's crates at info level, and warnings and errors
//!   as span events.
//!
//! No span or field holds a secret, a token or a request body (see
//! `docs/security.md`). The exporter's own diagnostics (targets
//! `opentelemetry*`) go to the log, never back into the export.
//!
//! Spans are batched (at most 2,048 waiting; more are dropped, never
//! blocking a request) and sent on the host's tokio runtime with its HTTP
//! client (rustls), each request bounded by [`EXPORT_TIMEOUT`]. At shutdown
//! [`TraceExporter::shutdown`] sends what is left.

use std::time::Duration;

use bytes::Bytes;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::FilterFn;
use tracing_subscriber::registry::LookupSpan;

/// How long one export request may take, the collector's answer included.
pub const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of a collector's answer that is read (it is a small protobuf).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// Where and as what the spans are sent.
#[derive(Debug, Clone)]
pub struct TraceExport {
    /// The collector's traces URL, e.g. `http://127.0.0.1:4318/v1/traces`.
    pub traces_url: url::Url,
    /// The `service.name` resource attribute.
    pub service_name: String,
}

/// The running exporter: its tracer provider (a batch span processor in
/// front of the OTLP exporter).
pub struct TraceExporter {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
}

/// Builds the exporter for `export`; its requests run on `runtime`.
pub fn start(
    export: &TraceExport,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<TraceExporter> {
    let client = CollectorClient {
        client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?,
        runtime: runtime.clone(),
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(export.traces_url.as_str())
        .with_timeout(EXPORT_TIMEOUT)
        .build()?;
    let resource = Resource::builder()
        .with_service_name(export.service_name.clone())
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("connector-host");
    Ok(TraceExporter { provider, tracer })
}

impl TraceExporter {
    /// The layer that turns the host's spans into exported spans, with its
    /// own filter ([`exported`]).
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            .with_filter(FilterFn::new(exported))
    }

    /// Sends the spans still waiting and stops the exporter. Call it while
    /// the runtime the exporter sends on still runs, from outside it.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            eprintln!("warning: the last spans were not all exported: {error}");
        }
    }
}

/// Whether the exporter takes `metadata`: the host's spans at info level
/// and the hook span; warnings and errors; never the exporter's own
/// diagnostics.
fn exported(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    if target.starts_with("opentelemetry") {
        return false;
    }
    if metadata.is_span() {
        let ours = target.starts_with("connector_");
        return ours && (*metadata.level() <= Level::INFO || metadata.name() == "hook");
    }
    *metadata.level() <= Level::WARN
}

/// The OTLP exporter's HTTP client: the host's reqwest client, driven on
/// the host's runtime (the batch processor calls it from a thread of its
/// own, where no runtime runs).
#[derive(Debug)]
struct CollectorClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for CollectorClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let request = reqwest::Request::try_from(request)?;
        self.runtime
            .spawn(async move { send(&client, request).await })
            .await?
    }
}

/// Sends one export request; the answer's body is read up to
/// [`MAX_ANSWER_BYTES`].
async fn send(
    client: &reqwest::Client,
    request: reqwest::Request,
) -> Result<http::Response<Bytes>, HttpError> {
    let mut response = client.execute(request).await?;
    let mut answer = http::Response::builder().status(response.status());
    if let Some(headers) = answer.headers_mut() {
        *headers = std::mem::take(response.headers_mut());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > MAX_ANSWER_BYTES {
            return Err(
                format!("the collector answered more than {MAX_ANSWER_BYTES} bytes").into(),
            );
        }
        body.extend_from_slice(&chunk);
    }
    Ok(answer.body(Bytes::from(body))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_hosts_spans_and_warnings_are_exported() {
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;

        struct Site;
        impl tracing::callsite::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!("not registered")
            }
        }
        static SITE: Site = Site;
        let meta = |name: &'static str, target: &'static str, level: Level, kind: Kind| {
            Metadata::new(
                name,
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&SITE)),
                kind,
            )
        };
        let cases = [
            (
                "request",
                "connector_server::api",
                Level::INFO,
                Kind::SPAN,
                true,
            ),
            (
                "hook",
                "connector_sandbox::runtime",
                Level::DEBUG,
                Kind::SPAN,
                true,
            ),
            (
                "query",
                "connector_server::store",
                Level::DEBUG,
                Kind::SPAN,
                false,
            ),
            ("poll", "hyper_util::client", Level::INFO, Kind::SPAN, false),
            ("event", "connector_server", Level::WARN, Kind::EVENT, true),
            ("event", "connector_server", Level::INFO, Kind::EVENT, false),
            (
                "event",
                "opentelemetry_sdk",
                Level::ERROR,
                Kind::EVENT,
                false,
            ),
        ];
        for (name, target, level, kind, expected) in cases {
            assert_eq!(
                exported(&meta(name, target, level, kind)),
                expected,
                "{name} of {target} at {level}"
            );
        }
    }
}
