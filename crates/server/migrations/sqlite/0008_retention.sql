-- Indexes for the background pruning of expired and old rows
-- (crates/server/src/store/retention.rs): every prune query is a range scan of
-- one of these, so pruning costs what it removes, not what the table holds.
CREATE INDEX IF NOT EXISTS oauth_states_by_expiry ON oauth_states (expires_at);
CREATE INDEX IF NOT EXISTS outbound_audit_by_time ON outbound_audit (at_ms);
CREATE INDEX IF NOT EXISTS webhook_outbox_by_delivery ON webhook_outbox (delivered_at);
CREATE INDEX IF NOT EXISTS webhook_outbox_by_failure ON webhook_outbox (failed_at);
CREATE INDEX IF NOT EXISTS admin_audit_by_time ON admin_audit (at);
