//! Where the process's log lines and spans go: standard error, as text or
//! JSON, filtered by `RUST_LOG`; and, when `serve` is configured for it, an
//! OpenTelemetry trace exporter ([`crate::trace_export`]) with a filter of
//! its own.

use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

use crate::trace_export::{self, TraceExport, TraceExporter};

/// How log lines are written (to standard error).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// The filter of log lines when `RUST_LOG` is unset.
const DEFAULT_FILTER: &str = "info,wasmtime=warn,cranelift=warn,sqlx=warn";

/// Sets up the process's logging: log lines in `format` through `RUST_LOG`
/// (or the default filter), and spans to `traces` when given. The returned
/// exporter must be shut down before the runtime `traces` runs on is dropped,
/// so the last spans are sent.
pub fn init(
    format: LogFormat,
    traces: Option<TraceExport>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Option<TraceExporter>> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| DEFAULT_FILTER.into());
    let lines = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let lines = match format {
        LogFormat::Text => lines.with_filter(filter).boxed(),
        LogFormat::Json => lines
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
    };
    let exporter = traces
        .map(|traces| trace_export::start(&traces, runtime))
        .transpose()?;
    let spans = exporter.as_ref().map(TraceExporter::layer);
    tracing_subscriber::registry()
        .with(lines)
        .with(spans)
        .try_init()?;
    Ok(exporter)
}
