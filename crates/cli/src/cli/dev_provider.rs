//! `connector-host dev-provider`: the local test provider (OAuth and an
//! API-key CRM) on loopback, for demos and benchmarks.

use std::process::ExitCode;

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};

use super::shutdown_signal;

/// The provider's listen address, client and API keys.
#[derive(clap::Args)]
pub struct DevProviderArgs {
    /// Listen address (loopback only).
    #[arg(long, default_value = "127.0.0.1:9100")]
    pub listen: std::net::SocketAddr,
    /// OAuth client id it accepts.
    #[arg(long, default_value = "regional-public-client")]
    pub client_id: String,
    /// That client's secret.
    #[arg(
        long,
        env = "DEV_PROVIDER_CLIENT_SECRET",
        default_value = "dev-client-secret"
    )]
    pub client_secret: String,
    /// Redirect URIs that client may use.
    #[arg(long, default_value = "https://apps.example.com/oauth/callback")]
    pub redirect_uri: Vec<String>,
    /// API keys `/v3.1/Users/Me` accepts.
    #[arg(long, env = "DEV_PROVIDER_API_KEY", default_value = "dev-api-key")]
    pub api_key: Vec<String>,
    /// Also serve this realm, Keycloak style: its endpoints under
    /// `/realms/<name>/oauth/`, its issuer `http://<listen>/realms/<name>`.
    #[arg(long)]
    pub realm: Vec<String>,
    /// `expires_in` of the access tokens it issues, in seconds; `0` issues
    /// tokens already due for refresh (benchmarks of the refresh path).
    #[arg(long, default_value_t = 3600)]
    pub access_token_lifetime_secs: u64,
    /// Ask the user ("Allow" / "Deny") before sending the browser back with
    /// a code; without it every authorization is approved at once.
    #[arg(long)]
    pub consent_page: bool,
}

/// Runs the provider until Ctrl-C or SIGTERM.
pub async fn run(args: DevProviderArgs) -> anyhow::Result<ExitCode> {
    let DevProviderArgs {
        listen,
        client_id,
        client_secret,
        redirect_uri,
        api_key,
        realm,
        access_token_lifetime_secs,
        consent_page,
    } = args;
    let config = DevProviderConfig {
        clients: vec![DevClient {
            client_id,
            client_secret,
            redirect_uris: redirect_uri,
        }],
        api_keys: api_key,
        realms: realm.clone(),
        access_token_lifetime_secs,
        consent_page,
        ..DevProviderConfig::default()
    };
    let provider = DevProvider::start_on(listen, config).await?;
    println!("dev provider listening on {}", provider.base_url());
    for realm in &realm {
        if let Some(issuer) = provider.realm_issuer(realm) {
            println!("realm {realm}: issuer {issuer}");
        }
    }
    shutdown_signal().await;
    Ok(ExitCode::SUCCESS)
}
