//! Remote JWKS (`jwksUri`, and OIDC discovery for rules with neither `jwks` nor `jwksUri`):
//! what to fetch, from which Envoy cluster, and how a response is judged. Pure: [`cache`] holds
//! the per-source state machine, [`runtime`] runs fetches, shared records and paused requests
//! over a host seam, and the adapter (`proxy/jwks_host.rs`) implements that seam with host calls.
//!
//! Defaults and why:
//! - `cacheDuration` 300 s: Istio's value when Envoy fetches (`PILOT_JWT_ENABLE_REMOTE_JWKS`).
//!   Keys are refreshed in the background shortly before they expire, so after the first fetch
//!   no request waits.
//! - `maxStale` 24 h: when refreshes fail, the last good keys keep serving this long past
//!   expiry. Long enough to ride out a day-long IdP outage (istiod keeps them up to 7 days,
//!   Envoy drops them at once), short enough that a key the IdP withdrew stops verifying within
//!   a day even if the IdP stays unreachable from this proxy.
//! - retries 1 s doubling to 60 s: Envoy's `failed_refetch_duration` is 1 s; istiod caps at
//!   60 min, but a data-plane proxy that cannot verify tokens should find out sooner.
//! - `refetchInterval` 30 s: a token whose `kid` is unknown refetches at most this often per
//!   source, so a flood of forged `kid`s cannot turn into a flood of fetches (Higress uses 30 s
//!   after failures).
//! - body cap [`MAX_FETCH_BODY_BYTES`] = the JWKS parser's own cap (256 KiB): real sets are a
//!   few KiB, a larger body is refused before it is read into the VM.

pub mod cache;
pub mod runtime;
pub mod seal;

use std::collections::BTreeMap;
use std::rc::Rc;

use crate::jwt::{Jwks, JwksError};

/// The largest fetched body read (discovery document or JWKS).
pub const MAX_FETCH_BODY_BYTES: usize = crate::jwt::jwks::MAX_JWKS_BYTES;
/// Default `jwks.cacheDuration`.
pub const DEFAULT_CACHE_DURATION_MS: u64 = 300_000;
/// Default `jwks.maxStale`.
pub const DEFAULT_MAX_STALE_MS: u64 = 24 * 3600 * 1000;
/// Default `jwks.refetchInterval` (unknown `kid`).
pub const DEFAULT_REFETCH_INTERVAL_MS: u64 = 30_000;
/// Default `jwks.retryInitialInterval`.
pub const DEFAULT_RETRY_INITIAL_MS: u64 = 1_000;
/// Default `jwks.retryMaxInterval`.
pub const DEFAULT_RETRY_MAX_MS: u64 = 60_000;
/// Default `jwtRules[].timeout` (istiod's).
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5_000;
/// A refresh starts this long before the keys expire (at most half the cache duration).
pub const REFRESH_AHEAD_MS: u64 = 5_000;
/// The path istiod appends to the issuer for OIDC discovery.
pub const DISCOVERY_PATH: &str = "/.well-known/openid-configuration";

/// The `jwks:` section of the plugin configuration, compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// How long fetched keys are fresh.
    pub cache_duration_ms: u64,
    /// How long past expiry the last good keys still serve while refreshes fail.
    pub max_stale_ms: u64,
    /// Least time between two unknown-`kid` refetches of one source.
    pub refetch_interval_ms: u64,
    /// First retry delay after a failed fetch.
    pub retry_initial_ms: u64,
    /// Largest retry delay.
    pub retry_max_ms: u64,
    /// URI authority (`host:port` or `host`) ⇒ Envoy cluster.
    pub clusters: BTreeMap<String, String>,
    /// Keep symmetric (`oct`) keys found in fetched key sets (default: dropped).
    pub allow_symmetric_keys: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            cache_duration_ms: DEFAULT_CACHE_DURATION_MS,
            max_stale_ms: DEFAULT_MAX_STALE_MS,
            refetch_interval_ms: DEFAULT_REFETCH_INTERVAL_MS,
            retry_initial_ms: DEFAULT_RETRY_INITIAL_MS,
            retry_max_ms: DEFAULT_RETRY_MAX_MS,
            clusters: BTreeMap::new(),
            allow_symmetric_keys: false,
        }
    }
}

impl Settings {
    /// The delay before retry number `failures` (1-based): initial, doubling, capped.
    pub fn retry_delay_ms(&self, failures: u32) -> u64 {
        let shift = failures.saturating_sub(1).min(32);
        self.retry_initial_ms
            .saturating_mul(1u64 << shift)
            .min(self.retry_max_ms)
    }

    /// The Envoy cluster for a URI: `jwks.clusters[authority]`, else `jwks.clusters[host:port]`,
    /// else Istio's name for a `ServiceEntry` host, `outbound|<port>||<host>`.
    pub fn cluster_for(&self, uri: &HttpUri) -> String {
        let host_port = format!("{}:{}", uri.host, uri.port);
        self.clusters
            .get(&uri.authority)
            .or_else(|| self.clusters.get(&host_port))
            .cloned()
            .unwrap_or_else(|| format!("outbound|{}||{}", uri.port, uri.host))
    }
}

/// An `http://` or `https://` URL split for `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUri {
    /// The URL as written.
    pub text: String,
    /// `host[:port]` as written (the `:authority` sent).
    pub authority: String,
    /// Host, without port (brackets kept for IPv6).
    pub host: String,
    /// Port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query (`:path`), `/` when empty.
    pub path: String,
}

impl HttpUri {
    /// The headers of the GET that fetches this URL (discovery document or key set).
    pub fn get_headers(&self) -> [(&str, &str); 4] {
        [
            (":method", "GET"),
            (":path", self.path.as_str()),
            (":authority", self.authority.as_str()),
            ("accept", "application/json"),
        ]
    }

    /// Parses an absolute http(s) URL; the error says what is wrong.
    pub fn parse(text: &str) -> Result<HttpUri, String> {
        let (rest, default_port) = if let Some(r) = text.strip_prefix("https://") {
            (r, 443)
        } else if let Some(r) = text.strip_prefix("http://") {
            (r, 80)
        } else {
            return Err(format!("`{text}` is not an http:// or https:// URL"));
        };
        let rest = rest.split('#').next().unwrap_or_default();
        let (authority, path) = match rest.find(['/', '?']) {
            Some(at) => (
                rest.get(..at).unwrap_or_default(),
                rest.get(at..).unwrap_or("/"),
            ),
            None => (rest, "/"),
        };
        if authority.is_empty()
            || authority.contains('@')
            || authority.contains(char::is_whitespace)
        {
            return Err(format!("`{text}` has no usable host"));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_owned()
        };
        if path.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(format!(
                "`{text}` has spaces or control characters in its path"
            ));
        }
        // `host:port`, `[v6]:port`, `host`, `[v6]`.
        let (host, port) = match authority.rfind(':') {
            Some(at) if !authority.ends_with(']') => {
                let port = authority.get(at + 1..).unwrap_or_default();
                let port: u16 = port
                    .parse()
                    .map_err(|_| format!("`{text}` has a bad port `{port}`"))?;
                (authority.get(..at).unwrap_or_default(), port)
            }
            _ => (authority, default_port),
        };
        if host.is_empty() {
            return Err(format!("`{text}` has no host"));
        }
        Ok(HttpUri {
            text: text.to_owned(),
            authority: authority.to_owned(),
            host: host.to_owned(),
            port,
            path,
        })
    }

    /// istiod's discovery URL for an issuer: `trimSuffix(issuer, "/") + DISCOVERY_PATH`.
    pub fn discovery(issuer: &str) -> Result<HttpUri, String> {
        HttpUri::parse(&format!("{}{DISCOVERY_PATH}", issuer.trim_end_matches('/')))
    }
}

/// Where a remote key set comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceKind {
    /// `jwksUri`.
    JwksUri(HttpUri),
    /// No `jwks` and no `jwksUri`: `<issuer>/.well-known/openid-configuration`, then its
    /// `jwks_uri`.
    Discovery(HttpUri),
}

/// One remote key set, shared by every rule that names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// What to fetch first.
    pub kind: SourceKind,
    /// The fetch timeout, and the longest a request waits for these keys (largest `timeout` of
    /// the rules that use the source).
    pub timeout_ms: u64,
    /// A stable name, the same in every worker VM: the shared-data key.
    pub key: String,
}

impl Source {
    /// The first URL fetched.
    pub fn first_uri(&self) -> &HttpUri {
        match &self.kind {
            SourceKind::JwksUri(u) | SourceKind::Discovery(u) => u,
        }
    }
}

/// Index of a [`Source`] in [`RemoteJwks::sources`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceId(pub usize);

/// Every remote key set the configuration names, with the settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoteJwks {
    /// The `jwks:` section.
    pub settings: Settings,
    /// The sources, deduplicated by URL.
    pub sources: Vec<Source>,
}

impl RemoteJwks {
    /// Registers a source (or finds the same one) and returns its id; the timeout kept is the
    /// largest asked for.
    pub fn add(&mut self, kind: SourceKind, timeout_ms: u64) -> SourceId {
        let key = match &kind {
            SourceKind::JwksUri(u) => format!("jwks_uri {}", u.text),
            SourceKind::Discovery(u) => format!("discovery {}", u.text),
        };
        if let Some((i, s)) = self
            .sources
            .iter_mut()
            .enumerate()
            .find(|(_, s)| s.key == key)
        {
            s.timeout_ms = s.timeout_ms.max(timeout_ms);
            return SourceId(i);
        }
        self.sources.push(Source {
            kind,
            timeout_ms,
            key,
        });
        SourceId(self.sources.len() - 1)
    }

    /// The source with this id.
    pub fn get(&self, id: SourceId) -> Option<&Source> {
        self.sources.get(id.0)
    }
}

/// Why a fetch is started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchReason {
    /// A token needs keys that are not there.
    FirstUse,
    /// A token's `kid` is not in the set (rotation).
    UnknownKid,
    /// The keys are about to expire.
    Refresh,
    /// A previous fetch failed and its back-off elapsed.
    Retry,
}

/// A request that has to wait for a source's keys, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyWait {
    /// The source.
    pub source: SourceId,
    /// The fetch it waits for.
    pub reason: FetchReason,
}

/// What the request path learns about a remote key set.
#[derive(Debug, Clone)]
pub enum Keys {
    /// Keys to verify with (possibly stale, within `maxStale`).
    Ready(Rc<Jwks>),
    /// A fetch is running or about to start: the request should wait.
    Wait,
    /// No usable keys and no fetch will start now: `Jwks remote fetch is failed`.
    Failed,
}

/// The request path's view of the remote key sets (the adapter implements it over the cache).
pub trait RemoteKeys {
    /// The keys of a source now.
    fn keys(&self, source: SourceId) -> Keys;
    /// A token's `kid` is not in the source's set: whether to wait for a refetch (one is
    /// running, or may start now under the rate limit).
    fn refetch_for_unknown_kid(&self, source: SourceId) -> bool;
}

/// No remote key sets (native tests, configurations without `jwksUri`): every lookup fails
/// closed.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRemoteKeys;

impl RemoteKeys for NoRemoteKeys {
    fn keys(&self, _source: SourceId) -> Keys {
        Keys::Failed
    }
    fn refetch_for_unknown_kid(&self, _source: SourceId) -> bool {
        false
    }
}

/// `keys` as one paused request sees them once some of its waits ran past their timeout:
/// a source whose keys it waited for is failed (`Jwks remote fetch is failed`, native
/// `jwt_authn`'s answer for that provider), and a source whose unknown-`kid` refetch it
/// waited for is not refetched again (the token is judged by the keys there are). The
/// requirement tree then decides, as natively: another rule's valid token still passes.
pub struct TimedOut<'a> {
    /// The keys as every request sees them.
    pub keys: &'a dyn RemoteKeys,
    /// The waits that timed out.
    pub waits: &'a [KeyWait],
}

impl RemoteKeys for TimedOut<'_> {
    fn keys(&self, source: SourceId) -> Keys {
        let failed = self
            .waits
            .iter()
            .any(|w| w.source == source && w.reason != FetchReason::UnknownKid);
        if failed {
            Keys::Failed
        } else {
            self.keys.keys(source)
        }
    }
    fn refetch_for_unknown_kid(&self, source: SourceId) -> bool {
        !self.waits.iter().any(|w| w.source == source) && self.keys.refetch_for_unknown_kid(source)
    }
}

/// Why a fetch failed: one line for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// `dispatch_http_call` refused (unknown cluster, most likely).
    #[error(
        "cannot send the request to Envoy cluster `{cluster}` (host status {status}): add a \
         cluster with that name, or map `{authority}` to an existing cluster in `jwks.clusters`"
    )]
    Dispatch {
        /// The cluster tried.
        cluster: String,
        /// The URI authority.
        authority: String,
        /// The host's status.
        status: String,
    },
    /// No `:status` in the response.
    #[error("no response (connection reset or closed)")]
    NoResponse,
    /// Not 200.
    #[error("HTTP {status}{detail}")]
    Status {
        /// The status code.
        status: u32,
        /// `: <start of body>` or empty.
        detail: String,
    },
    /// Body over the cap.
    #[error("the body is {0} bytes, more than the {MAX_FETCH_BODY_BYTES} accepted")]
    TooLarge(usize),
    /// The body could not be read.
    #[error("cannot read the response body: {0}")]
    Read(String),
    /// The JWKS is unusable.
    #[error("{0}")]
    Jwks(JwksError),
    /// The discovery document is unusable.
    #[error("bad OIDC discovery document: {0}")]
    Discovery(String),
    /// Every key of the fetched set is symmetric, and those are not accepted from a fetch.
    #[error(
        "the key set has only symmetric (`oct`) keys ({0}); keys fetched from a URL must be \
         public keys unless `jwks.allowSymmetricKeys` is true"
    )]
    OnlySymmetricKeys(usize),
}

/// Judges a response's status and size before the body is read.
pub fn check_response(status: Option<&[u8]>, body_size: usize) -> Result<(), FetchError> {
    let status = status.ok_or(FetchError::NoResponse)?;
    let code: u32 = std::str::from_utf8(status)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .ok_or(FetchError::NoResponse)?;
    if code != 200 {
        return Err(FetchError::Status {
            status: code,
            detail: String::new(),
        });
    }
    if body_size > MAX_FETCH_BODY_BYTES {
        return Err(FetchError::TooLarge(body_size));
    }
    Ok(())
}

/// A short, printable start of a body for a log line.
pub fn body_snippet(body: &[u8]) -> String {
    let text: String = String::from_utf8_lossy(body)
        .chars()
        .take(80)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.trim().is_empty() {
        String::new()
    } else {
        format!(": {}", text.trim())
    }
}

/// The `jwks_uri` of an OIDC discovery document.
pub fn parse_discovery(body: &[u8]) -> Result<HttpUri, FetchError> {
    let doc = crate::jwt::json::parse_object(body)
        .ok_or_else(|| FetchError::Discovery("not a JSON object".into()))?;
    let uri = doc
        .get("jwks_uri")
        .and_then(serde_json::Value::as_str)
        .ok_or_else(|| FetchError::Discovery("no `jwks_uri` string".into()))?;
    HttpUri::parse(uri).map_err(FetchError::Discovery)
}

/// Parses a fetched JWKS body with the same parser as inline `jwks`.
pub fn parse_jwks(body: &[u8]) -> Result<Jwks, FetchError> {
    let text = std::str::from_utf8(body).map_err(|_| FetchError::Jwks(JwksError::InvalidJson))?;
    Jwks::parse(text).map_err(FetchError::Jwks)
}

/// A fetched key set as the request path may use it, and how many symmetric keys were
/// dropped. A symmetric (`oct`) key in a set anyone can download is a secret anyone can mint
/// HS* tokens with: unless `allow_symmetric_keys`, such keys are dropped (the rest of the set
/// serves), and a set with nothing else is a failed fetch.
pub fn parse_fetched_jwks(
    body: &[u8],
    allow_symmetric_keys: bool,
) -> Result<(Jwks, usize), FetchError> {
    let jwks = parse_jwks(body)?;
    if allow_symmetric_keys {
        return Ok((jwks, 0));
    }
    let (jwks, dropped) = jwks.without_symmetric_keys();
    if jwks.keys().is_empty() {
        return Err(FetchError::OnlySymmetricKeys(dropped));
    }
    Ok((jwks, dropped))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Split<'a> = Result<(&'a str, &'a str, u16, &'a str), ()>;

    #[test]
    fn uris_split_for_dispatch() {
        let cases: &[(&str, Split<'_>)] = &[
            (
                "https://idp.example/keys",
                Ok(("idp.example", "idp.example", 443, "/keys")),
            ),
            (
                "http://127.0.0.1:8080/a/b?x=1",
                Ok(("127.0.0.1:8080", "127.0.0.1", 8080, "/a/b?x=1")),
            ),
            ("http://h", Ok(("h", "h", 80, "/"))),
            ("http://h?x", Ok(("h", "h", 80, "/?x"))),
            ("http://[::1]:9/k#frag", Ok(("[::1]:9", "[::1]", 9, "/k"))),
            ("http://[::1]/k", Ok(("[::1]", "[::1]", 80, "/k"))),
            ("ftp://h/k", Err(())),
            ("https:///k", Err(())),
            ("http://h:99999/k", Err(())),
            ("http://user@h/k", Err(())),
            ("http://h/a b", Err(())),
            ("idp.example/keys", Err(())),
        ];
        for (text, want) in cases {
            let got = HttpUri::parse(text)
                .map(|u| (u.authority, u.host, u.port, u.path))
                .map_err(|_| ());
            let want = want.map(|(a, h, p, path)| (a.to_owned(), h.to_owned(), p, path.to_owned()));
            assert_eq!(got, want, "{text}");
        }
    }

    #[test]
    fn a_fetch_is_a_get_for_json_with_the_urls_path_and_authority() {
        let uri = HttpUri::parse("http://127.0.0.1:8080/a/b?x=1").unwrap();
        assert_eq!(
            uri.get_headers(),
            [
                (":method", "GET"),
                (":path", "/a/b?x=1"),
                (":authority", "127.0.0.1:8080"),
                ("accept", "application/json"),
            ]
        );
    }

    #[test]
    fn discovery_url_is_istiods() {
        assert_eq!(
            HttpUri::discovery("https://accounts.google.com/")
                .unwrap()
                .text,
            "https://accounts.google.com/.well-known/openid-configuration"
        );
        assert_eq!(
            HttpUri::discovery("http://127.0.0.1:5/realms/r")
                .unwrap()
                .path,
            "/realms/r/.well-known/openid-configuration"
        );
        assert!(HttpUri::discovery("testing@secure.istio.io").is_err());
    }

    #[test]
    fn cluster_mapping_then_istio_naming() {
        let mut s = Settings::default();
        s.clusters.insert("idp.example:443".into(), "idp".into());
        s.clusters.insert("127.0.0.1:9000".into(), "local".into());
        let c = |u: &str| s.cluster_for(&HttpUri::parse(u).unwrap());
        assert_eq!(c("https://idp.example/k"), "idp");
        assert_eq!(c("https://idp.example:443/k"), "idp");
        assert_eq!(c("http://127.0.0.1:9000/k"), "local");
        assert_eq!(c("http://idp.example/k"), "outbound|80||idp.example");
        assert_eq!(
            c("https://other.example:8443/k"),
            "outbound|8443||other.example"
        );
    }

    #[test]
    fn retry_backoff_doubles_to_the_cap() {
        let s = Settings::default();
        let delays: Vec<u64> = (1..=9).map(|n| s.retry_delay_ms(n)).collect();
        assert_eq!(
            delays,
            [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000, 60_000]
        );
        assert_eq!(s.retry_delay_ms(u32::MAX), 60_000);
    }

    #[test]
    fn responses_are_judged_before_reading() {
        assert_eq!(check_response(Some(b"200"), 10), Ok(()));
        assert_eq!(check_response(None, 0), Err(FetchError::NoResponse));
        assert_eq!(
            check_response(Some(b"500"), 3),
            Err(FetchError::Status {
                status: 500,
                detail: String::new()
            })
        );
        assert_eq!(
            check_response(Some(b"200"), 10 << 20),
            Err(FetchError::TooLarge(10 << 20))
        );
        assert_eq!(check_response(Some(b"200"), MAX_FETCH_BODY_BYTES), Ok(()));
    }

    #[test]
    fn discovery_documents() {
        let ok = br#"{"issuer":"https://i","jwks_uri":"https://i/certs"}"#;
        assert_eq!(parse_discovery(ok).unwrap().path, "/certs");
        assert!(parse_discovery(b"<html>").is_err());
        assert!(parse_discovery(br#"{"jwks_uri":5}"#).is_err());
        assert!(parse_discovery(br#"{"jwks_uri":"file:///etc/passwd"}"#).is_err());
    }

    #[test]
    fn timed_out_waits_fail_their_source_or_end_its_refetch() {
        /// Every source is being fetched.
        struct Fetching;
        impl RemoteKeys for Fetching {
            fn keys(&self, _: SourceId) -> Keys {
                Keys::Wait
            }
            fn refetch_for_unknown_kid(&self, _: SourceId) -> bool {
                true
            }
        }
        let waits = [
            KeyWait {
                source: SourceId(0),
                reason: FetchReason::FirstUse,
            },
            KeyWait {
                source: SourceId(1),
                reason: FetchReason::UnknownKid,
            },
        ];
        let t = TimedOut {
            keys: &Fetching,
            waits: &waits,
        };
        let kind = |k: Keys| match k {
            Keys::Ready(_) => "ready",
            Keys::Wait => "wait",
            Keys::Failed => "failed",
        };
        // The keys it waited for: a failed fetch.
        assert_eq!(kind(t.keys(SourceId(0))), "failed");
        assert!(!t.refetch_for_unknown_kid(SourceId(0)));
        // The refetch it waited for: no other, the keys as they are.
        assert_eq!(kind(t.keys(SourceId(1))), "wait");
        assert!(!t.refetch_for_unknown_kid(SourceId(1)));
        // Other sources: untouched.
        assert_eq!(kind(t.keys(SourceId(2))), "wait");
        assert!(t.refetch_for_unknown_kid(SourceId(2)));
    }

    #[test]
    fn symmetric_keys_in_fetched_sets_are_dropped_unless_allowed() {
        // RFC 7517 A.1 EC key and A.3 symmetric keys (the first with `alg: HS256` in place of
        // A128KW, which is no signature algorithm).
        let ec = r#"{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1"}"#;
        let oct = r#"{"kty":"oct","alg":"HS256","k":"GawgguFyGrWKav7AX4VKUg"},{"kty":"oct","k":"AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow","kid":"HMAC key used in JWS spec Appendix A.1 example"}"#;
        let mixed = format!(r#"{{"keys":[{oct},{ec}]}}"#);
        let (jwks, dropped) = parse_fetched_jwks(mixed.as_bytes(), false).unwrap();
        assert_eq!(dropped, 2);
        assert_eq!(jwks.keys().len(), 1);
        assert_eq!(jwks.keys()[0].kid, "1");
        let (jwks, dropped) = parse_fetched_jwks(mixed.as_bytes(), true).unwrap();
        assert_eq!((jwks.keys().len(), dropped), (3, 0));
        let only = format!(r#"{{"keys":[{oct}]}}"#);
        assert_eq!(
            parse_fetched_jwks(only.as_bytes(), false).unwrap_err(),
            FetchError::OnlySymmetricKeys(2)
        );
        assert!(parse_fetched_jwks(only.as_bytes(), true).is_ok());
        // Inline sets keep them: the parser itself drops nothing.
        assert_eq!(Jwks::parse(&only).unwrap().keys().len(), 2);
    }

    #[test]
    fn sources_are_shared_by_url_with_the_longest_timeout() {
        let mut r = RemoteJwks::default();
        let u = |t| SourceKind::JwksUri(HttpUri::parse(t).unwrap());
        let a = r.add(u("http://h/k"), 5_000);
        let b = r.add(u("http://h/k"), 7_000);
        let c = r.add(u("http://h/other"), 1_000);
        let d = r.add(
            SourceKind::Discovery(HttpUri::discovery("http://h").unwrap()),
            1,
        );
        assert_eq!((a, b), (SourceId(0), SourceId(0)));
        assert_eq!((c, d), (SourceId(1), SourceId(2)));
        assert_eq!(r.sources[0].timeout_ms, 7_000);
        assert_ne!(r.sources[0].key, r.sources[2].key);
    }
}
