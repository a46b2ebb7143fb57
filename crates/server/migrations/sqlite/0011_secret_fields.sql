-- Secret fields of API-key forms (manifest `secret: true`, docs/SECURITY.md).
--
-- One AES-GCM envelope of a JSON map `const -> value`, bound like the other
-- connection secrets to account, user, connector, row and the purpose
-- `secret_fields` (crates/server/src/store/connections/mod.rs). Those values
-- are never written to `additional_info`, and NULL when the connector declares
-- no secret field or the connection is logged out.
ALTER TABLE connections ADD COLUMN secret_fields TEXT;
