//! One way to wire a host: the outbound boundary, the sandbox runtime, the
//! registry, the stores, the events and the flows, and the API state over them.
//! `connector-host serve` and the in-process test host both build through
//! [`ServerBuilder`], so the tests run what production runs.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use connector_sandbox::capabilities::http::{
    AuditSink, HostSecret, Outbound, OutboundConfig, Resolver, SystemResolver,
};
use connector_sandbox::runtime::{Runtime, RuntimeLimits};

use crate::api::limits::ApiLimits;
use crate::api::{AppState, router_with};
use crate::config::ConnectorSettings;
use crate::events::{Events, WebhookConfig};
use crate::flows::Flows;
use crate::registry::{CompileCache, PublishingSettings, Registry, SyncSummary};
use crate::store::crypto::Keyring;
use crate::store::{ComponentStore, ConnectionStore, Database, OAuthStateStore};

/// What went wrong while wiring a host.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The outbound HTTP boundary could not be set up (e.g. no TLS roots).
    #[error("cannot set up outbound HTTP: {0:#}")]
    Outbound(anyhow::Error),
    /// The wasmtime engine could not be created with these limits.
    #[error("cannot create the sandbox runtime: {0:#}")]
    Runtime(anyhow::Error),
    /// The webhook settings are unusable (e.g. an unreadable signing secret).
    #[error("webhooks: {0}")]
    Events(#[from] crate::events::EventsError),
    /// The `[publishing]` settings are unusable (e.g. a bad trusted key).
    #[error("{0}")]
    Publishing(String),
    /// The published components could not be read at start.
    #[error("cannot read the published components: {0}")]
    Published(sqlx::Error),
    /// A one-time data upgrade ([`crate::store::upgrades`]) could not run.
    #[error("data upgrade `{0}` failed: {1}")]
    Upgrade(&'static str, String),
}

/// The settings of a host, with the defaults of `serve` where one is not set.
pub struct ServerBuilder {
    plugins_dir: PathBuf,
    audit: Arc<dyn AuditSink>,
    limits: RuntimeLimits,
    network: OutboundConfig,
    resolver: Arc<dyn Resolver>,
    host_secrets: BTreeMap<String, HostSecret>,
    cache: CompileCache,
    connectors: BTreeMap<String, ConnectorSettings>,
    webhooks: Option<WebhookConfig>,
    lease_ttl_ms: Option<i64>,
    leases: Option<crate::flows::LeaseSettings>,
    record_versions: bool,
    api: ApiLimits,
    publishing: PublishingSettings,
}

impl ServerBuilder {
    /// A host serving the connectors of `plugins_dir`, recording every
    /// outbound request in `audit`.
    pub fn new(plugins_dir: impl Into<PathBuf>, audit: Arc<dyn AuditSink>) -> Self {
        Self {
            plugins_dir: plugins_dir.into(),
            audit,
            limits: RuntimeLimits::default(),
            network: OutboundConfig::default(),
            resolver: Arc::new(SystemResolver),
            host_secrets: BTreeMap::new(),
            cache: CompileCache::disabled(),
            connectors: BTreeMap::new(),
            webhooks: None,
            lease_ttl_ms: None,
            leases: None,
            record_versions: true,
            api: ApiLimits::default(),
            publishing: PublishingSettings::default(),
        }
    }

    /// Per-call limits of the sandbox.
    pub fn limits(mut self, limits: RuntimeLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The operator's outbound settings (allowed private networks, sizes, time).
    pub fn network(mut self, network: OutboundConfig) -> Self {
        self.network = network;
        self
    }

    /// How names are resolved for outbound requests (the system resolver by default).
    pub fn resolver(mut self, resolver: Arc<dyn Resolver>) -> Self {
        self.resolver = resolver;
        self
    }

    /// The host secrets connectors may name (e.g. OAuth client secrets).
    pub fn host_secrets(mut self, secrets: BTreeMap<String, HostSecret>) -> Self {
        self.host_secrets = secrets;
        self
    }

    /// Where compiled components are cached (no cache by default).
    pub fn compile_cache(mut self, cache: CompileCache) -> Self {
        self.cache = cache;
        self
    }

    /// The operator's per-connector settings (config values, narrowed hosts).
    pub fn connectors(mut self, connectors: BTreeMap<String, ConnectorSettings>) -> Self {
        self.connectors = connectors;
        self
    }

    /// Signed webhooks for connection events (none by default).
    pub fn webhooks(mut self, webhooks: Option<WebhookConfig>) -> Self {
        self.webhooks = webhooks;
        self
    }

    /// The lifetime of a refresh lease (the flows' default when not set).
    pub fn lease_ttl_ms(mut self, ttl_ms: Option<i64>) -> Self {
        self.lease_ttl_ms = ttl_ms;
        self
    }

    /// The refresh lease and the callers' wait bound (`[refresh]`); a
    /// [`ServerBuilder::lease_ttl_ms`] set as well overrides its lifetime.
    pub fn refresh_leases(mut self, leases: crate::flows::LeaseSettings) -> Self {
        self.leases = Some(leases);
        self
    }

    /// Whether loaded connector versions are recorded in the database (on by
    /// default; tests that share nothing with `serve` may turn it off).
    pub fn record_versions(mut self, record: bool) -> Self {
        self.record_versions = record;
        self
    }

    /// The HTTP API's body, time, in-flight and per-key rate limits.
    pub fn api_limits(mut self, limits: ApiLimits) -> Self {
        self.api = limits;
        self
    }

    /// Signatures and reconciliation of published components (`[publishing]`).
    pub fn publishing(mut self, settings: PublishingSettings) -> Self {
        self.publishing = settings;
        self
    }

    /// Wires everything over `database` and loads the plugins folder once.
    pub async fn build(
        self,
        database: Database,
        keyring: Arc<Keyring>,
    ) -> Result<Server, BuildError> {
        let outbound = Outbound::new(
            self.network,
            self.resolver,
            Arc::new(self.host_secrets),
            self.audit,
        )
        .map_err(BuildError::Outbound)?;
        let runtime =
            Arc::new(Runtime::with_outbound(self.limits, outbound).map_err(BuildError::Runtime)?);
        let mut registry = Registry::new(runtime, &self.plugins_dir, self.cache, self.connectors)
            .with_publishing(self.publishing)
            .map_err(BuildError::Publishing)?;
        if self.record_versions {
            registry = registry.with_database(database.clone());
        }
        let registry = Arc::new(registry);
        let initial_load = registry.sync().await;
        registry
            .reconcile_published(&ComponentStore::new(database.clone()))
            .await
            .map_err(BuildError::Published)?;

        let connections = ConnectionStore::new(database.clone(), keyring.clone());
        run_data_upgrades(&database, &connections, &keyring).await?;
        let states = OAuthStateStore::new(database.clone(), keyring.clone());
        let events = Events::new(database.clone(), keyring, self.webhooks)?;
        let mut flows = Flows::new(registry.clone(), connections.clone(), states.clone())
            .with_events(events.clone());
        if let Some(leases) = self.leases {
            flows = flows.with_lease_settings(leases);
        }
        if let Some(ttl) = self.lease_ttl_ms {
            flows = flows.with_lease_ttl_ms(ttl);
        }
        let state = AppState::new(
            registry.clone(),
            database.clone(),
            connections.clone(),
            flows.clone(),
        )
        .with_api_limits(&self.api);
        Ok(Server {
            registry,
            database,
            connections,
            states,
            events,
            flows,
            state,
            initial_load,
            api: self.api,
        })
    }
}

/// The one-time data upgrades that need the master keys
/// ([`crate::store::upgrades`]), each skipped once recorded as done.
async fn run_data_upgrades(
    database: &Database,
    connections: &ConnectionStore,
    keyring: &Keyring,
) -> Result<(), BuildError> {
    use crate::store::upgrades::{OUTBOX_MAC, USER_BOUND_SECRETS, is_done, mark_done};
    let failed = upgrade_error(USER_BOUND_SECRETS);
    if !is_done(database, USER_BOUND_SECRETS)
        .await
        .map_err(failed)?
    {
        let report = connections
            .bind_secrets_to_users()
            .await
            .map_err(upgrade_error(USER_BOUND_SECRETS))?;
        for failure in &report.failed {
            tracing::error!(%failure, "a stored secret could not be bound to its user; it stays unreadable");
        }
        tracing::info!(
            reencrypted = report.rotated,
            "connection secrets bound to their users"
        );
        mark_done(database, USER_BOUND_SECRETS)
            .await
            .map_err(upgrade_error(USER_BOUND_SECRETS))?;
    }
    if !is_done(database, OUTBOX_MAC)
        .await
        .map_err(upgrade_error(OUTBOX_MAC))?
    {
        let rows = Events::mac_pending_rows(database, keyring)
            .await
            .map_err(upgrade_error(OUTBOX_MAC))?;
        tracing::info!(rows, "pending webhook outbox rows given their MAC");
        mark_done(database, OUTBOX_MAC)
            .await
            .map_err(upgrade_error(OUTBOX_MAC))?;
    }
    Ok(())
}

/// Turns an error of the data upgrade `name` into a [`BuildError`].
fn upgrade_error<E: std::fmt::Display>(name: &'static str) -> impl FnOnce(E) -> BuildError {
    move |error| BuildError::Upgrade(name, error.to_string())
}

/// A wired host: its parts, for the caller to serve and to look into.
pub struct Server {
    /// Live connectors.
    pub registry: Arc<Registry>,
    /// The database.
    pub database: Database,
    /// Connections.
    pub connections: ConnectionStore,
    /// Pending OAuth authorizations.
    pub states: OAuthStateStore,
    /// The events publisher (webhooks).
    pub events: Events,
    /// The connection flows.
    pub flows: Flows,
    /// The state of the API routes.
    pub state: AppState,
    /// What the first load of the plugins folder found.
    pub initial_load: SyncSummary,
    /// The HTTP API's limits.
    pub api: ApiLimits,
}

impl Server {
    /// The HTTP API over this host.
    pub fn router(&self) -> axum::Router {
        router_with(self.state.clone(), &self.api)
    }

    /// Follows the published components (notifications, reconciliation)
    /// and reports this replica's status; abort the task to stop.
    pub fn start_distribution(&self) -> tokio::task::JoinHandle<()> {
        crate::registry::distribution::start(self.registry.clone(), self.database.clone())
    }
}
