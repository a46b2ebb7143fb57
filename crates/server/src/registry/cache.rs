//! On-disk cache of compiled components, keyed by the file's sha256 and the
//! engine's compatibility fingerprint, so a restart with many connectors does not
//! recompile them.
//!
//! Loading cached code trusts the cache directory: it must be writable only by
//! the host (see docs/SECURITY.md). Entries are written to a temporary file and
//! renamed, so a crash never leaves a half-written entry under its final name.

use std::path::{Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::Dir;

use wasmtime::component::Component;

use connector_sandbox::runtime::Runtime;

/// Where compiled code is cached; `None` disables the cache.
#[derive(Debug, Clone, Default)]
pub struct CompileCache {
    dir: Option<PathBuf>,
}

impl CompileCache {
    /// A cache in `dir` (created on first write).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: Some(dir.into()),
        }
    }

    /// A cache in `dir`, or no cache (with an error log) when `dir` exists and
    /// its group or others may write it: cached code is loaded without
    /// re-verification, so such a folder would be a code-injection path.
    pub fn checked(dir: impl Into<PathBuf>) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = dir.into();
        if let Ok(metadata) = std::fs::metadata(&dir)
            && metadata.permissions().mode() & 0o022 != 0
        {
            tracing::error!(
                dir = %dir.display(),
                "compile cache disabled: the folder is writable by group or others (chmod go-w it)"
            );
            return Self::disabled();
        }
        Self::new(dir)
    }

    /// No caching: every load compiles.
    pub fn disabled() -> Self {
        Self { dir: None }
    }

    /// Where the cache entry for a component with this hash lives (`None`
    /// without a cache).
    pub fn entry(&self, runtime: &Runtime, sha256: &str) -> Option<PathBuf> {
        Some(self.dir.as_ref()?.join(Self::entry_name(runtime, sha256)))
    }

    /// The file name of the cache entry for a component with this hash.
    fn entry_name(runtime: &Runtime, sha256: &str) -> String {
        format!("{sha256}-{}.cwasm", runtime.engine_fingerprint())
    }

    /// Returns the compiled component and whether it came from the cache.
    /// The cache folder is opened as a `cap-std` directory: an entry that is
    /// a link leading out of it is never read (it is discarded and replaced).
    pub fn load_or_compile(
        &self,
        runtime: &Runtime,
        sha256: &str,
        bytes: &[u8],
    ) -> anyhow::Result<(Component, bool)> {
        let Some(dir) = &self.dir else {
            return Ok((runtime.compile(bytes)?, false));
        };
        let name = Self::entry_name(runtime, sha256);
        let folder = open_folder(dir);
        if let Some(cached) = folder.as_ref().and_then(|f| f.read(&name).ok()) {
            // SAFETY: the entry was written by `Component::serialize` of this
            // host for an engine with the same fingerprint, into a directory
            // only the host may write (an operator requirement, documented),
            // and read from inside that directory (no link out of it).
            #[allow(unsafe_code)]
            let deserialized = unsafe { Component::deserialize(runtime.engine(), &cached) };
            match deserialized {
                Ok(component) => return Ok((component, true)),
                Err(error) => {
                    tracing::warn!(entry = %dir.join(&name).display(), %error, "discarding unusable compile-cache entry");
                    if let Some(folder) = &folder {
                        let _ = folder.remove_file(&name);
                    }
                }
            }
        }
        let component = runtime.compile(bytes)?;
        if let Err(error) = write_entry(dir, &name, &component.serialize()?) {
            tracing::warn!(entry = %dir.join(&name).display(), %error, "could not write compile-cache entry");
        }
        Ok((component, false))
    }
}

/// The cache folder as a `cap-std` directory, if it exists.
fn open_folder(dir: &Path) -> Option<Dir> {
    Dir::open_ambient_dir(dir, ambient_authority()).ok()
}

/// Writes an entry through a temporary file renamed into place, inside the
/// folder (created first if needed); a link under the entry's name is
/// replaced, never written through.
fn write_entry(dir: &Path, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let folder = Dir::open_ambient_dir(dir, ambient_authority())?;
    let temp = format!(".{name}.tmp-{}", std::process::id());
    folder.write(&temp, bytes)?;
    folder.rename(&temp, &folder, name)
}
