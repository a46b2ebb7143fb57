-- Token refresh across replicas: one lease per connection being refreshed.
-- A holder that dies releases by expiry.
CREATE TABLE IF NOT EXISTS refresh_leases (
    connection_id TEXT PRIMARY KEY,
    owner         TEXT NOT NULL,
    expires_at_ms BIGINT NOT NULL
);

-- Refresh state of a connection: consecutive transient failures and when the
-- background refresher may try again (cool-down).
ALTER TABLE connections ADD COLUMN refresh_failures BIGINT NOT NULL DEFAULT 0;
ALTER TABLE connections ADD COLUMN next_refresh_at BIGINT;
ALTER TABLE connections ADD COLUMN last_refresh_error TEXT;
CREATE INDEX IF NOT EXISTS connections_by_expiry ON connections (status, expires_at);

-- Service keys trusted with raw access tokens (the credentials route).
ALTER TABLE api_keys ADD COLUMN raw_tokens BIGINT NOT NULL DEFAULT 0;
