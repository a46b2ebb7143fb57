//! The pass-through proxy: the platform's request is sent to the provider
//! as it is — method, path, query, headers, body — with the connection's
//! credential injected by the host, and the provider's answer comes back as
//! it is, both bodies streamed (`HttpCapability::send_streamed`: the same
//! origin policy, header rules, credential injection, scrubbing and audit as
//! the JSON proxy of [`super::proxy`]).
//!
//! **Where it goes.** The path is appended to an origin: the one the caller
//! names, or else the connector's only `allowedHosts` entry when that is one
//! exact origin. The path cannot leave that origin: empty, `.` and `..`
//! segments, backslashes, control characters and encoded `/`, `\`, `.`-only
//! segments are refused before anything is sent ([`target_url`]).
//!
//! **Retries.** A streamed body is read once and cannot be sent again. A
//! request without a body to an idempotent method (GET, HEAD, OPTIONS, PUT,
//! DELETE) is retried as the JSON proxy retries: on 429/503 within
//! [`super::proxy_retry`]'s bounds, and once after a refresh on a 401 for a
//! token the host believed valid. A request with a body gets the provider's
//! answer; after a 401 the token is still refreshed, for the next request.

use connector_abi::manifest::{AllowedOrigin, AuthKind};
use connector_sandbox::capabilities::http::{ByteStream, StreamedRequest, StreamedResponse};
use connector_sandbox::wit::http::{Credential, HttpError};
use futures_util::StreamExt as _;

use super::FlowError;
use super::proxy::{PROXY_TIMEOUT, ProxyFlow, Usable};
use super::proxy_retry::RetryPolicy;
use crate::registry::LoadedConnector;
use crate::store::{Connection, ConnectionRef, ConnectionSecrets};

/// A request for the provider, as the platform sent it.
pub struct PassthroughRequest {
    /// The method (GET, HEAD, POST, PUT, PATCH, DELETE or OPTIONS).
    pub method: reqwest::Method,
    /// The origin the caller named (`scheme://host[:port]`), if any.
    pub origin: Option<String>,
    /// The path after `…/proxy/`, as sent (percent-encoded), without the
    /// leading `/`.
    pub path: String,
    /// The query string as sent, if any.
    pub query: Option<String>,
    /// The headers to forward (the API layer already removed its own, the
    /// caller's credentials and hop-by-hop ones).
    pub headers: Vec<(String, String)>,
    /// The body and its declared length; `None` for a request without one.
    pub body: Option<(ByteStream, Option<u64>)>,
    /// Largest response body passed on.
    pub max_response_bytes: u64,
}

impl std::fmt::Debug for PassthroughRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassthroughRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// What is sent again on a retry: everything but the body.
#[derive(Clone)]
struct Attempt {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, String)>,
    max_response_bytes: u64,
}

impl ProxyFlow {
    /// Sends the platform's request through the connection `at` (read with
    /// its secrets just before, `fetched`) and streams back the answer.
    pub(crate) async fn passthrough(
        &self,
        at: ConnectionRef<'_>,
        request: PassthroughRequest,
        fetched: Option<(Connection, ConnectionSecrets)>,
    ) -> Result<StreamedResponse, FlowError> {
        check_method(&request.method)?;
        let Usable {
            connector,
            connection,
            secrets,
            read_at,
        } = self.usable(at, fetched).await?;
        let url = target_url(
            request.origin.as_deref(),
            &connector.info.manifest.allowed_hosts,
            &request.path,
            request.query.as_deref(),
        )?;
        let attempt = Attempt {
            method: request.method,
            url,
            headers: request.headers,
            max_response_bytes: request.max_response_bytes,
        };
        // Only a request without a body can be sent again.
        let replayable = request.body.is_none() && idempotent(&attempt.method);
        let oauth = connection.auth_type == AuthKind::OAuth.to_string();
        let mut policy = RetryPolicy::new(std::time::Instant::now() + PROXY_TIMEOUT);
        let mut response = self
            .send_passthrough(
                &connector,
                &connection,
                secrets.clone(),
                &attempt,
                request.body,
            )
            .await?;
        while replayable && let Some(wait) = policy.delay(response.status, &retry_after(&response))
        {
            tracing::info!(connection = %at.id, status = response.status, ?wait, "the provider asked to retry (pass-through)");
            drain(response).await;
            tokio::time::sleep(wait).await;
            response = self
                .send_passthrough(&connector, &connection, secrets.clone(), &attempt, None)
                .await?;
        }
        if response.status != 401 || !oauth {
            return Ok(response);
        }
        let route = "the pass-through proxy";
        let Some(refreshed) = self
            .refreshed_after_401(at, &connector, &connection, read_at, route)
            .await?
        else {
            return Ok(response);
        };
        if !replayable {
            return Ok(response);
        }
        drain(response).await;
        let secrets = self.connections.secrets(&refreshed).await?;
        self.send_passthrough(&connector, &refreshed, secrets, &attempt, None)
            .await
    }

    /// Sends one attempt with `connection`'s credential injected.
    async fn send_passthrough(
        &self,
        connector: &LoadedConnector,
        connection: &Connection,
        secrets: ConnectionSecrets,
        attempt: &Attempt,
        body: Option<(ByteStream, Option<u64>)>,
    ) -> Result<StreamedResponse, FlowError> {
        let ctx = self
            .calls
            .context_with(connector, connection, secrets)
            .await?;
        let credential = if connection.auth_type == AuthKind::OAuth.to_string() {
            Credential::AccessToken
        } else {
            Credential::ApiKey
        };
        let mut http = connector.prepared.host_http(&ctx, PROXY_TIMEOUT);
        http.send_streamed(StreamedRequest {
            method: attempt.method.clone(),
            url: attempt.url.clone(),
            headers: attempt.headers.clone(),
            body,
            credential,
            max_response_bytes: attempt.max_response_bytes,
        })
        .await
        .map_err(|error| match error {
            HttpError::Timeout | HttpError::Connection(_) | HttpError::ResponseTooLarge(_) => {
                FlowError::Provider(format!("{error:?}"))
            }
            other => FlowError::field_error("url", format!("refused: {other:?}")),
        })
    }
}

/// Reads and drops the body of an answer that is not passed on (so that
/// its audit event says `sent` and the connection can be reused).
async fn drain(response: StreamedResponse) {
    let mut body = response.body;
    while let Some(Ok(_)) = body.next().await {}
}

/// The `Retry-After` of an answer, as the retry policy reads headers.
fn retry_after(response: &StreamedResponse) -> Vec<(String, String)> {
    response
        .headers
        .get_all(reqwest::header::RETRY_AFTER)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .map(|value| ("retry-after".to_string(), value.to_string()))
        .collect()
}

/// Methods a request without a body may be sent again with (RFC 9110 §9.2.2).
fn idempotent(method: &reqwest::Method) -> bool {
    use reqwest::Method;
    [
        Method::GET,
        Method::HEAD,
        Method::OPTIONS,
        Method::PUT,
        Method::DELETE,
    ]
    .contains(method)
}

/// The methods the host forwards.
fn check_method(method: &reqwest::Method) -> Result<(), FlowError> {
    use reqwest::Method;
    let allowed = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    if allowed.contains(method) {
        return Ok(());
    }
    Err(FlowError::field_error(
        "method",
        format!("`{method}` is not one of GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
    ))
}

/// The URL a pass-through request goes to: `origin` (or the connector's only
/// exact allowed origin) with `path` and `query` appended. The path may not
/// leave the origin or climb out of the root, whatever its encoding. The
/// result still goes through the connector's origin policy when sent.
pub(crate) fn target_url(
    origin: Option<&str>,
    allowed_hosts: &[String],
    path: &str,
    query: Option<&str>,
) -> Result<String, FlowError> {
    let origin_error = |message: String| FlowError::field_error("connector-host-origin", message);
    let origin = match origin {
        Some(named) => exact_origin(named).map_err(origin_error)?,
        None => match allowed_hosts {
            [only] => exact_origin(only).map_err(|_| {
                origin_error(format!(
                    "the connector's allowed host `{only}` is not one exact origin: name the origin in the `connector-host-origin` header"
                ))
            })?,
            _ => {
                return Err(origin_error(
                    "the connector allows several hosts: name the origin in the `connector-host-origin` header".into(),
                ));
            }
        },
    };
    confine(path)?;
    let mut url = url::Url::parse(&origin).map_err(|e| origin_error(e.to_string()))?;
    url.set_path(&format!("/{path}"));
    url.set_query(query);
    // What was built must still be that origin and that path.
    if url.origin().ascii_serialization() != origin || url.path() != format!("/{path}") {
        return Err(FlowError::field_error(
            "path",
            "the path does not stay under the origin".to_string(),
        ));
    }
    Ok(url.to_string())
}

/// `text` as a serialised origin, if it is exactly one: `scheme://host[:port]`,
/// no wildcard, no `:*`, no path, user or query.
fn exact_origin(text: &str) -> Result<String, String> {
    let parsed = AllowedOrigin::parse(text.trim_end_matches('/'))?;
    if parsed.wildcard || parsed.port.is_none() {
        return Err(format!("`{text}` is a pattern, not one origin"));
    }
    let url = url::Url::parse(text).map_err(|e| e.to_string())?;
    Ok(url.origin().ascii_serialization())
}

/// Refuses a path that could leave the origin's root or be read differently
/// by the provider: empty segments (`//`), `.` and `..` in any encoding,
/// `\`, control characters, and encoded `/` or `\` inside a segment.
fn confine(path: &str) -> Result<(), FlowError> {
    let refuse = |why: &str| FlowError::field_error("path", format!("refused: {why}"));
    if path.is_empty() {
        return Err(refuse("the path is empty"));
    }
    for segment in path.split('/') {
        if segment.is_empty() {
            return Err(refuse("an empty segment (`//`)"));
        }
        if segment.contains('\\') {
            return Err(refuse("a backslash"));
        }
        let decoded = percent_decoded(segment).ok_or_else(|| refuse("a bad percent-encoding"))?;
        if decoded.iter().any(|&b| b < 0x20 || b == 0x7f) {
            return Err(refuse("a control character"));
        }
        if decoded.contains(&b'/') || decoded.contains(&b'\\') {
            return Err(refuse("an encoded `/` or `\\`"));
        }
        if decoded.iter().all(|&b| b == b'.') {
            return Err(refuse("a `.` or `..` segment"));
        }
    }
    Ok(())
}

/// `text` with `%XX` decoded; `None` for a `%` not followed by two hex digits.
fn percent_decoded(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(origin: Option<&str>, path: &str, query: Option<&str>) -> Result<String, String> {
        target_url(
            origin,
            &["https://api.example.com".to_string()],
            path,
            query,
        )
        .map_err(|e| e.to_string())
    }

    #[test]
    fn the_path_and_query_go_under_the_origin() {
        assert_eq!(
            url(None, "v1/me", Some("a=1&b=%20x")).unwrap(),
            "https://api.example.com/v1/me?a=1&b=%20x"
        );
        assert_eq!(
            url(
                Some("https://eu.example.com:8443"),
                "v1/contacts/%40x",
                None
            )
            .unwrap(),
            "https://eu.example.com:8443/v1/contacts/%40x"
        );
        assert_eq!(
            url(None, "@evil.example/x", None).unwrap(),
            "https://api.example.com/@evil.example/x",
            "`@` in a path is a path"
        );
    }

    #[test]
    fn paths_that_could_leave_the_origin_are_refused() {
        for path in [
            "",
            "..",
            "v1/../admin",
            "v1/./x",
            "%2e%2e/admin",
            "%2E./admin",
            ".%2e/admin",
            "v1/%2e",
            "/evil.example/x",
            "v1//x",
            "http://evil.example/x",
            "https:%2F%2Fevil.example",
            "v1%2F..%2Fadmin",
            "v1%5C..%5Cadmin",
            "v1\\..\\admin",
            "v1/%00",
            "v1/%0d%0aX-Injected:1",
            "v1/%zz",
            "v1/%2",
        ] {
            assert!(url(None, path, None).is_err(), "{path:?} was accepted");
        }
    }

    #[test]
    fn the_origin_is_named_or_the_connectors_only_exact_one() {
        for bad in [
            "https://*.example.com",
            "http://127.0.0.1:*",
            "https://api.example.com/v1",
            "https://user@api.example.com",
            "ftp://api.example.com",
            "api.example.com",
        ] {
            assert!(url(Some(bad), "x", None).is_err(), "{bad}");
        }
        let several = [
            "https://a.example.com".to_string(),
            "https://b.example.com".to_string(),
        ];
        assert!(target_url(None, &several, "x", None).is_err());
        let wildcard = ["https://*.example.com".to_string()];
        assert!(target_url(None, &wildcard, "x", None).is_err());
    }
}
