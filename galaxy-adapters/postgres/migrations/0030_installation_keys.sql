-- The fingerprints of the installation's secrets (GALAXY_LOGIN_CODE_KEY,
-- GALAXY_ENGINE_SECRET), recorded by the first server to start: a replica holding another
-- value refuses to start, where it would otherwise refuse the other replicas' login
-- codes, re-issue their orders addresses and hand engines tokens they refuse. Eight bytes
-- of an HMAC under the secret: enough to tell values apart, too few to check a guess of
-- the secret against with any confidence. `galaxy-cli secrets reset` empties the table
-- after a deliberate change.
CREATE TABLE installation_keys (
    name        text PRIMARY KEY,
    fingerprint bytea NOT NULL CHECK (octet_length(fingerprint) = 8),
    recorded_at timestamptz NOT NULL
);
