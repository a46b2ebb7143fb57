//! `connector-host serve`: opens the database, loads the plugins folder, starts
//! the background tasks and serves the HTTP API until Ctrl-C or SIGTERM.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;

use connector_server::builder::ServerBuilder;
use connector_server::config::{self, HostConfig};
use connector_server::flows::RefresherSettings;
use connector_server::keys::load_keyring;
use connector_server::registry::CompileCache;
use connector_server::store::{AuditWriter, PlaintextRemote};

use super::{dev_demo, shutdown_signal};
use crate::trace_export::TraceExport;
use crate::{examples, open_database};

/// Where `serve --dev` keeps the demo's API keys.
const DEV_API_KEYS_FILE: &str = ".connector-host/dev-api-keys";

#[derive(clap::Args)]
pub struct ServeArgs {
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
    /// Export traces to this OpenTelemetry collector (OTLP/HTTP base URL,
    /// e.g. `http://127.0.0.1:4318`); wins over `[telemetry] otlp_endpoint`.
    #[arg(long, env = "CONNECTOR_HOST_OTLP_ENDPOINT")]
    otlp_endpoint: Option<String>,
}

impl ServeArgs {
    /// Reads the configuration file (`--config`), or the defaults.
    pub fn load_config(&self) -> anyhow::Result<HostConfig> {
        match &self.config {
            Some(path) => HostConfig::load(path),
            None => Ok(HostConfig::default()),
        }
    }

    /// Where spans are exported, if anywhere: `--otlp-endpoint`, else
    /// `[telemetry] otlp_endpoint`.
    pub fn trace_export(&self, config: &HostConfig) -> anyhow::Result<Option<TraceExport>> {
        let mut telemetry = config.telemetry.clone();
        if let Some(endpoint) = &self.otlp_endpoint {
            telemetry.otlp_endpoint = Some(endpoint.clone());
        }
        telemetry.validate().map_err(anyhow::Error::msg)?;
        Ok(telemetry
            .traces_url()
            .map_err(anyhow::Error::msg)?
            .map(|traces_url| TraceExport {
                traces_url,
                service_name: telemetry.service_name.clone(),
            }))
    }
}

/// `serve`: the HTTP API with the connectors of a plugins folder, with
/// `file_config` read by [`ServeArgs::load_config`].
pub async fn run(
    args: ServeArgs,
    mut file_config: HostConfig,
    plaintext: PlaintextRemote,
) -> anyhow::Result<()> {
    let listen = args
        .listen
        .or(file_config.listen)
        .unwrap_or_else(|| config::DEFAULT_LISTEN.parse().expect("valid"));
    // Bound first: `--dev` registers the host's callback page, on this
    // port, with its local provider.
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    // `--dev`: a local provider and the settings that let the `local-*` demo
    // connectors reach it, so a whole login works offline.
    let _dev_provider = if args.dev {
        if args.plugins_dir.is_none() && file_config.plugins_dir.is_none() {
            examples::write()?;
        }
        Some(dev_demo::start(&mut file_config, local).await?)
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
    let mut server = ServerBuilder::new(&plugins_dir, Arc::new(audit.clone()))
        .limits(file_config.limits.clone())
        .network(file_config.network.clone())
        .host_secrets(file_config.host_secrets()?)
        .compile_cache(CompileCache::checked(cache_dir))
        .connectors(file_config.connectors.clone())
        .webhooks(file_config.webhooks.clone())
        .api_limits(file_config.api.clone())
        .refresh_leases(file_config.refresh.clone())
        .publishing(file_config.publishing.clone())
        .build(database, Arc::new(keyring))
        .await?;
    server.state = server
        .state
        .clone()
        .with_console(file_config.console.clone());
    let registry = &server.registry;
    tracing::info!(pooling = registry.runtime().is_pooling(), plugins = %plugins_dir.display(), "runtime ready");
    tracing::info!(
        loaded = server.initial_load.loaded.len(),
        failed = server.initial_load.failed.len(),
        "initial load done"
    );
    let _watch = registry.watch();
    let _distribution = Aborting(server.start_distribution());
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
        let keys = super::api_keys::dev_keys(&state.api_keys, Path::new(DEV_API_KEYS_FILE)).await?;
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
    tracing::info!("listening on http://{local}");
    if args.dev {
        let base = server.state.console.base_url(None);
        tracing::warn!("open {base}/connect/demo in a browser to log in to a demo connector");
    }
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
