//! Remote JWKS, host side: dispatched fetches, shared-data state across worker VMs, paused
//! requests and timers. Every decision is `remote_jwks::cache`'s; this module moves bytes.
//!
//! - Fetches are dispatched from the root context only (in `on_tick`), so a fetch outlives the
//!   request that asked for it and its response comes back to the root. A request that needs
//!   keys records what it waits for and sets the root's tick to 1 ms, which wakes the root at
//!   once.
//! - The root resumes (or answers) paused requests with `set_effective_context`, re-running the
//!   whole decision for them.
//! - Worker VMs share one [`Shared`] record per source in shared data: a fetch starts only
//!   after a compare-and-swap takes its lease, so the IdP sees one fetch per source per refresh
//!   whatever `--concurrency` is; the other VMs read the stored body and parse it once.
//! - Shared data is open to every plugin with the same `vm_id`: records are named and sealed
//!   with a key of this configuration ([`Seal`]); one that does not verify is read as absent.
//! - `dispatch_http_call` is the SDK's: it is the only way to register the call with the SDK's
//!   dispatcher, without which `on_http_call_response` would panic on an unknown token. It
//!   panics only on statuses Envoy's `httpCall` never returns (it returns Ok, BadArgument,
//!   InternalFailure).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Duration;

use super::apply::{self, Outcome};
use super::host::{self, CAS_MISMATCH};
use super::per_config::PerConfig;
use crate::jwt::AuthnStatus;
use crate::remote_jwks::cache::{
    decode_body, digest, encode_body, outcome_log, CacheView, JwksCache, Shared,
};
use crate::remote_jwks::seal::Seal;
use crate::remote_jwks::{
    body_snippet, check_response, parse_discovery, parse_fetched_jwks, FetchError, FetchReason,
    HttpUri, KeyWait, Source, SourceId, SourceKind, TimedOut,
};

/// The runtime as the root and its streams share it (one VM is single-threaded).
pub type SharedRuntime = Rc<RefCell<JwksRuntime>>;

/// Tick while requests wait on another VM's fetch: how often shared data is polled.
const WAITING_TICK_MS: u64 = 20;
/// Longest tick: how soon a VM notices keys another VM fetched.
const IDLE_TICK_MS: u64 = 1000;
/// Lease margin past the fetch timeout.
const LEASE_MARGIN_MS: u64 = 1000;
/// Compare-and-swap attempts before giving up on a write (it is retried on the next tick).
const CAS_ATTEMPTS: usize = 8;

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

/// One VM's remote-JWKS state.
pub struct JwksRuntime {
    /// The configuration's state, for the decisions taken when keys arrive.
    state: Rc<PerConfig>,
    seal: Seal,
    names: Vec<Names>,
    root_context_id: u32,
    cache: JwksCache,
    calls: BTreeMap<u32, Call>,
    waiters: Vec<Waiter>,
    wanted: Vec<KeyWait>,
    tick_ms: u64,
}

/// Sets the root's tick period, logging only a failure.
fn set_tick(ms: u64) {
    let ms = u32::try_from(ms).unwrap_or(u32::MAX);
    if let Err(status) = host::set_tick_period_ms(ms) {
        log::warn!("cannot set the tick period: {status}");
    }
}

impl JwksRuntime {
    /// The runtime for a configuration with remote key sets; `None` without any.
    /// `configuration` is the plugin configuration's bytes as the host gave them: with the
    /// root id they key the shared records, once per configuration.
    pub fn new(
        state: &Rc<PerConfig>,
        configuration: &[u8],
        root_context_id: u32,
    ) -> Option<SharedRuntime> {
        let config = &state.config;
        if config.remote_jwks.sources.is_empty() {
            return None;
        }
        let root_id = match host::get_property(&["plugin_root_id"]) {
            Ok(id) => id.unwrap_or_default(),
            Err(status) => {
                log::debug!("cannot read plugin_root_id ({status}): keying by the configuration");
                Vec::new()
            }
        };
        let seal = Seal::new(&root_id, configuration);
        let names: Vec<Names> = config
            .remote_jwks
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
            if let Ok(None) = host::get_shared_data(&n.state) {
                let record = seal.seal(&n.state, &Shared::default().encode());
                let _ = host::set_shared_data(&n.state, &record, 0);
            }
        }
        set_tick(IDLE_TICK_MS);
        Some(Rc::new(RefCell::new(JwksRuntime {
            state: Rc::clone(state),
            seal,
            names,
            root_context_id,
            cache: JwksCache::new(&config.remote_jwks),
            calls: BTreeMap::new(),
            waiters: Vec::new(),
            wanted: Vec::new(),
            tick_ms: IDLE_TICK_MS,
        })))
    }

    /// The keys as requests see them now.
    pub fn view(&self, now: u64) -> CacheView<'_> {
        self.cache.view(now)
    }

    /// Forgets a request that went away.
    pub fn forget(&mut self, context_id: u32) {
        self.waiters.retain(|w| w.context_id != context_id);
    }

    fn source(&self, id: SourceId) -> Option<&Source> {
        self.state.config.remote_jwks.get(id)
    }

    fn seen(&self, id: SourceId) -> (Shared, u64) {
        (
            self.cache.shared(id).cloned().unwrap_or_default(),
            self.cache.keys_version(id),
        )
    }

    /// Reads a source's shared record (and a new body) into the cache. A record that is not
    /// sealed by this configuration's key is read as absent (its CAS is kept, so this VM's
    /// next write replaces it).
    fn sync(&mut self, id: SourceId) -> Option<(Shared, u32)> {
        let source = self.source(id)?.clone();
        let names = self.names.get(id.0)?;
        let (shared, cas) = match host::get_shared_data(&names.state) {
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
            if let Ok(Some((bytes, _))) = host::get_shared_data(&names.body) {
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
    ) -> Update {
        let (Some(source), Some(names)) = (self.source(id), self.names.get(id.0)) else {
            return Update::Failed;
        };
        let (key, state_name, body_name) =
            (source.key.clone(), names.state.clone(), names.body.clone());
        for _ in 0..CAS_ATTEMPTS {
            let Some((old, cas)) = self.sync(id) else {
                return Update::Failed;
            };
            let Some(new) = update(&old) else {
                return Update::Declined;
            };
            if let Some(body) = body {
                if new.version != old.version {
                    // The body first: a VM that sees the new version finds its body.
                    let record = self.seal.seal(&body_name, &encode_body(new.version, body));
                    if let Err(status) = host::set_shared_data(&body_name, &record, 0) {
                        log::warn!("cannot store the JWKS of {key}: {status}");
                        return Update::Failed;
                    }
                }
            }
            let record = self.seal.seal(&state_name, &new.encode());
            match host::set_shared_data(&state_name, &record, cas) {
                Ok(()) => {
                    self.cache.observe(id, new.clone());
                    return Update::Written(Box::new((old, new)));
                }
                Err(CAS_MISMATCH) => continue,
                Err(status) => {
                    log::warn!("cannot write the JWKS state of {key}: {status}");
                    return Update::Failed;
                }
            }
        }
        Update::Failed
    }

    /// Starts a fetch of `id` for `reason` if the shared state allows it (one VM wins).
    fn try_start(&mut self, id: SourceId, reason: FetchReason, now: u64) {
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
        let started = match self.update(id, |s| s.start(reason, now, lease, &settings), None) {
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
        if let Err(e) = self.dispatch(id, step) {
            self.finish(id, Err(e), now);
        }
    }

    fn dispatch(&mut self, id: SourceId, step: Step) -> Result<(), FetchError> {
        let source = self
            .source(id)
            .cloned()
            .ok_or_else(|| FetchError::Read("unknown source".into()))?;
        let uri = match &step {
            Step::Discovery => source.first_uri().clone(),
            Step::Jwks(uri) => uri.clone(),
        };
        let cluster = self.cache.settings().cluster_for(&uri);
        // Dispatch as the root, whatever context was effective before.
        let _ = host::set_effective_context(self.root_context_id);
        let headers = vec![
            (":method", "GET"),
            (":path", uri.path.as_str()),
            (":authority", uri.authority.as_str()),
            ("accept", "application/json"),
        ];
        match proxy_wasm::hostcalls::dispatch_http_call(
            &cluster,
            headers,
            None,
            vec![],
            Duration::from_millis(source.timeout_ms),
        ) {
            Ok(token) => {
                self.calls.insert(token, Call { source: id, step });
                Ok(())
            }
            Err(status) => Err(FetchError::Dispatch {
                cluster,
                authority: format!("{}:{}", uri.host, uri.port),
                status: format!("{status:?}"),
            }),
        }
    }

    /// A dispatched call ended.
    pub fn on_http_call_response(&mut self, token: u32, body_size: usize, now: u64) {
        let Some(call) = self.calls.remove(&token) else {
            return;
        };
        let body = match read_response(body_size) {
            Ok(body) => body,
            Err(e) => return self.finish(call.source, Err(e), now),
        };
        match call.step {
            Step::Discovery => match parse_discovery(&body) {
                Ok(uri) => {
                    if let Err(e) = self.dispatch(call.source, Step::Jwks(uri)) {
                        self.finish(call.source, Err(e), now);
                    }
                }
                Err(e) => self.finish(call.source, Err(e), now),
            },
            Step::Jwks(uri) => {
                let allow = self.cache.settings().allow_symmetric_keys;
                let result = parse_fetched_jwks(&body, allow)
                    .map(|(jwks, dropped)| (jwks, dropped, body, uri));
                self.finish(call.source, result, now);
            }
        }
        self.retick(now);
    }

    /// Records a fetch's end in shared data, logs a state change, wakes the waiters.
    fn finish(
        &mut self,
        id: SourceId,
        result: Result<(crate::jwt::Jwks, usize, Vec<u8>, HttpUri), FetchError>,
        now: u64,
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
                    .update(id, |s| Some(s.succeeded(now, &d, &learned)), Some(&body))
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
                self.update(id, |s| Some(s.failed(now, &error, &settings)), None)
                    .written()
            }
        };
        if let Some((old, new)) = written {
            if let Some((level, line)) = outcome_log(&old, &new, now, &settings, &what) {
                log::log!(level, "{line}");
            }
        }
        self.resolve_waiters(now, Some(id));
    }

    /// Re-decides paused requests whose keys changed (or all of `fetched`'s), and answers
    /// those past their deadline.
    fn resolve_waiters(&mut self, now: u64, fetched: Option<SourceId>) {
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
            if host::set_effective_context(w.context_id).is_err() {
                continue; // the request is gone
            }
            let view = self.cache.view(now);
            let remote = TimedOut {
                keys: &view,
                waits: &w.timed_out,
            };
            match apply::decide_current(&self.state, &remote, now) {
                Outcome::Continue => {
                    if let Err(status) = host::continue_request() {
                        log::warn!("cannot resume a request: {status}");
                    }
                }
                Outcome::Answered => {}
                Outcome::Wait(wait) => {
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
        let _ = host::set_effective_context(self.root_context_id);
        // Requests paused while this ran (none: one thread) are kept too.
        still.append(&mut self.waiters);
        self.waiters = still;
    }

    /// The plugin is going away: answer every paused request rather than leave it hanging.
    pub fn abandon(&mut self) {
        for w in std::mem::take(&mut self.waiters) {
            if host::set_effective_context(w.context_id).is_ok() {
                apply::deny_current(&self.state, AuthnStatus::JwksFetchFail);
            }
        }
        let _ = host::set_effective_context(self.root_context_id);
    }

    /// The root's timer: read the shared state, start what is wanted or due, settle waiters.
    pub fn on_tick(&mut self, now: u64) {
        let ids: Vec<SourceId> = (0..self.state.config.remote_jwks.sources.len())
            .map(SourceId)
            .collect();
        for &id in &ids {
            self.sync(id);
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
                self.try_start(wait.source, wait.reason, now);
            }
        }
        for &id in &ids {
            let due = self
                .cache
                .shared(id)
                .and_then(|s| s.due(now, self.cache.settings()));
            if let Some(reason) = due {
                self.try_start(id, reason, now);
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
        self.resolve_waiters(now, None);
        self.retick(now);
    }

    /// Chooses the next tick: soon while anything waits, else at the next due event.
    fn retick(&mut self, now: u64) {
        let want = if !self.wanted.is_empty() {
            1
        } else if !self.waiters.is_empty() {
            WAITING_TICK_MS
        } else {
            let settings = self.cache.settings();
            (0..self.state.config.remote_jwks.sources.len())
                .filter_map(|i| self.cache.shared(SourceId(i))?.next_event(now, settings))
                .map(|at| at.saturating_sub(now))
                .min()
                .unwrap_or(IDLE_TICK_MS)
                .clamp(WAITING_TICK_MS, IDLE_TICK_MS)
        };
        if want != self.tick_ms {
            self.tick_ms = want;
            set_tick(want);
        }
    }
}

/// Reads a dispatched call's response: 200 and within the size cap, or why not.
fn read_response(body_size: usize) -> Result<Vec<u8>, FetchError> {
    // A reset or close leaves no response headers at all: the host refuses to read them.
    let status = host::http_call_response_header(":status").map_err(|_| FetchError::NoResponse)?;
    match check_response(status.as_deref(), body_size) {
        Ok(()) => {
            host::http_call_response_body(body_size).map_err(|s| FetchError::Read(s.to_string()))
        }
        Err(FetchError::Status { status, .. }) => {
            let start = host::http_call_response_body(body_size.min(80)).unwrap_or_default();
            Err(FetchError::Status {
                status,
                detail: body_snippet(&start),
            })
        }
        Err(e) => Err(e),
    }
}

/// A request needs keys: remember it, and wake the root at once to fetch them.
pub(super) fn wait(
    runtime: &SharedRuntime,
    state: &PerConfig,
    context_id: u32,
    wait: KeyWait,
    now: u64,
) {
    let Ok(mut rt) = runtime.try_borrow_mut() else {
        apply::deny_current(state, AuthnStatus::JwksFetchFail);
        return;
    };
    let timeout = rt.source(wait.source).map_or(0, |s| s.timeout_ms);
    let seen = rt.seen(wait.source);
    rt.waiters.push(Waiter {
        context_id,
        since: now,
        deadline: now.saturating_add(timeout),
        wait,
        seen,
        timed_out: Vec::new(),
    });
    if !rt.wanted.contains(&wait) {
        rt.wanted.push(wait);
    }
    rt.tick_ms = 1;
    set_tick(1);
}
