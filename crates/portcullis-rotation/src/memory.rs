//! The in-memory store: the reference implementation of [`GrantStore`].

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use portcullis_core::UnixTime;
use portcullis_hash::TokenHash;

use crate::decide::{self, CodeDecision, RefreshDecision};
use crate::store::{
    BindingReport, CodeOutcome, CodeRedemption, FamilyRef, FamilySnapshot, Found, GrantStore,
    Issued, PurgeReport, RefreshOutcome, RefreshRotation, Rejection, RevokeOutcome, StoreError,
    TokenRevocation,
};
use crate::{
    AccessToken, Credential, Family, FamilyId, HashPrefix, Lifetimes, Revocation, RevocationReason,
    Scope, TokenKind,
};

/// Shards per map: a power of two well above the number of cores, so that two requests on
/// different families rarely meet on one lock.
const SHARDS: usize = 64;

/// A hasher for keys that are already uniformly random and not chosen by an attacker: keyed
/// HMAC outputs (token hashes) and CSPRNG family ids. It takes eight bytes of the key instead of
/// running SipHash over all of them. Flooding is not possible: a client cannot choose what its
/// tokens hash to without the server's key.
#[derive(Debug, Clone, Copy, Default)]
struct RandomKeys;

#[derive(Debug, Default)]
struct RandomKeyHasher(u64);

impl BuildHasher for RandomKeys {
    type Hasher = RandomKeyHasher;
    fn build_hasher(&self) -> RandomKeyHasher {
        RandomKeyHasher(0)
    }
}

impl Hasher for RandomKeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut word = [0u8; 8];
        for (w, b) in word.iter_mut().zip(bytes) {
            *w = *b;
        }
        self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(word);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A token hash as a map key.
///
/// Its equality is the ordinary early-exit comparison, not [`TokenHash`]'s constant-time one:
/// a hash table probe compares the presented token's keyed hash with stored keyed hashes, and
/// the timing of that (like the timing of the probe itself, or of a database index lookup) only
/// depends on HMAC outputs the client cannot choose without the server's key, so it reveals
/// nothing it could use. That is why tokens are looked up by keyed hash in the first place.
/// Comparisons of values a client does control (PKCE, binding) stay constant-time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key([u8; 32]);

impl Key {
    const fn of(hash: &TokenHash) -> Self {
        Self(*hash.as_bytes())
    }
}

/// A shard index from the last byte of a random key (the map's hasher uses the first bytes).
fn shard_of(bytes: &[u8]) -> usize {
    bytes.last().map_or(0, |b| usize::from(*b) % SHARDS)
}

fn shard_of_str(s: &str) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    s.hash(&mut h);
    usize::try_from(h.finish() % (SHARDS as u64)).unwrap_or(0)
}

/// `SHARDS` read-write-locked maps.
struct Sharded<T> {
    shards: [RwLock<T>; SHARDS],
}

impl<T: Default> Default for Sharded<T> {
    fn default() -> Self {
        Self {
            shards: std::array::from_fn(|_| RwLock::new(T::default())),
        }
    }
}

impl<T> Sharded<T> {
    #[allow(clippy::indexing_slicing)] // i % SHARDS < SHARDS, the array's length
    fn shard(&self, i: usize) -> &RwLock<T> {
        &self.shards[i % SHARDS]
    }
    fn read(&self, i: usize) -> RwLockReadGuard<'_, T> {
        self.shard(i).read().unwrap_or_else(PoisonError::into_inner)
    }
    fn write(&self, i: usize) -> RwLockWriteGuard<'_, T> {
        self.shard(i)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Everything of one family, behind one lock: the unit of atomicity.
#[derive(Debug)]
struct State {
    family: Family,
    credentials: HashMap<Key, Credential, RandomKeys>,
    access: HashMap<Key, AccessToken, RandomKeys>,
    /// Set when purge removed the family: a request that found the cell before that sees
    /// nothing.
    purged: bool,
}

#[derive(Debug)]
struct Cell {
    state: Mutex<State>,
}

impl Cell {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug, Clone)]
struct Entry {
    kind: TokenKind,
    cell: Arc<Cell>,
}

type TokenIndex = HashMap<Key, Entry, RandomKeys>;
type FamilyIndex = HashMap<FamilyId, Arc<Cell>, RandomKeys>;
type OwnerIndex = HashMap<String, HashSet<FamilyId, RandomKeys>>;

/// An in-memory [`GrantStore`]: the reference implementation every other store is compared
/// with, for single-process servers and tests.
///
/// Each family lives behind its own mutex, and that lock is the atomic step of a redemption:
/// find, decide with [`decide`], write. Token hashes, family ids, users and clients are
/// indexed in sharded maps whose locks are held only for one lookup or insert, so requests on
/// different families run in parallel. (Lock order: a family's lock may be held while taking an
/// index shard; an index shard is never held while taking a family's lock.)
///
/// Nothing survives a restart, and nothing is shared between processes: a server with several
/// instances needs a shared store (portcullis-redis, portcullis-postgres). Call
/// [`purge`](GrantStore::purge) periodically to drop dead records.
///
/// ```
/// use std::sync::Arc;
/// use portcullis_rotation::{GrantStore, MemoryGrantStore};
///
/// let store: Arc<dyn GrantStore> = Arc::new(MemoryGrantStore::new());
/// # let _ = store;
/// ```
#[derive(Default)]
pub struct MemoryGrantStore {
    tokens: Sharded<TokenIndex>,
    families: Sharded<FamilyIndex>,
    by_user: Sharded<OwnerIndex>,
    by_client: Sharded<OwnerIndex>,
    purge_cursor: AtomicUsize,
}

impl std::fmt::Debug for MemoryGrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryGrantStore")
            .field("families", &self.family_count())
            .finish_non_exhaustive()
    }
}

/// Counts of what a memory store holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemoryStats {
    /// Families.
    pub families: usize,
    /// Codes and refresh tokens.
    pub credentials: usize,
    /// Access tokens.
    pub access_tokens: usize,
}

impl MemoryStats {
    /// All records.
    #[must_use]
    pub const fn total(&self) -> usize {
        self.families + self.credentials + self.access_tokens
    }
}

impl MemoryGrantStore {
    /// An empty store.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    fn family_count(&self) -> usize {
        (0..SHARDS).map(|i| self.families.read(i).len()).sum()
    }

    /// What the store holds (walks every family: for tests and diagnostics).
    #[must_use]
    pub fn stats(&self) -> MemoryStats {
        let mut stats = MemoryStats::default();
        for i in 0..SHARDS {
            let cells: Vec<Arc<Cell>> = self.families.read(i).values().cloned().collect();
            for cell in cells {
                let st = cell.lock();
                if !st.purged {
                    stats.families += 1;
                    stats.credentials += st.credentials.len();
                    stats.access_tokens += st.access.len();
                }
            }
        }
        stats
    }

    /// The cell holding a token of `kind` under any of `candidates`, with the hash that matched.
    fn lookup(&self, kind: TokenKind, candidates: &[TokenHash]) -> Option<(TokenHash, Arc<Cell>)> {
        candidates.iter().find_map(|c| {
            let shard = self.tokens.read(shard_of(c.as_bytes()));
            shard
                .get(&Key::of(c))
                .filter(|e| e.kind == kind)
                .map(|e| (*c, Arc::clone(&e.cell)))
        })
    }

    fn family_cell(&self, id: FamilyId) -> Option<Arc<Cell>> {
        self.families
            .read(shard_of(id.as_bytes()))
            .get(&id)
            .cloned()
    }

    /// Index a new token; refuses (and changes nothing) if the hash is taken.
    fn index(&self, hash: TokenHash, kind: TokenKind, cell: &Arc<Cell>) -> Result<(), StoreError> {
        let mut shard = self.tokens.write(shard_of(hash.as_bytes()));
        match shard.entry(Key::of(&hash)) {
            std::collections::hash_map::Entry::Occupied(_) => Err(StoreError::Duplicate),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Entry {
                    kind,
                    cell: Arc::clone(cell),
                });
                Ok(())
            }
        }
    }

    /// Remove many tokens from the index, taking each shard's lock once.
    fn unindex_many(&self, mut keys: Vec<Key>) {
        keys.sort_unstable_by_key(|k| shard_of(&k.0));
        for group in keys.chunk_by(|a, b| shard_of(&a.0) == shard_of(&b.0)) {
            if let Some(first) = group.first() {
                let mut shard = self.tokens.write(shard_of(&first.0));
                for k in group {
                    shard.remove(k);
                }
            }
        }
    }

    fn unindex(&self, hash: &TokenHash) {
        self.tokens
            .write(shard_of(hash.as_bytes()))
            .remove(&Key::of(hash));
    }

    /// Index a new refresh token and access token, both or neither.
    fn index_pair(
        &self,
        refresh: TokenHash,
        access: TokenHash,
        cell: &Arc<Cell>,
    ) -> Result<(), StoreError> {
        self.index(refresh, TokenKind::RefreshToken, cell)?;
        if let Err(e) = self.index(access, TokenKind::AccessToken, cell) {
            self.unindex(&refresh);
            return Err(e);
        }
        Ok(())
    }

    fn create(&self, family: &Family, code: &Credential) -> Result<(), StoreError> {
        if code.kind != TokenKind::AuthorizationCode
            || code.family != family.id
            || code.code_terms.is_none()
        {
            return Err(StoreError::backend(
                "create_family needs the family's authorization code with its terms",
            ));
        }
        let mut credentials = HashMap::with_hasher(RandomKeys);
        credentials.insert(Key::of(&code.hash), code.clone());
        let cell = Arc::new(Cell {
            state: Mutex::new(State {
                family: family.clone(),
                credentials,
                access: HashMap::with_hasher(RandomKeys),
                purged: false,
            }),
        });
        {
            let mut shard = self.families.write(shard_of(family.id.as_bytes()));
            if shard.contains_key(&family.id) {
                return Err(StoreError::Duplicate);
            }
            shard.insert(family.id, Arc::clone(&cell));
        }
        if let Err(e) = self.index(code.hash, TokenKind::AuthorizationCode, &cell) {
            self.families
                .write(shard_of(family.id.as_bytes()))
                .remove(&family.id);
            return Err(e);
        }
        self.by_user
            .write(shard_of_str(&family.user_id))
            .entry(family.user_id.clone())
            .or_default()
            .insert(family.id);
        self.by_client
            .write(shard_of_str(&family.client_id))
            .entry(family.client_id.clone())
            .or_default()
            .insert(family.id);
        Ok(())
    }

    fn redeem(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError> {
        let not_found = Ok(CodeOutcome::Rejected(Rejection::NotFound));
        let Some((hash, cell)) = self.lookup(TokenKind::AuthorizationCode, req.candidates) else {
            return not_found;
        };
        let mut guard = cell.lock();
        let st = &mut *guard;
        if st.purged {
            return not_found;
        }
        let Some(code) = st.credentials.get(&Key::of(&hash)) else {
            return not_found;
        };
        match decide::code(&st.family, code, req) {
            CodeDecision::Reject(r) => Ok(CodeOutcome::Rejected(r)),
            CodeDecision::Replay => {
                st.family.revoked = Some(Revocation {
                    at: req.now,
                    reason: RevocationReason::CodeReplay,
                });
                Ok(CodeOutcome::Replayed {
                    family: FamilyRef::of(&st.family),
                    code: HashPrefix::of(&hash),
                })
            }
            CodeDecision::Redeem => {
                self.index_pair(req.refresh, req.access, &cell)?;
                st.family.binding = req.binding;
                let issued = insert_pair(
                    st,
                    &hash,
                    1,
                    req.refresh,
                    req.access,
                    None,
                    req.lifetimes,
                    req.now,
                );
                if let Some(code) = st.credentials.get_mut(&Key::of(&hash)) {
                    code.used_at = Some(req.now);
                    code.successor = Some(req.refresh);
                }
                Ok(CodeOutcome::Redeemed(issued))
            }
        }
    }

    fn rotate(&self, req: &RefreshRotation<'_>) -> Result<RefreshOutcome, StoreError> {
        let not_found = Ok(RefreshOutcome::Rejected(Rejection::NotFound));
        let Some((hash, cell)) = self.lookup(TokenKind::RefreshToken, req.candidates) else {
            return not_found;
        };
        let mut guard = cell.lock();
        let st = &mut *guard;
        if st.purged {
            return not_found;
        }
        let Some(token) = st.credentials.get(&Key::of(&hash)) else {
            return not_found;
        };
        let successor = token
            .successor
            .and_then(|s| st.credentials.get(&Key::of(&s)));
        let decision = decide::refresh(&st.family, token, successor, req);
        let generation = token.generation;
        let report = |family: &Family, mismatch| BindingReport {
            family: FamilyRef::of(family),
            token: HashPrefix::of(&hash),
            mismatch,
        };
        match decision {
            RefreshDecision::Reject(r) => Ok(RefreshOutcome::Rejected(r)),
            RefreshDecision::Replay => {
                st.family.revoked = Some(Revocation {
                    at: req.now,
                    reason: RevocationReason::RefreshReplay,
                });
                Ok(RefreshOutcome::Replayed {
                    family: FamilyRef::of(&st.family),
                    token: HashPrefix::of(&hash),
                    generation,
                })
            }
            RefreshDecision::Binding { mismatch, revoke } => {
                if revoke {
                    st.family.revoked = Some(Revocation {
                        at: req.now,
                        reason: RevocationReason::BindingMismatch,
                    });
                }
                Ok(RefreshOutcome::BindingMismatch {
                    report: report(&st.family, mismatch),
                    family_revoked: revoke,
                })
            }
            RefreshDecision::Rotate { reported } => {
                self.index_pair(req.successor, req.access, &cell)?;
                let issued = insert_pair(
                    st,
                    &hash,
                    generation.saturating_add(1),
                    req.successor,
                    req.access,
                    req.scope,
                    req.lifetimes,
                    req.now,
                );
                if let Some(token) = st.credentials.get_mut(&Key::of(&hash)) {
                    token.used_at = Some(req.now);
                    token.successor = Some(req.successor);
                }
                Ok(RefreshOutcome::Rotated {
                    issued,
                    reported: reported.map(|m| report(&st.family, m)),
                })
            }
            RefreshDecision::GraceReissue {
                supersede,
                reported,
            } => {
                self.index_pair(req.successor, req.access, &cell)?;
                let superseded_generation = match st.credentials.get_mut(&Key::of(&supersede)) {
                    Some(s) => {
                        s.revoked_at = Some(req.now);
                        s.generation
                    }
                    None => generation.saturating_add(1),
                };
                let issued = insert_pair(
                    st,
                    &hash,
                    superseded_generation,
                    req.successor,
                    req.access,
                    req.scope,
                    req.lifetimes,
                    req.now,
                );
                if let Some(token) = st.credentials.get_mut(&Key::of(&hash)) {
                    token.successor = Some(req.successor);
                }
                Ok(RefreshOutcome::GraceReissued {
                    issued,
                    superseded: HashPrefix::of(&supersede),
                    reported: reported.map(|m| report(&st.family, m)),
                })
            }
        }
    }

    fn find_sync(&self, kind: TokenKind, candidates: &[TokenHash]) -> Option<Found> {
        let (hash, cell) = self.lookup(kind, candidates)?;
        let st = cell.lock();
        if st.purged {
            return None;
        }
        if kind == TokenKind::AccessToken {
            st.access.get(&Key::of(&hash)).map(|t| Found::Access {
                token: t.clone(),
                family: st.family.clone(),
            })
        } else {
            st.credentials
                .get(&Key::of(&hash))
                .map(|c| Found::Credential {
                    credential: c.clone(),
                    family: st.family.clone(),
                })
        }
    }

    fn revoke_one(&self, req: &TokenRevocation<'_>) -> RevokeOutcome {
        let Some((hash, cell)) = self.lookup(req.kind, req.candidates) else {
            return RevokeOutcome::NotFound;
        };
        let mut guard = cell.lock();
        let st = &mut *guard;
        if st.purged {
            return RevokeOutcome::NotFound;
        }
        let now = req.now;
        // Inactive before the client check: a record purge may already have dropped answers
        // the same whoever asks.
        let active = if req.kind == TokenKind::AccessToken {
            st.access
                .get(&Key::of(&hash))
                .map(|t| t.is_active(&st.family, now))
        } else {
            st.credentials
                .get(&Key::of(&hash))
                .map(|c| st.family.is_live(now) && now < c.expires_at)
        };
        match active {
            None => return RevokeOutcome::NotFound,
            Some(false) => return RevokeOutcome::Inactive,
            Some(true) => {}
        }
        if st.family.client_id != req.client_id {
            return RevokeOutcome::WrongClient;
        }
        let family = st.family.id;
        if req.kind == TokenKind::AccessToken {
            if let Some(t) = st.access.get_mut(&Key::of(&hash)) {
                t.revoked_at = Some(now);
            }
            RevokeOutcome::Revoked {
                family,
                family_revoked: false,
            }
        } else {
            st.family.revoked = Some(Revocation {
                at: now,
                reason: RevocationReason::TokenRevoked,
            });
            RevokeOutcome::Revoked {
                family,
                family_revoked: true,
            }
        }
    }

    fn revoke_cell(cell: &Cell, reason: RevocationReason, now: UnixTime) -> bool {
        let mut st = cell.lock();
        if st.purged || !st.family.is_live(now) {
            return false;
        }
        st.family.revoked = Some(Revocation { at: now, reason });
        true
    }

    fn revoke_owned(
        &self,
        index: &Sharded<OwnerIndex>,
        owner: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Vec<FamilyId> {
        let ids: Vec<FamilyId> = index
            .read(shard_of_str(owner))
            .get(owner)
            .map(|set| set.iter().copied().collect())
            .unwrap_or_default();
        ids.into_iter()
            .filter(|id| {
                self.family_cell(*id)
                    .is_some_and(|cell| Self::revoke_cell(&cell, reason, now))
            })
            .collect()
    }

    fn snapshot(&self, id: FamilyId) -> Option<FamilySnapshot> {
        let cell = self.family_cell(id)?;
        let st = cell.lock();
        if st.purged {
            return None;
        }
        Some(FamilySnapshot {
            family: st.family.clone(),
            credentials: st.credentials.values().cloned().collect(),
            access_tokens: st.access.values().cloned().collect(),
        })
    }

    fn purge_sync(&self, now: UnixTime, max: usize) -> PurgeReport {
        let mut removed = 0usize;
        let start = self.purge_cursor.load(Ordering::Relaxed) % SHARDS;
        for step in 0..SHARDS {
            let shard = (start + step) % SHARDS;
            let cells: Vec<Arc<Cell>> = self.families.read(shard).values().cloned().collect();
            for cell in cells {
                let (n, complete) = self.purge_family(&cell, now, max.saturating_sub(removed));
                removed = removed.saturating_add(n);
                if !complete {
                    self.purge_cursor.store(shard, Ordering::Relaxed);
                    return PurgeReport {
                        removed,
                        more: true,
                    };
                }
            }
        }
        PurgeReport {
            removed,
            more: false,
        }
    }

    /// Purge one family's dead records, at most `budget`; returns how many were removed and
    /// whether nothing purgeable is left in it.
    fn purge_family(&self, cell: &Cell, now: UnixTime, budget: usize) -> (usize, bool) {
        let mut guard = cell.lock();
        let st = &mut *guard;
        if st.purged {
            return (0, true);
        }
        let dead = !st.family.is_live(now);
        // Used and superseded credentials stay until they expire (replays must still be seen).
        let mut doomed: Vec<Key> = st
            .access
            .iter()
            .filter(|(_, t)| dead || t.revoked_at.is_some() || now >= t.expires_at)
            .map(|(k, _)| *k)
            .chain(
                st.credentials
                    .iter()
                    .filter(|(_, c)| dead || now >= c.expires_at)
                    .map(|(k, _)| *k),
            )
            .collect();
        let total = doomed.len();
        doomed.truncate(budget);
        if doomed.len() == st.access.len() + st.credentials.len() {
            st.access.clear();
            st.credentials.clear();
        } else {
            for k in &doomed {
                st.access.remove(k);
                st.credentials.remove(k);
            }
        }
        let mut removed = doomed.len();
        self.unindex_many(doomed);
        if removed < total {
            return (removed, false);
        }
        // A family with nothing left in it can never be used again.
        let empty = st.credentials.is_empty() && st.access.is_empty();
        if dead || empty {
            if removed >= budget {
                return (removed, false);
            }
            st.purged = true;
            let id = st.family.id;
            self.families.write(shard_of(id.as_bytes())).remove(&id);
            remove_owned(&self.by_user, &st.family.user_id, id);
            remove_owned(&self.by_client, &st.family.client_id, id);
            removed += 1;
        }
        (removed, true)
    }
}

fn remove_owned(index: &Sharded<OwnerIndex>, owner: &str, id: FamilyId) {
    let mut shard = index.write(shard_of_str(owner));
    if let Some(set) = shard.get_mut(owner) {
        set.remove(&id);
        if set.is_empty() {
            shard.remove(owner);
        }
    }
}

/// Store a new refresh token (child of `parent`) and access token in a family's state.
#[allow(clippy::too_many_arguments)] // one call site per redemption kind; a struct adds nothing
fn insert_pair(
    st: &mut State,
    parent: &TokenHash,
    generation: u32,
    refresh: TokenHash,
    access: TokenHash,
    scope: Option<&Scope>,
    lifetimes: Lifetimes,
    now: UnixTime,
) -> Issued {
    let family = &st.family;
    let refresh_expires_at = decide::refresh_expiry(family, &lifetimes, now);
    let access_expires_at = decide::access_expiry(family, &lifetimes, now);
    // The refresh token keeps the family's scope (RFC 6749 §6); a narrower request scopes only
    // the access token.
    let narrowed = scope.filter(|s| **s != family.scope).cloned();
    let issued = Issued {
        family: family.id,
        generation,
        scope: narrowed.clone().unwrap_or_else(|| family.scope.clone()),
        resources: family.resources.clone(),
        refresh_expires_at,
        access_expires_at,
    };
    st.credentials.insert(
        Key::of(&refresh),
        Credential {
            hash: refresh,
            kind: TokenKind::RefreshToken,
            family: family.id,
            generation,
            parent: Some(*parent),
            issued_at: now,
            expires_at: refresh_expires_at,
            used_at: None,
            successor: None,
            revoked_at: None,
            code_terms: None,
        },
    );
    st.access.insert(
        Key::of(&access),
        AccessToken {
            hash: access,
            family: family.id,
            scope: narrowed,
            issued_at: now,
            expires_at: access_expires_at,
            revoked_at: None,
        },
    );
    issued
}

#[async_trait::async_trait]
impl GrantStore for MemoryGrantStore {
    async fn create_family(&self, family: &Family, code: &Credential) -> Result<(), StoreError> {
        self.create(family, code)
    }

    async fn redeem_code(&self, req: &CodeRedemption<'_>) -> Result<CodeOutcome, StoreError> {
        self.redeem(req)
    }

    async fn rotate_refresh(
        &self,
        req: &RefreshRotation<'_>,
    ) -> Result<RefreshOutcome, StoreError> {
        self.rotate(req)
    }

    async fn find(
        &self,
        kind: TokenKind,
        candidates: &[TokenHash],
    ) -> Result<Option<Found>, StoreError> {
        Ok(self.find_sync(kind, candidates))
    }

    async fn revoke_token(&self, req: &TokenRevocation<'_>) -> Result<RevokeOutcome, StoreError> {
        Ok(self.revoke_one(req))
    }

    async fn revoke_family(
        &self,
        id: FamilyId,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        Ok(self
            .family_cell(id)
            .is_some_and(|cell| Self::revoke_cell(&cell, reason, now)))
    }

    async fn revoke_user(
        &self,
        user_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        Ok(self.revoke_owned(&self.by_user, user_id, reason, now))
    }

    async fn revoke_client(
        &self,
        client_id: &str,
        reason: RevocationReason,
        now: UnixTime,
    ) -> Result<Vec<FamilyId>, StoreError> {
        Ok(self.revoke_owned(&self.by_client, client_id, reason, now))
    }

    async fn family(&self, id: FamilyId) -> Result<Option<FamilySnapshot>, StoreError> {
        Ok(self.snapshot(id))
    }

    async fn purge(&self, now: UnixTime, max: usize) -> Result<PurgeReport, StoreError> {
        Ok(self.purge_sync(now, max))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_key_hasher_spreads_keys() {
        let mut buckets = [0u32; 16];
        for i in 0..1600u32 {
            let mut bytes = [0u8; 32];
            // A cheap stand-in for uniform hashes.
            let mut x = u64::from(i).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            for b in &mut bytes {
                x ^= x >> 29;
                x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
                *b = (x >> 56) as u8;
            }
            let h = RandomKeys.hash_one(TokenHash::from_bytes(bytes));
            buckets[(h % 16) as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n > 50), "{buckets:?}");
    }
}
