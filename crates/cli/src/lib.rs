//! `connector-host`: serve connectors, inspect and check connector files, and
//! the connector author commands. The binary's `main` calls [`main`]; the
//! tests build the same program from this library.

#![warn(missing_docs)]
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_server::builder::ServerBuilder;
use connector_server::config::{self, HostConfig};
use connector_server::flows::RefresherSettings;
use connector_server::keys::load_keyring;
use connector_server::registry::{CompileCache, InspectReport, inspect::inspect, load_file};
use connector_server::store::crypto::Keyring;
use connector_server::store::{AuditWriter, ConnectionStore, Database, PlaintextRemote};

mod cli;
mod examples;

/// Where `serve --dev` keeps the demo's API keys.
const DEV_API_KEYS_FILE: &str = ".connector-host/dev-api-keys";

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

/// How log lines are written (to standard error).
#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable text.
    Text,
    /// One JSON object per line.
    Json,
}

/// Sets up logging: `RUST_LOG` or the default filter, in `format`.
fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| "info,wasmtime=warn,cranelift=warn,sqlx=warn".into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API with the connectors of a plugins folder, hot-reloading it.
    Serve(ServeArgs),
    /// Print what a connector file is and may do, without running it.
    Inspect {
        /// The `.wasm` file.
        file: PathBuf,
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
    Keys(KeysCommand),
    /// API keys of the HTTP API: create (shown once), list, revoke.
    #[command(subcommand)]
    ApiKeys(cli::api_keys::ApiKeysCommand),
    /// Run the local test provider (OAuth + API-key CRM) on loopback, for demos
    /// and benchmarks. Never for production.
    DevProvider {
        /// Listen address (loopback only).
        #[arg(long, default_value = "127.0.0.1:9100")]
        listen: std::net::SocketAddr,
        /// OAuth client id it accepts.
        #[arg(long, default_value = "regional-public-client")]
        client_id: String,
        /// That client's secret.
        #[arg(
            long,
            env = "DEV_PROVIDER_CLIENT_SECRET",
            default_value = "dev-client-secret"
        )]
        client_secret: String,
        /// Redirect URIs that client may use.
        #[arg(long, default_value = "https://apps.example.com/oauth/callback")]
        redirect_uri: Vec<String>,
        /// API keys `/v3.1/Users/Me` accepts.
        #[arg(long, env = "DEV_PROVIDER_API_KEY", default_value = "dev-api-key")]
        api_key: Vec<String>,
        /// Also serve this realm, Keycloak style: its endpoints under
        /// `/realms/<name>/oauth/`, its issuer `http://<listen>/realms/<name>`.
        #[arg(long)]
        realm: Vec<String>,
    },
    /// Create a connector crate (manifest, code, README, tests) from a template.
    New(connector_authoring::authoring::cli::NewArgs),
    /// Build a connector crate, serve it with a local login page, rebuild and reload on change.
    Dev(connector_authoring::authoring::cli::DevArgs),
    /// Log a test account in with OAuth locally (tokens stored encrypted); run again to refresh.
    Oauth2(connector_authoring::authoring::cli::OAuth2Args),
    /// Call one hook of a connector and show its result, logs and outbound requests.
    Call(connector_authoring::authoring::cli::CallArgs),
    /// List a connector's recent outbound requests from the audit log.
    Audit {
        /// Connector id.
        connector: String,
        /// Database URL [default: sqlite://connector-host.db?mode=rwc].
        #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
        database_url: Option<String>,
        /// How many requests, newest first.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Print a new random key entry `id:base64key` for CONNECTOR_HOST_MASTER_KEYS.
    Generate {
        /// The key id [default: k<unix time>].
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-encrypt every stored secret under the first (current) key. Old keys
    /// must still be in the keyring; remove them afterwards.
    Rotate {
        /// Database URL [default: sqlite://connector-host.db?mode=rwc].
        #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
        database_url: Option<String>,
        /// Master keys file (else CONNECTOR_HOST_MASTER_KEYS).
        #[arg(long)]
        master_keys_file: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Configuration file (TOML); flags override it.
    #[arg(long, env = "CONNECTOR_HOST_CONFIG")]
    config: Option<PathBuf>,
    /// Folder of `.wasm` connectors [default: plugins, or the built examples with --dev].
    #[arg(long, env = "CONNECTOR_HOST_PLUGINS_DIR")]
    plugins_dir: Option<PathBuf>,
    /// Database URL [default: sqlite://connector-host.db?mode=rwc].
    #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
    database_url: Option<String>,
    /// Listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "CONNECTOR_HOST_LISTEN")]
    listen: Option<std::net::SocketAddr>,
    /// Compile cache folder [default: .connector-host/cache].
    #[arg(long, env = "CONNECTOR_HOST_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// Master keys file (lines or commas of `id:base64key`; the first encrypts).
    /// When given, it wins over `CONNECTOR_HOST_MASTER_KEYS`.
    #[arg(long)]
    master_keys_file: Option<PathBuf>,
    /// Seconds between passes of the background token refresher.
    #[arg(
        long,
        env = "CONNECTOR_HOST_REFRESH_INTERVAL_SECS",
        default_value_t = 30
    )]
    refresh_interval_secs: u64,
    /// Development defaults: serve the example connectors built from this
    /// repository, generate a development master key if none is set, and
    /// allow credentials over plain http (`[network] require_https = false`).
    #[arg(long)]
    dev: bool,
}

/// Runs the `connector-host` command line: parses the arguments, runs the
/// command on a multi-threaded tokio runtime and maps its outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let plaintext = PlaintextRemote::allowed_if(cli.database_allow_plaintext_remote);
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => serve(args, plaintext).await.map(|()| ExitCode::SUCCESS),
            Command::Inspect { file, json } => inspect_file(&file, json),
            Command::Check { file } => check_file(&file).await,
            Command::Keys(command) => keys(command, plaintext).await,
            Command::ApiKeys(command) => cli::api_keys::run(command, plaintext).await,
            Command::DevProvider {
                listen,
                client_id,
                client_secret,
                redirect_uri,
                api_key,
                realm,
            } => {
                let config = DevProviderConfig {
                    clients: vec![DevClient {
                        client_id,
                        client_secret,
                        redirect_uris: redirect_uri,
                    }],
                    api_keys: api_key,
                    realms: realm.clone(),
                    ..DevProviderConfig::default()
                };
                let provider = DevProvider::start_on(listen, config).await?;
                println!("dev provider listening on {}", provider.base_url());
                for realm in &realm {
                    if let Some(issuer) = provider.realm_issuer(realm) {
                        println!("realm {realm}: issuer {issuer}");
                    }
                }
                shutdown_signal().await;
                Ok(ExitCode::SUCCESS)
            }
            Command::New(args) => args.run().await,
            Command::Dev(args) => args.run().await,
            Command::Oauth2(args) => args.run().await,
            Command::Call(args) => args.run().await,
            Command::Audit {
                connector,
                database_url,
                limit,
                json,
            } => {
                let url = database_url.unwrap_or_else(|| config::DEFAULT_DATABASE_URL.into());
                audit(&connector, &url, plaintext, limit, json).await
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::FAILURE
        }
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

async fn serve(args: ServeArgs, plaintext: PlaintextRemote) -> anyhow::Result<()> {
    let mut file_config = match &args.config {
        Some(path) => HostConfig::load(path)?,
        None => HostConfig::default(),
    };
    // `--dev`: a local provider and the settings that let the `local-*` demo
    // connectors reach it, so a whole login works offline.
    let _dev_provider = if args.dev {
        if args.plugins_dir.is_none() && file_config.plugins_dir.is_none() {
            examples::write()?;
        }
        Some(dev::start(&mut file_config).await?)
    } else {
        None
    };
    let plugins_dir = args
        .plugins_dir
        .or(file_config.plugins_dir.clone())
        .unwrap_or_else(|| {
            if args.dev {
                examples::DIR.into()
            } else {
                config::DEFAULT_PLUGINS_DIR.into()
            }
        });
    let database_url = args
        .database_url
        .or(file_config.database_url.clone())
        .unwrap_or_else(|| config::DEFAULT_DATABASE_URL.into());
    let listen = args
        .listen
        .or(file_config.listen)
        .unwrap_or_else(|| config::DEFAULT_LISTEN.parse().expect("valid"));
    let cache_dir = args
        .cache_dir
        .or(file_config.cache_dir.clone())
        .unwrap_or_else(|| config::DEFAULT_CACHE_DIR.into());

    if !plugins_dir.is_dir() {
        std::fs::create_dir_all(&plugins_dir).with_context(|| {
            format!("cannot create the plugins folder {}", plugins_dir.display())
        })?;
    }
    let keyring = load_keyring(args.master_keys_file.as_deref(), args.dev)?;
    tracing::info!(current_key = keyring.current_key_id(), "master keys loaded");
    // The flag (or its variable) and the config key each opt in.
    let plaintext = if file_config.database_allow_plaintext_remote {
        PlaintextRemote::Allow
    } else {
        plaintext
    };
    let database = open_database(&database_url, plaintext).await?;
    file_config.validate()?;
    let audit = AuditWriter::start(&database);
    let server = ServerBuilder::new(&plugins_dir, Arc::new(audit.clone()))
        .limits(file_config.limits.clone())
        .network(file_config.network.clone())
        .host_secrets(file_config.host_secrets()?)
        .compile_cache(CompileCache::checked(cache_dir))
        .connectors(file_config.connectors.clone())
        .webhooks(file_config.webhooks.clone())
        .api_limits(file_config.api.clone())
        .refresh_leases(file_config.refresh.clone())
        .build(database, Arc::new(keyring))
        .await?;
    let registry = &server.registry;
    tracing::info!(pooling = registry.runtime().is_pooling(), plugins = %plugins_dir.display(), "runtime ready");
    tracing::info!(
        loaded = server.initial_load.loaded.len(),
        failed = server.initial_load.failed.len(),
        "initial load done"
    );
    let _watch = registry.watch();
    let _delivery = Aborting(server.events.start_delivery());
    let _pruning = Aborting(connector_server::store::retention::start(
        server.database.clone(),
        file_config.retention.clone(),
    ));
    let _refresher = Aborting(server.flows.start_refresher(RefresherSettings {
        interval: std::time::Duration::from_secs(args.refresh_interval_secs.max(1)),
        ..RefresherSettings::default()
    }));
    let _validator = file_config
        .validation
        .enabled
        .then(|| Aborting(server.flows.start_validator(file_config.validation.clone())));
    let state = &server.state;
    if args.dev {
        let keys = cli::api_keys::dev_keys(&state.api_keys, Path::new(DEV_API_KEYS_FILE)).await?;
        tracing::warn!(
            "development API keys ({}) are in {DEV_API_KEYS_FILE}: service (every account), operator, admin (account `demo`)",
            keys.len()
        );
    } else if state
        .api_keys
        .list()
        .await?
        .iter()
        .all(|k| k.revoked_at.is_some())
    {
        tracing::warn!(
            "no API key exists: every /v1 request will be refused; create one with `connector-host api-keys create`"
        );
    }
    let app = server.router();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    tracing::info!("listening on http://{}", listener.local_addr()?);
    connector_server::api::serve(listener, app, &server.api, shutdown_signal()).await?;
    // Requests in flight have finished: make sure their audit events are stored.
    audit.flush().await;
    Ok(())
}

/// Aborts a background task when dropped (at shutdown).
struct Aborting(tokio::task::JoinHandle<()>);

impl Drop for Aborting {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Ctrl-C or SIGTERM (what service managers send) stops accepting requests and
/// lets requests in flight finish.
async fn shutdown_signal() {
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
    tracing::info!("shutting down");
}

fn inspect_file(file: &Path, json: bool) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let info =
        inspect(&bytes).with_context(|| format!("{} is not a valid connector", file.display()))?;
    let report = InspectReport::new(&info);
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report.to_text());
    }
    Ok(ExitCode::SUCCESS)
}

async fn check_file(file: &Path) -> anyhow::Result<ExitCode> {
    let runtime = Arc::new(Runtime::new(RuntimeLimits {
        pooling: false,
        ..RuntimeLimits::default()
    })?);
    match load_file(
        &runtime,
        &CompileCache::disabled(),
        file,
        &Default::default(),
    )
    .await
    {
        Ok(loaded) => {
            println!(
                "ok: {} ({} hooks, sha256 {})",
                loaded.connector(),
                loaded.info.hooks.len(),
                loaded.info.sha256
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{}: {error}", file.display());
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn audit(
    connector: &str,
    database_url: &str,
    plaintext: PlaintextRemote,
    limit: i64,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let database = open_database(database_url, plaintext).await?;
    let events = database
        .outbound_audit(connector, limit.clamp(1, 10_000))
        .await?;
    if json {
        for event in &events {
            println!("{}", serde_json::to_string(event)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        println!("no outbound requests recorded for `{connector}`");
    }
    for e in &events {
        println!(
            "{} {}@{} {:<7} {}://{}:{}{} {:?} {} {} cred={} {}us{}",
            e.at_ms,
            e.connector_id,
            e.connector_version,
            e.method,
            e.scheme.as_deref().unwrap_or("-"),
            e.host.as_deref().unwrap_or("-"),
            e.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            e.path.as_deref().unwrap_or(""),
            e.outcome,
            e.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            e.account_id.as_deref().unwrap_or("-"),
            e.credential.as_deref().unwrap_or("none"),
            e.duration_us,
            e.reason
                .as_ref()
                .map(|r| format!(" reason={r}"))
                .unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

async fn keys(command: KeysCommand, plaintext: PlaintextRemote) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Generate { id } => {
            let id = id.unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!("k{}", now.as_secs())
            });
            let entry = Keyring::generate_entry(&id);
            // Refuse ids the keyring would not load later.
            Keyring::from_spec(&entry).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
            println!("{entry}");
            eprintln!(
                "add it first in CONNECTOR_HOST_MASTER_KEYS (comma-separated, current key first), then run `connector-host keys rotate`"
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate {
            database_url,
            master_keys_file,
        } => {
            let keyring = load_keyring(master_keys_file.as_deref(), false)?;
            let url = database_url.unwrap_or_else(|| config::DEFAULT_DATABASE_URL.into());
            let database = open_database(&url, plaintext).await?;
            let current = keyring.current_key_id().to_string();
            let connections = ConnectionStore::new(database, Arc::new(keyring));
            let mut report = connections.rotate_keys().await?;
            let managed = connections.managed().rotate_keys().await?;
            report.rotated += managed.rotated;
            report.failed.extend(managed.failed);
            println!(
                "re-encrypted {} value(s) under key `{current}`",
                report.rotated
            );
            for failure in &report.failed {
                eprintln!("not re-encrypted: {failure}");
            }
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}

/// The offline demo behind `serve --dev`.
mod dev {
    use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
    use connector_server::config::{HostConfig, SecretSource};

    /// The demo's API key for `local-insightly`.
    pub const API_KEY: &str = "dev-api-key";
    const CLIENT_SECRET_ENV: &str = "CONNECTOR_HOST_DEV_CLIENT_SECRET";

    /// Starts the provider on 127.0.0.1:9100 (or a free port) and configures the
    /// `local-*` connectors for it.
    pub async fn start(config: &mut HostConfig) -> anyhow::Result<DevProvider> {
        let secret = "dev-client-secret";
        let provider_config = DevProviderConfig {
            clients: vec![DevClient {
                client_id: "regional-public-client".into(),
                client_secret: secret.into(),
                redirect_uris: vec!["https://apps.example.com/oauth/callback".into()],
            }],
            api_keys: vec![API_KEY.into()],
            ..DevProviderConfig::default()
        };
        let provider =
            match DevProvider::start_on("127.0.0.1:9100".parse()?, provider_config.clone()).await {
                Ok(provider) => provider,
                Err(_) => DevProvider::start(provider_config).await?,
            };
        let base = provider.base_url();
        let host = base.trim_start_matches("http://").to_string();
        let loopback: ipnet::IpNet = "127.0.0.1/32".parse()?;
        if !config.network.allow_private_networks.contains(&loopback) {
            config.network.allow_private_networks.push(loopback);
        }
        // The local provider speaks plain http: the host's token requests and
        // the demo connectors' credentials go to it in clear (the outbound
        // client logs a WARN saying so).
        config.network.require_https = false;
        // SAFETY of set_var: called before the runtime spawns any other thread
        // that reads the environment (single-threaded start-up of `serve`).
        #[allow(unsafe_code)]
        unsafe {
            std::env::set_var(CLIENT_SECRET_ENV, secret)
        };
        config
            .secrets
            .entry("regional-crm-client-secret".into())
            .or_insert(SecretSource {
                env: Some(CLIENT_SECRET_ENV.into()),
                file: None,
                connectors: vec!["local-regional".into()],
                purposes: connector_server::config::default_purposes(),
            });
        let regional = config
            .connectors
            .entry("local-regional".into())
            .or_default();
        regional
            .config
            .entry("scheme".into())
            .or_insert_with(|| "http".into());
        regional
            .config
            .entry("default-hostname".into())
            .or_insert_with(|| host.clone());
        tracing::warn!(
            "dev provider listening on {base} (demo API key `{API_KEY}` for local-insightly; local-regional logs in through it)"
        );
        Ok(provider)
    }
}
