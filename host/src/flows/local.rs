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
        let parsed = url::Url::parse(redirect_uri)
            .map_err(|e| FlowError::field_error("redirect_uri", e.to_string()))?;
        let loopback = match parsed.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => false,
        };
        if parsed.scheme() != "http" || !loopback {
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
