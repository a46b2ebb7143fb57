//! A sandbox runtime for tests that drive guests directly (no server): its
//! outbound boundary allows the loopback network, so guests may reach servers
//! the test starts on 127.0.0.1, and records audit events in memory.

use std::collections::BTreeMap;
use std::sync::Arc;

use connector_sandbox::capabilities::http::{
    HostSecret, MemoryAuditSink, Outbound, OutboundConfig, SystemResolver,
};
use connector_sandbox::runtime::{Runtime, RuntimeLimits};
use connector_sandbox::wit::hooks::ConnectionInfo;

/// A runtime whose guests may reach 127.0.0.1, with these limits, host
/// secrets and audit sink.
pub fn loopback_runtime(
    limits: RuntimeLimits,
    host_secrets: BTreeMap<String, HostSecret>,
    audit: Arc<MemoryAuditSink>,
) -> Arc<Runtime> {
    let outbound = Outbound::new(
        OutboundConfig {
            allow_private_networks: vec!["127.0.0.1/32".parse().unwrap()],
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
