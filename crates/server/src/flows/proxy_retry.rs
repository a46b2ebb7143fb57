//! Bounded retries of proxied requests the provider asked to have sent again
//! (`429 Too Many Requests`, `503 Service Unavailable`): idempotent requests
//! only, at most [`MAX_RETRIES`] more times, waiting what the provider's
//! `Retry-After` says (seconds or an HTTP date) or else an exponential backoff
//! with jitter (`backon`), never longer than [`MAX_RETRY_WAIT`] at once nor
//! past the proxied request's own time limit. A provider asking for longer
//! gets its answer handed back as is.

use std::time::{Duration, Instant, SystemTime};

use backon::{BackoffBuilder as _, ExponentialBackoff, ExponentialBuilder};

/// Retries after the first attempt.
pub(crate) const MAX_RETRIES: usize = 2;
/// Longest single wait; a `Retry-After` beyond it is not waited for.
pub(crate) const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);

/// The retries left for one proxied request.
pub(crate) struct RetryPolicy {
    backoff: ExponentialBackoff,
    deadline: Instant,
}

impl RetryPolicy {
    /// Retries for a request that must be answered by `deadline`.
    pub(crate) fn new(deadline: Instant) -> Self {
        let backoff = ExponentialBuilder::new()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(MAX_RETRIES)
            .with_jitter()
            .build();
        Self { backoff, deadline }
    }

    /// How long to wait before sending the request again after an answer
    /// with `status` and `headers`; `None`: hand this answer back.
    pub(crate) fn delay(&mut self, status: u16, headers: &[(String, String)]) -> Option<Duration> {
        if status != 429 && status != 503 {
            return None;
        }
        let backoff = self.backoff.next()?;
        let wait = retry_after(headers, SystemTime::now()).unwrap_or(backoff);
        if wait > MAX_RETRY_WAIT || Instant::now() + wait >= self.deadline {
            return None;
        }
        Some(wait)
    }
}

/// The wait a `Retry-After` header asks for (RFC 9110 §10.2.3): delay
/// seconds, or an HTTP date (a date in the past: no wait).
fn retry_after(headers: &[(String, String)], now: SystemTime) -> Option<Duration> {
    let value = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("retry-after"))
        .map(|(_, value)| value.trim())?;
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(value: &str) -> Vec<(String, String)> {
        vec![("Retry-After".to_string(), value.to_string())]
    }

    #[test]
    fn retry_after_is_read_as_seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&header("3"), now), Some(Duration::from_secs(3)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(4));
        assert_eq!(
            retry_after(&header(&later), now),
            Some(Duration::from_secs(4))
        );
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(4));
        assert_eq!(retry_after(&header(&earlier), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&header("soon"), now), None);
        assert_eq!(retry_after(&[], now), None);
    }

    #[test]
    fn only_429_and_503_are_retried_boundedly_and_never_past_the_limits() {
        let far = Instant::now() + Duration::from_secs(60);
        let mut policy = RetryPolicy::new(far);
        assert_eq!(policy.delay(500, &header("0")), None);
        assert_eq!(policy.delay(200, &[]), None);
        assert_eq!(policy.delay(503, &header("0")), Some(Duration::ZERO));
        assert!(
            policy
                .delay(429, &[])
                .is_some_and(|d| d <= Duration::from_secs(2))
        );
        assert_eq!(
            policy.delay(503, &header("0")),
            None,
            "{MAX_RETRIES} retries at most"
        );
        // Longer than a single wait may be, or past the deadline: not waited for.
        assert_eq!(RetryPolicy::new(far).delay(503, &header("3600")), None);
        let soon = Instant::now() + Duration::from_secs(1);
        assert_eq!(RetryPolicy::new(soon).delay(429, &header("2")), None);
    }
}
