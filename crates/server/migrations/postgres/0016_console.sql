-- The web console. Connect sessions: what a platform's backend creates (with a
-- service key) so that one user of one account can log in to one connector
-- through the host's connect pages. Only the SHA-256 of the session token and
-- of the browser's cookie are stored. The token is redeemed once (redeemed_at)
-- before expires_at; the browser that redeemed it then holds the cookie whose
-- hash is browser_hash until the login completes (completed_at) or the session
-- expires. oauth_state_hash binds an OAuth login started on the pages to that
-- browser: the host's callback page completes it only with the same cookie.
CREATE TABLE IF NOT EXISTS connect_sessions (
    token_hash       TEXT PRIMARY KEY,
    account_id       TEXT NOT NULL,
    user_id          TEXT NOT NULL,
    connector_id     TEXT NOT NULL,
    return_url       TEXT,
    created_by       TEXT NOT NULL,
    created_at       BIGINT NOT NULL,
    expires_at       BIGINT NOT NULL,
    redeemed_at      BIGINT,
    browser_hash     TEXT,
    oauth_state_hash TEXT,
    completed_at     BIGINT,
    connection_id    TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS connect_sessions_browser ON connect_sessions (browser_hash);
CREATE INDEX IF NOT EXISTS connect_sessions_expiry ON connect_sessions (expires_at);

-- Console sessions of operators and account admins: the SHA-256 of the
-- HttpOnly cookie, the API key it was opened with (checked again on every
-- request, so revoking the key ends the session) and its expiry.
CREATE TABLE IF NOT EXISTS console_sessions (
    session_hash TEXT PRIMARY KEY,
    key_id       TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS console_sessions_expiry ON console_sessions (expires_at);
