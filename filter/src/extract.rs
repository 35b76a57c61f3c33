//! Where tokens are found and how they are taken out of the request, as Envoy's
//! `jwt_authn/extractor.cc` does it.

use std::borrow::Cow;

use smallvec::SmallVec;

use crate::bytes;
use crate::outputs::Outputs;
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
    /// A cookie: every cookie of the `Cookie` headers that a common parser reads under this
    /// name ([`cookie_in_segment`]), each a token that must verify.
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

    /// Puts a rule's locations in the order Envoy extracts from them: headers, then params,
    /// then cookies, each kind sorted by its key (`extractor.cc` keeps them in maps keyed by
    /// header name + prefix, param name, cookie name), a repeated key once. The order shows
    /// in repeated output headers: the tokens are verified, and their outputs written, from
    /// the last extracted back.
    pub fn envoy_order(locations: &mut Vec<Location>) {
        locations.sort_by_cached_key(Location::order_key);
        locations.dedup();
    }

    fn order_key(&self) -> (u8, Vec<u8>) {
        match self {
            Location::Header { name, prefix } => (0, [name.as_bytes(), prefix.as_bytes()].concat()),
            Location::Param(name) => (1, name.as_bytes().to_vec()),
            Location::Cookie(name) => (2, name.as_bytes().to_vec()),
        }
    }
}

/// The request while rules run over it: verified tokens may be removed, and later rules must
/// not see them (Envoy's order-dependence, which Istio's multi-rule requirement relies on).
#[derive(Debug, Clone)]
pub struct RequestState<'r, 'c> {
    request: &'r Request,
    // Names are borrowed from the configuration, which outlives the decision: a verified
    // token's header is removed on nearly every request, and a copy of its name would be an
    // allocation each time.
    removed_headers: Names<'c>,
    removed_params: Names<'c>,
    /// Cookies of verified tokens, taken out of `Cookie` at the end only: Envoy never removes
    /// them, so later rules still see them, as in Envoy.
    removed_cookies: Names<'c>,
    /// Output header names removed from the incoming request.
    sanitized: Names<'c>,
    /// Output headers added by verified tokens, in order.
    added: Vec<(String, Vec<u8>)>,
}

/// A token found at a location: the location borrowed from the rule and, when the token is
/// read in place (one header value, or a cookie: the common case), the bytes borrowed from the
/// request, so a cache hit allocates nothing for it. Bytes, as Envoy extracts them: they are
/// read as text ([`text`]) only when the token is verified afresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken<'c, 'r> {
    /// Where it was found.
    pub location: &'c Location,
    /// The token's bytes.
    pub token: Cow<'r, [u8]>,
}

/// The tokens found at a rule's locations: usually one, held inline.
pub type Found<'c, 'r> = SmallVec<[FoundToken<'c, 'r>; 2]>;

/// Names from the rules (headers, params, cookies), at most two held inline: a typical request
/// removes one, its verified token's header.
pub type Names<'c> = SmallVec<[&'c str; 2]>;

impl<'r, 'c> RequestState<'r, 'c> {
    /// The untouched request.
    pub fn new(request: &'r Request) -> RequestState<'r, 'c> {
        RequestState {
            request,
            removed_headers: Names::new(),
            removed_params: Names::new(),
            removed_cookies: Names::new(),
            sanitized: Names::new(),
            added: Vec::new(),
        }
    }

    /// The tokens at these locations, in Envoy's order: headers, then params, then cookies,
    /// each kind in the order of `locations` ([`Location::envoy_order`] sorts them as Envoy
    /// does). A cookie location gives one token per cookie read under its name, in request
    /// order.
    pub fn extract<'l>(&self, locations: &'l [Location]) -> Found<'l, 'r> {
        let mut found = Found::new();
        for kind in 0..3 {
            for location in locations {
                let mut push = |token| found.push(FoundToken { location, token });
                let single = match (kind, location) {
                    (0, Location::Header { name, prefix }) => self.header_token(name, prefix),
                    (1, Location::Param(name)) => self.param_token(name),
                    (2, Location::Cookie(name)) => {
                        self.cookie_tokens(name, &mut push);
                        None
                    }
                    _ => None,
                };
                if let Some(token) = single {
                    push(token);
                }
            }
        }
        found
    }

    /// Takes a verified token out of the request: the whole header, or every occurrence of
    /// the query parameter. A cookie stays visible to later rules, as in Envoy, and is taken
    /// out of `Cookie` only when the request goes upstream (Envoy leaves it there).
    pub fn remove(&mut self, location: &'c Location) {
        match location {
            Location::Header { name, .. } => {
                push_unique(&mut self.removed_headers, name);
                self.added.retain(|(n, _)| n != name);
            }
            Location::Param(name) => push_unique(&mut self.removed_params, name),
            Location::Cookie(name) => push_unique(&mut self.removed_cookies, name),
        }
    }

    /// Envoy's `sanitizeHeaders`: removes a rule's output headers, the client's copies and any
    /// an earlier rule added in this request.
    pub fn sanitize(&mut self, outputs: &'c Outputs) {
        // Most rules write no header; this runs for every rule on every request.
        if outputs.is_empty() {
            return;
        }
        for name in outputs.header_names() {
            push_unique(&mut self.sanitized, name);
            self.added.retain(|(n, _)| n != name);
        }
    }

    /// Appends an output header (Envoy's `addCopy`).
    pub fn add_header(&mut self, name: String, value: Vec<u8>) {
        self.added.push((name, value));
    }

    /// Whether the incoming request carries this header.
    pub fn request_has(&self, name: &str) -> bool {
        self.request.first(name).is_some()
    }

    /// Output header names removed from the incoming request.
    pub fn sanitized_headers(&self) -> &[&'c str] {
        &self.sanitized
    }

    /// The `Cookie` header to send upstream when a verified token's cookie was removed:
    /// `Some(None)` when no cookie is left, `None` when `Cookie` is unchanged. Every cookie read
    /// under a removed name goes (all of them verified: each was a token); the other cookies
    /// are kept byte for byte, in order, joined with `"; "`.
    pub fn rewritten_cookie(&self) -> Option<Option<Vec<u8>>> {
        if self.removed_cookies.is_empty() {
            return None;
        }
        let mut kept: Vec<&[u8]> = Vec::new();
        for header in self.request.values("cookie") {
            for segment in header.split(|&b| b == b';') {
                let pair = trim(segment);
                if pair.is_empty() {
                    continue;
                }
                if !self
                    .removed_cookies
                    .iter()
                    .any(|c| cookie_in_segment(segment, c.as_bytes()).is_some())
                {
                    kept.push(pair);
                }
            }
        }
        Some((!kept.is_empty()).then(|| kept.join(&b"; "[..])))
    }

    /// Headers to remove before the request goes upstream.
    pub fn removed_headers(&self) -> &[&'c str] {
        &self.removed_headers
    }

    /// The headers to remove and the output headers to add, moved out at the end.
    pub fn into_removed_and_added(self) -> (Names<'c>, Vec<(String, Vec<u8>)>) {
        (self.removed_headers, self.added)
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

    fn header_token(&self, name: &str, prefix: &str) -> Option<Cow<'r, [u8]>> {
        if self.removed_headers.contains(&name) {
            return None;
        }
        let request: &'r Request = self.request;
        let mut values = request.values(name);
        let first = values.next()?;
        // One value (the common case) is read in place; repeated ones are joined with `,`.
        let joined: Cow<'r, [u8]> = match values.next() {
            None => Cow::Borrowed(first),
            Some(second) => {
                let mut all = [first, second].join(&b',');
                for value in values {
                    all.push(b',');
                    all.extend_from_slice(value);
                }
                Cow::Owned(all)
            }
        };
        if prefix.is_empty() {
            return Some(joined);
        }
        // Envoy looks for the prefix anywhere in the value's bytes (`find`), case-sensitively;
        // no prefix means no token, not a bad one. Then (`extractJWT`, measured on 1.40) it
        // skips to the first base64url character or dot and takes the rest of the value; with
        // none, the whole value is the token. (A value that starts with the prefix needs no
        // search.)
        let prefix = prefix.as_bytes();
        let at = if joined
            .get(..prefix.len())
            .is_some_and(|start| bytes::same(start, prefix))
        {
            0
        } else {
            joined.windows(prefix.len()).position(|w| w == prefix)?
        };
        let rest = joined.get(at + prefix.len()..)?;
        let start = match rest
            .iter()
            .position(|&c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
        {
            Some(start) => at + prefix.len() + start,
            None => 0,
        };
        Some(match joined {
            Cow::Borrowed(bytes) => Cow::Borrowed(bytes.get(start..).unwrap_or_default()),
            Cow::Owned(mut bytes) => {
                bytes.drain(..start.min(bytes.len()));
                Cow::Owned(bytes)
            }
        })
    }

    fn param_token(&self, name: &str) -> Option<Cow<'static, [u8]>> {
        if self.removed_params.contains(&name) {
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
            Some(Cow::Owned(percent_decode(kv.next().unwrap_or_default())))
        })
    }

    fn cookie_tokens(&self, name: &str, mut push: impl FnMut(Cow<'r, [u8]>)) {
        let request: &'r Request = self.request;
        for header in request.values("cookie") {
            for segment in header.split(|&b| b == b';') {
                if let Some(value) = cookie_in_segment(segment, name.as_bytes()) {
                    push(Cow::Borrowed(value));
                }
            }
        }
    }
}

/// A token's bytes as text, each invalid UTF-8 sequence replaced by U+FFFD (borrowed when they
/// are UTF-8). A token with a replaced sequence fails to parse, as it does in Envoy.
/// `from_utf8` checks ASCII a word at a time; the lossy decoder, a byte at a time, runs only
/// for bytes that are not UTF-8.
pub fn text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// Whether one `;`-separated segment of a `Cookie` header holds a cookie that a common parser
/// reads under `name`, and if so its value as Envoy reads values (the rest of the segment after
/// `=`, one pair of surrounding double quotes stripped; empty for a bare name).
///
/// Extraction and removal both ask this, so they agree on what the cookie is. Envoy itself
/// reads only `name=` exactly (leading spaces skipped, the first occurrence), but the upstream
/// behind it may parse `Cookie` otherwise, and a cookie it reads as `name` that was not
/// verified would be a forged credential:
///
/// - Go `net/http`, Node `cookie` and Python `http.cookies` trim whitespace around names (`session =x`, `\tsession=x`);
/// - PHP and Rack percent-decode names (`sess%69on=x`, `+` as a space); PHP also ends a name
///   at NUL, reads `session[k]=x` as an array under `session`, and `.` or a space as `_`;
/// - Python splits pairs at whitespace as well (`a=1 session=x`), Rack 2 at commas;
/// - ASP.NET's request cookie collections compare names ignoring case (`SESSION=x`), so case
///   is ignored here too (ASCII only): a cookie differing from the name only in case is the
///   name.
///
/// Only the first such cookie of a segment is reported: when it verifies, its value
/// (base64url and dots) has no whitespace or comma where another could start.
pub fn cookie_in_segment<'s>(segment: &'s [u8], name: &[u8]) -> Option<&'s [u8]> {
    let start = segment
        .iter()
        .position(|&b| !is_cookie_space(b))
        .unwrap_or(segment.len());
    let rest = segment.get(start..).unwrap_or_default();
    // The segment's own name: up to the first `=` (Envoy, Go, Node, PHP), or a bare name.
    let (own, value) = match rest.iter().position(|&b| b == b'=') {
        Some(eq) => (rest.get(..eq), rest.get(eq + 1..)),
        None => (Some(rest), Some(&b""[..])),
    };
    if let (Some(own), Some(value)) = (own, value) {
        if !own.is_empty() && reads_as(own, name) {
            return Some(unquote(value));
        }
    }
    // Pairs Python (whitespace) and Rack 2 (comma) start inside a segment: `name =value`.
    for at in start + 1..segment.len() {
        let starts_pair = matches!(segment.get(at - 1), Some(&b) if b == b',' || is_cookie_space(b))
            && !matches!(segment.get(at), Some(&b) if b == b',' || b == b'=' || is_cookie_space(b));
        if !starts_pair {
            continue;
        }
        let tail = segment.get(at..).unwrap_or_default();
        let len = tail
            .iter()
            .position(|&b| b == b'=' || b == b',' || is_cookie_space(b))
            .unwrap_or(tail.len());
        let after = tail.get(len..).unwrap_or_default();
        let spaces = after.iter().take_while(|&&b| is_cookie_space(b)).count();
        if after.get(spaces) != Some(&b'=') {
            continue;
        }
        let own = tail.get(..len).unwrap_or_default();
        if reads_as(own, name) {
            return Some(unquote(after.get(spaces + 1..).unwrap_or_default()));
        }
    }
    None
}

/// Whether a cookie name as sent reads as `name` under any of the parsers [`cookie_in_segment`]
/// names.
fn reads_as(raw: &[u8], name: &[u8]) -> bool {
    let trimmed = trim_cookie_space(raw);
    if trimmed.eq_ignore_ascii_case(name) {
        return true;
    }
    if !trimmed
        .iter()
        .any(|b| matches!(b, b'%' | b'+' | b'.' | b' ' | b'[' | 0))
    {
        return false;
    }
    // PHP's and Rack's decoding: `%XY` and `+`; PHP ends the name at NUL.
    let mut decoded = percent_decode(trimmed);
    for b in decoded.iter_mut() {
        if *b == b'+' {
            *b = b' ';
        }
    }
    if let Some(nul) = decoded.iter().position(|&b| b == 0) {
        decoded.truncate(nul);
    }
    let decoded = trim_cookie_space(&decoded);
    if decoded.eq_ignore_ascii_case(name) {
        return true;
    }
    // PHP's variable names: `[` opens an array under the name before it; `.` and a space
    // become `_`.
    let base = decoded.split(|&b| b == b'[').next().unwrap_or_default();
    let base = trim_cookie_space(base);
    base.len() == name.len()
        && base.iter().zip(name).all(|(&b, &n)| {
            let b = if b == b'.' || b == b' ' { b'_' } else { b };
            b.eq_ignore_ascii_case(&n)
        })
}

/// Whitespace to any of those parsers: ASCII's, and what Python's `\s` also matches in a
/// header decoded as Latin-1 (0x1C–0x1F, 0x85, 0xA0).
fn is_cookie_space(b: u8) -> bool {
    matches!(b, b'\t'..=b'\r' | 0x1c..=b' ' | 0x85 | 0xa0)
}

fn trim_cookie_space(bytes: &[u8]) -> &[u8] {
    let start = bytes
        .iter()
        .position(|&b| !is_cookie_space(b))
        .unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|&b| !is_cookie_space(b))
        .map_or(start, |e| e + 1);
    bytes.get(start..end).unwrap_or_default()
}

/// Envoy's `forEachCookie`: a value wrapped in double quotes is read without them.
fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        _ => value,
    }
}

fn push_unique<'a>(list: &mut Names<'a>, item: &'a str) {
    if !list.contains(&item) {
        list.push(item);
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
            .map(|t| text(&t.token).into_owned())
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
        let req = Request::from_pairs(&[
            ("authorization", "x"),
            ("authorization", "Bearer a.b.c"),
            ("authorization", "y"),
        ]);
        assert_eq!(tokens(&req, &Location::defaults()), ["a.b.c,y"]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_alone_and_whole_values_taken() {
        // Refactoring guard: a value that is not UTF-8 (one value, or one of several) keeps
        // its other bytes; the lone byte becomes U+FFFD, so the token can never verify.
        let auth = |v: &[u8]| (b"authorization".to_vec(), v.to_vec());
        let req = Request::new(vec![auth(b"Bearer a.\xffb.c")]);
        assert_eq!(tokens(&req, &Location::defaults()), ["a.\u{fffd}b.c"]);
        let req = Request::new(vec![auth(b"Bearer a.b.c"), auth(b"\xfe")]);
        assert_eq!(tokens(&req, &Location::defaults()), ["a.b.c,\u{fffd}"]);
        let l = [header("authorization", "")];
        let req = Request::new(vec![auth(b"\xc3\xa9t\xc3")]);
        assert_eq!(tokens(&req, &l), ["\u{e9}t\u{fffd}"]);
        // The prefix is found in the bytes, as Envoy finds it, after bytes that are not UTF-8
        // and when it is not ASCII itself.
        let req = Request::new(vec![auth(b"\xe2\x82Bearer a.b.c")]);
        assert_eq!(tokens(&req, &Location::defaults()), ["a.b.c"]);
        let l = [header("authorization", "Jeton\u{20ac} ")];
        let req = Request::new(vec![auth(b"\xe2Jeton\xe2\x82\xac a.b.c")]);
        assert_eq!(tokens(&req, &l), ["a.b.c"]);
        let req = Request::new(vec![auth(b"Jeton\xe2\x82 a.b.c")]);
        assert!(tokens(&req, &l).is_empty());
        // Cookies and query parameters alike.
        let req = Request::new(vec![(b"cookie".to_vec(), b"session=a.\xffb".to_vec())]);
        let l = [Location::Cookie("session".into())];
        assert_eq!(tokens(&req, &l), ["a.\u{fffd}b"]);
        let req = Request::new(vec![(b":path".to_vec(), b"/?t=a%FFb.\xfe".to_vec())]);
        let l = [Location::Param("t".into())];
        assert_eq!(tokens(&req, &l), ["a\u{fffd}b.\u{fffd}"]);
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

    /// Cookie locations as `extract` reports them: the token texts at `session`, in order.
    fn session_tokens(cookies: &[&str]) -> Vec<String> {
        let mut pairs = vec![(":path", "/")];
        pairs.extend(cookies.iter().map(|c| ("cookie", *c)));
        tokens(
            &Request::from_pairs(&pairs),
            &[Location::Cookie("session".into())],
        )
    }

    #[test]
    fn the_finding_a_trimmed_duplicate_name_is_a_second_token() {
        // Issue 14 item 2: Go net/http, Python http.cookies and Node `cookie` read
        // `session =x` as `session`; it must verify like the first one.
        assert_eq!(
            session_tokens(&["session=a.b.c; session =x.y.z"]),
            ["a.b.c", "x.y.z"]
        );
    }

    #[test]
    fn every_cookie_a_common_parser_reads_as_the_name_is_a_token() {
        let cases: &[(&[&str], &[&str])] = &[
            // Names trimmed of spaces and tabs (Go textproto.TrimString, Node, Python `\s*`).
            (&["\tsession=t1"], &["t1"]),
            (&["a=1;session\t=t1"], &["t1"]),
            // Percent-decoded names (PHP, Rack), `+` as a space (PHP's urldecode).
            (&["sess%69on=t1"], &["t1"]),
            (&["%73ession=t1; session=t2"], &["t1", "t2"]),
            (&["session+=t1"], &["t1"]),
            // PHP: a NUL ends the name, `[` opens an array under the name.
            (&["session%00x=t1"], &["t1"]),
            (&["session[0]=t1"], &["t1"]),
            // Python splits pairs at whitespace too, Rack 2 at commas too.
            (&["a=1 session=t1"], &["t1"]),
            (&["a=1,session=t1"], &["t1"]),
            (&["a=1, session =t1"], &["t1"]),
            // Case: ASP.NET (Core)'s request cookie collections compare names ignoring case.
            (&["SESSION=t1; Session=t2"], &["t1", "t2"]),
            // Every Cookie header, in order; a bare name is an empty value (Go, PHP).
            (&["session=t1", "x=1; session=t2"], &["t1", "t2"]),
            (&["session"], &[""]),
            // Not the name under any of them.
            (
                &["sessions=1; xsession=2; $session=3; sess.ion=4; a=\"session=5\""],
                &[],
            ),
            (&["a=session=1; a=b=session"], &[]),
        ];
        for (cookies, expected) in cases {
            assert_eq!(session_tokens(cookies), *expected, "{cookies:?}");
        }
    }

    #[test]
    fn php_reads_dots_and_spaces_in_names_as_underscores() {
        let l = [Location::Cookie("my_session".into())];
        for cookie in ["my.session=t1", "my session=t1", "my%2Esession=t1"] {
            let req = Request::from_pairs(&[(":path", "/"), ("cookie", cookie)]);
            assert_eq!(tokens(&req, &l), ["t1"], "{cookie}");
        }
    }

    #[test]
    fn removal_takes_every_cookie_read_as_the_name() {
        let req = Request::from_pairs(&[
            (":path", "/"),
            ("cookie", "a=1; session=t1; session =t2;b=2"),
            ("cookie", "Sess%69on=t3; c=3 session=t4; d=4"),
        ]);
        let session = Location::Cookie("session".into());
        let mut state = RequestState::new(&req);
        state.remove(&session);
        assert_eq!(
            state.rewritten_cookie(),
            Some(Some(b"a=1; b=2; d=4".to_vec()))
        );
    }

    #[test]
    fn locations_are_in_envoys_order_sorted_by_key_within_each_kind() {
        // extractor.cc keeps header locations in a std::map keyed by name + prefix, params
        // and cookies in maps keyed by name: each kind is extracted in key order, once per key.
        let mut l = vec![
            Location::Cookie("z".into()),
            Location::Param("token".into()),
            header("x-b", ""),
            Location::Cookie("a".into()),
            Location::Param("secondary_token".into()),
            header("x-a", "Bearer "),
            header("x-ab", ""),
            Location::Param("token".into()),
        ];
        Location::envoy_order(&mut l);
        assert_eq!(
            l,
            [
                header("x-a", "Bearer "),
                header("x-ab", ""),
                header("x-b", ""),
                Location::Param("secondary_token".into()),
                Location::Param("token".into()),
                Location::Cookie("a".into()),
                Location::Cookie("z".into()),
            ]
        );
    }

    #[test]
    fn removal_takes_whole_header_and_every_param_occurrence_keeping_the_rest_byte_for_byte() {
        let req = Request::from_pairs(&[
            (":path", "/p?b=%2F&access_token=A&z&access_token=B&c=1"),
            ("authorization", "Bearer H"),
        ]);
        let (authorization, param) = (
            header("authorization", "Bearer "),
            Location::Param("access_token".into()),
        );
        let mut state = RequestState::new(&req);
        state.remove(&authorization);
        state.remove(&param);
        assert!(state.extract(&Location::defaults()).is_empty());
        assert_eq!(state.removed_headers(), ["authorization"]);
        assert_eq!(state.rewritten_path().unwrap(), b"/p?b=%2F&z&c=1");

        let req = Request::from_pairs(&[(":path", "/p?access_token=A")]);
        let mut state = RequestState::new(&req);
        state.remove(&param);
        assert_eq!(state.rewritten_path().unwrap(), b"/p");
    }
}
