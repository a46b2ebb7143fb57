//! The set of live connectors, loaded from a plugins folder and kept in sync with
//! it while serving.
//!
//! Readers take an `Arc` of the current snapshot (lock-free), so a call in flight
//! keeps the version it started with even if the file is replaced meanwhile. A
//! file that fails to load is logged and remembered; the version previously
//! loaded from that file keeps serving.
//!
//! Two layers make the snapshot: the folder's connectors and the versions
//! published to the database ([`published`]); a published live version wins
//! over a folder file with the same connector id.

mod cache;
pub mod distribution;
mod folder;
pub mod inspect;
mod loader;
mod placements;
pub mod published;
mod report;
pub mod signature;
mod watcher;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use arc_swap::ArcSwap;

pub use cache::CompileCache;
pub use loader::{LoadError, LoadedConnector, Source, load, load_file};
pub use placements::{CredentialPlacement, credential_placements};
pub use published::{PublishingSettings, ReconcileSummary};
pub use report::{AuthPage, InspectReport};
pub use watcher::WatchHandle;

use crate::config::ConnectorSettings;
use crate::store::Database;
use connector_sandbox::runtime::{ConnectorRef, Runtime};

/// The live connectors and the latest load error of each failing file.
#[derive(Default)]
pub struct Snapshot {
    /// Loaded connectors by id.
    pub connectors: BTreeMap<String, Arc<LoadedConnector>>,
    /// File name → why its current contents could not be loaded.
    pub errors: BTreeMap<String, String>,
}

/// What one synchronisation with the folder changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SyncSummary {
    /// Connector versions loaded (new or replaced).
    pub loaded: Vec<ConnectorRef>,
    /// Connector ids removed because their file went away.
    pub removed: Vec<String>,
    /// Files that failed to load, with the reason.
    pub failed: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
struct FileRecord {
    len: u64,
    modified: Option<SystemTime>,
    sha256: String,
    /// The connector id this file currently provides, if it loaded.
    id: Option<String>,
    /// The id another file held when this one was rejected for it: retried
    /// when that id becomes free, even if this file did not change.
    conflict: Option<String>,
}

/// Live connectors loaded from one folder.
pub struct Registry {
    runtime: Arc<Runtime>,
    cache: CompileCache,
    dir: PathBuf,
    config: BTreeMap<String, ConnectorSettings>,
    database: Option<Database>,
    /// What readers see: the folder layer under the published layer.
    snapshot: ArcSwap<Snapshot>,
    /// The connectors of the plugins folder (and its files' errors).
    folder: ArcSwap<Snapshot>,
    /// The live published versions (and why one could not load).
    published: ArcSwap<Snapshot>,
    /// Serialises rebuilding `snapshot` from the two layers.
    composing: std::sync::Mutex<()>,
    /// Serialises reconciliations with the database.
    reconciling: tokio::sync::Mutex<()>,
    publishing: PublishingSettings,
    trusted: signature::TrustedKeys,
    files: tokio::sync::Mutex<BTreeMap<PathBuf, FileRecord>>,
}

impl Registry {
    /// A registry over `dir`. Nothing is loaded until [`Registry::sync`].
    pub fn new(
        runtime: Arc<Runtime>,
        dir: impl Into<PathBuf>,
        cache: CompileCache,
        config: BTreeMap<String, ConnectorSettings>,
    ) -> Self {
        Self {
            runtime,
            cache,
            dir: dir.into(),
            config,
            database: None,
            snapshot: ArcSwap::from_pointee(Snapshot::default()),
            folder: ArcSwap::from_pointee(Snapshot::default()),
            published: ArcSwap::from_pointee(Snapshot::default()),
            composing: std::sync::Mutex::new(()),
            reconciling: tokio::sync::Mutex::new(()),
            publishing: PublishingSettings::default(),
            trusted: Default::default(),
            files: Default::default(),
        }
    }

    /// Records every loaded version (id, version, sha256) in `database`.
    pub fn with_database(mut self, database: Database) -> Self {
        self.database = Some(database);
        self
    }

    /// The folder watched.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The runtime connectors run in.
    pub fn runtime(&self) -> &Arc<Runtime> {
        &self.runtime
    }

    /// The current version of a connector.
    pub fn get(&self, id: &str) -> Option<Arc<LoadedConnector>> {
        self.snapshot.load().connectors.get(id).cloned()
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.load_full()
    }

    /// Brings the live set in line with the folder: loads new and changed
    /// `*.wasm` files, drops connectors whose file is gone.
    pub async fn sync(&self) -> SyncSummary {
        let mut files = self.files.lock().await;
        let mut summary = SyncSummary::default();
        let current = self.folder.load_full();
        let mut connectors = current.connectors.clone();
        let mut errors = current.errors.clone();

        let listed = folder::PluginsFolder::open(&self.dir).and_then(|folder| {
            let listing = folder.list()?;
            Ok((folder, listing))
        });
        let (folder, present, escaping) = match listed {
            Ok((folder, listing)) => (folder, listing.files, listing.escaping),
            Err(error) => {
                tracing::error!(dir = %self.dir.display(), %error, "cannot read the plugins folder");
                return summary;
            }
        };

        // Files that went away take their connector with them.
        let gone: Vec<PathBuf> = files
            .keys()
            .filter(|p| !present.contains_key(*p))
            .cloned()
            .collect();
        for path in gone {
            let record = files.remove(&path).expect("listed above");
            errors.remove(&file_name(&path));
            if let Some(id) = record.id {
                connectors.remove(&id);
                tracing::info!(connector = %id, file = %path.display(), "connector removed");
                summary.removed.push(id);
            }
        }

        record_escaping_links(&escaping, &mut errors);

        for (path, (len, modified)) in present {
            let name = file_name(&path);
            let previous = files.get(&path).cloned();
            if let Some(record) = &previous {
                let id_freed = record.conflict.as_ref().is_some_and(|id| {
                    !files
                        .iter()
                        .any(|(p, r)| *p != path && r.id.as_deref() == Some(id.as_str()))
                });
                if record.len == len && record.modified == modified && !id_freed {
                    continue;
                }
            }
            let bytes = match folder.read(&path) {
                Ok(bytes) => bytes,
                Err(error) => {
                    // Vanished or unreadable between listing and reading: next sync.
                    tracing::warn!(file = %path.display(), %error, "cannot read connector file");
                    continue;
                }
            };
            let sha256 = inspect::sha256_hex(&bytes);
            if previous
                .as_ref()
                .is_some_and(|r| r.sha256 == sha256 && r.conflict.is_none())
            {
                files.get_mut(&path).expect("present").modified = modified;
                continue;
            }
            let previous_id = previous.as_ref().and_then(|r| r.id.clone());
            let outcome = load(
                &self.runtime,
                &self.cache,
                bytes,
                path.clone(),
                &self.config,
            )
            .await;
            let mut conflict = None;
            let outcome = outcome.map_err(|e| e.to_string()).and_then(|loaded| {
                let id = loaded.info.manifest.id.clone();
                let owner = files
                    .iter()
                    .find(|(p, r)| **p != path && r.id.as_deref() == Some(&id));
                match owner {
                    Some((other, _)) => {
                        let message = format!(
                            "connector id `{id}` is already provided by {}",
                            file_name(other)
                        );
                        conflict = Some(id);
                        Err(message)
                    }
                    None => Ok(loaded),
                }
            });
            match outcome {
                Ok(loaded) => {
                    let loaded = Arc::new(loaded);
                    let connector = loaded.connector().clone();
                    if let Some(old) = previous_id.filter(|old| *old != connector.id) {
                        connectors.remove(&old);
                    }
                    tracing::info!(
                        connector = %connector, sha256 = %loaded.info.sha256, file = %path.display(),
                        cached = loaded.from_cache, "connector loaded"
                    );
                    if let Some(database) = &self.database
                        && let Err(error) =
                            database.record_connector_version(&loaded.info, &name).await
                    {
                        tracing::error!(%error, "cannot record the loaded connector version");
                    }
                    connectors.insert(connector.id.clone(), loaded);
                    errors.remove(&name);
                    files.insert(
                        path,
                        FileRecord {
                            len,
                            modified,
                            sha256,
                            id: Some(connector.id.clone()),
                            conflict: None,
                        },
                    );
                    summary.loaded.push(connector);
                }
                Err(error) => {
                    tracing::error!(
                        file = %path.display(), %error,
                        "connector file rejected; the previously loaded version (if any) keeps serving"
                    );
                    errors.insert(name.clone(), error.clone());
                    files.insert(
                        path,
                        FileRecord {
                            len,
                            modified,
                            sha256,
                            id: previous_id,
                            conflict,
                        },
                    );
                    summary.failed.push((name, error));
                }
            }
        }

        self.folder.store(Arc::new(Snapshot { connectors, errors }));
        self.compose();
        summary
    }

    /// Rebuilds what readers see from the two layers: the folder's
    /// connectors, replaced by the published live version of the same id.
    fn compose(&self) {
        let _one_at_a_time = self.composing.lock().unwrap_or_else(|e| e.into_inner());
        let folder = self.folder.load();
        let published = self.published.load();
        let mut connectors = folder.connectors.clone();
        let mut errors = folder.errors.clone();
        connectors.extend(
            published
                .connectors
                .iter()
                .map(|(id, c)| (id.clone(), c.clone())),
        );
        errors.extend(published.errors.clone());
        self.snapshot
            .store(Arc::new(Snapshot { connectors, errors }));
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// The error of a `*.wasm` entry that is a link leading out of the plugins
/// folder (its target is never read).
const LINK_OUT: &str = "a link that leads out of the plugins folder: not read";

/// Records each link out of the folder as its file's error (logged when it
/// first appears) and forgets those no longer there.
fn record_escaping_links(escaping: &[String], errors: &mut BTreeMap<String, String>) {
    errors.retain(|name, error| error != LINK_OUT || escaping.contains(name));
    for name in escaping {
        if errors.insert(name.clone(), LINK_OUT.to_string()).as_deref() != Some(LINK_OUT) {
            tracing::error!(
                file = %name,
                "connector file rejected: it is a link that leads out of the plugins folder"
            );
        }
    }
}
