//! Progress display for builds and long operations: an `indicatif` spinner
//! on a terminal, plain lines otherwise (CI logs, tests, pipes).

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

/// A spinner on stderr, or plain `eprintln!` lines when stderr is not a
/// terminal.
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts an operation described by `message`.
    pub fn start(message: impl Into<String>) -> Self {
        let message = message.into();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner:.cyan} {msg} [{elapsed}]")
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
            );
            bar.enable_steady_tick(Duration::from_millis(100));
            bar.set_message(message);
            Self { bar: Some(bar) }
        } else {
            eprintln!("{message}");
            Self { bar: None }
        }
    }

    /// A silent progress (library callers that print nothing).
    pub fn hidden() -> Self {
        Self {
            bar: Some(ProgressBar::hidden()),
        }
    }

    /// Updates the current step (spinner only: plain output stays short).
    pub fn step(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }

    /// Prints a line above the spinner (compiler errors and warnings).
    pub fn line(&self, line: &str) {
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.println(line),
            Some(_) => {}
            None => eprintln!("{line}"),
        }
    }

    /// Ends the operation with a final line.
    pub fn finish(&self, message: impl Into<String>) {
        let message = message.into();
        match &self.bar {
            Some(bar) if !bar.is_hidden() => bar.finish_with_message(message),
            Some(bar) => bar.finish_and_clear(),
            None => eprintln!("{message}"),
        }
    }

    /// Ends the operation without a final line (the caller reports the error).
    pub fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
