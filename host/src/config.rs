//! The host's configuration file (TOML). Every setting has a working default;
//! command-line flags override the file.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! plugins_dir = "plugins"
//! database_url = "sqlite://connector-host.db?mode=rwc"
//! cache_dir = ".connector-host/cache"
//!
//! [limits]
//! call_timeout_ms = 10000
//! memory_bytes = 67108864
//!
//! [connectors.regional-crm.config]
//! default-hostname = "eu.regional-crm.example"
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::runtime::RuntimeLimits;

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
    /// Compile cache folder (only the host may write it).
    pub cache_dir: Option<PathBuf>,
    /// Sandbox limits.
    pub limits: RuntimeLimits,
    /// Per-connector settings by connector id.
    pub connectors: BTreeMap<String, ConnectorSettings>,
}

/// Operator settings for one connector.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConnectorSettings {
    /// Non-secret values the connector reads through `config`.
    pub config: BTreeMap<String, String>,
}

impl HostConfig {
    /// Reads a config file; errors name the file and the offending key.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("invalid config file {}: {e}", path.display()))
    }

    /// The non-secret config of every connector, by id.
    pub fn connector_config(&self) -> BTreeMap<String, BTreeMap<String, String>> {
        self.connectors
            .iter()
            .map(|(id, s)| (id.clone(), s.config.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_rejected_with_their_name() {
        let error = toml::from_str::<HostConfig>("listn = \"1.2.3.4:5\"").unwrap_err();
        assert!(error.to_string().contains("listn"), "{error}");
        let config: HostConfig =
            toml::from_str("[limits]\ncall_timeout_ms = 5\n[connectors.x.config]\nregion = \"eu\"")
                .unwrap();
        assert_eq!(config.limits.call_timeout_ms, 5);
        assert_eq!(config.connector_config()["x"]["region"], "eu");
    }
}
