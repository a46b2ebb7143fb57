-- Every connector version the host has loaded, with the hash of its file.
CREATE TABLE IF NOT EXISTS connector_versions (
    connector_id TEXT NOT NULL,
    version      TEXT NOT NULL,
    sha256       TEXT NOT NULL,
    file_name    TEXT NOT NULL,
    first_loaded_at BIGINT NOT NULL,
    last_loaded_at  BIGINT NOT NULL,
    PRIMARY KEY (connector_id, sha256)
);
