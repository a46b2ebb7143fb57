//! The local host the authoring commands share: a runtime that may reach
//! `127.0.0.1`, host secrets from `CONNECTOR_SECRET_<NAME>` variables, a
//! one-connector plugins folder, and a SQLite file of test accounts encrypted
//! under a generated development key, all in the state folder
//! (`.connector-host/` next to the crate).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use secrecy::SecretString;

use super::build::{ConnectorCrate, build_crate};
use super::{AuthoringError, Progress};
use connector_abi::manifest::Manifest;
use connector_sandbox::capabilities::http::{
    AuditSink, HostSecret, Outbound, OutboundConfig, SecretPurpose, SystemResolver,
};
use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_server::config::ConnectorSettings;
use connector_server::flows::Flows;
use connector_server::registry::{CompileCache, LoadedConnector, Registry, inspect::inspect};
use connector_server::store::crypto::Keyring;
use connector_server::store::{ConnectionStore, Database, OAuthStateStore};

/// The platform account the local test account belongs to.
pub const TEST_ACCOUNT: &str = "local-test";
/// The platform user of the local test account.
pub const TEST_USER: &str = "author";
/// The state folder's name, next to the crate (or in the current folder for a
/// `.wasm` file).
pub const STATE_DIR: &str = ".connector-host";

/// The environment variable that holds host secret `name` for the authoring
/// commands: `CONNECTOR_SECRET_` + the name in upper case with every character
/// other than a letter or digit replaced by `_` (`acme-client-secret` →
/// `CONNECTOR_SECRET_ACME_CLIENT_SECRET`).
pub fn secret_env_var(name: &str) -> String {
    let suffix: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("CONNECTOR_SECRET_{suffix}")
}

/// What a command works on: a crate to build, or a built `.wasm` file.
#[derive(Debug, Clone)]
pub enum ConnectorSource {
    /// A connector crate (built before use).
    Crate(ConnectorCrate),
    /// A `.wasm` component.
    Wasm(PathBuf),
}

impl ConnectorSource {
    /// A `.wasm` file or a crate folder (`.` by default on the command line).
    pub fn resolve(path: &Path) -> Result<Self, AuthoringError> {
        if path.is_dir() {
            Ok(ConnectorSource::Crate(ConnectorCrate::open(path)?))
        } else if path.is_file() {
            Ok(ConnectorSource::Wasm(path.to_path_buf()))
        } else {
            Err(AuthoringError::Usage(format!(
                "{} is neither a connector crate folder nor a .wasm file",
                path.display()
            )))
        }
    }

    /// The state folder: `.connector-host/` in the crate, or in the current
    /// folder for a `.wasm` file.
    pub fn state_dir(&self) -> PathBuf {
        match self {
            ConnectorSource::Crate(krate) => krate.dir.join(STATE_DIR),
            ConnectorSource::Wasm(_) => PathBuf::from(STATE_DIR),
        }
    }

    /// The component: built (with progress on stderr) for a crate.
    pub fn wasm(&self, target_dir: Option<&Path>, quiet: bool) -> Result<PathBuf, AuthoringError> {
        match self {
            ConnectorSource::Wasm(path) => Ok(path.clone()),
            ConnectorSource::Crate(krate) => {
                let progress = if quiet {
                    Progress::hidden()
                } else {
                    Progress::start(format!("building {}", krate.package))
                };
                match build_crate(krate, target_dir, &progress) {
                    Ok(wasm) => {
                        progress.finish(format!("built {}", wasm.display()));
                        Ok(wasm)
                    }
                    Err(error) => {
                        progress.abandon();
                        Err(error.into())
                    }
                }
            }
        }
    }
}

/// Options shared by `dev`, `oauth2` and `call`.
#[derive(Debug, Clone, Default)]
pub struct LocalOptions {
    /// Operator config for the connector (`--set KEY=VALUE`), read by the
    /// connector through `config::get`.
    pub config: Vec<(String, String)>,
    /// Cargo target folder for the build (the crate's `target/` by default).
    pub target_dir: Option<PathBuf>,
    /// The state folder (default: `.connector-host/` next to the crate).
    pub state_dir: Option<PathBuf>,
}

/// Reads the manifest of a built component (no code runs).
pub(crate) fn read_manifest(wasm: &Path) -> Result<Manifest, AuthoringError> {
    let bytes = std::fs::read(wasm)
        .map_err(|e| AuthoringError::io(format!("reading {}", wasm.display()), e))?;
    inspect(&bytes)
        .map(|info| info.manifest)
        .map_err(|e| AuthoringError::Load {
            file: wasm.to_path_buf(),
            message: e.to_string(),
        })
}

/// The keyring of the state folder: `dev-master-keys`, generated on first use
/// (readable by its owner only). Development keys for test accounts only.
pub fn dev_keyring(state_dir: &Path) -> Result<Keyring, AuthoringError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let path = state_dir.join("dev-master-keys");
    std::fs::create_dir_all(state_dir)
        .map_err(|e| AuthoringError::io(format!("creating {}", state_dir.display()), e))?;
    if !path.exists() {
        let entry = Keyring::generate_entry("dev1");
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path);
        match created {
            Ok(mut file) => writeln!(file, "{entry}")
                .map_err(|e| AuthoringError::io(format!("writing {}", path.display()), e))?,
            // Another command created it meanwhile: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(AuthoringError::io(
                    format!("creating {}", path.display()),
                    e,
                ));
            }
        }
    }
    let spec = std::fs::read_to_string(&path)
        .map_err(|e| AuthoringError::io(format!("reading {}", path.display()), e))?;
    let spec = spec
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(",");
    Keyring::from_spec(&spec).map_err(|e| AuthoringError::Other(format!("{}: {e}", path.display())))
}

/// The compile cache of the state folder (`compile-cache/`, owner-only), so
/// that `call`, `oauth2` and `dev` compile an unchanged component once, not
/// per command: a JavaScript connector carries a whole JS engine, whose
/// compilation takes seconds. Disabled (the commands still work) when the
/// folder cannot be made private.
fn local_compile_cache(state_dir: &Path) -> CompileCache {
    use std::os::unix::fs::DirBuilderExt;
    let dir = state_dir.join("compile-cache");
    let created = std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir);
    match created {
        Ok(()) => CompileCache::checked(dir),
        Err(_) => CompileCache::disabled(),
    }
}

/// A local host serving one connector.
pub(crate) struct LocalHost {
    pub registry: Arc<Registry>,
    pub flows: Flows,
    pub connections: ConnectionStore,
    pub plugins_dir: PathBuf,
    pub database_file: PathBuf,
}

impl LocalHost {
    /// Sets up the runtime, database and registry for the connector of
    /// `manifest` in `state_dir`. Declared secrets come from their
    /// [`secret_env_var`], else `default_secret` (the test provider's client
    /// secret in `dev --provider`), else stay unset.
    pub async fn start(
        manifest: &Manifest,
        state_dir: &Path,
        options: &LocalOptions,
        default_secret: Option<&str>,
        audit: Arc<dyn AuditSink>,
        plugins: &str,
    ) -> Result<Self, AuthoringError> {
        let mut secrets = BTreeMap::new();
        for name in &manifest.secrets {
            let value = std::env::var(secret_env_var(name))
                .ok()
                .or(default_secret.map(str::to_string));
            if let Some(value) = value {
                // The author's own value: usable for every purpose here (a
                // production operator grants `request-header` explicitly).
                secrets.insert(
                    name.clone(),
                    HostSecret::new(SecretString::from(value), [manifest.id.clone()])
                        .for_purposes([SecretPurpose::ClientSecret, SecretPurpose::RequestHeader]),
                );
            }
        }
        // Local test providers speak plain http, like `serve --dev`'s.
        let network = OutboundConfig {
            allow_private_networks: vec!["127.0.0.1/32".parse().expect("valid range")],
            require_https: false,
            ..OutboundConfig::default()
        };
        let outbound = Outbound::new(network, Arc::new(SystemResolver), Arc::new(secrets), audit)?;
        let runtime = Arc::new(Runtime::with_outbound(
            RuntimeLimits {
                pooling: false,
                ..RuntimeLimits::default()
            },
            outbound,
        )?);
        let plugins_dir = state_dir.join(plugins);
        std::fs::create_dir_all(&plugins_dir)
            .map_err(|e| AuthoringError::io(format!("creating {}", plugins_dir.display()), e))?;
        let mut settings = BTreeMap::new();
        settings.insert(
            manifest.id.clone(),
            ConnectorSettings {
                config: options.config.iter().cloned().collect(),
                ..ConnectorSettings::default()
            },
        );
        let registry = Arc::new(Registry::new(
            runtime,
            &plugins_dir,
            local_compile_cache(state_dir),
            settings,
        ));
        let keyring = Arc::new(dev_keyring(state_dir)?);
        let database_file = state_dir.join("test-accounts.db");
        let url = format!("sqlite://{}?mode=rwc", database_file.display());
        let database = Database::connect(&url).await?;
        let connections = ConnectionStore::new(database.clone(), keyring.clone());
        let states = OAuthStateStore::new(database, keyring);
        let flows = Flows::new(registry.clone(), connections.clone(), states);
        Ok(Self {
            registry,
            flows,
            connections,
            plugins_dir,
            database_file,
        })
    }

    /// Copies `wasm` into the plugins folder (temporary name, then rename, as
    /// operators do) and loads it. Returns the loaded version, or why it did
    /// not load (the `check` rules).
    pub async fn install(&self, wasm: &Path) -> Result<Arc<LoadedConnector>, AuthoringError> {
        let name = wasm
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "connector.wasm".into());
        let temporary = self.plugins_dir.join(format!(".{name}.tmp"));
        let target = self.plugins_dir.join(&name);
        std::fs::copy(wasm, &temporary)
            .map_err(|e| AuthoringError::io(format!("copying {}", wasm.display()), e))?;
        std::fs::rename(&temporary, &target)
            .map_err(|e| AuthoringError::io(format!("installing {}", target.display()), e))?;
        let summary = self.registry.sync().await;
        if let Some((file, reason)) = summary.failed.into_iter().next() {
            return Err(AuthoringError::Load {
                file: PathBuf::from(file),
                message: reason,
            });
        }
        self.registry
            .snapshot()
            .connectors
            .values()
            .find(|c| c.file == target)
            .cloned()
            .ok_or_else(|| AuthoringError::Load {
                file: target.clone(),
                message: "the file was not loaded".into(),
            })
    }
}
