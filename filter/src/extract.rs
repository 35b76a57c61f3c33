//! Where tokens are found and how they are taken out of the request, as Envoy's
//! `jwt_authn/extractor.cc` does it.

use crate::request::Request;

/// One place a rule looks for its token (`fromHeaders`, `fromParams`, `fromCookies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// A header (lower-case name) whose value contains `prefix`; the token is the rest of the
    /// value after the prefix. Envoy joins repeated headers with `,` before looking.
    Header {
        /// Lower-case header name.
        name: String,
        /// Text before the token, case-sensitive (`"Bearer "` by default).
        prefix: String,
    },
    /// A query parameter; its first occurrence, percent-decoded.
    Param(String),
    /// A cookie.
    Cookie(String),
}

impl Location {
    /// Istio's defaults when a rule sets none of `fromHeaders`/`fromParams`/`fromCookies`.
    pub fn defaults() -> Vec<Location> {
        vec![
            Location::Header {
                name: "authorization".into(),
                prefix: "Bearer ".into(),
            },
            Location::Param("access_token".into()),
        ]
    }
}

/// The request while rules run over it: verified tokens may be removed, and later rules must
/// not see them (Envoy's order-dependence, which Istio's multi-rule requirement relies on).
#[derive(Debug, Clone)]
pub struct RequestState<'r> {
    request: &'r Request,
    removed_headers: Vec<String>,
    removed_params: Vec<String>,
    /// Cookies of verified tokens, taken out of `Cookie` at the end only: Envoy never removes
    /// them, so later rules still see them, as in Envoy.
    removed_cookies: Vec<String>,
    /// Output header names removed from the incoming request.
    sanitized: Vec<String>,
    /// Output headers added by verified tokens, in order.
    added: Vec<(String, Vec<u8>)>,
}

/// A token found at a location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken {
    /// Where it was found.
    pub location: Location,
    /// The token text.
    pub token: String,
}

impl<'r> RequestState<'r> {
    /// The untouched request.
    pub fn new(request: &'r Request) -> RequestState<'r> {
        RequestState {
            request,
            removed_headers: Vec::new(),
            removed_params: Vec::new(),
            removed_cookies: Vec::new(),
            sanitized: Vec::new(),
            added: Vec::new(),
        }
    }

    /// The tokens at these locations, in Envoy's order: headers, then params, then cookies.
    pub fn extract(&self, locations: &[Location]) -> Vec<FoundToken> {
        let mut found = Vec::new();
        for kind in 0..3 {
            for location in locations {
                let token = match (kind, location) {
                    (0, Location::Header { name, prefix }) => self.header_token(name, prefix),
                    (1, Location::Param(name)) => self.param_token(name),
                    (2, Location::Cookie(name)) => self.cookie_token(name),
                    _ => None,
                };
                if let Some(token) = token {
                    found.push(FoundToken {
                        location: location.clone(),
                        token,
                    });
                }
            }
        }
        found
    }

    /// Takes a verified token out of the request: the whole header, or every occurrence of
    /// the query parameter. A cookie stays visible to later rules, as in Envoy, and is taken
    /// out of `Cookie` only when the request goes upstream (Envoy leaves it there).
    pub fn remove(&mut self, location: &Location) {
        match location {
            Location::Header { name, .. } => {
                push_unique(&mut self.removed_headers, name);
                self.added.retain(|(n, _)| n != name);
            }
            Location::Param(name) => push_unique(&mut self.removed_params, name),
            Location::Cookie(name) => push_unique(&mut self.removed_cookies, name),
        }
    }

    /// Envoy's `sanitizeHeaders`: removes these output headers, the client's copies and any
    /// an earlier rule added in this request.
    pub fn sanitize<'n>(&mut self, names: impl Iterator<Item = &'n str>) {
        for name in names {
            push_unique(&mut self.sanitized, name);
            self.added.retain(|(n, _)| n != name);
        }
    }

    /// Appends an output header (Envoy's `addCopy`).
    pub fn add_header(&mut self, name: String, value: Vec<u8>) {
        self.added.push((name, value));
    }

    /// Output headers to add, in order, after the removals.
    pub fn added_headers(&self) -> &[(String, Vec<u8>)] {
        &self.added
    }

    /// Whether the incoming request carries this header.
    pub fn request_has(&self, name: &str) -> bool {
        self.request.first(name).is_some()
    }

    /// Output header names removed from the incoming request.
    pub fn sanitized_headers(&self) -> &[String] {
        &self.sanitized
    }

    /// The `Cookie` header to send upstream when a verified token's cookie was removed:
    /// `Some(None)` when no cookie is left, `None` when `Cookie` is unchanged. The other cookies
    /// are kept byte for byte, in order, joined with `"; "`.
    pub fn rewritten_cookie(&self) -> Option<Option<Vec<u8>>> {
        if self.removed_cookies.is_empty() {
            return None;
        }
        let mut kept: Vec<&[u8]> = Vec::new();
        for header in self.request.values("cookie") {
            for pair in header.split(|&b| b == b';') {
                let pair = trim(pair);
                if pair.is_empty() {
                    continue;
                }
                let name = pair.split(|&b| b == b'=').next().unwrap_or_default();
                if !self.removed_cookies.iter().any(|c| c.as_bytes() == name) {
                    kept.push(pair);
                }
            }
        }
        Some((!kept.is_empty()).then(|| kept.join(&b"; "[..])))
    }

    /// Headers to remove before the request goes upstream.
    pub fn removed_headers(&self) -> &[String] {
        &self.removed_headers
    }

    /// The `:path` to send upstream, when a query parameter was removed.
    pub fn rewritten_path(&self) -> Option<Vec<u8>> {
        if self.removed_params.is_empty() {
            return None;
        }
        let path = self.request.path();
        let q = path.iter().position(|&b| b == b'?')?;
        let (base, query) = path.split_at(q);
        let query = query.get(1..).unwrap_or_default();
        let kept: Vec<&[u8]> = query
            .split(|&b| b == b'&')
            .filter(|pair| {
                let key = pair.split(|&b| b == b'=').next().unwrap_or_default();
                let key = percent_decode(key);
                !self
                    .removed_params
                    .iter()
                    .any(|r| r.as_bytes() == key.as_slice())
            })
            .collect();
        let mut out = base.to_vec();
        if !kept.is_empty() {
            out.push(b'?');
            out.extend_from_slice(&kept.join(&b'&'));
        }
        Some(out)
    }

    fn header_token(&self, name: &str, prefix: &str) -> Option<String> {
        if self.removed_headers.iter().any(|h| h == name) {
            return None;
        }
        let mut values = self.request.values(name).peekable();
        values.peek()?;
        let joined = values.collect::<Vec<_>>().join(&b',');
        let joined = String::from_utf8_lossy(&joined);
        if prefix.is_empty() {
            return Some(joined.into_owned());
        }
        // Envoy looks for the prefix anywhere in the value (`find`), case-sensitively; no
        // prefix means no token, not a bad one. Then (`extractJWT`, measured on 1.40) it skips
        // to the first base64url character or dot and takes the rest of the value; with none,
        // the whole value is the token.
        let at = joined.find(prefix)?;
        let rest = joined.get(at + prefix.len()..)?;
        let token = match rest.find(|c: char| c.is_ascii_alphanumeric() || "-_.".contains(c)) {
            Some(start) => rest.get(start..).unwrap_or_default(),
            None => &joined,
        };
        Some(token.to_owned())
    }

    fn param_token(&self, name: &str) -> Option<String> {
        if self.removed_params.iter().any(|p| p == name) {
            return None;
        }
        let path = self.request.path();
        let q = path.iter().position(|&b| b == b'?')?;
        let query = path.get(q + 1..)?;
        // Like Envoy: a fragment is not part of the query.
        let query = query.split(|&b| b == b'#').next().unwrap_or_default();
        query.split(|&b| b == b'&').find_map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let key = percent_decode(kv.next().unwrap_or_default());
            if key != name.as_bytes() {
                return None;
            }
            let value = percent_decode(kv.next().unwrap_or_default());
            Some(String::from_utf8_lossy(&value).into_owned())
        })
    }

    fn cookie_token(&self, name: &str) -> Option<String> {
        self.request.values("cookie").find_map(|header| {
            header.split(|&b| b == b';').find_map(|pair| {
                let pair = trim(pair);
                let mut kv = pair.splitn(2, |&b| b == b'=');
                if kv.next()? != name.as_bytes() {
                    return None;
                }
                let value = kv.next()?;
                let value = value
                    .strip_prefix(b"\"")
                    .and_then(|v| v.strip_suffix(b"\""))
                    .unwrap_or(value);
                Some(String::from_utf8_lossy(value).into_owned())
            })
        })
    }
}

fn push_unique(list: &mut Vec<String>, item: &str) {
    if !list.iter().any(|i| i == item) {
        list.push(item.to_owned());
    }
}

fn trim(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// `%XY` decoding; a malformed escape is kept as it is.
fn percent_decode(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while let Some(&b) = input.get(i) {
        if b == b'%' {
            let hex = input
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok());
            if let Some(v) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(name: &str, prefix: &str) -> Location {
        Location::Header {
            name: name.into(),
            prefix: prefix.into(),
        }
    }

    fn tokens(req: &Request, locations: &[Location]) -> Vec<String> {
        RequestState::new(req)
            .extract(locations)
            .into_iter()
            .map(|t| t.token)
            .collect()
    }

    #[test]
    fn default_locations() {
        let req = Request::from_pairs(&[
            (":path", "/p?a=1&access_token=Q.Q.Q"),
            ("authorization", "Bearer H.H.H"),
        ]);
        assert_eq!(tokens(&req, &Location::defaults()), ["H.H.H", "Q.Q.Q"]);
    }

    #[test]
    fn prefix_is_case_sensitive_and_missing_prefix_means_no_token() {
        let d = Location::defaults();
        for value in ["bearer T", "BearerT", "Basic dXNlcg=="] {
            let req = Request::from_pairs(&[(":path", "/"), ("authorization", value)]);
            assert!(tokens(&req, &d).is_empty(), "{value}");
        }
        // Envoy's `find`: the prefix may stand anywhere, and the rest is the token, from its
        // first base64url character or dot on; with none, the whole value.
        let req = Request::from_pairs(&[(":path", "/"), ("authorization", "x Bearer a.b.c extra")]);
        assert_eq!(tokens(&req, &d), ["a.b.c extra"]);
        let req = Request::from_pairs(&[(":path", "/"), ("authorization", "Bearer  !!a.b.c")]);
        assert_eq!(tokens(&req, &d), ["a.b.c"]);
        let req = Request::from_pairs(&[(":path", "/"), ("authorization", "Bearer %%")]);
        assert_eq!(tokens(&req, &d), ["Bearer %%"]);
    }

    #[test]
    fn repeated_headers_are_joined_with_commas() {
        let req = Request::from_pairs(&[
            (":path", "/"),
            ("authorization", "Bearer a.b.c"),
            ("authorization", "Bearer d.e.f"),
        ]);
        assert_eq!(tokens(&req, &Location::defaults()), ["a.b.c,Bearer d.e.f"]);
    }

    #[test]
    fn params_are_decoded_and_first_wins_and_empty_is_a_token() {
        let l = [Location::Param("t".into())];
        let req = Request::from_pairs(&[(":path", "/x?%74=a%2Eb.c&t=second")]);
        assert_eq!(tokens(&req, &l), ["a.b.c"]);
        let req = Request::from_pairs(&[(":path", "/x?t=")]);
        assert_eq!(tokens(&req, &l), [""]);
        let req = Request::from_pairs(&[(":path", "/x?tt=1#t=2")]);
        assert!(tokens(&req, &l).is_empty());
    }

    #[test]
    fn cookies() {
        let l = [Location::Cookie("session".into())];
        let req = Request::from_pairs(&[(":path", "/"), ("cookie", "a=1; session=\"x.y.z\"; b=2")]);
        assert_eq!(tokens(&req, &l), ["x.y.z"]);
    }

    #[test]
    fn removal_takes_whole_header_and_every_param_occurrence_keeping_the_rest_byte_for_byte() {
        let req = Request::from_pairs(&[
            (":path", "/p?b=%2F&access_token=A&z&access_token=B&c=1"),
            ("authorization", "Bearer H"),
        ]);
        let mut state = RequestState::new(&req);
        state.remove(&header("authorization", "Bearer "));
        state.remove(&Location::Param("access_token".into()));
        assert!(state.extract(&Location::defaults()).is_empty());
        assert_eq!(state.removed_headers(), ["authorization"]);
        assert_eq!(state.rewritten_path().unwrap(), b"/p?b=%2F&z&c=1");

        let req = Request::from_pairs(&[(":path", "/p?access_token=A")]);
        let mut state = RequestState::new(&req);
        state.remove(&Location::Param("access_token".into()));
        assert_eq!(state.rewritten_path().unwrap(), b"/p");
    }
}
