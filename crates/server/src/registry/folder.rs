//! The plugins folder, opened as a `cap-std` directory: a connector file is
//! named by its file name inside the folder, and neither `..` nor a symbolic
//! link can lead a read out of it. A link to another file *in* the folder
//! works; one that leads elsewhere (`/opt/release/x.wasm`, `../x.wasm`) is
//! refused and reported, never read.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use cap_std::ambient_authority;
use cap_std::fs::Dir;

/// A `*.wasm` file's size and modification time, to notice changes.
pub(crate) type Stamp = (u64, Option<SystemTime>);

/// What one listing of the folder found.
#[derive(Debug, Default)]
pub(crate) struct Listing {
    /// `*.wasm` files (any case, not hidden), by path, with their stamps.
    pub(crate) files: BTreeMap<PathBuf, Stamp>,
    /// Names of `*.wasm` entries that are links leading out of the folder.
    pub(crate) escaping: Vec<String>,
}

/// The plugins folder.
pub(crate) struct PluginsFolder {
    path: PathBuf,
    dir: Dir,
}

impl PluginsFolder {
    /// Opens the folder at `path` (the one use of ambient authority).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(Self {
            path: path.to_path_buf(),
            dir: Dir::open_ambient_dir(path, ambient_authority())?,
        })
    }

    /// `*.wasm` files (any case) directly in the folder. Hidden files are
    /// ignored, so that `.name.wasm.partial`-style copies in progress never
    /// load; links are followed only while they stay inside the folder.
    pub(crate) fn list(&self) -> io::Result<Listing> {
        let mut listing = Listing::default();
        for entry in self.dir.entries()? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let is_wasm = Path::new(&name)
                .extension()
                .is_some_and(|ext| ext.eq_ignore_ascii_case("wasm"));
            if name.starts_with('.') || !is_wasm {
                continue;
            }
            // Follows a link, within the folder only.
            let metadata = match self.dir.metadata(&name) {
                Ok(metadata) => metadata,
                Err(_) if self.leads_out(&name) => {
                    listing.escaping.push(name);
                    continue;
                }
                Err(_) => continue, // vanished, or a dangling link
            };
            if metadata.is_file() {
                let modified = metadata.modified().ok().map(|t| t.into_std());
                listing
                    .files
                    .insert(self.path.join(&name), (metadata.len(), modified));
            }
        }
        Ok(listing)
    }

    /// The bytes of a file listed by [`PluginsFolder::list`].
    pub(crate) fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        let name = path
            .file_name()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
        self.dir.read(name)
    }

    /// Whether `name` is a link (its own metadata says so) whose target
    /// could not be reached from inside the folder.
    fn leads_out(&self, name: &str) -> bool {
        self.dir
            .symlink_metadata(name)
            .is_ok_and(|m| m.file_type().is_symlink())
            && std::fs::metadata(self.path.join(name)).is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_out_of_the_folder_are_refused_and_links_inside_it_followed() {
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("elsewhere.wasm"), b"outside").unwrap();
        let folder = tempfile::tempdir().unwrap();
        let plugins = folder.path().join("plugins");
        std::fs::create_dir(&plugins).unwrap();
        std::fs::write(plugins.join("real.wasm"), b"inside").unwrap();
        std::fs::write(folder.path().join("parent.wasm"), b"parent").unwrap();
        let link = |target: &Path, name: &str| {
            std::os::unix::fs::symlink(target, plugins.join(name)).unwrap()
        };
        link(&outside.path().join("elsewhere.wasm"), "absolute.wasm");
        link(Path::new("../parent.wasm"), "dotdot.wasm");
        link(Path::new("real.wasm"), "alias.wasm");
        link(Path::new("missing.wasm"), "dangling.wasm");
        std::fs::write(plugins.join(".hidden.wasm"), b"hidden").unwrap();

        let folder = PluginsFolder::open(&plugins).unwrap();
        let listing = folder.list().unwrap();
        let names: Vec<String> = listing
            .files
            .keys()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["alias.wasm", "real.wasm"]);
        let mut escaping = listing.escaping.clone();
        escaping.sort();
        assert_eq!(escaping, ["absolute.wasm", "dotdot.wasm"]);
        assert_eq!(folder.read(&plugins.join("alias.wasm")).unwrap(), b"inside");
        assert!(folder.read(&plugins.join("absolute.wasm")).is_err());
        assert!(folder.read(&plugins.join("dotdot.wasm")).is_err());
        assert!(folder.read(Path::new("../parent.wasm")).is_err());
    }
}
