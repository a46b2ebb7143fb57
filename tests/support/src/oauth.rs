//! The OAuth login dance: start a login at the host, have the provider
//! approve it (what the user's browser does; the provider answers with a
//! redirect), and hand that redirect's query to the host's callback.
//!
//! [`login`] and [`complete`] dance with an in-process [`Host`] (through its
//! `approve`); [`Dance`] does it over plain HTTP with a host in another
//! process.

use anyhow::{Context, anyhow, bail};
use serde_json::{Value, json};

use crate::harness::Host;

/// Has the provider approve a started login and hands its redirect to the
/// host's callback; the callback's status and body.
pub async fn complete(host: &Host, started: &Value) -> (u16, Value) {
    let callback = host.approve(started).await;
    host.get(&format!("/v1/oauth/callback?{callback}")).await
}

/// Logs `user` of `account` in through `local-regional` at the provider's
/// own hostname; asserts the start and the callback answer `200` and returns
/// the new connection's id.
pub async fn login(host: &Host, account: &str, user: &str) -> String {
    let start = json!({"accountId": account, "userId": user, "hostname": host.provider_host()});
    let (status, started) = host
        .post("/v1/connectors/local-regional/oauth/start", start)
        .await;
    assert_eq!(status, 200, "{started}");
    let (status, connected) = complete(host, &started).await;
    assert_eq!(status, 200, "{connected}");
    connected["connection"]["id"].as_str().unwrap().to_string()
}

/// `GET url` with the API key `key`; the JSON answer, whatever the status
/// (e.g. a connection's raw tokens from its `/credentials` route, for a key
/// allowed them).
pub async fn get_json(http: &reqwest::Client, url: &str, key: &str) -> Value {
    http.get(url)
        .bearer_auth(key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The dance over HTTP, with a host in another process. Each step fails
/// (rather than panics) on a transport error or an unexpected answer, so a
/// benchmark can count failures.
pub struct Dance<'a> {
    /// A client that does not follow redirects.
    pub http: &'a reqwest::Client,
    /// The provider's base URL.
    pub provider: &'a str,
    /// The API key sent to the host.
    pub key: &'a str,
}

impl Dance<'_> {
    /// `POST {host}/v1/connectors/{connector}/oauth/start` with `body`; the
    /// host's answer (with its `authorizeUrl`).
    pub async fn start(&self, host: &str, connector: &str, body: &Value) -> anyhow::Result<Value> {
        let response = self
            .http
            .post(format!("{host}/v1/connectors/{connector}/oauth/start"))
            .bearer_auth(self.key)
            .json(body)
            .send()
            .await?;
        let status = response.status();
        let started: Value = response.json().await?;
        if !status.is_success() {
            bail!("oauth/start answered {status}: {started}");
        }
        Ok(started)
    }

    /// Sends the started login's authorization request to the provider
    /// (whatever host the authorize URL names); the query of its redirect
    /// back.
    pub async fn approve(&self, started: &Value) -> anyhow::Result<String> {
        let authorize = started["authorizeUrl"]
            .as_str()
            .ok_or_else(|| anyhow!("no authorizeUrl in {started}"))?;
        let authorize = url::Url::parse(authorize)?;
        let at_provider = format!(
            "{}/oauth/authorize?{}",
            self.provider,
            authorize.query().unwrap_or("")
        );
        let redirect = self.http.get(at_provider).send().await?;
        let location = redirect
            .headers()
            .get("location")
            .context("the provider answered no redirect")?
            .to_str()?;
        Ok(url::Url::parse(location)?.query().unwrap_or("").to_string())
    }

    /// `GET {host}/v1/oauth/callback?{query}`; the host's answer (with the
    /// new `connection`).
    pub async fn callback(&self, host: &str, query: &str) -> anyhow::Result<Value> {
        let response = self
            .http
            .get(format!("{host}/v1/oauth/callback?{query}"))
            .bearer_auth(self.key)
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            bail!(
                "oauth/callback answered {status}: {}",
                response.text().await?
            );
        }
        Ok(response.json().await?)
    }

    /// The whole dance at one host; the callback's answer.
    pub async fn login(&self, host: &str, connector: &str, body: &Value) -> anyhow::Result<Value> {
        let started = self.start(host, connector, body).await?;
        let query = self.approve(&started).await?;
        self.callback(host, &query).await
    }
}
