//! The request as the core sees it: header pairs as bytes. Built by the adapter from the host,
//! and by tests and fuzzers directly, so the core never touches the host.

use std::ops::Range;

/// `(name, value)` header pairs as bytes, in order.
pub type HeaderPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Request headers in arrival order. Names are lower case, as Envoy hands them to filters.
///
/// One buffer holds every name and value, and a list of ranges points into it: the adapter
/// hands over the host's serialized header map as it came ([`Request::from_map_bytes`]),
/// so a request costs two allocations however many headers it has, not two per header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    bytes: Vec<u8>,
    /// `(name, value)` ranges into `bytes`.
    spans: Vec<(Range<usize>, Range<usize>)>,
}

impl Request {
    /// From `(name, value)` pairs; names are lower-cased.
    pub fn new(headers: HeaderPairs) -> Request {
        let size = headers.iter().map(|(n, v)| n.len() + v.len()).sum();
        let mut request = Request {
            bytes: Vec::with_capacity(size),
            spans: Vec::with_capacity(headers.len()),
        };
        for (name, value) in headers {
            let at = request.bytes.len();
            request.bytes.extend_from_slice(&name);
            let name_end = request.bytes.len();
            request.bytes.extend_from_slice(&value);
            request
                .spans
                .push((at..name_end, name_end..request.bytes.len()));
        }
        request.lowercase_names();
        request
    }

    /// From the proxy-wasm map encoding the host returns for a header map (a u32 count, then
    /// (name length, value length) u32 pairs, then each name and value followed by a NUL),
    /// keeping the buffer. Names are lower-cased. `None` if the bytes do not add up.
    pub fn from_map_bytes(bytes: Vec<u8>) -> Option<Request> {
        let spans = map_spans(&bytes)?;
        let mut request = Request { bytes, spans };
        request.lowercase_names();
        Some(request)
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

    fn lowercase_names(&mut self) {
        for (name, _) in &self.spans {
            if let Some(name) = self.bytes.get_mut(name.clone()) {
                // Envoy hands filters lower-case names, so the check (a word at a time) is
                // usually all there is to do.
                if has_ascii_uppercase(name) {
                    name.make_ascii_lowercase();
                }
            }
        }
    }

    /// Every `(name, value)` pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = (&[u8], &[u8])> + '_ {
        self.spans.iter().map(|(n, v)| {
            (
                self.bytes.get(n.clone()).unwrap_or_default(),
                self.bytes.get(v.clone()).unwrap_or_default(),
            )
        })
    }

    /// Every value of a header, in order.
    pub fn values<'r, 'n>(&'r self, name: &'n str) -> Values<'r, 'n> {
        Values {
            request: self,
            name: name.as_bytes(),
            at: 0,
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

/// The values of one header ([`Request::values`]). A plain loop over the spans that compares
/// lengths before bytes: this runs several times on every request (`:method`, the token's
/// header, `:path`), and at the crate's size-first `opt-level` the equivalent iterator chain
/// stays a chain of out-of-line calls (measured with `make profile`).
#[derive(Debug, Clone)]
pub struct Values<'r, 'n> {
    request: &'r Request,
    name: &'n [u8],
    /// The next span to look at.
    at: usize,
}

impl<'r> Iterator for Values<'r, '_> {
    type Item = &'r [u8];

    fn next(&mut self) -> Option<&'r [u8]> {
        let Request { bytes, spans } = self.request;
        while let Some((name, value)) = spans.get(self.at) {
            self.at += 1;
            if name.len() == self.name.len() && bytes.get(name.clone()) == Some(self.name) {
                return Some(bytes.get(value.clone()).unwrap_or_default());
            }
        }
        None
    }
}

/// Whether any byte is an ASCII capital letter, eight bytes at a time: a byte's high bit ends
/// up set in `upper` only if it is below 0x80, at least `A` and at most `Z`.
fn has_ascii_uppercase(bytes: &[u8]) -> bool {
    const ONES: u64 = u64::from_ne_bytes([1; 8]);
    const HIGH: u64 = ONES * 0x80;
    let mut rest = bytes;
    while let Some((chunk, tail)) = rest.split_first_chunk::<8>() {
        let w = u64::from_ne_bytes(*chunk);
        let low = w & !HIGH;
        let at_least_a = low + ONES * u64::from(0x80 - b'A');
        let above_z = low + ONES * u64::from(0x80 - b'Z' - 1);
        if at_least_a & !above_z & !w & HIGH != 0 {
            return true;
        }
        rest = tail;
    }
    for &b in rest {
        if b.is_ascii_uppercase() {
            return true;
        }
    }
    false
}

/// The `(name, value)` byte ranges of a proxy-wasm map encoding (a u32 count, then
/// (name length, value length) u32 pairs, then each name and value followed by a NUL); `None`
/// if the bytes do not add up. The one decoder of that encoding, for headers and for map-valued
/// host properties alike.
pub fn map_spans(bytes: &[u8]) -> Option<Vec<(Range<usize>, Range<usize>)>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let u32_at = |at: usize| -> Option<usize> {
        let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
        usize::try_from(u32::from_le_bytes(b)).ok()
    };
    let count = u32_at(0)?;
    let mut data_at = count.checked_mul(8)?.checked_add(4)?;
    if data_at > bytes.len() {
        return None;
    }
    let mut spans = Vec::with_capacity(count);
    for i in 0..count {
        let sizes_at = i.checked_mul(8)?.checked_add(4)?;
        let name_len = u32_at(sizes_at)?;
        let value_len = u32_at(sizes_at.checked_add(4)?)?;
        let name = data_at..data_at.checked_add(name_len)?;
        let value_at = name.end.checked_add(1)?;
        let value = value_at..value_at.checked_add(value_len)?;
        data_at = value.end.checked_add(1)?;
        if data_at > bytes.len() {
            return None;
        }
        spans.push((name, value));
    }
    Some(spans)
}

/// Encodes `(name, value)` pairs as a proxy-wasm map (the layout [`map_spans`] reads): the one
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
    map_spans(bytes)?
        .into_iter()
        .map(|(name, value)| Some((bytes.get(name)?.to_vec(), bytes.get(value)?.to_vec())))
        .collect()
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
        for len in [1, 7, 8, 9, 16, 17] {
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
        let mut request = Request::from_pairs(&[("X-Mixed", "V"), ("lower", "V")]);
        request.lowercase_names();
        assert_eq!(request.first("x-mixed"), Some(&b"V"[..]));
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
