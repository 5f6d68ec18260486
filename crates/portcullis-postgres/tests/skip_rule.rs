//! The skip/require rule every integration test of this crate follows, checked case by case.
#![allow(clippy::unwrap_used)]

mod common;

use common::{Plan, plan};

#[test]
fn unset_url_skips_unless_services_are_required() {
    let unreachable = |_: &str| -> Result<(), String> { panic!("not asked without a URL") };
    assert!(matches!(plan(None, false, unreachable), Plan::Skip(_)));
    assert!(matches!(plan(Some(""), false, unreachable), Plan::Skip(_)));
    assert!(matches!(plan(None, true, unreachable), Plan::Fail(_)));
    assert!(matches!(plan(Some(""), true, unreachable), Plan::Fail(_)));
}

#[test]
fn unreachable_database_skips_unless_services_are_required() {
    let down = |_: &str| Err("connection refused".to_owned());
    assert!(
        matches!(plan(Some("postgres://x"), false, down), Plan::Skip(why) if why.contains("refused"))
    );
    assert!(
        matches!(plan(Some("postgres://x"), true, down), Plan::Fail(why) if why.contains("refused"))
    );
}

#[test]
fn reachable_database_runs() {
    let up = |_: &str| Ok(());
    assert_eq!(
        plan(Some("postgres://x"), false, up),
        Plan::Run("postgres://x".into())
    );
    assert_eq!(
        plan(Some("postgres://x"), true, up),
        Plan::Run("postgres://x".into())
    );
}
