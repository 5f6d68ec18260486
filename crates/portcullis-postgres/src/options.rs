//! Pool and retry settings.

use std::time::Duration;

/// Connections in the pool by default: sqlx's default, enough for a server on a few cores (a
/// redemption holds a connection for one round trip).
pub const DEFAULT_MAX_CONNECTIONS: u32 = 10;
/// How long a request waits for a free connection before the store answers "unavailable"
/// (a 503 the client may retry). Shorter than sqlx's 30 s default: a token request should fail
/// fast rather than hang.
pub const DEFAULT_ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// The server-side `statement_timeout` of the pool's connections: every statement of this store
/// touches a handful of rows by index, so anything this slow is stuck behind a lock or an
/// overloaded server; failing it (retryable) beats holding the request.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// How many times one store call is tried when it fails in a way that retrying can fix (a
/// serialization failure, a deadlock, a lost connection): 1 try and 3 retries.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 4;
/// The `application_name` the pool's connections report (`pg_stat_activity`).
pub const DEFAULT_APPLICATION_NAME: &str = "portcullis";
/// Idle connections are pinged before use when they have been idle this long (a ping on every
/// acquisition would cost a round trip per request; a connection that died while in use is
/// handled by the retries instead).
pub const DEFAULT_PING_AFTER_IDLE: Duration = Duration::from_secs(60);

/// How the store connects and retries. Build with [`PostgresOptions::new`] and the `with_*`
/// methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostgresOptions {
    pub(crate) max_connections: u32,
    pub(crate) min_connections: u32,
    pub(crate) acquire_timeout: Duration,
    pub(crate) statement_timeout: Option<Duration>,
    pub(crate) idle_timeout: Option<Duration>,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) max_attempts: u32,
    pub(crate) application_name: String,
    pub(crate) schema: Option<String>,
}

impl Default for PostgresOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl PostgresOptions {
    /// The defaults (the `DEFAULT_*` constants of this crate).
    #[must_use]
    pub fn new() -> Self {
        Self {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            min_connections: 0,
            acquire_timeout: DEFAULT_ACQUIRE_TIMEOUT,
            statement_timeout: Some(DEFAULT_STATEMENT_TIMEOUT),
            idle_timeout: Some(Duration::from_secs(600)),
            max_lifetime: Some(Duration::from_secs(1800)),
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            application_name: DEFAULT_APPLICATION_NAME.to_owned(),
            schema: None,
        }
    }

    /// The most connections the pool opens (at least 1).
    #[must_use]
    pub fn with_max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// Connections the pool keeps open even when idle.
    #[must_use]
    pub const fn with_min_connections(mut self, n: u32) -> Self {
        self.min_connections = n;
        self
    }

    /// How long a call waits for a free connection.
    #[must_use]
    pub const fn with_acquire_timeout(mut self, d: Duration) -> Self {
        self.acquire_timeout = d;
        self
    }

    /// The server-side `statement_timeout` (`None`: the server's setting).
    #[must_use]
    pub const fn with_statement_timeout(mut self, d: Option<Duration>) -> Self {
        self.statement_timeout = d;
        self
    }

    /// Close connections idle this long (`None`: never).
    #[must_use]
    pub const fn with_idle_timeout(mut self, d: Option<Duration>) -> Self {
        self.idle_timeout = d;
        self
    }

    /// Replace connections this old (`None`: never).
    #[must_use]
    pub const fn with_max_lifetime(mut self, d: Option<Duration>) -> Self {
        self.max_lifetime = d;
        self
    }

    /// Tries per store call for retryable failures (at least 1).
    #[must_use]
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The `application_name` the connections report.
    #[must_use]
    pub fn with_application_name(mut self, name: impl Into<String>) -> Self {
        self.application_name = name.into();
        self
    }

    /// Keep the tables in this schema: every connection sets its `search_path` to it (the
    /// schema must exist; [`migrate`](crate::PostgresGrantStore::migrate) creates the tables in
    /// it). Letters, digits and `_` only. `None` (the default): the server's `search_path`.
    #[must_use]
    pub fn with_schema(mut self, schema: Option<String>) -> Self {
        self.schema = schema;
        self
    }

    /// The schema, if set.
    #[must_use]
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }
}

/// Whether `name` is a schema name this crate accepts: 1 to 63 ASCII letters, digits or `_`,
/// not starting with a digit (so quoting it is trivially safe).
pub(crate) fn valid_schema_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && !name.bytes().next().is_some_and(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names() {
        assert!(valid_schema_name("portcullis_test_0a1b"));
        assert!(valid_schema_name("_x"));
        assert!(!valid_schema_name(""));
        assert!(!valid_schema_name("1abc"));
        assert!(!valid_schema_name("a\"; DROP TABLE x; --"));
        assert!(!valid_schema_name("a b"));
        assert!(!valid_schema_name(&"a".repeat(64)));
    }

    #[test]
    fn builder_floors() {
        let o = PostgresOptions::new()
            .with_max_connections(0)
            .with_max_attempts(0);
        assert_eq!(o.max_connections, 1);
        assert_eq!(o.max_attempts, 1);
        assert_eq!(PostgresOptions::default(), PostgresOptions::new());
    }
}
