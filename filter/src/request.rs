//! The request as the core sees it: header pairs as bytes. Built by the adapter from the host,
//! and by tests and fuzzers directly, so the core never touches the host.

/// `(name, value)` header pairs as bytes, in order.
pub type HeaderPairs = Vec<(Vec<u8>, Vec<u8>)>;

/// Request headers in arrival order. Names are lower case, as Envoy hands them to filters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    headers: HeaderPairs,
}

impl Request {
    /// From `(name, value)` pairs; names are lower-cased.
    pub fn new(headers: HeaderPairs) -> Request {
        let headers = headers.into_iter().map(|(mut n, v)| {
            n.make_ascii_lowercase();
            (n, v)
        });
        Request {
            headers: headers.collect(),
        }
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

    /// Every value of a header, in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// The first value of a header.
    pub fn first(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// `:path`, empty when absent.
    pub fn path(&self) -> &[u8] {
        self.first(":path").unwrap_or_default()
    }
}
