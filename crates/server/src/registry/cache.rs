//! On-disk cache of compiled components, keyed by the file's sha256 and the
//! engine's compatibility fingerprint, so a restart with many connectors does not
//! recompile them.
//!
//! Loading cached code trusts the cache directory: it must be writable only by
//! the host (see docs/SECURITY.md). Entries are written to a temporary file and
//! renamed, so a crash never leaves a half-written entry under its final name.

use std::path::{Path, PathBuf};

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

    /// The cache entry for a component with this hash.
    pub fn entry(&self, runtime: &Runtime, sha256: &str) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        Some(dir.join(format!("{sha256}-{}.cwasm", runtime.engine_fingerprint())))
    }

    /// Returns the compiled component and whether it came from the cache.
    pub fn load_or_compile(
        &self,
        runtime: &Runtime,
        sha256: &str,
        bytes: &[u8],
    ) -> anyhow::Result<(Component, bool)> {
        let Some(entry) = self.entry(runtime, sha256) else {
            return Ok((runtime.compile(bytes)?, false));
        };
        if entry.exists() {
            // SAFETY: the entry was written by `Component::serialize` of this
            // host for an engine with the same fingerprint, into a directory
            // only the host may write (an operator requirement, documented).
            #[allow(unsafe_code)]
            let deserialized = unsafe { Component::deserialize_file(runtime.engine(), &entry) };
            match deserialized {
                Ok(component) => return Ok((component, true)),
                Err(error) => {
                    tracing::warn!(entry = %entry.display(), %error, "discarding unusable compile-cache entry");
                    let _ = std::fs::remove_file(&entry);
                }
            }
        }
        let component = runtime.compile(bytes)?;
        if let Err(error) = write_entry(&entry, &component.serialize()?) {
            tracing::warn!(entry = %entry.display(), %error, "could not write compile-cache entry");
        }
        Ok((component, false))
    }
}

fn write_entry(entry: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = entry.parent().expect("cache entries live in a directory");
    std::fs::create_dir_all(dir)?;
    let temp = dir.join(format!(
        ".{}.tmp-{}",
        entry.file_name().unwrap().to_string_lossy(),
        std::process::id()
    ));
    std::fs::write(&temp, bytes)?;
    std::fs::rename(&temp, entry)
}
