-- A platform user's connection to a CRM through a connector. Secret columns
-- hold AEAD envelopes (store/crypto.rs) bound to (account, connector, id, column).
CREATE TABLE IF NOT EXISTS connections (
    id               TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    connector_id     TEXT NOT NULL,
    auth_type        TEXT NOT NULL,
    status           TEXT NOT NULL,
    hostname         TEXT,
    platform_user_id TEXT,
    user_name        TEXT,
    timezone_name    TEXT,
    timezone_offset  TEXT,
    additional_info  TEXT NOT NULL,
    access_token     TEXT,
    refresh_token    TEXT,
    expires_at       BIGINT,
    api_key          TEXT,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL,
    UNIQUE (account_id, user_id, connector_id)
);
CREATE INDEX IF NOT EXISTS connections_by_user ON connections (account_id, user_id);
