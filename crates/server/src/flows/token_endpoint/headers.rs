//! The extra headers a connector's `overriding-oauth-option` asks for on the
//! code exchange (`extra-headers`), checked before anything is sent.
//!
//! The values are not secret (the connector returns them, and a connector
//! holds no secret the host did not give it), but the request they go on
//! carries the client's credentials and the authorization code, so the host
//! keeps control of everything that frames or authenticates it: a connector
//! may add informational headers (an API version, a tenant or partner id), and
//! never replace the client authentication, the body's type or length, the
//! target host, or hop-by-hop and proxy headers.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};

use super::super::FlowError;

/// Most extra headers one request may carry.
pub(crate) const MAX_EXTRA_HEADERS: usize = 16;
/// Longest header name, in bytes.
pub(crate) const MAX_HEADER_NAME_BYTES: usize = 128;
/// Longest header value, in bytes.
pub(crate) const MAX_HEADER_VALUE_BYTES: usize = 1024;
/// Largest total of every name and value, in bytes.
pub(crate) const MAX_EXTRA_HEADER_BYTES: usize = 4096;

/// Headers the host controls or that carry client authentication (compared
/// in lower case).
pub(crate) const REFUSED_HEADERS: [&str; 20] = [
    "accept",
    "accept-encoding",
    "authorization",
    "connection",
    "content-encoding",
    "content-length",
    "content-type",
    "cookie",
    "cookie2",
    "dpop",
    "expect",
    "forwarded",
    "host",
    "keep-alive",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "via",
];

/// Name prefixes refused for the same reasons (proxy credentials and
/// routing, forwarding claims, browser-controlled headers).
pub(crate) const REFUSED_PREFIXES: [&str; 3] = ["proxy-", "x-forwarded-", "sec-"];

/// The checked headers, or an error naming the first header refused and why.
pub(crate) fn extra_headers(pairs: &[(String, String)]) -> Result<HeaderMap, FlowError> {
    let refuse = |name: &str, why: &str| {
        FlowError::Connector(format!(
            "`overriding-oauth-option` asked for the extra token-request header `{name}`, which the host refuses: {why}"
        ))
    };
    if pairs.len() > MAX_EXTRA_HEADERS {
        return Err(FlowError::Connector(format!(
            "`overriding-oauth-option` asked for {} extra token-request headers; at most {MAX_EXTRA_HEADERS} are sent",
            pairs.len()
        )));
    }
    let total: usize = pairs.iter().map(|(n, v)| n.len() + v.len()).sum();
    if total > MAX_EXTRA_HEADER_BYTES {
        return Err(FlowError::Connector(format!(
            "`overriding-oauth-option` asked for {total} bytes of extra token-request headers; at most {MAX_EXTRA_HEADER_BYTES} are sent"
        )));
    }
    let mut headers = HeaderMap::new();
    for (name, value) in pairs {
        // Shown in messages cut short and without control characters.
        let shown: String = name
            .chars()
            .take(MAX_HEADER_NAME_BYTES)
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        if name.len() > MAX_HEADER_NAME_BYTES {
            return Err(refuse(
                &shown,
                &format!("a name is at most {MAX_HEADER_NAME_BYTES} bytes"),
            ));
        }
        let parsed = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| refuse(&shown, "not a header name (RFC 9110 token characters)"))?;
        let lower = parsed.as_str();
        if REFUSED_HEADERS.contains(&lower) || REFUSED_PREFIXES.iter().any(|p| lower.starts_with(p))
        {
            return Err(refuse(
                &shown,
                "the host sets it, or it carries client authentication",
            ));
        }
        if headers.contains_key(&parsed) {
            return Err(refuse(&shown, "listed twice"));
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return Err(refuse(
                &shown,
                &format!("a value is at most {MAX_HEADER_VALUE_BYTES} bytes"),
            ));
        }
        // Visible ASCII, spaces and tabs inside; nothing that could end the
        // header or the request.
        let printable = value
            .chars()
            .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic());
        let trimmed = value.trim_matches([' ', '\t']).len() == value.len();
        let parsed_value = HeaderValue::from_str(value)
            .ok()
            .filter(|_| printable && trimmed)
            .ok_or_else(|| {
                refuse(
                    &shown,
                    "its value must be visible ASCII (spaces and tabs only inside)",
                )
            })?;
        headers.insert(parsed, parsed_value);
    }
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    fn refused(list: &[(&str, &str)]) -> String {
        extra_headers(&pairs(list)).unwrap_err().to_string()
    }

    #[test]
    fn informational_headers_are_kept_in_lower_case() {
        let headers = extra_headers(&pairs(&[
            ("X-Api-Version", "2024-01"),
            ("X-Partner", "a b"),
        ]))
        .unwrap();
        assert_eq!(headers.len(), 2);
        assert_eq!(headers["x-api-version"], "2024-01");
        assert_eq!(headers["x-partner"], "a b");
        assert!(extra_headers(&[]).unwrap().is_empty());
    }

    #[test]
    fn host_controlled_and_credential_headers_are_refused_by_name() {
        for name in [
            "Authorization",
            "cookie",
            "HOST",
            "Content-Length",
            "content-type",
            "Transfer-Encoding",
            "Proxy-Authorization",
            "proxy-anything",
            "X-Forwarded-For",
            "Sec-Fetch-Mode",
            "DPoP",
            "accept",
        ] {
            let error = refused(&[("x-ok", "1"), (name, "v")]);
            assert!(
                error.contains(&format!("`{name}`")) && error.contains("refuses"),
                "{error}"
            );
        }
    }

    #[test]
    fn malformed_duplicate_and_oversized_headers_are_refused() {
        assert!(refused(&[("bad name", "v")]).contains("`bad name`"));
        assert!(refused(&[("x-a", "line\r\nx-injected: 1")]).contains("visible ASCII"));
        assert!(refused(&[("x-a", "caf\u{e9}")]).contains("visible ASCII"));
        assert!(refused(&[("x-a", " padded")]).contains("visible ASCII"));
        assert!(refused(&[("x-a", "1"), ("X-A", "2")]).contains("listed twice"));
        let long = "v".repeat(MAX_HEADER_VALUE_BYTES + 1);
        assert!(refused(&[("x-a", &long)]).contains("at most"));
        let name = "n".repeat(MAX_HEADER_NAME_BYTES + 1);
        assert!(refused(&[(&name, "v")]).contains("at most"));
        let many: Vec<(String, String)> = (0..=MAX_EXTRA_HEADERS)
            .map(|i| (format!("x-h{i}"), "v".into()))
            .collect();
        let error = extra_headers(&many).unwrap_err().to_string();
        assert!(error.contains("at most 16"), "{error}");
        let big: Vec<(String, String)> = (0..6)
            .map(|i| (format!("x-h{i}"), "v".repeat(1000)))
            .collect();
        let error = extra_headers(&big).unwrap_err().to_string();
        assert!(error.contains("bytes of extra"), "{error}");
    }
}
