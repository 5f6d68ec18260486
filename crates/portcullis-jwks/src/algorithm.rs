//! The signature algorithms a token may use.

use std::fmt;

use aws_lc_rs::signature::{self as sig, VerificationAlgorithm};

/// A JWS signature algorithm this crate can verify (RFC 7518 §3, RFC 8037 §3.1).
///
/// Only asymmetric algorithms exist in this type: `none` and the HMAC family (`HS256` …) cannot be
/// named, so no configuration can put them on an allow-list and no key can be used for them
/// (RFC 8725 §3.1, §3.2; STANDARDS `8725-3.1-a`, `8725-3.1-b`, `8725-3.2-a`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Algorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// RSASSA-PKCS1-v1_5 with SHA-384.
    RS384,
    /// RSASSA-PKCS1-v1_5 with SHA-512.
    RS512,
    /// RSASSA-PSS with SHA-256 and MGF1 with SHA-256.
    PS256,
    /// RSASSA-PSS with SHA-384 and MGF1 with SHA-384.
    PS384,
    /// RSASSA-PSS with SHA-512 and MGF1 with SHA-512.
    PS512,
    /// ECDSA on P-256 with SHA-256.
    ES256,
    /// ECDSA on P-384 with SHA-384.
    ES384,
    /// EdDSA on Ed25519 (RFC 8037).
    EdDSA,
}

/// The family of keys an algorithm needs (the JWK `kty`, and for EC/OKP the curve).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyFamily {
    Rsa,
    P256,
    P384,
    Ed25519,
}

impl Algorithm {
    /// Every algorithm, the default allow-list.
    pub const ALL: [Self; 9] = [
        Self::RS256,
        Self::RS384,
        Self::RS512,
        Self::PS256,
        Self::PS384,
        Self::PS512,
        Self::ES256,
        Self::ES384,
        Self::EdDSA,
    ];

    /// The `alg` header value, e.g. `"RS256"`.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::RS256 => "RS256",
            Self::RS384 => "RS384",
            Self::RS512 => "RS512",
            Self::PS256 => "PS256",
            Self::PS384 => "PS384",
            Self::PS512 => "PS512",
            Self::ES256 => "ES256",
            Self::ES384 => "ES384",
            Self::EdDSA => "EdDSA",
        }
    }

    /// The algorithm with this exact (case-sensitive) `alg` name, or `None` for anything else,
    /// including `none` and the HMAC algorithms.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    pub(crate) const fn family(self) -> KeyFamily {
        match self {
            Self::RS256 | Self::RS384 | Self::RS512 | Self::PS256 | Self::PS384 | Self::PS512 => {
                KeyFamily::Rsa
            }
            Self::ES256 => KeyFamily::P256,
            Self::ES384 => KeyFamily::P384,
            Self::EdDSA => KeyFamily::Ed25519,
        }
    }

    /// The bit in an [`AlgorithmSet`].
    const fn bit(self) -> u16 {
        1 << (self as u16)
    }

    /// The RSA parameters for an RSA algorithm: the same ones jsonwebtoken's aws-lc-rs backend
    /// uses (2048- to 8192-bit moduli).
    pub(crate) fn rsa_params(self) -> Option<&'static sig::RsaParameters> {
        match self {
            Self::RS256 => Some(&sig::RSA_PKCS1_2048_8192_SHA256),
            Self::RS384 => Some(&sig::RSA_PKCS1_2048_8192_SHA384),
            Self::RS512 => Some(&sig::RSA_PKCS1_2048_8192_SHA512),
            Self::PS256 => Some(&sig::RSA_PSS_2048_8192_SHA256),
            Self::PS384 => Some(&sig::RSA_PSS_2048_8192_SHA384),
            Self::PS512 => Some(&sig::RSA_PSS_2048_8192_SHA512),
            Self::ES256 | Self::ES384 | Self::EdDSA => None,
        }
    }

    /// The digest the signature is computed over, for the algorithms that hash the message
    /// first (all but EdDSA, which signs the message itself).
    pub(crate) fn digest(self) -> Option<&'static aws_lc_rs::digest::Algorithm> {
        use aws_lc_rs::digest::{SHA256, SHA384, SHA512};
        match self {
            Self::RS256 | Self::PS256 | Self::ES256 => Some(&SHA256),
            Self::RS384 | Self::PS384 | Self::ES384 => Some(&SHA384),
            Self::RS512 | Self::PS512 => Some(&SHA512),
            Self::EdDSA => None,
        }
    }

    /// The aws-lc-rs verification algorithm for EC and OKP keys (JWS ECDSA signatures are the
    /// fixed-width `r || s` form, RFC 7518 §3.4).
    pub(crate) fn point_params(self) -> Option<&'static dyn VerificationAlgorithm> {
        match self {
            Self::ES256 => Some(&sig::ECDSA_P256_SHA256_FIXED),
            Self::ES384 => Some(&sig::ECDSA_P384_SHA384_FIXED),
            Self::EdDSA => Some(&sig::ED25519),
            _ => None,
        }
    }

    /// The same algorithm in jsonwebtoken's terms (for encoding test tokens and comparing verdicts).
    #[must_use]
    pub const fn to_jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        use jsonwebtoken::Algorithm as J;
        match self {
            Self::RS256 => J::RS256,
            Self::RS384 => J::RS384,
            Self::RS512 => J::RS512,
            Self::PS256 => J::PS256,
            Self::PS384 => J::PS384,
            Self::PS512 => J::PS512,
            Self::ES256 => J::ES256,
            Self::ES384 => J::ES384,
            Self::EdDSA => J::EdDSA,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of [`Algorithm`]s: the verifier's allow-list.
///
/// ```
/// use portcullis_jwks::{Algorithm, AlgorithmSet};
///
/// let set = AlgorithmSet::from_iter([Algorithm::RS256, Algorithm::EdDSA]);
/// assert!(set.contains(Algorithm::RS256));
/// assert!(!set.contains(Algorithm::PS256));
/// assert!(AlgorithmSet::all().contains(Algorithm::ES384));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Default)]
pub struct AlgorithmSet(u16);

impl AlgorithmSet {
    /// The empty set.
    #[must_use]
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Every algorithm this crate supports.
    #[must_use]
    pub fn all() -> Self {
        Self::from_iter(Algorithm::ALL)
    }

    /// Whether `alg` is in the set.
    #[must_use]
    pub const fn contains(self, alg: Algorithm) -> bool {
        self.0 & alg.bit() != 0
    }

    /// This set with `alg` added.
    #[must_use]
    pub const fn with(self, alg: Algorithm) -> Self {
        Self(self.0 | alg.bit())
    }

    /// Whether the set is empty.
    #[must_use]
    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The algorithms in the set, in declaration order.
    pub fn iter(self) -> impl Iterator<Item = Algorithm> {
        Algorithm::ALL
            .into_iter()
            .filter(move |a| self.contains(*a))
    }
}

impl FromIterator<Algorithm> for AlgorithmSet {
    fn from_iter<I: IntoIterator<Item = Algorithm>>(iter: I) -> Self {
        iter.into_iter().fold(Self::empty(), Self::with)
    }
}

impl fmt::Debug for AlgorithmSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // covers 8725-3.2-a: `none` and the HMAC family cannot be named at all.
    #[test]
    fn none_and_hmac_have_no_algorithm() {
        for name in [
            "none", "None", "NONE", "HS256", "HS384", "HS512", "rs256", "", "RS256 ",
        ] {
            assert_eq!(Algorithm::from_name(name), None, "{name:?}");
        }
        for a in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(a.as_str()), Some(a));
            assert_eq!(
                a.as_str().parse::<jsonwebtoken::Algorithm>().ok(),
                Some(a.to_jsonwebtoken())
            );
        }
    }

    #[test]
    fn sets() {
        let s = AlgorithmSet::from_iter([Algorithm::ES256]);
        assert!(s.contains(Algorithm::ES256));
        assert!(!s.contains(Algorithm::ES384));
        assert!(AlgorithmSet::empty().is_empty());
        assert_eq!(AlgorithmSet::all().iter().count(), 9);
        assert_eq!(format!("{s:?}"), "{ES256}");
    }
}
