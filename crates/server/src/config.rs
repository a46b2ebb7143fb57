//! The host's configuration file (TOML). Every setting has a working default;
//! command-line flags override the file.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! plugins_dir = "plugins"
//! database_url = "sqlite://connector-host.db?mode=rwc"   # or postgres://…?sslmode=verify-full
//! database_allow_plaintext_remote = false  # true: a remote PostgreSQL without TLS (see below)
//! cache_dir = ".connector-host/cache"
//!
//! [limits]
//! call_timeout_ms = 10000
//! memory_bytes = 67108864
//!
//! [network]
//! allow_private_networks = []          # e.g. ["127.0.0.1/32"] for a local provider
//! require_https = true                 # credentials only over https (off with serve --dev)
//!
//! [secrets]                            # purposes: ["client-secret"] unless set
//! regional-crm-client-secret = { env = "REGIONAL_CRM_CLIENT_SECRET", connectors = ["regional-crm"] }
//! acme-partner-token = { env = "ACME_TOKEN", connectors = ["acme-crm"], purposes = ["request-header"] }
//!
//! [connectors.regional-crm]
//! allowed_hosts = ["https://eu.regional-crm.example"]   # narrows the manifest
//! [connectors.regional-crm.config]
//! default-hostname = "eu.regional-crm.example"
//!
//! [webhooks]                           # optional: signed connection events
//! url = "https://platform.example/hooks/connector-host"   # absolute http(s) URL
//! secret = { env = "CONNECTOR_HOST_WEBHOOK_SECRET" }      # or { file = "/run/secrets/…" }
//! max_attempts = 12                    # attempts before an event is marked failed
//! backoff_base_secs = 5                # first retry delay, doubled each time (with jitter)
//! backoff_max_secs = 3600              # longest delay between attempts
//! timeout_secs = 10                    # one attempt, connect to end of response
//!
//! [retention]                          # background pruning of old rows
//! oauth_states_after_expiry_secs = 3600
//! outbound_audit_days = 30
//! webhook_outbox_days = 7              # delivered or failed events; pending ones stay
//! admin_audit_days = 365
//! interval_secs = 60
//! batch = 5000                         # rows per delete statement
//!
//! [validation]                         # connections without a token expiry (API keys, OAuth without expiresAt)
//! enabled = true
//! interval_secs = 86400                # validated again once this long since the last validation
//! pass_interval_secs = 300             # seconds between passes
//! max_per_pass = 100                   # validations per pass, at most
//! concurrency = 4                      # validations in flight at once
//!
//! [api]                                # the host's own API under abuse
//! body_limit_bytes = 1048576           # 413 above
//! proxy_body_limit_bytes = 33554432    # pass-through proxy, each way, while streaming
//! request_timeout_secs = 30            # 408 after
//! header_read_timeout_secs = 10        # connection closed when headers take longer
//! max_in_flight = 1024                 # 503 (Retry-After) above
//! requests_per_second_per_key = 200    # 429 (Retry-After) above, per API key
//! burst_per_key = 400
//!
//! [publishing]                         # components published to the database
//! require_signatures = false           # true: only components signed by a trusted key
//! trusted_keys = { release = "BASE64 Ed25519 public key" }
//! reconcile_interval_secs = 10         # fallback for a missed notification
//! replica_id = "eu-1a"                 # default: host name and process id
//! [console]                            # the connect pages (docs/operating.md)
//! public_url = "https://connect.example.com"   # where browsers reach the host; OAuth redirect URI {public_url}/connect/oauth/callback
//! connect_session_secs = 1800          # how long a connect link may be used (60–86400)
//!
//! [telemetry]                          # OpenTelemetry trace export, off unless an endpoint is set
//! otlp_endpoint = "http://127.0.0.1:4318"   # OTLP/HTTP base URL: spans go to {otlp_endpoint}/v1/traces
//! service_name = "connector-host"      # the service.name resource attribute
//! ```
//!
//! `[webhooks]` ([`WebhookConfig`]) is absent by default: no events are sent.
//! Its `secret` is the HMAC-SHA256 key receivers verify signatures with
//! ([`crate::events::signature`]); like `[secrets]`, the file names where the
//! value is, never the value. [`HostConfig::validate`] checks the URL and the
//! retry settings; the secret is read when [`crate::events::Events`] is built.
//! Errors name the key (`webhooks.url: …`, `webhooks.secret: …`).
//!
//! A PostgreSQL `database_url` whose host is not on this machine must ask for
//! TLS (`sslmode=require`, `verify-ca` or `verify-full`);
//! `database_allow_plaintext_remote = true` accepts one without, at the cost
//! the refusal spells out ([`crate::store::tls`]).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use secrecy::SecretString;

pub use crate::events::{WebhookConfig, WebhookSecretSource};
use connector_abi::manifest::AllowedOrigin;
use connector_sandbox::capabilities::http::{HostSecret, OutboundConfig, SecretPurpose};
use connector_sandbox::runtime::RuntimeLimits;

pub use crate::api::limits::ApiLimits;
pub use crate::console::ConsoleSettings;
pub use crate::store::retention::RetentionSettings;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default plugins folder.
pub const DEFAULT_PLUGINS_DIR: &str = "plugins";
/// Default database.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://connector-host.db?mode=rwc";
/// Default compile cache.
pub const DEFAULT_CACHE_DIR: &str = ".connector-host/cache";

/// The configuration file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HostConfig {
    /// Address the HTTP API listens on.
    pub listen: Option<SocketAddr>,
    /// Folder of `.wasm` connectors.
    pub plugins_dir: Option<PathBuf>,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: Option<String>,
    /// Accept a PostgreSQL server off this machine without TLS (cleartext,
    /// readable and forgeable on the path); off by default.
    pub database_allow_plaintext_remote: bool,
    /// Compile cache folder (only the host may write it).
    pub cache_dir: Option<PathBuf>,
    /// Sandbox limits.
    pub limits: RuntimeLimits,
    /// Outbound HTTP settings.
    pub network: OutboundConfig,
    /// Host secrets connectors may name (never their values), by name.
    pub secrets: BTreeMap<String, SecretSource>,
    /// Per-connector settings by connector id.
    pub connectors: BTreeMap<String, ConnectorSettings>,
    /// Signed webhooks about connection events (`[webhooks]`); none when absent.
    pub webhooks: Option<WebhookConfig>,
    /// How long old rows are kept before the background pruning removes them.
    pub retention: RetentionSettings,
    /// Limits of the HTTP API (body, time, in flight, per-key rate).
    pub api: ApiLimits,
    /// The refresh lease and how long callers wait for a refresh (`[refresh]`).
    pub refresh: crate::flows::LeaseSettings,
    /// The background validation of connections without a token expiry
    /// (`[validation]`).
    pub validation: crate::flows::ValidationSettings,
    /// Published components: signatures, reconciliation, this replica's
    /// name (`[publishing]`).
    pub publishing: crate::registry::PublishingSettings,
    /// The web console: its public URL and connect sessions (`[console]`).
    pub console: ConsoleSettings,
    /// OpenTelemetry trace export (`[telemetry]`); off by default.
    pub telemetry: TelemetrySettings,
}

/// OpenTelemetry trace export over OTLP/HTTP (`[telemetry]`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetrySettings {
    /// The collector's OTLP/HTTP base URL (`http` or `https`, no query, no
    /// user name or password: collector credentials go in
    /// `OTEL_EXPORTER_OTLP_HEADERS`). Spans are sent to
    /// `{otlp_endpoint}/v1/traces`. No export when absent.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of every exported span.
    pub service_name: String,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "connector-host".into(),
        }
    }
}

impl TelemetrySettings {
    /// The traces URL, `{otlp_endpoint}/v1/traces`, when export is on; the
    /// error names the key and what was expected.
    pub fn traces_url(&self) -> Result<Option<url::Url>, String> {
        let Some(endpoint) = &self.otlp_endpoint else {
            return Ok(None);
        };
        traces_url(endpoint).map(Some)
    }

    /// Checks the endpoint and the service name.
    pub fn validate(&self) -> Result<(), String> {
        if self.service_name.trim().is_empty() {
            return Err("telemetry.service_name: must not be empty".into());
        }
        self.traces_url().map(|_| ())
    }
}

/// `{endpoint}/v1/traces` for an OTLP/HTTP base URL (the OpenTelemetry
/// convention for `OTEL_EXPORTER_OTLP_ENDPOINT`).
pub fn traces_url(endpoint: &str) -> Result<url::Url, String> {
    let fail = |why: &str| {
        Err(format!(
            "telemetry.otlp_endpoint: {why} (expected an http(s) base URL such as http://127.0.0.1:4318)"
        ))
    };
    let Ok(base) = url::Url::parse(endpoint) else {
        return fail("not a URL");
    };
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return fail("only http and https URLs with a host are accepted");
    }
    if !base.username().is_empty() || base.password().is_some() {
        return fail(
            "must not carry a user name or password; put collector credentials in OTEL_EXPORTER_OTLP_HEADERS",
        );
    }
    if base.query().is_some() || base.fragment().is_some() {
        return fail("must not have a query or fragment");
    }
    let path = base.path().trim_end_matches('/');
    let mut url = base.clone();
    url.set_path(&format!("{path}/v1/traces"));
    Ok(url)
}

/// Operator settings for one connector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Non-secret values the connector reads through `config`.
    pub config: BTreeMap<String, String>,
    /// Narrows the manifest's `allowedHosts`: a request must match both.
    pub allowed_hosts: Option<Vec<String>>,
    /// This connector's concurrent hook calls (the runtime's default share,
    /// `[limits] max_concurrent_calls_per_connector`, when absent).
    pub max_concurrent_calls: Option<u32>,
    /// This connector's linear-memory cap per hook call, in bytes (`[limits]
    /// memory_bytes`, the pool's slot size, when absent; at most that).
    pub memory_bytes: Option<usize>,
    /// Lets a connector that declares `auth.apiKey.placement` `query` put the
    /// API key into a query string. Off by default: servers log URLs and echo
    /// them (`Location`, `Link`, error pages), so the key leaks more easily
    /// than from a header.
    pub allow_query_credential: bool,
}

/// A host secret: where its value comes from (never the config file itself),
/// which connectors may use it and what for. A connector gets a secret only if
/// it is granted here, for that purpose, *and* listed in the connector's
/// manifest `secrets`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSource {
    /// An environment variable of the host process.
    #[serde(default)]
    pub env: Option<String>,
    /// A file (its content, without the trailing newline).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Connector ids allowed to use the secret (required, not empty).
    pub connectors: Vec<String>,
    /// What they may use it for (not empty): `client-secret` (the OAuth client
    /// secret the host sends to token and revocation endpoints itself; the
    /// default) and/or `request-header` (placed into a header of the
    /// connector's own requests).
    #[serde(default = "default_purposes")]
    pub purposes: Vec<SecretPurpose>,
}

/// A grant without `purposes`: the OAuth client secret only.
pub fn default_purposes() -> Vec<SecretPurpose> {
    SecretPurpose::DEFAULT.to_vec()
}

impl SecretSource {
    /// Reads the value; errors name the secret, never the value.
    pub fn read(&self, name: &str) -> anyhow::Result<HostSecret> {
        if self.connectors.is_empty() {
            anyhow::bail!(
                "secrets.{name}.connectors: grant the secret to at least one connector id"
            );
        }
        if self.purposes.is_empty() {
            anyhow::bail!(
                "secrets.{name}.purposes: grant the secret for at least one purpose (`client-secret`, `request-header`)"
            );
        }
        let value = match (&self.env, &self.file) {
            (Some(var), None) => std::env::var(var).map_err(|_| {
                anyhow::anyhow!("secret `{name}`: environment variable {var} is not set")
            })?,
            (None, Some(path)) => std::fs::read_to_string(path)
                .map_err(|e| {
                    anyhow::anyhow!("secret `{name}`: cannot read {}: {e}", path.display())
                })?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            _ => anyhow::bail!("secrets.{name}: set exactly one of `env` or `file`"),
        };
        Ok(
            HostSecret::new(SecretString::from(value), self.connectors.iter().cloned())
                .for_purposes(self.purposes.iter().copied()),
        )
    }
}

impl HostConfig {
    /// Reads a config file; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }

    /// Reads every configured host secret.
    pub fn host_secrets(&self) -> anyhow::Result<BTreeMap<String, HostSecret>> {
        self.secrets
            .iter()
            .map(|(name, source)| Ok((name.clone(), source.read(name)?)))
            .collect()
    }

    /// Checks the per-connector origin lists parse, and the `[webhooks]` settings
    /// other than the secret.
    pub fn validate(&self) -> anyhow::Result<()> {
        for (id, settings) in &self.connectors {
            if let Some(slots) = settings.max_concurrent_calls
                && !(1..=self.limits.max_concurrent_calls).contains(&slots)
            {
                anyhow::bail!(
                    "connectors.{id}.max_concurrent_calls: must be between 1 and [limits] max_concurrent_calls ({})",
                    self.limits.max_concurrent_calls
                );
            }
            if let Some(bytes) = settings.memory_bytes
                && !(1..=self.limits.memory_bytes).contains(&bytes)
            {
                anyhow::bail!(
                    "connectors.{id}.memory_bytes: must be between 1 and [limits] memory_bytes ({})",
                    self.limits.memory_bytes
                );
            }
            for (i, origin) in settings.allowed_hosts.iter().flatten().enumerate() {
                AllowedOrigin::parse(origin)
                    .map_err(|e| anyhow::anyhow!("connectors.{id}.allowed_hosts[{i}]: {e}"))?;
            }
        }
        if let Some(webhooks) = &self.webhooks {
            webhooks.validate()?;
        }
        self.retention.validate().map_err(anyhow::Error::msg)?;
        self.api.validate().map_err(anyhow::Error::msg)?;
        self.refresh.validate().map_err(anyhow::Error::msg)?;
        self.validation.validate().map_err(anyhow::Error::msg)?;
        self.publishing.validate().map_err(anyhow::Error::msg)?;
        self.console.validate().map_err(anyhow::Error::msg)?;
        self.telemetry.validate().map_err(anyhow::Error::msg)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retention_settings_are_bounded_and_name_their_key() {
        let config: HostConfig = toml::from_str("[retention]\noutbound_audit_days = 0").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("retention.outbound_audit_days"), "{error}");
        let config: HostConfig = toml::from_str("[retention]\nbatch = 0").unwrap();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("retention.batch")
        );
        assert!(HostConfig::default().validate().is_ok());
    }

    #[test]
    fn a_connector_memory_cap_is_bounded_by_the_runtime_cap_and_names_its_key() {
        let ok: HostConfig = toml::from_str("[connectors.js]\nmemory_bytes = 25165824").unwrap();
        ok.validate().unwrap();
        assert_eq!(ok.connectors["js"].memory_bytes, Some(24 << 20));
        for bad in ["memory_bytes = 0", "memory_bytes = 134217728"] {
            let config: HostConfig = toml::from_str(&format!("[connectors.js]\n{bad}")).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains("connectors.js.memory_bytes"), "{error}");
        }
    }

    #[test]
    fn refresh_leases_default_to_seconds_and_are_bounded_by_name() {
        let config = HostConfig::default();
        assert_eq!(
            (config.refresh.lease_ttl_ms, config.refresh.max_wait_ms),
            (5_000, 15_000)
        );
        config.validate().unwrap();
        for (toml, key) in [
            ("[refresh]\nlease_ttl_ms = 10", "refresh.lease_ttl_ms"),
            ("[refresh]\nmax_wait_ms = 0", "refresh.max_wait_ms"),
        ] {
            let config: HostConfig = toml::from_str(toml).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(error.contains(key), "{error}");
        }
        let config: HostConfig =
            toml::from_str("[refresh]\nlease_ttl_ms = 1000\nmax_wait_ms = 2000").unwrap();
        assert_eq!(config.refresh.lease_ttl_ms, 1_000);
        assert!(toml::from_str::<HostConfig>("[refresh]\nttl = 1").is_err());
    }

    #[test]
    fn background_validation_is_daily_by_default_and_bounded_by_name() {
        let config = HostConfig::default();
        assert!(config.validation.enabled);
        assert_eq!(config.validation.interval_secs, 86_400);
        let config: HostConfig =
            toml::from_str("[validation]\nenabled = false\ninterval_secs = 3600").unwrap();
        assert!(!config.validation.enabled);
        config.validate().unwrap();
        let config: HostConfig = toml::from_str("[validation]\nmax_per_pass = 0").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("validation.max_per_pass"), "{error}");
        assert!(toml::from_str::<HostConfig>("[validation]\nevery = 1").is_err());
    }

    #[test]
    fn plaintext_to_a_remote_database_is_off_unless_set() {
        assert!(!HostConfig::default().database_allow_plaintext_remote);
        let config: HostConfig = toml::from_str(
            "database_url = \"postgres://db.example/x\"\ndatabase_allow_plaintext_remote = true",
        )
        .unwrap();
        assert!(config.database_allow_plaintext_remote);
    }

    #[test]
    fn https_is_required_and_host_secrets_are_for_the_client_secret_unless_set() {
        let config = HostConfig::default();
        assert!(config.network.require_https);
        let config: HostConfig = toml::from_str(
            "[network]\nrequire_https = false\n[secrets]\n\
             a = { env = \"CONNECTOR_HOST_TEST_PURPOSE\", connectors = [\"x\"] }\n\
             b = { env = \"CONNECTOR_HOST_TEST_PURPOSE\", connectors = [\"x\"], purposes = [\"request-header\", \"client-secret\"] }\n\
             c = { env = \"CONNECTOR_HOST_TEST_PURPOSE\", connectors = [\"x\"], purposes = [] }",
        )
        .unwrap();
        assert!(!config.network.require_https);
        assert_eq!(config.secrets["a"].purposes, [SecretPurpose::ClientSecret]);
        assert_eq!(
            config.secrets["b"].purposes,
            [SecretPurpose::RequestHeader, SecretPurpose::ClientSecret]
        );
        let error = config.secrets["c"].read("c").unwrap_err().to_string();
        assert!(error.contains("secrets.c.purposes"), "{error}");
        let error = toml::from_str::<HostConfig>(
            "[secrets]\nd = { env = \"V\", connectors = [\"x\"], purposes = [\"anything\"] }",
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("anything"), "{error}");
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let error = toml::from_str::<HostConfig>("listn = \"1.2.3.4:5\"").unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
        let config: HostConfig =
            toml::from_str("[limits]\ncall_timeout_ms = 5\n[connectors.x.config]\nregion = \"eu\"")
                .unwrap();
        assert_eq!(config.limits.call_timeout_ms, 5);
        assert_eq!(config.connectors["x"].config["region"], "eu");
        let config: HostConfig = toml::from_str(
            "[network]\nallow_private_networks = [\"127.0.0.1/32\"]\n[connectors.x]\nallowed_hosts = [\"https://a.example\"]\n[secrets]\nk = { env = \"CONNECTOR_HOST_TEST_SECRET_UNSET\", connectors = [\"x\"] }",
        )
        .unwrap();
        assert_eq!(config.network.allow_private_networks.len(), 1);
        config.validate().unwrap();
        let error = config.host_secrets().unwrap_err().to_string();
        assert!(
            error.contains("secret `k`") && error.contains("not set"),
            "{error}"
        );
    }

    #[test]
    fn the_otlp_endpoint_is_a_base_url_and_errors_name_the_key() {
        let config: HostConfig = toml::from_str("").unwrap();
        assert_eq!(config.telemetry.traces_url(), Ok(None), "off by default");
        for (endpoint, traces) in [
            ("http://127.0.0.1:4318", "http://127.0.0.1:4318/v1/traces"),
            ("https://otel.example/", "https://otel.example/v1/traces"),
            (
                "https://otel.example/base/",
                "https://otel.example/base/v1/traces",
            ),
        ] {
            let config: HostConfig =
                toml::from_str(&format!("[telemetry]\notlp_endpoint = \"{endpoint}\"")).unwrap();
            config.validate().unwrap();
            let url = config.telemetry.traces_url().unwrap().unwrap();
            assert_eq!(url.as_str(), traces);
        }
        for (endpoint, why) in [
            ("127.0.0.1:4318", "http"),
            ("ftp://otel.example", "http"),
            ("https://user:pw@otel.example", "OTEL_EXPORTER_OTLP_HEADERS"),
            ("https://otel.example/?key=1", "query"),
        ] {
            let config: HostConfig =
                toml::from_str(&format!("[telemetry]\notlp_endpoint = \"{endpoint}\"")).unwrap();
            let error = config.validate().unwrap_err().to_string();
            assert!(
                error.starts_with("telemetry.otlp_endpoint: ") && error.contains(why),
                "{endpoint}: {error}"
            );
        }
        let config: HostConfig = toml::from_str("[telemetry]\nservice_name = \" \"").unwrap();
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("telemetry.service_name"), "{error}");
    }
}
