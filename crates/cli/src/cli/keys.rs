//! `connector-host keys`: generate a master key entry, or re-encrypt every
//! stored secret under the current key.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Subcommand;

use connector_server::config;
use connector_server::keys::load_keyring;
use connector_server::store::crypto::Keyring;
use connector_server::store::{ConnectionStore, PlaintextRemote};

use crate::open_database;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Print a new random key entry `id:base64key` for CONNECTOR_HOST_MASTER_KEYS.
    Generate {
        /// The key id [default: k<unix time>].
        #[arg(long)]
        id: Option<String>,
    },
    /// Re-encrypt every stored secret under the first (current) key. Old keys
    /// must still be in the keyring; remove them afterwards.
    Rotate {
        /// Database URL [default: sqlite://connector-host.db?mode=rwc].
        #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
        database_url: Option<String>,
        /// Master keys file (else CONNECTOR_HOST_MASTER_KEYS).
        #[arg(long)]
        master_keys_file: Option<PathBuf>,
    },
}

/// Runs one `keys` subcommand.
pub async fn run(command: KeysCommand, plaintext: PlaintextRemote) -> anyhow::Result<ExitCode> {
    match command {
        KeysCommand::Generate { id } => {
            let id = id.unwrap_or_else(|| {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!("k{}", now.as_secs())
            });
            let entry = Keyring::generate_entry(&id);
            // Refuse ids the keyring would not load later.
            Keyring::from_spec(&entry).map_err(|e| anyhow::anyhow!("--id: {e}"))?;
            println!("{entry}");
            eprintln!(
                "add it first in CONNECTOR_HOST_MASTER_KEYS (comma-separated, current key first), then run `connector-host keys rotate`"
            );
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Rotate {
            database_url,
            master_keys_file,
        } => {
            let keyring = load_keyring(master_keys_file.as_deref(), false)?;
            let url = database_url.unwrap_or_else(|| config::DEFAULT_DATABASE_URL.into());
            let database = open_database(&url, plaintext).await?;
            let current = keyring.current_key_id().to_string();
            let connections = ConnectionStore::new(database, Arc::new(keyring));
            let mut report = connections.rotate_keys().await?;
            let managed = connections.managed().rotate_keys().await?;
            report.rotated += managed.rotated;
            report.failed.extend(managed.failed);
            println!(
                "re-encrypted {} value(s) under key `{current}`",
                report.rotated
            );
            for failure in &report.failed {
                eprintln!("not re-encrypted: {failure}");
            }
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
