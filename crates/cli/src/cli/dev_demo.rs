//! The offline demo behind `serve --dev`: a local provider and the settings
//! that let the `local-*` example connectors reach it.

use connector_authoring::dev_provider::{DevClient, DevProvider, DevProviderConfig};
use connector_server::config::{HostConfig, SecretSource};

/// The demo's API key for `local-insightly`.
pub const API_KEY: &str = "dev-api-key";
const CLIENT_SECRET_ENV: &str = "CONNECTOR_HOST_DEV_CLIENT_SECRET";

/// Starts the provider on 127.0.0.1:9100 (or a free port), with its consent
/// page, and configures the `local-*` connectors for it (`local-regional`'s
/// authorize page, token endpoint and API are the provider's). The connect pages are served at `[console]
/// public_url`, `http://{listen}` unless configured, and the provider accepts
/// their callback page as a redirect URI of the demo's OAuth client.
pub async fn start(
    config: &mut HostConfig,
    listen: std::net::SocketAddr,
) -> anyhow::Result<DevProvider> {
    let secret = "dev-client-secret";
    let public_url = config
        .console
        .public_url
        .get_or_insert_with(|| format!("http://{listen}"))
        .trim_end_matches('/')
        .to_string();
    config.console.dev_demo = true;
    let provider_config = DevProviderConfig {
        clients: vec![DevClient {
            client_id: "regional-public-client".into(),
            client_secret: secret.into(),
            redirect_uris: vec![
                "https://apps.example.com/oauth/callback".into(),
                format!(
                    "{public_url}{}",
                    connector_server::console::connect::CALLBACK_PATH
                ),
            ],
        }],
        api_keys: vec![API_KEY.into()],
        // A browser demo: the provider asks the user, as a real one does.
        consent_page: true,
        ..DevProviderConfig::default()
    };
    let provider =
        match DevProvider::start_on("127.0.0.1:9100".parse()?, provider_config.clone()).await {
            Ok(provider) => provider,
            Err(_) => DevProvider::start(provider_config).await?,
        };
    let base = provider.base_url();
    let host = base.trim_start_matches("http://").to_string();
    let loopback: ipnet::IpNet = "127.0.0.1/32".parse()?;
    if !config.network.allow_private_networks.contains(&loopback) {
        config.network.allow_private_networks.push(loopback);
    }
    // The local provider speaks plain http: the host's token requests and
    // the demo connectors' credentials go to it in clear (the outbound
    // client logs a WARN saying so).
    config.network.require_https = false;
    // SAFETY of set_var: called before the runtime spawns any other thread
    // that reads the environment (single-threaded start-up of `serve`).
    #[allow(unsafe_code)]
    unsafe {
        std::env::set_var(CLIENT_SECRET_ENV, secret)
    };
    config
        .secrets
        .entry("regional-crm-client-secret".into())
        .or_insert(SecretSource {
            env: Some(CLIENT_SECRET_ENV.into()),
            file: None,
            connectors: vec!["local-regional".into()],
            purposes: connector_server::config::default_purposes(),
        });
    let regional = config
        .connectors
        .entry("local-regional".into())
        .or_default();
    regional
        .config
        .entry("scheme".into())
        .or_insert_with(|| "http".into());
    regional
        .config
        .entry("default-hostname".into())
        .or_insert_with(|| host.clone());
    // The manifest's authorize URL is the real provider's: the browser goes
    // to the local provider's page instead.
    regional
        .config
        .entry("authorize-url".into())
        .or_insert_with(|| format!("{base}/oauth/authorize"));
    tracing::warn!(
        "dev provider listening on {base} (demo API key `{API_KEY}` for local-insightly; local-regional logs in through it)"
    );
    Ok(provider)
}
