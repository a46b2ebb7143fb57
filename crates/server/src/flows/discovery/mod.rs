//! OAuth discovery (`auth.oauth.discoveryUrl`): the host reads the
//! authorization server's metadata (RFC 8414, OpenID Connect Discovery) and
//! fills in what the connector leaves out.
//!
//! Precedence, per value (the first that is set wins):
//!
//! | value | order |
//! |---|---|
//! | token endpoint | `overriding-oauth-option`/`refresh` `token-url` → managed application `tokenUrl` → `oauth-info` `access-token-uri` (when not empty) → `token_endpoint` |
//! | authorize endpoint | managed application `authorizationUrl` → `oauth-info` `authorization-uri` → manifest `authUrl` → `authorization_endpoint` |
//! | revocation endpoint | manifest `revocationEndpoint` → `revocation_endpoint` |
//! | issuer (`iss` check) | managed application `issuer` → manifest `issuer` → the document's `issuer` |
//! | client authentication | hook `client-auth-location` → manifest `clientAuthLocation` → one method from `token_endpoint_auth_methods_supported` (Basic preferred) → Basic |
//! | PKCE | S256 unless `skipPkce`; a document listing `code_challenge_methods_supported` without `S256` is refused |
//!
//! The document must name the issuer its URL was formed from, and the
//! declared issuer when there is one (RFC 8414 §3.3). It is read like every
//! request the host makes for a connector: the URL through the connector's
//! outbound policy (`Outbound::check_url`: `allowedHosts`, address filter,
//! `https` unless `require_https` is off), the host's checking client (DNS
//! filter, no redirects), [`HOST_REQUEST_TIMEOUT`], at most
//! [`MAX_DOCUMENT_BYTES`], recorded in the audit log. The endpoints it names
//! must pass the same policy. It is cached per connector version and URL
//! ([`cache`]).

mod cache;
mod document;

use std::sync::Arc;
use std::time::Instant;

use connector_abi::manifest::{HOSTNAME_PLACEHOLDER, is_hostname, issuer_of_discovery_url};
use connector_sandbox::capabilities::http::{AuditEvent, AuditOutcome, Outbound};
use reqwest::header::ACCEPT;

use super::token_endpoint::HOST_REQUEST_TIMEOUT;
use crate::registry::LoadedConnector;
use cache::DocumentCache;

pub(crate) use document::{Discovered, DiscoveryError, MAX_DOCUMENT_BYTES};

/// The credential kind the audit log records for a discovery request.
const AUDIT_LABEL: &str = "none (OAuth discovery)";

/// Reads and caches connectors' discovery documents.
#[derive(Clone, Default)]
pub(crate) struct Discovery {
    cache: Arc<DocumentCache>,
}

impl Discovery {
    /// The document of `connector` for a login or connection of `account_id`
    /// with `hostname` (for `{hostname}` in the URL); `None` when the
    /// connector declares no `discoveryUrl`. `declared_issuer` (the managed
    /// application's or the manifest's) must be the document's issuer.
    pub(crate) async fn document(
        &self,
        outbound: &Outbound,
        connector: &LoadedConnector,
        account_id: &str,
        hostname: Option<&str>,
        declared_issuer: Option<&str>,
    ) -> Result<Option<Arc<Discovered>>, DiscoveryError> {
        let manifest = &connector.info.manifest;
        let Some(template) = manifest
            .auth
            .oauth
            .as_ref()
            .and_then(|o| o.discovery_url.as_deref())
        else {
            return Ok(None);
        };
        let url = resolve(template, hostname)?;
        let key = (manifest.id.clone(), manifest.version.clone(), url.clone());
        let document = self
            .cache
            .get(key, Instant::now(), || {
                fetch(outbound, connector, account_id, url.clone())
            })
            .await?;
        if let Some(declared) = declared_issuer {
            document.check_declared_issuer(declared)?;
        }
        Ok(Some(document))
    }
}

/// The URL with `{hostname}` replaced, when it holds the placeholder; the
/// hostname must then be a host name and nothing else.
fn resolve(template: &str, hostname: Option<&str>) -> Result<String, DiscoveryError> {
    if !template.contains(HOSTNAME_PLACEHOLDER) {
        return Ok(template.to_string());
    }
    match hostname {
        Some(hostname) if is_hostname(hostname) => {
            Ok(template.replace(HOSTNAME_PLACEHOLDER, hostname))
        }
        Some(_) => Err(DiscoveryError::Hostname(
            "the hostname is not a host name".into(),
        )),
        None => Err(DiscoveryError::Hostname(
            "neither the login nor `oauth-info` gave one".into(),
        )),
    }
}

/// Reads and checks the document at `url`: policy, request, status, size,
/// content, and the policy again for every endpoint it names.
async fn fetch(
    outbound: &Outbound,
    connector: &LoadedConnector,
    account_id: &str,
    url: String,
) -> Result<Discovered, DiscoveryError> {
    let expected_issuer = issuer_of_discovery_url(&url).ok_or_else(|| DiscoveryError::Refused {
        url: url.clone(),
        reason: "not a well-known discovery URL".into(),
    })?;
    let policy = connector.prepared.policy();
    let checked = outbound.check_url(policy, &url).map_err(|error| {
        let mut event = AuditEvent::new(
            connector.prepared.connector(),
            Some(account_id.into()),
            "GET",
        );
        event.outcome = AuditOutcome::Refused;
        event.reason = Some(format!("{error:?}"));
        event.credential = Some(AUDIT_LABEL.into());
        event.attempted(&url);
        outbound.audit_host_event(event);
        DiscoveryError::Refused {
            url: url.clone(),
            reason: format!("{error:?}"),
        }
    })?;
    let started = Instant::now();
    let request = outbound
        .client()
        .get(checked.clone())
        .header(ACCEPT, "application/json");
    let answer = tokio::time::timeout(HOST_REQUEST_TIMEOUT, read(request, &url))
        .await
        .unwrap_or_else(|_| {
            Err(DiscoveryError::Unreachable {
                url: url.clone(),
                reason: format!("no answer within {}s", HOST_REQUEST_TIMEOUT.as_secs()),
            })
        });
    audit(outbound, connector, account_id, &checked, started, &answer);
    let (status, body) = answer?;
    if status != 200 {
        return Err(DiscoveryError::Status { url, status });
    }
    let document = document::parse(&url, &body, &expected_issuer)?;
    for (field, endpoint) in document.endpoints() {
        if let Err(error) = outbound.check_url(policy, endpoint) {
            return Err(DiscoveryError::EndpointRefused {
                url: url.clone(),
                field,
                endpoint: endpoint.to_string(),
                reason: format!("{error:?}"),
            });
        }
    }
    tracing::info!(
        connector = %connector.info.manifest.id,
        %url,
        issuer = %document.issuer,
        "read an OAuth discovery document"
    );
    Ok(document)
}

/// Sends the request and reads at most [`MAX_DOCUMENT_BYTES`] of the answer.
async fn read(
    request: reqwest::RequestBuilder,
    url: &str,
) -> Result<(u16, Vec<u8>), DiscoveryError> {
    let unreachable = |error: reqwest::Error| {
        let error = error.without_url();
        let mut reason = error.to_string();
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            reason = format!("{reason}: {cause}");
            source = cause.source();
        }
        DiscoveryError::Unreachable {
            url: url.to_string(),
            reason,
        }
    };
    let mut response = request.send().await.map_err(unreachable)?;
    let status = response.status().as_u16();
    let too_large = || DiscoveryError::TooLarge {
        url: url.to_string(),
    };
    if response
        .content_length()
        .is_some_and(|length| length > MAX_DOCUMENT_BYTES as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(unreachable)? {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok((status, body))
}

/// Records the request in the audit log, like the host's token requests.
fn audit(
    outbound: &Outbound,
    connector: &LoadedConnector,
    account_id: &str,
    url: &url::Url,
    started: Instant,
    answer: &Result<(u16, Vec<u8>), DiscoveryError>,
) {
    let mut event = AuditEvent::new(
        connector.prepared.connector(),
        Some(account_id.into()),
        "GET",
    );
    event.scheme = Some(url.scheme().to_string());
    event.host = url.host_str().map(str::to_string);
    event.port = url.port_or_known_default();
    event.path = Some(url.path().to_string());
    event.duration_us = started.elapsed().as_micros() as u64;
    event.credential = Some(AUDIT_LABEL.into());
    match answer {
        Ok((status, body)) => {
            event.outcome = AuditOutcome::Sent;
            event.status = Some(*status);
            event.response_bytes = body.len() as u64;
        }
        Err(error) => {
            event.outcome = AuditOutcome::Failed;
            event.reason = Some(error.to_string());
        }
    }
    outbound.audit_host_event(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostname_is_substituted_only_when_it_is_one() {
        let template = "https://{hostname}/.well-known/openid-configuration";
        assert_eq!(
            resolve(template, Some("acme.okta.example")).unwrap(),
            "https://acme.okta.example/.well-known/openid-configuration"
        );
        for bad in [Some("evil.example/x?"), Some("a@b"), None] {
            assert!(matches!(
                resolve(template, bad),
                Err(DiscoveryError::Hostname(_))
            ));
        }
        let fixed = "https://sso.example.com/.well-known/openid-configuration";
        assert_eq!(resolve(fixed, None).unwrap(), fixed);
    }
}
