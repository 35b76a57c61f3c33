//! The hasher of the filter's maps whose keys no client chooses: the token cache's buckets
//! (keyed by a token's hash, computed already) and the adapter's context tables (keyed by the
//! ids Envoy numbers contexts with). A keyed hash (std's SipHash) would add a pass per lookup
//! and defend against nothing there.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// A `HashMap` with [`KeyHasher`].
pub type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// `u64` keys are hashes already and pass through; `u32` keys (consecutive ids) are multiplied
/// by an odd constant, which spreads consecutive numbers over every bucket (the map indexes
/// by the low bits) and over the high bits it keeps as a tag.
#[derive(Default)]
pub struct KeyHasher(u64);

/// 2^64 divided by the golden ratio, odd.
const SPREAD: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u32` and `write_u64` are used; fold anything else in all the same.
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(SPREAD);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(SPREAD);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::hash::{BuildHasher, BuildHasherDefault};

    use super::*;

    #[test]
    fn a_hash_passes_through_and_consecutive_ids_spread() {
        let build = BuildHasherDefault::<KeyHasher>::default();
        assert_eq!(build.hash_one(0xdead_beef_u64), 0xdead_beef);
        let ids: Vec<u64> = (1..=1024u32).map(|id| build.hash_one(id)).collect();
        // Every one of 1024 consecutive ids in its own bucket of a 1024-bucket table...
        let low: HashSet<u64> = ids.iter().map(|h| h & 1023).collect();
        assert_eq!(low.len(), 1024);
        // ...and the top 7 bits (the tag a lookup compares first) not all alike.
        let tags: HashSet<u64> = ids.iter().map(|h| h >> 57).collect();
        assert_eq!(tags.len(), 128);
    }
}
