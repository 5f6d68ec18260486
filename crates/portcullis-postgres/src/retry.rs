//! Which failures are retried, and how long to wait before the next try.

use std::time::Duration;

use portcullis_rotation::StoreError;

/// The unique index that keeps one live refresh token per family (invariant 3). A violation of
/// it means a concurrent redemption won a race this statement lost: the statement was rolled
/// back and a new try sees the winner's write.
pub(crate) const ONE_LIVE_INDEX: &str = "portcullis_refresh_tokens_one_live_idx";

/// An error inside one try of a store call.
#[derive(Debug)]
pub(crate) enum TryError {
    /// From sqlx, to be classified.
    Sql(sqlx::Error),
    /// Already a store error (a record that does not decode, a duplicate, ...).
    Store(StoreError),
}

impl From<sqlx::Error> for TryError {
    fn from(e: sqlx::Error) -> Self {
        Self::Sql(e)
    }
}

impl From<StoreError> for TryError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

/// What a failed try means for the next one.
#[derive(Debug)]
pub(crate) enum Fault {
    /// The server rolled the statement or transaction back (serialization failure, deadlock,
    /// a lost race on the one-live-token index, a lock timeout): nothing changed, try again.
    RolledBack(sqlx::Error),
    /// The connection failed (terminated backend, reset, I/O error): whether the last statement
    /// committed is unknown. Retrying is safe because every write names records by fresh
    /// random hashes: a redemption that finds its own successor already stored reports success.
    Connection(sqlx::Error),
    /// Retrying will not help.
    Fatal(StoreError),
}

/// Classify a failed try. SQLSTATEs from PostgreSQL's appendix A.
pub(crate) fn classify(e: TryError) -> Fault {
    let e = match e {
        TryError::Store(s) => return Fault::Fatal(s),
        TryError::Sql(e) => e,
    };
    match &e {
        sqlx::Error::Database(db) => {
            let code = db.code().map(|c| c.into_owned()).unwrap_or_default();
            match code.as_str() {
                // serialization_failure, deadlock_detected, lock_not_available
                "40001" | "40P01" | "55P03" => Fault::RolledBack(e),
                // unique_violation
                "23505" if db.constraint() == Some(ONE_LIVE_INDEX) => Fault::RolledBack(e),
                "23505" => Fault::Fatal(StoreError::Duplicate),
                // query_canceled (statement_timeout): the server is overloaded or a lock is
                // held for long; answer "unavailable" at once rather than wait again.
                "57014" => Fault::Fatal(StoreError::unavailable(e)),
                // admin_shutdown (pg_terminate_backend), crash_shutdown, cannot_connect_now,
                // too_many_connections, and class 08 (connection exception)
                "57P01" | "57P02" | "57P03" | "53300" => Fault::Connection(e),
                c if c.starts_with("08") => Fault::Connection(e),
                // undefined_table / undefined_column / undefined_function: no schema here
                "42P01" | "42703" | "42883" => Fault::Fatal(StoreError::Schema),
                _ => Fault::Fatal(StoreError::backend(e)),
            }
        }
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Fault::Connection(e),
        // The pool already waited its acquire timeout: do not wait again.
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed => {
            Fault::Fatal(StoreError::unavailable(e))
        }
        _ => Fault::Fatal(StoreError::backend(e)),
    }
}

/// The wait before try `attempt` (2, 3, ...): full jitter over 1, 4, 16, ... ms, at most 50 ms.
/// A deadlock or serialization failure between two requests is settled by one of them waiting
/// a moment; a lost connection needs no wait (the pool hands out another one).
pub(crate) fn backoff(attempt: u32) -> Duration {
    let cap_ms = 4u64.saturating_pow(attempt.saturating_sub(2)).clamp(1, 50);
    let r = getrandom::u64().unwrap_or(0);
    Duration::from_micros(r % (cap_ms * 1000 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_is_bounded() {
        for attempt in 0..10 {
            assert!(backoff(attempt) <= Duration::from_millis(50));
        }
        assert!(backoff(2) <= Duration::from_millis(1));
    }

    #[test]
    fn pool_and_io_errors() {
        assert!(matches!(
            classify(TryError::Sql(sqlx::Error::PoolTimedOut)),
            Fault::Fatal(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            classify(TryError::Sql(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset
            )))),
            Fault::Connection(_)
        ));
        assert!(matches!(
            classify(TryError::Sql(sqlx::Error::RowNotFound)),
            Fault::Fatal(StoreError::Backend(_))
        ));
        assert!(matches!(
            classify(TryError::Store(StoreError::Duplicate)),
            Fault::Fatal(StoreError::Duplicate)
        ));
    }
}
