//! Every SQL statement the store sends, as static text with numbered parameters (`$n`). None is
//! checked against a database at compile time: building the crate needs no database.
//!
//! Times are bigint microseconds, hashes 32-byte bytea, family ids 16-byte bytea. Candidate
//! hashes (a token hashed under every key of the ring) are a bytea[]; the first candidate that
//! matches wins (`array_position`).

/// The family columns every query that returns a family selects, aliased `f_*`.
macro_rules! family_cols {
    () => {
        "f.id AS f_id, f.user_id AS f_user_id, f.client_id AS f_client_id, f.scope AS f_scope, \
         f.resources AS f_resources, f.created_at AS f_created_at, f.expires_at AS f_expires_at, \
         f.user_agent_hash AS f_ua, f.ip_hash AS f_ip, f.device_id_hash AS f_device, \
         f.revoked_at AS f_revoked_at, f.revoked_reason AS f_revoked_reason"
    };
}

/// The full columns of a refresh token `r`, aliased `r_*`, with its parent's and successor's
/// hashes (a generation-1 token's parent is the family's code).
macro_rules! refresh_cols {
    () => {
        "r.id AS r_id, r.token_hash AS r_hash, r.family_id AS r_family, r.generation AS r_generation, \
         r.issued_at AS r_issued_at, r.expires_at AS r_expires_at, r.used_at AS r_used_at, \
         r.replaced_by_id AS r_replaced_by_id, r.revoked_at AS r_revoked_at, \
         CASE WHEN r.parent_id IS NULL \
              THEN (SELECT pc.code_hash FROM portcullis_authorization_codes pc \
                    WHERE pc.family_id = r.family_id) \
              ELSE (SELECT pr.token_hash FROM portcullis_refresh_tokens pr WHERE pr.id = r.parent_id) \
         END AS r_parent, \
         (SELECT sr.token_hash FROM portcullis_refresh_tokens sr WHERE sr.id = r.replaced_by_id) \
             AS r_successor"
    };
}

/// The full columns of a code `c`, aliased `c_*`, with its successor's hash.
macro_rules! code_cols {
    () => {
        "c.id AS c_id, c.code_hash AS c_hash, c.family_id AS c_family, \
         c.redirect_uri AS c_redirect_uri, c.code_challenge AS c_challenge, \
         c.code_challenge_method AS c_method, c.issued_at AS c_issued_at, \
         c.expires_at AS c_expires_at, c.used_at AS c_used_at, \
         c.replaced_by_id AS c_replaced_by_id, \
         (SELECT sr.token_hash FROM portcullis_refresh_tokens sr WHERE sr.id = c.replaced_by_id) \
             AS c_successor"
    };
}

/// The columns of an access token `a`, aliased `a_*`.
macro_rules! access_cols {
    () => {
        "a.token_hash AS a_hash, a.family_id AS a_family, a.scope AS a_scope, \
         a.issued_at AS a_issued_at, a.expires_at AS a_expires_at, a.revoked_at AS a_revoked_at"
    };
}

/// Insert a family and its code in one statement.
///
/// $1 id, $2 user, $3 client, $4 scope, $5 resources, $6 created, $7 expires, $8..$10 binding
/// hashes, $11 code hash, $12 redirect URI, $13 challenge, $14 method, $15 code issued,
/// $16 code expires.
pub(crate) const CREATE_FAMILY: &str = "\
WITH fam AS (
    INSERT INTO portcullis_families
        (id, user_id, client_id, scope, resources, created_at, expires_at,
         user_agent_hash, ip_hash, device_id_hash)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
    RETURNING id
)
INSERT INTO portcullis_authorization_codes
    (code_hash, family_id, redirect_uri, code_challenge, code_challenge_method,
     issued_at, expires_at)
SELECT $11, fam.id, $12, $13, $14, $15, $16 FROM fam";

/// Redeem a code in one statement. The code's state and its family are read; if every check
/// of `decide::code` passes in SQL (a stored S256 challenge is compared here; a `plain` one is
/// left to the constant-time check in Rust), the code is marked used `WHERE used_at IS NULL`
/// (so of two concurrent redemptions one updates nothing), the binding is recorded, and the
/// first refresh token and access token are inserted, all driven by the update's `RETURNING`.
/// Returns the state as read, the hash of the code's current successor, and the new expiries
/// when this statement redeemed it.
///
/// $1 candidates, $2 client, $3 redirect URI, $4 now, $5 verifier kind (0 absent, 1 malformed,
/// 2 present), $6 S256 transform of the verifier, $7..$9 binding hashes, $10 refresh hash,
/// $11 access hash, $12 now + refresh idle lifetime, $13 now + access lifetime.
pub(crate) const REDEEM_CODE: &str = concat!(
    "WITH st AS (
    SELECT ",
    code_cols!(),
    ", ",
    family_cols!(),
    "
    FROM portcullis_authorization_codes c
    JOIN portcullis_families f ON f.id = c.family_id
    WHERE c.code_hash = ANY($1::bytea[])
    ORDER BY array_position($1::bytea[], c.code_hash)
    LIMIT 1
),
go AS (
    SELECT st.c_id, st.f_expires_at FROM st
    WHERE st.c_used_at IS NULL
      AND st.f_revoked_at IS NULL
      AND st.c_expires_at > $4 AND st.f_expires_at > $4
      AND st.f_client_id = $2::text
      AND st.c_redirect_uri = $3::text
      AND ((st.c_challenge IS NULL AND $5::smallint = 0)
           OR (st.c_method = 'S256' AND $5::smallint = 2 AND st.c_challenge = $6::text))
),
used AS (
    UPDATE portcullis_authorization_codes c
    SET used_at = $4, replaced_by_id = nextval('portcullis_refresh_tokens_id_seq')
    FROM go
    WHERE c.id = (SELECT g.c_id FROM go g) AND c.id = go.c_id AND c.used_at IS NULL
    RETURNING c.replaced_by_id, c.family_id, go.f_expires_at
),
fam AS (
    UPDATE portcullis_families f
    SET user_agent_hash = $7, ip_hash = $8, device_id_hash = $9
    FROM used u
    WHERE f.id = u.family_id
    RETURNING f.id
),
successor AS (
    INSERT INTO portcullis_refresh_tokens
        (id, token_hash, family_id, generation, parent_id, issued_at, expires_at)
    SELECT u.replaced_by_id, $10, u.family_id, 1, NULL, $4, LEAST($12, u.f_expires_at)
    FROM used u
    RETURNING expires_at
),
access AS (
    INSERT INTO portcullis_access_tokens (token_hash, family_id, scope, issued_at, expires_at)
    SELECT $11, u.family_id, NULL, $4, LEAST($13, u.f_expires_at)
    FROM used u
    RETURNING expires_at
)
SELECT st.*,
       (SELECT expires_at FROM successor) AS new_refresh_expires_at,
       (SELECT expires_at FROM access) AS new_access_expires_at
FROM st"
);

/// Rotate a refresh token in one statement, as [`REDEEM_CODE`] does for codes: read the token
/// and its family; if every check of `decide::refresh` for a plain rotation passes (unused, not
/// superseded, not expired, family live, same client, scope a subset, binding matching), mark it
/// used `WHERE used_at IS NULL AND revoked_at IS NULL`, insert its successor and an access
/// token. Returns the state as read (with the current successor's record) and the new
/// generation and expiries when this statement rotated it.
///
/// $1 candidates, $2 client, $3 requested scope (normal form) or NULL, $4 now, $5 successor
/// hash, $6 access hash, $7 now + refresh idle lifetime, $8 now + access lifetime, $9/$11/$13
/// compare user agent / IP prefix / device id, $10/$12/$14 their presented candidates.
pub(crate) const ROTATE_REFRESH: &str = concat!(
    "WITH st AS (
    SELECT r.id AS r_id, r.token_hash AS r_hash, r.family_id AS r_family,
           r.generation AS r_generation, r.issued_at AS r_issued_at,
           r.expires_at AS r_expires_at, r.used_at AS r_used_at,
           r.replaced_by_id AS r_replaced_by_id, r.revoked_at AS r_revoked_at, ",
    family_cols!(),
    "
    FROM portcullis_refresh_tokens r
    JOIN portcullis_families f ON f.id = r.family_id
    WHERE r.token_hash = ANY($1::bytea[])
    ORDER BY array_position($1::bytea[], r.token_hash)
    LIMIT 1
),
go AS (
    SELECT st.r_id, st.f_expires_at, st.f_scope FROM st
    WHERE st.r_used_at IS NULL AND st.r_revoked_at IS NULL
      AND st.r_expires_at > $4
      AND st.f_revoked_at IS NULL AND st.f_expires_at > $4
      AND st.f_client_id = $2::text
      AND ($3::text IS NULL
           OR string_to_array($3::text, ' ') <@ string_to_array(st.f_scope, ' '))
      AND (NOT $9::bool OR st.f_ua IS NULL OR st.f_ua = ANY($10::bytea[]))
      AND (NOT $11::bool OR st.f_ip IS NULL OR st.f_ip = ANY($12::bytea[]))
      AND (NOT $13::bool OR st.f_device IS NULL OR st.f_device = ANY($14::bytea[]))
),
used AS (
    UPDATE portcullis_refresh_tokens r
    SET used_at = $4, replaced_by_id = nextval('portcullis_refresh_tokens_id_seq')
    FROM go
    WHERE r.id = (SELECT g.r_id FROM go g) AND r.id = go.r_id
      AND r.used_at IS NULL AND r.revoked_at IS NULL
    RETURNING r.id, r.replaced_by_id, r.family_id, r.generation, go.f_expires_at, go.f_scope
),
successor AS (
    INSERT INTO portcullis_refresh_tokens
        (id, token_hash, family_id, generation, parent_id, issued_at, expires_at)
    SELECT u.replaced_by_id, $5, u.family_id, u.generation + 1, u.id, $4,
           LEAST($7, u.f_expires_at)
    FROM used u
    RETURNING generation, expires_at
),
access AS (
    INSERT INTO portcullis_access_tokens (token_hash, family_id, scope, issued_at, expires_at)
    SELECT $6, u.family_id,
           CASE WHEN $3::text IS NULL OR $3::text = u.f_scope THEN NULL ELSE $3::text END,
           $4, LEAST($8, u.f_expires_at)
    FROM used u
    RETURNING expires_at
)
SELECT st.*,
       s.token_hash AS s_hash, s.family_id AS s_family, s.generation AS s_generation,
       s.issued_at AS s_issued_at, s.expires_at AS s_expires_at, s.used_at AS s_used_at,
       s.revoked_at AS s_revoked_at,
       (SELECT generation FROM successor) AS new_generation,
       (SELECT expires_at FROM successor) AS new_refresh_expires_at,
       (SELECT expires_at FROM access) AS new_access_expires_at
FROM st
LEFT JOIN portcullis_refresh_tokens s ON s.id = st.r_replaced_by_id"
);

// --- the slow path: one short transaction, rows locked, decided in Rust -----------------------
// Lock order, the same everywhere: a code or refresh token row before its family row for codes
// (as the one-statement redemption does), the family row (FOR NO KEY UPDATE, which does not
// conflict with the KEY SHARE lock of the foreign-key checks of concurrent inserts) before
// refresh token rows for rotations.

/// Lock a family. $1 id.
pub(crate) const LOCK_FAMILY: &str = concat!(
    "SELECT ",
    family_cols!(),
    " FROM portcullis_families f WHERE f.id = $1 FOR NO KEY UPDATE"
);

/// Lock a code by id. $1 id.
pub(crate) const LOCK_CODE: &str = concat!(
    "SELECT ",
    code_cols!(),
    " FROM portcullis_authorization_codes c WHERE c.id = $1 FOR UPDATE OF c"
);

/// Lock a refresh token by id. $1 id.
pub(crate) const LOCK_REFRESH: &str = concat!(
    "SELECT ",
    refresh_cols!(),
    " FROM portcullis_refresh_tokens r WHERE r.id = $1 FOR UPDATE OF r"
);

/// Mark a locked code used, record the binding, insert the first refresh and access tokens.
/// Returns 1 row when done. $1 code id, $2 now, $3..$5 binding, $6 refresh hash, $7 refresh
/// expiry, $8 access hash, $9 access expiry.
pub(crate) const APPLY_REDEEM: &str = "\
WITH used AS (
    UPDATE portcullis_authorization_codes
    SET used_at = $2, replaced_by_id = nextval('portcullis_refresh_tokens_id_seq')
    WHERE id = $1 AND used_at IS NULL
    RETURNING replaced_by_id, family_id
),
fam AS (
    UPDATE portcullis_families f
    SET user_agent_hash = $3, ip_hash = $4, device_id_hash = $5
    FROM used u WHERE f.id = u.family_id
    RETURNING f.id
),
successor AS (
    INSERT INTO portcullis_refresh_tokens
        (id, token_hash, family_id, generation, parent_id, issued_at, expires_at)
    SELECT u.replaced_by_id, $6, u.family_id, 1, NULL, $2, $7 FROM used u
    RETURNING id
),
access AS (
    INSERT INTO portcullis_access_tokens (token_hash, family_id, scope, issued_at, expires_at)
    SELECT $8, u.family_id, NULL, $2, $9 FROM used u
    RETURNING family_id
)
SELECT 1 FROM successor, access";

/// Mark a locked refresh token used, insert its successor and an access token. Returns 1 row
/// when done. $1 token id, $2 now, $3 successor hash, $4 refresh expiry, $5 access hash,
/// $6 narrowed access scope or NULL, $7 access expiry.
pub(crate) const APPLY_ROTATE: &str = "\
WITH used AS (
    UPDATE portcullis_refresh_tokens
    SET used_at = $2, replaced_by_id = nextval('portcullis_refresh_tokens_id_seq')
    WHERE id = $1 AND used_at IS NULL AND revoked_at IS NULL
    RETURNING id, replaced_by_id, family_id, generation
),
successor AS (
    INSERT INTO portcullis_refresh_tokens
        (id, token_hash, family_id, generation, parent_id, issued_at, expires_at)
    SELECT u.replaced_by_id, $3, u.family_id, u.generation + 1, u.id, $2, $4 FROM used u
    RETURNING id
),
access AS (
    INSERT INTO portcullis_access_tokens (token_hash, family_id, scope, issued_at, expires_at)
    SELECT $5, u.family_id, $6, $2, $7 FROM used u
    RETURNING family_id
)
SELECT 1 FROM successor, access";

/// A grace reissue on locked rows: supersede the token's live successor, insert a fresh one
/// (with the superseded one's generation) and an access token, and point the token at it.
/// Returns the new generation when done. $1 token id, $2 now, $3 superseded id, $4 new hash,
/// $5 refresh expiry, $6 access hash, $7 narrowed scope or NULL, $8 access expiry.
pub(crate) const APPLY_GRACE: &str = "\
WITH sup AS (
    UPDATE portcullis_refresh_tokens
    SET revoked_at = $2
    WHERE id = $3 AND used_at IS NULL AND revoked_at IS NULL
    RETURNING family_id, generation
),
successor AS (
    INSERT INTO portcullis_refresh_tokens
        (id, token_hash, family_id, generation, parent_id, issued_at, expires_at)
    SELECT nextval('portcullis_refresh_tokens_id_seq'), $4, s.family_id, s.generation, $1, $2, $5
    FROM sup s
    RETURNING id, family_id, generation
),
token AS (
    UPDATE portcullis_refresh_tokens r
    SET replaced_by_id = n.id
    FROM successor n
    WHERE r.id = $1 AND r.used_at IS NOT NULL
    RETURNING r.id
),
access AS (
    INSERT INTO portcullis_access_tokens (token_hash, family_id, scope, issued_at, expires_at)
    SELECT $6, n.family_id, $7, $2, $8 FROM successor n
    RETURNING family_id
)
SELECT n.generation FROM successor n, token, access";

/// Revoke a family unless it is revoked already. $1 id, $2 now, $3 reason.
pub(crate) const REVOKE_FAMILY: &str = "\
UPDATE portcullis_families SET revoked_at = $2, revoked_reason = $3
WHERE id = $1 AND revoked_at IS NULL AND expires_at > $2";

/// Revoke every live family of a user. $1 user, $2 now, $3 reason.
pub(crate) const REVOKE_USER: &str = "\
UPDATE portcullis_families SET revoked_at = $2, revoked_reason = $3
WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
RETURNING id";

/// Revoke every live family of a client. $1 client, $2 now, $3 reason.
pub(crate) const REVOKE_CLIENT: &str = "\
UPDATE portcullis_families SET revoked_at = $2, revoked_reason = $3
WHERE client_id = $1 AND revoked_at IS NULL AND expires_at > $2
RETURNING id";

/// RFC 7009 for a code or refresh token (`{table}`/`{hash}` filled by [`revoke_credential`]):
/// find it with its family; if it is active and the client's, revoke the family.
/// $1 candidates, $2 now, $3 client.
macro_rules! revoke_credential {
    ($table:literal, $hash:literal) => {
        concat!(
            "WITH t AS (
    SELECT x.family_id, x.expires_at FROM ",
            $table,
            " x WHERE x.",
            $hash,
            " = ANY($1::bytea[]) ORDER BY array_position($1::bytea[], x.",
            $hash,
            ") LIMIT 1
),
st AS (
    SELECT f.id, f.client_id, f.revoked_at, f.expires_at AS f_expires_at,
           t.expires_at AS t_expires_at
    FROM t JOIN portcullis_families f ON f.id = t.family_id
),
rev AS (
    UPDATE portcullis_families f
    SET revoked_at = $2, revoked_reason = 'token_revoked'
    FROM st
    WHERE f.id = st.id AND st.revoked_at IS NULL AND st.f_expires_at > $2
      AND st.t_expires_at > $2 AND st.client_id = $3::text AND f.revoked_at IS NULL
    RETURNING f.id
)
SELECT st.id AS family, st.client_id, st.revoked_at IS NULL AND st.f_expires_at > $2
       AND st.t_expires_at > $2 AS active, EXISTS (SELECT 1 FROM rev) AS revoked
FROM st"
        )
    };
}

/// [`revoke_credential`] for codes.
pub(crate) const REVOKE_CODE: &str =
    revoke_credential!("portcullis_authorization_codes", "code_hash");
/// [`revoke_credential`] for refresh tokens.
pub(crate) const REVOKE_REFRESH: &str =
    revoke_credential!("portcullis_refresh_tokens", "token_hash");

/// RFC 7009 for an access token: if it is active and the client's, revoke it alone.
/// $1 candidates, $2 now, $3 client.
pub(crate) const REVOKE_ACCESS: &str = "\
WITH st AS (
    SELECT a.token_hash, f.id, f.client_id,
           a.revoked_at IS NULL AND a.expires_at > $2
           AND f.revoked_at IS NULL AND f.expires_at > $2 AS active
    FROM portcullis_access_tokens a
    JOIN portcullis_families f ON f.id = a.family_id
    WHERE a.token_hash = ANY($1::bytea[])
    ORDER BY array_position($1::bytea[], a.token_hash)
    LIMIT 1
),
rev AS (
    UPDATE portcullis_access_tokens a
    SET revoked_at = $2
    FROM st
    WHERE a.token_hash = st.token_hash AND st.active AND st.client_id = $3::text
      AND a.revoked_at IS NULL
    RETURNING 1
)
SELECT st.id AS family, st.client_id, st.active, EXISTS (SELECT 1 FROM rev) AS revoked
FROM st";

/// A refresh token with its family, by candidates. $1 candidates.
pub(crate) const FIND_REFRESH: &str = concat!(
    "SELECT ",
    refresh_cols!(),
    ", ",
    family_cols!(),
    " FROM portcullis_refresh_tokens r JOIN portcullis_families f ON f.id = r.family_id
    WHERE r.token_hash = ANY($1::bytea[])
    ORDER BY array_position($1::bytea[], r.token_hash) LIMIT 1"
);

/// A code with its family, by candidates. $1 candidates.
pub(crate) const FIND_CODE: &str = concat!(
    "SELECT ",
    code_cols!(),
    ", ",
    family_cols!(),
    " FROM portcullis_authorization_codes c JOIN portcullis_families f ON f.id = c.family_id
    WHERE c.code_hash = ANY($1::bytea[])
    ORDER BY array_position($1::bytea[], c.code_hash) LIMIT 1"
);

/// An access token with its family, by candidates. $1 candidates.
pub(crate) const FIND_ACCESS: &str = concat!(
    "SELECT ",
    access_cols!(),
    ", ",
    family_cols!(),
    " FROM portcullis_access_tokens a JOIN portcullis_families f ON f.id = a.family_id
    WHERE a.token_hash = ANY($1::bytea[])
    ORDER BY array_position($1::bytea[], a.token_hash) LIMIT 1"
);

/// A family by id. $1 id.
pub(crate) const FAMILY: &str = concat!(
    "SELECT ",
    family_cols!(),
    " FROM portcullis_families f WHERE f.id = $1"
);

/// A family's code. $1 family id.
pub(crate) const FAMILY_CODES: &str = concat!(
    "SELECT ",
    code_cols!(),
    " FROM portcullis_authorization_codes c WHERE c.family_id = $1"
);

/// A family's refresh tokens. $1 family id.
pub(crate) const FAMILY_REFRESH: &str = concat!(
    "SELECT ",
    refresh_cols!(),
    " FROM portcullis_refresh_tokens r WHERE r.family_id = $1"
);

/// A family's access tokens. $1 family id.
pub(crate) const FAMILY_ACCESS: &str = concat!(
    "SELECT ",
    access_cols!(),
    " FROM portcullis_access_tokens a WHERE a.family_id = $1"
);

// --- purge: each statement deletes at most $2 rows, skipping rows other transactions hold ------

/// A revoked or expired family (the predicate purge deletes everything of).
macro_rules! dead {
    ($f:literal) => {
        concat!(
            "(",
            $f,
            ".revoked_at IS NOT NULL OR ",
            $f,
            ".expires_at <= $1)"
        )
    };
}

/// Access tokens of dead families. $1 now, $2 limit.
pub(crate) const PURGE_DEAD_ACCESS: &str = concat!(
    "DELETE FROM portcullis_access_tokens WHERE token_hash IN (
    SELECT a.token_hash FROM portcullis_access_tokens a
    JOIN portcullis_families f ON f.id = a.family_id
    WHERE ",
    dead!("f"),
    " LIMIT $2 FOR UPDATE OF a SKIP LOCKED)"
);

/// Refresh tokens of dead families. $1 now, $2 limit.
pub(crate) const PURGE_DEAD_REFRESH: &str = concat!(
    "DELETE FROM portcullis_refresh_tokens WHERE id IN (
    SELECT r.id FROM portcullis_refresh_tokens r
    JOIN portcullis_families f ON f.id = r.family_id
    WHERE ",
    dead!("f"),
    " LIMIT $2 FOR UPDATE OF r SKIP LOCKED)"
);

/// Codes of dead families. $1 now, $2 limit.
pub(crate) const PURGE_DEAD_CODES: &str = concat!(
    "DELETE FROM portcullis_authorization_codes WHERE id IN (
    SELECT c.id FROM portcullis_authorization_codes c
    JOIN portcullis_families f ON f.id = c.family_id
    WHERE ",
    dead!("f"),
    " LIMIT $2 FOR UPDATE OF c SKIP LOCKED)"
);

/// Dead families with nothing left in them. $1 now, $2 limit.
pub(crate) const PURGE_DEAD_FAMILIES: &str = concat!(
    "DELETE FROM portcullis_families WHERE id IN (
    SELECT f.id FROM portcullis_families f
    WHERE ",
    dead!("f"),
    "
      AND NOT EXISTS (SELECT 1 FROM portcullis_authorization_codes c WHERE c.family_id = f.id)
      AND NOT EXISTS (SELECT 1 FROM portcullis_refresh_tokens r WHERE r.family_id = f.id)
      AND NOT EXISTS (SELECT 1 FROM portcullis_access_tokens a WHERE a.family_id = f.id)
    LIMIT $2 FOR UPDATE OF f SKIP LOCKED)"
);

/// Expired access tokens. $1 now, $2 limit.
pub(crate) const PURGE_EXPIRED_ACCESS: &str = "\
DELETE FROM portcullis_access_tokens WHERE token_hash IN (
    SELECT a.token_hash FROM portcullis_access_tokens a WHERE a.expires_at <= $1
    LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING family_id";

/// Access tokens revoked one by one (RFC 7009). $1 now (unused), $2 limit.
pub(crate) const PURGE_REVOKED_ACCESS: &str = "\
DELETE FROM portcullis_access_tokens WHERE token_hash IN (
    SELECT a.token_hash FROM portcullis_access_tokens a
    WHERE a.revoked_at IS NOT NULL AND $1::bigint IS NOT NULL
    LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING family_id";

/// Expired refresh tokens (used ones are kept until then: replays are still detected).
/// $1 now, $2 limit.
pub(crate) const PURGE_REFRESH: &str = "\
DELETE FROM portcullis_refresh_tokens WHERE id IN (
    SELECT r.id FROM portcullis_refresh_tokens r WHERE r.expires_at <= $1
    LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING family_id";

/// Expired codes. $1 now, $2 limit.
pub(crate) const PURGE_CODES: &str = "\
DELETE FROM portcullis_authorization_codes WHERE id IN (
    SELECT c.id FROM portcullis_authorization_codes c WHERE c.expires_at <= $1
    LIMIT $2 FOR UPDATE SKIP LOCKED)
RETURNING family_id";

/// Families (among $1) left with nothing in them: they can never be used again.
/// $1 family ids, $2 limit.
pub(crate) const PURGE_EMPTY_FAMILIES: &str = "\
DELETE FROM portcullis_families WHERE id IN (
    SELECT f.id FROM portcullis_families f
    WHERE f.id = ANY($1::bytea[])
      AND NOT EXISTS (SELECT 1 FROM portcullis_authorization_codes c WHERE c.family_id = f.id)
      AND NOT EXISTS (SELECT 1 FROM portcullis_refresh_tokens r WHERE r.family_id = f.id)
      AND NOT EXISTS (SELECT 1 FROM portcullis_access_tokens a WHERE a.family_id = f.id)
    LIMIT $2 FOR UPDATE OF f SKIP LOCKED)";
