//! Shared foundations for the Portcullis OAuth crates.
//!
//! Three small pieces that every other Portcullis crate builds on:
//!
//! - [`Clock`]: where time comes from. Production code uses [`SystemClock`]; tests use a
//!   [`ManualClock`] whose clones share one time and which only moves when told to, so expiry is
//!   tested at its exact edge without sleeping.
//! - [`Secret`]: a wrapper for key material and plaintext tokens. It zeroizes its contents on drop,
//!   prints `Secret([REDACTED])` under `Debug`, has no `Display`, `Serialize` or `PartialEq`, and
//!   hands out its contents only through an explicit [`Secret::expose_secret`].
//! - [`ErrorCode`] and [`OAuthError`]: every OAuth error code the crates can produce (RFC 6749,
//!   6750, 7009, 7591, 8707) with its HTTP status and its JSON body. The optional description is an
//!   [`ErrorDescription`], which can only hold the characters RFC 6749 §5.2 allows, so a response
//!   body can never carry a quote, a backslash or a control character.
//!
//! ```
//! use std::time::Duration;
//! use portcullis_core::{Clock, ErrorCode, ErrorDescription, ManualClock, OAuthError, Secret};
//!
//! // Time that moves only when the test says so.
//! let clock = ManualClock::at_secs(1_700_000_000);
//! let later = clock.clone();
//! clock.advance(Duration::from_secs(60));
//! assert_eq!(later.now().as_secs(), 1_700_000_060);
//!
//! // Secrets never print.
//! let key = Secret::new(b"a very secret key".to_vec());
//! assert_eq!(format!("{key:?}"), "Secret([REDACTED])");
//!
//! // Errors carry their code, status and body.
//! let err = OAuthError::new(ErrorCode::InvalidGrant)
//!     .with_description(ErrorDescription::new("refresh token was already used").unwrap());
//! assert_eq!(err.status(), 400);
//! assert_eq!(
//!     err.to_json(),
//!     r#"{"error":"invalid_grant","error_description":"refresh token was already used"}"#
//! );
//! ```
#![forbid(unsafe_code)]

mod clock;
mod error;
mod secret;

pub use clock::{Clock, ManualClock, SystemClock, UnixTime};
pub use error::{ErrorCode, ErrorDescription, InvalidDescription, OAuthError};
pub use secret::{Secret, SecretBytes, SecretString};
