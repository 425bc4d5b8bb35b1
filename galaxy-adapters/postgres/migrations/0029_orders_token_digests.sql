-- Orders tokens are no longer stored (SPEC: secrets stored hashed). An address keeps the
-- random seed its token is derived from under the server's key (HMAC-SHA256, the key made
-- from GALAXY_LOGIN_CODE_KEY, never in the database) and the token's SHA-256, by which a
-- mail's token is found. A copy of this table alone gives neither a token nor a way to
-- mail orders in a player's name.
--
-- An address made before this migration cannot be derived (its token was random): it
-- gets the digest of its token, so mail to it keeps working, and a seed of zeros, whose
-- derived token never matches that digest. The first time such an address is shown (a
-- page, a turn mail), the server issues it a new token in its place and the old address
-- stops working, as after a rotation.
ALTER TABLE orders_addresses
    ADD COLUMN token_seed bytea,
    ADD COLUMN token_digest bytea;

UPDATE orders_addresses
    SET token_seed = '\x00000000000000000000000000000000'::bytea,
        token_digest = sha256(convert_to('galaxy orders token', 'UTF8') || '\x00'::bytea
                              || convert_to(token, 'UTF8'));

ALTER TABLE orders_addresses
    ALTER COLUMN token_seed SET NOT NULL,
    ALTER COLUMN token_digest SET NOT NULL,
    ADD CONSTRAINT orders_addresses_token_seed_length CHECK (octet_length(token_seed) = 16),
    ADD CONSTRAINT orders_addresses_token_digest_length CHECK (octet_length(token_digest) = 32),
    ADD CONSTRAINT orders_addresses_token_digest_key UNIQUE (token_digest),
    DROP COLUMN token;
