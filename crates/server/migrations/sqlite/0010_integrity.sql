-- Against someone who can write the database (docs/SECURITY.md, "Database writer").
--
-- Each webhook_outbox row carries a MAC keyed from the master keys (which live
-- outside the database), over its id, type, payload and creation time; a row
-- whose MAC does not verify is marked failed and never signed or sent
-- (crates/server/src/events/store.rs).
ALTER TABLE webhook_outbox ADD COLUMN mac TEXT;

-- One-time data upgrades run at startup after the schema migrations
-- (crates/server/src/store/upgrades.rs): `user-bound-secrets` re-encrypts
-- connection secrets with the user in their associated data; `outbox-mac`
-- gives the rows pending at the upgrade their MAC.
CREATE TABLE IF NOT EXISTS data_upgrades (
    name    TEXT PRIMARY KEY,
    done_at BIGINT NOT NULL
);
