//! Redis errors mapped to the traits' store errors, saying whether a retry can help.

use redis::{ErrorKind, RedisError, RetryMethod};

/// Whether retrying the same operation may succeed: the connection dropped or timed out, the
/// server is loading, busy with a script, failing over or redirecting (Cluster), or a script
/// cache was flushed between the load and the call.
pub(crate) fn is_retryable(e: &RedisError) -> bool {
    // A reply of an unexpected shape is a bug (or a foreign key), whatever the connection does.
    if matches!(e.kind(), ErrorKind::Parse | ErrorKind::UnexpectedReturnType) {
        return false;
    }
    if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_cluster_error() {
        return true;
    }
    if matches!(
        e.code(),
        Some(
            "BUSY"
                | "LOADING"
                | "MASTERDOWN"
                | "TRYAGAIN"
                | "CLUSTERDOWN"
                | "READONLY"
                | "NOSCRIPT"
        )
    ) {
        return true;
    }
    !matches!(e.retry_method(), RetryMethod::NoRetry)
}

/// A grant store error.
pub(crate) fn grant(e: RedisError) -> portcullis_rotation::StoreError {
    if is_retryable(&e) {
        portcullis_rotation::StoreError::unavailable(e)
    } else {
        portcullis_rotation::StoreError::backend(e)
    }
}

/// A rate-limit store error.
pub(crate) fn ratelimit(e: RedisError) -> portcullis_ratelimit::StoreError {
    if e.is_timeout() {
        portcullis_ratelimit::StoreError::Timeout
    } else if is_retryable(&e) {
        portcullis_ratelimit::StoreError::Unavailable(Box::new(e))
    } else {
        portcullis_ratelimit::StoreError::Corrupt
    }
}

/// A reply this crate cannot read (a bug, or a foreign key under our prefix): retrying will
/// not help.
#[derive(Debug, thiserror::Error)]
#[error("unexpected reply from Redis: {0}")]
pub(crate) struct BadReply(pub(crate) &'static str);

pub(crate) fn bad(what: &'static str) -> portcullis_rotation::StoreError {
    portcullis_rotation::StoreError::backend(BadReply(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_and_server_conditions_are_retryable() {
        let io: RedisError =
            std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused").into();
        assert!(is_retryable(&io));
        assert!(grant(io.clone()).is_retryable());
        assert!(ratelimit(io).is_retryable());
        let timeout: RedisError = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow").into();
        assert!(matches!(
            ratelimit(timeout),
            portcullis_ratelimit::StoreError::Timeout
        ));
        let script_bug: RedisError = (ErrorKind::UnexpectedReturnType, "bad").into();
        assert!(!is_retryable(&script_bug));
        assert!(!grant(script_bug.clone()).is_retryable());
        assert!(!ratelimit(script_bug).is_retryable());
    }
}
