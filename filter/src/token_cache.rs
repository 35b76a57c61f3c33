//! The verified-token cache: a token whose signature verified under a key set is not verified
//! again while it is unexpired and that same key set is in use. Envoy's `jwt_cache_config`
//! (`jwt_authn/jwt_cache.cc`) does the same per provider; Istio does not turn it on.
//!
//! Why a hit is as good as a verification:
//! - the key is the token's exact bytes: entries are found by a hash (of the length and the
//!   signature's last bytes) and then compared with the whole token (no hash-only match), so
//!   a different token — a forged one sharing every byte but one included — is a miss and is
//!   verified;
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
use std::collections::VecDeque;
use std::fmt;
use std::rc::{Rc, Weak};

use smallvec::SmallVec;

use crate::bytes;
use crate::jwt::{Jwks, Jwt, CLOCK_SKEW_SECS};
use crate::key_hasher::KeyMap;

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
    /// The verified token; its text ([`Jwt::text`]) is the token's exact bytes, the entry's
    /// key, held once.
    jwt: Rc<Jwt>,
    /// The key set that verified the signature.
    keys: Weak<Jwks>,
    bytes: usize,
    /// Matches the insertion-order queue's record, so a stale record evicts nothing.
    generation: u64,
}

/// Entries by [`token_hash`]; a bucket holds the (rare) entries whose tokens hash alike.
///
/// Why not an ordered map keyed by the text: tokens from one issuer share their first few
/// hundred bytes (header, issuer, audience), so every comparison on the way down a tree scans
/// them again, and in wasm32 a byte comparison is a loop over bytes. A hash reads the token's
/// tail once; the one full comparison is made a word at a time ([`bytes::same`]).
type Buckets = KeyMap<u64, SmallVec<[Entry; 1]>>;

#[derive(Default)]
struct Inner {
    entries: Buckets,
    len: usize,
    /// Insertion order: `(hash, token, generation)`.
    order: VecDeque<(u64, Rc<Jwt>, u64)>,
    bytes: usize,
    generation: u64,
}

/// A token as the cache files it: its exact bytes and [`token_hash`] of them, computed once, so
/// a request's lookup and, on a miss, its insert read the token once. The fields are private:
/// the hash is always the hash of these bytes.
#[derive(Debug, Clone, Copy)]
pub struct TokenKey<'a> {
    token: &'a [u8],
    hash: u64,
}

impl<'a> TokenKey<'a> {
    /// The key of `token`.
    pub fn new(token: &'a [u8]) -> TokenKey<'a> {
        TokenKey {
            token,
            hash: token_hash(token),
        }
    }
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
    pub fn get(&self, token: &TokenKey<'_>, keys: &Rc<Jwks>, now: u64) -> Option<Rc<Jwt>> {
        let mut inner = self.inner.try_borrow_mut().ok()?;
        let TokenKey { token, hash } = *token;
        let entry = inner.find(hash, token)?;
        let same_keys = std::ptr::eq(entry.keys.as_ptr(), Rc::as_ptr(keys));
        if same_keys && entry.jwt.check_time(now, CLOCK_SKEW_SECS).is_ok() {
            return Some(Rc::clone(&entry.jwt));
        }
        inner.remove(hash, token);
        None
    }

    /// Remembers that `jwt`, parsed from exactly `token`'s bytes, verified under `keys` (call
    /// only after every check passed). A token whose text is not `token` is not remembered.
    pub fn insert(&self, token: &TokenKey<'_>, keys: &Rc<Jwks>, jwt: Rc<Jwt>) {
        let TokenKey { token, hash } = *token;
        let bytes = token
            .len()
            .saturating_add(jwt.payload_b64().len().saturating_mul(2))
            .saturating_add(ENTRY_OVERHEAD);
        if self.settings.max_entries == 0
            || bytes > self.settings.max_bytes
            || !bytes::same(jwt.text().as_bytes(), token)
        {
            return;
        }
        let Ok(mut inner) = self.inner.try_borrow_mut() else {
            return;
        };
        inner.remove(hash, token);
        while inner.len >= self.settings.max_entries
            || inner.bytes.saturating_add(bytes) > self.settings.max_bytes
        {
            if !inner.evict_oldest() {
                break;
            }
        }
        inner.generation = inner.generation.wrapping_add(1);
        let generation = inner.generation;
        inner.order.push_back((hash, Rc::clone(&jwt), generation));
        inner.compact(self.settings.max_entries);
        inner.bytes = inner.bytes.saturating_add(bytes);
        inner.len = inner.len.saturating_add(1);
        inner.entries.entry(hash).or_default().push(Entry {
            jwt,
            keys: Rc::downgrade(keys),
            bytes,
            generation,
        });
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.inner.try_borrow().map_or(0, |i| i.len)
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
    fn find(&self, hash: u64, token: &[u8]) -> Option<&Entry> {
        self.entries
            .get(&hash)?
            .iter()
            .find(|e| bytes::same(e.jwt.text().as_bytes(), token))
    }

    /// Whether the entry for this queue record is still the one it recorded: the record
    /// shares the entry's token allocation, so identity is enough (no byte comparison).
    fn is_live(&self, hash: u64, jwt: &Rc<Jwt>, generation: u64) -> bool {
        self.entries.get(&hash).is_some_and(|bucket| {
            bucket
                .iter()
                .any(|e| Rc::ptr_eq(&e.jwt, jwt) && e.generation == generation)
        })
    }

    /// Removes the entry of bucket `hash` that `is` picks, if any, without touching the queue.
    fn take(&mut self, hash: u64, is: impl Fn(&Entry) -> bool) {
        let Some(bucket) = self.entries.get_mut(&hash) else {
            return;
        };
        let Some(at) = bucket.iter().position(is) else {
            return;
        };
        let old = bucket.swap_remove(at);
        if bucket.is_empty() {
            self.entries.remove(&hash);
        }
        self.bytes = self.bytes.saturating_sub(old.bytes);
        self.len = self.len.saturating_sub(1);
    }

    fn remove(&mut self, hash: u64, token: &[u8]) {
        self.take(hash, |e| bytes::same(e.jwt.text().as_bytes(), token));
        // Its queue record goes stale (generation mismatch); trim stale records at the front
        // so the queue stays proportional to the map.
        self.trim_front();
    }

    fn trim_front(&mut self) {
        while let Some((hash, key, generation)) = self.order.front() {
            if self.is_live(*hash, key, *generation) {
                break;
            }
            self.order.pop_front();
        }
    }

    /// Drops stale queue records when they outnumber the live ones (a token re-inserted under
    /// new keys leaves one behind), so the queue stays bounded with the map.
    fn compact(&mut self, max_entries: usize) {
        if self.order.len() > max_entries.saturating_mul(2).saturating_add(16) {
            let mut order = std::mem::take(&mut self.order);
            order.retain(|(hash, key, generation)| self.is_live(*hash, key, *generation));
            self.order = order;
        }
    }

    /// Evicts the oldest live entry; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        self.trim_front();
        let Some((hash, key, _)) = self.order.pop_front() else {
            return false;
        };
        // After the trim the record is live: its entry holds the same allocation.
        self.take(hash, |e| Rc::ptr_eq(&e.jwt, &key));
        true
    }
}

/// A 64-bit hash of a token: its length and its last [`HASHED_TAIL`] bytes, a word at a time
/// (FxHash's rotate-xor-multiply step). A JWT ends with its signature (43 base64url characters
/// for HS256, 86 for ES256 and EdDSA, 342 for RS256-2048), so the tail is signature bytes,
/// which differ between any two tokens that verified; reading only the tail keeps the hash
/// off the few hundred bytes of header, issuer and audience that every token of an issuer
/// shares. Not keyed: only tokens that verified are inserted, so a client cannot fill a bucket
/// with texts of its choosing, and a token that shares an entry's tail costs one more
/// comparison ([`bytes::same`], of the whole token), never a wrong match.
fn token_hash(token: &[u8]) -> u64 {
    #[cfg(test)]
    tests::HASHES.with(|n| n.set(n.get() + 1));
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let tail = token
        .get(token.len().saturating_sub(HASHED_TAIL)..)
        .unwrap_or(token);
    let words = tail.chunks_exact(8);
    let last = bytes::padded_word(words.remainder());
    words
        .map(bytes::word)
        .chain([last])
        .fold(token.len() as u64, |hash, w| {
            (hash.rotate_left(5) ^ w).wrapping_mul(K)
        })
}

/// How many bytes at the end of a token [`token_hash`] reads: within the shortest signature
/// the filter verifies (HS256's 43 characters).
const HASHED_TAIL: usize = 32;

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("settings", &self.settings)
            .field("entries", &self.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)]

    use super::*;
    use crate::request_authn::check_token_cached;
    use crate::test_fixtures::{env, provider, token};
    use std::cell::Cell;

    thread_local! {
        /// How many times this thread computed [`token_hash`].
        pub(super) static HASHES: Cell<u64> = const { Cell::new(0) };
    }

    fn hashes() -> u64 {
        HASHES.with(Cell::get)
    }

    /// A request reads its token once: on a miss, the hash the lookup computed is the one
    /// the insert files the entry under; on a hit, the lookup's alone.
    #[test]
    fn one_hash_per_token_on_a_miss_and_on_a_hit() {
        let provider = provider(Default::default());
        let cache = TokenCache::new(Settings::default());
        let token = token("GoodToken");
        let before = hashes();
        check_token_cached(&provider, token.as_bytes(), &env(&cache)).unwrap();
        assert_eq!(cache.len(), 1, "verified and remembered");
        assert_eq!(hashes() - before, 1, "a miss hashes the token once");
        check_token_cached(&provider, token.as_bytes(), &env(&cache)).unwrap();
        assert_eq!(hashes() - before, 2, "a hit hashes it once");
    }

    /// Two tokens in one bucket (as if their hashes collided) are found, replaced and
    /// removed apart, and the byte bound follows.
    #[test]
    fn entries_sharing_a_hash_are_kept_apart() {
        let parse = |signature: &str| {
            Rc::new(
                Jwt::parse(&format!("eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhIn0.{signature}")).unwrap(),
            )
        };
        let (a, b) = (parse("AAAA"), parse("BBBB"));
        let mut inner = Inner::default();
        for (jwt, generation) in [(&a, 1), (&b, 2)] {
            inner.order.push_back((7, Rc::clone(jwt), generation));
            inner.entries.entry(7).or_default().push(Entry {
                jwt: Rc::clone(jwt),
                keys: Weak::new(),
                bytes: 10,
                generation,
            });
            inner.len += 1;
            inner.bytes += 10;
        }
        let (a, b) = (a.text().as_bytes(), b.text().as_bytes());
        let c = b"eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhIn0.CCCC";
        assert_eq!(inner.find(7, a).unwrap().generation, 1);
        assert_eq!(inner.find(7, b).unwrap().generation, 2);
        assert!(inner.find(7, c).is_none());
        assert!(inner.find(8, a).is_none());
        inner.remove(7, a);
        assert!(inner.find(7, a).is_none());
        assert_eq!(inner.find(7, b).unwrap().generation, 2);
        assert_eq!((inner.len, inner.bytes), (1, 10));
        // a's queue record was stale and trimmed; b's is next to evict.
        assert!(inner.evict_oldest());
        assert!(inner.find(7, b).is_none());
        assert_eq!((inner.len, inner.bytes, inner.entries.len()), (0, 0, 0));
        assert!(!inner.evict_oldest());
    }

    #[test]
    fn the_hash_reads_the_length_and_every_byte_of_the_tail() {
        let token =
            b"eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.c2lnbmF0dXJlIG9mIGF0IGxlYXN0IDMyIGJ5dGVz";
        let h = token_hash(token);
        let tail_at = token.len() - HASHED_TAIL;
        for at in 0..token.len() {
            let mut other = token.to_vec();
            other[at] ^= 0x01;
            let other_hash = token_hash(&other);
            if at >= tail_at {
                assert_ne!(other_hash, h, "byte {at}");
            } else {
                // Told apart by the comparison of the whole token, not by the hash.
                assert_eq!(other_hash, h, "byte {at}");
            }
        }
        assert_ne!(token_hash(&token[..token.len() - 1]), h);
        // A token shorter than the tail is read whole.
        assert_ne!(token_hash(b"a.b.c"), token_hash(b"a.b.d"));
        assert_ne!(token_hash(b"a.b.c"), token_hash(b"b.b.c"));
    }

    /// A token that shares a cached token's tail (a forged header or payload, the signature
    /// copied) is a miss: the hash finds the entry's bucket, the comparison refuses it.
    #[test]
    fn a_token_sharing_only_the_tail_is_not_found() {
        let sig = "c2lnbmF0dXJlIG9mIGF0IGxlYXN0IDMyIGJ5dGVz";
        let (real, forged) = (
            format!("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.{sig}"),
            format!("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiIn0.{sig}"),
        );
        let jwt = Rc::new(Jwt::parse(&real).unwrap());
        let keys = Rc::new(Jwks::parse(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap());
        let cache = TokenCache::new(Settings::default());
        let (real, forged) = (real.as_bytes(), forged.as_bytes());
        cache.insert(&TokenKey::new(real), &keys, jwt);
        assert_eq!(token_hash(real), token_hash(forged));
        assert!(cache.get(&TokenKey::new(forged), &keys, 0).is_none());
        assert!(cache.get(&TokenKey::new(real), &keys, 0).is_some());
    }

    /// An entry's key is its token's own text: a token parsed from other bytes is not filed
    /// under a key it was not parsed from (a caller's mistake must not make a forged token a
    /// hit).
    #[test]
    fn a_token_is_filed_only_under_its_own_text() {
        let (parsed, other) = (
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhIn0.c2lnbmF0dXJl",
            "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJiIn0.c2lnbmF0dXJl",
        );
        let keys = Rc::new(Jwks::parse(r#"{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}"#).unwrap());
        let cache = TokenCache::new(Settings::default());
        let jwt = Rc::new(Jwt::parse(parsed).unwrap());
        cache.insert(&TokenKey::new(other.as_bytes()), &keys, Rc::clone(&jwt));
        assert_eq!(cache.len(), 0);
        assert!(cache
            .get(&TokenKey::new(other.as_bytes()), &keys, 0)
            .is_none());
        cache.insert(&TokenKey::new(parsed.as_bytes()), &keys, jwt);
        assert_eq!(cache.len(), 1);
    }
}
