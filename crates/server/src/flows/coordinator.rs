//! Who refreshes a connection's tokens, in this process and across replicas:
//! one async lock per connection in the process (in-process coalescing) and a
//! database lease per connection (owner + expiry, `store::LeaseStore`) across
//! replicas, renewed while its refresh runs.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::store::LeaseStore;

/// Default lease lifetime. The holder renews its lease every third of it
/// while its refresh runs, so a long refresh keeps it; a replica that dies
/// mid-refresh stops renewing, and the others take over this long after its
/// last renewal.
pub const DEFAULT_LEASE_TTL_MS: i64 = 5_000;
/// Default bound on how long a caller waits for another holder's refresh.
pub const DEFAULT_MAX_WAIT_MS: u64 = 15_000;

/// `[refresh]`: the lease that makes one replica refresh a connection, and
/// how long callers wait for it.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseSettings {
    /// Lifetime of a refresh lease, in milliseconds (renewed every third of it).
    pub lease_ttl_ms: u64,
    /// Longest a caller waits for a refresh another caller or replica holds;
    /// past it the caller gets a retryable error (HTTP 503 with `Retry-After`).
    pub max_wait_ms: u64,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self {
            lease_ttl_ms: DEFAULT_LEASE_TTL_MS as u64,
            max_wait_ms: DEFAULT_MAX_WAIT_MS,
        }
    }
}

impl LeaseSettings {
    /// Checks the bounds, naming the setting.
    pub fn validate(&self) -> Result<(), String> {
        if !(500..=300_000).contains(&self.lease_ttl_ms) {
            return Err(format!(
                "refresh.lease_ttl_ms: {} is outside 500 to 300000 (milliseconds)",
                self.lease_ttl_ms
            ));
        }
        if !(100..=300_000).contains(&self.max_wait_ms) {
            return Err(format!(
                "refresh.max_wait_ms: {} is outside 100 to 300000 (milliseconds)",
                self.max_wait_ms
            ));
        }
        Ok(())
    }
}

/// Seconds to wait before the background refresher retries after `failures`
/// consecutive transient failures: 30 s doubling, at most an hour.
pub fn cooldown_secs(failures: i64) -> i64 {
    let exponent = failures.clamp(1, 8) - 1;
    (30_i64 << exponent).min(3600)
}

/// Who refreshes what, in this process and across replicas.
pub struct RefreshCoordinator {
    leases: LeaseStore,
    owner: String,
    local: Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>,
    lease_ttl_ms: i64,
    max_wait: Duration,
}

impl RefreshCoordinator {
    /// A coordinator over `leases`, with a random owner id for this process.
    pub fn new(leases: LeaseStore, settings: &LeaseSettings) -> Self {
        use rand::RngCore as _;
        let mut id = [0u8; 8];
        rand::rngs::OsRng.fill_bytes(&mut id);
        Self {
            leases,
            owner: format!("{}-{}", std::process::id(), hex::encode(id)),
            local: Mutex::new(HashMap::new()),
            lease_ttl_ms: settings.lease_ttl_ms.min(i64::MAX as u64) as i64,
            max_wait: Duration::from_millis(settings.max_wait_ms),
        }
    }

    /// The longest a caller waits for someone else's refresh.
    pub(crate) fn max_wait(&self) -> Duration {
        self.max_wait
    }

    /// The lease lifetime.
    pub(crate) fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms.max(0) as u64)
    }

    /// The lease owner id of this process.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Takes the lease of connection `id` if it is free (or expired).
    pub(crate) async fn try_acquire(&self, id: &str) -> Result<bool, sqlx::Error> {
        self.leases
            .try_acquire(id, &self.owner, self.lease_ttl_ms)
            .await
    }

    /// Gives the lease of connection `id` back (a failure is logged: the
    /// lease then expires).
    pub(crate) async fn release(&self, id: &str) {
        if let Err(error) = self.leases.release(id, &self.owner).await {
            tracing::warn!(%error, "could not release a refresh lease (it will expire)");
        }
    }

    /// Renews this process's lease of connection `id` every third of its
    /// lifetime until the returned guard is dropped, so a refresh that takes
    /// longer than the lease keeps it (the commit is fenced by it anyway).
    pub(crate) fn keep_renewing(&self, id: &str) -> AbortOnDrop {
        let (leases, owner, id, ttl_ms) = (
            self.leases.clone(),
            self.owner.clone(),
            id.to_string(),
            self.lease_ttl_ms,
        );
        AbortOnDrop(tokio::spawn(async move {
            let period = Duration::from_millis((ttl_ms / 3).max(1) as u64);
            loop {
                tokio::time::sleep(period).await;
                match leases.renew(&id, &owner, ttl_ms).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(connection = %id, "lost a refresh lease during the refresh: its commit will be refused");
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(%error, connection = %id, "could not renew a refresh lease");
                    }
                }
            }
        }))
    }

    /// The in-process lock of one connection (shared while anyone holds it).
    pub(crate) fn local_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.local.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(lock) = locks.get(id).and_then(Weak::upgrade) {
            return lock;
        }
        locks.retain(|_, weak| weak.strong_count() > 0);
        let lock = Arc::new(tokio::sync::Mutex::new(()));
        locks.insert(id.to_string(), Arc::downgrade(&lock));
        lock
    }
}

/// Aborts its task when dropped (also when the owner panics).
pub(crate) struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
