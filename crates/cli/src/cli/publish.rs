//! `connector-host publish` and `components …`: the operator commands of
//! published components. They talk to a running host's operator routes
//! (`/v1/components…`, `/v1/replicas`) with an operator API key, so the
//! host that stores a component runs the checks of `check` with its own
//! settings and signature rule, and records the key as the publisher.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use base64::Engine as _;
use serde_json::{Value, json};

use connector_server::registry::signature::{ComponentSignature, SIGNATURE_SUFFIX};

/// Which host to talk to, and as whom.
#[derive(clap::Args)]
pub struct HostArgs {
    /// The host's base URL.
    #[arg(
        long,
        env = "CONNECTOR_HOST_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    host: String,
    /// An operator API key (prefer the environment variable: arguments are
    /// visible to other users of the machine).
    #[arg(long, env = "CONNECTOR_HOST_API_KEY", hide_env_values = true)]
    api_key: String,
}

/// `publish FILE.wasm`.
#[derive(clap::Args)]
pub struct PublishArgs {
    /// The `.wasm` component.
    file: PathBuf,
    /// Its detached signature [default: FILE.wasm.sig when it exists].
    #[arg(long)]
    signature: Option<PathBuf>,
    #[command(flatten)]
    host: HostArgs,
}

/// `components …`: versions of published components, and the replicas.
#[derive(clap::Subcommand)]
pub enum ComponentsCommand {
    /// Every published version of a connector, newest first.
    List {
        /// Connector id.
        connector: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Make a version live on every replica and keep it there (later
    /// publications are stored, not served, until `unpin`).
    Pin {
        /// Connector id.
        connector: String,
        /// The version.
        version: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Serve the newest unretired version again, unpinned.
    Unpin {
        /// Connector id.
        connector: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Serve the version published before the live one (pinned).
    Rollback {
        /// Connector id.
        connector: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Retire a version that is not live: it can no longer be served.
    Retire {
        /// Connector id.
        connector: String,
        /// The version.
        version: String,
        #[command(flatten)]
        host: HostArgs,
    },
    /// Which replica serves which connector versions, and since when.
    Replicas {
        #[command(flatten)]
        host: HostArgs,
    },
}

/// The signature file of `file` named by `--signature`, or `FILE.sig` when
/// it exists.
pub fn signature_for(
    file: &Path,
    given: Option<&Path>,
) -> anyhow::Result<Option<ComponentSignature>> {
    let default = PathBuf::from(format!("{}{SIGNATURE_SUFFIX}", file.display()));
    let path = match given {
        Some(path) => path.to_path_buf(),
        None if default.exists() => default,
        None => return Ok(None),
    };
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    ComponentSignature::parse(&text)
        .map(Some)
        .with_context(|| format!("{} is not a signature file", path.display()))
}

/// `publish FILE.wasm`: sends the component (and its signature) to the
/// host's `POST /v1/components`; prints the outcome.
pub async fn publish(args: PublishArgs) -> anyhow::Result<ExitCode> {
    let bytes = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let signature = signature_for(&args.file, args.signature.as_deref())?;
    let body = json!({
        "component": base64::engine::general_purpose::STANDARD.encode(&bytes),
        "signature": signature,
    });
    let answer = call(
        &args.host,
        reqwest::Method::POST,
        "/v1/components",
        Some(body),
    )
    .await?;
    let outcome = answer["outcome"].as_str().unwrap_or_default();
    println!(
        "{} {} (sha256 {}, signer {}): {}",
        answer["connectorId"].as_str().unwrap_or_default(),
        answer["version"].as_str().unwrap_or_default(),
        answer["sha256"].as_str().unwrap_or_default(),
        answer["signer"].as_str().unwrap_or("none"),
        match outcome {
            "live" => "published and live on every replica".to_string(),
            "stored" => format!(
                "stored; version {} stays live (pinned)",
                answer["pinnedVersion"].as_str().unwrap_or("?")
            ),
            _ => "already published, nothing changed".to_string(),
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// `components …`: one operator route each; prints its JSON answer.
pub async fn components(command: ComponentsCommand) -> anyhow::Result<ExitCode> {
    use ComponentsCommand::*;
    let segment = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let (host, method, path, body) = match &command {
        List { connector, host } => (
            host,
            reqwest::Method::GET,
            format!("/v1/components/{}", segment(connector)),
            None,
        ),
        Pin {
            connector,
            version,
            host,
        } => (
            host,
            reqwest::Method::POST,
            format!("/v1/components/{}/pin", segment(connector)),
            Some(json!({ "version": version })),
        ),
        Unpin { connector, host } => (
            host,
            reqwest::Method::POST,
            format!("/v1/components/{}/unpin", segment(connector)),
            None,
        ),
        Rollback { connector, host } => (
            host,
            reqwest::Method::POST,
            format!("/v1/components/{}/rollback", segment(connector)),
            None,
        ),
        Retire {
            connector,
            version,
            host,
        } => (
            host,
            reqwest::Method::POST,
            format!(
                "/v1/components/{}/versions/{}/retire",
                segment(connector),
                segment(version)
            ),
            None,
        ),
        Replicas { host } => (host, reqwest::Method::GET, "/v1/replicas".to_string(), None),
    };
    let answer = call(host, method, &path, body).await?;
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(ExitCode::SUCCESS)
}

/// One request to the host; an error answer becomes an error naming its
/// code and message.
async fn call(
    host: &HostArgs,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let url = format!("{}{path}", host.host.trim_end_matches('/'));
    let mut request = reqwest::Client::new()
        .request(method, &url)
        .bearer_auth(&host.api_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("cannot reach {url}"))?;
    let status = response.status();
    let answer: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        anyhow::bail!(
            "{status}: {} ({})",
            answer["message"].as_str().unwrap_or("no message"),
            answer["code"].as_str().unwrap_or("no code")
        );
    }
    Ok(answer)
}
