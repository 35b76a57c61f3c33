//! The matchers istiod generates for an AuthorizationPolicy, evaluated the way Envoy's RBAC
//! filter evaluates them. Each is compiled once from a policy value; matching allocates nothing.
//!
//! Sources (istio/istio): `pilot/pkg/security/authz/matcher/string.go` (`StringMatcherWithPrefix`),
//! `matcher/header.go` (`HeaderMatcher`, `HostMatcher`, `PathMatcher`), `matcher/template.go`
//! (path templates), `model/generator.go` (which matcher each field becomes); envoyproxy/envoy
//! `source/extensions/path/uri_template_lib` (what a template matches) and
//! `common/http/header_utility.cc` (several values of one header are matched joined by `,`).

use std::net::IpAddr;

/// Envoy's `StringMatcher` as istiod writes one for a value (`StringMatcherWithPrefix`):
/// `*` is the regex `.+` (any non-empty string), `*abc` a suffix, `abc*` a prefix, anything
/// else exact; a `prefix` (such as `spiffe://`) goes in front of the value's literal part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StringMatch {
    /// Equal (ASCII case-insensitive when `ignore_case`).
    Exact(String),
    /// Starts with.
    Prefix(String),
    /// Ends with.
    Suffix(String),
    /// Starts with the first and ends with the second, which do not overlap: the regex
    /// `<prefix>.*<suffix>` istiod writes for `*abc` under a prefix.
    PrefixSuffix(String, String),
    /// The regex `.+`: any non-empty string.
    NonEmpty,
}

impl StringMatch {
    /// The matcher for a policy value with no prefix (`StringMatcher(v)`).
    pub fn new(value: &str) -> StringMatch {
        StringMatch::with_prefix(value, "")
    }

    /// `StringMatcherWithPrefix(value, prefix)`.
    pub fn with_prefix(value: &str, prefix: &str) -> StringMatch {
        if value == "*" {
            return StringMatch::NonEmpty;
        }
        if let Some(suffix) = value.strip_prefix('*') {
            return if prefix.is_empty() {
                StringMatch::Suffix(suffix.to_owned())
            } else {
                StringMatch::PrefixSuffix(prefix.to_owned(), suffix.to_owned())
            };
        }
        if let Some(start) = value.strip_suffix('*') {
            return StringMatch::Prefix(format!("{prefix}{start}"));
        }
        StringMatch::Exact(format!("{prefix}{value}"))
    }

    /// Whether `s` matches (case-sensitive).
    pub fn matches(&self, s: &str) -> bool {
        self.matches_bytes(s.as_bytes(), false)
    }

    /// Whether `s` matches, ASCII case-insensitively when `ignore_case` (Envoy's `ignore_case`).
    pub fn matches_bytes(&self, s: &[u8], ignore_case: bool) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if ignore_case {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let starts = |p: &str| s.get(..p.len()).is_some_and(|h| eq(h, p.as_bytes()));
        let ends = |p: &str| {
            s.len()
                .checked_sub(p.len())
                .and_then(|at| s.get(at..))
                .is_some_and(|t| eq(t, p.as_bytes()))
        };
        match self {
            StringMatch::Exact(v) => eq(s, v.as_bytes()),
            StringMatch::Prefix(p) => starts(p),
            StringMatch::Suffix(p) => ends(p),
            StringMatch::PrefixSuffix(p, q) => {
                s.len() >= p.len().saturating_add(q.len()) && starts(p) && ends(q)
            }
            StringMatch::NonEmpty => !s.is_empty(),
        }
    }
}

/// Envoy's `HeaderMatcher` as istiod writes one (`HeaderMatcher`, `HostMatcher`): `*` is
/// `present_match` (the header is there, even empty), otherwise a [`StringMatch`] on the
/// header's value (all its values joined by `,`, as Envoy's `getAllOfHeaderAsString`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderMatch {
    /// `present_match` when `None`.
    value: Option<StringMatch>,
    /// `HostMatcher`: the value is compared ASCII case-insensitively.
    ignore_case: bool,
}

impl HeaderMatch {
    /// `HeaderMatcher(k, v)`.
    pub fn new(value: &str) -> HeaderMatch {
        HeaderMatch {
            value: (value != "*").then(|| StringMatch::new(value)),
            ignore_case: false,
        }
    }

    /// `HostMatcher(k, v)`: case-insensitive.
    pub fn host(value: &str) -> HeaderMatch {
        HeaderMatch {
            ignore_case: true,
            ..HeaderMatch::new(value)
        }
    }

    /// Whether the header, given as its values in order, matches; no values: absent.
    pub fn matches<'a>(&self, mut values: impl Iterator<Item = &'a [u8]>) -> bool {
        let Some(first) = values.next() else {
            return false;
        };
        let Some(value) = &self.value else {
            return true;
        };
        match values.next() {
            None => value.matches_bytes(first, self.ignore_case),
            Some(second) => {
                let mut joined = first.to_vec();
                for v in std::iter::once(second).chain(values) {
                    joined.push(b',');
                    joined.extend_from_slice(v);
                }
                value.matches_bytes(&joined, self.ignore_case)
            }
        }
    }
}

/// `paths`: a [`StringMatch`] (Envoy `PathMatcher`) or a path template (Envoy
/// `uri_template`), matched against the path without its query string and fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    /// A plain value.
    String(StringMatch),
    /// A value with `{*}` or `{**}`.
    Template(Vec<TemplatePart>),
}

/// One piece of a path template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text matched as is (the `/` separators included).
    Literal(String),
    /// `{*}`: one or more characters of a path segment (Envoy `[<literal>]+`).
    One,
    /// `{**}`: zero or more characters of path segments and `/` (Envoy `[<literal>/]*`).
    Any,
}

/// istio/istio `pkg/config/security`: `MatchOneTemplate`, `MatchAnyTemplate`.
const MATCH_ONE: &str = "{*}";
const MATCH_ANY: &str = "{**}";

impl PathMatch {
    /// The matcher for a `paths` value: a template when it contains `{*}` or `{**}`
    /// (`security.ContainsPathTemplate`), else a string. Call [`check_path_template`] first.
    pub fn new(value: &str) -> PathMatch {
        if !value.contains(MATCH_ONE) && !value.contains(MATCH_ANY) {
            return PathMatch::String(StringMatch::new(value));
        }
        let mut parts = Vec::new();
        let mut literal = String::new();
        for (i, segment) in value.split('/').enumerate() {
            if i > 0 {
                literal.push('/');
            }
            let op = match segment {
                MATCH_ONE => TemplatePart::One,
                MATCH_ANY => TemplatePart::Any,
                text => {
                    literal.push_str(text);
                    continue;
                }
            };
            if !literal.is_empty() {
                parts.push(TemplatePart::Literal(std::mem::take(&mut literal)));
            }
            parts.push(op);
        }
        if !literal.is_empty() {
            parts.push(TemplatePart::Literal(literal));
        }
        PathMatch::Template(parts)
    }

    /// Whether `:path` matches; the query string and fragment are not part of the path.
    pub fn matches(&self, path: &[u8]) -> bool {
        let end = path
            .iter()
            .position(|&b| b == b'?' || b == b'#')
            .unwrap_or(path.len());
        let path = path.get(..end).unwrap_or_default();
        match self {
            PathMatch::String(m) => m.matches_bytes(path, false),
            PathMatch::Template(parts) => template_matches(parts, path),
        }
    }
}

/// Envoy's `kLiteral` (`uri_template_lib/uri_template_internal.h`): RFC 3986 pchar without `*`.
fn is_template_literal(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~%!$&'()+,;:@=".contains(&b)
}

fn template_matches(parts: &[TemplatePart], path: &[u8]) -> bool {
    let Some((first, rest)) = parts.split_first() else {
        return path.is_empty();
    };
    match first {
        TemplatePart::Literal(text) => path
            .strip_prefix(text.as_bytes())
            .is_some_and(|tail| template_matches(rest, tail)),
        TemplatePart::One => {
            let run = path.iter().take_while(|b| is_template_literal(**b)).count();
            (1..=run).any(|n| template_matches(rest, path.get(n..).unwrap_or_default()))
        }
        TemplatePart::Any => {
            let run = path
                .iter()
                .take_while(|b| is_template_literal(**b) || **b == b'/')
                .count();
            (0..=run).any(|n| template_matches(rest, path.get(n..).unwrap_or_default()))
        }
    }
}

/// istiod's validation of a `paths` value (`security.CheckValidPathTemplate`): `{**}` only as
/// the last operator, no `{` or `}` outside `{*}`/`{**}`, and, in a template, literal segments
/// of RFC 3986 pchar only. Also refused: a template not starting with `/`, which Envoy's
/// `uri_template` refuses.
pub fn check_path_template(value: &str) -> Result<(), String> {
    let is_template = value.contains(MATCH_ONE) || value.contains(MATCH_ANY);
    let mut found_any = false;
    for glob in value.trim_matches('/').split('/') {
        match glob {
            MATCH_ONE if !found_any => continue,
            MATCH_ANY if !found_any => {
                found_any = true;
                continue;
            }
            MATCH_ONE | MATCH_ANY => return Err("`{**}` is not the last operator".into()),
            _ => {}
        }
        if glob.contains(['{', '}']) {
            return Err("contains `{` or `}` beyond a supported path template".into());
        }
        if is_template && (glob.is_empty() || !glob.bytes().all(is_template_literal)) {
            return Err(format!(
                "contains segment `{glob}` with invalid string literal"
            ));
        }
    }
    if is_template && !value.starts_with('/') {
        return Err("a path template must start with `/`".into());
    }
    Ok(())
}

/// An IP range (Envoy `CidrRange`): a single address is a /32 or /128
/// (`util.AddrStrToCidrRange`). Bits past the prefix length are ignored, as Envoy ignores them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    len: u8,
}

impl Cidr {
    /// Parses `10.1.2.3`, `10.1.0.0/16`, `2001:db8::/32` (Go's `netip.ParseAddr` and
    /// `ParsePrefix`, which `security.ValidateIPs` uses).
    pub fn parse(value: &str) -> Result<Cidr, String> {
        let (addr, len) = match value.split_once('/') {
            None => (value, None),
            Some((addr, len)) => (addr, Some(len)),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| format!("`{value}` is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let len = match len {
            None => max,
            Some(len) => len
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max && (len == "0" || !len.starts_with('0')))
                .ok_or_else(|| format!("`{value}`: bad prefix length"))?,
        };
        Ok(Cidr { addr, len })
    }

    /// Whether `ip` is in the range (same address family).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits): (u128, u128, u32) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a).into(), u32::from(b).into(), 32),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
            _ => return false,
        };
        let host_bits = bits.saturating_sub(u32::from(self.len));
        let mask = u128::MAX.checked_shl(host_bits).unwrap_or(0);
        (a & mask) == (b & mask)
    }
}

#[cfg(test)]
mod tests;
