//! TLS to PostgreSQL. A fake PostgreSQL server records every byte the host
//! sends it: with `sslmode=require` the host sends the 8-byte TLS request and
//! nothing else when the server declines TLS, while with `sslmode=disable`
//! (and with `prefer`, the default) the user and database names cross in
//! clear, which shows the fake server would see a leak. A PostgreSQL URL off
//! this machine without TLS is refused before any connection is attempted,
//! unless the operator opts in (`database_allow_plaintext_remote`).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::process::{Output, Stdio};
use std::time::Duration;

use connector_server::store::tls::{self, OPT_IN_ENV, PlaintextRemote, Transport};
use connector_server::store::{Database, crypto::Keyring};
use connector_test_support::databases::POSTGRES_ENV;
use sqlx::Connection;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const BIN: &str = env!("CARGO_BIN_EXE_connector-host-under-test");

/// PostgreSQL's SSLRequest: length 8, code 80877103.
const SSL_REQUEST: [u8; 8] = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
/// What must never cross in clear when TLS was asked for.
const USER: &str = "alice-in-clear";
const DATABASE: &str = "secretdb-in-clear";
const PASSWORD: &str = "hunter2-secret";

/// Fails a test that hangs instead of letting it block the run; never used
/// to wait for something to happen.
async fn within<T>(test: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(120), test)
        .await
        .expect("the test finished within its hang guard")
}

/// An untagged message (SSLRequest or startup) at the start of `bytes`,
/// once all of it has arrived.
fn untagged_message(bytes: &[u8]) -> Option<&[u8]> {
    let length = u32::from_be_bytes(bytes.get(..4)?.try_into().ok()?) as usize;
    bytes.get(..length.max(8))
}

/// A FATAL `ErrorResponse` (28000, invalid authorization): the fake server
/// lets nobody in.
fn fatal_error() -> Vec<u8> {
    let mut fields = Vec::new();
    for (code, value) in [
        (b'S', "FATAL"),
        (b'V', "FATAL"),
        (b'C', "28000"),
        (b'M', "fake server: nobody gets in"),
    ] {
        fields.push(code);
        fields.extend_from_slice(value.as_bytes());
        fields.push(0);
    }
    fields.push(0);
    let mut message = vec![b'E'];
    message.extend_from_slice(&(fields.len() as u32 + 4).to_be_bytes());
    message.extend(fields);
    message
}

/// Serves one connection as a PostgreSQL server that has no TLS: answers an
/// SSLRequest with `N`, a startup message with a FATAL error, and returns
/// every byte the client sent once the client hangs up.
async fn fake_postgres_session(mut socket: TcpStream) -> Vec<u8> {
    let mut received = Vec::new();
    let mut answered = 0;
    let mut started = false;
    let mut buffer = [0u8; 4096];
    loop {
        let read = socket.read(&mut buffer).await.unwrap_or(0);
        if read == 0 {
            return received;
        }
        received.extend_from_slice(&buffer[..read]);
        while !started && let Some(message) = untagged_message(&received[answered..]) {
            answered += message.len();
            let answer = if message == SSL_REQUEST {
                b"N".to_vec()
            } else {
                started = true;
                fatal_error()
            };
            // The client may already have hung up; what it sent is recorded.
            let _ = socket.write_all(&answer).await;
        }
    }
}

/// `Database::connect` to the fake server on loopback with `sslmode`
/// (none: the default); the connect error and every byte the server received.
async fn connect_to_fake(sslmode: Option<&str>) -> (String, Vec<u8>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let query = sslmode.map(|m| format!("?sslmode={m}")).unwrap_or_default();
    let url = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}{query}");
    let client = tokio::spawn(async move { Database::connect(&url).await });
    let (socket, _) = listener.accept().await.unwrap();
    let received = fake_postgres_session(socket).await;
    let error = client
        .await
        .unwrap()
        .expect_err("the fake server lets nobody in");
    (format!("{error:#}"), received)
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}

#[tokio::test]
async fn a_tls_url_sends_no_cleartext_startup_when_the_server_declines_tls() {
    within(async {
        for mode in ["require", "verify-ca", "verify-full"] {
            let (error, received) = connect_to_fake(Some(mode)).await;
            assert_eq!(
                received, SSL_REQUEST,
                "sslmode={mode}: only the TLS request may cross in clear"
            );
            assert!(!contains(&received, USER) && !contains(&received, DATABASE));
            assert!(error.contains("TLS"), "sslmode={mode}: {error}");
            assert!(!error.contains(PASSWORD), "{error}");
        }
    })
    .await;
}

#[tokio::test]
async fn without_tls_the_fake_server_sees_the_startup_in_clear() {
    within(async {
        // The test can see a leak: `disable` sends the startup message at once.
        let (error, received) = connect_to_fake(Some("disable")).await;
        assert_eq!(&received[4..8], &196_608u32.to_be_bytes(), "protocol 3.0");
        assert!(contains(&received, USER), "the user name in clear");
        assert!(contains(&received, DATABASE), "the database name in clear");
        assert!(error.contains("nobody gets in"), "{error}");
        // `prefer`, the default, asks for TLS, takes the "no" (which an
        // attacker can send as well) and goes on in clear: why it counts as
        // cleartext for a remote server.
        let (_, received) = connect_to_fake(None).await;
        assert_eq!(received[..8], SSL_REQUEST);
        assert!(contains(&received[8..], USER), "prefer falls back to clear");
    })
    .await;
}

#[tokio::test]
async fn a_remote_url_without_tls_is_refused_before_connecting() {
    within(async {
        // TEST-NET-3: never contacted, the refusal comes first.
        for query in ["", "?sslmode=prefer", "?sslmode=allow", "?sslmode=disable"] {
            let url = format!("postgres://{USER}:{PASSWORD}@203.0.113.7:5432/{DATABASE}{query}");
            let error = format!("{:#}", Database::connect(&url).await.unwrap_err());
            for part in [
                "refusing to connect to PostgreSQL host `203.0.113.7` without TLS",
                "sslmode is",
                "in clear",
                "forge replies",
                "API-key lookup",
                "sslmode=verify-full",
                "database_allow_plaintext_remote = true",
            ] {
                assert!(error.contains(part), "`{part}` missing from: {error}");
            }
            assert!(!error.contains(PASSWORD), "{error}");
            // The opt-in lets the policy through (connecting is then up to the network).
            let verdict = tls::check(&url, PlaintextRemote::Allow).unwrap();
            assert_eq!(verdict.transport, Transport::PlaintextAllowed);
        }
        // With TLS asked for, the policy has nothing to refuse.
        let url = format!("postgres://{USER}@203.0.113.7/{DATABASE}?sslmode=verify-full");
        let verdict = tls::check(&url, PlaintextRemote::Refuse).unwrap();
        assert_eq!(verdict.transport, Transport::Verified);
    })
    .await;
}

/// `url` with `sslmode=<mode>` added.
fn with_sslmode(url: &str, mode: &str) -> String {
    let mut url = url::Url::parse(url).unwrap();
    url.query_pairs_mut().append_pair("sslmode", mode);
    url.to_string()
}

#[tokio::test]
async fn a_real_postgresql_that_offers_tls_is_reached_over_tls() {
    let Ok(url) = std::env::var(POSTGRES_ENV) else {
        eprintln!("{POSTGRES_ENV} not set: PostgreSQL part not run");
        return;
    };
    within(async {
        let mut plain = sqlx::PgConnection::connect(&url).await.unwrap();
        let offered: String = sqlx::query_scalar("SHOW ssl")
            .fetch_one(&mut plain)
            .await
            .unwrap();
        if offered != "on" {
            eprintln!("the PostgreSQL at {POSTGRES_ENV} has ssl = {offered}: TLS part not run");
            return;
        }
        let url = with_sslmode(&url, "require");
        Database::connect(&url)
            .await
            .expect("connected and migrated over TLS");
        let mut connection = sqlx::PgConnection::connect(&url).await.unwrap();
        let encrypted: bool =
            sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
                .fetch_one(&mut connection)
                .await
                .unwrap();
        assert!(encrypted, "sslmode=require gives an encrypted session");
    })
    .await;
}

/// This machine's address towards TEST-NET-3 (no packet is sent), when it is
/// not a loopback address: a "remote" host that still reaches a local listener.
fn own_non_loopback_address() -> Option<IpAddr> {
    let socket = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("203.0.113.7:9").ok()?;
    let ip = socket.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

/// Runs the `connector-host` program to completion.
async fn run_cli(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(args)
        .env_remove(OPT_IN_ENV)
        .env_remove("CONNECTOR_HOST_DATABASE_URL")
        .env_remove("CONNECTOR_HOST_CONFIG")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (name, value) in envs {
        command.env(name, value);
    }
    command.output().await.expect("run connector-host")
}

/// Runs the program while the fake server serves its one connection; the
/// program's stderr and the bytes the server received.
async fn run_cli_against(
    listener: &TcpListener,
    args: &[&str],
    envs: &[(&str, &str)],
) -> (String, Vec<u8>) {
    let session = async {
        let (socket, _) = listener.accept().await.unwrap();
        fake_postgres_session(socket).await
    };
    let (output, received) = tokio::join!(run_cli(args, envs), session);
    assert!(!output.status.success(), "the fake server lets nobody in");
    (
        String::from_utf8_lossy(&output.stderr).into_owned(),
        received,
    )
}

/// The next connection `listener` accepts is a fresh one of the test's own:
/// nothing connected before it.
async fn assert_nothing_connected(listener: &TcpListener) {
    let probe = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (_, peer) = listener.accept().await.unwrap();
    assert_eq!(peer, probe.local_addr().unwrap(), "an earlier connection");
}

#[tokio::test]
async fn the_program_refuses_a_remote_plaintext_url_unless_the_operator_opts_in() {
    let Some(ip) = own_non_loopback_address() else {
        eprintln!("no non-loopback address on this machine: test not run");
        return;
    };
    within(async {
        let listener = TcpListener::bind(SocketAddr::new(ip, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = format!("postgres://{USER}:{PASSWORD}@{ip}:{port}/{DATABASE}?sslmode=disable");
        let list = ["api-keys", "list", "--database-url", &url];

        // Refused, and the server never saw a connection.
        let output = run_cli(&list, &[]).await;
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success());
        assert!(stderr.contains("refusing to connect"), "{stderr}");
        assert!(stderr.contains(OPT_IN_ENV), "{stderr}");
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        assert_nothing_connected(&listener).await;

        // The environment variable opts in: a warning, and the startup in clear.
        let (stderr, received) = run_cli_against(&listener, &list, &[(OPT_IN_ENV, "true")]).await;
        assert!(
            stderr.contains("because database_allow_plaintext_remote is set"),
            "{stderr}"
        );
        assert!(!stderr.contains(PASSWORD), "{stderr}");
        assert!(contains(&received, USER));

        // So does the config key, for `serve`.
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("host.toml");
        std::fs::write(
            &config,
            format!("database_url = \"{url}\"\ndatabase_allow_plaintext_remote = true\n"),
        )
        .unwrap();
        let plugins = dir.path().join("plugins");
        let keys = Keyring::generate_entry("t1");
        let serve = [
            "serve",
            "--config",
            config.to_str().unwrap(),
            "--plugins-dir",
            plugins.to_str().unwrap(),
        ];
        let (stderr, received) =
            run_cli_against(&listener, &serve, &[("CONNECTOR_HOST_MASTER_KEYS", &keys)]).await;
        assert!(
            stderr.contains("because database_allow_plaintext_remote is set"),
            "{stderr}"
        );
        assert!(contains(&received, USER));
    })
    .await;
}
