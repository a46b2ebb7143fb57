//! The per-connector destination policy: the manifest's allowed origins,
//! narrowed (never widened) by the operator, plus URL and header rules.

use std::collections::BTreeSet;
use std::net::IpAddr;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::ip::NetworkPolicy;
use crate::generated::connector::auth::http::HttpError;
use connector_abi::manifest::AllowedOrigin;

/// Headers that carry credentials: a guest may not set them on a request that
/// asks the host to inject a credential.
const CREDENTIAL_HEADERS: &[&str] = &["authorization", "proxy-authorization", "cookie"];

/// Hop-by-hop and framing headers the host controls; a guest's are dropped
/// (one list with the manifest's placement rules).
pub(crate) use connector_abi::manifest::HOST_CONTROLLED_HEADERS;

/// What a connector may reach.
#[derive(Debug, Clone, Default)]
pub struct ConnectorPolicy {
    /// From the manifest's `allowedHosts`.
    pub manifest_origins: Vec<AllowedOrigin>,
    /// From host config `[connectors.<id>] allowed_hosts`: when set, a request
    /// must match both lists.
    pub operator_origins: Option<Vec<AllowedOrigin>>,
    /// Host secrets the manifest declares.
    pub declared_secrets: BTreeSet<String>,
    /// The operator lets this connector's API key go into a query string
    /// (`[connectors.<id>] allow_query_credential`); off by default, because
    /// servers log URLs and echo them in `Location`, `Link` and error pages.
    pub allow_query_credential: bool,
}

/// A URL that passed the origin policy.
#[derive(Debug, Clone)]
pub(crate) struct CheckedUrl {
    pub url: url::Url,
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl ConnectorPolicy {
    /// Parses and checks a guest URL: absolute http(s), no userinfo, host in the
    /// allowed origins; an IP literal (in any numeric form the URL standard
    /// accepts) must also pass the network policy.
    pub(crate) fn check_url(
        &self,
        text: &str,
        network: &NetworkPolicy,
    ) -> Result<CheckedUrl, HttpError> {
        let mut url = url::Url::parse(text).map_err(|e| HttpError::InvalidUrl(format!("{e}")))?;
        let scheme = url.scheme().to_string();
        if scheme != "https" && scheme != "http" {
            return Err(HttpError::InvalidUrl(format!(
                "scheme `{scheme}` is not http or https"
            )));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(HttpError::UserinfoNotAllowed);
        }
        let (host, literal) = match url.host() {
            Some(url::Host::Domain(name)) => {
                (name.trim_end_matches('.').to_ascii_lowercase(), None)
            }
            Some(url::Host::Ipv4(ip)) => (ip.to_string(), Some(IpAddr::V4(ip))),
            Some(url::Host::Ipv6(ip)) => (ip.to_string(), Some(IpAddr::V6(ip))),
            None => return Err(HttpError::InvalidUrl("the URL has no host".into())),
        };
        if host.is_empty() {
            return Err(HttpError::InvalidUrl("the URL has no host".into()));
        }
        if literal.is_none() && url.host_str() != Some(host.as_str()) {
            // Normalised (trailing dot removed): what was checked is what is used.
            url.set_host(Some(&host))
                .map_err(|e| HttpError::InvalidUrl(e.to_string()))?;
        }
        let port = url
            .port_or_known_default()
            .expect("http(s) has a default port");
        let origin = format!("{scheme}://{host}:{port}");
        let allowed =
            |origins: &[AllowedOrigin]| origins.iter().any(|o| o.matches(&scheme, &host, port));
        if !allowed(&self.manifest_origins) {
            return Err(HttpError::OriginNotAllowed(format!(
                "{origin} is not in the manifest's allowedHosts"
            )));
        }
        if let Some(operator) = &self.operator_origins
            && !allowed(operator)
        {
            return Err(HttpError::OriginNotAllowed(format!(
                "{origin} is not in the operator's allowed_hosts for this connector"
            )));
        }
        if let Some(ip) = literal {
            network.check(ip).map_err(HttpError::AddressBlocked)?;
        }
        Ok(CheckedUrl {
            url,
            scheme,
            host,
            port,
        })
    }
}

/// Builds the request headers from the guest's: drops host-controlled ones,
/// refuses credential headers when a credential is injected, caps the total.
pub(crate) fn request_headers(
    guest: &[(String, String)],
    injecting: bool,
    max_bytes: usize,
) -> Result<HeaderMap, HttpError> {
    let mut headers = HeaderMap::new();
    let mut total = 0;
    for (name, value) in guest {
        let lower = name.to_ascii_lowercase();
        if injecting && CREDENTIAL_HEADERS.contains(&lower.as_str()) {
            return Err(HttpError::CredentialHeader(lower));
        }
        if HOST_CONTROLLED_HEADERS.contains(&lower.as_str()) {
            continue;
        }
        total += name.len() + value.len();
        if total > max_bytes {
            return Err(HttpError::RequestTooLarge(max_bytes as u64));
        }
        let name = HeaderName::from_bytes(lower.as_bytes())
            .map_err(|_| HttpError::InvalidUrl(format!("`{name}` is not a valid header name")))?;
        let value = HeaderValue::from_str(value).map_err(|_| {
            HttpError::InvalidUrl(format!("the value of header `{name}` is not valid"))
        })?;
        headers.append(name, value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> ConnectorPolicy {
        ConnectorPolicy {
            manifest_origins: [
                "https://*.example.com",
                "https://api.other.com",
                "http://127.0.0.1:*",
            ]
            .iter()
            .map(|o| AllowedOrigin::parse(o).unwrap())
            .collect(),
            operator_origins: None,
            declared_secrets: BTreeSet::new(),
            allow_query_credential: false,
        }
    }

    fn kind(result: Result<CheckedUrl, HttpError>) -> String {
        match result {
            Ok(_) => "ok".into(),
            Err(e) => super::super::error_kind(&e).to_string(),
        }
    }

    #[test]
    fn urls_are_checked_against_origins_and_addresses() {
        let network = NetworkPolicy::default();
        let p = policy();
        assert_eq!(
            kind(p.check_url("https://api.example.com/v1?x=1", &network)),
            "ok"
        );
        assert_eq!(
            kind(p.check_url("https://API.Example.com./v1", &network)),
            "ok"
        );
        assert_eq!(
            kind(p.check_url("https://example.com/", &network)),
            "origin-not-allowed"
        );
        assert_eq!(
            kind(p.check_url("http://api.example.com/", &network)),
            "origin-not-allowed"
        );
        assert_eq!(
            kind(p.check_url("https://api.example.com:8443/", &network)),
            "origin-not-allowed"
        );
        assert_eq!(
            kind(p.check_url("https://user:pw@api.example.com/", &network)),
            "userinfo-not-allowed"
        );
        assert_eq!(
            kind(p.check_url("ftp://api.example.com/", &network)),
            "invalid-url"
        );
        assert_eq!(kind(p.check_url("/relative", &network)), "invalid-url");
        for numeric in [
            "http://127.0.0.1:1/",
            "http://2130706433:1/",
            "http://0x7f000001:1/",
            "http://0177.0.0.1:1/",
        ] {
            assert_eq!(
                kind(p.check_url(numeric, &network)),
                "address-blocked",
                "{numeric}"
            );
        }
        let local = NetworkPolicy::new(vec!["127.0.0.1/32".parse().unwrap()]);
        assert_eq!(kind(p.check_url("http://2130706433:8080/", &local)), "ok");
    }

    #[test]
    fn the_operator_can_only_narrow() {
        let mut p = policy();
        p.operator_origins = Some(vec![
            AllowedOrigin::parse("https://api.example.com").unwrap(),
        ]);
        let network = NetworkPolicy::default();
        assert_eq!(
            kind(p.check_url("https://api.example.com/", &network)),
            "ok"
        );
        assert_eq!(
            kind(p.check_url("https://eu.example.com/", &network)),
            "origin-not-allowed"
        );
        // An operator origin outside the manifest does not widen it.
        p.operator_origins = Some(vec![AllowedOrigin::parse("https://evil.com").unwrap()]);
        assert_eq!(
            kind(p.check_url("https://evil.com/", &network)),
            "origin-not-allowed"
        );
    }

    #[test]
    fn credential_headers_are_refused_only_when_injecting() {
        let guest = vec![("Authorization".to_string(), "Bearer mine".to_string())];
        assert!(matches!(
            request_headers(&guest, true, 1024),
            Err(HttpError::CredentialHeader(_))
        ));
        assert_eq!(request_headers(&guest, false, 1024).unwrap().len(), 1);
        let hop = vec![
            ("Host".to_string(), "evil.com".to_string()),
            ("Connection".into(), "close".into()),
        ];
        assert!(request_headers(&hop, false, 1024).unwrap().is_empty());
        let big = vec![("x-big".to_string(), "x".repeat(2000))];
        assert!(matches!(
            request_headers(&big, false, 1024),
            Err(HttpError::RequestTooLarge(1024))
        ));
    }
}
