//! How the host reaches PostgreSQL: with TLS (rustls on `ring`, the roots of
//! `webpki-roots` plus the URL's `sslrootcert`) as the URL's `sslmode` asks,
//! and never in cleartext to a server off this machine unless the operator
//! opted in ([`PlaintextRemote::Allow`]).
//!
//! The rule judges the options sqlx itself will use ([`PgConnectOptions`]
//! parsed from the URL, so `PGHOST`, `PGSSLMODE` and `host=`/`hostaddr=`
//! query parameters count) and runs before any connection is attempted:
//!
//! | where the server is | `sslmode` | verdict |
//! |---|---|---|
//! | Unix socket, `localhost`, 127.0.0.0/8, `::1` | any | [`Transport::Local`] |
//! | anywhere else | `verify-full` | [`Transport::Verified`] |
//! | anywhere else | `require`, `verify-ca` | [`Transport::Unauthenticated`] (a warning) |
//! | anywhere else | `disable`, `allow`, `prefer` (the default) | refused, or [`Transport::PlaintextAllowed`] (a warning) with the opt-in |
//!
//! `prefer` counts as cleartext: when the server (or an attacker in its place)
//! answers the TLS request with "no", sqlx goes on without TLS.

use std::net::IpAddr;
use std::str::FromStr;

use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::redacted_url;

/// The config key of the opt-in, named in messages.
pub const OPT_IN_KEY: &str = "database_allow_plaintext_remote";
/// The environment variable of the opt-in, named in messages.
pub const OPT_IN_ENV: &str = "CONNECTOR_HOST_DATABASE_ALLOW_PLAINTEXT_REMOTE";

/// Whether a PostgreSQL server off this machine may be reached without TLS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PlaintextRemote {
    /// Refuse to connect (the default).
    #[default]
    Refuse,
    /// Connect anyway, with a warning at every connect: the operator's
    /// explicit `database_allow_plaintext_remote = true`.
    Allow,
}

impl PlaintextRemote {
    /// [`PlaintextRemote::Allow`] when `allowed`, else [`PlaintextRemote::Refuse`].
    pub fn allowed_if(allowed: bool) -> Self {
        if allowed { Self::Allow } else { Self::Refuse }
    }
}

/// How an accepted connection travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// A Unix socket or a loopback address: the bytes never leave this machine.
    Local,
    /// TLS with the server's certificate and host name verified (`verify-full`).
    Verified,
    /// TLS that does not promise to authenticate the server (`require`
    /// checks no certificate; `verify-ca` need not check the host name, and
    /// its roots include the public web CAs): safe from a passive
    /// eavesdropper, not from an attacker who answers in the server's place.
    Unauthenticated,
    /// Possibly cleartext to a remote server, because the operator opted in.
    PlaintextAllowed,
}

/// What [`check`] found: the transport and the effective `sslmode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    /// How the connection will travel.
    pub transport: Transport,
    /// The `sslmode` sqlx will use, as spelled in a URL.
    pub sslmode: &'static str,
}

impl Verdict {
    /// Logs a warning when the transport is weaker than verified TLS to a
    /// remote server; `url` is shown redacted.
    pub fn warn_if_weak(self, url: &str) {
        let url = redacted_url(url);
        let mode = self.sslmode;
        match self.transport {
            Transport::Local | Transport::Verified => {}
            Transport::Unauthenticated => tracing::warn!(
                %url,
                sslmode = mode,
                "TLS to PostgreSQL without the promise of a verified server: `require` accepts any certificate and `verify-ca` need not check the host name, so an attacker on the path could answer in the server's place and forge replies; use sslmode=verify-full"
            ),
            Transport::PlaintextAllowed => tracing::warn!(
                %url,
                sslmode = mode,
                "connecting to a remote PostgreSQL possibly without TLS because {OPT_IN_KEY} is set: the network path sees the user name, the database name and every column the host does not encrypt in clear, and an attacker on it can read and forge replies"
            ),
        }
    }
}

/// Parses a PostgreSQL URL the way sqlx will and applies the rule: the
/// verdict, or an error that names the setting and what cleartext costs.
pub fn check(url: &str, plaintext: PlaintextRemote) -> anyhow::Result<Verdict> {
    let options = PgConnectOptions::from_str(url)
        .map_err(|e| anyhow::anyhow!("invalid PostgreSQL URL {}: {e}", redacted_url(url)))?;
    let sslmode = mode_name(options.get_ssl_mode());
    match transport(&options, plaintext) {
        Some(transport) => Ok(Verdict { transport, sslmode }),
        None => Err(anyhow::anyhow!(refusal(options.get_host(), sslmode))),
    }
}

/// The rule on parsed options; `None` when the connection must be refused.
pub fn transport(options: &PgConnectOptions, plaintext: PlaintextRemote) -> Option<Transport> {
    if is_local(options) {
        return Some(Transport::Local);
    }
    match (options.get_ssl_mode(), plaintext) {
        (PgSslMode::VerifyFull, _) => Some(Transport::Verified),
        (PgSslMode::Require | PgSslMode::VerifyCa, _) => Some(Transport::Unauthenticated),
        (_, PlaintextRemote::Allow) => Some(Transport::PlaintextAllowed),
        (_, PlaintextRemote::Refuse) => None,
    }
}

/// Whether sqlx will reach the server without leaving this machine: a Unix
/// socket (a `host` that is a path) or a loopback host.
fn is_local(options: &PgConnectOptions) -> bool {
    let host = options.get_host();
    options.get_socket().is_some() || host.starts_with('/') || is_loopback_host(host)
}

/// `localhost`, an address in 127.0.0.0/8, `::1` (bracketed or not), or an
/// IPv4-mapped loopback address. Any other name counts as remote, even one
/// that resolves to loopback.
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case("localhost") || host.eq_ignore_ascii_case("localhost.") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.to_canonical().is_loopback())
}

/// The `sslmode` spelling of a mode, for messages.
fn mode_name(mode: PgSslMode) -> &'static str {
    match mode {
        PgSslMode::Disable => "disable",
        PgSslMode::Allow => "allow",
        PgSslMode::Prefer => "prefer",
        PgSslMode::Require => "require",
        PgSslMode::VerifyCa => "verify-ca",
        PgSslMode::VerifyFull => "verify-full",
    }
}

/// The refusal: which setting, what cleartext would cost, and the two ways
/// out. The caller names the URL (redacted); the host is enough here.
fn refusal(host: &str, mode: &str) -> String {
    format!(
        "refusing to connect to PostgreSQL host `{host}` without TLS: it is not on this machine \
         and sslmode is `{mode}` (`prefer`, the default, falls back to cleartext when the server, \
         or an attacker in its place, declines TLS). In clear, anyone on the network path to the \
         database would see the user name, the database name, the password if the server (or an \
         attacker in its place) asks for it in clear, and every column the host does not encrypt \
         itself (connection user names and ids, audit rows, API-key hashes), and could forge \
         replies, for example answer the API-key lookup with a key of its choosing. Add \
         `sslmode=verify-full` to the URL (with `sslrootcert=FILE` for a private CA) or, only if \
         you trust every hop to the database, set `{OPT_IN_KEY} = true` in the config file \
         ({OPT_IN_ENV}=true or --database-allow-plaintext-remote on the command line)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(url: &str, plaintext: PlaintextRemote) -> Option<Transport> {
        transport(&PgConnectOptions::from_str(url).unwrap(), plaintext)
    }

    #[test]
    fn loopback_and_unix_sockets_need_no_tls() {
        for url in [
            "postgres://postgres@127.0.0.1:5432/test",
            "postgres://u@127.8.9.10/x?sslmode=disable",
            "postgres://u@localhost/x",
            "postgres://u@LOCALHOST/x?sslmode=prefer",
            "postgres://u@[::1]:5432/x",
            "postgres://u@[::ffff:127.0.0.1]/x",
            "postgres://u@%2Fvar%2Frun%2Fpostgresql/x",
            "postgres://u@db.example/x?host=/var/run/postgresql",
        ] {
            assert_eq!(
                verdict(url, PlaintextRemote::Refuse),
                Some(Transport::Local),
                "{url}"
            );
        }
    }

    #[test]
    fn remote_without_tls_is_refused_unless_allowed() {
        for url in [
            "postgres://u@db.example/x",
            "postgres://u@db.example/x?sslmode=prefer",
            "postgres://u@db.example/x?sslmode=allow",
            "postgres://u@10.0.0.5/x?sslmode=disable",
            "postgres://u@[2001:db8::1]/x",
            "postgres://u@localhost.example/x",
            "postgres://u@127.0.0.1.nip.io/x",
            "postgres://u@localhost/x?hostaddr=192.0.2.1",
        ] {
            assert_eq!(verdict(url, PlaintextRemote::Refuse), None, "{url}");
            assert_eq!(
                verdict(url, PlaintextRemote::Allow),
                Some(Transport::PlaintextAllowed),
                "{url}"
            );
        }
    }

    #[test]
    fn remote_with_tls_is_accepted_and_graded() {
        for (mode, expected) in [
            ("require", Transport::Unauthenticated),
            ("verify-ca", Transport::Unauthenticated),
            ("verify-full", Transport::Verified),
        ] {
            let url = format!("postgres://u@db.example/x?sslmode={mode}");
            for plaintext in [PlaintextRemote::Refuse, PlaintextRemote::Allow] {
                assert_eq!(verdict(&url, plaintext), Some(expected), "{url}");
            }
        }
    }

    #[test]
    fn the_refusal_names_the_setting_and_the_cost_but_not_the_password() {
        let url = "postgres://app:hunter2-secret@db.example:5433/hostdb?sslmode=prefer";
        let error = check(url, PlaintextRemote::Refuse).unwrap_err().to_string();
        for part in [
            "db.example",
            "sslmode is `prefer`",
            "in clear",
            "forge replies",
            "API-key lookup",
            "sslmode=verify-full",
            "database_allow_plaintext_remote = true",
            OPT_IN_ENV,
        ] {
            assert!(error.contains(part), "`{part}` missing from: {error}");
        }
        assert!(!error.contains("hunter2"), "{error}");
        assert_eq!(
            check(url, PlaintextRemote::Allow).unwrap(),
            Verdict {
                transport: Transport::PlaintextAllowed,
                sslmode: "prefer"
            }
        );
    }

    #[test]
    fn an_unknown_sslmode_is_an_error_without_the_password() {
        let error = check(
            "postgres://app:hunter2-secret@db.example/x?sslmode=sometimes",
            PlaintextRemote::Allow,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("sometimes"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
