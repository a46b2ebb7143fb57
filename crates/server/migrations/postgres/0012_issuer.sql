-- Issuer identification (RFC 9207, RFC 8414).
--
-- `managed_oauth_apps.issuer`: the issuer identifier an account admin gave
-- with the tenant's OAuth application (optional).
-- `oauth_states.issuer`: the issuer a pending login expects in the callback's
-- `iss`, decided at the start (the managed application's, else the manifest's
-- `auth.oauth.issuer`). NULL: none declared; `iss` is then compared with the
-- origins of the authorize and token endpoints.
ALTER TABLE managed_oauth_apps ADD COLUMN issuer TEXT;
ALTER TABLE oauth_states ADD COLUMN issuer TEXT;
