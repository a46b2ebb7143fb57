//! Background pruning: expired OAuth states, old outbound-audit rows, settled
//! webhook-outbox rows, old admin-audit rows and expired connect and console
//! sessions are removed by a task of their own, in bounded batches, so no
//! request does work that grows with a table.
//!
//! Every prune query is a range scan of an index made for it
//! (`migrations/*/0008_retention.sql`, `0016_console.sql`); the batches keep each write
//! transaction short, so pruning never holds the database for long.

use std::time::Duration;

use serde::Deserialize;

use super::{Database, unix_seconds};

/// How long rows are kept (`[retention]` in the config file). A table stays
/// about as large as what is written to it during its retention.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionSettings {
    /// Seconds an expired OAuth state is kept, so a late callback is still
    /// told "expired" rather than "unknown". States live 10 minutes.
    pub oauth_states_after_expiry_secs: u64,
    /// Days outbound-audit rows are kept.
    pub outbound_audit_days: u64,
    /// Days a delivered or failed webhook event is kept (pending ones stay).
    pub webhook_outbox_days: u64,
    /// Days admin-audit rows are kept.
    pub admin_audit_days: u64,
    /// Seconds an expired connect session or console session is kept (a
    /// late click on a connect link is still told "expired").
    pub sessions_after_expiry_secs: u64,
    /// Seconds between two pruning passes.
    pub interval_secs: u64,
    /// Rows removed per statement; a pass repeats until a batch is not full.
    pub batch: u32,
}

impl Default for RetentionSettings {
    fn default() -> Self {
        Self {
            oauth_states_after_expiry_secs: 3600,
            outbound_audit_days: 30,
            webhook_outbox_days: 7,
            admin_audit_days: 365,
            sessions_after_expiry_secs: 3600,
            interval_secs: 60,
            batch: 5_000,
        }
    }
}

impl RetentionSettings {
    /// Checks the settings, naming the key of a bad value.
    pub fn validate(&self) -> Result<(), String> {
        if self.interval_secs == 0 {
            return Err("retention.interval_secs: must be at least 1".into());
        }
        if !(1..=100_000).contains(&self.batch) {
            return Err("retention.batch: must be between 1 and 100000".into());
        }
        for (key, days) in [
            ("outbound_audit_days", self.outbound_audit_days),
            ("webhook_outbox_days", self.webhook_outbox_days),
            ("admin_audit_days", self.admin_audit_days),
        ] {
            if !(1..=36_500).contains(&days) {
                return Err(format!("retention.{key}: must be between 1 and 36500 days"));
            }
        }
        if self.oauth_states_after_expiry_secs > 30 * 86_400 {
            return Err("retention.oauth_states_after_expiry_secs: at most 30 days".into());
        }
        if self.sessions_after_expiry_secs > 30 * 86_400 {
            return Err("retention.sessions_after_expiry_secs: at most 30 days".into());
        }
        Ok(())
    }
}

/// What one pruning pass removed, per table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Expired OAuth states.
    pub oauth_states: u64,
    /// Outbound-audit rows.
    pub outbound_audit: u64,
    /// Delivered or failed webhook events.
    pub webhook_outbox: u64,
    /// Admin-audit rows.
    pub admin_audit: u64,
    /// Expired connect sessions and console sessions.
    pub sessions: u64,
}

/// One prune statement: a table, its key, and the indexed condition of the
/// rows to remove (`$1` is the cut-off).
struct Rule {
    table: &'static str,
    key: &'static str,
    condition: &'static str,
}

const OAUTH_STATES: Rule = Rule {
    table: "oauth_states",
    key: "state_hash",
    // index: oauth_states_by_expiry
    condition: "expires_at < $1",
};
const OUTBOUND_AUDIT: Rule = Rule {
    table: "outbound_audit",
    key: "id",
    // index: outbound_audit_by_time
    condition: "at_ms < $1",
};
const WEBHOOK_DELIVERED: Rule = Rule {
    table: "webhook_outbox",
    key: "id",
    // index: webhook_outbox_by_delivery
    condition: "delivered_at < $1",
};
const WEBHOOK_FAILED: Rule = Rule {
    table: "webhook_outbox",
    key: "id",
    // index: webhook_outbox_by_failure
    condition: "failed_at < $1",
};
const ADMIN_AUDIT: Rule = Rule {
    table: "admin_audit",
    key: "id",
    // index: admin_audit_by_time
    condition: "at < $1",
};

const CONNECT_SESSIONS: Rule = Rule {
    table: "connect_sessions",
    key: "token_hash",
    // index: connect_sessions_expiry
    condition: "expires_at < $1",
};
const CONSOLE_SESSIONS: Rule = Rule {
    table: "console_sessions",
    key: "session_hash",
    // index: console_sessions_expiry
    condition: "expires_at < $1",
};

impl Rule {
    /// `DELETE … WHERE key IN (SELECT key … WHERE condition LIMIT batch)`:
    /// the same bounded statement on SQLite and PostgreSQL.
    fn statement(&self, batch: u32) -> String {
        format!(
            "DELETE FROM {table} WHERE {key} IN (SELECT {key} FROM {table} WHERE {condition} LIMIT {batch})",
            table = self.table,
            key = self.key,
            condition = self.condition,
        )
    }

    /// The rows' selection alone, for checking that it uses its index.
    fn selection(&self) -> String {
        format!(
            "SELECT {key} FROM {table} WHERE {condition}",
            key = self.key,
            table = self.table,
            condition = self.condition
        )
    }

    /// Removes every row older than `cut_off`, one bounded batch at a time.
    async fn prune(&self, database: &Database, cut_off: i64, batch: u32) -> sqlx::Result<u64> {
        let statement = self.statement(batch);
        let mut removed = 0;
        loop {
            let done = sqlx::query(&statement)
                .bind(cut_off)
                .execute(&database.pool)
                .await?
                .rows_affected();
            removed += done;
            if done < u64::from(batch) {
                return Ok(removed);
            }
        }
    }
}

/// Removes what `settings` says is old at `now` (Unix seconds).
pub async fn prune_once(
    database: &Database,
    settings: &RetentionSettings,
    now: i64,
) -> sqlx::Result<Pruned> {
    let days = |days: u64| i64::try_from(days.saturating_mul(86_400)).unwrap_or(i64::MAX);
    let batch = settings.batch;
    let states_cut = now
        .saturating_sub(i64::try_from(settings.oauth_states_after_expiry_secs).unwrap_or(i64::MAX));
    let audit_cut_ms = now
        .saturating_sub(days(settings.outbound_audit_days))
        .saturating_mul(1000);
    let outbox_cut = now.saturating_sub(days(settings.webhook_outbox_days));
    let admin_cut = now.saturating_sub(days(settings.admin_audit_days));
    let sessions_cut =
        now.saturating_sub(i64::try_from(settings.sessions_after_expiry_secs).unwrap_or(i64::MAX));
    Ok(Pruned {
        oauth_states: OAUTH_STATES.prune(database, states_cut, batch).await?,
        outbound_audit: OUTBOUND_AUDIT.prune(database, audit_cut_ms, batch).await?,
        webhook_outbox: WEBHOOK_DELIVERED.prune(database, outbox_cut, batch).await?
            + WEBHOOK_FAILED.prune(database, outbox_cut, batch).await?,
        admin_audit: ADMIN_AUDIT.prune(database, admin_cut, batch).await?,
        sessions: CONNECT_SESSIONS
            .prune(database, sessions_cut, batch)
            .await?
            + CONSOLE_SESSIONS
                .prune(database, sessions_cut, batch)
                .await?,
    })
}

/// The selections of every prune rule, for a test to check their query plans.
pub fn prune_selections() -> Vec<(&'static str, String)> {
    [
        &OAUTH_STATES,
        &OUTBOUND_AUDIT,
        &WEBHOOK_DELIVERED,
        &WEBHOOK_FAILED,
        &ADMIN_AUDIT,
        &CONNECT_SESSIONS,
        &CONSOLE_SESSIONS,
    ]
    .into_iter()
    .map(|rule| (rule.table, rule.selection()))
    .collect()
}

/// Starts the pruning task: a pass every `interval_secs`, the first one at once.
/// A failed pass is logged and retried at the next interval.
pub fn start(database: Database, settings: RetentionSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(Duration::from_secs(settings.interval_secs.max(1)));
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match prune_once(&database, &settings, unix_seconds()).await {
                Ok(pruned) if pruned != Pruned::default() => {
                    tracing::info!(?pruned, "pruned old rows")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, "pruning failed; retrying at the next pass"),
            }
        }
    })
}
