//! Rate limiting for OAuth servers.
#![forbid(unsafe_code)]

pub mod algorithm;
mod decision;
mod limit;
mod memory;
mod quota;
mod store;

pub use algorithm::{State, decide};
pub use decision::{Decision, MultiDecision};
pub use limit::{Algorithm, Limit, LimitError, MAX_NAME_LEN};
pub use memory::{DEFAULT_MAX_KEYS, DEFAULT_SHARDS, MemoryStats, MemoryStore, MemoryStoreBuilder};
pub use quota::{MAX_SPAN_MICROS, Quota, QuotaError};
pub use store::{Check, RateLimitStore, StoreError};
