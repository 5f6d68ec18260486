//! A wrapper for key material and plaintext tokens.

use std::fmt;

use zeroize::Zeroize;

/// Secret data: zeroized on drop, redacted under `Debug`, readable only on purpose.
///
/// `Secret` deliberately has no `Display`, `Serialize` or `PartialEq`: a secret cannot end up in a
/// log line, a JSON body or a timing-dependent comparison by accident. To read it, call
/// [`expose_secret`](Self::expose_secret), which is easy to find in review.
///
/// ```
/// use portcullis_core::SecretString;
///
/// let token = SecretString::from("pcr_example");
/// assert_eq!(format!("{token:?}"), "Secret([REDACTED])");
/// assert_eq!(token.expose_secret(), "pcr_example");
/// ```
///
/// ```compile_fail
/// use portcullis_core::SecretString;
/// let a = SecretString::from("x");
/// let b = SecretString::from("x");
/// let _ = a == b; // no PartialEq: compare secret-derived values in constant time instead
/// ```
///
/// ```compile_fail
/// use portcullis_core::SecretString;
/// println!("{}", SecretString::from("x")); // no Display
/// ```
pub struct Secret<T: Zeroize> {
    inner: T,
}

/// Secret bytes, such as an HMAC key.
pub type SecretBytes = Secret<Vec<u8>>;

/// A secret string, such as a plaintext token or client secret.
pub type SecretString = Secret<String>;

impl<T: Zeroize> Secret<T> {
    /// Wrap a value. The caller should not keep another copy of it.
    pub const fn new(inner: T) -> Self {
        Self { inner }
    }

    /// Read the secret. Every call site is a place where the secret leaves its wrapper: keep
    /// the borrow short and never log or format it.
    pub const fn expose_secret(&self) -> &T {
        &self.inner
    }
}

impl<T: Zeroize> Drop for Secret<T> {
    fn drop(&mut self) {
        self.inner.zeroize();
    }
}

impl<T: Zeroize> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([REDACTED])")
    }
}

impl<T: Zeroize + Clone> Clone for Secret<T> {
    fn clone(&self) -> Self {
        Self::new(self.inner.clone())
    }
}

impl From<Vec<u8>> for SecretBytes {
    fn from(v: Vec<u8>) -> Self {
        Self::new(v)
    }
}

impl From<&[u8]> for SecretBytes {
    fn from(v: &[u8]) -> Self {
        Self::new(v.to_vec())
    }
}

impl From<String> for SecretString {
    fn from(s: String) -> Self {
        Self::new(s)
    }
}

impl From<&str> for SecretString {
    fn from(s: &str) -> Self {
        Self::new(s.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_is_redacted() {
        let s = SecretBytes::from(b"hunter2hunter2".as_slice());
        let shown = format!("{s:?} {s:#?}");
        assert!(!shown.contains("hunter2"));
        assert!(!shown.contains("104")); // nor the bytes as numbers
        assert_eq!(format!("{s:?}"), "Secret([REDACTED])");
    }

    #[test]
    fn expose_and_clone() {
        let s = SecretString::from("abc");
        let c = s.clone();
        assert_eq!(c.expose_secret(), "abc");
        assert_eq!(s.expose_secret(), "abc");
    }

    #[test]
    fn zeroize_clears_contents() {
        // Drop calls zeroize; check that zeroize on the inner type clears it (the part we rely on).
        let mut v = b"key material".to_vec();
        v.zeroize();
        assert!(v.is_empty());
        let mut s = String::from("token");
        s.zeroize();
        assert!(s.is_empty());
    }
}
