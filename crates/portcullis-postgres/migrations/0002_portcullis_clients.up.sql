-- portcullis-postgres schema version 2: registered OAuth clients (RFC 7591), for servers that
-- keep their client registry next to their grants. Client secrets are stored only as keyed
-- hashes (`portcullis_hash::Purpose::ClientSecret`). Reversible: see the .down.sql script.
CREATE TABLE portcullis_clients (
    client_id text PRIMARY KEY CHECK (client_id <> ''),
    -- NULL for clients without a secret (public clients, `token_endpoint_auth_method` none).
    client_secret_hash bytea CHECK (octet_length(client_secret_hash) = 32),
    client_name text,
    redirect_uris text[] NOT NULL,
    grant_types text[] NOT NULL DEFAULT '{authorization_code}',
    response_types text[] NOT NULL DEFAULT '{code}',
    token_endpoint_auth_method text NOT NULL,
    scope text,
    -- The rest of the registered metadata as a JSON document, kept as the server wrote it.
    metadata text NOT NULL DEFAULT '{}',
    created_at bigint NOT NULL CHECK (created_at >= 0),
    -- When the secret expires (microseconds); NULL: never (RFC 7591 `client_secret_expires_at` 0).
    secret_expires_at bigint CHECK (secret_expires_at >= 0),
    -- A public client never has a secret.
    CHECK (token_endpoint_auth_method <> 'none' OR client_secret_hash IS NULL)
);

UPDATE portcullis_schema_version SET version = 2;
