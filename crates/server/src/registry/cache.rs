//! On-disk cache of compiled components, keyed by the file's sha256 and the
//! engine's compatibility fingerprint, so a restart with many connectors does not
//! recompile them.
//!
//! Loading cached code trusts the cache directory: it must be writable only by
//! the host (see docs/SECURITY.md). Entries are written to a temporary file and
//! renamed, so a crash never leaves a half-written entry under its final name,
//! and never rewritten in place.
//!
//! An entry is mapped, not read ([`Component::deserialize_file`]): the compiled
//! code and the linear-memory image (for a JavaScript connector, the whole
//! engine and its pre-initialised heap) are file-backed pages, resident only
//! once touched and shared with every other loader of the same entry, instead
//! of a private copy per loaded connector. A freshly compiled component is
//! written, then mapped back for the same reason.
//!
//! Compiling happens once per entry: the compiler holds a lock file beside the
//! entry, and a process or thread loading the same component meanwhile waits
//! for it and maps the entry it wrote (hosts, `dev`, and the tests of one run
//! share a cache this way).

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
        if let Some(component) = map_entry(runtime, dir, &name) {
            return Ok((component, true));
        }
        // Another loader may be compiling it: wait for its lock, then look
        // again before compiling.
        let _lock = match lock_entry(dir, &name) {
            Ok(lock) => Some(lock),
            Err(error) => {
                tracing::warn!(entry = %dir.join(&name).display(), %error, "could not lock compile-cache entry; compiling without the lock");
                None
            }
        };
        if let Some(component) = map_entry(runtime, dir, &name) {
            return Ok((component, true));
        }
        let component = runtime.compile(bytes)?;
        if let Err(error) = write_entry(dir, &name, &component.serialize()?) {
            tracing::warn!(entry = %dir.join(&name).display(), %error, "could not write compile-cache entry");
            return Ok((component, false));
        }
        // The compiled copy is private memory; the written entry maps shared.
        Ok((map_entry(runtime, dir, &name).unwrap_or(component), false))
    }
}

/// Maps the entry `name` of `dir` if it is there and usable; an unusable
/// entry (another engine's, truncated, a link leading out) is removed.
fn map_entry(runtime: &Runtime, dir: &Path, name: &str) -> Option<Component> {
    let folder = open_folder(dir)?;
    // Opened through the folder: a link leading out of it is refused here.
    let file = match folder.open(name) {
        Ok(file) => file.into_std(),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return None,
        Err(error) => {
            tracing::warn!(entry = %dir.join(name).display(), %error, "discarding unreadable compile-cache entry");
            let _ = folder.remove_file(name);
            return None;
        }
    };
    // SAFETY: the entry was written by `Component::serialize` of this host
    // for an engine with the same fingerprint, into a directory only the host
    // may write (an operator requirement, documented), through a temporary
    // file renamed into place (so never modified while mapped), and it is
    // the file opened inside that directory (no link out of it).
    #[allow(unsafe_code)]
    let mapped =
        unsafe { Component::deserialize_file(runtime.engine(), opened_path(&file, dir, name)) };
    match mapped {
        Ok(component) => Some(component),
        Err(error) => {
            tracing::warn!(entry = %dir.join(name).display(), error = %format!("{error:#}"), "discarding unusable compile-cache entry");
            let _ = folder.remove_file(name);
            None
        }
    }
}

/// A path that names exactly the file already opened: on Linux its
/// `/proc/self/fd` link (no second lookup of the name, so no race with a
/// swapped entry), elsewhere the entry's path.
fn opened_path(file: &std::fs::File, dir: &Path, name: &str) -> PathBuf {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd_path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
        if fd_path.exists() {
            return fd_path;
        }
    }
    let _ = file;
    dir.join(name)
}

/// Takes the exclusive lock of entry `name` (a `.<name>.lock` file beside
/// it), waiting while another loader compiles it. Released when dropped.
fn lock_entry(dir: &Path, name: &str) -> std::io::Result<std::fs::File> {
    std::fs::create_dir_all(dir)?;
    let folder = Dir::open_ambient_dir(dir, ambient_authority())?;
    let mut options = cap_std::fs::OpenOptions::new();
    options.create(true).write(true);
    let file = folder
        .open_with(format!(".{name}.lock"), &options)?
        .into_std();
    file.lock()?;
    Ok(file)
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
