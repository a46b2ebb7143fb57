//! The consent page of the authorization endpoint, shown when
//! [`super::DevProviderConfig::consent_page`] is on (the `serve --dev` demo):
//! a real provider asks the user before it sends a code back, and a demo in
//! a browser should look like one. "Allow" sends the same authorization
//! request again with `decision=allow`; "Deny" with `decision=deny`, which
//! redirects back with `access_denied` (RFC 6749 §4.1.2.1).

use std::collections::HashMap;

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

/// The parameter the page's buttons add to the authorization request.
pub(super) const DECISION: &str = "decision";

/// What the user decided, read from an authorization request.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Decision {
    /// Nothing yet: show the page.
    Ask,
    /// "Allow": issue the code.
    Allow,
    /// "Deny" (or any other answer): redirect back with `access_denied`.
    Deny,
}

/// The decision an authorization request carries.
pub(super) fn decision(params: &HashMap<String, String>) -> Decision {
    match params.get(DECISION).map(String::as_str) {
        None => Decision::Ask,
        Some("allow") => Decision::Allow,
        Some(_) => Decision::Deny,
    }
}

/// The page asking the user to allow `client_id` the requested scope; its
/// form repeats every parameter of the request. The page's policy allows no
/// script, style or frame; it has no `form-action`, which would also block
/// the redirect to the client that follows the answer.
pub(super) fn page(client_id: &str, params: &HashMap<String, String>) -> Response {
    let scope = params.get("scope").map(String::as_str).unwrap_or("api");
    let hidden: String = params
        .iter()
        .filter(|(name, _)| name.as_str() != DECISION)
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Allow access? (dev provider)</title></head><body><main>\
         <h1>Allow access?</h1>\
         <p>The application <strong>{client}</strong> asks for access to your account at the local \
         dev provider, with the scope <code>{scope}</code>.</p>\
         <form method=\"get\">{hidden}\
         <button type=\"submit\" id=\"allow\" name=\"{DECISION}\" value=\"allow\" autofocus>Allow</button> \
         <button type=\"submit\" id=\"deny\" name=\"{DECISION}\" value=\"deny\">Deny</button>\
         </form><p>This is the test provider of connector-host: it has no passwords and \
         approves every user.</p></main></body></html>",
        client = escape(client_id),
        scope = escape(scope),
    );
    (
        StatusCode::OK,
        [
            (CONTENT_TYPE, "text/html; charset=utf-8"),
            (CACHE_CONTROL, "no-store"),
            (
                CONTENT_SECURITY_POLICY,
                "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
            ),
        ],
        body,
    )
        .into_response()
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn request_values_cannot_break_out_of_the_page() {
        let params = HashMap::from([
            (
                "state".to_string(),
                "\"><script>alert(1)</script>".to_string(),
            ),
            ("scope".to_string(), "<b>all</b>".to_string()),
            (DECISION.to_string(), "maybe".to_string()),
        ]);
        let response = page("client\"<", &params);
        assert_eq!(response.status(), StatusCode::OK);
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8(body.to_vec()).unwrap();
        assert!(
            !body.contains("<script>") && !body.contains("<b>"),
            "{body}"
        );
        assert!(body.contains("value=\"&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;\""));
        assert!(body.contains("<strong>client&quot;&lt;</strong>"), "{body}");
        assert!(!body.contains("maybe"), "the old decision is not repeated");
        assert_eq!(escape("a&'b"), "a&amp;&#39;b");
    }

    #[test]
    fn only_allow_issues_a_code() {
        let with = |value: &str| HashMap::from([(DECISION.to_string(), value.to_string())]);
        assert_eq!(decision(&HashMap::new()), Decision::Ask);
        assert_eq!(decision(&with("allow")), Decision::Allow);
        assert_eq!(decision(&with("deny")), Decision::Deny);
        assert_eq!(decision(&with("ALLOW")), Decision::Deny);
    }
}
