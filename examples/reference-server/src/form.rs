//! Strict parsing of `application/x-www-form-urlencoded` bodies and query strings
//! (RFC 6749 §3.1, §3.2: an empty parameter counts as absent, unknown parameters are ignored, a
//! repeated parameter is an error).

use std::collections::HashSet;

use axum::http::{HeaderMap, header};

/// The parameters of one query string or form body, in order.
#[derive(Debug, Default)]
pub(crate) struct Params {
    pairs: Vec<(String, String)>,
}

/// A parameter that may appear once appeared more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Duplicate(pub(crate) &'static str);

impl Params {
    /// Parse a query string or form body. Percent-decoding is lenient (invalid UTF-8 becomes
    /// U+FFFD), which can only make a value fail later checks, never pass them.
    pub(crate) fn parse(input: &[u8]) -> Self {
        Self {
            pairs: form_urlencoded::parse(input).into_owned().collect(),
        }
    }

    /// The single value of `name`: `None` when absent or empty, an error when repeated (even
    /// with an empty value: a repeated name is ambiguous).
    pub(crate) fn single(&self, name: &'static str) -> Result<Option<&str>, Duplicate> {
        let mut found = None;
        let mut count = 0usize;
        for (k, v) in &self.pairs {
            if k == name {
                count += 1;
                found = Some(v.as_str());
            }
        }
        if count > 1 {
            return Err(Duplicate(name));
        }
        Ok(found.filter(|v| !v.is_empty()))
    }

    /// Every non-empty value of a parameter that may repeat (`resource`, `scope` checkboxes).
    pub(crate) fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }

    /// The first parameter that is repeated, other than those in `may_repeat`. Linear in the
    /// number of parameters (a hash set): a query string can hold thousands of names.
    pub(crate) fn first_duplicate(&self, may_repeat: &[&str]) -> Option<String> {
        let mut seen: HashSet<&str> = HashSet::with_capacity(self.pairs.len());
        for (k, _) in &self.pairs {
            if may_repeat.contains(&k.as_str()) {
                continue;
            }
            if !seen.insert(k) {
                return Some(k.clone());
            }
        }
        None
    }

    /// Whether `name` appears at all (even empty).
    pub(crate) fn has(&self, name: &str) -> bool {
        self.pairs.iter().any(|(k, _)| k == name)
    }
}

/// Whether the request says its body is `application/x-www-form-urlencoded` (parameters such as
/// `charset` allowed).
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    content_type_is(headers, "application/x-www-form-urlencoded")
}

/// Whether the request's media type is `expected` (case-insensitive, parameters ignored; exactly
/// one `Content-Type` header).
pub(crate) fn content_type_is(headers: &HeaderMap, expected: &str) -> bool {
    let mut values = headers.get_all(header::CONTENT_TYPE).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return false;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    media.eq_ignore_ascii_case(expected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_is_absent_and_duplicates_are_errors() {
        let p = Params::parse(b"a=&b=1&c=2&c=3&d=x%20y&e=%ZZ");
        assert_eq!(p.single("a"), Ok(None));
        assert_eq!(p.single("b"), Ok(Some("1")));
        assert_eq!(p.single("c"), Err(Duplicate("c")));
        assert_eq!(p.single("d"), Ok(Some("x y")));
        assert_eq!(p.single("zz"), Ok(None));
        assert_eq!(p.first_duplicate(&[]), Some("c".to_owned()));
        assert_eq!(p.first_duplicate(&["c"]), None);
        assert_eq!(p.all("c").collect::<Vec<_>>(), ["2", "3"]);
        assert!(p.has("a"));
        let empty_dup = Params::parse(b"s=&s=x");
        assert!(empty_dup.single("s").is_err());
    }

    #[test]
    fn duplicate_detection_is_linear() {
        // A 64 KiB query string holds about 10,000 distinct names; a quadratic scan spent
        // seconds of CPU on such a request. 60,000 names must take well under a second.
        let body: String = (0..60_000).map(|i| format!("k{i}=&")).collect();
        let p = Params::parse(body.as_bytes());
        let start = std::time::Instant::now();
        assert_eq!(p.first_duplicate(&["resource"]), None);
        let with_dup = Params::parse(format!("{body}k59999=x").as_bytes());
        assert_eq!(with_dup.first_duplicate(&[]), Some("k59999".to_owned()));
        assert!(
            start.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn content_types() {
        let mut h = HeaderMap::new();
        assert!(!is_form(&h));
        h.insert(
            "content-type",
            "Application/X-WWW-Form-Urlencoded; charset=UTF-8"
                .parse()
                .unwrap(),
        );
        assert!(is_form(&h));
        h.append("content-type", "text/plain".parse().unwrap());
        assert!(!is_form(&h));
    }
}
