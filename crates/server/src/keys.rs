//! Where the host's master keys come from: `CONNECTOR_HOST_MASTER_KEYS`, a
//! keys file, or, with `--dev` only, a file generated on first use (and said so
//! loudly). Without one the host does not start.

use std::path::{Path, PathBuf};

use crate::store::crypto::Keyring;

/// The environment variable holding `id:base64key[,id:base64key…]`.
pub const MASTER_KEYS_ENV: &str = "CONNECTOR_HOST_MASTER_KEYS";
/// Where `--dev` keeps its generated key.
pub const DEV_KEYS_FILE: &str = ".connector-host/dev-master-keys";

/// Loads the keyring: an explicit `file` wins, then the environment variable,
/// then (only when `dev`) a generated development key file.
pub fn load_keyring(file: Option<&Path>, dev: bool) -> anyhow::Result<Keyring> {
    if let Some(file) = file {
        return read_keys_file(file);
    }
    if let Ok(spec) = std::env::var(MASTER_KEYS_ENV) {
        return Keyring::from_spec(&spec).map_err(|e| anyhow::anyhow!("{MASTER_KEYS_ENV}: {e}"));
    }
    if dev {
        let path = PathBuf::from(DEV_KEYS_FILE);
        if !path.exists() {
            write_private(&path, &Keyring::generate_entry("dev1"))?;
            tracing::warn!(
                file = %path.display(),
                "generated a DEVELOPMENT master key; never use --dev keys in production"
            );
        }
        return read_keys_file(&path);
    }
    anyhow::bail!(
        "no master key: set {MASTER_KEYS_ENV} (create one with `connector-host keys generate`), \
         pass --master-keys-file, or use --dev for a generated development key"
    )
}

fn read_keys_file(path: &Path) -> anyhow::Result<Keyring> {
    let spec = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read master keys file {}: {e}", path.display()))?;
    let spec = spec
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join(",");
    Keyring::from_spec(&spec)
        .map_err(|e| anyhow::anyhow!("master keys file {}: {e}", path.display()))
}

/// Writes a file readable only by its owner.
fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    writeln!(file, "{content}")?;
    Ok(())
}
