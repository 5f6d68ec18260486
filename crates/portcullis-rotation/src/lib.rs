//! Grant families for OAuth 2.1 authorization servers: single-use authorization codes and
//! rotating refresh tokens, stored only as keyed hashes, redeemed atomically, with replay
//! detection that revokes everything issued from the same authorization.
//!
//! # The model
//!
//! A **family** is everything issued from one authorization. It is rooted in an authorization
//! code; redeeming the code yields the family's first refresh token; redeeming a refresh token
//! yields its successor. Each redemption also issues an access token, which belongs to the
//! family. A family has a user, a client, a consented scope and resources, an absolute expiry
//! fixed at its creation, the binding recorded at the code exchange, and — once — a revocation
//! with its reason.
//!
//! Codes and refresh tokens are **credentials**: single-use, each with a generation (0 for the
//! code), its parent, when it was used and the successor its use produced.
//!
//! ```text
//!  A credential (code or refresh token)
//!
//!              redeem (first time, all checks pass)
//!   issued ─────────────────────────────────────────► used ──┐ presented again:
//!     │  │                                              ▲    │ inside the grace window, if it is
//!     │  │ a grace reissue of its parent                └────┘ the immediately previous token:
//!     │  └─────────────────────► superseded                    fresh successor; otherwise replay
//!     │                           (presenting it is a replay)  → the family is revoked
//!     │ its lifetime passes (from any state)
//!     ├─────────────────────────► expired   (refused, never revokes anything; purged)
//!     │ its family is revoked (from any state)
//!     └─────────────────────────► revoked   (refused; purged)
//!
//!  A family
//!
//!    created ───── code redeemed ─────► active ◄──┐
//!  (code issued)                          │  └─────┘ rotation, grace reissue
//!       │                                 │
//!       ├─────────────────────────────────┴──────► revoked ──► purged
//!       │   logout of its user; revocation of its client or by id; RFC 7009 revocation
//!       │   of its code or a refresh token; once active also: a replay of its code or a
//!       │   refresh token, a binding mismatch under the revoke action
//!       │
//!       └─────────────────────────────────────────► expired ──► purged
//!           absolute expiry (from either state): fixed at creation, never after the
//!           upstream session's end
//! ```
//!
//! Invariants every store keeps (DESIGN.md; the `conformance` suite, behind the feature of that
//! name, checks each by name):
//!
//! 1. Only keyed hashes of codes and tokens are stored ([`portcullis_hash::TokenHasher`]).
//! 2. A credential is redeemed at most once: check, mark used and insert the successor are one
//!    atomic step ([`GrantStore::redeem_code`], [`GrantStore::rotate_refresh`]).
//! 3. At most one live refresh token per family.
//! 4. Presenting a used credential outside the grace window is a replay: the family is revoked,
//!    its refresh and access tokens with it, and a [`SecurityEvent`] is emitted.
//! 5. An optional grace window (default 0, at most 5 minutes) lets only the immediately previous
//!    refresh token be presented again; it gets a fresh successor and the earlier successor is
//!    revoked.
//! 6. A token is returned only after its record is stored.
//! 7. Lifetimes: code, refresh idle, family absolute (never extended by rotation), access token
//!    (capped by the family, and so by the upstream session).
//! 8. Revocation by family, user (logout) and client; revoked and expired records are inactive
//!    and purged in bounded batches.
//! 9. Binding (off, user agent, user agent + IP prefix) checked inside the redeem step, with an
//!    action: revoke the family, reject, or report.
//!
//! # The pieces
//!
//! - [`GrantService`]: the policy layer a server calls (issue, exchange, refresh, revoke,
//!   logout, introspect, purge). It parses and hashes presented tokens — a malformed token is
//!   refused before any hashing or store access — mints and hashes new ones, and makes one store
//!   call per redemption.
//! - [`GrantStore`]: the smallest set of atomic primitives, object-safe, so a server can bring
//!   its own store as `Arc<dyn GrantStore>`. The rules a store applies are the pure functions of
//!   [`decide`].
//! - [`MemoryGrantStore`]: the reference store, a lock per family and sharded indexes.
//! - [`RotationPolicy`]: lifetimes, grace window, binding and PKCE, with named defaults.
//! - [`EventSink`] and [`SecurityEvent`]: replays, binding mismatches and revocations, also sent
//!   to `tracing`; never a plaintext token.
//! - [`RotationError::oauth_error`]: the one place failures become OAuth errors.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use portcullis_core::{ErrorCode, ManualClock};
//! use portcullis_hash::{Keyring, TokenHasher};
//! use portcullis_pkce::CodeVerifier;
//! use portcullis_rotation::{
//!     BindingContext, CodeExchange, CodeRequest, GrantService, MemoryGrantStore, RecordingSink,
//!     RefreshRequest, RotationPolicy, Scope, SecurityEvent,
//! };
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let hasher = Arc::new(TokenHasher::new(Keyring::from_values(
//!     "0123456789abcdef0123456789abcdef",
//!     None,
//! )?));
//! let events = Arc::new(RecordingSink::new());
//! let service = GrantService::new(
//!     Arc::new(MemoryGrantStore::new()),
//!     hasher,
//!     Arc::new(ManualClock::at_secs(1_700_000_000)),
//!     RotationPolicy::default(),
//! )
//! .with_events(events.clone());
//!
//! // /authorize, after consent: issue a code bound to the client, redirect URI and challenge.
//! let verifier = CodeVerifier::generate()?;
//! let issued = service
//!     .issue_code(CodeRequest {
//!         client_id: "client-1".into(),
//!         redirect_uri: "https://app.example/cb".into(),
//!         challenge: Some(verifier.challenge()),
//!         scope: Scope::parse("read write")?,
//!         resources: vec![],
//!         user_id: "user-1".into(),
//!         session_expires_at: None,
//!     })
//!     .await?;
//!
//! // /token, grant_type=authorization_code.
//! let first = service
//!     .exchange_code(CodeExchange {
//!         code: issued.code.expose_secret(),
//!         client_id: "client-1",
//!         redirect_uri: Some("https://app.example/cb"),
//!         code_verifier: Some(verifier.expose_secret()),
//!         binding: BindingContext::default(),
//!     })
//!     .await?;
//!
//! // /token, grant_type=refresh_token: the refresh token rotates.
//! let refresh = |token| RefreshRequest {
//!     refresh_token: token,
//!     client_id: "client-1",
//!     scope: None,
//!     binding: BindingContext::default(),
//! };
//! let second = service.refresh(refresh(first.refresh_token.expose_secret())).await?;
//! assert!(service.introspect(second.access_token.expose_secret()).await?.is_active());
//!
//! // Someone presents the first refresh token again: a replay. The family is revoked...
//! let err = service
//!     .refresh(refresh(first.refresh_token.expose_secret()))
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.oauth_error().code(), ErrorCode::InvalidGrant);
//! // ...so the legitimate holder's tokens are dead too, and the operator hears about it.
//! assert!(!service.introspect(second.refresh_token.expose_secret()).await?.is_active());
//! assert!(!service.introspect(second.access_token.expose_secret()).await?.is_active());
//! assert!(matches!(events.events()[0], SecurityEvent::RefreshReplayDetected { .. }));
//! # Ok(())
//! # }
//! ```
#![forbid(unsafe_code)]

mod clients;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod decide;
mod error;
mod events;
mod ids;
mod memory;
mod model;
mod policy;
mod scope;
mod service;
mod store;

pub use clients::{
    ClientRecord, ClientStore, InvalidClient, MAX_CLIENT_ID_LEN, MemoryClientStore, RegistryFull,
};
pub use error::{GrantFailure, RotationError};
pub use events::{EventSink, NoEvents, RecordingSink, SecurityEvent};
pub use ids::{FamilyId, HashPrefix};
pub use memory::{MemoryGrantStore, MemoryStats};
pub use model::{
    AccessToken, Binding, CodeTerms, Credential, Family, Revocation, RevocationReason, TokenKind,
};
pub use policy::{
    BindingAction, BindingMode, BindingPolicy, DEFAULT_ACCESS_TOKEN_LIFETIME,
    DEFAULT_CODE_LIFETIME, DEFAULT_FAMILY_LIFETIME, DEFAULT_GRACE_WINDOW,
    DEFAULT_REFRESH_IDLE_LIFETIME, MAX_CODE_LIFETIME, MAX_GRACE_WINDOW, PolicyError,
    RotationPolicy,
};
pub use scope::{Scope, ScopeError};
pub use service::{
    ActiveToken, BindingContext, CodeExchange, CodeRequest, GrantService, Introspection,
    IssuedCode, RefreshRequest, RevokeResult, TokenPair,
};
pub use store::{
    BindingMismatch, BindingProof, BindingReport, CodeOutcome, CodeRedemption, FamilyRef,
    FamilySnapshot, Found, GrantStore, Issued, Lifetimes, PurgeReport, RefreshOutcome,
    RefreshRotation, Rejection, RevokeOutcome, StoreError, TokenRevocation, VerifierProof,
};
