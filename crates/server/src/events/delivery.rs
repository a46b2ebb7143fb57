//! Sending claimed events, backoff, and the delivery loop.

use std::time::Duration;

use rand::Rng;
use secrecy::ExposeSecret;

use super::signature::{
    EVENT_ID_HEADER, EVENT_TYPE_HEADER, WEBHOOK_ID_HEADER, WEBHOOK_SIGNATURE_HEADER,
    WEBHOOK_TIMESTAMP_HEADER, sign,
};
use super::{Enabled, Events, EventsError, store};
use crate::store::{Database, unix_seconds};

/// Events claimed per pass; the loop runs another pass at once when a pass was full.
const BATCH: i64 = 32;
/// How often the loop looks for due retries (and expired claims) without being woken.
const POLL_INTERVAL: Duration = Duration::from_secs(5);
/// A claim outlives the attempt's timeout by this much before another replica may take the row.
const CLAIM_MARGIN_SECS: i64 = 30;
/// Longest error text kept in `last_error`.
const MAX_ERROR_CHARS: usize = 500;

/// The delay before retrying after `attempt` failed attempts: exponential from
/// `base` (`base`, `2·base`, `4·base`, …) capped at `max`, with "equal jitter"
/// (a random value between half the delay and the delay), at least one second.
pub(super) fn backoff_secs(attempt: u32, base: u64, max: u64) -> u64 {
    let exponent = attempt.saturating_sub(1).min(40);
    let delay = base.saturating_mul(1u64 << exponent).min(max).max(1);
    let half = delay / 2;
    (delay - half + rand::thread_rng().gen_range(0..=half)).max(1)
}

/// One pass: claim due events of this URL and send each once.
pub(super) async fn deliver_due(
    database: &Database,
    enabled: &Enabled,
) -> Result<usize, EventsError> {
    let config = &enabled.config;
    let now = unix_seconds();
    let ids = store::due(database, &config.url, now, BATCH).await?;
    let token = claim_token();
    let mut attempted = 0;
    for id in ids {
        let now = unix_seconds();
        let lock = now + config.timeout_secs as i64 + CLAIM_MARGIN_SECS;
        let Some(claimed) = store::claim(database, &id, &token, now, lock).await? else {
            continue;
        };
        attempted += 1;
        if !claimed.authentic(&enabled.keys, &id) {
            tracing::error!(
                event = %id, r#type = %claimed.event_type,
                "webhook outbox row failed its integrity check (MAC): not written by this host; not sent"
            );
            let error = "integrity check failed: the row's MAC does not verify; not sent";
            crate::telemetry::webhook_delivery("forged");
            store::attempt_failed(database, &id, &token, now, None, error, None).await?;
            continue;
        }
        let outcome = send(enabled, &id, &claimed.event_type, &claimed.payload).await;
        let now = unix_seconds();
        let attempt = claimed.attempt;
        match outcome {
            Ok(status) => {
                tracing::info!(event = %id, r#type = %claimed.event_type, status, attempt, "webhook delivered");
                crate::telemetry::webhook_delivery("delivered");
                store::delivered(database, &id, &token, now, status).await?;
            }
            Err((status, error)) => {
                let gave_up = attempt >= config.max_attempts;
                crate::telemetry::webhook_delivery(if gave_up { "gave_up" } else { "retry" });
                if gave_up {
                    tracing::error!(
                        event = %id, r#type = %claimed.event_type, status, attempt, error = %error,
                        "webhook delivery failed; giving up after max_attempts"
                    );
                    store::attempt_failed(database, &id, &token, now, status, &error, None).await?;
                } else {
                    let delay =
                        backoff_secs(attempt, config.backoff_base_secs, config.backoff_max_secs);
                    tracing::warn!(
                        event = %id, r#type = %claimed.event_type, status, attempt, error = %error,
                        retry_in_secs = delay, "webhook delivery failed; will retry"
                    );
                    let next = now.saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                    store::attempt_failed(database, &id, &token, now, status, &error, Some(next))
                        .await?;
                }
            }
        }
    }
    Ok(attempted)
}

/// POSTs one event. `Ok(status)` on 2xx; otherwise the status (if any) and why.
async fn send(
    enabled: &Enabled,
    id: &str,
    event_type: &str,
    payload: &str,
) -> Result<u16, (Option<u16>, String)> {
    // Signed anew on every attempt: the timestamp is the attempt's.
    let timestamp = unix_seconds();
    let keys: Vec<&[u8]> = enabled
        .signing_keys
        .iter()
        .map(|key| key.expose_secret())
        .collect();
    let signature = sign(&keys, id, timestamp, payload.as_bytes());
    let response = enabled
        .client
        .post(&enabled.config.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(WEBHOOK_ID_HEADER, id)
        .header(WEBHOOK_TIMESTAMP_HEADER, timestamp)
        .header(WEBHOOK_SIGNATURE_HEADER, signature)
        .header(EVENT_ID_HEADER, id)
        .header(EVENT_TYPE_HEADER, event_type)
        .body(payload.to_owned())
        .send()
        .await;
    match response {
        Ok(response) => {
            let status = response.status();
            // Read (and drop) the body so the connection can be reused.
            let _ = response.bytes().await;
            if status.is_success() {
                Ok(status.as_u16())
            } else {
                Err((Some(status.as_u16()), format!("receiver answered {status}")))
            }
        }
        Err(error) => {
            // No URL in the message (it may carry a receiver's token); the
            // signing secret is never part of a request error.
            let mut text = error_chain(&error.without_url());
            if text.chars().count() > MAX_ERROR_CHARS {
                text = text.chars().take(MAX_ERROR_CHARS).collect();
            }
            Err((None, text))
        }
    }
}

fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

fn claim_token() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 12];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The delivery loop (see [`Events::start_delivery`]).
pub(super) async fn run(events: Events) {
    let Some(enabled) = events.inner.clone() else {
        return;
    };
    loop {
        // Pending events recorded under another URL (the operator changed
        // `webhooks.url`) go to this one.
        match store::adopt(&events.database, &enabled.config.url, unix_seconds()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                events = n,
                "webhook events of a previous url moved to the configured url"
            ),
            Err(error) => {
                tracing::warn!(error = %error, "webhook outbox: cannot move events of a previous url")
            }
        }
        let full = match deliver_due(&events.database, &enabled).await {
            Ok(n) => n as i64 >= BATCH,
            Err(error) => {
                tracing::warn!(error = %error, "webhook delivery pass failed");
                false
            }
        };
        if full {
            continue;
        }
        tokio::select! {
            _ = enabled.wake.notified() => {}
            _ = tokio::time::sleep(POLL_INTERVAL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::backoff_secs;

    #[test]
    fn backoff_grows_exponentially_with_jitter_and_a_cap() {
        for _ in 0..200 {
            let first = backoff_secs(1, 5, 3600);
            assert!((3..=5).contains(&first), "{first}");
            let third = backoff_secs(3, 5, 3600);
            assert!((10..=20).contains(&third), "{third}");
            let late = backoff_secs(30, 5, 3600);
            assert!((1800..=3600).contains(&late), "{late}");
            assert!(backoff_secs(u32::MAX, u64::MAX, u64::MAX) >= 1);
            assert_eq!(backoff_secs(1, 1, 1), 1);
        }
    }
}
