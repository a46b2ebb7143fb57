//! `connector-host api-keys create|list|revoke`: the keys of the HTTP API.
//! A key is printed once, when created; the database keeps only its hash.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;
use secrecy::ExposeSecret;

use connector_server::access::Role;
use connector_server::store::{ApiKeyStore, PlaintextRemote};

/// `api-keys` subcommands.
#[derive(Subcommand)]
pub enum ApiKeysCommand {
    /// Create a key and print it (once).
    Create {
        /// What the key is for (shown in lists and the admin audit).
        #[arg(long)]
        name: String,
        /// `operator`, `account-admin` or `service`.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// An account the key may act on (repeat for several; `*` for every
        /// account, service keys only). Operators take none.
        #[arg(long = "account")]
        accounts: Vec<String>,
        /// Trust this service key with raw access tokens
        /// (`GET …/connections/{id}/credentials`); without it, only the proxy.
        #[arg(long)]
        raw_tokens: bool,
        /// Database URL [default: sqlite://connector-host.db?mode=rwc].
        #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
        database_url: Option<String>,
    },
    /// List keys (never their secrets).
    List {
        /// Database URL [default: sqlite://connector-host.db?mode=rwc].
        #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
        database_url: Option<String>,
        /// Print JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by id (`key_…`); it stops working at once.
    Revoke {
        /// The key id.
        id: String,
        /// Database URL [default: sqlite://connector-host.db?mode=rwc].
        #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
        database_url: Option<String>,
    },
}

fn parse_role(text: &str) -> Result<Role, String> {
    Role::parse(text)
        .ok_or_else(|| format!("`{text}` is not a role: use operator, account-admin or service"))
}

async fn store(
    database_url: Option<String>,
    plaintext: PlaintextRemote,
) -> anyhow::Result<ApiKeyStore> {
    let url = database_url.unwrap_or_else(|| connector_server::config::DEFAULT_DATABASE_URL.into());
    let database = crate::open_database(&url, plaintext).await?;
    Ok(ApiKeyStore::new(database))
}

/// Runs an `api-keys` subcommand; `plaintext` is the `--database-allow-plaintext-remote` opt-in.
pub async fn run(command: ApiKeysCommand, plaintext: PlaintextRemote) -> anyhow::Result<ExitCode> {
    match command {
        ApiKeysCommand::Create {
            name,
            role,
            accounts,
            raw_tokens,
            database_url,
        } => {
            let (record, secret) = store(database_url, plaintext)
                .await?
                .create_with(&name, role, &accounts, raw_tokens)
                .await?;
            println!("{}", secret.expose_secret());
            eprintln!(
                "created {} ({}{}, accounts: {}); this is the only time the key is shown",
                record.id,
                record.role,
                if record.raw_tokens {
                    ", raw tokens"
                } else {
                    ""
                },
                if record.accounts.is_empty() {
                    "none".to_string()
                } else {
                    record.accounts.join(",")
                }
            );
            Ok(ExitCode::SUCCESS)
        }
        ApiKeysCommand::List { database_url, json } => {
            let keys = store(database_url, plaintext).await?.list().await?;
            for key in &keys {
                if json {
                    println!("{}", serde_json::to_string(key)?);
                } else {
                    println!(
                        "{} {:<13}{} {:<30} accounts={} {}",
                        key.id,
                        key.role.as_str(),
                        if key.raw_tokens { " raw-tokens" } else { "" },
                        key.name,
                        if key.accounts.is_empty() {
                            "-".to_string()
                        } else {
                            key.accounts.join(",")
                        },
                        match key.revoked_at {
                            Some(at) => format!("revoked at {at}"),
                            None => "active".to_string(),
                        }
                    );
                }
            }
            if keys.is_empty() && !json {
                println!("no API keys; create one with `connector-host api-keys create`");
            }
            Ok(ExitCode::SUCCESS)
        }
        ApiKeysCommand::Revoke { id, database_url } => {
            if store(database_url, plaintext).await?.revoke(&id).await? {
                println!("revoked {id}");
                Ok(ExitCode::SUCCESS)
            } else {
                eprintln!("no active key `{id}`");
                Ok(ExitCode::FAILURE)
            }
        }
    }
}

/// `serve --dev`: the demo's keys, kept in a file next to the development
/// master key so the README's commands work across restarts. Creates them on
/// first use (and again if the database was deleted).
pub async fn dev_keys(store: &ApiKeyStore, file: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let wanted = [
        ("service", Role::Service, vec!["*".to_string()]),
        ("operator", Role::Operator, vec![]),
        ("admin", Role::AccountAdmin, vec!["demo".to_string()]),
    ];
    let mut known: Vec<(String, String)> = std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let mut changed = false;
    for (label, role, accounts) in wanted {
        let valid = match known.iter().find(|(k, _)| k == label) {
            Some((_, token)) => store.authenticate(token).await?.is_some(),
            None => false,
        };
        if !valid {
            let (_, secret) = store
                .create(&format!("dev {label}"), role, &accounts)
                .await?;
            known.retain(|(k, _)| k != label);
            known.push((label.to_string(), secret.expose_secret().to_string()));
            changed = true;
        }
    }
    if changed {
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let text: String = known.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
        std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(known)
}
