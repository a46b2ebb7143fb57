//! The command-line arguments of the authoring commands and their entry
//! points, so that `main.rs` only names them.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use super::call::call;
use super::dev::{DevOptions, Say};
use super::oauth2::{DEFAULT_PORT, OAuth2Options, PORT_ENV};
use super::scaffold::{AuthTemplate, Lang, SdkSource, scaffold};
use super::{LocalOptions, parse_key_value};

/// Options shared by `dev`, `oauth2` and `call`.
#[derive(Debug, Clone, clap::Args)]
pub struct SharedArgs {
    /// Operator config for the connector (read with `config::get`), e.g.
    /// `--set base-url=http://127.0.0.1:9100`. Repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    pub config: Vec<(String, String)>,
    /// Cargo target folder for the build [default: the crate's target/].
    #[arg(long)]
    pub target_dir: Option<PathBuf>,
    /// State folder: test tokens, development key [default: .connector-host/ in the crate].
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
}

impl SharedArgs {
    fn local(&self) -> LocalOptions {
        LocalOptions {
            config: self.config.clone(),
            target_dir: self.target_dir.clone(),
            state_dir: self.state_dir.clone(),
        }
    }
}

/// `connector-host new`.
#[derive(Debug, clap::Args)]
pub struct NewArgs {
    /// The connector id, also the crate and folder name (a-z, 0-9, -).
    pub name: String,
    /// The template.
    #[arg(long, value_enum)]
    pub auth: AuthTemplate,
    /// Where to create the folder.
    #[arg(long, default_value = ".")]
    pub dir: PathBuf,
    /// Depend on a local `connector-sdk` folder (e.g. `crates/sdk` of a
    /// connector-host checkout) instead of the published version (Rust only).
    #[arg(long, value_name = "DIR")]
    pub sdk_path: Option<PathBuf>,
    /// The language: a Rust crate, or a TypeScript package (`sdk-js/`).
    #[arg(long, value_enum, default_value_t = Lang::Rust)]
    pub lang: Lang,
}

impl NewArgs {
    /// Creates the crate and says what to do next.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        if self.lang == Lang::Ts {
            if self.sdk_path.is_some() {
                anyhow::bail!(
                    "--sdk-path is for Rust crates; a TypeScript package finds the JavaScript SDK itself (see its README)"
                );
            }
            let dir = super::scaffold_ts::scaffold_ts(&self.dir, &self.name, self.auth)?;
            println!("created {}", dir.display());
            println!("next:");
            println!("  cd {}", dir.display());
            println!(
                "  connector-host dev . --provider     # build, serve a login page, reload on change"
            );
            println!("  connector-host build .              # or just build it");
            return Ok(ExitCode::SUCCESS);
        }
        let sdk = match self.sdk_path {
            Some(path) => SdkSource::Path(path),
            None => SdkSource::default(),
        };
        let dir = scaffold(&self.dir, &self.name, self.auth, &sdk)?;
        println!("created {}", dir.display());
        println!("next:");
        println!("  cd {}", dir.display());
        println!(
            "  connector-host dev . --provider     # build, serve a login page, reload on change"
        );
        println!("  cargo build --release --target wasm32-wasip2   # or just build it");
        Ok(ExitCode::SUCCESS)
    }
}

/// `connector-host dev`.
#[derive(Debug, clap::Args)]
pub struct DevArgs {
    /// The connector crate.
    #[arg(default_value = ".")]
    pub path: PathBuf,
    /// Start the local test provider (OAuth + API keys) and point the connector at it.
    #[arg(long)]
    pub provider: bool,
    /// Login page address (loopback only).
    #[arg(long, default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: SharedArgs,
}

fn stdout_say() -> Say {
    Arc::new(|line: &str| {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{line}");
        let _ = out.flush();
    })
}

impl DevArgs {
    /// Runs the loop until Ctrl-C or SIGTERM.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let options = DevOptions {
            local: self.shared.local(),
            listen: self.listen,
            provider: self.provider,
        };
        super::dev::run(&self.path, options, stdout_say(), stop_signal()).await?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `connector-host oauth2`.
#[derive(Debug, clap::Args)]
pub struct OAuth2Args {
    /// The connector: a crate folder or a `.wasm` file.
    #[arg(default_value = ".")]
    pub connector: PathBuf,
    /// Log in again even when a refresh token is stored.
    #[arg(long)]
    pub reauth: bool,
    /// Callback port on 127.0.0.1.
    #[arg(long, env = PORT_ENV, default_value_t = DEFAULT_PORT)]
    pub port: u16,
    /// Seconds to wait for the login.
    #[arg(long, default_value_t = 300)]
    pub timeout: u64,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: SharedArgs,
}

impl OAuth2Args {
    /// Logs in or refreshes.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let options = OAuth2Options {
            local: self.shared.local(),
            port: self.port,
            reauth: self.reauth,
            timeout: Duration::from_secs(self.timeout),
        };
        let say = stdout_say();
        super::oauth2::run(&self.connector, &options, &*say).await?;
        Ok(ExitCode::SUCCESS)
    }
}

/// `connector-host call`.
#[derive(Debug, clap::Args)]
pub struct CallArgs {
    /// The connector: a crate folder or a `.wasm` file.
    pub connector: PathBuf,
    /// The hook's WIT name, e.g. `user-info`.
    pub hook: String,
    /// The hook's input as JSON (camelCase), e.g. `{"hostname":"eu.example.com"}`.
    #[arg(long, default_value = "{}")]
    pub input: String,
    /// Print one JSON document instead of text.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    #[allow(missing_docs)]
    pub shared: SharedArgs,
}

impl CallArgs {
    /// Calls the hook; exit status 1 when the hook failed.
    pub async fn run(self) -> anyhow::Result<ExitCode> {
        let input: serde_json::Value = serde_json::from_str(&self.input)
            .map_err(|e| anyhow::anyhow!("--input is not JSON: {e}"))?;
        let result = call(
            &self.connector,
            &self.hook,
            &input,
            &self.shared.local(),
            false,
        )
        .await?;
        if self.json {
            println!("{}", serde_json::to_string_pretty(&result)?);
        } else {
            print!("{}", result.to_text());
        }
        Ok(if result.error.is_none() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        })
    }
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate => {}
    }
}
