//! Flows for local tools (the authoring commands `oauth2` and `dev`), never
//! reachable from the HTTP API: an OAuth start whose redirect URI is a
//! loopback callback of the tool instead of the one the connector's
//! `oauth-info` returns.
//!
//! Everything else is the ordinary flow: the same authorize URL, state, PKCE,
//! and at the callback the same checks, code exchange and `user-info` call
//! ([`Flows::oauth_callback`]). The token request uses the redirect URI the
//! authorize request used, which is the overridden one.

use base64::Engine as _;
use rand::RngCore as _;

use super::{FlowError, Flows, OAuthStart, OAuthStarted};

impl Flows {
    /// [`Flows::oauth_start`], with `redirect_uri` sent to the provider (and
    /// used for the code exchange) instead of the connector's. For local
    /// tools only: `redirect_uri` must be an `http` URL on a loopback address
    /// (`127.0.0.1`, `[::1]` or `localhost`), so this cannot send a user's
    /// code anywhere else.
    pub async fn oauth_start_with_local_redirect(
        &self,
        connector_id: &str,
        start: OAuthStart,
        redirect_uri: &str,
    ) -> Result<OAuthStarted, FlowError> {
        if !is_local_http(redirect_uri) {
            return Err(FlowError::field_error(
                "redirect_uri",
                "a local redirect URI must be http://127.0.0.1, http://[::1] or http://localhost",
            ));
        }
        let started = self.oauth_start(connector_id, start).await?;
        // Re-issue the pending authorization under a fresh state with the
        // local redirect URI; the original state is spent.
        let mut pending = self
            .states
            .take(&started.state)
            .await
            .map_err(|e| FlowError::State(e.to_string()))?;
        pending.redirect_uri = redirect_uri.to_string();
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let state = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let expires_at = self
            .states
            .create(&state, &pending)
            .await
            .map_err(|e| FlowError::Storage(e.into()))?;
        let mut url = url::Url::parse(&started.authorize_url)
            .map_err(|e| FlowError::Connector(e.to_string()))?;
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| match k.as_ref() {
                "redirect_uri" => (k.into_owned(), redirect_uri.to_string()),
                "state" => (k.into_owned(), state.clone()),
                _ => (k.into_owned(), v.into_owned()),
            })
            .collect();
        url.query_pairs_mut().clear().extend_pairs(pairs);
        Ok(OAuthStarted {
            authorize_url: url.to_string(),
            state,
            expires_at,
        })
    }
}

/// `http://` on `127.0.0.0/8`, `[::1]` or `localhost`.
fn is_local_http(uri: &str) -> bool {
    let Ok(parsed) = url::Url::parse(uri) else {
        return false;
    };
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => false,
    };
    parsed.scheme() == "http" && loopback && parsed.username().is_empty()
}

#[cfg(test)]
mod tests {
    use super::is_local_http;

    #[test]
    fn only_loopback_http_redirects_are_local() {
        for ok in [
            "http://127.0.0.1:9002/callback",
            "http://localhost:9002/callback",
            "http://[::1]:9002/callback",
        ] {
            assert!(is_local_http(ok), "{ok}");
        }
        for bad in [
            "https://127.0.0.1/callback",
            "http://apps.example.com/callback",
            "http://127.0.0.1.example.com/callback",
            "http://localhost.example.com/callback",
            "http://user@127.0.0.1/callback",
            "http://10.0.0.1/callback",
            "not a url",
        ] {
            assert!(!is_local_http(bad), "{bad}");
        }
    }
}
