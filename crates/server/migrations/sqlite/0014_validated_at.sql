-- When the background validation (or `POST …/validate`) last ran the
-- connector's `auth-validation` hook on a connection (Unix seconds; NULL:
-- never, counted from `created_at`). The background validation claims a
-- connection by moving it forward with a compare-and-set, so two replicas
-- never validate the same connection in the same interval.
ALTER TABLE connections ADD COLUMN validated_at BIGINT;
-- The background validation's selection: active connections, longest
-- unvalidated first.
CREATE INDEX IF NOT EXISTS connections_by_validation ON connections (status, (COALESCE(validated_at, created_at)));
