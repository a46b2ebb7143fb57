//! One-time data upgrades, run at startup after the schema migrations: work
//! SQL cannot do because it needs the master keys. Each is recorded in
//! `data_upgrades` (migration 0010) once it completed, so later startups skip
//! it; running one twice (two replicas starting at once) is harmless, as each
//! rewrites a row only if it did not change meanwhile.

use super::{Database, unix_seconds};

/// Connection secrets re-encrypted with the user in their associated data.
pub const USER_BOUND_SECRETS: &str = "user-bound-secrets";
/// Webhook outbox rows pending at the upgrade given their MAC.
pub const OUTBOX_MAC: &str = "outbox-mac";

/// Whether the upgrade `name` already ran on this database.
pub async fn is_done(database: &Database, name: &str) -> Result<bool, sqlx::Error> {
    let found: Option<String> =
        sqlx::query_scalar("SELECT name FROM data_upgrades WHERE name = $1")
            .bind(name)
            .fetch_optional(&database.pool)
            .await?;
    Ok(found.is_some())
}

/// Records that the upgrade `name` completed.
pub async fn mark_done(database: &Database, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO data_upgrades (name, done_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(unix_seconds())
    .execute(&database.pool)
    .await?;
    Ok(())
}
