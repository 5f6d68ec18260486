//! Model-based property test: random operation sequences against the memory store, every step
//! compared with the reference model of `conformance::model`, the invariants checked after each.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::Duration;

use portcullis_rotation::MemoryGrantStore;
use portcullis_rotation::conformance::model::{self, ModelConfig, Op, ScopeChoice};
use proptest::prelude::*;

/// An index counted back from the most recent item: mostly the latest.
fn recent() -> impl Strategy<Value = u8> {
    prop_oneof![7 => Just(0u8), 2 => 1u8..4, 1 => any::<u8>()]
}

fn op() -> impl Strategy<Value = Op> {
    let scope = prop_oneof![
        6 => Just(ScopeChoice::Unchanged),
        1 => Just(ScopeChoice::Narrower),
        1 => Just(ScopeChoice::Wider),
    ];
    prop_oneof![
        3 => (any::<u8>(), any::<u8>()).prop_map(|(user, client)| Op::Issue { user, client }),
        4 => (recent(), prop::bool::weighted(0.9), prop::bool::weighted(0.9)).prop_map(
            |(code, right_client, right_verifier)| Op::Exchange { code, right_client, right_verifier }
        ),
        // Refresh mostly the latest token, and replay older ones now and then.
        10 => (recent(), prop::bool::weighted(0.9), scope).prop_map(
            |(token, right_client, scope)| Op::Refresh { token, right_client, scope }
        ),
        1 => (recent(), any::<bool>())
            .prop_map(|(token, right_client)| Op::RevokeRefresh { token, right_client }),
        1 => recent().prop_map(|token| Op::RevokeAccess { token }),
        1 => prop_oneof![
            any::<u8>().prop_map(|user| Op::Logout { user }),
            any::<u8>().prop_map(|client| Op::RevokeClient { client }),
        ],
        5 => prop_oneof![6 => 0u32..90, 1 => 0u32..8000].prop_map(|secs| Op::Advance { secs }),
        2 => (0u8..10).prop_map(|max| Op::Purge { max }),
    ]
}

fn run(ops: &[Op], grace_secs: u64) -> Result<model::ModelStats, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = ModelConfig {
        grace_window: Duration::from_secs(grace_secs),
        namespace: String::new(),
    };
    runtime
        .block_on(model::run(Arc::new(MemoryGrantStore::new()), &config, ops))
        .map_err(|f| f.to_string())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    // covers 6749-4.1.2-b, 9700-2.2.2-a, 21-4.3.1-a, 7009-2.1-b, 7662-2.2-a (as model steps)
    #[test]
    fn memory_store_matches_the_model(
        ops in prop::collection::vec(op(), 1..120),
        grace in prop_oneof![Just(0u64), Just(45u64), Just(300u64)],
    ) {
        let r = run(&ops, grace);
        prop_assert!(r.is_ok(), "{}", r.err().unwrap_or_default());
    }
}

#[test]
fn generated_sequences_match_the_model() {
    let mut total = model::ModelStats::default();
    for seed in 100..140 {
        let ops = model::generate(seed, 150);
        let s = run(&ops, if seed % 2 == 0 { 0 } else { 60 }).unwrap();
        total.steps += s.steps;
        total.exchanged += s.exchanged;
        total.rotated += s.rotated;
        total.grace_reissued += s.grace_reissued;
        total.replays += s.replays;
        total.refused += s.refused;
        total.revoked += s.revoked;
        total.purged += s.purged;
    }
    println!("{total:?}");
    // Not vacuous: every interesting path was taken many times.
    assert!(total.exchanged > 100, "{total:?}");
    assert!(total.rotated > 200, "{total:?}");
    assert!(total.grace_reissued > 10, "{total:?}");
    assert!(total.replays > 20, "{total:?}");
    assert!(total.refused > 50, "{total:?}");
    assert!(total.revoked > 10, "{total:?}");
    assert!(total.purged > 50, "{total:?}");
}

#[test]
fn byte_decoded_sequences_match_the_model() {
    // A fixed byte string through the fuzz target's decoder: issue, exchange, refresh, replay.
    let bytes = [
        0, 0, 0, // issue
        1, 0, 0, // exchange
        2, 0, 0, // refresh the latest refresh token
        2, 1, 0, // refresh the one before the latest (token 0 again): replay
        7, 200, 5, // advance
        8, 9, 0, // purge
    ];
    let ops = model::from_bytes(&bytes);
    assert_eq!(ops.len(), 6);
    let stats = run(&ops, 0).unwrap();
    assert_eq!((stats.exchanged, stats.rotated, stats.replays), (1, 1, 1));
}

/// The driver catches a store that diverges from the model: a memory store whose clock-free
/// purge drops live records makes the sweep fail.
#[test]
fn the_model_catches_a_diverging_store() {
    // Issue, exchange, refresh, then revoke the family's client out of band through a second
    // service on the same store: the model does not know, so the sweep must object.
    let store = Arc::new(MemoryGrantStore::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let config = ModelConfig {
        grace_window: Duration::ZERO,
        namespace: "x".into(),
    };
    let ops = [
        Op::Issue { user: 0, client: 0 },
        Op::Exchange {
            code: 0,
            right_client: true,
            right_verifier: true,
        },
    ];
    runtime
        .block_on(model::run(store.clone(), &config, &ops))
        .unwrap();
    // Same namespace, same store: a second run's logout revokes the first run's family, which
    // the second run's model has never seen, so it must report the unknown revocation.
    let ops = [Op::Issue { user: 0, client: 0 }, Op::Logout { user: 0 }];
    let err = runtime
        .block_on(model::run(store, &config, &ops))
        .unwrap_err();
    assert!(
        err.to_string().contains("not a live family of the owner"),
        "{err}"
    );
}
