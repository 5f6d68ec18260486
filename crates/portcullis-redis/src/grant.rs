//! [`RedisGrantStore`]: the rotation crate's [`GrantStore`] on Redis and Redis Cluster.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_pkce::PkceError;
use portcullis_pkce::{ChallengeMethod, CodeChallenge, CodeVerifier};
use portcullis_rotation::{
    AccessToken, Binding, BindingAction, BindingMismatch, BindingMode, BindingReport, CodeOutcome,
    CodeRedemption, CodeTerms, Credential, Family, FamilyId, FamilyRef, FamilySnapshot, Found,
    GrantStore, HashPrefix, Issued, MAX_GRACE_WINDOW, PurgeReport, RefreshOutcome, RefreshRotation,
    Rejection, Revocation, RevocationReason, RevokeOutcome, Scope, StoreError, TokenKind,
    TokenRevocation, VerifierProof,
};
use redis::Script;
use serde::{Deserialize, Serialize};

use crate::connection::RedisConnection;
use crate::error::{self, bad};
use crate::keys::{self, ACCESS, CODE, GrantKeys, PURGE_BUCKETS, PrefixError, REFRESH, hash_hex};
use crate::{TimeSource, join_all};

/// Families one purge script looks at, at most (single node): keeps each script short so that
/// it never blocks the server for long. Source: a family's purge is a few dozen commands; 64
/// of them run in well under a millisecond.
const PURGE_CHUNK: usize = 64;

/// The largest microsecond count a script receives: 2^52, so that `now + lifetime` stays an
/// exact integer in a Lua double (below 2^53) until the year 2112.
const MAX_LUA_MICROS: u64 = 1 << 52;

struct Scripts {
    create: Script,
    index_add: Script,
    redeem: Script,
    rotate: Script,
    find: Script,
    revoke_token: Script,
    revoke_family: Script,
    revoke_owner: Script,
    snapshot: Script,
    purge: Script,
}

const PRELUDE: &str = include_str!("lua/grant_prelude.lua");
const REDEEM: &str = include_str!("lua/grant_redeem.lua");
const INDEX: &str = include_str!("lua/grant_index.lua");

/// A script: the prelude, the helpers it needs, its body.
fn script(parts: &[&str]) -> Script {
    Script::new(
        &[PRELUDE]
            .iter()
            .chain(parts)
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
    )
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    create: script(&[INDEX, include_str!("lua/create_family.lua")]),
    index_add: script(&[INDEX, include_str!("lua/index_add.lua")]),
    redeem: script(&[REDEEM, include_str!("lua/redeem_code.lua")]),
    rotate: script(&[REDEEM, include_str!("lua/rotate_refresh.lua")]),
    find: script(&[include_str!("lua/find.lua")]),
    revoke_token: script(&[include_str!("lua/revoke_token.lua")]),
    revoke_family: script(&[include_str!("lua/revoke_family.lua")]),
    revoke_owner: script(&[include_str!("lua/revoke_owner.lua")]),
    snapshot: script(&[include_str!("lua/snapshot.lua")]),
    purge: script(&[INDEX, include_str!("lua/purge.lua")]),
});

/// A family as stored: JSON, every time an integer of microseconds written as a string (Lua's
/// JSON encoder would print large numbers in floating point).
#[derive(Debug, Serialize, Deserialize)]
struct FamRec {
    /// user
    u: String,
    /// client
    c: String,
    /// scope (normal form)
    s: String,
    /// resources: a JSON array, kept as one string (Lua never looks inside)
    r: String,
    /// created at
    ca: String,
    /// expires at
    ex: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bu: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bi: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bd: Option<String>,
    /// revoked at
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ra: Option<String>,
    /// revocation reason
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rr: Option<String>,
}

/// A code or refresh token as stored.
#[derive(Debug, Serialize, Deserialize)]
struct CredRec {
    /// kind: `c` or `r`
    k: String,
    /// generation
    g: String,
    /// parent hash
    #[serde(default, skip_serializing_if = "Option::is_none")]
    p: Option<String>,
    ia: String,
    ea: String,
    /// used at
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ua: Option<String>,
    /// successor hash
    #[serde(default, skip_serializing_if = "Option::is_none")]
    su: Option<String>,
    /// revoked (superseded) at
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rv: Option<String>,
    /// code: redirect URI
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ru: Option<String>,
    /// code: PKCE method
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cm: Option<String>,
    /// code: PKCE challenge
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cv: Option<String>,
    /// code, `plain` method: the S256 transform of the challenge (so the store compares S256
    /// values and never needs the verifier)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cp: Option<String>,
}

/// An access token as stored.
#[derive(Debug, Serialize, Deserialize)]
struct AccRec {
    ia: String,
    ea: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rv: Option<String>,
    /// a scope narrower than the family's
    #[serde(default, skip_serializing_if = "Option::is_none")]
    s: Option<String>,
}

fn micros(t: UnixTime) -> String {
    t.as_micros().to_string()
}

fn duration_micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros())
        .unwrap_or(u64::MAX)
        .min(MAX_LUA_MICROS)
}

fn duration_millis(d: Duration) -> u64 {
    duration_micros(d).div_ceil(1000).max(1)
}

fn time(s: &str) -> Result<UnixTime, StoreError> {
    s.parse::<u64>()
        .map(UnixTime::from_micros)
        .map_err(|_| bad("a time that is not an integer"))
}

fn opt_time(s: Option<&String>) -> Result<Option<UnixTime>, StoreError> {
    s.map(|s| time(s)).transpose()
}

fn token_hash(s: &str) -> Result<TokenHash, StoreError> {
    TokenHash::from_hex(s).ok_or_else(|| bad("a token hash that is not 64 hex digits"))
}

fn opt_hash(s: Option<&String>) -> Result<Option<TokenHash>, StoreError> {
    s.map(|s| token_hash(s)).transpose()
}

fn family_id(s: &str) -> Result<FamilyId, StoreError> {
    FamilyId::from_hex(s).ok_or_else(|| bad("a family id that is not 32 hex digits"))
}

fn scope(s: &str) -> Result<Scope, StoreError> {
    Scope::parse(s).map_err(|_| bad("a scope that does not parse"))
}

fn json<T: for<'de> Deserialize<'de>>(s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(StoreError::backend)
}

fn to_json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::backend)
}

fn fam_rec(f: &Family) -> Result<FamRec, StoreError> {
    Ok(FamRec {
        u: f.user_id.clone(),
        c: f.client_id.clone(),
        s: f.scope.as_str().to_owned(),
        r: to_json(&f.resources)?,
        ca: micros(f.created_at),
        ex: micros(f.expires_at),
        bu: f.binding.user_agent.as_ref().map(hash_hex),
        bi: f.binding.ip_prefix.as_ref().map(hash_hex),
        bd: f.binding.device_id.as_ref().map(hash_hex),
        ra: f.revoked.map(|r| micros(r.at)),
        rr: f.revoked.map(|r| r.reason.as_str().to_owned()),
    })
}

fn family_from(id: FamilyId, raw: &str) -> Result<Family, StoreError> {
    let r: FamRec = json(raw)?;
    let revoked = match (&r.ra, &r.rr) {
        (Some(at), Some(reason)) => Some(Revocation {
            at: time(at)?,
            reason: RevocationReason::from_name(reason)
                .ok_or_else(|| bad("an unknown revocation reason"))?,
        }),
        _ => None,
    };
    Ok(Family {
        id,
        user_id: r.u,
        client_id: r.c,
        scope: scope(&r.s)?,
        resources: json(&r.r)?,
        created_at: time(&r.ca)?,
        expires_at: time(&r.ex)?,
        binding: Binding {
            user_agent: opt_hash(r.bu.as_ref())?,
            ip_prefix: opt_hash(r.bi.as_ref())?,
            device_id: opt_hash(r.bd.as_ref())?,
        },
        revoked,
    })
}

fn code_rec(c: &Credential) -> Result<CredRec, StoreError> {
    let terms = c.code_terms.as_ref();
    let challenge = terms.and_then(|t| t.challenge.as_ref());
    let plain_s256 = challenge
        .filter(|ch| ch.method() == ChallengeMethod::Plain)
        .and_then(|ch| CodeVerifier::new(ch.as_str().to_owned()).ok())
        .map(|v| v.challenge().as_str().to_owned());
    Ok(CredRec {
        k: CODE.to_owned(),
        g: c.generation.to_string(),
        p: c.parent.as_ref().map(hash_hex),
        ia: micros(c.issued_at),
        ea: micros(c.expires_at),
        ua: c.used_at.map(micros),
        su: c.successor.as_ref().map(hash_hex),
        rv: c.revoked_at.map(micros),
        ru: terms.map(|t| t.redirect_uri.clone()),
        cm: challenge.map(|ch| ch.method().as_str().to_owned()),
        cv: challenge.map(|ch| ch.as_str().to_owned()),
        cp: plain_s256,
    })
}

fn credential_from(family: FamilyId, hash: &str, raw: &str) -> Result<Credential, StoreError> {
    let r: CredRec = json(raw)?;
    let kind = match r.k.as_str() {
        CODE => TokenKind::AuthorizationCode,
        REFRESH => TokenKind::RefreshToken,
        _ => return Err(bad("an unknown credential kind")),
    };
    let code_terms = match (&r.ru, kind) {
        (Some(uri), TokenKind::AuthorizationCode) => Some(CodeTerms {
            redirect_uri: uri.clone(),
            challenge: match (&r.cm, &r.cv) {
                (Some(m), Some(v)) => {
                    let method: ChallengeMethod =
                        m.parse().map_err(|_| bad("an unknown PKCE method"))?;
                    Some(
                        CodeChallenge::new(v.clone(), method)
                            .map_err(|_| bad("a PKCE challenge that does not parse"))?,
                    )
                }
                _ => None,
            },
        }),
        _ => None,
    };
    Ok(Credential {
        hash: token_hash(hash)?,
        kind,
        family,
        generation: r
            .g
            .parse()
            .map_err(|_| bad("a generation that is not an integer"))?,
        parent: opt_hash(r.p.as_ref())?,
        issued_at: time(&r.ia)?,
        expires_at: time(&r.ea)?,
        used_at: opt_time(r.ua.as_ref())?,
        successor: opt_hash(r.su.as_ref())?,
        revoked_at: opt_time(r.rv.as_ref())?,
        code_terms,
    })
}

fn access_from(family: FamilyId, hash: &str, raw: &str) -> Result<AccessToken, StoreError> {
    let r: AccRec = json(raw)?;
    Ok(AccessToken {
        hash: token_hash(hash)?,
        family,
        scope: r.s.as_deref().map(scope).transpose()?,
        issued_at: time(&r.ia)?,
        expires_at: time(&r.ea)?,
        revoked_at: opt_time(r.rv.as_ref())?,
    })
}

const fn kind_letter(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::AuthorizationCode => CODE,
        TokenKind::RefreshToken => REFRESH,
        // AccessToken, and any kind a later version adds (looked up where access tokens are)
        _ => ACCESS,
    }
}

/// A script's reply: strings, read by position.
struct Reply(Vec<String>);

impl Reply {
    /// A redemption's reply as packed by `reply` in `grant_redeem.lua`: the fields joined by
    /// `'\n'`, then (for a reply naming a family) its user and client, which take positions 2
    /// and 3.
    fn unpack(raw: Vec<String>) -> Result<Self, StoreError> {
        let mut raw = raw.into_iter();
        let packed = raw.next().ok_or_else(|| bad("an empty reply"))?;
        let mut fields: Vec<String> = packed.split('\n').map(str::to_owned).collect();
        match (raw.next(), raw.next(), raw.next()) {
            (None, None, None) => {}
            (Some(user), Some(client), None) => match fields.get_mut(2..5) {
                Some([u, c, _]) => {
                    *u = user;
                    *c = client;
                }
                _ => return Err(bad("a redemption reply of an unexpected shape")),
            },
            _ => return Err(bad("a redemption reply of an unexpected shape")),
        }
        Ok(Self(fields))
    }

    fn at(&self, i: usize) -> Result<&str, StoreError> {
        self.0
            .get(i)
            .map(String::as_str)
            .ok_or_else(|| bad("a reply shorter than expected"))
    }
    fn tag(&self) -> Result<&str, StoreError> {
        self.at(0)
    }
    fn flag(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.at(i)? == "1")
    }
    /// `family, user, client, hash` from position 1.
    fn family_ref(&self) -> Result<(FamilyRef, TokenHash), StoreError> {
        Ok((
            FamilyRef {
                id: family_id(self.at(1)?)?,
                user_id: self.at(2)?.to_owned(),
                client_id: self.at(3)?.to_owned(),
            },
            token_hash(self.at(4)?)?,
        ))
    }
    /// The issued fields from position 5: generation, scope, resources, expiries.
    fn issued(&self, family: FamilyId) -> Result<Issued, StoreError> {
        Ok(Issued {
            family,
            generation: self
                .at(5)?
                .parse()
                .map_err(|_| bad("a generation that is not an integer"))?,
            scope: scope(self.at(6)?)?,
            resources: json(self.at(7)?)?,
            refresh_expires_at: time(self.at(8)?)?,
            access_expires_at: time(self.at(9)?)?,
        })
    }
}

fn rejection(r: &Reply) -> Result<Rejection, StoreError> {
    Ok(match r.at(1)? {
        "revoked" => Rejection::Revoked,
        "expired" => Rejection::Expired,
        "wrong_client" => Rejection::WrongClient,
        "redirect" => Rejection::RedirectUriMismatch,
        "scope" => Rejection::ScopeWidened,
        "pkce" => Rejection::Pkce(match r.at(2)? {
            "unexpected" => PkceError::UnexpectedVerifier,
            "missing" => PkceError::MissingVerifier,
            "malformed" => PkceError::MalformedVerifier,
            _ => PkceError::VerifierMismatch,
        }),
        _ => return Err(bad("an unknown rejection")),
    })
}

/// A [`GrantStore`] on Redis or Redis Cluster.
///
/// Every operation is one Lua script run by `EVALSHA` (the redis crate's [`Script`] loads it
/// again after a `NOSCRIPT`): the check and the write of a redemption are one atomic step
/// (DESIGN.md invariant 2), and every key a script writes gets its TTL in the same script
/// (`SET … PX`, or `KEEPTTL` on an update), so nothing outlives its record's expiry whatever
/// fails when. Only keyed hashes are stored (the requests carry nothing else; a `plain` PKCE
/// challenge is compared through its S256 transform, so not even a verifier is sent).
///
/// Round trips per operation:
///
/// | operation | single node | Cluster |
/// |---|---|---|
/// | `create_family` | 1 | 1 (five requests at once, one per slot) |
/// | `redeem_code`, `rotate_refresh` | 1 | 2: the token's family from its pointer, then the script with the new tokens' pointers at once |
/// | `find`, `revoke_token` | 1 | 2 |
/// | `revoke_family`, `family` | 1 | 1 |
/// | `revoke_user`, `revoke_client` | 1 | 2 (the owner's set, then every family at once) |
/// | `purge` | one per 64 families | one per family |
///
/// On a single node a token's record is keyed by its hash and names its family: one script
/// reads it, then the family's record. On Cluster the family's keys (its tokens' records
/// included) share the hash tag `{<family id>}`, but a presented token only carries its hash;
/// the token format (portcullis-hash, minted by the rotation service) has no routing tag, so
/// the store first reads a pointer from the hash to the family. The key schema is in
/// `docs/operations.md` ("Redis").
///
/// Times: the server's `TIME` ([`TimeSource::Server`], the default) or the request's `now`
/// ([`TimeSource::Caller`], for managed services that refuse `TIME` in scripts, and for tests
/// on a manual clock).
///
/// Limit: a rotation takes at most 999 candidate hashes, and at most 999 hashes in each
/// binding list (the rotation script reads their counts as three digits); more is a permanent
/// [`StoreError::Backend`]. The rotation service sends one hash per key of the key ring.
#[derive(Debug)]
pub struct RedisGrantStore {
    conn: RedisConnection,
    keys: GrantKeys,
    time: TimeSource,
    purge_bucket: AtomicU8,
}

impl RedisGrantStore {
    /// A store on `conn` with the default prefix ([`DEFAULT_PREFIX`](crate::DEFAULT_PREFIX))
    /// and the server's time.
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            keys: GrantKeys::new(keys::DEFAULT_PREFIX),
            time: TimeSource::Server,
            purge_bucket: AtomicU8::new(0),
        }
    }

    /// This store with every key under `prefix` (several deployments, or tests, on one Redis).
    ///
    /// # Errors
    /// [`PrefixError`] unless `prefix` is 1 to 64 characters of `A-Za-z0-9-_.:`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, PrefixError> {
        keys::check_prefix(prefix)?;
        self.keys = GrantKeys::new(prefix);
        Ok(self)
    }

    /// This store taking its time from `time`.
    #[must_use]
    pub const fn with_time(mut self, time: TimeSource) -> Self {
        self.time = time;
        self
    }

    /// The key prefix.
    #[must_use]
    pub fn prefix(&self) -> &str {
        self.keys.prefix()
    }

    /// The connection.
    #[must_use]
    pub const fn connection(&self) -> &RedisConnection {
        &self.conn
    }

    fn single(&self) -> bool {
        !self.conn.is_cluster()
    }

    /// ARGV[1..4]: prefix, now ('' = server TIME), single-node flag, family id.
    fn header(&self, now: UnixTime, family: &str) -> Vec<String> {
        vec![
            self.keys.prefix().to_owned(),
            match self.time {
                TimeSource::Server => String::new(),
                TimeSource::Caller => micros(now),
            },
            if self.single() { "1" } else { "0" }.to_owned(),
            family.to_owned(),
        ]
    }

    async fn eval(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<Vec<String>, StoreError> {
        self.conn
            .run_script(script, keys, args)
            .await
            .map_err(error::grant)
    }

    async fn command<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> Result<T, StoreError> {
        let mut conn = self.conn.clone();
        cmd.query_async(&mut conn).await.map_err(error::grant)
    }

    /// Cluster: the family a token's candidate hashes point to (one `MGET`; its keys may span
    /// slots, and the client sends one request per node, at once).
    async fn resolve(&self, kind: &str, cands: &[String]) -> Result<Option<String>, StoreError> {
        if cands.is_empty() {
            return Ok(None);
        }
        let keys: Vec<String> = cands.iter().map(|c| self.keys.pointer(kind, c)).collect();
        let found: Vec<Option<String>> = self.command(redis::cmd("MGET").arg(&keys)).await?;
        Ok(found.into_iter().flatten().next())
    }

    /// The script's keys: single node, the candidates' records (and the new tokens'), found by
    /// hash; Cluster, the family's keys (all in its slot).
    fn op_keys(
        &self,
        family: Option<&str>,
        kind: &str,
        cands: &[String],
        new: &[(&str, &str)],
    ) -> Vec<String> {
        match family {
            None => cands
                .iter()
                .map(|c| self.keys.pointer(kind, c))
                .chain(new.iter().map(|(k, h)| self.keys.pointer(k, h)))
                .collect(),
            Some(f) => [self.keys.family(f), self.keys.tokens(f)]
                .into_iter()
                .chain(cands.iter().map(|c| self.keys.record(f, kind, c)))
                .chain(new.iter().map(|(k, h)| self.keys.record(f, k, h)))
                .collect(),
        }
    }

    /// Run a redemption script: single node, one round trip; Cluster, the family from the
    /// pointer, then the script together with the new tokens' pointers (`SET … NX PX`).
    /// Returns the reply, or `None` if no pointer names a family.
    async fn redemption(&self, op: Redemption<'_>) -> Result<Option<Reply>, StoreError> {
        let Redemption {
            script,
            kind,
            cands,
            new,
            now,
            args,
            success,
        } = op;
        let new_keys = [(new[0].0, new[0].1), (new[1].0, new[1].1)];
        if self.single() {
            let keys = self.op_keys(None, kind, cands, &new_keys);
            let mut argv = self.header(now, "");
            argv.extend(args);
            return Ok(Some(Reply::unpack(self.eval(script, &keys, &argv).await?)?));
        }
        let Some(family) = self.resolve(kind, cands).await? else {
            return Ok(None);
        };
        let keys = self.op_keys(Some(&family), kind, cands, &new_keys);
        let mut argv = self.header(now, &family);
        argv.extend(args);
        let pointer = |(k, h, ttl): (&str, &str, Duration)| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(self.keys.pointer(k, h))
                .arg(&family)
                .arg("NX")
                .arg("PX")
                .arg(duration_millis(ttl));
            cmd
        };
        let (p0, p1) = (pointer(new[0]), pointer(new[1]));
        let (reply, r0, r1) = tokio::join!(
            self.eval(script, &keys, &argv),
            self.command::<Option<String>>(&p0),
            self.command::<Option<String>>(&p1),
        );
        let reply = reply.and_then(Reply::unpack);
        let written = [
            r0.as_ref().is_ok_and(Option::is_some),
            r1.as_ref().is_ok_and(Option::is_some),
        ];
        if !reply.as_ref().is_ok_and(|r| r.tag().is_ok_and(&success)) {
            // Nothing was issued, or the reply is lost or unreadable (then no token is handed
            // out either): drop the pointers this call wrote (their TTLs would anyway).
            let unused: Vec<String> = new
                .iter()
                .zip(written)
                .filter(|(_, w)| *w)
                .map(|((k, h, _), _)| self.keys.pointer(k, h))
                .collect();
            if !unused.is_empty() {
                let _ = self.command::<i64>(redis::cmd("DEL").arg(&unused)).await;
            }
            let reply = reply?;
            reply.tag()?;
            return Ok(Some(reply));
        }
        let reply = reply?;
        // Issued: both pointers must be there before a token is handed out.
        for ((k, h, ttl), result) in new.into_iter().zip([r0, r1]) {
            match result {
                Ok(Some(_)) => {}
                Ok(None) => return Err(StoreError::Duplicate),
                Err(_) => {
                    // The reply was lost, or the node was briefly away: write it again (the
                    // value is the same), once, before giving up with a retryable error.
                    let mut cmd = redis::cmd("SET");
                    cmd.arg(self.keys.pointer(k, h))
                        .arg(&family)
                        .arg("PX")
                        .arg(duration_millis(ttl));
                    self.command::<Option<String>>(&cmd).await?;
                }
            }
        }
        Ok(Some(reply))
    }

    async fn lookup(
        &self,
        script: &Script,
        kind: &str,
        cands: &[String],
        now: UnixTime,
        args: Vec<String>,
    ) -> Result<Option<Reply>, StoreError> {
        let family = if self.single() {
            None
        } else {
            match self.resolve(kind, cands).await? {
                Some(f) => Some(f),
                None => return Ok(None),
            }
        };
        let keys = self.op_keys(family.as_deref(), kind, cands, &[]);
        let mut argv = self.header(now, family.as_deref().unwrap_or(""));
        argv.extend(args);
        Ok(Some(Reply(self.eval(script, &keys, &argv).await?)))
    }

    async fn index_add(&self, key: String, family: &Family, zset: bool) -> Result<(), StoreError> {
        // Caller time = the family's creation: the index's TTL covers the family's lifetime
        // whatever the clocks say.
        let args = vec![
            self.keys.prefix().to_owned(),
            micros(family.created_at),
            "0".to_owned(),
            family.id.to_string(),
            micros(family.expires_at),
            if zset { "z" } else { "s" }.to_owned(),
        ];
        self.eval(&SCRIPTS.index_add, &[key], &args).await?;
        Ok(())
    }

    async fn revoke_owned(
        &self,
        field: &str,
        owner: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        let index = if field == "u" {
            self.keys.user(owner)
        } else {
            self.keys.client(owner)
        };
        if self.single() {
            let mut argv = self.header(now, "");
            argv.extend([
                field.to_owned(),
                owner.to_owned(),
                reason.as_str().to_owned(),
            ]);
            let ids = self.eval(&SCRIPTS.revoke_owner, &[index], &argv).await?;
            return ids.iter().map(|s| family_id(s)).collect();
        }
        let ids: Vec<String> = self.command(redis::cmd("SMEMBERS").arg(&index)).await?;
        let revocations = ids.iter().map(|f| {
            let mut argv = self.header(now, f);
            argv.extend([
                reason.as_str().to_owned(),
                field.to_owned(),
                owner.to_owned(),
            ]);
            let keys = vec![self.keys.family(f)];
            async move {
                let r = self.eval(&SCRIPTS.revoke_family, &keys, &argv).await?;
                Ok::<_, StoreError>((f, r.first().is_some_and(|v| v == "1")))
            }
        });
        let mut out = Vec::new();
        for r in join_all(revocations.collect()).await {
            let (f, revoked) = r?;
            if revoked {
                out.push(family_id(f)?);
            }
        }
        Ok(out)
    }

    /// Single node: purge one bucket from `after`; returns (removed, stopped early).
    async fn purge_bucket_single(
        &self,
        bucket: u8,
        now: UnixTime,
        budget: usize,
    ) -> Result<(usize, bool), StoreError> {
        let key = self.keys.bucket(bucket);
        let mut after = String::new();
        let mut removed = 0usize;
        loop {
            let mut argv = self.header(now, &after);
            argv.extend([
                budget.saturating_sub(removed).to_string(),
                PURGE_CHUNK.to_string(),
            ]);
            let r = Reply(
                self.eval(&SCRIPTS.purge, std::slice::from_ref(&key), &argv)
                    .await?,
            );
            removed = removed.saturating_add(
                r.at(0)?
                    .parse::<usize>()
                    .map_err(|_| bad("a count that is not an integer"))?,
            );
            match r.at(1)? {
                "stop" => return Ok((removed, true)),
                "more" => after = r.at(2)?.to_owned(),
                _ => return Ok((removed, false)),
            }
        }
    }

    /// Cluster: purge one bucket, family by family; returns (removed, stopped early).
    async fn purge_bucket_cluster(
        &self,
        bucket: u8,
        now: UnixTime,
        budget: usize,
    ) -> Result<(usize, bool), StoreError> {
        let key = self.keys.bucket(bucket);
        let mut after = String::new();
        let mut removed = 0usize;
        loop {
            let lo = if after.is_empty() {
                "-".to_owned()
            } else {
                format!("({after}")
            };
            let families: Vec<String> = self
                .command(
                    redis::cmd("ZRANGEBYLEX")
                        .arg(&key)
                        .arg(lo)
                        .arg("+")
                        .arg("LIMIT")
                        .arg(0)
                        .arg(PURGE_CHUNK),
                )
                .await?;
            for f in &families {
                let mut argv = self.header(now, f);
                argv.extend([budget.saturating_sub(removed).to_string(), String::new()]);
                let keys = [self.keys.family(f), self.keys.tokens(f)];
                let r = Reply(self.eval(&SCRIPTS.purge, &keys, &argv).await?);
                removed = removed.saturating_add(
                    r.at(0)?
                        .parse::<usize>()
                        .map_err(|_| bad("a count that is not an integer"))?,
                );
                let pointers: Vec<String> =
                    r.0.iter()
                        .skip(5)
                        .filter_map(|m| m.split_once(':'))
                        .map(|(k, h)| self.keys.pointer(k, h))
                        .collect();
                if !pointers.is_empty() {
                    self.command::<i64>(redis::cmd("DEL").arg(&pointers))
                        .await?;
                }
                if r.flag(2)? {
                    self.command::<i64>(redis::cmd("ZREM").arg(&key).arg(f))
                        .await?;
                    let (user, client) = (r.at(3)?, r.at(4)?);
                    if !user.is_empty() {
                        self.command::<i64>(redis::cmd("SREM").arg(self.keys.user(user)).arg(f))
                            .await?;
                        self.command::<i64>(
                            redis::cmd("SREM").arg(self.keys.client(client)).arg(f),
                        )
                        .await?;
                    }
                }
                if !r.flag(1)? {
                    return Ok((removed, true));
                }
            }
            match families.last() {
                Some(last) if families.len() == PURGE_CHUNK => after.clone_from(last),
                _ => return Ok((removed, false)),
            }
        }
    }
}

/// A redemption script's call: the script, the kind and candidates of the presented token,
/// the new tokens (kind, hash, lifetime), the time, the script's own arguments, and which
/// reply tags mean that tokens were issued.
struct Redemption<'a> {
    script: &'a Script,
    kind: &'a str,
    cands: &'a [String],
    new: [(&'a str, &'a str, Duration); 2],
    now: UnixTime,
    args: Vec<String>,
    success: fn(&str) -> bool,
}

fn proof_args(p: &VerifierProof) -> [String; 3] {
    match p {
        VerifierProof::Absent => ["A".to_owned(), String::new(), "0".to_owned()],
        VerifierProof::Malformed => ["M".to_owned(), String::new(), "0".to_owned()],
        VerifierProof::Present { s256, plain } => [
            "P".to_owned(),
            s256.as_str().to_owned(),
            if plain.is_some() { "1" } else { "0" }.to_owned(),
        ],
    }
}

fn hexes(hashes: &[TokenHash]) -> Vec<String> {
    hashes.iter().map(hash_hex).collect()
}

fn mismatch(r: &Reply, from: usize) -> Result<BindingMismatch, StoreError> {
    Ok(BindingMismatch {
        user_agent: r.flag(from)?,
        ip_prefix: r.flag(from + 1)?,
        device_id: r.flag(from + 2)?,
    })
}

#[async_trait::async_trait]
impl GrantStore for RedisGrantStore {
    async fn create_family(&self, family: &Family, code: &Credential) -> Result<(), StoreError> {
        if code.kind != TokenKind::AuthorizationCode
            || code.family != family.id
            || code.code_terms.is_none()
        {
            return Err(StoreError::backend(
                "create_family needs the family's authorization code with its terms",
            ));
        }
        let id = family.id.to_string();
        let ch = hash_hex(&code.hash);
        let mut argv = self.header(family.created_at, &id);
        argv.extend([
            to_json(&fam_rec(family)?)?,
            ch.clone(),
            to_json(&code_rec(code)?)?,
            self.keys.bucket_of(&family.id),
        ]);
        let family_keys = vec![
            self.keys.family(&id),
            self.keys.tokens(&id),
            self.keys.record(&id, CODE, &ch),
        ];
        if self.single() {
            // the code's record is found by its hash
            let keys = [
                self.keys.family(&id),
                self.keys.tokens(&id),
                self.keys.pointer(CODE, &ch),
                self.keys.user(&family.user_id),
                self.keys.client(&family.client_id),
                self.keys.bucket_of(&family.id),
            ];
            let r = self.eval(&SCRIPTS.create, &keys, &argv).await?;
            return match r.first().map(String::as_str) {
                Some("OK") => Ok(()),
                Some("D") => Err(StoreError::Duplicate),
                _ => Err(bad("create_family")),
            };
        }
        // Cluster: the family's keys, the code's pointer and the three indexes live in five
        // slots: one request each, all at once. The code is handed out only if all succeed,
        // so a family nobody can find in its user's index never gets a usable code.
        let code_ttl = code.expires_at.saturating_duration_since(code.issued_at);
        let mut pointer = redis::cmd("SET");
        pointer
            .arg(self.keys.pointer(CODE, &ch))
            .arg(&id)
            .arg("NX")
            .arg("PX")
            .arg(duration_millis(code_ttl));
        let (created, pointed, user, client, bucket) = tokio::join!(
            self.eval(&SCRIPTS.create, &family_keys, &argv),
            self.command::<Option<String>>(&pointer),
            self.index_add(self.keys.user(&family.user_id), family, false),
            self.index_add(self.keys.client(&family.client_id), family, false),
            self.index_add(self.keys.bucket_of(&family.id), family, true),
        );
        user?;
        client?;
        bucket?;
        let created = created?;
        if pointed?.is_none() || created.first().is_some_and(|s| s == "D") {
            return Err(StoreError::Duplicate);
        }
        Ok(())
    }

    async fn redeem_code(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError> {
        let cands = hexes(req.candidates);
        let (refresh, access) = (hash_hex(&req.refresh), hash_hex(&req.access));
        let [proof, s256, plain] = proof_args(req.verifier);
        let opt = |h: Option<TokenHash>| h.as_ref().map(hash_hex).unwrap_or_default();
        let mut args = vec![
            req.client_id.to_owned(),
            if req.redirect_uri.is_some() { "1" } else { "0" }.to_owned(),
            req.redirect_uri.unwrap_or_default().to_owned(),
            proof,
            s256,
            plain,
            opt(req.binding.user_agent),
            opt(req.binding.ip_prefix),
            opt(req.binding.device_id),
            refresh.clone(),
            access.clone(),
            duration_micros(req.lifetimes.refresh_idle).to_string(),
            duration_micros(req.lifetimes.access).to_string(),
            cands.len().to_string(),
        ];
        args.extend(cands.iter().cloned());
        let new = [
            (REFRESH, refresh.as_str(), req.lifetimes.refresh_idle),
            (ACCESS, access.as_str(), req.lifetimes.access),
        ];
        let Some(r) = self
            .redemption(Redemption {
                script: &SCRIPTS.redeem,
                kind: CODE,
                cands: &cands,
                new,
                now: req.now,
                args,
                success: |t| t == "R",
            })
            .await?
        else {
            return Ok(CodeOutcome::Rejected(Rejection::NotFound));
        };
        match r.tag()? {
            "N" => Ok(CodeOutcome::Rejected(Rejection::NotFound)),
            "J" => Ok(CodeOutcome::Rejected(rejection(&r)?)),
            "D" => Err(StoreError::Duplicate),
            "P" => {
                let (family, hash) = r.family_ref()?;
                Ok(CodeOutcome::Replayed {
                    family,
                    code: HashPrefix::of(&hash),
                })
            }
            "R" => {
                let (family, _) = r.family_ref()?;
                Ok(CodeOutcome::Redeemed(r.issued(family.id)?))
            }
            _ => Err(bad("redeem_code")),
        }
    }

    async fn rotate_refresh(
        &self,
        req: &RefreshRotation<'_>,
    ) -> Result<RefreshOutcome, StoreError> {
        let cands = hexes(req.candidates);
        let (successor, access) = (hash_hex(&req.successor), hash_hex(&req.access));
        let (ua, ip, dev) = match req.binding_policy.mode() {
            BindingMode::UserAgent => ("1", "0", "1"),
            BindingMode::UserAgentAndIpPrefix => ("1", "1", "1"),
            // Off, and any mode this version does not know, compares nothing.
            _ => ("0", "0", "0"),
        };
        let action = match req.binding_policy.action() {
            BindingAction::Report => "p",
            BindingAction::Reject => "j",
            // RevokeFamily, and any action this version does not know: the strictest.
            _ => "v",
        };
        let grace = req.grace_window.min(MAX_GRACE_WINDOW);
        // The fixed fields at fixed offsets (rotate_refresh.lua lists them): times in 16
        // digits (at most MAX_LUA_MICROS, 2^52, which has 16), counts in 3; the scope last.
        // The client id, which may hold any byte, is an argument of its own.
        let count = |n: usize| -> Result<String, StoreError> {
            if n > 999 {
                return Err(StoreError::backend(
                    "more than 999 candidate or binding hashes in one rotation",
                ));
            }
            Ok(format!("{n:03}"))
        };
        let mut packed = String::with_capacity(194 + req.scope.map_or(0, |s| s.as_str().len()));
        packed.push_str(if req.scope.is_some() { "1" } else { "0" });
        packed.push_str(ua);
        packed.push_str(ip);
        packed.push_str(dev);
        packed.push_str(action);
        packed.push_str(&successor);
        packed.push_str(&access);
        for d in [grace, req.lifetimes.refresh_idle, req.lifetimes.access] {
            packed.push_str(&format!("{:016}", duration_micros(d)));
        }
        for n in [
            cands.len(),
            req.binding.user_agent.len(),
            req.binding.ip_prefix.len(),
            req.binding.device_id.len(),
        ] {
            packed.push_str(&count(n)?);
        }
        packed.push_str(req.scope.map(Scope::as_str).unwrap_or_default());
        debug_assert!(packed.len() >= 193, "rotate_refresh's fixed fields");
        let mut args = vec![req.client_id.to_owned(), packed];
        args.extend(cands.iter().cloned());
        args.extend(hexes(&req.binding.user_agent));
        args.extend(hexes(&req.binding.ip_prefix));
        args.extend(hexes(&req.binding.device_id));
        let new = [
            (REFRESH, successor.as_str(), req.lifetimes.refresh_idle),
            (ACCESS, access.as_str(), req.lifetimes.access),
        ];
        let Some(r) = self
            .redemption(Redemption {
                script: &SCRIPTS.rotate,
                kind: REFRESH,
                cands: &cands,
                new,
                now: req.now,
                args,
                success: |t| t == "R" || t == "G",
            })
            .await?
        else {
            return Ok(RefreshOutcome::Rejected(Rejection::NotFound));
        };
        let report = |r: &Reply, family: FamilyRef, hash: &TokenHash| -> Result<_, StoreError> {
            Ok(if r.flag(10)? {
                Some(BindingReport {
                    family,
                    token: HashPrefix::of(hash),
                    mismatch: mismatch(r, 11)?,
                })
            } else {
                None
            })
        };
        match r.tag()? {
            "N" => Ok(RefreshOutcome::Rejected(Rejection::NotFound)),
            "J" => Ok(RefreshOutcome::Rejected(rejection(&r)?)),
            "D" => Err(StoreError::Duplicate),
            "P" => {
                let (family, hash) = r.family_ref()?;
                Ok(RefreshOutcome::Replayed {
                    family,
                    token: HashPrefix::of(&hash),
                    generation: r
                        .at(5)?
                        .parse()
                        .map_err(|_| bad("a generation that is not an integer"))?,
                })
            }
            "B" => {
                let (family, hash) = r.family_ref()?;
                Ok(RefreshOutcome::BindingMismatch {
                    report: BindingReport {
                        family,
                        token: HashPrefix::of(&hash),
                        mismatch: mismatch(&r, 5)?,
                    },
                    family_revoked: r.flag(8)?,
                })
            }
            "R" => {
                let (family, hash) = r.family_ref()?;
                let issued = r.issued(family.id)?;
                Ok(RefreshOutcome::Rotated {
                    issued,
                    reported: report(&r, family, &hash)?,
                })
            }
            "G" => {
                let (family, hash) = r.family_ref()?;
                let issued = r.issued(family.id)?;
                let superseded = HashPrefix::of(&token_hash(r.at(14)?)?);
                Ok(RefreshOutcome::GraceReissued {
                    issued,
                    superseded,
                    reported: report(&r, family, &hash)?,
                })
            }
            _ => Err(bad("rotate_refresh")),
        }
    }

    async fn find(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, StoreError> {
        let letter = kind_letter(kind);
        let cands = hexes(candidates);
        let mut args = vec![letter.to_owned(), cands.len().to_string()];
        args.extend(cands.iter().cloned());
        // `now` is not used by a lookup.
        let Some(r) = self
            .lookup(
                &SCRIPTS.find,
                letter,
                &cands,
                UnixTime::from_micros(0),
                args,
            )
            .await?
        else {
            return Ok(None);
        };
        if r.tag()? != "F" {
            return Ok(None);
        }
        let id = family_id(r.at(1)?)?;
        let family = family_from(id, r.at(2)?)?;
        let (hash, raw) = (r.at(3)?, r.at(4)?);
        Ok(Some(if letter == ACCESS {
            Found::Access {
                token: access_from(id, hash, raw)?,
                family,
            }
        } else {
            Found::Credential {
                credential: credential_from(id, hash, raw)?,
                family,
            }
        }))
    }

    async fn revoke_token(&self, req: &TokenRevocation<'_>) -> Result<RevokeOutcome, StoreError> {
        let letter = kind_letter(req.kind);
        let cands = hexes(req.candidates);
        let mut args = vec![
            letter.to_owned(),
            req.client_id.to_owned(),
            cands.len().to_string(),
        ];
        args.extend(cands.iter().cloned());
        let Some(r) = self
            .lookup(&SCRIPTS.revoke_token, letter, &cands, req.now, args)
            .await?
        else {
            return Ok(RevokeOutcome::NotFound);
        };
        match r.tag()? {
            "N" => Ok(RevokeOutcome::NotFound),
            "I" => Ok(RevokeOutcome::Inactive),
            "W" => Ok(RevokeOutcome::WrongClient),
            "V" => Ok(RevokeOutcome::Revoked {
                family: family_id(r.at(1)?)?,
                family_revoked: r.flag(2)?,
            }),
            _ => Err(bad("revoke_token")),
        }
    }

    async fn revoke_family(
        &self,
        id: FamilyId,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let f = id.to_string();
        let mut argv = self.header(now, &f);
        argv.extend([reason.as_str().to_owned(), String::new(), String::new()]);
        let r = self
            .eval(&SCRIPTS.revoke_family, &[self.keys.family(&f)], &argv)
            .await?;
        Ok(r.first().is_some_and(|v| v == "1"))
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        self.revoke_owned("u", user_id, reason, now).await
    }

    async fn revoke_client(
        &self,
        client_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        self.revoke_owned("c", client_id, reason, now).await
    }

    async fn family(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, StoreError> {
        let f = id.to_string();
        let argv = self.header(UnixTime::from_micros(0), &f);
        let r = self
            .eval(
                &SCRIPTS.snapshot,
                &[self.keys.family(&f), self.keys.tokens(&f)],
                &argv,
            )
            .await?;
        let Some((raw, tokens)) = r.split_first() else {
            return Ok(None);
        };
        let family = family_from(id, raw)?;
        let mut credentials = Vec::new();
        let mut access_tokens = Vec::new();
        for pair in tokens.chunks_exact(2) {
            let [member, raw] = pair else { continue };
            let Some((kind, hash)) = member.split_once(':') else {
                return Err(bad("a token-set member without a kind"));
            };
            if kind == ACCESS {
                access_tokens.push(access_from(id, hash, raw)?);
            } else {
                credentials.push(credential_from(id, hash, raw)?);
            }
        }
        Ok(Some(FamilySnapshot {
            family,
            credentials,
            access_tokens,
        }))
    }

    async fn purge(&self, now: UnixTime, max: usize) -> Result<PurgeReport, StoreError> {
        let start = self.purge_bucket.load(Ordering::Relaxed) % PURGE_BUCKETS;
        let mut removed = 0usize;
        for step in 0..PURGE_BUCKETS {
            let bucket = (start + step) % PURGE_BUCKETS;
            let budget = max.saturating_sub(removed);
            let (n, stopped) = if self.single() {
                self.purge_bucket_single(bucket, now, budget).await?
            } else {
                self.purge_bucket_cluster(bucket, now, budget).await?
            };
            removed = removed.saturating_add(n);
            if stopped {
                self.purge_bucket.store(bucket, Ordering::Relaxed);
                return Ok(PurgeReport {
                    removed,
                    more: true,
                });
            }
        }
        Ok(PurgeReport {
            removed,
            more: false,
        })
    }
}
