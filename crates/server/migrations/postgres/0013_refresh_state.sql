-- When a connection's access token was last refreshed (Unix milliseconds,
-- so that callers forcing a refresh within one second share it; NULL: never
-- since the login). With `refresh_failures`, `next_refresh_at` and
-- `last_refresh_error` it is the connection's refresh state in the API.
ALTER TABLE connections ADD COLUMN last_refreshed_at_ms BIGINT;
