//! Service behaviour beyond the store conformance suite: redaction, events, PKCE policy,
//! parameter validation, a server bringing its own store as `Arc<dyn GrantStore>`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use portcullis_core::{ErrorCode, ManualClock};
use portcullis_hash::{Keyring, TokenHasher};
use portcullis_pkce::{ChallengeMethod, CodeChallenge, CodeVerifier, PkcePolicy};
use portcullis_rotation::{
    BindingContext, CodeExchange, CodeRequest, GrantService, GrantStore, MemoryGrantStore,
    RecordingSink, RefreshRequest, RevocationReason, RotationError, RotationPolicy, Scope,
    SecurityEvent, TokenKind,
};

fn service(policy: RotationPolicy) -> (GrantService, Arc<RecordingSink>, Arc<MemoryGrantStore>) {
    let store = Arc::new(MemoryGrantStore::new());
    let events = Arc::new(RecordingSink::new());
    let hasher = TokenHasher::new(
        Keyring::from_values("service-test-key-service-test-key-00", None).unwrap(),
    );
    let dyn_store: Arc<dyn GrantStore> = store.clone();
    let svc = GrantService::new(
        dyn_store,
        Arc::new(hasher),
        Arc::new(ManualClock::at_secs(1_800_000_000)),
        policy,
    )
    .with_events(events.clone());
    (svc, events, store)
}

fn request(challenge: Option<CodeChallenge>) -> CodeRequest {
    CodeRequest {
        client_id: "c".into(),
        redirect_uri: "https://c.example/cb".into(),
        challenge,
        scope: Scope::parse("a b").unwrap(),
        resources: vec![],
        user_id: "u".into(),
        session_expires_at: None,
    }
}

fn exchange<'a>(code: &'a str, verifier: Option<&'a str>) -> CodeExchange<'a> {
    CodeExchange {
        code,
        client_id: "c",
        redirect_uri: Some("https://c.example/cb"),
        code_verifier: verifier,
        binding: BindingContext::default(),
    }
}

#[tokio::test]
async fn nothing_secret_reaches_debug_output_or_events() {
    let (svc, events, store) = service(RotationPolicy::default());
    let v = CodeVerifier::generate().unwrap();
    let issued = svc.issue_code(request(Some(v.challenge()))).await.unwrap();
    let code = issued.code.expose_secret().to_owned();
    let pair = svc
        .exchange_code(exchange(&code, Some(v.expose_secret())))
        .await
        .unwrap();
    let refresh = pair.refresh_token.expose_secret().to_owned();
    let req = RefreshRequest {
        refresh_token: &refresh,
        client_id: "c",
        scope: None,
        binding: BindingContext::default(),
    };
    svc.refresh(req).await.unwrap();
    let _ = svc.refresh(req).await.unwrap_err(); // replay: events
    let shown = format!(
        "{issued:?} {pair:?} {req:?} {:?} {:?} {store:?} {svc:?}",
        exchange(&code, Some(v.expose_secret())),
        events.events()
    );
    for secret in [code.as_str(), refresh.as_str(), v.expose_secret()] {
        assert!(!shown.contains(secret), "a secret in debug output");
    }
    assert!(!shown.contains(pair.access_token.expose_secret()));
    let events = events.events();
    assert_eq!(events.len(), 2, "{events:?}");
    assert_eq!(events[0].name(), "refresh_replay_detected");
    assert_eq!(events[1].name(), "family_revoked");
    assert_eq!(events[0].family(), issued.family);
    // an event carries a four-byte prefix of the hash, no more
    let SecurityEvent::RefreshReplayDetected { token, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(token.to_string().len(), 8);
}

#[tokio::test]
async fn plain_pkce_only_when_the_policy_allows_it() {
    let v = CodeVerifier::generate().unwrap();
    let plain = CodeChallenge::new(v.expose_secret(), ChallengeMethod::Plain).unwrap();

    let (strict, _, _) = service(RotationPolicy::default());
    let err = strict
        .issue_code(request(Some(plain.clone())))
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error().code(), ErrorCode::InvalidRequest);

    let (lenient, _, _) =
        service(RotationPolicy::default().with_pkce(PkcePolicy::S256_ONLY.allow_plain(true)));
    let issued = lenient.issue_code(request(Some(plain))).await.unwrap();
    let code = issued.code.expose_secret().to_owned();
    let wrong = CodeVerifier::generate().unwrap();
    let err = lenient
        .exchange_code(exchange(&code, Some(wrong.expose_secret())))
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error().code(), ErrorCode::InvalidGrant);
    lenient
        .exchange_code(exchange(&code, Some(v.expose_secret())))
        .await
        .unwrap();
}

#[tokio::test]
async fn parameters_are_validated_before_the_store() {
    let (svc, _, store) = service(RotationPolicy::default());
    let v = CodeVerifier::generate().unwrap();
    for bad in [
        CodeRequest {
            client_id: String::new(),
            ..request(Some(v.challenge()))
        },
        CodeRequest {
            redirect_uri: String::new(),
            ..request(Some(v.challenge()))
        },
        CodeRequest {
            user_id: String::new(),
            ..request(Some(v.challenge()))
        },
    ] {
        let err = svc.issue_code(bad).await.unwrap_err();
        assert_eq!(err.oauth_error().code(), ErrorCode::InvalidRequest);
    }
    assert_eq!(store.stats().total(), 0);

    let issued = svc.issue_code(request(Some(v.challenge()))).await.unwrap();
    let code = issued.code.expose_secret().to_owned();
    let pair = svc
        .exchange_code(exchange(&code, Some(v.expose_secret())))
        .await
        .unwrap();
    let refresh = pair.refresh_token.expose_secret().to_owned();
    let err = svc
        .refresh(RefreshRequest {
            refresh_token: &refresh,
            client_id: "c",
            scope: Some("a  b"),
            binding: BindingContext::default(),
        })
        .await
        .unwrap_err();
    assert!(matches!(err, RotationError::MalformedScope(_)));
    assert_eq!(err.oauth_error().code(), ErrorCode::InvalidScope);
    // An empty scope parameter counts as absent (RFC 6749 section 3.1).
    let next = svc
        .refresh(RefreshRequest {
            refresh_token: &refresh,
            client_id: "c",
            scope: Some(""),
            binding: BindingContext::default(),
        })
        .await
        .unwrap();
    assert_eq!(next.scope.as_str(), "a b");
    // A malformed token never reaches the store: the memory store holds exactly what it did.
    let before = store.stats();
    let err = svc
        .refresh(RefreshRequest {
            refresh_token: "pcr_garbage",
            client_id: "c",
            scope: None,
            binding: BindingContext::default(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.oauth_error().code(), ErrorCode::InvalidGrant);
    assert_eq!(store.stats(), before);
}

#[tokio::test]
async fn admin_revocation_emits_events() {
    let (svc, events, _) = service(RotationPolicy::default());
    let v = CodeVerifier::generate().unwrap();
    let issued = svc.issue_code(request(Some(v.challenge()))).await.unwrap();
    assert!(svc.revoke_family(issued.family).await.unwrap());
    assert_eq!(
        events.events(),
        vec![SecurityEvent::FamilyRevoked {
            family: issued.family,
            reason: RevocationReason::Administrative
        }]
    );
}

#[test]
fn names_are_stable() {
    for r in RevocationReason::ALL {
        assert_eq!(RevocationReason::from_name(r.as_str()), Some(r));
    }
    assert_eq!(TokenKind::from_prefix("pcr"), Some(TokenKind::RefreshToken));
    assert_eq!(TokenKind::from_prefix("pct"), Some(TokenKind::AccessToken));
    assert_eq!(
        TokenKind::from_prefix("pca"),
        Some(TokenKind::AuthorizationCode)
    );
    assert_eq!(TokenKind::from_prefix("xyz"), None);
}

/// A minimal `tracing` subscriber that keeps every event's fields as text.
#[derive(Default)]
struct Capture {
    lines: std::sync::Mutex<Vec<String>>,
}

struct Fields<'a>(&'a mut String);

impl tracing::field::Visit for Fields<'_> {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        use std::fmt::Write as _;
        let _ = write!(self.0, "{}={:?} ", field.name(), value);
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = format!("{} ", event.metadata().target());
        event.record(&mut Fields(&mut line));
        self.lines.lock().unwrap().push(line);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn security_events_reach_tracing_without_plaintext() {
    let capture = Arc::new(Capture::default());
    let _guard = tracing::subscriber::set_default(capture.clone());
    let (svc, _, _) = service(RotationPolicy::default());
    let v = CodeVerifier::generate().unwrap();
    let issued = svc.issue_code(request(Some(v.challenge()))).await.unwrap();
    let code = issued.code.expose_secret().to_owned();
    svc.exchange_code(exchange(&code, Some(v.expose_secret())))
        .await
        .unwrap();
    // Code replay: revokes the family, traced.
    svc.exchange_code(exchange(&code, Some(v.expose_secret())))
        .await
        .unwrap_err();
    let lines = capture.lines.lock().unwrap().clone();
    let security: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("portcullis_rotation::security"))
        .collect();
    assert!(
        security
            .iter()
            .any(|l| l.contains("event=\"code_replayed\"")),
        "{lines:?}"
    );
    assert!(
        security
            .iter()
            .any(|l| l.contains("event=\"family_revoked\"") && l.contains("code_replay")),
        "{lines:?}"
    );
    assert!(
        security
            .iter()
            .all(|l| l.contains(&issued.family.to_string())),
        "{lines:?}"
    );
    for l in &lines {
        assert!(!l.contains(&code) && !l.contains(v.expose_secret()), "{l}");
    }
}

#[tokio::test]
async fn memory_purge_counts_every_record_it_removes() {
    let (svc, _, store) = service(RotationPolicy::default());
    for _ in 0..5 {
        let v = CodeVerifier::generate().unwrap();
        let issued = svc.issue_code(request(Some(v.challenge()))).await.unwrap();
        let code = issued.code.expose_secret().to_owned();
        let mut pair = svc
            .exchange_code(exchange(&code, Some(v.expose_secret())))
            .await
            .unwrap();
        for _ in 0..3 {
            let token = pair.refresh_token.expose_secret().to_owned();
            pair = svc
                .refresh(RefreshRequest {
                    refresh_token: &token,
                    client_id: "c",
                    scope: None,
                    binding: BindingContext::default(),
                })
                .await
                .unwrap();
        }
    }
    // 5 families, each a code, 4 refresh tokens and 4 access tokens.
    assert_eq!(store.stats().total(), 5 * (1 + 1 + 4 + 4));
    assert_eq!(svc.logout("u").await.unwrap().len(), 5);
    let before = store.stats().total();
    let mut removed = 0;
    let mut calls = 0;
    loop {
        let r = svc.purge(3).await.unwrap();
        assert!(r.removed <= 3);
        removed += r.removed;
        calls += 1;
        if !r.more {
            break;
        }
    }
    assert_eq!(removed, before);
    assert_eq!(store.stats().total(), 0);
    assert!(calls >= before / 3);
    assert_eq!(svc.purge(100).await.unwrap().removed, 0);
}
