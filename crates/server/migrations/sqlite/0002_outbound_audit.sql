-- Every outbound request a connector made or tried, allowed or refused.
-- Never a credential value, never a query string.
CREATE TABLE IF NOT EXISTS outbound_audit (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms             BIGINT NOT NULL,
    connector_id      TEXT NOT NULL,
    connector_version TEXT NOT NULL,
    account_id        TEXT,
    method            TEXT NOT NULL,
    scheme            TEXT,
    host              TEXT,
    port              INTEGER,
    path              TEXT,
    outcome           TEXT NOT NULL,
    reason            TEXT,
    status            INTEGER,
    request_bytes     BIGINT NOT NULL,
    response_bytes    BIGINT NOT NULL,
    duration_us       BIGINT NOT NULL,
    credential        TEXT
);
CREATE INDEX IF NOT EXISTS outbound_audit_by_connector ON outbound_audit (connector_id, id);
