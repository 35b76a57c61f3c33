//! The remote-JWKS runtime of one configuration in one VM, over a host seam ([`JwksHost`]):
//! when to fetch, the shared-data records across worker VMs, paused requests and the tick.
//! The adapter (`proxy/jwks_host.rs`) implements the seam with host calls; the tests
//! (`tests/jwks_runtime.rs`) with a fake host.
//!
//! - Fetches are dispatched from the root context only (in `on_tick`), so a fetch outlives the
//!   request that asked for it and its response comes back to the root. A request that needs
//!   keys records what it waits for and sets the root's tick to 1 ms, which wakes the root at
//!   once.
//! - Paused requests are re-decided through the seam ([`JwksHost::redecide`]); the runtime
//!   never knows how a request is decided, only what became of it.
//! - Worker VMs share one [`Shared`] record per source in shared data: a fetch starts only
//!   after a compare-and-swap takes its lease, so the IdP sees one fetch per source per refresh
//!   whatever `--concurrency` is; the other VMs read the stored body and parse it once.
//! - Shared data is open to every plugin with the same `vm_id`: records are named and sealed
//!   with a key of this configuration ([`Seal`]); one that does not verify is read as absent.

use std::collections::BTreeMap;
use std::rc::Rc;

use super::cache::{decode_body, digest, encode_body, outcome_log, CacheView, JwksCache, Shared};
use super::seal::Seal;
use super::{
    body_snippet, check_response, parse_discovery, parse_fetched_jwks, FetchError, FetchReason,
    HttpUri, KeyWait, RemoteJwks, RemoteKeys, Source, SourceId, SourceKind, TimedOut,
};
use crate::jwt::{AuthnStatus, Jwks};

/// Tick while requests wait on another VM's fetch: how often shared data is polled.
pub const WAITING_TICK_MS: u64 = 20;
/// Longest tick: how soon a VM notices keys another VM fetched.
pub const IDLE_TICK_MS: u64 = 1000;
/// Lease margin past the fetch timeout.
pub const LEASE_MARGIN_MS: u64 = 1000;
/// Compare-and-swap attempts before giving up on a write (it is retried on the next tick).
pub const CAS_ATTEMPTS: usize = 8;
/// How much of a non-200 body is read, for the log line.
const ERROR_BODY_BYTES: usize = 80;

/// Why a shared-data write failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedWriteError {
    /// The record changed since it was read (compare-and-swap lost): read it again.
    CasMismatch,
    /// The host refused the write (the text is its status, for the log).
    Refused(String),
}

impl core::fmt::Display for SharedWriteError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            // The host's own name for the status, as the other host statuses are logged.
            SharedWriteError::CasMismatch => f.write_str("CasMismatch (8)"),
            SharedWriteError::Refused(status) => f.write_str(status),
        }
    }
}

/// What became of a paused request decided again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Redecided {
    /// Allowed and resumed.
    Continued,
    /// Answered locally (denied or refused).
    Answered,
    /// It still needs keys: these.
    Wait(KeyWait),
    /// The request is gone (its stream ended): nothing to do.
    Gone,
}

/// What the runtime needs from the host. Every method is a host call or a decision the
/// runtime leaves to the adapter (how a request is decided); none decides anything about
/// fetching or caching.
pub trait JwksHost {
    /// A shared-data record and its CAS token; `Ok(None)` when absent, `Err` (the host's
    /// status, for the log) when it cannot be read.
    fn get_shared(&self, name: &str) -> Result<Option<(Vec<u8>, u32)>, String>;
    /// Writes a shared-data record if its CAS token is still `cas` (0: unconditionally).
    fn set_shared(&mut self, name: &str, value: &[u8], cas: u32) -> Result<(), SharedWriteError>;
    /// Dispatches `GET uri` to `cluster` as the root context; the call's token, or the host's
    /// status as text.
    fn dispatch(&mut self, cluster: &str, uri: &HttpUri, timeout_ms: u64) -> Result<u32, String>;
    /// The `:status` of the call response being handled; `None` when there is none (a reset).
    fn response_status(&self) -> Option<Vec<u8>>;
    /// The first `len` bytes of the call response being handled.
    fn response_body(&self, len: usize) -> Result<Vec<u8>, String>;
    /// Decides the paused request `context_id` again with `remote` and applies the decision
    /// (resumes it, answers it, or reports what it still waits for).
    fn redecide(&mut self, context_id: u32, remote: &dyn RemoteKeys, now: u64) -> Redecided;
    /// Answers the paused request `context_id` with Envoy's reply for `status`.
    fn fail_waiter(&mut self, context_id: u32, status: AuthnStatus);
    /// Sets the root's tick period.
    fn set_tick(&mut self, ms: u64);
}

enum Step {
    Discovery,
    Jwks(HttpUri),
}

struct Call {
    source: SourceId,
    step: Step,
}

struct Waiter {
    context_id: u32,
    /// When the request started waiting: each source's timeout counts from there, as native
    /// `jwt_authn` fetches every provider's keys at once.
    since: u64,
    deadline: u64,
    wait: KeyWait,
    seen: (Shared, u64),
    /// Waits that ran past their deadline: decided as failed fetches from then on.
    timed_out: Vec<KeyWait>,
}

/// The shared-data names of one source's records.
struct Names {
    state: String,
    body: String,
}

/// How a compare-and-swap update ended.
enum Update {
    /// Written: the record before and after.
    Written(Box<(Shared, Shared)>),
    /// The update declined (e.g. another VM holds the lease).
    Declined,
    /// The record could not be read or written.
    Failed,
}

impl Update {
    fn written(self) -> Option<(Shared, Shared)> {
        match self {
            Update::Written(both) => Some(*both),
            Update::Declined | Update::Failed => None,
        }
    }
}

/// A fetched key set ready to install: keys, symmetric keys dropped, body, URL fetched.
type Fetched = (Jwks, usize, Vec<u8>, HttpUri);

/// One configuration's remote-JWKS state in one VM.
pub struct JwksRuntime {
    remote: RemoteJwks,
    seal: Seal,
    names: Vec<Names>,
    cache: JwksCache,
    calls: BTreeMap<u32, Call>,
    waiters: Vec<Waiter>,
    wanted: Vec<KeyWait>,
    tick_ms: u64,
}

impl JwksRuntime {
    /// The runtime for a configuration with remote key sets; `None` without any.
    /// `root_id` (the plugin's root id) and `configuration` (the plugin configuration's bytes
    /// as the host gave them) key the shared records, once per configuration.
    pub fn new(
        remote: &RemoteJwks,
        root_id: &[u8],
        configuration: &[u8],
        host: &mut dyn JwksHost,
    ) -> Option<JwksRuntime> {
        if remote.sources.is_empty() {
            return None;
        }
        let seal = Seal::new(root_id, configuration);
        let names: Vec<Names> = remote
            .sources
            .iter()
            .map(|source| Names {
                state: seal.name("state", &source.key),
                body: seal.name("body", &source.key),
            })
            .collect();
        // A record is created once; a VM that configures later finds it. (The host has no
        // create-if-absent, so two VMs racing here may both write the empty record.)
        for n in &names {
            if let Ok(None) = host.get_shared(&n.state) {
                let record = seal.seal(&n.state, &Shared::default().encode());
                let _ = host.set_shared(&n.state, &record, 0);
            }
        }
        host.set_tick(IDLE_TICK_MS);
        Some(JwksRuntime {
            remote: remote.clone(),
            seal,
            names,
            cache: JwksCache::new(remote),
            calls: BTreeMap::new(),
            waiters: Vec::new(),
            wanted: Vec::new(),
            tick_ms: IDLE_TICK_MS,
        })
    }

    /// The keys as requests see them now.
    pub fn view(&self, now: u64) -> CacheView<'_> {
        self.cache.view(now)
    }

    /// The tick period last set.
    pub fn tick_ms(&self) -> u64 {
        self.tick_ms
    }

    /// How many paused requests wait for keys.
    pub fn waiting(&self) -> usize {
        self.waiters.len()
    }

    /// Forgets a request that went away.
    pub fn forget(&mut self, context_id: u32) {
        self.waiters.retain(|w| w.context_id != context_id);
    }

    fn source(&self, id: SourceId) -> Option<&Source> {
        self.remote.get(id)
    }

    fn seen(&self, id: SourceId) -> (Shared, u64) {
        (
            self.cache.shared(id).cloned().unwrap_or_default(),
            self.cache.keys_version(id),
        )
    }

    fn set_tick(&mut self, ms: u64, host: &mut dyn JwksHost) {
        self.tick_ms = ms;
        host.set_tick(ms);
    }

    /// A request needs keys: remember it, and wake the root at once to fetch them.
    pub fn wait(&mut self, context_id: u32, wait: KeyWait, now: u64, host: &mut dyn JwksHost) {
        let timeout = self.source(wait.source).map_or(0, |s| s.timeout_ms);
        let seen = self.seen(wait.source);
        self.waiters.push(Waiter {
            context_id,
            since: now,
            deadline: now.saturating_add(timeout),
            wait,
            seen,
            timed_out: Vec::new(),
        });
        if !self.wanted.contains(&wait) {
            self.wanted.push(wait);
        }
        self.set_tick(1, host);
    }

    /// Reads a source's shared record (and a new body) into the cache. A record that is not
    /// sealed by this configuration's key is read as absent (its CAS is kept, so this VM's
    /// next write replaces it).
    fn sync(&mut self, id: SourceId, host: &mut dyn JwksHost) -> Option<(Shared, u32)> {
        let source = self.source(id)?.clone();
        let names = self.names.get(id.0)?;
        let (shared, cas) = match host.get_shared(&names.state) {
            Ok(Some((bytes, cas))) => (
                self.seal
                    .open(&names.state, &bytes)
                    .and_then(Shared::decode)
                    .unwrap_or_default(),
                cas,
            ),
            Ok(None) => (Shared::default(), 0),
            Err(status) => {
                log::debug!("cannot read the JWKS state of {}: {status}", source.key);
                return None;
            }
        };
        self.cache.observe(id, shared.clone());
        if self.cache.needs_body(id) {
            if let Ok(Some((bytes, _))) = host.get_shared(&names.body) {
                let opened = self.seal.open(&names.body, &bytes).and_then(decode_body);
                if let Some((version, body)) = opened {
                    if version == shared.version {
                        let allow = self.cache.settings().allow_symmetric_keys;
                        match parse_fetched_jwks(body, allow) {
                            Ok((jwks, _)) => {
                                self.cache
                                    .install(id, version, shared.fetched_at, Rc::new(jwks))
                            }
                            Err(e) => log::debug!("stored JWKS of {} unusable: {e}", source.key),
                        }
                    }
                }
            }
        }
        Some((shared, cas))
    }

    /// Writes `update(current)` to a source's record with compare-and-swap.
    fn update(
        &mut self,
        id: SourceId,
        update: impl Fn(&Shared) -> Option<Shared>,
        body: Option<&[u8]>,
        host: &mut dyn JwksHost,
    ) -> Update {
        let (Some(source), Some(names)) = (self.source(id), self.names.get(id.0)) else {
            return Update::Failed;
        };
        let (key, state_name, body_name) =
            (source.key.clone(), names.state.clone(), names.body.clone());
        for _ in 0..CAS_ATTEMPTS {
            let Some((old, cas)) = self.sync(id, host) else {
                return Update::Failed;
            };
            let Some(new) = update(&old) else {
                return Update::Declined;
            };
            if let Some(body) = body {
                if new.version != old.version {
                    // The body first: a VM that sees the new version finds its body.
                    let record = self.seal.seal(&body_name, &encode_body(new.version, body));
                    if let Err(e) = host.set_shared(&body_name, &record, 0) {
                        log::warn!("cannot store the JWKS of {key}: {e}");
                        return Update::Failed;
                    }
                }
            }
            let record = self.seal.seal(&state_name, &new.encode());
            match host.set_shared(&state_name, &record, cas) {
                Ok(()) => {
                    self.cache.observe(id, new.clone());
                    return Update::Written(Box::new((old, new)));
                }
                Err(SharedWriteError::CasMismatch) => continue,
                Err(SharedWriteError::Refused(status)) => {
                    log::warn!("cannot write the JWKS state of {key}: {status}");
                    return Update::Failed;
                }
            }
        }
        Update::Failed
    }

    /// Starts a fetch of `id` for `reason` if the shared state allows it (one VM wins).
    fn try_start(&mut self, id: SourceId, reason: FetchReason, now: u64, host: &mut dyn JwksHost) {
        let Some(source) = self.source(id).cloned() else {
            return;
        };
        let settings = self.cache.settings().clone();
        let discover_first = matches!(source.kind, SourceKind::Discovery(_))
            && self
                .cache
                .shared(id)
                .is_none_or(|s| HttpUri::parse(&s.jwks_uri).is_err());
        let rounds = if discover_first { 2 } else { 1 };
        let lease = source.timeout_ms.saturating_mul(rounds) + LEASE_MARGIN_MS;
        // This VM's own fetch of the source is still running: never a second one.
        if self.calls.values().any(|c| c.source == id) {
            return;
        }
        let started = match self.update(id, |s| s.start(reason, now, lease, &settings), None, host)
        {
            Update::Written(both) => both.1,
            Update::Declined => return,
            // The shared record cannot be written (the host refuses, or something keeps
            // changing it under us): fetch without the lease rather than never.
            Update::Failed => {
                let local = self.cache.shared(id).cloned().unwrap_or_default();
                if !local.may_start(reason, now, &settings) {
                    return;
                }
                local
            }
        };
        log::debug!("JWKS {}: fetch started ({reason:?})", source.key);
        let step = match &source.kind {
            SourceKind::JwksUri(uri) => Step::Jwks(uri.clone()),
            SourceKind::Discovery(_) => match HttpUri::parse(&started.jwks_uri) {
                Ok(uri) => Step::Jwks(uri),
                Err(_) => Step::Discovery,
            },
        };
        if let Err(e) = self.dispatch(id, step, host) {
            self.finish(id, Err(e), now, host);
        }
    }

    fn dispatch(
        &mut self,
        id: SourceId,
        step: Step,
        host: &mut dyn JwksHost,
    ) -> Result<(), FetchError> {
        let source = self
            .source(id)
            .cloned()
            .ok_or_else(|| FetchError::Read("unknown source".into()))?;
        let uri = match &step {
            Step::Discovery => source.first_uri().clone(),
            Step::Jwks(uri) => uri.clone(),
        };
        let cluster = self.cache.settings().cluster_for(&uri);
        match host.dispatch(&cluster, &uri, source.timeout_ms) {
            Ok(token) => {
                self.calls.insert(token, Call { source: id, step });
                Ok(())
            }
            Err(status) => Err(FetchError::Dispatch {
                cluster,
                authority: format!("{}:{}", uri.host, uri.port),
                status,
            }),
        }
    }

    /// A dispatched call ended; the host holds its response.
    pub fn on_http_call_response(
        &mut self,
        token: u32,
        body_size: usize,
        now: u64,
        host: &mut dyn JwksHost,
    ) {
        let Some(call) = self.calls.remove(&token) else {
            return;
        };
        let body = match read_response(body_size, host) {
            Ok(body) => body,
            Err(e) => return self.finish(call.source, Err(e), now, host),
        };
        match call.step {
            Step::Discovery => match parse_discovery(&body) {
                Ok(uri) => {
                    if let Err(e) = self.dispatch(call.source, Step::Jwks(uri), host) {
                        self.finish(call.source, Err(e), now, host);
                    }
                }
                Err(e) => self.finish(call.source, Err(e), now, host),
            },
            Step::Jwks(uri) => {
                let allow = self.cache.settings().allow_symmetric_keys;
                let result = parse_fetched_jwks(&body, allow)
                    .map(|(jwks, dropped)| (jwks, dropped, body, uri));
                self.finish(call.source, result, now, host);
            }
        }
        self.retick(now, host);
    }

    /// Records a fetch's end in shared data, logs a state change, wakes the waiters.
    fn finish(
        &mut self,
        id: SourceId,
        result: Result<Fetched, FetchError>,
        now: u64,
        host: &mut dyn JwksHost,
    ) {
        let settings = self.cache.settings().clone();
        let Some(source) = self.source(id).cloned() else {
            return;
        };
        let what = source.first_uri().text.clone();
        let written = match result {
            Ok((jwks, dropped, body, uri)) => {
                let d = digest(&body);
                let learned = match source.kind {
                    SourceKind::Discovery(_) => uri.text.clone(),
                    SourceKind::JwksUri(_) => String::new(),
                };
                let written = self
                    .update(
                        id,
                        |s| Some(s.succeeded(now, &d, &learned)),
                        Some(&body),
                        host,
                    )
                    .written();
                // Even when the shared write failed, this VM uses what it fetched.
                let version = written.as_ref().map_or_else(
                    || self.cache.keys_version(id).max(1),
                    |(_, new)| new.version,
                );
                self.cache.install(id, version, now, Rc::new(jwks));
                // Once per new key set (by the VM that fetched it), never per request.
                let new_set = written
                    .as_ref()
                    .is_some_and(|(old, new)| old.version != new.version);
                if dropped > 0 && new_set {
                    log::warn!(
                        "JWKS {what}: ignoring {dropped} symmetric (`oct`) keys of the fetched \
                         set: a key anyone can download must not verify tokens (set \
                         jwks.allowSymmetricKeys: true to accept them)"
                    );
                }
                written
            }
            Err(e) => {
                let error = e.to_string();
                self.update(id, |s| Some(s.failed(now, &error, &settings)), None, host)
                    .written()
            }
        };
        if let Some((old, new)) = written {
            if let Some((level, line)) = outcome_log(&old, &new, now, &settings, &what) {
                log::log!(level, "{line}");
            }
        }
        self.resolve_waiters(now, Some(id), host);
    }

    /// Re-decides paused requests whose keys changed (or all of `fetched`'s), and answers
    /// those past their deadline.
    fn resolve_waiters(&mut self, now: u64, fetched: Option<SourceId>, host: &mut dyn JwksHost) {
        let waiters = std::mem::take(&mut self.waiters);
        let mut still = Vec::with_capacity(waiters.len());
        for mut w in waiters {
            let timed_out = now >= w.deadline;
            if timed_out {
                // Natively this provider fails with `Jwks remote fetch is failed` and the
                // requirement tree decides: decide again with the wait counted as failed.
                w.timed_out.push(w.wait);
            }
            let changed =
                timed_out || fetched == Some(w.wait.source) || self.seen(w.wait.source) != w.seen;
            if !changed {
                still.push(w);
                continue;
            }
            let view = self.cache.view(now);
            let remote = TimedOut {
                keys: &view,
                waits: &w.timed_out,
            };
            match host.redecide(w.context_id, &remote, now) {
                Redecided::Continued | Redecided::Answered | Redecided::Gone => {}
                Redecided::Wait(wait) => {
                    if wait != w.wait {
                        let timeout = self.source(wait.source).map_or(0, |s| s.timeout_ms);
                        w.deadline = w.since.saturating_add(timeout);
                    }
                    w.wait = wait;
                    w.seen = self.seen(wait.source);
                    if !self.wanted.contains(&wait) {
                        self.wanted.push(wait);
                    }
                    still.push(w);
                }
            }
        }
        // Requests paused while this ran (none: one thread) are kept too.
        still.append(&mut self.waiters);
        self.waiters = still;
    }

    /// The plugin is going away: answer every paused request rather than leave it hanging.
    pub fn abandon(&mut self, host: &mut dyn JwksHost) {
        for w in std::mem::take(&mut self.waiters) {
            host.fail_waiter(w.context_id, AuthnStatus::JwksFetchFail);
        }
    }

    /// The root's timer: read the shared state, start what is wanted or due, settle waiters.
    pub fn on_tick(&mut self, now: u64, host: &mut dyn JwksHost) {
        let ids: Vec<SourceId> = (0..self.remote.sources.len()).map(SourceId).collect();
        for &id in &ids {
            self.sync(id, host);
        }
        // A lease whose holder vanished (a VM torn down mid-fetch) expires: requests still
        // waiting ask again rather than wait for their deadline.
        for w in &self.waiters {
            let idle = self
                .cache
                .shared(w.wait.source)
                .is_some_and(|s| !s.in_flight(now));
            if idle && !self.wanted.contains(&w.wait) {
                self.wanted.push(w.wait);
            }
        }
        for wait in std::mem::take(&mut self.wanted) {
            let in_flight = self
                .cache
                .shared(wait.source)
                .is_some_and(|s| s.in_flight(now));
            if !in_flight {
                self.try_start(wait.source, wait.reason, now, host);
            }
        }
        for &id in &ids {
            let due = self
                .cache
                .shared(id)
                .and_then(|s| s.due(now, self.cache.settings()));
            if let Some(reason) = due {
                self.try_start(id, reason, now, host);
            }
            if self.cache.notice_expiry(id, now) {
                if let Some(source) = self.source(id) {
                    log::warn!(
                        "JWKS {}: the last good keys are older than cacheDuration + maxStale; \
                         tokens are rejected until a fetch succeeds",
                        source.first_uri().text
                    );
                }
            }
        }
        self.resolve_waiters(now, None, host);
        self.retick(now, host);
    }

    /// Chooses the next tick: soon while anything waits, else at the next due event.
    fn retick(&mut self, now: u64, host: &mut dyn JwksHost) {
        let want = if !self.wanted.is_empty() {
            1
        } else if !self.waiters.is_empty() {
            WAITING_TICK_MS
        } else {
            let settings = self.cache.settings();
            (0..self.remote.sources.len())
                .filter_map(|i| self.cache.shared(SourceId(i))?.next_event(now, settings))
                .map(|at| at.saturating_sub(now))
                .min()
                .unwrap_or(IDLE_TICK_MS)
                .clamp(WAITING_TICK_MS, IDLE_TICK_MS)
        };
        if want != self.tick_ms {
            self.set_tick(want, host);
        }
    }
}

/// Reads the call response being handled: 200 and within the size cap, or why not.
fn read_response(body_size: usize, host: &dyn JwksHost) -> Result<Vec<u8>, FetchError> {
    // A reset or close leaves no response headers at all: the host refuses to read them.
    let status = host.response_status();
    match check_response(status.as_deref(), body_size) {
        Ok(()) => host.response_body(body_size).map_err(FetchError::Read),
        Err(FetchError::Status { status, .. }) => {
            let start = host
                .response_body(body_size.min(ERROR_BODY_BYTES))
                .unwrap_or_default();
            Err(FetchError::Status {
                status,
                detail: body_snippet(&start),
            })
        }
        Err(e) => Err(e),
    }
}
