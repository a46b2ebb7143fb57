//! One `allowedHosts` entry of a manifest, parsed, and how a request URL is
//! matched against it (scheme, host or `*.` wildcard, port).

use serde::Serialize;

/// One entry of `allowedHosts`, parsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AllowedOrigin {
    /// `https` or `http`.
    pub scheme: String,
    /// The host, lower-case, without a `*.` prefix.
    pub host: String,
    /// True for `*.host`: any subdomain of `host` (not `host` itself).
    pub wildcard: bool,
    /// The port; the scheme's default when absent; `None` for `:*` (any port).
    pub port: Option<u16>,
}

impl AllowedOrigin {
    /// Parses `scheme://host[:port]` or `scheme://*.host[:port]`; `:*` allows
    /// any port.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (text_without_port, any_port) = match text.strip_suffix(":*") {
            Some(rest) => (rest, true),
            None => (text, false),
        };
        let (scheme, rest) = text_without_port
            .split_once("://")
            .ok_or_else(|| format!("`{text}` is not an origin like `https://api.example.com`"))?;
        let (wildcard, rest) = match rest.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, rest),
        };
        let url = url::Url::parse(&format!("{scheme}://{rest}"))
            .map_err(|e| format!("`{text}` is not an origin: {e}"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err(format!("`{text}`: only http and https origins are allowed"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!("`{text}`: an origin carries no user or password"));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "`{text}`: an origin has no path, query or fragment"
            ));
        }
        // The same normal form as request URLs: IPv6 without brackets, no
        // trailing dot, lower case.
        let host = match url.host() {
            Some(url::Host::Domain(name)) => name.trim_end_matches('.').to_ascii_lowercase(),
            Some(url::Host::Ipv4(ip)) => ip.to_string(),
            Some(url::Host::Ipv6(ip)) => ip.to_string(),
            None => return Err(format!("`{text}` has no host")),
        };
        if host.contains('*') {
            return Err(format!("`{text}`: `*` is only allowed as a leading `*.`"));
        }
        if wildcard && !matches!(url.host(), Some(url::Host::Domain(_))) {
            return Err(format!(
                "`{text}`: a wildcard needs a domain name, not an IP address"
            ));
        }
        if wildcard && !host.contains('.') {
            return Err(format!(
                "`{text}`: a wildcard must sit under a registrable domain, not a top-level domain"
            ));
        }
        Ok(Self {
            scheme: url.scheme().to_string(),
            host,
            wildcard,
            port: if any_port {
                None
            } else {
                url.port_or_known_default()
            },
        })
    }

    /// Whether a request to `scheme://host:port` matches this origin. `host`
    /// must be lower-case without a trailing dot.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if scheme != self.scheme || self.port.is_some_and(|p| p != port) {
            return false;
        }
        if self.wildcard {
            host.strip_suffix(&self.host)
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.'))
        } else {
            host == self.host
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_parsing_normalises() {
        let origin = AllowedOrigin::parse("https://*.Example.COM").unwrap();
        assert!(origin.wildcard);
        assert_eq!(
            (origin.host.as_str(), origin.port),
            ("example.com", Some(443))
        );
        assert_eq!(
            AllowedOrigin::parse("http://127.0.0.1:8080").unwrap().port,
            Some(8080)
        );
        assert_eq!(
            AllowedOrigin::parse("http://127.0.0.1:*").unwrap().port,
            None
        );
    }

    #[test]
    fn origins_match_scheme_host_and_port_exactly() {
        let wildcard = AllowedOrigin::parse("https://*.example.com").unwrap();
        assert!(wildcard.matches("https", "api.example.com", 443));
        assert!(wildcard.matches("https", "a.b.example.com", 443));
        assert!(
            !wildcard.matches("https", "example.com", 443),
            "the apex is not a subdomain"
        );
        assert!(!wildcard.matches("https", "evilexample.com", 443));
        assert!(!wildcard.matches("http", "api.example.com", 443));
        assert!(!wildcard.matches("https", "api.example.com", 8443));
        let any_port = AllowedOrigin::parse("http://127.0.0.1:*").unwrap();
        assert!(any_port.matches("http", "127.0.0.1", 9999));
        assert!(!any_port.matches("http", "127.0.0.2", 9999));
        let v6 = AllowedOrigin::parse("http://[::1]:8080").unwrap();
        assert!(
            v6.matches("http", "::1", 8080),
            "IPv6 origins compare without brackets"
        );
        assert!(AllowedOrigin::parse("https://*.com").is_err());
    }
}
