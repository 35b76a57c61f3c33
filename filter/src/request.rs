//! The request as the core sees it: header pairs as bytes. Built by the adapter from the host,
//! and by tests and fuzzers directly, so the core never touches the host.

use std::ops::Range;

/// `(name, value)` header pairs as bytes, in order.
pub type HeaderPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Request headers in arrival order. Names are lower case, as Envoy hands them to filters.
///
/// The headers are kept in the proxy-wasm map encoding the host hands over (a u32 count, then
/// (name length, value length) u32 pairs, then each name and value followed by a NUL),
/// checked once when the request is built and then walked by every lookup: the adapter's
/// buffer is the request ([`Request::from_map_bytes`]), with no second allocation for an index
/// into it, however many headers there are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// The encoding, its lengths checked and its names lower-cased (empty: no headers).
    bytes: Vec<u8>,
    /// At its first pair.
    start: Cursor,
}

impl Request {
    /// From `(name, value)` pairs; names are lower-cased. (Pairs too long for the encoding's
    /// u32 lengths, over 4 GiB, give a request without headers.)
    pub fn new(headers: HeaderPairs) -> Request {
        Request::from_map_bytes(encode_map(&headers)).unwrap_or_default()
    }

    /// From the proxy-wasm map encoding the host returns for a header map, keeping the
    /// buffer. Names are lower-cased. `None` if the bytes do not add up.
    pub fn from_map_bytes(mut bytes: Vec<u8>) -> Option<Request> {
        let start = Cursor::checked(&mut bytes, |name| {
            // Envoy hands filters lower-case names, so the check (a word at a time) is usually
            // all there is to do.
            if has_ascii_uppercase(name) {
                name.make_ascii_lowercase();
            }
        })?;
        Some(Request { bytes, start })
    }

    /// Convenience for tests and tools: from string pairs.
    pub fn from_pairs(pairs: &[(&str, &str)]) -> Request {
        Request::new(
            pairs
                .iter()
                .map(|(n, v)| (n.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        )
    }

    /// Every `(name, value)` pair, in order.
    pub fn pairs(&self) -> Pairs<'_> {
        Pairs {
            bytes: &self.bytes,
            cursor: self.start,
        }
    }

    /// Every value of a header, in order.
    pub fn values<'r, 'n>(&'r self, name: &'n str) -> Values<'r, 'n> {
        Values {
            pairs: self.pairs(),
            name: name.as_bytes(),
        }
    }

    /// The first value of a header.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.values(name).next()
    }

    /// `:path`, empty when absent.
    pub fn path(&self) -> &[u8] {
        self.first(":path").unwrap_or_default()
    }
}

/// A position in a proxy-wasm map encoding: the one decoder of it, for a request's headers
/// (checked and lower-cased once, then walked by every lookup) and for map-valued host
/// properties ([`decode_map`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cursor {
    /// Pairs not walked yet.
    left: usize,
    /// Where the next pair's two lengths are.
    sizes_at: usize,
    /// Where the next pair's name starts.
    data_at: usize,
}

impl Default for Cursor {
    /// At the end of an encoding without pairs.
    fn default() -> Cursor {
        Cursor::start(0)
    }
}

impl Cursor {
    /// At the first pair of an encoding that holds `count` pairs.
    fn start(count: usize) -> Cursor {
        Cursor {
            left: count,
            sizes_at: 4,
            data_at: count.saturating_mul(8).saturating_add(4),
        }
    }

    /// At the first pair of `bytes` after checking that every length and terminating NUL is
    /// within them, showing `name` each pair's name on the way (one pass for the check and
    /// the lower-casing); `None` if they do not add up.
    fn checked(bytes: &mut [u8], mut name: impl FnMut(&mut [u8])) -> Option<Cursor> {
        if bytes.is_empty() {
            return Some(Cursor::start(0));
        }
        let count: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
        let start = Cursor::start(usize::try_from(u32::from_le_bytes(count)).ok()?);
        if start.data_at > bytes.len() {
            return None;
        }
        let mut cursor = start;
        while cursor.left > 0 {
            let (at, _) = cursor.step(bytes)?;
            if cursor.data_at > bytes.len() {
                return None;
            }
            name(bytes.get_mut(at)?);
        }
        Some(start)
    }

    /// The next pair's name and value as ranges of `bytes`, stepping past it (`None` at the
    /// end, or where the lengths run past the bytes: a walk stops, never panics). Inlined
    /// into its walks: at the crate's size-first `opt-level` it would otherwise be a call
    /// per header per lookup, about a sixth of a cache hit's instructions (`make profile`).
    #[inline(always)]
    fn step(&mut self, bytes: &[u8]) -> Option<(Range<usize>, Range<usize>)> {
        if self.left == 0 {
            return None;
        }
        let sizes: [u8; 8] = bytes
            .get(self.sizes_at..self.sizes_at.checked_add(8)?)?
            .try_into()
            .ok()?;
        let [n0, n1, n2, n3, v0, v1, v2, v3] = sizes;
        let name_len = usize::try_from(u32::from_le_bytes([n0, n1, n2, n3])).ok()?;
        let value_len = usize::try_from(u32::from_le_bytes([v0, v1, v2, v3])).ok()?;
        let name = self.data_at..self.data_at.checked_add(name_len)?;
        let value_at = name.end.checked_add(1)?;
        let value = value_at..value_at.checked_add(value_len)?;
        self.left -= 1;
        self.sizes_at = self.sizes_at.checked_add(8)?;
        self.data_at = value.end.checked_add(1)?;
        Some((name, value))
    }
}

/// The `(name, value)` pairs of a [`Request`], walked from its encoding.
#[derive(Debug, Clone)]
pub struct Pairs<'r> {
    bytes: &'r [u8],
    cursor: Cursor,
}

impl<'r> Iterator for Pairs<'r> {
    type Item = (&'r [u8], &'r [u8]);

    fn next(&mut self) -> Option<(&'r [u8], &'r [u8])> {
        let (name, value) = self.cursor.step(self.bytes)?;
        Some((self.bytes.get(name)?, self.bytes.get(value)?))
    }
}

/// The values of one header ([`Request::values`]): a walk that compares a name's length
/// before its bytes, written as a plain loop. This runs several times on every request
/// (`:method`, the token's header, `:path`), and at the crate's size-first `opt-level` the
/// equivalent iterator chain stays a chain of out-of-line calls (measured with `make
/// profile`).
#[derive(Debug, Clone)]
pub struct Values<'r, 'n> {
    pairs: Pairs<'r>,
    name: &'n [u8],
}

impl<'r> Iterator for Values<'r, '_> {
    type Item = &'r [u8];

    fn next(&mut self) -> Option<&'r [u8]> {
        loop {
            let (name, value) = self.pairs.cursor.step(self.pairs.bytes)?;
            if name.len() == self.name.len()
                && self
                    .pairs
                    .bytes
                    .get(name)
                    .is_some_and(|n| crate::bytes::same(n, self.name))
            {
                return self.pairs.bytes.get(value);
            }
        }
    }
}

/// Whether any byte is an ASCII capital letter, eight bytes at a time with no loop over single
/// bytes (on wasm32 a byte loop costs the VM about six instructions a byte, and this runs on
/// every header name of every request): whole words, then the last 8 bytes again (overlapping
/// what was checked cannot change the answer), or for names below 8 bytes their first and last
/// 4 bytes as one word, or below 4 bytes each byte.
fn has_ascii_uppercase(bytes: &[u8]) -> bool {
    let mut rest = bytes;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        if word_has_uppercase(u64::from_ne_bytes(*chunk)) {
            return true;
        }
        rest = tail;
    }
    if rest.is_empty() {
        return false;
    }
    if let Some(last) = bytes.last_chunk::<8>() {
        return word_has_uppercase(u64::from_ne_bytes(*last));
    }
    match (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        (Some(first), Some(last)) => word_has_uppercase(
            u64::from(u32::from_ne_bytes(*first)) | u64::from(u32::from_ne_bytes(*last)) << 32,
        ),
        _ => bytes.iter().any(u8::is_ascii_uppercase),
    }
}

/// Whether any of a word's bytes is an ASCII capital letter: a byte's high bit ends up set only
/// if it is below 0x80, at least `A` and at most `Z` (no sum carries into the next byte).
fn word_has_uppercase(w: u64) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let low = w & !HIGH;
    let at_least_a = low + ONES * u64::from(0x80 - b'A');
    let above_z = low + ONES * u64::from(0x80 - b'Z' - 1);
    at_least_a & !above_z & !w & HIGH != 0
}

/// Encodes `(name, value)` pairs as a proxy-wasm map (the layout [`Request`] keeps): the one
/// encoder of it, for the headers of a local reply and for tests and benches that play the
/// host. A length past `u32::MAX` is written as `u32::MAX` (the host then refuses the map).
pub fn encode_map<N: AsRef<[u8]>, V: AsRef<[u8]>>(pairs: &[(N, V)]) -> Vec<u8> {
    let size: usize = 4 + pairs
        .iter()
        .map(|(n, v)| 8 + n.as_ref().len() + v.as_ref().len() + 2)
        .sum::<usize>();
    let mut out = Vec::with_capacity(size);
    let len32 = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    out.extend_from_slice(&len32(pairs.len()));
    for (n, v) in pairs {
        out.extend_from_slice(&len32(n.as_ref().len()));
        out.extend_from_slice(&len32(v.as_ref().len()));
    }
    for (n, v) in pairs {
        out.extend_from_slice(n.as_ref());
        out.push(0);
        out.extend_from_slice(v.as_ref());
        out.push(0);
    }
    out
}

/// A proxy-wasm map encoding as owned `(name, value)` pairs (for map-valued host properties
/// such as node metadata `LABELS`); `None` if the bytes do not add up.
pub fn decode_map(bytes: &[u8]) -> Option<HeaderPairs> {
    // Checked on a copy (the check hands out names mutably); read at configuration only.
    let mut copy = bytes.to_vec();
    let cursor = Cursor::checked(&mut copy, |_| {})?;
    let pairs = Pairs {
        bytes: &copy,
        cursor,
    };
    Some(pairs.map(|(n, v)| (n.to_vec(), v.to_vec())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip_and_truncated_input_is_refused() {
        let pairs: &[(&str, &[u8])] = &[(":path", b"/x"), ("authorization", b"Bearer \xff\x00t")];
        let bytes = encode_map(pairs);
        let back = decode_map(&bytes).unwrap();
        assert_eq!(
            back,
            vec![
                (b":path".to_vec(), b"/x".to_vec()),
                (b"authorization".to_vec(), b"Bearer \xff\x00t".to_vec())
            ]
        );
        // Only the last value's terminating NUL may be missing without changing the result.
        for cut in 1..bytes.len() - 1 {
            assert_ne!(
                decode_map(&bytes[..cut]),
                Some(back.clone()),
                "cut at {cut}"
            );
        }
        assert_eq!(decode_map(&[255, 255, 255, 255]), None);
    }

    #[test]
    fn uppercase_is_found_in_any_position_and_nothing_else_counts() {
        // Against the byte-at-a-time definition, for every byte value at every position of
        // words and remainders.
        for len in [1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17] {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut bytes = vec![b'a'; len];
                    bytes[at] = b;
                    assert_eq!(
                        has_ascii_uppercase(&bytes),
                        b.is_ascii_uppercase(),
                        "byte {b:#x} at {at} of {len}"
                    );
                }
            }
        }
        assert!(!has_ascii_uppercase(b""));
        let request = Request::from_pairs(&[("X-Mixed", "V"), ("lower", "V")]);
        assert_eq!(request.first("x-mixed"), Some(&b"V"[..]));
        let host = Request::from_map_bytes(encode_map(&[("X-Mixed", "V")])).unwrap();
        assert_eq!(host.first("x-mixed"), Some(&b"V"[..]));
    }

    #[test]
    fn the_encoding_is_the_abis_layout() {
        // proxy-wasm ABI: a u32 LE count, (name length, value length) u32 LE pairs, then each
        // name and value followed by a NUL.
        assert_eq!(
            encode_map(&[("ab", "c"), ("", "")]),
            [
                &[2, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
                b"ab\0c\0\0\0"
            ]
            .concat()
        );
        assert_eq!(encode_map::<&str, &str>(&[]), [0, 0, 0, 0]);
    }

    #[test]
    fn the_host_encoding_reads_as_the_pairs() {
        let pairs = [
            (":path", "/a?b"),
            ("Authorization", "Bearer x"),
            ("empty", ""),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
        ];
        let r = Request::from_map_bytes(encode_map(&pairs)).unwrap();
        let p = Request::from_pairs(&pairs);
        for name in [":path", "authorization", "empty", "cookie", "missing"] {
            assert_eq!(
                r.values(name).collect::<Vec<_>>(),
                p.values(name).collect::<Vec<_>>(),
                "{name}"
            );
        }
        assert_eq!(r.first("authorization"), Some(&b"Bearer x"[..]));
        assert_eq!(r.values("cookie").count(), 2);
        assert_eq!(r.path(), b"/a?b");
        assert_eq!(
            Request::from_map_bytes(Vec::new()),
            Some(Request::default())
        );
    }

    #[test]
    fn a_truncated_or_lying_encoding_is_refused() {
        let good = encode_map(&[("a", "b"), ("c", "d")]);
        for cut in 1..good.len() {
            assert_eq!(Request::from_map_bytes(good[..cut].to_vec()), None, "{cut}");
        }
        let mut huge = good.clone();
        huge[0..4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(Request::from_map_bytes(huge), None);
        let mut long_name = good;
        long_name[4..8].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(Request::from_map_bytes(long_name), None);
    }
}
