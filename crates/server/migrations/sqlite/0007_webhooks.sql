-- Outbox of signed webhooks about connection events (crates/server/src/events/).
-- One row per event, written before the event is reported delivered-or-not;
-- delivered at least once by whichever replica claims it (locked_until/locked_by).
-- Payloads carry no token or secret.
CREATE TABLE IF NOT EXISTS webhook_outbox (
    id              TEXT PRIMARY KEY,
    event_type      TEXT NOT NULL,
    url             TEXT NOT NULL,
    payload         TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    locked_until    BIGINT,
    locked_by       TEXT,
    delivered_at    BIGINT,
    failed_at       BIGINT,
    last_status     BIGINT,
    last_error      TEXT,
    created_at      BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS webhook_outbox_due ON webhook_outbox (delivered_at, failed_at, next_attempt_at);
