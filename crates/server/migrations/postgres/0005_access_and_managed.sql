-- API keys of the HTTP API. Only the SHA-256 of a key is stored; the key is
-- shown once when created. `accounts` is a JSON array of account ids (`["*"]`:
-- every account); operators have none.
CREATE TABLE IF NOT EXISTS api_keys (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    role        TEXT NOT NULL,
    accounts    TEXT NOT NULL,
    secret_hash TEXT NOT NULL UNIQUE,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT
);

-- Admin-managed OAuth applications, per account and connector. `slot` is
-- `pending` (submitted, expiring, promoted by the first successful login) or
-- `active`. The client secret is an AEAD envelope bound to its row.
CREATE TABLE IF NOT EXISTS managed_oauth_apps (
    account_id        TEXT NOT NULL,
    connector_id      TEXT NOT NULL,
    slot              TEXT NOT NULL,
    version           BIGINT NOT NULL,
    client_id         TEXT,
    client_secret     TEXT,
    token_url         TEXT,
    authorization_url TEXT,
    redirect_uri      TEXT,
    hostname          TEXT,
    expires_at        BIGINT,
    updated_by        TEXT NOT NULL,
    updated_at        BIGINT NOT NULL,
    PRIMARY KEY (account_id, connector_id, slot)
);

-- Admin-managed API-key form fields. `user_id` is '' for account-scoped
-- values. Values are AEAD envelopes bound to (account, connector, user, field).
CREATE TABLE IF NOT EXISTS managed_fields (
    account_id   TEXT NOT NULL,
    connector_id TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    field        TEXT NOT NULL,
    value        TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    updated_at   BIGINT NOT NULL,
    PRIMARY KEY (account_id, connector_id, user_id, field)
);

-- Who changed what admin setting, when. Never the values.
CREATE TABLE IF NOT EXISTS admin_audit (
    id           TEXT PRIMARY KEY,
    at           BIGINT NOT NULL,
    key_id       TEXT NOT NULL,
    key_name     TEXT NOT NULL,
    role         TEXT NOT NULL,
    account_id   TEXT,
    connector_id TEXT,
    user_id      TEXT,
    action       TEXT NOT NULL,
    detail       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS admin_audit_by_account ON admin_audit (account_id, at);
