//! The report's rows, one module per crate. Each module exposes
//! `fn rows(settings: Settings, only: &dyn Fn(&str) -> bool) -> Vec<Row>`, measuring only the
//! rows whose id `only` accepts.

use crate::harness::{Row, Settings};

pub mod hash;
pub mod jwks;
pub mod pkce;
pub mod postgres;
pub mod ratelimit;
pub mod redis;
pub mod rotation;

/// Every row of the report whose id contains `only` (all rows if `None`), in order.
pub fn all(settings: Settings, only: Option<&str>) -> Vec<Row> {
    let filter = |id: &str| only.is_none_or(|o| id.contains(o));
    let mut rows = Vec::new();
    // One line per crate's module; keep the order stable.
    rows.extend(hash::rows(settings, &filter));
    rows.extend(pkce::rows(settings, &filter));
    rows.extend(ratelimit::rows(settings, &filter));
    rows.extend(redis::rows(settings, &filter));
    rows.extend(jwks::rows(settings, &filter));
    rows.extend(rotation::rows(settings, &filter));
    rows.extend(postgres::rows(settings, &filter));
    rows
}
