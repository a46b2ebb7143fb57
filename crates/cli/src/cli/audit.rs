//! `connector-host audit`: a connector's recent outbound requests from the
//! audit log, as a table or JSON lines.

use std::process::ExitCode;

use connector_server::config;

use connector_server::store::PlaintextRemote;

use crate::open_database;

/// Which connector, where its audit is, and how to print it.
#[derive(clap::Args)]
pub struct AuditArgs {
    /// Connector id.
    pub connector: String,
    /// Database URL [default: sqlite://connector-host.db?mode=rwc].
    #[arg(long, env = "CONNECTOR_HOST_DATABASE_URL")]
    pub database_url: Option<String>,
    /// How many requests, newest first.
    #[arg(long, default_value_t = 50)]
    pub limit: i64,
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// `audit CONNECTOR`: a connector's recent outbound requests, newest first.
pub async fn run(args: AuditArgs, plaintext: PlaintextRemote) -> anyhow::Result<ExitCode> {
    let AuditArgs {
        connector,
        database_url,
        limit,
        json,
    } = args;
    let connector = connector.as_str();
    let url = database_url.unwrap_or_else(|| config::DEFAULT_DATABASE_URL.into());
    let database = open_database(&url, plaintext).await?;
    let events = database
        .outbound_audit(connector, limit.clamp(1, 10_000))
        .await?;
    if json {
        for event in &events {
            println!("{}", serde_json::to_string(event)?);
        }
        return Ok(ExitCode::SUCCESS);
    }
    if events.is_empty() {
        println!("no outbound requests recorded for `{connector}`");
    }
    for e in &events {
        println!(
            "{} {}@{} {:<7} {}://{}:{}{} {:?} {} {} cred={} {}us{}",
            e.at_ms,
            e.connector_id,
            e.connector_version,
            e.method,
            e.scheme.as_deref().unwrap_or("-"),
            e.host.as_deref().unwrap_or("-"),
            e.port.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            e.path.as_deref().unwrap_or(""),
            e.outcome,
            e.status
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            e.account_id.as_deref().unwrap_or("-"),
            e.credential.as_deref().unwrap_or("none"),
            e.duration_us,
            e.reason
                .as_ref()
                .map(|r| format!(" reason={r}"))
                .unwrap_or_default(),
        );
    }
    Ok(ExitCode::SUCCESS)
}
