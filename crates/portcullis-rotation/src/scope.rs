//! Scopes: sets of scope tokens (RFC 6749 §3.3).

use std::fmt;
use std::sync::Arc;

/// A set of scope tokens, in a normal form: sorted, without duplicates, joined by single spaces.
///
/// RFC 6749 §3.3: `scope = scope-token *( SP scope-token )`, `scope-token = 1*( %x21 / %x23-5B /
/// %x5D-7E )`; the order of tokens does not matter. The normal form makes two equal sets equal
/// strings, so a store can keep the scope as one string column. Cloning is a reference-count
/// increment.
///
/// ```
/// use portcullis_rotation::Scope;
///
/// let granted = Scope::parse("read write profile")?;
/// assert_eq!(granted.as_str(), "profile read write");
/// assert!(Scope::parse("write read")?.is_subset_of(&granted));
/// assert!(!Scope::parse("read admin")?.is_subset_of(&granted));
/// assert!(Scope::parse("read  write").is_err()); // an empty token
/// # Ok::<(), portcullis_rotation::ScopeError>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Scope(Arc<str>);

/// Why a string is not a scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ScopeError {
    /// Two spaces in a row, or a leading or trailing space: an empty scope token.
    #[error("scope has an empty scope token")]
    EmptyToken,
    /// A character outside `%x21 / %x23-5B / %x5D-7E`.
    #[error("scope has a character RFC 6749 section 3.3 does not allow")]
    BadCharacter,
}

/// RFC 6749 §3.3 `NQCHAR` without the space: `%x21 / %x23-5B / %x5D-7E`.
const fn scope_char(b: u8) -> bool {
    matches!(b, 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

impl Default for Scope {
    fn default() -> Self {
        Self::empty()
    }
}

impl Scope {
    /// The empty scope.
    #[must_use]
    pub fn empty() -> Self {
        Self(Arc::from(""))
    }

    /// A scope from its space-delimited form. The empty string is the empty scope.
    ///
    /// # Errors
    /// [`ScopeError`] if a token is empty or has a character RFC 6749 §3.3 does not allow.
    pub fn parse(s: &str) -> Result<Self, ScopeError> {
        if s.is_empty() {
            return Ok(Self::empty());
        }
        Self::from_tokens(s.split(' '))
    }

    /// A scope from its tokens, in any order, duplicates allowed.
    ///
    /// # Errors
    /// As [`Scope::parse`].
    pub fn from_tokens<I, T>(tokens: I) -> Result<Self, ScopeError>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<str>,
    {
        let mut list: Vec<String> = Vec::new();
        for t in tokens {
            let t = t.as_ref();
            if t.is_empty() {
                return Err(ScopeError::EmptyToken);
            }
            if !t.bytes().all(scope_char) {
                return Err(ScopeError::BadCharacter);
            }
            list.push(t.to_owned());
        }
        list.sort_unstable();
        list.dedup();
        Ok(Self(Arc::from(list.join(" "))))
    }

    /// The normal form: sorted tokens joined by single spaces (empty for the empty scope).
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The tokens, sorted.
    pub fn tokens(&self) -> impl Iterator<Item = &str> {
        self.0.split(' ').filter(|t| !t.is_empty())
    }

    /// Whether the scope has no tokens.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `token` is one of the scope's tokens.
    #[must_use]
    pub fn contains(&self, token: &str) -> bool {
        self.tokens().any(|t| t == token)
    }

    /// Whether every token of this scope is also in `other` (RFC 6749 §6: a refresh request may
    /// ask for the granted scope or less, never more).
    #[must_use]
    pub fn is_subset_of(&self, other: &Self) -> bool {
        if Arc::ptr_eq(&self.0, &other.0) || self.0 == other.0 {
            return true;
        }
        // Both sorted: one merge walk.
        let mut theirs = other.tokens().peekable();
        'mine: for mine in self.tokens() {
            while let Some(t) = theirs.peek() {
                match (*t).cmp(mine) {
                    std::cmp::Ordering::Less => {
                        theirs.next();
                    }
                    std::cmp::Ordering::Equal => {
                        theirs.next();
                        continue 'mine;
                    }
                    std::cmp::Ordering::Greater => return false,
                }
            }
            return false;
        }
        true
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Scope({:?})", &*self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn normal_form() {
        assert_eq!(Scope::parse("b a b").unwrap().as_str(), "a b");
        assert_eq!(Scope::parse("").unwrap(), Scope::empty());
        assert!(Scope::parse("").unwrap().is_empty());
        assert_eq!(Scope::parse(" a"), Err(ScopeError::EmptyToken));
        assert_eq!(Scope::parse("a "), Err(ScopeError::EmptyToken));
        assert_eq!(Scope::parse("a\"b"), Err(ScopeError::BadCharacter));
        assert_eq!(Scope::parse("a\\b"), Err(ScopeError::BadCharacter));
        assert_eq!(Scope::parse("é"), Err(ScopeError::BadCharacter));
        assert!(Scope::parse("urn:x:read files/write!").is_ok());
        assert!(Scope::parse("a b").unwrap().contains("b"));
        assert!(!Scope::parse("a b").unwrap().contains("c"));
    }

    #[test]
    fn subsets() {
        let s = |x: &str| Scope::parse(x).unwrap();
        assert!(s("").is_subset_of(&s("")));
        assert!(s("").is_subset_of(&s("a")));
        assert!(!s("a").is_subset_of(&s("")));
        assert!(s("a c").is_subset_of(&s("a b c")));
        assert!(!s("a d").is_subset_of(&s("a b c")));
        assert!(!s("ab").is_subset_of(&s("a b")));
    }

    proptest! {
        #[test]
        fn subset_matches_set_semantics(
            a in proptest::collection::btree_set("[a-d]{1,2}", 0..5),
            b in proptest::collection::btree_set("[a-d]{1,2}", 0..5),
        ) {
            let sa = Scope::from_tokens(&a).unwrap();
            let sb = Scope::from_tokens(&b).unwrap();
            prop_assert_eq!(sa.is_subset_of(&sb), a.is_subset(&b));
            prop_assert_eq!(&Scope::parse(sa.as_str()).unwrap(), &sa);
            prop_assert_eq!(sa.tokens().count(), a.len());
        }
    }
}
