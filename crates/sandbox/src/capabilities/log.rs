//! `connector:auth/log`: guest log lines into the host's `tracing` log, tagged
//! with connector, version and call, under a per-call budget of lines and bytes.

use std::sync::Arc;

use serde::Serialize;

use wasmtime::component::{HasData, Linker};

use crate::ConnectorRef;
use crate::generated::connector::auth::log::{self as wit, Host, Level};

/// Longest line kept; longer lines are cut.
const MAX_LINE_BYTES: usize = 2048;

/// Severity of a connector log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// trace
    Trace,
    /// debug
    Debug,
    /// info
    Info,
    /// warn
    Warn,
    /// error
    Error,
}

/// One line a connector logged (or wrote to stdout/stderr, as `info`).
#[derive(Debug, Clone, Serialize)]
pub struct LogLine {
    /// Severity.
    pub level: LogLevel,
    /// The text (cut at 2 KiB).
    pub message: String,
}

/// Per-call log state.
#[derive(Debug)]
pub struct LogCapability {
    connector: Arc<ConnectorRef>,
    max_lines: usize,
    max_bytes: usize,
    bytes: usize,
    lines: Vec<LogLine>,
    dropped: u64,
}

impl LogCapability {
    /// A budget of `max_lines` lines and `max_bytes` bytes for one call.
    pub fn new(connector: Arc<ConnectorRef>, max_lines: usize, max_bytes: usize) -> Self {
        Self {
            connector,
            max_lines,
            max_bytes,
            bytes: 0,
            lines: Vec::new(),
            dropped: 0,
        }
    }

    /// Records a line if the budget allows, else counts it as dropped.
    pub fn record(&mut self, level: LogLevel, message: &str) {
        // One guest line is one host log line: a connector cannot forge lines.
        let mut message = message.replace('\n', "\\n").replace('\r', "\\r");
        if message.len() > MAX_LINE_BYTES {
            let mut cut = MAX_LINE_BYTES;
            while !message.is_char_boundary(cut) {
                cut -= 1;
            }
            message.truncate(cut);
            message.push('…');
        }
        if self.lines.len() >= self.max_lines || self.bytes + message.len() > self.max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        let connector = &self.connector.id;
        let version = &self.connector.version;
        match level {
            LogLevel::Trace => {
                tracing::trace!(target: "connector", %connector, %version, "{message}")
            }
            LogLevel::Debug => {
                tracing::debug!(target: "connector", %connector, %version, "{message}")
            }
            LogLevel::Info => {
                tracing::info!(target: "connector", %connector, %version, "{message}")
            }
            LogLevel::Warn => {
                tracing::warn!(target: "connector", %connector, %version, "{message}")
            }
            LogLevel::Error => {
                tracing::error!(target: "connector", %connector, %version, "{message}")
            }
        }
        self.lines.push(LogLine { level, message });
    }

    /// Ends the call: reports dropped lines once and hands back what was kept.
    pub fn finish(&mut self) -> (Vec<LogLine>, u64) {
        if self.dropped > 0 {
            tracing::warn!(
                target: "connector",
                connector = %self.connector.id,
                version = %self.connector.version,
                dropped = self.dropped,
                "log budget exceeded: dropped {} line(s)",
                self.dropped
            );
        }
        (
            std::mem::take(&mut self.lines),
            std::mem::take(&mut self.dropped),
        )
    }
}

/// The `log` import's view of a call's [`LogCapability`].
pub struct LogView<'a> {
    context: &'a mut LogCapability,
}

impl LogCapability {
    /// The view the `log` import writes through.
    pub fn view(&mut self) -> LogView<'_> {
        LogView { context: self }
    }
}

impl Host for LogView<'_> {
    fn log(&mut self, level: Level, message: String) {
        let level = match level {
            Level::Trace => LogLevel::Trace,
            Level::Debug => LogLevel::Debug,
            Level::Info => LogLevel::Info,
            Level::Warn => LogLevel::Warn,
            Level::Error => LogLevel::Error,
        };
        self.context.record(level, &message);
    }
}

/// Links `connector:auth/log`; `view` finds the capability in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> LogView<'_>,
) -> wasmtime::Result<()> {
    wit::add_to_linker::<T, HasLog>(linker, view)
}

struct HasLog;

impl HasData for HasLog {
    type Data<'a> = LogView<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_drops_and_counts_excess_lines() {
        let connector = Arc::new(ConnectorRef {
            id: "c".into(),
            version: "1.0.0".into(),
        });
        let mut log = LogCapability::new(connector, 3, 1024);
        for i in 0..10 {
            log.record(LogLevel::Info, &format!("line {i}"));
        }
        log.record(LogLevel::Info, &"x".repeat(10_000));
        let (lines, dropped) = log.finish();
        assert_eq!(lines.len(), 3);
        assert_eq!(dropped, 8);
    }

    #[test]
    fn a_guest_line_cannot_forge_host_lines() {
        let connector = Arc::new(ConnectorRef {
            id: "c".into(),
            version: "1.0.0".into(),
        });
        let mut log = LogCapability::new(connector, 10, 1 << 20);
        log.record(LogLevel::Info, "ok\nERROR connector_host: fake\r");
        let (lines, _) = log.finish();
        assert_eq!(lines[0].message, "ok\\nERROR connector_host: fake\\r");
    }

    #[test]
    fn long_lines_are_cut() {
        let connector = Arc::new(ConnectorRef {
            id: "c".into(),
            version: "1.0.0".into(),
        });
        let mut log = LogCapability::new(connector, 10, 1 << 20);
        log.record(LogLevel::Warn, &"é".repeat(5000));
        let (lines, _) = log.finish();
        assert!(lines[0].message.len() <= MAX_LINE_BYTES + '…'.len_utf8());
    }
}
