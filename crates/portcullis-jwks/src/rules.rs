//! What a token must satisfy: the strict checks of RFC 8725, independent of where keys come from.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arc_swap::ArcSwap;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use portcullis_core::UnixTime;
use serde::Deserialize;
use serde::de::{self, DeserializeOwned, Deserializer, IgnoredAny};

use crate::algorithm::{Algorithm, AlgorithmSet};
use crate::defaults::{DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, MAX_LEEWAY};
use crate::error::{ConfigError, Malformed, VerifyError};
use crate::keys::{KeySet, Lookup, VerifyKey};

/// A claim the verifier can require to be present, beyond the ones it always requires.
///
/// `iss`, `aud` and `exp` are always required (a missing `iss` is a [`VerifyError::WrongIssuer`],
/// a missing `aud` a [`VerifyError::WrongAudience`], a missing `exp` a
/// [`VerifyError::MissingClaim`]). `sub` is required by default. Claims of your own are required
/// by making them non-`Option` fields of your claims type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RequiredClaim {
    /// `sub`, the subject (the user).
    Sub,
    /// `iat`, the time of issue.
    Iat,
    /// `nbf`, the start of validity.
    Nbf,
    /// `jti`, the token id.
    Jti,
}

impl RequiredClaim {
    /// The claim name.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Sub => "sub",
            Self::Iat => "iat",
            Self::Nbf => "nbf",
            Self::Jti => "jti",
        }
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

/// Which `typ` header values are accepted (RFC 8725 §3.11: explicit typing keeps one kind of JWT
/// from being accepted as another).
///
/// Values compare as RFC 7515 §4.1.9 says: case-insensitively, with `application/` implied when
/// the value has no `/` (so `at+jwt` and `application/at+jwt` are the same type).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TypRule {
    /// Any `typ`, or none.
    Any,
    /// `typ` must be present and one of these.
    Require(Vec<String>),
    /// `typ` may be absent, but must not be one of these.
    Forbid(Vec<String>),
}

impl Default for TypRule {
    /// `Forbid(["at+jwt"])`: a verifier of upstream session or ID tokens never accepts an OAuth
    /// access token in the RFC 9068 format (STANDARDS `8725-3.11-a`).
    fn default() -> Self {
        Self::Forbid(vec!["at+jwt".to_owned()])
    }
}

/// A `typ` value with an implied or explicit `application/` removed, for comparison.
fn media_subtype(t: &str) -> &str {
    const PREFIX: &str = "application/";
    match (t.get(..PREFIX.len()), t.get(PREFIX.len()..)) {
        (Some(p), Some(rest)) if p.eq_ignore_ascii_case(PREFIX) => rest,
        _ => t,
    }
}

fn same_type(a: &str, b: &str) -> bool {
    media_subtype(a).eq_ignore_ascii_case(media_subtype(b))
}

impl TypRule {
    fn accepts(&self, typ: Option<&str>) -> bool {
        match self {
            Self::Any => true,
            Self::Require(list) => typ.is_some_and(|t| list.iter().any(|v| same_type(v, t))),
            Self::Forbid(list) => typ.is_none_or(|t| !list.iter().any(|v| same_type(v, t))),
        }
    }
}

/// The rules a token must satisfy, apart from where its key comes from.
///
/// Built with [`TokenRules::builder`]; a [`JwtVerifier`](crate::JwtVerifier) holds one. It can
/// also verify against a fixed [`KeySet`] with [`TokenRules::verify_with_keys`].
///
/// What is checked, in order, and the error each failure gives:
///
/// 1. length at most the maximum, before any decoding ([`VerifyError::TooLarge`]);
/// 2. three parts, the first a base64url JSON header with a string `alg` and no duplicate
///    members ([`VerifyError::Malformed`]);
/// 3. `alg` on the allow-list; `none` and HMAC never are ([`VerifyError::DisallowedAlgorithm`]);
/// 4. no `crit` header ([`VerifyError::CriticalHeader`]); `jku`, `x5u`, `jwk` and `x5c` are
///    ignored, never fetched or trusted;
/// 5. `typ` accepted by the [`TypRule`] ([`VerifyError::WrongType`]);
/// 6. a signature is present ([`Malformed::MissingSignature`]);
/// 7. a key with the token's `kid` bound to exactly the token's `alg`
///    ([`VerifyError::UnknownKey`], [`VerifyError::KeyMismatch`]);
/// 8. the signature is base64url ([`Malformed::Encoding`]), no longer than the largest
///    supported key's, and verifies ([`VerifyError::BadSignature`]);
/// 9. `exp` present and not passed, `nbf` and `iat` not in the future, each with the leeway
///    ([`VerifyError::MissingClaim`], [`VerifyError::Expired`], [`VerifyError::NotYetValid`]);
/// 10. `iss` present and equal to the issuer ([`VerifyError::WrongIssuer`]);
/// 11. `aud` present and naming one of the audiences ([`VerifyError::WrongAudience`]);
/// 12. the required claims present ([`VerifyError::MissingClaim`]);
/// 13. the claims deserialize into the caller's type ([`Malformed::Claims`]).
///
/// Steps 2 to 5 depend only on the header's bytes, and an IdP's tokens repeat a few headers byte
/// for byte: the outcome for the headers of tokens whose signature verified is remembered (at
/// most eight), so those steps run once per distinct header.
#[derive(Clone)]
pub struct TokenRules {
    issuer: Arc<str>,
    audiences: Vec<String>,
    algorithms: AlgorithmSet,
    leeway_micros: u64,
    required: u8,
    typ: TypRule,
    max_len: usize,
    headers: Arc<HeaderMemo>,
}

/// Headers of tokens that verified, with what checking them gave.
///
/// An identity provider's tokens repeat a handful of headers byte for byte (one per signing
/// key), so steps 2 to 5 are done once per distinct header. Only headers of tokens whose
/// signature verified are remembered (nobody without a signing key can add one), at most
/// [`HEADER_MEMO_SLOTS`]; the result is a pure function of the header's bytes and these rules,
/// which never change.
#[derive(Default)]
struct HeaderMemo(ArcSwap<Vec<MemoEntry>>);

struct MemoEntry {
    b64: Box<str>,
    alg: Algorithm,
    kid: Option<String>,
    typ: Option<Cow<'static, str>>,
}

/// How many distinct headers are remembered: a few signing keys, during a rotation.
const HEADER_MEMO_SLOTS: usize = 8;

impl TokenRules {
    /// Remember the checked header of a token whose signature verified.
    fn remember_header(&self, parsed: &Parsed<'_>) {
        if parsed.memoized {
            return;
        }
        let current = self.headers.0.load();
        if current.len() >= HEADER_MEMO_SLOTS
            || current.iter().any(|e| *e.b64 == *parsed.header_b64)
        {
            return;
        }
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().map(|e| MemoEntry {
            b64: e.b64.clone(),
            alg: e.alg,
            kid: e.kid.clone(),
            typ: e.typ.clone(),
        }));
        next.push(MemoEntry {
            b64: parsed.header_b64.into(),
            alg: parsed.alg,
            kid: parsed.kid.clone(),
            typ: parsed.typ.clone(),
        });
        // A concurrent insert may be lost; the header is simply remembered next time.
        let _ = self.headers.0.compare_and_swap(&current, Arc::new(next));
    }
}

impl fmt::Debug for TokenRules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenRules")
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("leeway", &Duration::from_micros(self.leeway_micros))
            .field(
                "required",
                &[
                    RequiredClaim::Sub,
                    RequiredClaim::Iat,
                    RequiredClaim::Nbf,
                    RequiredClaim::Jti,
                ]
                .into_iter()
                .filter(|c| self.required & c.bit() != 0)
                .map(RequiredClaim::as_str)
                .collect::<Vec<_>>(),
            )
            .field("typ", &self.typ)
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// Builds [`TokenRules`].
#[derive(Debug, Clone)]
pub struct TokenRulesBuilder {
    issuer: String,
    audiences: Vec<String>,
    algorithms: AlgorithmSet,
    leeway: Duration,
    required: u8,
    typ: TypRule,
    max_len: usize,
}

impl TokenRules {
    /// Rules for tokens issued by `issuer` (compared exactly with `iss`). Defaults: every
    /// [`Algorithm`], [`DEFAULT_LEEWAY`], `sub` required, [`TypRule::default`],
    /// [`DEFAULT_MAX_TOKEN_LEN`]; at least one audience must be added.
    pub fn builder(issuer: impl Into<String>) -> TokenRulesBuilder {
        TokenRulesBuilder {
            issuer: issuer.into(),
            audiences: Vec::new(),
            algorithms: AlgorithmSet::all(),
            leeway: DEFAULT_LEEWAY,
            required: RequiredClaim::Sub.bit(),
            typ: TypRule::default(),
            max_len: DEFAULT_MAX_TOKEN_LEN,
        }
    }

    /// The issuer tokens must name.
    #[must_use]
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Verify `token` against a fixed key set at time `now`: all checks, synchronously.
    ///
    /// # Errors
    /// The first check that fails, as listed on [`TokenRules`].
    pub fn verify_with_keys<T: DeserializeOwned>(
        &self,
        token: &str,
        keys: &KeySet,
        now: UnixTime,
    ) -> Result<Verified<T>, VerifyError> {
        let parsed = self.parse(token)?;
        match keys.find(parsed.kid.as_deref(), parsed.alg) {
            Lookup::Found(key) => self.finish(parsed, key, now),
            Lookup::NotFound => Err(VerifyError::UnknownKey),
            Lookup::Mismatch => Err(VerifyError::KeyMismatch),
        }
    }

    /// Steps 1 to 6: everything that can be checked before a key is chosen.
    pub(crate) fn parse<'t>(&self, token: &'t str) -> Result<Parsed<'t>, VerifyError> {
        if token.len() > self.max_len {
            return Err(VerifyError::TooLarge {
                len: token.len(),
                max: self.max_len,
            });
        }
        let structure = VerifyError::Malformed(Malformed::Structure);
        let (header_b64, rest) = token.split_once('.').ok_or(structure.clone())?;
        let (payload_b64, signature_b64) = rest.split_once('.').ok_or(structure.clone())?;
        if header_b64.is_empty() || payload_b64.is_empty() || signature_b64.contains('.') {
            return Err(structure);
        }
        let remembered = self
            .headers
            .0
            .load()
            .iter()
            .find(|e| *e.b64 == *header_b64)
            .map(|e| (e.alg, e.kid.clone(), e.typ.clone()));
        let memoized = remembered.is_some();
        let (alg, kid, typ) = match remembered {
            Some(checked) => checked,
            None => self.check_header(header_b64)?,
        };
        if signature_b64.is_empty() {
            return Err(VerifyError::Malformed(Malformed::MissingSignature));
        }
        // The signing input is the first two parts and the dot between them.
        let signing_input = token
            .get(..header_b64.len() + 1 + payload_b64.len())
            .ok_or(VerifyError::Malformed(Malformed::Structure))?;
        Ok(Parsed {
            signing_input,
            header_b64,
            payload_b64,
            signature_b64,
            alg,
            kid,
            typ,
            memoized,
        })
    }

    /// Steps 2 to 5 for the header part.
    #[allow(clippy::type_complexity)]
    fn check_header(
        &self,
        header_b64: &str,
    ) -> Result<(Algorithm, Option<String>, Option<Cow<'static, str>>), VerifyError> {
        with_decoded::<HEADER_BUF, _>(header_b64, |json| {
            let header: RawHeader<'_> = serde_json::from_slice(json)
                .map_err(|_| VerifyError::Malformed(Malformed::Header))?;
            let alg = Algorithm::from_name(&header.alg)
                .filter(|a| self.algorithms.contains(*a))
                .ok_or(VerifyError::DisallowedAlgorithm)?;
            if header.crit {
                return Err(VerifyError::CriticalHeader);
            }
            if !self.typ.accepts(header.typ.as_deref()) {
                return Err(VerifyError::WrongType);
            }
            Ok((
                alg,
                header.kid.map(Cow::into_owned),
                header.typ.map(|t| match &*t {
                    // The usual value, without an allocation.
                    "JWT" => Cow::Borrowed("JWT"),
                    _ => Cow::Owned(t.into_owned()),
                }),
            ))
        })
    }

    /// Steps 8 to 13, with the key chosen.
    pub(crate) fn finish<T: DeserializeOwned>(
        &self,
        parsed: Parsed<'_>,
        key: &VerifyKey,
        now: UnixTime,
    ) -> Result<Verified<T>, VerifyError> {
        // The longest signature of a supported key is that of an 8192-bit RSA key; anything
        // longer is refused unread.
        if base64::decoded_len_estimate(parsed.signature_b64.len()) > MAX_SIGNATURE_LEN + 3 {
            return Err(VerifyError::BadSignature);
        }
        with_decoded::<SIGNATURE_BUF, _>(parsed.signature_b64, |signature| {
            if key.verifies(parsed.signing_input.as_bytes(), signature) {
                Ok(())
            } else {
                Err(VerifyError::BadSignature)
            }
        })?;
        self.remember_header(&parsed);
        let (registered, claims) = with_decoded::<PAYLOAD_BUF, _>(parsed.payload_b64, |payload| {
            // Valid UTF-8 is checked once here, so that the two parses below need not check
            // each string again.
            let payload = std::str::from_utf8(payload)
                .map_err(|_| VerifyError::Malformed(Malformed::Claims))?;
            let claims_error = |_| VerifyError::Malformed(Malformed::Claims);
            let raw: RawClaims<'_> = serde_json::from_str(payload).map_err(claims_error)?;
            let registered = self.check(raw, now.as_micros())?;
            let claims: T = serde_json::from_str(payload).map_err(claims_error)?;
            Ok((registered, claims))
        })?;
        Ok(Verified {
            claims,
            registered,
            header: VerifiedHeader {
                alg: parsed.alg,
                kid: parsed.kid,
                typ: parsed.typ,
            },
        })
    }

    /// The registered claims against the rules, at `now` (microseconds).
    fn check(&self, raw: RawClaims<'_>, now: u64) -> Result<RegisteredClaims, VerifyError> {
        let leeway = self.leeway_micros;
        let exp = raw.exp.ok_or(VerifyError::MissingClaim("exp"))?.0;
        if now >= exp.saturating_add(leeway) {
            return Err(VerifyError::Expired);
        }
        let nbf = raw.nbf.map(|d| d.0);
        let iat = raw.iat.map(|d| d.0);
        let horizon = now.saturating_add(leeway);
        if nbf.is_some_and(|t| t > horizon) || iat.is_some_and(|t| t > horizon) {
            return Err(VerifyError::NotYetValid);
        }
        match raw.iss {
            Some(iss) if *iss == *self.issuer => {}
            _ => return Err(VerifyError::WrongIssuer),
        }
        let aud: Vec<String> = match raw.aud {
            None => Vec::new(),
            Some(RawAudience::One(a)) => vec![a.into_owned()],
            Some(RawAudience::Many(list)) => list,
        };
        if !aud
            .iter()
            .any(|a| self.audiences.iter().any(|ours| ours == a))
        {
            return Err(VerifyError::WrongAudience);
        }
        let present = [
            (RequiredClaim::Sub, raw.sub.is_some()),
            (RequiredClaim::Iat, iat.is_some()),
            (RequiredClaim::Nbf, nbf.is_some()),
            (RequiredClaim::Jti, raw.jti.is_some()),
        ];
        for (claim, is_present) in present {
            if self.required & claim.bit() != 0 && !is_present {
                return Err(VerifyError::MissingClaim(claim.as_str()));
            }
        }
        Ok(RegisteredClaims {
            iss: Arc::clone(&self.issuer),
            sub: raw.sub.map(Cow::into_owned),
            aud,
            exp: UnixTime::from_micros(exp),
            nbf: nbf.map(UnixTime::from_micros),
            iat: iat.map(UnixTime::from_micros),
            jti: raw.jti.map(Cow::into_owned),
        })
    }
}

impl TokenRulesBuilder {
    /// Accept tokens whose `aud` names `audience` (call again to accept several).
    #[must_use]
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audiences.push(audience.into());
        self
    }

    /// Accept tokens whose `aud` names any of `audiences`.
    #[must_use]
    pub fn audiences<I, S>(mut self, audiences: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.audiences.extend(audiences.into_iter().map(Into::into));
        self
    }

    /// The algorithm allow-list (default: every [`Algorithm`]). Allow only what your IdP uses.
    #[must_use]
    pub fn algorithms(mut self, algorithms: impl IntoIterator<Item = Algorithm>) -> Self {
        self.algorithms = algorithms.into_iter().collect();
        self
    }

    /// Clock skew tolerated on `exp`, `nbf` and `iat` (default [`DEFAULT_LEEWAY`], at most
    /// [`MAX_LEEWAY`]).
    #[must_use]
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Require a claim to be present (in addition to `iss`, `aud`, `exp` and `sub`).
    #[must_use]
    pub fn require(mut self, claim: RequiredClaim) -> Self {
        self.required |= claim.bit();
        self
    }

    /// Do not require `sub` (it is required by default).
    #[must_use]
    pub fn allow_missing_sub(mut self) -> Self {
        self.required &= !RequiredClaim::Sub.bit();
        self
    }

    /// The `typ` rule (default [`TypRule::default`]).
    #[must_use]
    pub fn typ(mut self, rule: TypRule) -> Self {
        self.typ = rule;
        self
    }

    /// The longest token accepted, in bytes (default [`DEFAULT_MAX_TOKEN_LEN`]).
    #[must_use]
    pub fn max_token_len(mut self, max: usize) -> Self {
        self.max_len = max;
        self
    }

    /// The rules.
    ///
    /// # Errors
    /// [`ConfigError`] for an empty issuer, no audience, an empty allow-list, a leeway above
    /// [`MAX_LEEWAY`] or a zero maximum length.
    pub fn build(self) -> Result<TokenRules, ConfigError> {
        if self.issuer.is_empty() {
            return Err(ConfigError::NoIssuer);
        }
        if self.audiences.is_empty() || self.audiences.iter().any(String::is_empty) {
            return Err(ConfigError::NoAudience);
        }
        if self.algorithms.is_empty() {
            return Err(ConfigError::NoAlgorithms);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge);
        }
        if self.max_len == 0 {
            return Err(ConfigError::ZeroLimit);
        }
        Ok(TokenRules {
            issuer: Arc::from(self.issuer),
            audiences: self.audiences,
            algorithms: self.algorithms,
            leeway_micros: u64::try_from(self.leeway.as_micros()).unwrap_or(u64::MAX),
            required: self.required,
            typ: self.typ,
            max_len: self.max_len,
            headers: Arc::default(),
        })
    }
}

/// A token that passed every check: its claims in the caller's type, the registered claims, and
/// the header fields that mattered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<T> {
    /// The claims, deserialized into the caller's type.
    pub claims: T,
    /// The registered claims (RFC 7519 §4.1), already checked.
    pub registered: RegisteredClaims,
    /// The header.
    pub header: VerifiedHeader,
}

/// The registered claims of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RegisteredClaims {
    /// `iss`: always the configured issuer (shared with the rules, not copied).
    pub iss: Arc<str>,
    /// `sub`, if present (always present unless [`TokenRulesBuilder::allow_missing_sub`]).
    pub sub: Option<String>,
    /// `aud`, as one or more values.
    pub aud: Vec<String>,
    /// `exp`.
    pub exp: UnixTime,
    /// `nbf`, if present.
    pub nbf: Option<UnixTime>,
    /// `iat`, if present.
    pub iat: Option<UnixTime>,
    /// `jti`, if present.
    pub jti: Option<String>,
}

/// The header of a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VerifiedHeader {
    /// The algorithm it was verified with.
    pub alg: Algorithm,
    /// The `kid`, if any.
    pub kid: Option<String>,
    /// The `typ`, if any.
    pub typ: Option<Cow<'static, str>>,
}

/// A token after steps 1 to 6.
pub(crate) struct Parsed<'t> {
    signing_input: &'t str,
    header_b64: &'t str,
    payload_b64: &'t str,
    signature_b64: &'t str,
    pub(crate) alg: Algorithm,
    pub(crate) kid: Option<String>,
    typ: Option<Cow<'static, str>>,
    /// Whether the header came from the memo (so it need not be remembered again).
    memoized: bool,
}

/// The longest signature accepted, in bytes: an 8192-bit RSA signature (the largest key a
/// [`KeySet`] loads).
const MAX_SIGNATURE_LEN: usize = 1024;
/// Signatures up to this many bytes (RSA up to 4096 bits, ECDSA, EdDSA) are decoded on the
/// stack.
const SIGNATURE_BUF: usize = 512;
/// Headers up to this many decoded bytes are decoded on the stack.
const HEADER_BUF: usize = 256;
/// Claims up to this many decoded bytes are decoded on the stack.
const PAYLOAD_BUF: usize = 1024;

/// Decode an unpadded base64url part and hand the bytes to `f`: on the stack when they fit in
/// `N` bytes (the usual case, no allocation), on the heap otherwise.
fn with_decoded<const N: usize, R>(
    part: &str,
    f: impl FnOnce(&[u8]) -> Result<R, VerifyError>,
) -> Result<R, VerifyError> {
    let encoding = |_| VerifyError::Malformed(Malformed::Encoding);
    if base64::decoded_len_estimate(part.len()) <= N {
        let mut buf = [0u8; N];
        let len = URL_SAFE_NO_PAD
            .decode_slice(part, &mut buf)
            .map_err(|_| VerifyError::Malformed(Malformed::Encoding))?;
        f(buf
            .get(..len)
            .ok_or(VerifyError::Malformed(Malformed::Encoding))?)
    } else {
        f(&URL_SAFE_NO_PAD.decode(part).map_err(encoding)?)
    }
}

/// The JOSE header members this crate reads. Unknown members are ignored; a duplicate member is
/// an error (RFC 7515 §4: a JOSE header must not have duplicate names).
#[derive(Deserialize)]
struct RawHeader<'a> {
    #[serde(borrow)]
    alg: Cow<'a, str>,
    #[serde(borrow, default)]
    kid: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    typ: Option<Cow<'a, str>>,
    #[serde(default, deserialize_with = "present")]
    crit: bool,
}

/// `true` when the member is present, whatever its value (even `null`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    IgnoredAny::deserialize(d).map(|_| true)
}

#[derive(Deserialize)]
struct RawClaims<'a> {
    #[serde(borrow, default)]
    iss: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    sub: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    aud: Option<RawAudience<'a>>,
    #[serde(default)]
    exp: Option<NumericDate>,
    #[serde(default)]
    nbf: Option<NumericDate>,
    #[serde(default)]
    iat: Option<NumericDate>,
    #[serde(borrow, default)]
    jti: Option<Cow<'a, str>>,
}

/// `aud`: one string or an array of strings (RFC 7519 §4.1.3).
enum RawAudience<'a> {
    One(Cow<'a, str>),
    Many(Vec<String>),
}

impl<'de: 'a, 'a> Deserialize<'de> for RawAudience<'a> {
    // A hand-written visitor rather than `#[serde(untagged)]`, which buffers the value first:
    // this runs on every verification.
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> de::Visitor<'de> for Visitor<'a> {
            type Value = RawAudience<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of strings")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(RawAudience::One(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(RawAudience::One(Cow::Owned(v.to_owned())))
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut all = Vec::with_capacity(seq.size_hint().unwrap_or(1).min(16));
                while let Some(a) = seq.next_element::<String>()? {
                    all.push(a);
                }
                Ok(RawAudience::Many(all))
            }
        }
        d.deserialize_any(Visitor(std::marker::PhantomData))
    }
}

/// An RFC 7519 NumericDate (seconds since the epoch, possibly fractional) in microseconds.
struct NumericDate(u64);

/// Seconds beyond which microseconds no longer fit in a `u64` (year 586 524).
const MAX_SECS: u64 = u64::MAX / 1_000_000;

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = NumericDate;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a non-negative number of seconds")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NumericDate, E> {
                Ok(NumericDate(v.saturating_mul(1_000_000)))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NumericDate, E> {
                u64::try_from(v)
                    .map(|v| NumericDate(v.saturating_mul(1_000_000)))
                    .map_err(|_| E::custom("negative date"))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NumericDate, E> {
                if !v.is_finite() || v < 0.0 {
                    return Err(E::custom("not a date"));
                }
                // Both casts are in range: the value is finite, non-negative, and below MAX_SECS
                // seconds when converted (larger dates saturate at the far future).
                #[allow(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    clippy::cast_precision_loss
                )]
                let micros = if v >= MAX_SECS as f64 {
                    u64::MAX
                } else {
                    (v * 1_000_000.0) as u64
                };
                Ok(NumericDate(micros))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typ_comparison_follows_rfc_7515() {
        assert!(same_type("at+jwt", "application/at+jwt"));
        assert!(same_type("AT+JWT", "Application/At+Jwt"));
        assert!(!same_type("at+jwt", "jwt"));
        assert!(!same_type("text/at+jwt", "at+jwt"));
        assert!(same_type("é", "é"));
        let forbid = TypRule::default();
        assert!(forbid.accepts(None));
        assert!(forbid.accepts(Some("JWT")));
        assert!(!forbid.accepts(Some("application/AT+JWT")));
        let require = TypRule::Require(vec!["JWT".into()]);
        assert!(!require.accepts(None));
        assert!(require.accepts(Some("jwt")));
        assert!(!require.accepts(Some("at+jwt")));
        assert!(TypRule::Any.accepts(Some("anything")));
    }

    #[test]
    fn builder_refuses_unsafe_configurations() {
        let ok = || TokenRules::builder("https://idp.example").audience("app");
        assert!(ok().build().is_ok());
        assert_eq!(
            TokenRules::builder("https://idp.example")
                .build()
                .unwrap_err(),
            ConfigError::NoAudience
        );
        assert_eq!(
            TokenRules::builder("").audience("a").build().unwrap_err(),
            ConfigError::NoIssuer
        );
        assert_eq!(
            ok().algorithms([]).build().unwrap_err(),
            ConfigError::NoAlgorithms
        );
        assert_eq!(
            ok().leeway(MAX_LEEWAY + Duration::from_secs(1))
                .build()
                .unwrap_err(),
            ConfigError::LeewayTooLarge
        );
        assert!(ok().leeway(MAX_LEEWAY).build().is_ok());
        assert_eq!(
            ok().max_token_len(0).build().unwrap_err(),
            ConfigError::ZeroLimit
        );
        let dbg = format!("{:?}", ok().require(RequiredClaim::Jti).build().unwrap());
        assert!(dbg.contains("\"sub\", \"jti\""), "{dbg}");
    }

    // covers 8725-3.1-a: remembering checked headers changes no verdict: only headers of tokens
    // whose signature verified are remembered, at most HEADER_MEMO_SLOTS of them, and a
    // remembered header on a forged token still fails.
    #[cfg(feature = "testing")]
    #[test]
    fn header_memo_is_bounded_and_changes_no_verdict() {
        use crate::testing::{TestKey, jwks};
        let key = TestKey::generate(Algorithm::EdDSA, Some("k")).unwrap();
        let forger = TestKey::generate(Algorithm::EdDSA, Some("k")).unwrap();
        let set = KeySet::from_json(jwks(&[&key]).as_bytes()).unwrap();
        let rules = TokenRules::builder("iss").audience("aud").build().unwrap();
        let now = UnixTime::from_secs(1000);
        let claims = serde_json::json!({"iss": "iss", "aud": "aud", "sub": "s", "exp": 2000});
        let memo_len = || rules.headers.0.load().len();
        // A forged token teaches the memo nothing.
        let forged = forger.sign(&claims).unwrap();
        let verdict = |t: &str| rules.verify_with_keys::<serde_json::Value>(t, &set, now);
        assert_eq!(verdict(&forged).unwrap_err(), VerifyError::BadSignature);
        assert_eq!(memo_len(), 0);
        // A genuine one does, once.
        let token = key.sign(&claims).unwrap();
        assert!(verdict(&token).is_ok());
        assert!(verdict(&token).is_ok());
        assert_eq!(memo_len(), 1);
        // The same (now remembered) header on a forged token still fails.
        assert_eq!(verdict(&forged).unwrap_err(), VerifyError::BadSignature);
        // Distinct headers fill the memo up to its bound, and verify the same beyond it.
        for i in 0..2 * HEADER_MEMO_SLOTS {
            let mut h = key.header();
            h.typ = Some(format!("custom-{i}"));
            let t = key.sign_with(&h, &claims).unwrap();
            let v = verdict(&t).unwrap();
            assert_eq!(
                v.header.typ.as_deref(),
                Some(format!("custom-{i}").as_str())
            );
            assert_eq!(verdict(&t).unwrap(), v);
        }
        assert_eq!(memo_len(), HEADER_MEMO_SLOTS);
        // Clones of the rules share what was learnt; a rejected header is never remembered.
        let mut at = key.header();
        at.typ = Some("at+jwt".into());
        let access = key.sign_with(&at, &claims).unwrap();
        assert_eq!(
            rules
                .clone()
                .verify_with_keys::<serde_json::Value>(&access, &set, now)
                .unwrap_err(),
            VerifyError::WrongType
        );
    }

    #[test]
    fn audiences() {
        let aud = |s: &str| {
            serde_json::from_str::<RawClaims<'_>>(s).map(|c| match c.aud {
                None => vec![],
                Some(RawAudience::One(a)) => vec![a.into_owned()],
                Some(RawAudience::Many(m)) => m,
            })
        };
        assert_eq!(aud(r#"{"aud":"a"}"#).unwrap(), ["a"]);
        assert_eq!(aud(r#"{"aud":"a\u0062"}"#).unwrap(), ["ab"]);
        assert_eq!(aud(r#"{"aud":["a","b"]}"#).unwrap(), ["a", "b"]);
        assert_eq!(aud(r#"{"aud":[]}"#).unwrap(), Vec::<String>::new());
        assert_eq!(aud(r#"{"aud":null}"#).unwrap(), Vec::<String>::new());
        assert!(aud(r#"{"aud":["a",1]}"#).is_err());
        assert!(aud(r#"{"aud":{"a":1}}"#).is_err());
        assert!(aud(r#"{"aud":7}"#).is_err());
        assert!(aud(r#"{"aud":"a","aud":"b"}"#).is_err());
    }

    #[test]
    fn numeric_dates() {
        let parse = |s: &str| serde_json::from_str::<NumericDate>(s).map(|d| d.0);
        assert_eq!(parse("1").unwrap(), 1_000_000);
        assert_eq!(parse("1.5").unwrap(), 1_500_000);
        assert_eq!(parse("1e300").unwrap(), u64::MAX);
        assert_eq!(parse(&u64::MAX.to_string()).unwrap(), u64::MAX);
        assert!(parse("-1").is_err());
        assert!(parse("-0.5").is_err());
        assert!(parse("\"1\"").is_err());
        assert!(parse("null").is_err());
    }
}
