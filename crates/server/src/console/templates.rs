//! The console's HTML templates (`crates/server/templates/`, compiled into
//! the binary: no files are read at run time) and its stylesheet. Templates
//! are `minijinja`, with HTML escaping of every value (names end in `.html`).
//! No template contains a script.

use std::sync::OnceLock;

use minijinja::Environment;
use serde::Serialize;

/// The stylesheet, served at [`STYLESHEET_PATH`].
pub const STYLESHEET: &str = include_str!("../../templates/console.css");
/// Where the pages load the stylesheet from.
pub const STYLESHEET_PATH: &str = "/console/static/console.css";

/// The templates by name.
const TEMPLATES: [(&str, &str); 15] = [
    ("base.html", include_str!("../../templates/base.html")),
    (
        "connect_login.html",
        include_str!("../../templates/connect_login.html"),
    ),
    ("message.html", include_str!("../../templates/message.html")),
    ("demo.html", include_str!("../../templates/demo.html")),
    (
        "operator_base.html",
        include_str!("../../templates/operator_base.html"),
    ),
    (
        "operator_login.html",
        include_str!("../../templates/operator_login.html"),
    ),
    (
        "operator_connectors.html",
        include_str!("../../templates/operator_connectors.html"),
    ),
    (
        "operator_audit.html",
        include_str!("../../templates/operator_audit.html"),
    ),
    (
        "operator_keys.html",
        include_str!("../../templates/operator_keys.html"),
    ),
    (
        "operator_connections.html",
        include_str!("../../templates/operator_connections.html"),
    ),
    (
        "operator_webhooks.html",
        include_str!("../../templates/operator_webhooks.html"),
    ),
    (
        "admin_base.html",
        include_str!("../../templates/admin_base.html"),
    ),
    (
        "admin_home.html",
        include_str!("../../templates/admin_home.html"),
    ),
    (
        "admin_oauth.html",
        include_str!("../../templates/admin_oauth.html"),
    ),
    (
        "admin_fields.html",
        include_str!("../../templates/admin_fields.html"),
    ),
];

/// A template failed to render (a bug of the templates: they are fixed at
/// build time and checked by the tests).
#[derive(Debug, thiserror::Error)]
#[error("template `{name}`: {source}")]
pub struct RenderError {
    name: &'static str,
    #[source]
    source: minijinja::Error,
}

fn environment() -> &'static Environment<'static> {
    static ENVIRONMENT: OnceLock<Environment<'static>> = OnceLock::new();
    ENVIRONMENT.get_or_init(|| {
        let mut environment = Environment::new();
        for (name, source) in TEMPLATES {
            environment
                .add_template(name, source)
                .unwrap_or_else(|e| panic!("console template {name}: {e}"));
        }
        environment
    })
}

/// Renders the template `name` with `context`.
pub fn render(name: &'static str, context: impl Serialize) -> Result<String, RenderError> {
    environment()
        .get_template(name)
        .and_then(|template| template.render(context))
        .map_err(|source| RenderError { name, source })
}

/// A page with a title, one message and an optional link onwards.
#[derive(Debug, Serialize)]
pub struct Message<'a> {
    /// The heading.
    pub title: &'a str,
    /// The text.
    pub message: &'a str,
    /// `success`, `error` or `info` (its style and role).
    pub tone: &'static str,
    /// Where to go next.
    pub link: Option<&'a str>,
    /// The link's text.
    pub link_text: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_renders_and_escapes_what_it_shows() {
        let html = render(
            "message.html",
            Message {
                title: "<script>alert(1)</script>",
                message: "\"><img src=x onerror=alert(1)>",
                tone: "error",
                link: None,
                link_text: "",
            },
        )
        .unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(!html.contains("<img"), "{html}");
        for (name, source) in TEMPLATES {
            assert!(!source.contains("<script"), "{name} has a script");
            let handler = source.match_indices(" on").any(|(at, _)| {
                let rest = &source[at + 3..];
                let word = rest.split(|c: char| !c.is_ascii_alphabetic()).next();
                rest[word.map_or(0, str::len)..].starts_with('=')
            });
            assert!(!handler, "{name} has an inline handler");
            assert!(!source.contains("style="), "{name} has an inline style");
        }
    }
}
