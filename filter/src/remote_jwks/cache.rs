//! The per-source state machine, as pure functions of `(state, event, now)`.
//!
//! Envoy runs one VM per worker thread. The state of each source lives in proxy-wasm shared
//! data as a [`Shared`] record written with compare-and-swap, so every VM sees one truth: who
//! is fetching (a lease), the last good key set (version, time, digest), failures and back-off,
//! and the unknown-`kid` rate limit. The fetched body is stored next to it once per change
//! ([`encode_body`]); each VM parses it once into its [`JwksCache`] and requests read only that.
//! Both records are stored sealed ([`super::seal`]): named and MACed with a key of the
//! configuration, since other plugins share the namespace.
//! Time is milliseconds, passed in.

use std::rc::Rc;

use super::{FetchReason, Keys, RemoteJwks, RemoteKeys, Settings, SourceId, REFRESH_AHEAD_MS};
use crate::jwt::Jwks;

/// The first line of a shared record: its format, so a record written by another version of
/// the filter sharing the VM id is read as absent rather than misread.
const RECORD_FORMAT: &str = "mesh-authn jwks state 1";

/// One source's state, shared by all worker VMs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Shared {
    /// Version of the last good body (0: none yet); bumped only when the body changes.
    pub version: u64,
    /// When the last good body was fetched (or re-fetched unchanged).
    pub fetched_at: u64,
    /// Digest of the last good body.
    pub digest: String,
    /// Discovery sources: the `jwks_uri` learned (empty: discover first).
    pub jwks_uri: String,
    /// A fetch is running until this time (its timeout plus a margin); 0: none.
    pub lease_until: u64,
    /// Consecutive failed fetches.
    pub failures: u32,
    /// No fetch before this time (back-off after a failure).
    pub retry_at: u64,
    /// The last failure, for the log.
    pub error: String,
    /// When the last unknown-`kid` refetch started.
    pub kid_refetch_at: u64,
    /// A request has needed this source: background refresh and retries apply.
    pub used: bool,
}

impl Shared {
    /// Decodes a record; `None` if the bytes are not one.
    pub fn decode(bytes: &[u8]) -> Option<Shared> {
        let text = std::str::from_utf8(bytes).ok()?;
        // Ten lines, then the error text (which may hold anything) as the rest.
        let mut f = text.splitn(11, '\n');
        if f.next()? != RECORD_FORMAT {
            return None;
        }
        let mut num = || f.next()?.parse::<u64>().ok();
        let version = num()?;
        let fetched_at = num()?;
        let lease_until = num()?;
        let failures = u32::try_from(num()?).ok()?;
        let retry_at = num()?;
        let kid_refetch_at = num()?;
        let used = num()? == 1;
        Some(Shared {
            version,
            fetched_at,
            lease_until,
            failures,
            retry_at,
            kid_refetch_at,
            used,
            digest: f.next()?.to_owned(),
            jwks_uri: f.next()?.to_owned(),
            error: f.next()?.to_owned(),
        })
    }

    /// Encodes the record (a few lines of text: small, and no serializer in the artifact).
    pub fn encode(&self) -> Vec<u8> {
        format!(
            "{RECORD_FORMAT}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}\n{}",
            self.version,
            self.fetched_at,
            self.lease_until,
            self.failures,
            self.retry_at,
            self.kid_refetch_at,
            u8::from(self.used),
            self.digest.replace('\n', " "),
            self.jwks_uri.replace('\n', " "),
            self.error
        )
        .into_bytes()
    }

    /// Whether a fetch is running.
    pub fn in_flight(&self, now: u64) -> bool {
        self.lease_until > now
    }

    /// Until when the last good keys may serve.
    pub fn usable_until(&self, s: &Settings) -> u64 {
        self.fetched_at
            .saturating_add(s.cache_duration_ms)
            .saturating_add(s.max_stale_ms)
    }

    /// When a background refresh starts: shortly before the keys expire.
    pub fn refresh_at(&self, s: &Settings) -> u64 {
        let ahead = REFRESH_AHEAD_MS.min(s.cache_duration_ms / 2);
        self.fetched_at
            .saturating_add(s.cache_duration_ms)
            .saturating_sub(ahead)
    }

    /// Whether a fetch for `reason` may start now.
    pub fn may_start(&self, reason: FetchReason, now: u64, s: &Settings) -> bool {
        if self.in_flight(now) || now < self.retry_at {
            return false;
        }
        match reason {
            // A request queued before the keys arrived must not fetch them again.
            FetchReason::FirstUse => self.version == 0 || now >= self.usable_until(s),
            FetchReason::UnknownKid => {
                self.kid_refetch_at == 0
                    || now >= self.kid_refetch_at.saturating_add(s.refetch_interval_ms)
            }
            FetchReason::Refresh => self.version > 0 && now >= self.refresh_at(s),
            FetchReason::Retry => self.failures > 0,
        }
    }

    /// The record with a lease taken for `lease_ms`, if a fetch for `reason` may start.
    pub fn start(
        &self,
        reason: FetchReason,
        now: u64,
        lease_ms: u64,
        s: &Settings,
    ) -> Option<Shared> {
        if !self.may_start(reason, now, s) {
            return None;
        }
        let mut next = self.clone();
        next.lease_until = now.saturating_add(lease_ms.max(1));
        next.used = true;
        if reason == FetchReason::UnknownKid {
            next.kid_refetch_at = now;
        }
        Some(next)
    }

    /// The record after a successful fetch of a body with `digest`.
    pub fn succeeded(&self, now: u64, digest: &str, jwks_uri: &str) -> Shared {
        let mut next = self.clone();
        if self.version == 0 || self.digest != digest {
            next.version = self.version.saturating_add(1);
            next.digest = digest.to_owned();
        }
        next.fetched_at = now;
        next.jwks_uri = jwks_uri.to_owned();
        next.lease_until = 0;
        next.failures = 0;
        next.retry_at = 0;
        next.error.clear();
        next
    }

    /// The record after a failed fetch: back off, and rediscover next time.
    pub fn failed(&self, now: u64, error: &str, s: &Settings) -> Shared {
        let mut next = self.clone();
        next.failures = self.failures.saturating_add(1);
        next.retry_at = now.saturating_add(s.retry_delay_ms(next.failures));
        next.error = error.to_owned();
        next.lease_until = 0;
        next.jwks_uri.clear();
        next
    }

    /// The background fetch due now, if any.
    pub fn due(&self, now: u64, s: &Settings) -> Option<FetchReason> {
        if !self.used || self.in_flight(now) {
            return None;
        }
        if self.failures > 0 {
            return (now >= self.retry_at).then_some(FetchReason::Retry);
        }
        (self.version > 0 && now >= self.refresh_at(s)).then_some(FetchReason::Refresh)
    }

    /// When something is next due for this source (lease end, retry, refresh).
    pub fn next_event(&self, now: u64, s: &Settings) -> Option<u64> {
        if !self.used {
            None
        } else if self.in_flight(now) {
            Some(self.lease_until)
        } else if self.failures > 0 {
            Some(self.retry_at)
        } else if self.version > 0 {
            Some(self.refresh_at(s))
        } else {
            None
        }
    }
}

/// The shared body record: `<version>\n<body>`.
pub fn encode_body(version: u64, body: &[u8]) -> Vec<u8> {
    let mut out = format!("{version}\n").into_bytes();
    out.extend_from_slice(body);
    out
}

/// Splits a shared body record into its version and body.
pub fn decode_body(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let nl = bytes.iter().position(|&b| b == b'\n')?;
    let version = std::str::from_utf8(bytes.get(..nl)?).ok()?.parse().ok()?;
    Some((version, bytes.get(nl + 1..)?))
}

/// A short digest of a body, to tell a changed key set from the same one fetched again.
pub fn digest(body: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(body)
        .iter()
        .take(12)
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// What one VM knows of a source: the shared record as last read, and its parsed keys.
#[derive(Debug, Clone, Default)]
struct Entry {
    shared: Shared,
    keys: Option<Rc<Jwks>>,
    keys_version: u64,
    keys_fetched_at: u64,
    expiry_noticed: bool,
}

/// One VM's view of every remote key set.
#[derive(Debug, Clone)]
pub struct JwksCache {
    settings: Settings,
    entries: Vec<Entry>,
}

impl JwksCache {
    /// An empty cache for the configured sources.
    pub fn new(remote: &RemoteJwks) -> JwksCache {
        JwksCache {
            settings: remote.settings.clone(),
            entries: vec![Entry::default(); remote.sources.len()],
        }
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The shared record of a source as last read.
    pub fn shared(&self, id: SourceId) -> Option<&Shared> {
        self.entries.get(id.0).map(|e| &e.shared)
    }

    /// The version of the parsed keys (0: none).
    pub fn keys_version(&self, id: SourceId) -> u64 {
        self.entries.get(id.0).map_or(0, |e| e.keys_version)
    }

    /// Whether the shared record names a newer body than the parsed keys.
    pub fn needs_body(&self, id: SourceId) -> bool {
        self.entries
            .get(id.0)
            .is_some_and(|e| e.shared.version > e.keys_version)
    }

    /// Records the shared state just read; `true` if it differs from what was known.
    pub fn observe(&mut self, id: SourceId, shared: Shared) -> bool {
        let Some(e) = self.entries.get_mut(id.0) else {
            return false;
        };
        if shared.version == e.keys_version && e.keys.is_some() {
            e.keys_fetched_at = e.keys_fetched_at.max(shared.fetched_at);
        }
        let changed = e.shared != shared;
        e.shared = shared;
        changed
    }

    /// Installs parsed keys of `version`, fetched at `fetched_at`.
    pub fn install(&mut self, id: SourceId, version: u64, fetched_at: u64, keys: Rc<Jwks>) {
        if let Some(e) = self.entries.get_mut(id.0) {
            if version >= e.keys_version {
                e.keys = Some(keys);
                e.keys_version = version;
                e.keys_fetched_at = fetched_at;
                e.expiry_noticed = false;
            }
        }
    }

    /// The keys of a source at `now`.
    pub fn keys(&self, id: SourceId, now: u64) -> Keys {
        let Some(e) = self.entries.get(id.0) else {
            return Keys::Failed;
        };
        if let Some(keys) = &e.keys {
            let until = e
                .keys_fetched_at
                .saturating_add(self.settings.cache_duration_ms)
                .saturating_add(self.settings.max_stale_ms);
            if now < until {
                return Keys::Ready(Rc::clone(keys));
            }
        }
        if e.shared.in_flight(now)
            || e.shared
                .may_start(FetchReason::FirstUse, now, &self.settings)
        {
            Keys::Wait
        } else {
            Keys::Failed
        }
    }

    /// Whether a token with an unknown `kid` should wait for a refetch of the source.
    pub fn refetch_for_unknown_kid(&self, id: SourceId, now: u64) -> bool {
        self.entries.get(id.0).is_some_and(|e| {
            e.shared.in_flight(now)
                || e.shared
                    .may_start(FetchReason::UnknownKid, now, &self.settings)
        })
    }

    /// `true` once when the source's last good keys pass `maxStale` (for one log line).
    pub fn notice_expiry(&mut self, id: SourceId, now: u64) -> bool {
        let max = self.settings.cache_duration_ms + self.settings.max_stale_ms;
        match self.entries.get_mut(id.0) {
            Some(e)
                if e.keys.is_some()
                    && !e.expiry_noticed
                    && now >= e.keys_fetched_at.saturating_add(max) =>
            {
                e.expiry_noticed = true;
                true
            }
            _ => false,
        }
    }

    /// The view requests verify through, at `now`.
    pub fn view(&self, now: u64) -> CacheView<'_> {
        CacheView { cache: self, now }
    }
}

/// [`JwksCache`] at one instant, as the request path sees it.
pub struct CacheView<'a> {
    cache: &'a JwksCache,
    now: u64,
}

impl RemoteKeys for CacheView<'_> {
    fn keys(&self, source: SourceId) -> Keys {
        self.cache.keys(source, self.now)
    }
    fn refetch_for_unknown_kid(&self, source: SourceId) -> bool {
        self.cache.refetch_for_unknown_kid(source, self.now)
    }
}

/// A log line for a fetch that ended, only when the state changed (first keys, changed keys,
/// recovery, a new kind of failure); `None` for a repeat.
pub fn outcome_log(
    old: &Shared,
    new: &Shared,
    now: u64,
    s: &Settings,
    what: &str,
) -> Option<(log::Level, String)> {
    if new.failures == 0 {
        let line = if old.version == 0 {
            format!("JWKS {what}: fetched")
        } else if old.version != new.version {
            format!("JWKS {what}: key set changed")
        } else if old.failures > 0 {
            format!("JWKS {what}: fetched again after {} failures", old.failures)
        } else {
            return None;
        };
        return Some((log::Level::Info, line));
    }
    if old.failures > 0 && old.error == new.error {
        return None;
    }
    let serving = if new.version > 0 && now < new.usable_until(s) {
        format!(
            "serving the last good keys (fetched {} s ago) for at most {} s more",
            now.saturating_sub(new.fetched_at) / 1000,
            new.usable_until(s).saturating_sub(now) / 1000
        )
    } else {
        "no usable keys: tokens are rejected (401 Jwks remote fetch is failed), requests \
         without a token pass"
            .to_owned()
    };
    Some((
        log::Level::Warn,
        format!(
            "JWKS {what}: fetch failed: {}; {serving}; retrying with back-off (next in {} ms)",
            new.error,
            new.retry_at.saturating_sub(now)
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remote_jwks::{HttpUri, SourceKind};

    const S: u64 = 1000;

    fn settings() -> Settings {
        Settings {
            cache_duration_ms: 300 * S,
            max_stale_ms: 3600 * S,
            ..Settings::default()
        }
    }

    fn jwks() -> Rc<Jwks> {
        // RFC 7517 A.1 EC key.
        Rc::new(
            Jwks::parse(
                r#"{"keys":[{"kty":"EC","crv":"P-256","x":"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4","y":"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM","kid":"1"}]}"#,
            )
            .unwrap(),
        )
    }

    fn cache() -> JwksCache {
        let mut r = RemoteJwks {
            settings: settings(),
            ..RemoteJwks::default()
        };
        r.add(
            SourceKind::JwksUri(HttpUri::parse("http://idp/keys").unwrap()),
            5 * S,
        );
        JwksCache::new(&r)
    }

    fn kind(k: &Keys) -> &'static str {
        match k {
            Keys::Ready(_) => "ready",
            Keys::Wait => "wait",
            Keys::Failed => "failed",
        }
    }

    const ID: SourceId = SourceId(0);

    /// Events on one source, each at a time; after each, what a token sees.
    enum Ev {
        Start(FetchReason, bool),
        Ok(&'static str),
        Fail(&'static str),
        Due(Option<FetchReason>),
        Sees(&'static str),
        KidRefetch(bool),
    }

    fn run(events: &[(u64, Ev)]) {
        let s = settings();
        let mut c = cache();
        let mut shared = Shared::default();
        for (i, (t, ev)) in events.iter().enumerate() {
            let now = t * S;
            match ev {
                Ev::Start(reason, expect) => {
                    let next = shared.start(*reason, now, 6 * S, &s);
                    assert_eq!(
                        next.is_some(),
                        *expect,
                        "step {i}: start {reason:?} at {t}s"
                    );
                    if let Some(n) = next {
                        shared = n;
                    }
                }
                Ev::Ok(body) => {
                    shared = shared.succeeded(now, &digest(body.as_bytes()), "");
                    c.install(ID, shared.version, now, jwks());
                }
                Ev::Fail(e) => shared = shared.failed(now, e, &s),
                Ev::Due(want) => assert_eq!(shared.due(now, &s), *want, "step {i}: due at {t}s"),
                Ev::Sees(want) => {
                    assert_eq!(kind(&c.view(now).keys(ID)), *want, "step {i}: keys at {t}s")
                }
                Ev::KidRefetch(want) => assert_eq!(
                    c.view(now).refetch_for_unknown_kid(ID),
                    *want,
                    "step {i}: kid refetch at {t}s"
                ),
            }
            c.observe(ID, shared.clone());
        }
    }

    #[test]
    fn first_use_waits_then_cache_then_background_refresh() {
        use Ev::*;
        use FetchReason::*;
        run(&[
            (0, Due(None)), // unused sources are never fetched
            (0, Sees("wait")),
            (0, Start(FirstUse, true)),
            (1, Start(FirstUse, false)), // one fetch for all waiters
            (1, Sees("wait")),
            (2, Ok("v1")),
            (2, Sees("ready")),
            (3, Start(FirstUse, false)), // a request queued before the keys came
            (100, Due(None)),
            (296, Due(None)),
            (297, Due(Some(Refresh))), // 5 s before expiry
            (297, Start(Refresh, true)),
            (298, Due(None)),
            (298, Sees("ready")),
            (299, Ok("v1")),
            (500, Sees("ready")),
            (593, Due(None)),
            (594, Due(Some(Refresh))),
        ]);
    }

    #[test]
    fn failed_refresh_serves_stale_keys_with_backoff_then_fails_closed() {
        use Ev::*;
        use FetchReason::*;
        run(&[
            (0, Start(FirstUse, true)),
            (0, Ok("v1")),
            (295, Start(Refresh, true)),
            (296, Fail("HTTP 500")),
            (296, Sees("ready")),
            (296, Due(None)),
            (297, Due(Some(Retry))), // 1 s
            (297, Start(Retry, true)),
            (297, Fail("HTTP 500")),
            (298, Due(None)),
            (299, Due(Some(Retry))), // 2 s
            (299, Start(Retry, true)),
            (299, Fail("HTTP 500")),
            (302, Due(None)),
            (303, Due(Some(Retry))), // 4 s
            (3899, Sees("ready")),
            (3900, Sees("wait")), // past cacheDuration + maxStale; a retry may start
            (3900, Start(FirstUse, true)),
            (3901, Fail("HTTP 500")),
            (3901, Sees("failed")), // in back-off, no keys: 401
            (3901, KidRefetch(false)),
        ]);
    }

    #[test]
    fn no_keys_and_failure_fails_closed_until_the_retry() {
        use Ev::*;
        use FetchReason::*;
        run(&[
            (0, Start(FirstUse, true)),
            (5, Fail("HTTP 503")),
            (5, Sees("failed")),
            (5, Start(FirstUse, false)),
            (6, Sees("wait")),
            (6, Due(Some(Retry))),
            (6, Start(Retry, true)),
            (7, Fail("HTTP 503")),
            (8, Sees("failed")),
            (9, Sees("wait")),
            (9, Start(FirstUse, true)),
            (9, Ok("v1")),
            (9, Sees("ready")),
            (9, Due(None)),
        ]);
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        use Ev::*;
        use FetchReason::*;
        run(&[
            (0, Start(FirstUse, true)),
            (0, Ok("v1")),
            (10, KidRefetch(true)),
            (10, Start(UnknownKid, true)),
            (10, KidRefetch(true)), // in flight: wait for it
            (11, Ok("v2")),
            (11, KidRefetch(false)),
            (39, Start(UnknownKid, false)),
            (40, KidRefetch(true)),
            (40, Start(UnknownKid, true)),
            (41, Fail("HTTP 500")),
            (41, KidRefetch(false)), // in back-off
            (71, KidRefetch(true)),
        ]);
    }

    #[test]
    fn an_abandoned_lease_expires() {
        let s = settings();
        let a = Shared::default()
            .start(FetchReason::FirstUse, 0, 6 * S, &s)
            .unwrap();
        assert!(a.start(FetchReason::FirstUse, 5 * S, 6 * S, &s).is_none());
        assert!(a.start(FetchReason::FirstUse, 6 * S, 6 * S, &s).is_some());
    }

    #[test]
    fn the_version_changes_only_with_the_body() {
        let s = settings();
        let a = Shared::default().succeeded(1, &digest(b"a"), "");
        let b = a.succeeded(2, &digest(b"a"), "");
        let c = b.succeeded(3, &digest(b"b"), "");
        assert_eq!((a.version, b.version, c.version), (1, 1, 2));
        assert_eq!(b.fetched_at, 2);
        let f = c.failed(4, "x", &s);
        assert_eq!((f.version, f.failures, f.retry_at), (2, 1, 4 + S));
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let a = Shared {
            version: 3,
            fetched_at: 17,
            digest: "ab12".into(),
            jwks_uri: "http://h/k".into(),
            lease_until: 5,
            failures: 2,
            retry_at: 9,
            error: "HTTP 500: \"x\"\nsecond line".into(),
            kid_refetch_at: 4,
            used: true,
        };
        assert_eq!(Shared::decode(&a.encode()), Some(a.clone()));
        assert_eq!(
            Shared::decode(&Shared::default().encode()),
            Some(Shared::default())
        );
        assert_eq!(Shared::decode(b"\xff"), None);
        assert_eq!(Shared::decode(b"{\"version\":3}"), None);
        let text = String::from_utf8(a.encode()).unwrap();
        for cut in 0..text.find("\"x\"").unwrap() {
            if text
                .get(..cut)
                .is_some_and(|t| t.matches('\n').count() < 10)
            {
                assert_eq!(
                    Shared::decode(&text.as_bytes()[..cut]),
                    None,
                    "cut at {cut}"
                );
            }
        }
        let body = encode_body(7, b"{\"keys\":[]}\n");
        assert_eq!(decode_body(&body), Some((7, &b"{\"keys\":[]}\n"[..])));
        assert_eq!(decode_body(b"x\n{}"), None);
        assert_eq!(decode_body(b"7"), None);
    }

    /// Two VMs over one compare-and-swap store: only one fetch starts, the other sees it.
    #[test]
    fn two_vms_one_fetch() {
        let s = settings();
        let mut store: (Vec<u8>, u32) = (Shared::default().encode(), 1);
        let read = |store: &(Vec<u8>, u32)| (Shared::decode(&store.0).unwrap(), store.1);
        let (a_seen, a_cas) = read(&store);
        let (b_seen, b_cas) = read(&store);
        let mut write = |value: Shared, cas: u32| {
            if cas != store.1 {
                return false;
            }
            store = (value.encode(), store.1 + 1);
            true
        };
        let a_next = a_seen.start(FetchReason::FirstUse, 0, 6 * S, &s).unwrap();
        let b_next = b_seen.start(FetchReason::FirstUse, 0, 6 * S, &s).unwrap();
        assert!(write(a_next, a_cas));
        assert!(!write(b_next, b_cas), "b's CAS must fail");
        let (b_again, _) = read(&store);
        assert!(b_again.start(FetchReason::FirstUse, 0, 6 * S, &s).is_none());
        let mut b = cache();
        b.observe(ID, b_again);
        assert_eq!(kind(&b.view(1).keys(ID)), "wait");
    }

    #[test]
    fn outcome_logs_only_on_change() {
        let s = settings();
        let none = Shared::default();
        let ok = none.succeeded(0, "d1", "");
        assert!(outcome_log(&none, &ok, 0, &s, "u")
            .unwrap()
            .1
            .contains("fetched"));
        assert!(outcome_log(&ok, &ok.succeeded(5, "d1", ""), 5, &s, "u").is_none());
        let changed = ok.succeeded(5, "d2", "");
        assert!(outcome_log(&ok, &changed, 5, &s, "u")
            .unwrap()
            .1
            .contains("changed"));
        let f1 = changed.failed(10, "HTTP 500", &s);
        let (level, line) = outcome_log(&changed, &f1, 10, &s, "u").unwrap();
        assert_eq!(level, log::Level::Warn);
        assert!(line.contains("serving the last good keys"), "{line}");
        let f2 = f1.failed(11, "HTTP 500", &s);
        assert!(outcome_log(&f1, &f2, 11, &s, "u").is_none());
        let f3 = f2.failed(12, "no response (connection reset or closed)", &s);
        assert!(outcome_log(&f2, &f3, 12, &s, "u").is_some());
        let cold = none.failed(0, "HTTP 404", &s);
        assert!(outcome_log(&none, &cold, 0, &s, "u")
            .unwrap()
            .1
            .contains("no usable keys"));
    }

    /// A genuine but older record read back (replayed) never replaces newer keys.
    #[test]
    fn a_replayed_older_version_does_not_downgrade_the_keys() {
        let mut c = cache();
        c.install(ID, 2, 10, jwks());
        c.observe(
            ID,
            Shared {
                version: 1,
                fetched_at: 5,
                ..Shared::default()
            },
        );
        assert!(!c.needs_body(ID));
        c.install(ID, 1, 20, jwks());
        assert_eq!(c.keys_version(ID), 2);
    }

    #[test]
    fn expiry_is_noticed_once() {
        let mut c = cache();
        c.install(ID, 1, 0, jwks());
        let end = (300 + 3600) * S;
        assert!(!c.notice_expiry(ID, end - 1));
        assert!(c.notice_expiry(ID, end));
        assert!(!c.notice_expiry(ID, end + 1));
    }
}
