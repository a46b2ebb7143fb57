//! The background validation: connections whose credentials no expiry
//! checks (OAuth connections without `expiresAt`, API-key connections) are
//! validated now and then with the connector's `auth-validation` hook, as
//! `POST …/validate` does, so a revoked token or key is noticed before a
//! user's request fails: a refusal (401) marks the connection `needs_reauth`
//! and emits `connection.needs_reauth`.
//!
//! Each pass takes at most `max_per_pass` connections not validated for
//! `interval_secs` (longest unvalidated first), of connectors that implement
//! `auth-validation`, and validates them `concurrency` at a time. Before
//! validating one, a pass claims it (`ConnectionStore::claim_validation`: a
//! compare-and-set of `validated_at`), so replicas running passes at the same
//! time never validate the same connection in the same interval; a replica
//! that dies after its claim leaves that connection for the next interval.

use std::sync::Arc;
use std::time::Duration;

use connector_abi::hook::Hook;

use super::FlowError;
use super::common::Connectors;
use super::validation::ValidationFlow;
use crate::store::{ConnectionStore, unix_seconds};

/// `[validation]`: the background validation of connections without a
/// token expiry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidationSettings {
    /// Run the background validation (on by default).
    pub enabled: bool,
    /// A connection is validated again once this many seconds passed since
    /// its last validation (or its creation).
    pub interval_secs: u64,
    /// Seconds between two passes.
    pub pass_interval_secs: u64,
    /// Most connections one pass validates (the rest wait for the next).
    pub max_per_pass: u32,
    /// Validations in flight at once.
    pub concurrency: u32,
}

impl Default for ValidationSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 86_400,
            pass_interval_secs: 300,
            max_per_pass: 100,
            concurrency: 4,
        }
    }
}

impl ValidationSettings {
    /// Checks the bounds, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        for (key, value, min, max) in [
            ("interval_secs", self.interval_secs, 60, 30 * 86_400),
            ("pass_interval_secs", self.pass_interval_secs, 1, 86_400),
            ("max_per_pass", u64::from(self.max_per_pass), 1, 10_000),
            ("concurrency", u64::from(self.concurrency), 1, 64),
        ] {
            if !(min..=max).contains(&value) {
                return Err(format!(
                    "validation.{key}: {value} is outside {min} to {max}"
                ));
            }
        }
        Ok(())
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ValidationRun {
    /// Connections found due.
    pub due: usize,
    /// Claimed by this pass (the others were claimed by another pass or
    /// replica, or changed meanwhile).
    pub claimed: usize,
    /// Validated and working.
    pub valid: usize,
    /// Refused by the provider: now `needs_reauth`.
    pub rejected: usize,
    /// The validation failed otherwise (network, connector error, another
    /// status): left as they were, tried again after the interval.
    pub failed: usize,
}

/// Validates due connections in the background.
#[derive(Clone)]
pub(crate) struct BackgroundValidator {
    connectors: Connectors,
    connections: ConnectionStore,
    validation: ValidationFlow,
}

/// How one validation ended.
enum Outcome {
    Valid,
    Rejected,
    Failed,
}

impl BackgroundValidator {
    /// A validator of `connections` through `validation` (the route's flow).
    pub(crate) fn new(
        connectors: Connectors,
        connections: ConnectionStore,
        validation: ValidationFlow,
    ) -> Self {
        Self {
            connectors,
            connections,
            validation,
        }
    }

    /// One pass: claims and validates at most `settings.max_per_pass` due
    /// connections, at most `settings.concurrency` at a time.
    pub(crate) async fn validate_due(
        &self,
        settings: &ValidationSettings,
    ) -> Result<ValidationRun, FlowError> {
        let mut validating: Vec<String> = self
            .connectors
            .snapshot()
            .connectors
            .values()
            .filter(|c| c.prepared.implements(Hook::AuthValidation))
            .map(|c| c.info.manifest.id.clone())
            .collect();
        validating.sort();
        validating.dedup();
        let now = unix_seconds();
        let cutoff = now.saturating_sub(i64::try_from(settings.interval_secs).unwrap_or(i64::MAX));
        let due = self
            .connections
            .due_for_validation(cutoff, &validating, i64::from(settings.max_per_pass.max(1)))
            .await?;
        let mut run = ValidationRun {
            due: due.len(),
            ..ValidationRun::default()
        };
        let semaphore = Arc::new(tokio::sync::Semaphore::new(
            settings.concurrency.max(1) as usize
        ));
        let mut tasks = tokio::task::JoinSet::new();
        for connection in due {
            let permit = semaphore
                .clone()
                .acquire_owned()
                .await
                .expect("open semaphore");
            let (connections, validation) = (self.connections.clone(), self.validation.clone());
            tasks.spawn(async move {
                let _permit = permit;
                let at = connection.at();
                match connections.claim_validation(at, cutoff, now).await {
                    Ok(true) => {}
                    Ok(false) => return None,
                    Err(error) => {
                        tracing::warn!(connection = %connection.id, %error, "could not claim a validation");
                        return None;
                    }
                }
                Some(match validation.validate(at).await {
                    Ok(result) if result.successful => Outcome::Valid,
                    Ok(result) if result.status == Some(401) => Outcome::Rejected,
                    Ok(result) => {
                        tracing::info!(connection = %connection.id, status = ?result.status, "background validation failed");
                        Outcome::Failed
                    }
                    Err(error) => {
                        tracing::info!(connection = %connection.id, %error, "background validation failed");
                        Outcome::Failed
                    }
                })
            });
        }
        while let Some(done) = tasks.join_next().await {
            let Ok(Some(outcome)) = done else {
                continue;
            };
            run.claimed += 1;
            match outcome {
                Outcome::Valid => run.valid += 1,
                Outcome::Rejected => run.rejected += 1,
                Outcome::Failed => run.failed += 1,
            }
        }
        Ok(run)
    }

    /// Runs [`BackgroundValidator::validate_due`] every
    /// `settings.pass_interval_secs` until the task is dropped or aborted.
    pub(crate) fn start(&self, settings: ValidationSettings) -> tokio::task::JoinHandle<()> {
        let validator = self.clone();
        tokio::spawn(async move {
            loop {
                match validator.validate_due(&settings).await {
                    Ok(run) if run.due > 0 => tracing::info!(
                        due = run.due,
                        claimed = run.claimed,
                        valid = run.valid,
                        rejected = run.rejected,
                        failed = run.failed,
                        "background validation pass"
                    ),
                    Ok(_) => {}
                    Err(error) => tracing::error!(%error, "background validation pass failed"),
                }
                tokio::time::sleep(Duration::from_secs(settings.pass_interval_secs.max(1))).await;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::ValidationSettings;

    #[test]
    fn settings_are_bounded_and_name_their_key() {
        assert!(ValidationSettings::default().validate().is_ok());
        for (settings, key) in [
            (
                ValidationSettings {
                    interval_secs: 59,
                    ..Default::default()
                },
                "validation.interval_secs",
            ),
            (
                ValidationSettings {
                    pass_interval_secs: 0,
                    ..Default::default()
                },
                "validation.pass_interval_secs",
            ),
            (
                ValidationSettings {
                    max_per_pass: 0,
                    ..Default::default()
                },
                "validation.max_per_pass",
            ),
            (
                ValidationSettings {
                    concurrency: 65,
                    ..Default::default()
                },
                "validation.concurrency",
            ),
        ] {
            let error = settings.validate().unwrap_err();
            assert!(error.starts_with(key), "{error}");
        }
    }
}
