//! The client registry in Redis: [`RedisClientStore`], the rotation crate's
//! [`ClientStore`](portcullis_rotation::ClientStore), so that every server process on one Redis
//! knows the clients registered through any of them.

use std::collections::HashMap;

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;
use portcullis_rotation::{ClientRecord, ClientStore, RegistryFull, StoreError};
use redis::Script;
use std::sync::LazyLock;

use crate::connection::RedisConnection;
use crate::error;
use crate::keys::{self, PrefixError};

/// Register: the record's hash and the id's membership in the index, or nothing.
/// KEYS[1] record, KEYS[2] index; ARGV[1] the hex id, ARGV[2] the most clients ('' = no
/// limit), then field/value pairs. Returns 1, 0 (the id is taken) or -1 (the registry is full).
const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if ARGV[2] ~= '' and redis.call('SCARD', KEYS[2]) >= tonumber(ARGV[2]) then return -1 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('SADD', KEYS[2], ARGV[1])
return 1
";

/// Replace the secret hash and its expiry ('' = none). KEYS[1] record; ARGV[1] hash (hex),
/// ARGV[2] expiry (microseconds). Returns 0 (no such client), 1, or -1 (a public client
/// cannot have a secret; nothing written).
const SET_SECRET: &str = r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'am') == 'none' then return -1 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'sh') else redis.call('HSET', KEYS[1], 'sh', ARGV[1]) end
if ARGV[2] == '' then redis.call('HDEL', KEYS[1], 'se') else redis.call('HSET', KEYS[1], 'se', ARGV[2]) end
return 1
";

/// Delete the record and its index entry. KEYS as INSERT; ARGV[1] the hex id.
const DELETE: &str = r"
if redis.call('DEL', KEYS[1]) == 0 then return 0 end
redis.call('SREM', KEYS[2], ARGV[1])
return 1
";

struct Scripts {
    insert: Script,
    set_secret: Script,
    delete: Script,
}

static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| Scripts {
    insert: Script::new(INSERT),
    set_secret: Script::new(SET_SECRET),
    delete: Script::new(DELETE),
});

/// Registered clients in Redis (or Redis Cluster), one hash per client.
///
/// Keys (under the prefix `P`, all in the hash tag `{cl}`: one slot on Cluster, so that a
/// registration writes the record and the index in one script):
///
/// | key | type | holds |
/// |---|---|---|
/// | `P:cl:{cl}:c:<hex id>` | hash | the record: `am` (auth method), `ru`, `gt`, `rt` (JSON arrays), `md` (metadata), `ca` (created, µs), and when present `sh` (secret hash, hex), `n` (name), `s` (scope), `se` (secret expiry, µs) |
/// | `P:cl:{cl}:ids` | set | every registered id (hex), for [`count`](ClientStore::count) |
///
/// A client is kept until it is deleted, so these keys have no TTL (unlike every grant and
/// limiter key): bound them with [`with_max_clients`](Self::with_max_clients) (checked in the
/// registering script, so no race exceeds it), as well as by rate-limiting registration, so
/// that open registration cannot fill the Redis that holds the grants. Secrets are only their
/// keyed hashes. Every write is one script (one round trip), atomic: of two servers
/// registering one id at once exactly one succeeds.
#[derive(Debug, Clone)]
pub struct RedisClientStore {
    conn: RedisConnection,
    prefix: String,
    max_clients: Option<u64>,
}

fn micros(t: UnixTime) -> String {
    t.as_micros().to_string()
}

fn json_list(v: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(StoreError::backend)
}

impl RedisClientStore {
    /// A registry on `conn` with the default prefix ([`DEFAULT_PREFIX`](crate::DEFAULT_PREFIX)).
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self {
            conn,
            prefix: keys::DEFAULT_PREFIX.to_owned(),
            max_clients: None,
        }
    }

    /// This registry refusing a registration, with [`StoreError::Backend`] holding
    /// [`RegistryFull`], once it holds `max` clients (default: no limit).
    #[must_use]
    pub const fn with_max_clients(mut self, max: u64) -> Self {
        self.max_clients = Some(max);
        self
    }

    /// This registry with every key under `prefix`.
    ///
    /// # Errors
    /// [`PrefixError`] unless `prefix` is 1 to 64 characters of `A-Za-z0-9-_.:`.
    pub fn with_prefix(mut self, prefix: &str) -> Result<Self, PrefixError> {
        keys::check_prefix(prefix)?;
        prefix.clone_into(&mut self.prefix);
        Ok(self)
    }

    fn record_key(&self, hex_id: &str) -> String {
        format!("{}:cl:{{cl}}:c:{hex_id}", self.prefix)
    }

    fn index_key(&self) -> String {
        format!("{}:cl:{{cl}}:ids", self.prefix)
    }

    async fn run(
        &self,
        script: &Script,
        keys: &[String],
        args: &[String],
    ) -> Result<i64, StoreError> {
        self.conn
            .run_script(script, keys, args)
            .await
            .map_err(error::grant)
    }
}

/// A record from its hash fields.
fn decode(id: &str, mut f: HashMap<String, String>) -> Result<ClientRecord, StoreError> {
    let list = |v: Option<String>| -> Result<Vec<String>, StoreError> {
        serde_json::from_str(&v.ok_or_else(|| error::bad("client record without a list"))?)
            .map_err(|_| error::bad("client record with a malformed list"))
    };
    let time = |v: String| -> Result<UnixTime, StoreError> {
        v.parse()
            .map(UnixTime::from_micros)
            .map_err(|_| error::bad("client record with a malformed time"))
    };
    Ok(ClientRecord {
        client_id: id.to_owned(),
        secret_hash: f
            .remove("sh")
            .map(|h| TokenHash::from_hex(&h).ok_or_else(|| error::bad("client secret hash")))
            .transpose()?,
        client_name: f.remove("n"),
        redirect_uris: list(f.remove("ru"))?,
        grant_types: list(f.remove("gt"))?,
        response_types: list(f.remove("rt"))?,
        token_endpoint_auth_method: f
            .remove("am")
            .ok_or_else(|| error::bad("client record without auth method"))?,
        scope: f.remove("s"),
        metadata: f
            .remove("md")
            .ok_or_else(|| error::bad("client record without metadata"))?,
        created_at: time(
            f.remove("ca")
                .ok_or_else(|| error::bad("client record without created_at"))?,
        )?,
        secret_expires_at: f.remove("se").map(time).transpose()?,
    })
}

#[async_trait::async_trait]
impl ClientStore for RedisClientStore {
    async fn insert(&self, client: &ClientRecord) -> Result<(), StoreError> {
        client.validate().map_err(StoreError::backend)?;
        let id = keys::hex(client.client_id.as_bytes());
        let mut args = vec![
            id.clone(),
            self.max_clients.map(|m| m.to_string()).unwrap_or_default(),
            "am".into(),
            client.token_endpoint_auth_method.clone(),
            "ru".into(),
            json_list(&client.redirect_uris)?,
            "gt".into(),
            json_list(&client.grant_types)?,
            "rt".into(),
            json_list(&client.response_types)?,
            "md".into(),
            client.metadata.clone(),
            "ca".into(),
            micros(client.created_at),
        ];
        let optional = [
            ("sh", client.secret_hash.as_ref().map(TokenHash::to_hex)),
            ("n", client.client_name.clone()),
            ("s", client.scope.clone()),
            ("se", client.secret_expires_at.map(micros)),
        ];
        for (field, value) in optional {
            if let Some(v) = value {
                args.push(field.to_owned());
                args.push(v);
            }
        }
        let keys = [self.record_key(&id), self.index_key()];
        match self.run(&SCRIPTS.insert, &keys, &args).await? {
            1 => Ok(()),
            0 => Err(StoreError::Duplicate),
            _ => Err(StoreError::backend(RegistryFull)),
        }
    }

    async fn get(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let key = self.record_key(&keys::hex(client_id.as_bytes()));
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .map_err(error::grant)?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode(client_id, fields).map(Some)
    }

    async fn set_secret(
        &self,
        client_id: &str,
        secret_hash: Option<TokenHash>,
        expires_at: Option<UnixTime>,
    ) -> Result<bool, StoreError> {
        let key = self.record_key(&keys::hex(client_id.as_bytes()));
        let args = [
            secret_hash
                .as_ref()
                .map(TokenHash::to_hex)
                .unwrap_or_default(),
            expires_at.map(micros).unwrap_or_default(),
        ];
        match self.run(&SCRIPTS.set_secret, &[key], &args).await? {
            1 => Ok(true),
            0 => Ok(false),
            _ => Err(StoreError::backend(
                portcullis_rotation::InvalidClient::PublicWithSecret,
            )),
        }
    }

    async fn delete(&self, client_id: &str) -> Result<bool, StoreError> {
        let id = keys::hex(client_id.as_bytes());
        let keys = [self.record_key(&id), self.index_key()];
        Ok(self.run(&SCRIPTS.delete, &keys, &[id]).await? == 1)
    }

    async fn count(&self) -> Result<u64, StoreError> {
        let mut conn = self.conn.clone();
        redis::cmd("SCARD")
            .arg(self.index_key())
            .query_async(&mut conn)
            .await
            .map_err(error::grant)
    }
}
