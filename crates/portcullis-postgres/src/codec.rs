//! Between the model's types and columns: times as bigint microseconds, hashes and ids as bytea,
//! and the decoding of the rows the statements in [`sql`](crate::sql) return.

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_pkce::{ChallengeMethod, CodeChallenge};
use portcullis_rotation::{
    AccessToken, Binding, CodeTerms, Credential, Family, FamilyId, Revocation, RevocationReason,
    Scope, StoreError, TokenKind,
};
use sqlx::Row as _;
use sqlx::postgres::PgRow;

/// A decoding failure: a row that does not hold what the schema promises.
#[derive(Debug, thiserror::Error)]
#[error("a stored record does not decode: {0}")]
pub(crate) struct Corrupt(pub(crate) String);

fn corrupt(what: impl Into<String>) -> StoreError {
    StoreError::backend(Corrupt(what.into()))
}

/// A time as stored: microseconds, saturating at `i64::MAX` (about 292,000 years after 1970).
pub(crate) fn micros(t: UnixTime) -> i64 {
    i64::try_from(t.as_micros()).unwrap_or(i64::MAX)
}

/// A stored time.
pub(crate) fn time(v: i64) -> Result<UnixTime, StoreError> {
    u64::try_from(v)
        .map(UnixTime::from_micros)
        .map_err(|_| corrupt("a negative time"))
}

fn opt_time(v: Option<i64>) -> Result<Option<UnixTime>, StoreError> {
    v.map(time).transpose()
}

/// A stored 32-byte hash.
pub(crate) fn hash(v: &[u8]) -> Result<TokenHash, StoreError> {
    TokenHash::from_slice(v).ok_or_else(|| corrupt("a hash that is not 32 bytes"))
}

fn opt_hash(v: Option<Vec<u8>>) -> Result<Option<TokenHash>, StoreError> {
    v.as_deref().map(hash).transpose()
}

/// A stored family id.
pub(crate) fn family_id(v: &[u8]) -> Result<FamilyId, StoreError> {
    <[u8; 16]>::try_from(v)
        .map(FamilyId::from_bytes)
        .map_err(|_| corrupt("a family id that is not 16 bytes"))
}

/// A list of hashes as a bytea[] parameter.
pub(crate) fn hashes(candidates: &[TokenHash]) -> Vec<[u8; 32]> {
    candidates.iter().map(|h| *h.as_bytes()).collect()
}

/// A generation as stored.
pub(crate) fn generation(v: i64) -> Result<u32, StoreError> {
    u32::try_from(v).map_err(|_| corrupt("a generation out of range"))
}

fn get<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    row.try_get(col).map_err(StoreError::backend)
}

/// Read a column of `row`.
pub(crate) fn col<'r, T>(row: &'r PgRow, col: &str) -> Result<T, StoreError>
where
    T: sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres>,
{
    get(row, col)
}

fn scope(s: &str) -> Result<Scope, StoreError> {
    Scope::parse(s).map_err(|_| corrupt("a scope that does not parse"))
}

/// The family in the `f_*` columns of `row`.
pub(crate) fn family(row: &PgRow) -> Result<Family, StoreError> {
    let revoked = match (
        get::<Option<i64>>(row, "f_revoked_at")?,
        get::<Option<String>>(row, "f_revoked_reason")?,
    ) {
        (None, None) => None,
        (Some(at), Some(reason)) => Some(Revocation {
            at: time(at)?,
            reason: RevocationReason::from_name(&reason)
                .ok_or_else(|| corrupt("an unknown revocation reason"))?,
        }),
        _ => return Err(corrupt("a revocation time without a reason")),
    };
    Ok(Family {
        id: family_id(&get::<Vec<u8>>(row, "f_id")?)?,
        user_id: get(row, "f_user_id")?,
        client_id: get(row, "f_client_id")?,
        scope: scope(&get::<String>(row, "f_scope")?)?,
        resources: get(row, "f_resources")?,
        created_at: time(get(row, "f_created_at")?)?,
        expires_at: time(get(row, "f_expires_at")?)?,
        binding: Binding {
            user_agent: opt_hash(get(row, "f_ua")?)?,
            ip_prefix: opt_hash(get(row, "f_ip")?)?,
            device_id: opt_hash(get(row, "f_device")?)?,
        },
        revoked,
    })
}

/// The code in the `c_*` columns of `row`.
pub(crate) fn code(row: &PgRow) -> Result<Credential, StoreError> {
    let challenge = match (
        get::<Option<String>>(row, "c_challenge")?,
        get::<Option<String>>(row, "c_method")?,
    ) {
        (None, None) => None,
        (Some(value), Some(method)) => {
            let method: ChallengeMethod = method
                .parse()
                .map_err(|_| corrupt("an unknown PKCE method"))?;
            Some(
                CodeChallenge::new(value, method)
                    .map_err(|_| corrupt("a malformed PKCE challenge"))?,
            )
        }
        _ => return Err(corrupt("a PKCE challenge without its method")),
    };
    Ok(Credential {
        hash: hash(&get::<Vec<u8>>(row, "c_hash")?)?,
        kind: TokenKind::AuthorizationCode,
        family: family_id(&get::<Vec<u8>>(row, "c_family")?)?,
        generation: 0,
        parent: None,
        issued_at: time(get(row, "c_issued_at")?)?,
        expires_at: time(get(row, "c_expires_at")?)?,
        used_at: opt_time(get(row, "c_used_at")?)?,
        successor: opt_hash(get(row, "c_successor")?)?,
        revoked_at: None,
        code_terms: Some(CodeTerms {
            redirect_uri: get(row, "c_redirect_uri")?,
            challenge,
        }),
    })
}

/// The refresh token in the `{p}_*` columns of `row` (`r` or `s`). `parent` and `successor`
/// come from the `{p}_parent` / `{p}_successor` columns when `with_links`.
pub(crate) fn refresh(row: &PgRow, with_links: bool) -> Result<Credential, StoreError> {
    let (parent, successor) = if with_links {
        (
            opt_hash(get(row, "r_parent")?)?,
            opt_hash(get(row, "r_successor")?)?,
        )
    } else {
        (None, None)
    };
    Ok(Credential {
        hash: hash(&get::<Vec<u8>>(row, "r_hash")?)?,
        kind: TokenKind::RefreshToken,
        family: family_id(&get::<Vec<u8>>(row, "r_family")?)?,
        generation: generation(get(row, "r_generation")?)?,
        parent,
        issued_at: time(get(row, "r_issued_at")?)?,
        expires_at: time(get(row, "r_expires_at")?)?,
        used_at: opt_time(get(row, "r_used_at")?)?,
        successor,
        revoked_at: opt_time(get(row, "r_revoked_at")?)?,
        code_terms: None,
    })
}

/// The successor record in the `s_*` columns of a rotation's state row, if there is one.
pub(crate) fn successor(row: &PgRow) -> Result<Option<Credential>, StoreError> {
    let Some(h) = get::<Option<Vec<u8>>>(row, "s_hash")? else {
        return Ok(None);
    };
    let family = get::<Option<Vec<u8>>>(row, "s_family")?
        .ok_or_else(|| corrupt("a successor without a family"))?;
    let req = |c: &str| -> Result<i64, StoreError> {
        get::<Option<i64>>(row, c)?.ok_or_else(|| corrupt("a successor without its times"))
    };
    Ok(Some(Credential {
        hash: hash(&h)?,
        kind: TokenKind::RefreshToken,
        family: family_id(&family)?,
        generation: generation(req("s_generation")?)?,
        parent: None,
        issued_at: time(req("s_issued_at")?)?,
        expires_at: time(req("s_expires_at")?)?,
        used_at: opt_time(get(row, "s_used_at")?)?,
        successor: None,
        revoked_at: opt_time(get(row, "s_revoked_at")?)?,
        code_terms: None,
    }))
}

/// The access token in the `a_*` columns of `row`.
pub(crate) fn access(row: &PgRow) -> Result<AccessToken, StoreError> {
    Ok(AccessToken {
        hash: hash(&get::<Vec<u8>>(row, "a_hash")?)?,
        family: family_id(&get::<Vec<u8>>(row, "a_family")?)?,
        scope: get::<Option<String>>(row, "a_scope")?
            .as_deref()
            .map(scope)
            .transpose()?,
        issued_at: time(get(row, "a_issued_at")?)?,
        expires_at: time(get(row, "a_expires_at")?)?,
        revoked_at: opt_time(get(row, "a_revoked_at")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_round_trip_and_saturate() {
        let t = UnixTime::from_secs(1_700_000_000);
        assert_eq!(time(micros(t)).unwrap(), t);
        assert_eq!(micros(UnixTime::from_micros(u64::MAX)), i64::MAX);
        assert!(time(-1).is_err());
    }

    #[test]
    fn ids_and_hashes_check_their_length() {
        assert!(hash(&[0; 31]).is_err());
        assert_eq!(hash(&[7; 32]).unwrap(), TokenHash::from_bytes([7; 32]));
        assert!(family_id(&[0; 15]).is_err());
        assert_eq!(family_id(&[1; 16]).unwrap(), FamilyId::from_bytes([1; 16]));
        assert!(generation(-1).is_err());
        assert!(generation(i64::from(u32::MAX) + 1).is_err());
        assert_eq!(generation(3).unwrap(), 3);
    }
}
