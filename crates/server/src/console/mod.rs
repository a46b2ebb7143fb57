//! The web console: the connect pages an end user logs in through, reached
//! with a connect session a platform's backend creates ([`connect`]); the
//! login form rendered from a connector's manifest ([`form`]); the HTML
//! templates ([`templates`]). No HTTP here: the handlers are in
//! `crate::api::console`.

pub mod admin;
pub mod connect;
pub mod form;
pub mod templates;

use serde::Deserialize;

use crate::store::console_overview::ConsoleOverview;
use crate::store::{ConnectSessionStore, ConsoleSessionStore, Database};

/// Shortest connect or console session.
pub const MIN_SESSION_SECS: u64 = 60;
/// Longest connect or console session (one day).
pub const MAX_SESSION_SECS: u64 = 86_400;

/// `[console]` of the configuration file.
///
/// ```toml
/// [console]
/// public_url = "https://connect.example.com"  # where browsers reach the host
/// connect_session_secs = 1800                 # lifetime of a connect link
/// operator_session_secs = 3600                # lifetime of an operator's or admin's console login
/// ```
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleSettings {
    /// The URL browsers reach this host at (scheme, host, port; no path). The
    /// connect links and the OAuth redirect URI of the connect pages
    /// (`{public_url}/connect/oauth/callback`, to register at the provider)
    /// are built from it. When absent, the host's own listen address is used
    /// as `http://{Host header}` (fit for local use only).
    pub public_url: Option<String>,
    /// How long a connect session may be used, in seconds (60 to 86400).
    pub connect_session_secs: u64,
    /// How long an operator's or account admin's console session lasts, in
    /// seconds (60 to 86400).
    pub operator_session_secs: u64,
    /// `serve --dev` only (never from the file): `/connect/demo` starts a
    /// demo login for user `me` of account `demo` without an API key.
    #[serde(skip)]
    pub dev_demo: bool,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        Self {
            public_url: None,
            connect_session_secs: 1800,
            operator_session_secs: 3600,
            dev_demo: false,
        }
    }
}

impl ConsoleSettings {
    /// Checks the settings; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_SESSION_SECS..=MAX_SESSION_SECS).contains(&self.connect_session_secs) {
            return Err(format!(
                "console.connect_session_secs: must be between {MIN_SESSION_SECS} and {MAX_SESSION_SECS}, got {}",
                self.connect_session_secs
            ));
        }
        if !(MIN_SESSION_SECS..=MAX_SESSION_SECS).contains(&self.operator_session_secs) {
            return Err(format!(
                "console.operator_session_secs: must be between {MIN_SESSION_SECS} and {MAX_SESSION_SECS}, got {}",
                self.operator_session_secs
            ));
        }
        if let Some(url) = &self.public_url {
            check_public_url(url).map_err(|why| format!("console.public_url: {why}"))?;
        }
        Ok(())
    }
}

/// An absolute `http(s)` URL with a host, and nothing after the authority.
fn check_public_url(value: &str) -> Result<(), String> {
    let url =
        url::Url::parse(value).map_err(|e| format!("`{value}` is not an absolute URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(format!(
            "`{value}` must be an http or https URL with a host"
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "`{value}` must be only scheme, host and port (no path, query or fragment)"
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!("`{value}` must not contain userinfo"));
    }
    Ok(())
}

/// The console's settings and stores.
#[derive(Clone, Debug)]
pub struct Console {
    /// Its settings.
    pub settings: ConsoleSettings,
    /// Connect sessions.
    pub connect_sessions: ConnectSessionStore,
    /// Console sessions of operators and account admins.
    pub operator_sessions: ConsoleSessionStore,
    /// What the operator's and admin's pages list and count.
    pub overview: ConsoleOverview,
}

impl Console {
    /// The console over `database` with `settings`.
    pub fn new(database: Database, settings: ConsoleSettings) -> Self {
        Self {
            settings,
            connect_sessions: ConnectSessionStore::new(database.clone()),
            operator_sessions: ConsoleSessionStore::new(database.clone()),
            overview: ConsoleOverview::new(database),
        }
    }

    /// The base URL of the pages: the configured public URL, else
    /// `http://{host}` of the request (without a trailing `/`).
    pub fn base_url(&self, request_host: Option<&str>) -> String {
        match &self.settings.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", request_host.unwrap_or("127.0.0.1")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_name_the_key_they_refuse() {
        let short = ConsoleSettings {
            connect_session_secs: 5,
            ..ConsoleSettings::default()
        };
        assert!(
            short
                .validate()
                .unwrap_err()
                .contains("console.connect_session_secs")
        );
        for bad in [
            "ftp://x.example",
            "https://x.example/path",
            "https://u:p@x.example",
            "nope",
        ] {
            let settings = ConsoleSettings {
                public_url: Some(bad.into()),
                ..ConsoleSettings::default()
            };
            let error = settings.validate().unwrap_err();
            assert!(error.starts_with("console.public_url:"), "{bad}: {error}");
        }
        let good = ConsoleSettings {
            public_url: Some("https://connect.example.com".into()),
            ..ConsoleSettings::default()
        };
        assert_eq!(good.validate(), Ok(()));
    }
}
