//! Loading one connector file: inspect → compile (cached) → link → check the
//! `auth-type` hook against the manifest.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use super::cache::CompileCache;
use super::inspect::{ComponentInfo, InspectError, inspect};
use crate::config::ConnectorSettings;
use connector_abi::manifest::{AllowedOrigin, AuthKind};
use connector_sandbox::capabilities::http::ConnectorPolicy;
use connector_sandbox::runtime::{CallContext, CallError, ConnectorRef, Prepared, Runtime};
use connector_sandbox::wit::AuthType;

/// A connector version that passed every check and is ready to call.
pub struct LoadedConnector {
    /// What the file is (manifest, hooks, hash, imports).
    pub info: ComponentInfo,
    /// The linked component.
    pub prepared: Prepared,
    /// The file it came from.
    pub file: PathBuf,
    /// True when compiled code came from the on-disk cache.
    pub from_cache: bool,
    /// Where it came from: the plugins folder or the database.
    pub source: Source,
    /// Unix seconds of the load (since when this replica serves it).
    pub loaded_at: i64,
}

/// Where a loaded connector came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum Source {
    /// A file of this replica's plugins folder.
    Folder,
    /// A version published to the database (`connector-host publish`).
    Published,
}

impl Source {
    /// `folder` or `published`.
    pub fn name(self) -> &'static str {
        match self {
            Source::Folder => "folder",
            Source::Published => "published",
        }
    }
}

impl LoadedConnector {
    /// The connector's id and version.
    pub fn connector(&self) -> &ConnectorRef {
        self.prepared.connector()
    }
}

/// Why a file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Static checks failed (world, manifest, hooks).
    #[error(transparent)]
    Inspect(#[from] InspectError),
    /// Cranelift could not compile it.
    #[error("cannot compile the component: {0}")]
    Compile(String),
    /// It imports something the host does not provide.
    #[error("cannot link the component: {0}")]
    Link(String),
    /// The `auth-type` hook disagrees with the manifest.
    #[error(
        "the manifest's auth.type is `{manifest}` but the auth-type hook returns `{component}`"
    )]
    AuthTypeMismatch {
        /// From the manifest.
        manifest: AuthKind,
        /// From the hook.
        component: AuthKind,
    },
    /// The outbound policy could not be built.
    #[error("invalid allowed hosts: {0}")]
    Policy(String),
    /// Calling `auth-type` failed.
    #[error("the auth-type hook failed: {0}")]
    AuthTypeCall(#[from] CallError),
}

/// Loads a connector from bytes. `config` is the operator's non-secret config
/// for connectors, by id.
pub async fn load(
    runtime: &Arc<Runtime>,
    cache: &CompileCache,
    bytes: Vec<u8>,
    file: PathBuf,
    settings: &BTreeMap<String, ConnectorSettings>,
) -> Result<LoadedConnector, LoadError> {
    let info = inspect(&bytes)?;
    let (component, from_cache) = {
        let runtime = runtime.clone();
        let cache = cache.clone();
        let sha256 = info.sha256.clone();
        tokio::task::spawn_blocking(move || cache.load_or_compile(&runtime, &sha256, &bytes))
            .await
            .map_err(|e| LoadError::Compile(e.to_string()))?
            .map_err(|e| LoadError::Compile(format!("{e:#}")))?
    };
    let pre = runtime
        .link(&component)
        .map_err(|e| LoadError::Link(format!("{e:#}")))?;
    let connector = ConnectorRef {
        id: info.manifest.id.clone(),
        version: info.manifest.version.clone(),
    };
    let settings = settings.get(&info.manifest.id).cloned().unwrap_or_default();
    let policy = connector_policy(&info, &settings)?;
    let prepared = Prepared::new(
        runtime.clone(),
        connector,
        pre,
        info.hooks.clone(),
        settings.config,
        policy,
    )
    .with_slots(settings.max_concurrent_calls)
    .with_memory_cap(settings.memory_bytes);

    let loading = CallContext {
        deny_outbound: true,
        ..CallContext::default()
    };
    let declared = prepared.auth_type(&loading).await.result?;
    let declared = match declared {
        AuthType::Oauth => AuthKind::OAuth,
        AuthType::ApiKey => AuthKind::ApiKey,
    };
    if declared != info.manifest.auth.kind {
        return Err(LoadError::AuthTypeMismatch {
            manifest: info.manifest.auth.kind,
            component: declared,
        });
    }
    Ok(LoadedConnector {
        info,
        prepared,
        file,
        from_cache,
        source: Source::Folder,
        loaded_at: crate::store::unix_seconds(),
    })
}

/// The connector's outbound policy: manifest origins, narrowed by the operator.
fn connector_policy(
    info: &ComponentInfo,
    settings: &ConnectorSettings,
) -> Result<ConnectorPolicy, LoadError> {
    let parse = |origins: &[String]| -> Result<Vec<AllowedOrigin>, String> {
        origins.iter().map(|o| AllowedOrigin::parse(o)).collect()
    };
    let manifest_origins = parse(&info.manifest.allowed_hosts).map_err(LoadError::Policy)?;
    let operator_origins = match &settings.allowed_hosts {
        Some(origins) => Some(
            parse(origins)
                .map_err(|e| LoadError::Policy(format!("operator allowed_hosts: {e}")))?,
        ),
        None => None,
    };
    Ok(ConnectorPolicy {
        manifest_origins,
        operator_origins,
        declared_secrets: info.manifest.secrets.iter().cloned().collect(),
        allow_query_credential: settings.allow_query_credential,
    })
}

/// Reads and loads a file.
pub async fn load_file(
    runtime: &Arc<Runtime>,
    cache: &CompileCache,
    path: &std::path::Path,
    settings: &BTreeMap<String, ConnectorSettings>,
) -> Result<LoadedConnector, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    load(runtime, cache, bytes, path.to_path_buf(), settings).await
}
