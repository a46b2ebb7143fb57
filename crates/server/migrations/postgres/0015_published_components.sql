-- Components published to the database (`connector-host publish`): every
-- replica loads the live version of each connector from here.
CREATE TABLE IF NOT EXISTS published_components (
    connector_id    TEXT NOT NULL,
    version         TEXT NOT NULL,
    sha256          TEXT NOT NULL,
    bytes           BYTEA NOT NULL,
    manifest        TEXT NOT NULL,
    publisher       TEXT NOT NULL,
    published_at_ms BIGINT NOT NULL,
    signer          TEXT,
    signature       TEXT,
    retired_at_ms   BIGINT,
    PRIMARY KEY (connector_id, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS published_components_by_digest ON published_components (connector_id, sha256);

-- The version of each connector every replica serves, and whether an
-- operator pinned it (a later publish is then stored but not made live).
CREATE TABLE IF NOT EXISTS live_components (
    connector_id  TEXT PRIMARY KEY,
    version       TEXT NOT NULL,
    pinned        BIGINT NOT NULL DEFAULT 0,
    changed_by    TEXT NOT NULL,
    changed_at_ms BIGINT NOT NULL
);

-- What each replica serves, and since when (reported periodically).
CREATE TABLE IF NOT EXISTS replica_connectors (
    replica_id     TEXT NOT NULL,
    connector_id   TEXT NOT NULL,
    version        TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    source         TEXT NOT NULL,
    serving_since  BIGINT NOT NULL,
    reported_at    BIGINT NOT NULL,
    PRIMARY KEY (replica_id, connector_id)
);

-- Every replica's last report (a replica serving nothing is listed too).
CREATE TABLE IF NOT EXISTS replicas (
    replica_id  TEXT PRIMARY KEY,
    started_at  BIGINT NOT NULL,
    reported_at BIGINT NOT NULL
);
