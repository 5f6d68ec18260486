//! portcullis-rotation rows: one refresh rotation on the memory store against the unavoidable
//! crypto of a rotation, and its scaling across threads on distinct families.

use std::future::Future;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

use portcullis_core::{ManualClock, SecretString};
use portcullis_hash::{Keyring, OpaqueToken, Purpose, TokenHasher, TokenPrefix};
use portcullis_pkce::CodeVerifier;
use portcullis_rotation::{
    BindingContext, CodeExchange, CodeRequest, GrantService, MemoryGrantStore, RefreshRequest,
    RotationPolicy, Scope,
};

use crate::harness::{Goal, Row, Settings, compare, keep, throughput};

/// A 32-byte key, as HMAC_SECRET would hold.
const KEY: &str = "0123456789abcdef0123456789abcdef";

/// Rotations per family before the chain starts a new family, so that no family's record grows
/// without bound during a long measurement (a real family rotates a few times a day).
const ROTATIONS_PER_FAMILY: u32 = 1024;

/// Drive a future to completion by polling it on this thread. The memory store never waits, so
/// this is one poll: what an `.await` inside an already running task costs, with no runtime
/// entry per call.
pub fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// A service on a fresh memory store.
pub fn service() -> Arc<GrantService> {
    let hasher = TokenHasher::new(Keyring::from_values(KEY, None).unwrap());
    Arc::new(GrantService::new(
        Arc::new(MemoryGrantStore::new()),
        Arc::new(hasher),
        Arc::new(ManualClock::at_secs(1_700_000_000)),
        RotationPolicy::default(),
    ))
}

/// One family's refresh chain: each step presents the current refresh token and keeps the
/// successor.
#[derive(Debug)]
pub struct Chain {
    service: Arc<GrantService>,
    user: String,
    token: SecretString,
    rotations: u32,
}

fn start_family(service: &GrantService, user: &str) -> SecretString {
    let verifier = CodeVerifier::generate().unwrap();
    let issued = block_on(service.issue_code(CodeRequest {
        client_id: "bench-client".into(),
        redirect_uri: "https://client.example/cb".into(),
        challenge: Some(verifier.challenge()),
        scope: Scope::parse("read write").unwrap(),
        resources: vec![],
        user_id: user.to_owned(),
        session_expires_at: None,
    }))
    .unwrap();
    let pair = block_on(service.exchange_code(CodeExchange {
        code: issued.code.expose_secret(),
        client_id: "bench-client",
        redirect_uri: Some("https://client.example/cb"),
        code_verifier: Some(verifier.expose_secret()),
        binding: BindingContext::default(),
    }))
    .unwrap();
    pair.refresh_token
}

impl Chain {
    /// A new family for `user`.
    pub fn new(service: Arc<GrantService>, user: &str) -> Self {
        let token = start_family(&service, user);
        Self {
            service,
            user: user.to_owned(),
            token,
            rotations: 0,
        }
    }

    /// One rotation.
    pub fn step(&mut self) {
        if self.rotations == ROTATIONS_PER_FAMILY {
            // Revoke the old family (so purge may drop it) and start a new one.
            let _ = block_on(self.service.logout(&self.user));
            let _ = block_on(self.service.purge(usize::MAX));
            self.token = start_family(&self.service, &self.user);
            self.rotations = 0;
        }
        let pair = block_on(self.service.refresh(RefreshRequest {
            refresh_token: self.token.expose_secret(),
            client_id: "bench-client",
            scope: None,
            binding: BindingContext::default(),
        }))
        .unwrap();
        self.token = pair.refresh_token;
        self.rotations += 1;
        keep(pair.access_token);
    }
}

/// The rows of this module.
pub fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row> {
    let mut rows = Vec::new();

    if only("rotation_memory_vs_crypto_floor") {
        let mut chain = Chain::new(service(), "solo");
        let hasher = TokenHasher::new(Keyring::from_values(KEY, None).unwrap());
        let (ours, floor) = compare(
            settings,
            || chain.step(),
            || {
                let t = OpaqueToken::mint(TokenPrefix::REFRESH).unwrap();
                keep(hasher.hash(Purpose::RefreshToken, t.expose_secret().as_bytes()));
            },
        );
        rows.push(
            Row::time(
                "rotation_memory_vs_crypto_floor",
                ours,
                "one OpaqueToken::mint + one keyed hash (the crypto a rotation cannot avoid)",
                floor,
                Goal::AtMost(4.0),
            )
            .with_note(
                "ours: GrantService::refresh on MemoryGrantStore, polled directly (no runtime \
                 entry per call): parse, hash the presented token, mint and hash a refresh and \
                 an access token, one atomic store call; a new family every 1024 rotations",
            ),
        );
    }

    if only("rotation_memory_2threads") {
        let measure = |threads: usize| {
            let service = service();
            let chains: Vec<Mutex<Chain>> = (0..threads)
                .map(|t| Mutex::new(Chain::new(Arc::clone(&service), &format!("user-{t}"))))
                .collect();
            throughput(settings, threads, |t| {
                if let Some(chain) = chains.get(t) {
                    chain.lock().unwrap().step();
                }
            })
        };
        // Measure 1 and 2 threads back to back, five times, and keep the pair whose speed-up
        // is the median: a burst of load from elsewhere on the machine hits one pair, not the
        // figure.
        let mut pairs: Vec<(f64, f64)> = (0..5).map(|_| (measure(1), measure(2))).collect();
        pairs.sort_by(|a, b| (a.0 / a.1).total_cmp(&(b.0 / b.1)));
        let (one, two) = pairs
            .get(pairs.len() / 2)
            .copied()
            .unwrap_or((f64::NAN, f64::NAN));
        rows.push(
            Row::scaling(
                "rotation_memory_2threads",
                two,
                "the same rotations on 1 thread (wall-clock ns per rotation)",
                one,
                Goal::AtLeast(1.6),
            )
            .with_note(format!(
                "each thread rotates its own family on one shared MemoryGrantStore; the median of 5 \
                 back-to-back pairs of measurements; {} cores available",
                std::thread::available_parallelism().map_or(0, |n| n.get())
            )),
        );
    }
    rows
}
