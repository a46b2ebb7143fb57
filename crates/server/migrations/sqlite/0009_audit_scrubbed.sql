-- Whether a response echoed a secret the host injected, which was removed
-- before the connector saw it (crates/sandbox/src/capabilities/http/scrub.rs).
ALTER TABLE outbound_audit ADD COLUMN scrubbed BIGINT NOT NULL DEFAULT 0;
