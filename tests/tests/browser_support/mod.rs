//! Headless Chromium for the browser tests, through chromedriver and
//! `fantoccini`: one chromedriver per test binary, started on first use and
//! shared by its tests (each test has a browser session of its own), and
//! killed with the test process. Pages are waited for with bounded
//! deadlines, never with sleeps; each test saves a screenshot of every page
//! it reaches into `target/browser-screenshots/<test>/`.

mod demo_tests;
pub mod host;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use connector_test_support::process::Process;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;

/// How long a page or element may take to appear.
pub const PAGE_TIMEOUT: Duration = Duration::from_secs(30);

/// Where chromedriver and Chromium are looked for, besides `$PATH` and the
/// variables `CHROMEDRIVER` and `CHROMIUM`.
const DRIVER_PATHS: [&str; 2] = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"];
const BROWSER_PATHS: [&str; 3] = [
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
];

/// What to install when a program is missing.
const INSTALL_HINT: &str = "install the Debian packages `chromium` and `chromium-driver` (`apt-get install -y chromium chromium-driver`; `.ci/run` does it under CI), or name the programs with CHROMEDRIVER=/path/to/chromedriver and CHROMIUM=/path/to/chromium";

/// The first of `env`, `name` on `$PATH`, and `fallbacks` that exists.
fn find_program(env: &str, name: &str, fallbacks: &[&str]) -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(env) {
        let path = PathBuf::from(path);
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "{env}={} does not exist; {INSTALL_HINT}",
                path.display()
            ))
        };
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .map(|dir| dir.join(name));
    on_path
        .chain(fallbacks.iter().map(PathBuf::from))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            format!("`{name}` was not found on PATH nor in {fallbacks:?}: {INSTALL_HINT}")
        })
}

/// The URL of this test binary's chromedriver, started on first use.
fn driver_url() -> &'static str {
    static DRIVER: OnceLock<Result<String, String>> = OnceLock::new();
    DRIVER
        .get_or_init(start_driver)
        .as_deref()
        .unwrap_or_else(|why| panic!("the browser tests need chromedriver: {why}"))
}

/// Starts chromedriver on a free port from a thread that lives as long as
/// the test process, with the kernel told to end chromedriver when that
/// thread (so the process) ends.
fn start_driver() -> Result<String, String> {
    let program = find_program("CHROMEDRIVER", "chromedriver", &DRIVER_PATHS)?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut command = Command::new(&program);
        command.args([format!("--port={port}"), "--allowed-ips=127.0.0.1".into()]);
        die_with_parent(&mut command);
        let mut driver = Process::spawn(&mut command);
        driver.line(|line| line.contains("started successfully"));
        tx.send(()).expect("the test waits");
        // Keep the process (and this thread, its parent) until the test
        // binary exits.
        loop {
            std::thread::park();
        }
    });
    rx.recv_timeout(PAGE_TIMEOUT)
        .map_err(|_| "chromedriver did not start".to_string())?;
    Ok(format!("http://127.0.0.1:{port}"))
}

/// Asks the kernel to send SIGTERM to the child when the thread that
/// spawned it ends (the test binary exiting), so no chromedriver outlives
/// its tests.
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: `prctl(PR_SET_PDEATHSIG)` is async-signal-safe and touches
    // no memory of the parent; it runs in the child between fork and exec.
    #[allow(unsafe_code)]
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// `target/browser-screenshots`, next to the test binary's `target/`.
fn screenshots_root() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    // target/<profile>/deps/<binary>
    exe.ancestors()
        .nth(3)
        .unwrap_or_else(|| Path::new("target"))
        .join("browser-screenshots")
}

/// A headless Chromium session of one test.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    shots: PathBuf,
    taken: usize,
}

impl Browser {
    /// A new session; screenshots go to `browser-screenshots/<test>/`.
    pub async fn open(test: &str) -> Browser {
        let chromium = find_program("CHROMIUM", "chromium", &BROWSER_PATHS)
            .unwrap_or_else(|why| panic!("the browser tests need Chromium: {why}"));
        let capabilities = serde_json::json!({
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                         "--disable-dev-shm-usage", "--window-size=1024,900",
                         "--no-first-run", "--disable-extensions"]
            }
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!("an object")
        };
        let client = ClientBuilder::new(HttpConnector::new())
            .capabilities(capabilities)
            .connect(driver_url())
            .await
            .unwrap_or_else(|e| panic!("chromedriver did not open a Chromium session: {e}"));
        let shots = screenshots_root().join(test);
        let _ = std::fs::remove_dir_all(&shots);
        std::fs::create_dir_all(&shots).expect("a screenshot folder");
        Browser {
            client,
            shots,
            taken: 0,
        }
    }

    /// Opens `url` and waits for its heading.
    pub async fn goto(&mut self, url: &str, shot: &str) {
        self.client.goto(url).await.expect("navigation");
        self.wait_for("h1").await;
        self.screenshot(shot).await;
    }

    /// Waits until `css` matches an element.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("`{css}` did not appear: {e}"))
    }

    /// Waits until the page's `<h1>` reads `heading`; returns the text of
    /// the page's `<body>`.
    pub async fn wait_for_heading(&mut self, heading: &str, shot: &str) -> String {
        let xpath = format!("//h1[normalize-space()='{heading}']");
        if let Err(error) = self
            .client
            .wait()
            .at_most(PAGE_TIMEOUT)
            .for_element(Locator::XPath(&xpath))
            .await
        {
            let seen = self.client.source().await.unwrap_or_default();
            panic!("the heading `{heading}` did not appear ({error}); the page: {seen}");
        }
        self.screenshot(shot).await;
        self.text("body").await
    }

    /// The text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        self.wait_for(css).await.text().await.expect("text")
    }

    /// Saves a PNG of the page as `NN-<name>.png`.
    pub async fn screenshot(&mut self, name: &str) {
        self.taken += 1;
        let png = self.client.screenshot().await.expect("a screenshot");
        let file = self.shots.join(format!("{:02}-{name}.png", self.taken));
        std::fs::write(&file, png).expect("screenshot written");
    }

    /// Presses keys on whatever has the focus (the keyboard, not an element).
    pub async fn press(&self, keys: &[Key]) {
        let mut actions = KeyActions::new("keyboard".into());
        for key in keys {
            let value = char::from(*key);
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client
            .perform_actions(actions)
            .await
            .expect("key presses");
    }

    /// Types `text` into whatever has the focus.
    pub async fn type_text(&self, text: &str) {
        let mut actions = KeyActions::new("keyboard".into());
        for value in text.chars() {
            actions = actions
                .then(KeyAction::Down { value })
                .then(KeyAction::Up { value });
        }
        self.client.perform_actions(actions).await.expect("typing");
    }

    /// The `id` of the focused element.
    pub async fn focused_id(&self) -> String {
        let element = self.client.active_element().await.expect("a focus");
        element.attr("id").await.ok().flatten().unwrap_or_default()
    }

    /// Checks that every visible input, select and textarea has a label
    /// naming it (`<label for=id>`); returns the labelled ids.
    pub async fn assert_every_input_labelled(&self) -> Vec<String> {
        let inputs = self
            .client
            .find_all(Locator::Css("input:not([type=hidden]), select, textarea"))
            .await
            .expect("inputs");
        let mut ids = Vec::new();
        for input in inputs {
            let id = input.attr("id").await.ok().flatten().unwrap_or_default();
            assert!(!id.is_empty(), "an input without an id cannot be labelled");
            let labels = self
                .client
                .find_all(Locator::Css(&format!("label[for=\"{id}\"]")))
                .await
                .expect("labels");
            let mut text = String::new();
            for label in labels {
                text.push_str(&label.text().await.unwrap_or_default());
            }
            assert!(!text.trim().is_empty(), "input `{id}` has no label");
            ids.push(id);
        }
        ids
    }

    /// Ends the session (closes Chromium).
    pub async fn close(self) {
        self.client.close().await.expect("session closed");
    }
}
