-- The fingerprints of the installation's secrets (GALAXY_LOGIN_CODE_KEY,
-- GALAXY_ENGINE_SECRET), recorded by the first server to start: a replica holding another
-- value refuses to start, where it would otherwise refuse the other replicas' login
-- codes, re-issue their orders addresses and hand engines tokens they refuse. Eight bytes
-- of an HMAC keyed by the secret: enough to tell values apart; like any fingerprint it
-- confirms a guess of the secret, which is why the secrets are random (256 bits when
-- generated). `galaxy-cli secrets reset` empties the table after a deliberate change.
CREATE TABLE installation_keys (
    name        text PRIMARY KEY,
    fingerprint bytea NOT NULL CHECK (octet_length(fingerprint) = 8),
    recorded_at timestamptz NOT NULL
);
