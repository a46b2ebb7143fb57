//! The `connector-host` program run by the tests (the binary the tests build,
//! `env!("CARGO_BIN_EXE_connector-host-under-test")`, or an installed one):
//! `serve` started with [`Serve`] and waited for, API keys made with
//! `api-keys create` ([`create_api_key`]), and the folder and configuration a
//! served host reads ([`install_guests`], [`regional_config`]).

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

use crate::process::{Process, word_after};

/// What `serve` writes (at INFO, on stderr) once it accepts requests.
const LISTENING: &str = "listening on http://";
/// What `serve --dev` writes for its dev provider; it contains [`LISTENING`] too.
pub const DEV_PROVIDER_LISTENING: &str = "dev provider listening on ";

/// How to start `PROGRAM serve --listen 127.0.0.1:0` (an ephemeral port),
/// with `RUST_LOG=info` unless set otherwise. Every other argument, the
/// environment and the working folder are the caller's; the master key is
/// not set unless [`Serve::master_keys`] is called (the caller's environment
/// is inherited).
pub struct Serve {
    command: Command,
}

impl Serve {
    /// `program serve --listen 127.0.0.1:0`.
    pub fn new(program: impl AsRef<OsStr>) -> Serve {
        let mut command = Command::new(program);
        command
            .args(["serve", "--listen", "127.0.0.1:0"])
            .env("RUST_LOG", "info");
        Serve { command }
    }

    /// One more argument.
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Serve {
        self.command.arg(arg);
        self
    }

    /// More arguments.
    pub fn args<I, S>(mut self, args: I) -> Serve
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.command.args(args);
        self
    }

    /// `--plugins-dir DIR`.
    pub fn plugins_dir(self, dir: impl AsRef<Path>) -> Serve {
        self.arg("--plugins-dir").arg(dir.as_ref())
    }

    /// `--database-url URL`.
    pub fn database_url(self, url: &str) -> Serve {
        self.args(["--database-url", url])
    }

    /// `--cache-dir DIR`.
    pub fn cache_dir(self, dir: impl AsRef<Path>) -> Serve {
        self.arg("--cache-dir").arg(dir.as_ref())
    }

    /// `--config FILE`.
    pub fn config(self, file: impl AsRef<Path>) -> Serve {
        self.arg("--config").arg(file.as_ref())
    }

    /// `CONNECTOR_HOST_MASTER_KEYS=keys`.
    pub fn master_keys(self, keys: &str) -> Serve {
        self.env("CONNECTOR_HOST_MASTER_KEYS", keys)
    }

    /// Sets an environment variable (`RUST_LOG` included).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Serve {
        self.command.env(key, value);
        self
    }

    /// Removes an environment variable the program would inherit.
    pub fn env_remove(mut self, key: impl AsRef<OsStr>) -> Serve {
        self.command.env_remove(key);
        self
    }

    /// The working folder.
    pub fn current_dir(mut self, dir: impl AsRef<Path>) -> Serve {
        self.command.current_dir(dir);
        self
    }

    /// Starts the program and waits (see [`crate::process::LINE_TIMEOUT`])
    /// until it says where it listens; panics with its output when it does
    /// not.
    pub fn start(mut self) -> Server {
        let mut process = Process::spawn(&mut self.command);
        let line =
            process.line(|line| line.contains(LISTENING) && !line.contains(DEV_PROVIDER_LISTENING));
        Server {
            base: format!("http://{}", word_after(&line, LISTENING)),
            process,
        }
    }
}

/// A running `serve`; killed when dropped.
pub struct Server {
    /// Its base URL, e.g. `http://127.0.0.1:41234`.
    pub base: String,
    /// The process, to wait for more of its lines.
    pub process: Process,
}

impl Server {
    /// The process id.
    pub fn pid(&self) -> u32 {
        self.process.id()
    }

    /// Sends SIGTERM (what a service manager sends) and waits, within
    /// `timeout`, for the process to exit: whether it exited with success,
    /// and every line it wrote.
    pub fn terminate(self, timeout: std::time::Duration) -> (bool, Vec<String>) {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM {}", self.pid());
        self.process.finish(timeout)
    }
}

/// A key made by `api-keys create`.
pub struct CreatedKey {
    /// The key's secret (what the command prints on stdout).
    pub secret: String,
    /// What the command wrote on stderr.
    pub stderr: String,
}

/// Runs `program api-keys create --name NAME --role ROLE [--account A]…
/// --database-url URL` followed by `extra` arguments, and asserts it
/// succeeds.
pub fn create_api_key(
    program: &Path,
    database_url: &str,
    name: &str,
    role: &str,
    accounts: &[&str],
    extra: &[&str],
) -> CreatedKey {
    let mut command = Command::new(program);
    command.args(["api-keys", "create", "--name", name, "--role", role]);
    for account in accounts {
        command.args(["--account", account]);
    }
    let output = command
        .args(["--database-url", database_url])
        .args(extra)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "api-keys create failed: {stderr}");
    CreatedKey {
        secret: String::from_utf8_lossy(&output.stdout).trim().to_string(),
        stderr,
    }
}

/// Copies guests, by artifact name, into `plugins` (made when missing) as
/// `NAME.wasm`.
pub fn install_guests(plugins: &Path, names: &[&str]) {
    std::fs::create_dir_all(plugins).unwrap();
    for name in names {
        std::fs::copy(crate::guest(name), plugins.join(format!("{name}.wasm"))).unwrap();
    }
}

/// A host configuration (`--config`) for serving `local-regional` against a
/// dev provider at `provider_host` (`HOST:PORT`, plain HTTP): loopback
/// allowed, credentials allowed over plain http (`require_https = false`),
/// and the connector's client secret read from the environment variable
/// `secret_env`.
pub fn regional_config(provider_host: &str, secret_env: &str) -> String {
    format!(
        "[network]\nallow_private_networks = [\"127.0.0.1/32\"]\nrequire_https = false\n\
         [secrets]\nregional-crm-client-secret = {{ env = \"{secret_env}\", connectors = [\"local-regional\"] }}\n\
         [connectors.local-regional.config]\nscheme = \"http\"\ndefault-hostname = \"{provider_host}\"\n"
    )
}
