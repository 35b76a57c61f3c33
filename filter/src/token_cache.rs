//! The verified-token cache: a token whose signature verified under a key set is not verified
//! again while it is unexpired and that same key set is in use. Envoy's `jwt_cache_config`
//! (`jwt_authn/jwt_cache.cc`) does the same per provider; Istio does not turn it on.
//!
//! Why a hit is as good as a verification:
//! - the key is the token's exact bytes (an ordered map compares them in full, no hash-only
//!   match), so a different token — a forged signature sharing every other byte included — is
//!   a miss and is verified;
//! - an entry records the key set that verified it, by identity (`Rc` allocation, held weakly
//!   so the address cannot be reused while the entry exists): when a JWKS changes (a new
//!   configuration, a remote refresh or a rotation) the provider's current set is another
//!   allocation, and the entry is dropped;
//! - an entry is dropped once the token is outside its time window (`exp` plus Envoy's clock
//!   skew), and the caller re-checks issuer, time and audience on every hit against the
//!   provider asking, as Envoy's cache does (`request_authn`'s one claim check, the same as
//!   for a token verified afresh);
//! - only a token that passed every check is inserted; a failure is never cached.
//!
//! One cache per configuration per VM, owned by that configuration (no `Clone`: a copy
//! would be a second, empty cache): Envoy runs one VM per worker, so there is no sharing and
//! no locking. Bounded by entries and by bytes (an estimate of what an entry holds); the
//! oldest entries are evicted first.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::{Rc, Weak};

use crate::jwt::{Jwks, Jwt, CLOCK_SKEW_SECS};

/// Default bound on entries per VM.
pub const DEFAULT_MAX_ENTRIES: usize = 1000;
/// Default bound on the estimated bytes per VM.
pub const DEFAULT_MAX_BYTES: usize = 4 * 1024 * 1024;
/// What an entry costs besides its token and payload: the map and queue nodes, the parsed
/// claims' structure (an estimate, so the byte bound holds roughly, never loosely).
const ENTRY_OVERHEAD: usize = 256;

/// The cache's bounds (the `tokenCache:` section of the plugin configuration, parsed by
/// `config::token_cache`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// `maxEntries`: 0 turns the cache off.
    pub max_entries: usize,
    /// `maxBytes`: the bound on the estimated size of all entries.
    pub max_bytes: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_entries: DEFAULT_MAX_ENTRIES,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

struct Entry {
    jwt: Rc<Jwt>,
    /// The key set that verified the signature.
    keys: Weak<Jwks>,
    bytes: usize,
    /// Matches the insertion-order queue's record, so a stale record evicts nothing.
    generation: u64,
}

#[derive(Default)]
struct Inner {
    entries: BTreeMap<Rc<str>, Entry>,
    order: VecDeque<(Rc<str>, u64)>,
    bytes: usize,
    generation: u64,
}

/// The per-VM verified-token cache (see the module documentation).
pub struct TokenCache {
    settings: Settings,
    inner: RefCell<Inner>,
}

impl TokenCache {
    /// An empty cache with these bounds.
    pub fn new(settings: Settings) -> TokenCache {
        TokenCache {
            settings,
            inner: RefCell::new(Inner::default()),
        }
    }

    /// The verified token, if `token` verified under exactly `keys` and is inside its time
    /// window at `now` (Unix seconds). A stale entry (other keys, expired) is removed. The
    /// caller still checks issuer, time and audience for its provider.
    pub fn get(&self, token: &str, keys: &Rc<Jwks>, now: u64) -> Option<Rc<Jwt>> {
        let mut inner = self.inner.try_borrow_mut().ok()?;
        let entry = inner.entries.get(token)?;
        let same_keys = std::ptr::eq(entry.keys.as_ptr(), Rc::as_ptr(keys));
        if same_keys && entry.jwt.check_time(now, CLOCK_SKEW_SECS).is_ok() {
            return Some(Rc::clone(&entry.jwt));
        }
        inner.remove(token);
        None
    }

    /// Remembers that `token` verified under `keys` (call only after every check passed).
    pub fn insert(&self, token: &str, keys: &Rc<Jwks>, jwt: Rc<Jwt>) {
        let bytes = token
            .len()
            .saturating_add(jwt.payload_b64.len().saturating_mul(2))
            .saturating_add(ENTRY_OVERHEAD);
        if self.settings.max_entries == 0 || bytes > self.settings.max_bytes {
            return;
        }
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return;
        };
        inner.remove(token);
        while inner.entries.len() >= self.settings.max_entries
            || inner.bytes.saturating_add(bytes) > self.settings.max_bytes
        {
            if !inner.evict_oldest() {
                break;
            }
        }
        inner.generation = inner.generation.wrapping_add(1);
        let generation = inner.generation;
        let key: Rc<str> = Rc::from(token);
        inner.order.push_back((Rc::clone(&key), generation));
        inner.compact(self.settings.max_entries);
        inner.bytes = inner.bytes.saturating_add(bytes);
        inner.entries.insert(
            key,
            Entry {
                jwt,
                keys: Rc::downgrade(keys),
                bytes,
                generation,
            },
        );
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.try_borrow().map_or(0, |i| i.entries.len())
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The estimated bytes held now.
    pub fn bytes(&self) -> usize {
        self.inner.try_borrow().map_or(0, |i| i.bytes)
    }

    /// The bounds.
    pub fn settings(&self) -> Settings {
        self.settings
    }
}

impl Inner {
    fn remove(&mut self, token: &str) {
        if let Some(old) = self.entries.remove(token) {
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
        // Its queue record goes stale (generation mismatch); trim stale records at the front
        // so the queue stays proportional to the map.
        self.trim_front();
    }

    fn trim_front(&mut self) {
        while let Some((key, generation)) = self.order.front() {
            let live = self
                .entries
                .get(&**key)
                .is_some_and(|e| e.generation == *generation);
            if live {
                break;
            }
            self.order.pop_front();
        }
    }

    /// Drops stale queue records when they outnumber the live ones (a token re-inserted under
    /// new keys leaves one behind), so the queue stays bounded with the map.
    fn compact(&mut self, max_entries: usize) {
        if self.order.len() > max_entries.saturating_mul(2).saturating_add(16) {
            let entries = &self.entries;
            self.order.retain(|(key, generation)| {
                entries
                    .get(&**key)
                    .is_some_and(|e| e.generation == *generation)
            });
        }
    }

    /// Evicts the oldest live entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        self.trim_front();
        let Some((key, _)) = self.order.pop_front() else {
            return false;
        };
        if let Some(old) = self.entries.remove(&*key) {
            self.bytes = self.bytes.saturating_sub(old.bytes);
        }
        true
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("settings", &self.settings)
            .field("entries", &self.len())
            .finish()
    }
}
