-- Pending OAuth authorizations. The state itself is never stored, only its
-- SHA-256; the PKCE verifier is an AEAD envelope. Single use (used_at), expiring.
CREATE TABLE IF NOT EXISTS oauth_states (
    state_hash    TEXT PRIMARY KEY,
    connector_id  TEXT NOT NULL,
    account_id    TEXT NOT NULL,
    user_id       TEXT NOT NULL,
    redirect_uri  TEXT NOT NULL,
    code_verifier TEXT,
    authorize_url TEXT NOT NULL,
    inputs        TEXT NOT NULL,
    custom_state  TEXT,
    expires_at    BIGINT NOT NULL,
    used_at       BIGINT
);
