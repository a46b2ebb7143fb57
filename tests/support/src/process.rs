//! Child processes of the tests: a long-running one whose output lines the
//! test waits for ([`Process`]), and a one-shot command that must succeed
//! ([`run_ok`]).

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How long a process may take to write a line a test waits for (a cold
/// start on a loaded CI machine included).
pub const LINE_TIMEOUT: Duration = Duration::from_secs(120);

/// A running child whose stdout and stderr are read line by line as it
/// writes them (so it never blocks on a full pipe); killed and reaped when
/// dropped.
pub struct Process {
    child: Child,
    /// What was started, for messages.
    what: String,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Spawns `command` with its stdout and stderr piped to this process.
    pub fn spawn(command: &mut Command) -> Process {
        let what = format!("{command:?}");
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
        // Both streams on one channel, closed when both pipes are.
        let (tx, lines) = mpsc::channel();
        let readers: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("piped stdout")),
            Box::new(child.stderr.take().expect("piped stderr")),
        ];
        for reader in readers {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(reader).lines().map_while(Result::ok) {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            });
        }
        Process {
            child,
            what,
            lines,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// The first line, already read or written within [`LINE_TIMEOUT`], for
    /// which `predicate` holds (stdout and stderr lines in the order they
    /// were read). Panics with everything the process wrote when it writes
    /// no such line in time or closes its output first.
    pub fn line(&mut self, predicate: impl Fn(&str) -> bool) -> String {
        self.line_within(LINE_TIMEOUT, predicate)
    }

    /// [`Process::line`] with another timeout (for lines of one stream whose
    /// order relative to the other stream's lines is not fixed).
    pub fn line_within(&mut self, timeout: Duration, predicate: impl Fn(&str) -> bool) -> String {
        if let Some(line) = self.seen.iter().find(|line| predicate(line)) {
            return line.clone();
        }
        self.next_line_within(timeout, predicate)
    }

    /// The first line not read yet, written within `timeout`, for which
    /// `predicate` holds: lines already read do not count. Panics like
    /// [`Process::line`].
    pub fn next_line_within(
        &mut self,
        timeout: Duration,
        predicate: impl Fn(&str) -> bool,
    ) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if predicate(&line) {
                        return line;
                    }
                }
                Err(error) => panic!(
                    "{}: the expected line never came ({}); it wrote:\n{}",
                    self.what,
                    match error {
                        mpsc::RecvTimeoutError::Timeout => "timed out",
                        mpsc::RecvTimeoutError::Disconnected => "it closed its output",
                    },
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Waits for the process to close its output and exit, within
    /// `timeout`; whether it succeeded, and every line it wrote. Kills it
    /// and panics with its output when it does not finish in time.
    pub fn finish(mut self, timeout: Duration) -> (bool, Vec<String>) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => self.seen.push(line),
                // Both pipes closed: the process is exiting.
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "{} did not finish in time; it wrote:\n{}",
                        self.what,
                        self.seen.join("\n")
                    );
                }
            }
        }
        let status = self.child.wait().expect("wait for the process");
        (status.success(), std::mem::take(&mut self.seen))
    }

    /// The word that follows `marker` in the first line containing it (see
    /// [`Process::line`]), e.g. the URL in `dev provider listening on URL …`.
    pub fn announced(&mut self, marker: &str) -> String {
        let line = self.line(|line| line.contains(marker));
        word_after(&line, marker)
    }
}

/// The whitespace-delimited word right after the first `marker` in `line`.
pub(crate) fn word_after(line: &str, marker: &str) -> String {
    let at = line.find(marker).expect("the line contains the marker") + marker.len();
    // A word ends at white space, or at a quote (a JSON log line).
    line[at..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Runs `command` to its end and returns its stdout; panics with its stdout
/// and stderr when it cannot start or fails.
pub fn run_ok(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}
