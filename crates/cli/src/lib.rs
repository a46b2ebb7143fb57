//! `connector-host`: serve connectors, inspect and check connector files, and
//! the connector author commands. The binary's `main` calls [`main`]; the
//! tests build the same program from this library.

#![warn(missing_docs)]
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};

use connector_server::config::HostConfig;
use connector_server::store::{Database, PlaintextRemote};

mod cli;
mod examples;
mod logging;
mod trace_export;

use logging::LogFormat;

#[derive(Parser)]
#[command(
    name = "connector-host",
    version,
    about = "Runs auth connectors as sandboxed WebAssembly components"
)]
struct Cli {
    /// Reach a PostgreSQL server that is not on this machine without TLS
    /// (sslmode disable, allow or prefer). Its network path then sees the
    /// database traffic in clear and can forge replies. `serve` also accepts
    /// `database_allow_plaintext_remote = true` in its config file.
    #[arg(
        long,
        global = true,
        env = "CONNECTOR_HOST_DATABASE_ALLOW_PLAINTEXT_REMOTE"
    )]
    database_allow_plaintext_remote: bool,
    /// Log lines as human-readable text (the default) or as one JSON object
    /// per line, with the fields of the request span (`request_id`, …).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value_t = LogFormat::Text,
        env = "CONNECTOR_HOST_LOG_FORMAT"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API with the connectors of a plugins folder, hot-reloading it.
    Serve(cli::serve::ServeArgs),
    /// Print what a connector file is and may do, without running it (with
    /// its digest, and the signer of FILE.wasm.sig when there is one).
    Inspect {
        /// The `.wasm` file.
        file: PathBuf,
        /// Its detached signature [default: FILE.wasm.sig when it exists].
        #[arg(long)]
        signature: Option<PathBuf>,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Validate a connector file the way `serve` does; non-zero exit on failure.
    Check {
        /// The `.wasm` file.
        file: PathBuf,
    },
    /// Master keys: generate one, or re-encrypt stored secrets under the current key.
    #[command(subcommand)]
    Keys(cli::keys::KeysCommand),
    /// API keys of the HTTP API: create (shown once), list, revoke.
    #[command(subcommand)]
    ApiKeys(cli::api_keys::ApiKeysCommand),
    /// Run the local test provider (OAuth + API-key CRM) on loopback, for demos
    /// and benchmarks. Never for production.
    DevProvider(cli::dev_provider::DevProviderArgs),
    /// Build a connector folder (a Rust crate or a JavaScript/TypeScript package) into a `.wasm` component.
    Build(cli::build::BuildArgs),
    /// Create a connector crate (manifest, code, README, tests) from a template.
    New(connector_authoring::authoring::cli::NewArgs),
    /// Build a connector crate, serve it with a local login page, rebuild and reload on change.
    Dev(connector_authoring::authoring::cli::DevArgs),
    /// Log a test account in with OAuth locally (tokens stored encrypted); run again to refresh.
    Oauth2(connector_authoring::authoring::cli::OAuth2Args),
    /// Call one hook of a connector and show its result, logs and outbound requests.
    Call(connector_authoring::authoring::cli::CallArgs),
    /// List a connector's recent outbound requests from the audit log.
    Audit(cli::audit::AuditArgs),
    /// Publish a component to a running host's database: every replica serves it.
    Publish(cli::publish::PublishArgs),
    /// Published components: list versions, pin, unpin, roll back, retire; replica status.
    #[command(subcommand)]
    Components(cli::publish::ComponentsCommand),
    /// Generate an Ed25519 key for signing components.
    SigningKey(cli::sign::SigningKeyArgs),
    /// Sign a component: writes FILE.wasm.sig next to it.
    Sign(cli::sign::SignArgs),
}

/// Runs the `connector-host` command line: parses the arguments, runs the
/// command on a multi-threaded tokio runtime and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match run(cli, &runtime) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Sets up logging (and, for `serve`, trace export from its config file),
/// runs the command, then sends the spans still waiting.
fn run(cli: Cli, runtime: &tokio::runtime::Runtime) -> anyhow::Result<ExitCode> {
    let serve_config = match &cli.command {
        Command::Serve(args) => Some(args.load_config()?),
        _ => None,
    };
    let traces = match (&cli.command, &serve_config) {
        (Command::Serve(args), Some(config)) => args.trace_export(config)?,
        _ => None,
    };
    let exporter = logging::init(cli.log_format, traces, runtime.handle())?;
    let plaintext = PlaintextRemote::allowed_if(cli.database_allow_plaintext_remote);
    let result = runtime.block_on(run_command(cli.command, serve_config, plaintext));
    if let Some(exporter) = exporter {
        exporter.shutdown();
    }
    result
}

/// Runs one command.
async fn run_command(
    command: Command,
    serve_config: Option<HostConfig>,
    plaintext: PlaintextRemote,
) -> anyhow::Result<ExitCode> {
    match command {
        Command::Serve(args) => {
            let config = serve_config.unwrap_or_default();
            cli::serve::run(args, config, plaintext)
                .await
                .map(|()| ExitCode::SUCCESS)
        }
        Command::Inspect {
            file,
            signature,
            json,
        } => cli::inspect::inspect_file(&file, signature.as_deref(), json),
        Command::Check { file } => cli::inspect::check_file(&file).await,
        Command::Keys(command) => cli::keys::run(command, plaintext).await,
        Command::ApiKeys(command) => cli::api_keys::run(command, plaintext).await,
        Command::DevProvider(args) => cli::dev_provider::run(args).await,
        Command::Build(args) => tokio::task::block_in_place(|| cli::build::run(args)),
        Command::New(args) => args.run().await,
        Command::Dev(args) => args.run().await,
        Command::Oauth2(args) => args.run().await,
        Command::Call(args) => args.run().await,
        Command::Audit(args) => cli::audit::run(args, plaintext).await,
        Command::Publish(args) => cli::publish::publish(args).await,
        Command::Components(command) => cli::publish::components(command).await,
        Command::SigningKey(args) => cli::sign::signing_key(args),
        Command::Sign(args) => cli::sign::sign_file(args),
    }
}

/// Opens (and migrates) the database at `url`; errors show the URL redacted.
async fn open_database(url: &str, plaintext: PlaintextRemote) -> anyhow::Result<Database> {
    Database::connect_with(url, plaintext)
        .await
        .with_context(|| {
            format!(
                "cannot open database {}",
                connector_server::store::redacted_url(url)
            )
        })
}
