//! Name resolution done by the host, so every address is checked before any
//! connection, and the connection goes to exactly the checked addresses (the
//! HTTP client never resolves again: DNS-rebinding safe).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::ip::NetworkPolicy;

/// Looks names up. The system resolver in production; tests use
/// [`StaticResolver`] to make a name resolve to chosen addresses.
#[async_trait::async_trait]
pub trait Resolver: Send + Sync + 'static {
    /// Every address of `host`.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The operating system's resolver.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0))
            .await?
            .map(|a| a.ip())
            .collect())
    }
}

/// Fixed answers, for tests.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    answers: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// Makes `host` resolve to `addrs`.
    pub fn with(mut self, host: &str, addrs: &[&str]) -> Self {
        let addrs = addrs
            .iter()
            .map(|a| a.parse().expect("an IP address"))
            .collect();
        self.answers.insert(host.to_ascii_lowercase(), addrs);
        self
    }
}

#[async_trait::async_trait]
impl Resolver for StaticResolver {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        self.answers
            .get(&host.to_ascii_lowercase())
            .cloned()
            .ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    format!("no test answer for {host}"),
                )
            })
    }
}

/// A resolved name had an address the policy refuses. Found in the HTTP
/// client's error chain and reported as `address-blocked`.
#[derive(Debug, thiserror::Error)]
#[error("{host} resolves to a refused address: {reason}")]
pub struct AddressBlocked {
    /// The name.
    pub host: String,
    /// Which address and why.
    pub reason: String,
}

/// The name did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("cannot resolve {host}: {message}")]
pub struct NotResolved {
    /// The name.
    pub host: String,
    /// The resolver's message.
    pub message: String,
}

/// The resolver the HTTP client uses: look up, refuse the whole name if any
/// address is refused (a mix of public and private is refused too), hand the
/// client only checked addresses.
pub(crate) struct CheckingResolver {
    pub(crate) resolver: Arc<dyn Resolver>,
    pub(crate) network: Arc<NetworkPolicy>,
}

impl reqwest::dns::Resolve for CheckingResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let resolver = self.resolver.clone();
        let network = self.network.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolver.lookup(&host).await.map_err(|e| {
                Box::new(NotResolved {
                    host: host.clone(),
                    message: e.to_string(),
                }) as Box<dyn std::error::Error + Send + Sync>
            })?;
            if addrs.is_empty() {
                return Err(Box::new(NotResolved {
                    host,
                    message: "no addresses".into(),
                }) as _);
            }
            for addr in &addrs {
                if let Err(reason) = network.check(*addr) {
                    return Err(Box::new(AddressBlocked {
                        host: host.clone(),
                        reason,
                    }) as _);
                }
            }
            let checked: Vec<SocketAddr> =
                addrs.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
            Ok(Box::new(checked.into_iter()) as reqwest::dns::Addrs)
        })
    }
}
