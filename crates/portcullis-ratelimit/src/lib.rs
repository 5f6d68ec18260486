//! Rate limiting for OAuth servers.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod algorithm;
mod client_ip;
#[cfg(feature = "conformance")]
pub mod conformance;
mod decision;
pub mod headers;
#[cfg(feature = "tower")]
mod layer;
mod limit;
mod memory;
pub mod presets;
mod quota;
mod siphash;
mod store;

pub use algorithm::{State, decide};
pub use client_ip::{
    ClientIp, ClientIpError, ClientIpResolver, DEFAULT_IPV6_PREFIX, ForwardedHeader, IpSource,
    MAX_FORWARDED_HOPS, TrustedProxies, parse_forwarded, parse_x_forwarded_for,
};
pub use decision::{Decision, MultiDecision};
pub use headers::RateLimitFields;
#[cfg(feature = "tower")]
pub use layer::{
    ANY_ROUTE_KEY, AuthenticatedUser, FailurePolicy, PeerAddr, RateLimit, RateLimitLayer,
    RequestView, Rule, UNKNOWN_PEER_KEY,
};
pub use limit::{Algorithm, Limit, LimitError, MAX_NAME_LEN};
pub use memory::{DEFAULT_MAX_KEYS, DEFAULT_SHARDS, MemoryStats, MemoryStore, MemoryStoreBuilder};
pub use quota::{MAX_SPAN_MICROS, Quota, QuotaError};
pub use store::{Check, RateLimitStore, StoreError};
