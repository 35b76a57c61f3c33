//! The remote-JWKS runtime (`remote_jwks::runtime`) over a fake host: what several worker VMs
//! sharing one shared-data store do, when fetches start, how paused requests end. Expected
//! values come from the documented settings (README "Remote JWKS", `remote_jwks` constants:
//! `cacheDuration` 300 s, `maxStale` 24 h, `refetchInterval` 30 s, retries 1 s doubling to
//! 60 s, a rule's `timeout` 5 s, a lease of the timeout plus 1 s), never from a run of the code.
//! The keys are Envoy's `jwt_authn` fixtures (fixtures/PROVENANCE.md).

// Test code: a failed unwrap is a failed test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use mesh_authn::jwt::AuthnStatus;
use mesh_authn::remote_jwks::cache::Shared;
use mesh_authn::remote_jwks::runtime::{JwksHost, JwksRuntime, Redecided, SharedWriteError};
use mesh_authn::remote_jwks::seal::Seal;
use mesh_authn::remote_jwks::{
    FetchReason, HttpUri, KeyWait, Keys, RemoteJwks, RemoteKeys, SourceId, SourceKind,
};

const S: SourceId = SourceId(0);
const URL: &str = "https://idp.example/jwks";
/// The rule's `timeout` (istiod's default).
const TIMEOUT_MS: u64 = 5_000;
/// A lease lasts the fetch timeout plus a 1 s margin.
const LEASE_MS: u64 = TIMEOUT_MS + 1_000;
const CACHE_DURATION_MS: u64 = 300_000;
const MAX_STALE_MS: u64 = 24 * 3600 * 1000;
const REFETCH_INTERVAL_MS: u64 = 30_000;
/// A background refresh starts 5 s before the keys expire.
const REFRESH_AHEAD_MS: u64 = 5_000;
const T0: u64 = 1_700_000_000_000;
const ROOT_ID: &[u8] = b"mesh-authn";
const CONFIG: &[u8] = b"the plugin configuration";

fn first_use() -> KeyWait {
    KeyWait {
        source: S,
        reason: FetchReason::FirstUse,
    }
}

fn unknown_kid() -> KeyWait {
    KeyWait {
        source: S,
        reason: FetchReason::UnknownKid,
    }
}

fn remote() -> RemoteJwks {
    let mut remote = RemoteJwks::default();
    remote.add(
        SourceKind::JwksUri(HttpUri::parse(URL).unwrap()),
        TIMEOUT_MS,
    );
    remote
}

fn rsa_body() -> Vec<u8> {
    common::fixture()["public_key_jwks"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec()
}

/// Shared data as every VM of one Envoy sees it.
#[derive(Default)]
struct Store {
    records: BTreeMap<String, (Vec<u8>, u32)>,
    next_cas: u32,
    /// Another VM's write that lands just before the next conditional write of that record
    /// (between this VM's read and its compare-and-swap).
    rival: Option<(String, Vec<u8>)>,
    /// The host refuses every write.
    refuse_writes: bool,
}

impl Store {
    fn put(&mut self, name: &str, value: &[u8]) {
        self.next_cas += 1;
        self.records
            .insert(name.to_owned(), (value.to_vec(), self.next_cas));
    }
}

/// One worker VM's host: records what the runtime asked for, answers as scripted.
struct Fake {
    store: Rc<RefCell<Store>>,
    /// (token, cluster, URL, timeout) of every dispatched call.
    dispatched: Vec<(u32, String, String, u64)>,
    next_token: u32,
    /// The call response being handled: `:status` (absent: reset) and body.
    response: (Option<Vec<u8>>, Vec<u8>),
    /// Every re-decision: the context and what became of it.
    decided: Vec<(u32, Redecided)>,
    /// Requests answered by `fail_waiter`.
    failed: Vec<(u32, AuthnStatus)>,
    /// Requests whose token has this `kid` (the others need keys, any keys).
    kids: BTreeMap<u32, &'static str>,
    /// Requests that went away.
    gone: BTreeSet<u32>,
    ticks: Vec<u64>,
    /// How many bytes of each response body were read.
    body_reads: RefCell<Vec<usize>>,
}

impl Fake {
    fn new(store: &Rc<RefCell<Store>>) -> Fake {
        Fake {
            store: Rc::clone(store),
            dispatched: Vec::new(),
            next_token: 0,
            response: (None, Vec::new()),
            decided: Vec::new(),
            failed: Vec::new(),
            kids: BTreeMap::new(),
            gone: BTreeSet::new(),
            ticks: Vec::new(),
            body_reads: RefCell::new(Vec::new()),
        }
    }
}

impl JwksHost for Fake {
    fn get_shared(&self, name: &str) -> Result<Option<(Vec<u8>, u32)>, String> {
        Ok(self.store.borrow().records.get(name).cloned())
    }

    fn set_shared(&mut self, name: &str, value: &[u8], cas: u32) -> Result<(), SharedWriteError> {
        let mut store = self.store.borrow_mut();
        if store.refuse_writes {
            return Err(SharedWriteError::Refused("InternalFailure (10)".to_owned()));
        }
        if cas != 0 {
            if let Some((rival_name, rival)) = store.rival.take() {
                if rival_name == name {
                    store.put(name, &rival);
                } else {
                    store.rival = Some((rival_name, rival));
                }
            }
            let current = store.records.get(name).map(|(_, c)| *c);
            if current != Some(cas) {
                return Err(SharedWriteError::CasMismatch);
            }
        }
        store.put(name, value);
        Ok(())
    }

    fn dispatch(&mut self, cluster: &str, uri: &HttpUri, timeout_ms: u64) -> Result<u32, String> {
        self.next_token += 1;
        self.dispatched.push((
            self.next_token,
            cluster.to_owned(),
            uri.text.clone(),
            timeout_ms,
        ));
        Ok(self.next_token)
    }

    fn response_status(&self) -> Option<Vec<u8>> {
        self.response.0.clone()
    }

    fn response_body(&self, len: usize) -> Result<Vec<u8>, String> {
        self.body_reads.borrow_mut().push(len);
        Ok(self.response.1.iter().copied().take(len).collect())
    }

    /// Decides as the request path does for one rule: keys ready ⇒ allowed (when the token's
    /// `kid` is there), failed ⇒ answered, else wait.
    fn redecide(&mut self, context_id: u32, remote: &dyn RemoteKeys, _now: u64) -> Redecided {
        let outcome = if self.gone.contains(&context_id) {
            Redecided::Gone
        } else {
            match (remote.keys(S), self.kids.get(&context_id)) {
                (Keys::Failed, _) => Redecided::Answered,
                (Keys::Wait, _) => Redecided::Wait(first_use()),
                (Keys::Ready(_), None) => Redecided::Continued,
                (Keys::Ready(keys), Some(kid)) => {
                    if keys.keys().iter().any(|k| k.kid == *kid) {
                        Redecided::Continued
                    } else if remote.refetch_for_unknown_kid(S) {
                        Redecided::Wait(unknown_kid())
                    } else {
                        Redecided::Answered
                    }
                }
            }
        };
        self.decided.push((context_id, outcome));
        outcome
    }

    fn fail_waiter(&mut self, context_id: u32, status: AuthnStatus) {
        self.failed.push((context_id, status));
    }

    fn set_tick(&mut self, ms: u64) {
        self.ticks.push(ms);
    }
}

/// One worker VM: its runtime and its host.
struct Vm {
    rt: JwksRuntime,
    host: Fake,
}

impl Vm {
    fn new(store: &Rc<RefCell<Store>>) -> Vm {
        Vm::with(store, &remote())
    }

    fn with(store: &Rc<RefCell<Store>>, remote: &RemoteJwks) -> Vm {
        let mut host = Fake::new(store);
        let rt = JwksRuntime::new(remote, ROOT_ID, CONFIG, &mut host).unwrap();
        Vm { rt, host }
    }

    /// A worker whose request 1 waits for the first keys at `T0`, their fetch dispatched.
    fn fetching(store: &Rc<RefCell<Store>>, remote: &RemoteJwks) -> Vm {
        let mut vm = Vm::with(store, remote);
        vm.wait(1, first_use(), T0);
        vm.tick(T0);
        vm
    }

    fn tick(&mut self, now: u64) {
        self.rt.on_tick(now, &mut self.host);
    }

    fn wait(&mut self, context_id: u32, wait: KeyWait, now: u64) {
        self.rt.wait(context_id, wait, now, &mut self.host);
    }

    /// The last dispatched call answers with `status` (`None`: reset) and `body`.
    fn respond(&mut self, status: Option<&str>, body: &[u8], now: u64) {
        let token = self.host.dispatched.last().unwrap().0;
        self.host.response = (status.map(|s| s.as_bytes().to_vec()), body.to_vec());
        self.rt
            .on_http_call_response(token, body.len(), now, &mut self.host);
    }

    fn fetches(&self) -> usize {
        self.host.dispatched.len()
    }

    fn keys_ready(&self, now: u64) -> bool {
        matches!(self.rt.view(now).keys(S), Keys::Ready(_))
    }

    /// A first fetch at `now` that succeeds: keys fresh from `now`.
    fn fetch_ok(&mut self, now: u64) {
        self.wait(1000, first_use(), now);
        self.tick(now);
        self.respond(Some("200"), &rsa_body(), now);
        assert!(self.keys_ready(now));
    }
}

fn store() -> Rc<RefCell<Store>> {
    Rc::new(RefCell::new(Store::default()))
}

/// Two workers over one store whose requests (1 on `a`, 2 on `b`) wait for the first keys at
/// `T0`, before either ticks.
fn two_workers_waiting(store: &Rc<RefCell<Store>>) -> (Vm, Vm) {
    let (mut a, mut b) = (Vm::new(store), Vm::new(store));
    a.wait(1, first_use(), T0);
    b.wait(2, first_use(), T0);
    a.tick(T0);
    b.tick(T0);
    (a, b)
}

fn seal() -> Seal {
    Seal::new(ROOT_ID, CONFIG)
}

fn state_name() -> String {
    seal().name("state", &remote().sources[0].key)
}

fn body_name() -> String {
    seal().name("body", &remote().sources[0].key)
}

#[test]
fn two_workers_one_fetches_the_other_reads_the_stored_body() {
    let store = store();
    let (mut a, mut b) = two_workers_waiting(&store);
    assert_eq!(
        a.host.dispatched,
        vec![(
            1,
            "outbound|443||idp.example".to_owned(),
            URL.to_owned(),
            TIMEOUT_MS
        )],
        "Istio's cluster name for the URL, the rule's timeout"
    );
    assert_eq!(b.fetches(), 0, "the other worker sees the lease");
    a.respond(Some("200"), &rsa_body(), T0 + 10);
    assert_eq!(a.host.decided.last(), Some(&(1, Redecided::Continued)));
    b.tick(T0 + 20);
    assert_eq!(b.fetches(), 0, "the stored body serves the second worker");
    assert_eq!(b.host.decided.last(), Some(&(2, Redecided::Continued)));
    assert!(b.keys_ready(T0 + 20));
    assert_eq!(b.rt.waiting(), 0);
}

#[test]
fn compare_and_swap_contention_one_lease_one_fetch() {
    // (what lands between this VM's read and its write, fetches this VM starts)
    let rival_lease = Shared {
        lease_until: T0 + LEASE_MS,
        used: true,
        ..Shared::default()
    };
    let unrelated = Shared {
        kid_refetch_at: 1,
        ..Shared::default()
    };
    let cases = [
        ("another VM takes the lease first", Some(rival_lease), 0),
        ("another VM writes, no lease", Some(unrelated), 1),
        ("no contention", None, 1),
    ];
    for (what, rival, fetches) in cases {
        let store = store();
        let mut vm = Vm::new(&store);
        if let Some(rival) = rival {
            let name = state_name();
            let record = seal().seal(&name, &rival.encode());
            store.borrow_mut().rival = Some((name, record));
        }
        vm.wait(1, first_use(), T0);
        vm.tick(T0);
        assert_eq!(vm.fetches(), fetches, "{what}");
        assert!(store.borrow().rival.is_none(), "{what}: the rival wrote");
    }
}

#[test]
fn a_lease_whose_holder_vanished_expires_and_another_worker_fetches() {
    let store = store();
    let mut gone = Vm::new(&store);
    gone.wait(1, first_use(), T0);
    gone.tick(T0);
    assert_eq!(gone.fetches(), 1);
    drop(gone); // torn down mid-fetch: its response never comes
    let mut b = Vm::new(&store);
    let since = T0 + 3_000;
    b.wait(2, first_use(), since);
    b.tick(since);
    b.tick(T0 + LEASE_MS - 1);
    assert_eq!(b.fetches(), 0, "the lease still holds");
    b.tick(T0 + LEASE_MS);
    assert_eq!(b.fetches(), 1, "the lease expired: this worker fetches");
    b.respond(Some("200"), &rsa_body(), T0 + LEASE_MS + 5);
    assert_eq!(b.host.decided.last(), Some(&(2, Redecided::Continued)));
    assert_eq!(b.rt.waiting(), 0);
}

#[test]
fn a_fetch_answering_after_the_deadline_finds_the_request_already_answered() {
    let store = store();
    let mut vm = Vm::fetching(&store, &remote());
    vm.tick(T0 + TIMEOUT_MS - 1);
    assert!(
        vm.host
            .decided
            .iter()
            .all(|(_, r)| matches!(r, Redecided::Wait(_))),
        "before its deadline the request waits: {:?}",
        vm.host.decided
    );
    assert_eq!(vm.rt.waiting(), 1);
    vm.tick(T0 + TIMEOUT_MS);
    assert_eq!(
        vm.host.decided.last(),
        Some(&(1, Redecided::Answered)),
        "at its deadline the rule's keys count as a failed fetch"
    );
    assert_eq!(vm.rt.waiting(), 0);
    let decisions = vm.host.decided.len();
    vm.respond(Some("200"), &rsa_body(), T0 + TIMEOUT_MS + 500);
    assert_eq!(vm.host.decided.len(), decisions, "answered once only");
    assert!(
        vm.keys_ready(T0 + TIMEOUT_MS + 500),
        "the late keys serve the next requests"
    );
}

#[test]
fn the_plugin_going_away_answers_every_paused_request() {
    let store = store();
    let mut vm = Vm::new(&store);
    vm.wait(1, first_use(), T0);
    vm.wait(2, first_use(), T0);
    vm.wait(3, first_use(), T0);
    vm.tick(T0);
    vm.rt.forget(2); // the client went away
    vm.rt.abandon(&mut vm.host);
    assert_eq!(
        vm.host.failed,
        vec![
            (1, AuthnStatus::JwksFetchFail),
            (3, AuthnStatus::JwksFetchFail)
        ]
    );
    assert_eq!(vm.rt.waiting(), 0);
}

#[test]
fn a_request_gone_while_waiting_is_dropped() {
    let store = store();
    let mut vm = Vm::fetching(&store, &remote());
    vm.host.gone.insert(1);
    vm.respond(Some("200"), &rsa_body(), T0 + 10);
    assert_eq!(vm.host.decided.last(), Some(&(1, Redecided::Gone)));
    assert_eq!(vm.rt.waiting(), 0);
}

#[test]
fn an_unknown_kid_refetches_at_most_once_per_refetch_interval() {
    let store = store();
    let mut vm = Vm::new(&store);
    vm.fetch_ok(T0);
    let first = T0 + 1_000;
    vm.host.kids.insert(7, "rotated-kid");
    assert!(vm.rt.view(first).refetch_for_unknown_kid(S));
    vm.wait(7, unknown_kid(), first);
    vm.tick(first);
    assert_eq!(vm.fetches(), 2, "the first unknown kid refetches");
    vm.respond(Some("200"), &rsa_body(), first + 10);
    assert_eq!(
        vm.host.decided.last(),
        Some(&(7, Redecided::Answered)),
        "still unknown after the refetch, and no second one"
    );
    // (time after the first refetch, whether a new unknown kid may refetch)
    for (after, allowed) in [
        (10, false),
        (REFETCH_INTERVAL_MS - 1, false),
        (REFETCH_INTERVAL_MS, true),
    ] {
        let now = first + after;
        assert_eq!(
            vm.rt.view(now).refetch_for_unknown_kid(S),
            allowed,
            "{after} ms after"
        );
    }
    // A wait queued anyway within the interval does not fetch either.
    vm.host.kids.insert(8, "forged-kid");
    vm.wait(8, unknown_kid(), first + REFETCH_INTERVAL_MS - 1);
    vm.tick(first + REFETCH_INTERVAL_MS - 1);
    assert_eq!(vm.fetches(), 2);
    // The IdP rotated to the key `abc`; a token signed with it arrives in a new interval.
    vm.host.kids.insert(9, "abc");
    vm.wait(9, unknown_kid(), first + REFETCH_INTERVAL_MS);
    vm.tick(first + REFETCH_INTERVAL_MS);
    assert_eq!(vm.fetches(), 3, "a new interval: one refetch for both");
    let rotated = common::fixture()["es256_public_key_jwks"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let decided = vm.host.decided.len();
    vm.respond(Some("200"), &rotated, first + REFETCH_INTERVAL_MS + 5);
    let after: Vec<_> = vm.host.decided[decided..].to_vec();
    assert_eq!(
        after,
        vec![(8, Redecided::Answered), (9, Redecided::Continued)],
        "the rotated key verifies, the forged kid is refused without another refetch"
    );
    assert_eq!(vm.fetches(), 3);
}

/// The `kid`s of the key set a worker would verify with at `now`.
fn kids(vm: &Vm, now: u64) -> Vec<String> {
    match vm.rt.view(now).keys(S) {
        Keys::Ready(keys) => keys.keys().iter().map(|k| k.kid.clone()).collect(),
        _ => Vec::new(),
    }
}

/// README "Remote JWKS", rotation: a worker that did not refetch takes the rotated set at its
/// next tick (idle: every second), without a fetch of its own and without a request; until
/// that tick it still verifies with the set it holds.
#[test]
fn a_rotated_set_reaches_the_other_worker_at_its_next_tick() {
    let store = store();
    let (mut a, mut b) = (Vm::new(&store), Vm::new(&store));
    a.fetch_ok(T0);
    b.tick(T0 + 1);
    let first = kids(&b, T0 + 1);
    assert!(!first.is_empty(), "b took a's first set from shared data");
    assert_eq!(first, kids(&a, T0 + 1));
    // The IdP rotated: a token of the new key reaches `a`, which refetches the ES256 set.
    let rotated = common::fixture()["es256_public_key_jwks"]
        .as_str()
        .unwrap()
        .as_bytes()
        .to_vec();
    let now = T0 + REFETCH_INTERVAL_MS;
    a.wait(7, unknown_kid(), now);
    a.tick(now);
    a.respond(Some("200"), &rotated, now + 10);
    let second = kids(&a, now + 10);
    assert!(!second.is_empty() && second != first, "a holds the new set");
    assert_eq!(
        kids(&b, now + 10),
        first,
        "before its tick, b still verifies with the old set"
    );
    assert_eq!(b.rt.tick_ms(), 1_000, "b's next tick is at most 1 s away");
    b.tick(now + 1_000);
    assert_eq!(kids(&b, now + 1_000), second, "b's tick took the new set");
    assert_eq!((a.fetches(), b.fetches()), (2, 0));
}

#[test]
fn failed_fetches_back_off_from_1s_doubling_to_60s() {
    let store = store();
    let mut vm = Vm::fetching(&store, &remote());
    vm.respond(Some("503"), b"unavailable", T0);
    assert_eq!(vm.host.decided.last(), Some(&(1, Redecided::Answered)));
    let mut failed_at = T0;
    for (n, delay) in [1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 60_000, 60_000]
        .into_iter()
        .enumerate()
    {
        let fetches = vm.fetches();
        vm.tick(failed_at + delay - 1);
        assert_eq!(
            vm.fetches(),
            fetches,
            "retry {}: not before {delay} ms",
            n + 1
        );
        vm.tick(failed_at + delay);
        assert_eq!(vm.fetches(), fetches + 1, "retry {}: at {delay} ms", n + 1);
        failed_at += delay;
        vm.respond(None, b"", failed_at); // reset
    }
    vm.tick(failed_at + 60_000);
    vm.respond(Some("200"), &rsa_body(), failed_at + 60_000);
    assert!(vm.keys_ready(failed_at + 60_000));
    let fetches = vm.fetches();
    vm.tick(failed_at + 61_000);
    assert_eq!(vm.fetches(), fetches, "a success ends the retries");
}

#[test]
fn stale_keys_serve_until_max_stale_then_tokens_are_rejected() {
    let store = store();
    let mut vm = Vm::new(&store);
    vm.fetch_ok(T0);
    // The refresh is due 5 s before the keys expire, and fails; so does every retry.
    let refresh = T0 + CACHE_DURATION_MS - REFRESH_AHEAD_MS;
    vm.tick(refresh - 1);
    assert_eq!(vm.fetches(), 1);
    vm.tick(refresh);
    assert_eq!(vm.fetches(), 2, "background refresh");
    vm.respond(Some("500"), b"", refresh);
    let end = T0 + CACHE_DURATION_MS + MAX_STALE_MS;
    for now in [T0 + CACHE_DURATION_MS, T0 + CACHE_DURATION_MS + 1, end - 1] {
        assert!(
            vm.keys_ready(now),
            "{} ms past expiry",
            now - T0 - CACHE_DURATION_MS
        );
    }
    vm.tick(end - 1);
    vm.respond(Some("500"), b"", end - 1);
    assert!(vm.keys_ready(end - 1), "served just before maxStale ends");
    assert!(
        matches!(vm.rt.view(end).keys(S), Keys::Failed),
        "past maxStale, while the retry backs off, tokens are rejected"
    );
}

#[test]
fn a_forged_or_garbage_shared_record_is_read_as_absent() {
    let other = Seal::new(ROOT_ID, b"another configuration");
    let claim = Shared {
        version: 1,
        fetched_at: T0,
        used: true,
        lease_until: T0 + LEASE_MS,
        ..Shared::default()
    };
    let mut flipped = seal().seal(&state_name(), &claim.encode());
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    // (what the state record holds, whether it is believed)
    let cases: [(&str, Vec<u8>, bool); 5] = [
        ("garbage", b"\x00not a record\xff".to_vec(), false),
        ("unsealed", claim.encode(), false),
        (
            "sealed by another configuration",
            other.seal(&state_name(), &claim.encode()),
            false,
        ),
        ("MAC off by one bit", flipped, false),
        (
            "sealed by this configuration",
            seal().seal(&state_name(), &claim.encode()),
            true,
        ),
    ];
    for (what, record, believed) in cases {
        let store = store();
        store.borrow_mut().put(&state_name(), &record);
        // A key set of the forger's next to it, under the body name.
        let body = [b"1\n".as_slice(), &rsa_body()].concat();
        let forged_body = other.seal(&body_name(), &body);
        store.borrow_mut().put(&body_name(), &forged_body);
        let mut vm = Vm::new(&store);
        vm.tick(T0);
        assert!(!vm.keys_ready(T0), "{what}: a forged body never serves");
        vm.wait(1, first_use(), T0);
        vm.tick(T0);
        let expected = if believed { 0 } else { 1 };
        assert_eq!(
            vm.fetches(),
            expected,
            "{what}: a record not sealed by this configuration holds no lease"
        );
    }
}

#[test]
fn a_refused_shared_write_still_fetches_and_serves_this_worker() {
    let store = store();
    store.borrow_mut().refuse_writes = true;
    let (mut a, b) = two_workers_waiting(&store);
    assert_eq!(
        (a.fetches(), b.fetches()),
        (1, 1),
        "without a lease each worker fetches rather than never"
    );
    a.respond(Some("200"), &rsa_body(), T0 + 10);
    assert_eq!(a.host.decided.last(), Some(&(1, Redecided::Continued)));
    assert!(a.keys_ready(T0 + 10));
    assert!(store.borrow().records.is_empty());
}

#[test]
fn discovery_then_jwks_then_refresh_from_the_learned_uri() {
    let mut remote = RemoteJwks::default();
    let issuer = HttpUri::discovery("https://issuer.example/").unwrap();
    remote.add(SourceKind::Discovery(issuer), TIMEOUT_MS);
    let store = store();
    let mut vm = Vm::fetching(&store, &remote);
    let discovery = "https://issuer.example/.well-known/openid-configuration";
    assert_eq!(vm.host.dispatched[0].1, "outbound|443||issuer.example");
    assert_eq!(vm.host.dispatched[0].2, discovery);
    // Two round trips: the lease covers both timeouts and the margin.
    let name = seal().name("state", &remote.sources[0].key);
    let lease = {
        let store = store.borrow();
        let record = &store.records[&name].0;
        Shared::decode(seal().open(&name, record).unwrap())
            .unwrap()
            .lease_until
    };
    assert_eq!(lease, T0 + 2 * TIMEOUT_MS + 1_000);
    vm.respond(
        Some("200"),
        br#"{"issuer":"https://issuer.example/","jwks_uri":"https://keys.example:8443/k"}"#,
        T0 + 5,
    );
    assert_eq!(vm.host.dispatched[1].1, "outbound|8443||keys.example");
    assert_eq!(vm.host.dispatched[1].2, "https://keys.example:8443/k");
    vm.respond(Some("200"), &rsa_body(), T0 + 10);
    assert_eq!(vm.host.decided.last(), Some(&(1, Redecided::Continued)));
    let refresh = T0 + 10 + CACHE_DURATION_MS - REFRESH_AHEAD_MS;
    vm.tick(refresh);
    assert_eq!(vm.fetches(), 3);
    assert_eq!(
        vm.host.dispatched[2].2, "https://keys.example:8443/k",
        "the refresh fetches the learned jwks_uri"
    );
    vm.respond(Some("503"), b"", refresh);
    vm.tick(refresh + 1_000);
    assert_eq!(
        vm.host.dispatched[3].2, discovery,
        "after a failure the retry discovers again"
    );
}

#[test]
fn a_response_is_judged_before_its_body_is_read() {
    let too_large = vec![b' '; mesh_authn::remote_jwks::MAX_FETCH_BODY_BYTES + 1];
    let symmetric_only = br#"{"keys":[{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"}]}"#;
    let long_error = vec![b'x'; 1_000];
    // (status, body, keys served, bytes of the body read)
    type Case<'a> = (Option<&'a str>, &'a [u8], bool, Vec<usize>);
    let cases: [Case<'_>; 6] = [
        (Some("200"), &rsa_body(), true, vec![rsa_body().len()]),
        (Some("200"), &too_large, false, vec![]),
        (Some("404"), &long_error, false, vec![80]),
        (None, b"", false, vec![]),
        (Some("200"), b"not json", false, vec![8]),
        (
            Some("200"),
            symmetric_only,
            false,
            vec![symmetric_only.len()],
        ),
    ];
    for (status, body, served, reads) in cases {
        let store = store();
        let mut vm = Vm::fetching(&store, &remote());
        vm.respond(status, body, T0 + 5);
        let what = format!("{status:?} with {} bytes", body.len());
        assert_eq!(vm.keys_ready(T0 + 5), served, "{what}");
        assert_eq!(*vm.host.body_reads.borrow(), reads, "{what}");
        let expected = if served {
            Redecided::Continued
        } else {
            Redecided::Answered
        };
        assert_eq!(vm.host.decided.last(), Some(&(1, expected)), "{what}");
    }
}

#[test]
fn the_tick_follows_what_is_waiting() {
    let store = store();
    let (mut a, mut b) = (Vm::new(&store), Vm::new(&store));
    assert_eq!(a.host.ticks, vec![1_000], "idle: once a second");
    a.wait(1, first_use(), T0);
    assert_eq!(
        a.host.ticks.last(),
        Some(&1),
        "a request waits: wake at once"
    );
    a.tick(T0);
    a.tick(T0 + 1);
    assert_eq!(a.fetches(), 1);
    assert_eq!(
        a.host.ticks.last(),
        Some(&20),
        "a fetch runs: poll every 20 ms"
    );
    // Another worker without waiters polls at the lease's end, at least every 20 ms.
    b.tick(T0 + LEASE_MS - 100);
    assert_eq!(b.rt.tick_ms(), 100);
    b.tick(T0 + LEASE_MS - 10);
    assert_eq!(b.rt.tick_ms(), 20);
    a.respond(Some("200"), &rsa_body(), T0 + 10);
    assert_eq!(
        a.host.ticks.last(),
        Some(&1_000),
        "nothing waits, the refresh is minutes away"
    );
}

#[test]
fn two_configurations_never_share_records() {
    let store = store();
    let mut a = Vm::new(&store);
    let mut host = Fake::new(&store);
    let rt = JwksRuntime::new(&remote(), ROOT_ID, b"another configuration", &mut host).unwrap();
    let mut b = Vm { rt, host };
    a.fetch_ok(T0);
    b.wait(2, first_use(), T0 + 10);
    b.tick(T0 + 10);
    assert!(!b.keys_ready(T0 + 10), "the other configuration's body");
    assert_eq!(b.fetches(), 1, "its own lease, its own fetch");
    assert_eq!(
        store.borrow().records.len(),
        3,
        "two records of the first configuration, one of the second"
    );
}
