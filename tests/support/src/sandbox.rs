//! A sandbox runtime for tests that drive guests directly (no server): its
//! outbound boundary allows the loopback network, so guests may reach servers
//! the test starts on 127.0.0.1, allows credentials over plain http (those
//! servers do not speak TLS), and records audit events in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_sandbox::capabilities::http::{
    ApiKeyCredential, ApiKeyPlacement, CallCredentials, ClientCredentials, HostSecret,
    MemoryAuditSink, Outbound, OutboundConfig, SystemResolver,
};
use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_sandbox::wit::hooks::ConnectionInfo;
use secrecy::SecretString;

/// A runtime whose guests may reach 127.0.0.1, with credentials over plain
/// http (`require_https = false`), with these limits, host secrets and audit
/// sink.
pub fn loopback_runtime(
    limits: RuntimeLimits,
    host_secrets: BTreeMap<String, HostSecret>,
    audit: Arc<MemoryAuditSink>,
) -> Arc<Runtime> {
    let outbound = Outbound::new(
        OutboundConfig {
            allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
            require_https: false,
            ..OutboundConfig::default()
        },
        Arc::new(SystemResolver),
        Arc::new(host_secrets),
        audit,
    )
    .expect("outbound client");
    Arc::new(Runtime::with_outbound(limits, outbound).expect("runtime"))
}

/// The connection that tells the `http-probe` guest what to send: its
/// `additional_info` keys (`url`, `credential`, `repeat`, …).
pub fn probe_request(pairs: &[(&str, &str)]) -> ConnectionInfo {
    ConnectionInfo {
        hostname: None,
        platform_user_id: None,
        additional_info: pairs
            .iter()
            .map(|(key, value)| (key.to_string(), value.to_string()))
            .collect(),
    }
}

/// The access token the `http-probe` tests inject (with a `/`, a space and a
/// `+`, so its percent-encodings differ from it).
pub const TOKEN: &str = "tok-3f9a/very secret+";
/// The API key they inject.
pub const API_KEY: &str = "key-77c1-very-secret";
/// The OAuth client secret they inject.
pub const CLIENT_SECRET: &str = "cs-51e0-very-secret";
/// The host secret (`probe-secret`) they inject.
pub const HOST_SECRET: &str = "hs-9d2b-very-secret";
/// Every secret above, for "never seen" checks.
pub const SECRETS: &[&str] = &[TOKEN, API_KEY, CLIENT_SECRET, HOST_SECRET];

/// Credentials for one probe call: the token, the API key placed as given
/// (with a `tenantId` form field for Basic templates) and client credentials.
pub fn probe_credentials(placement: ApiKeyPlacement) -> Arc<CallCredentials> {
    Arc::new(CallCredentials {
        access_token: Some(SecretString::from(TOKEN)),
        api_key: Some(ApiKeyCredential {
            key: SecretString::from(API_KEY),
            placement,
            fields: BTreeMap::from([("tenantId".to_string(), "acme".to_string())]),
            secret_fields: BTreeMap::new(),
        }),
        client: Some(ClientCredentials {
            client_id: "client-1".into(),
            client_secret: SecretString::from(CLIENT_SECRET),
        }),
        renewal: None,
    })
}
