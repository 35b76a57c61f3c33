//! The HTTP context: reads the request, asks the core, applies the decision.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::crypto;
use super::host;
use super::jwks_host::{self, SharedRuntime};
use super::per_config::PerConfig;
use crate::decision::{Decision, LocalReply, Mutations};
use crate::jwt::AuthnStatus;
use crate::peer_authn::PeerVerdict;
use crate::remote_jwks::{KeyWait, NoRemoteKeys, RemoteKeys};
use crate::request::Request;
use crate::request_authn::Attribution;
use crate::request_authn::Env;

/// `HttpContext` for one request.
pub struct AuthnHttp {
    /// Its root's configuration and counters (`None`: the root has no valid configuration).
    state: Option<Rc<PerConfig>>,
    context_id: u32,
    /// The VM's remote-JWKS runtime, when the configuration has remote key sets.
    jwks: Option<SharedRuntime>,
}

impl AuthnHttp {
    pub(super) fn new(
        state: Option<Rc<PerConfig>>,
        context_id: u32,
        jwks: Option<SharedRuntime>,
    ) -> AuthnHttp {
        AuthnHttp {
            state,
            context_id,
            jwks,
        }
    }
}

/// Fail closed: the filter could not decide, so the request does not go through (counted as
/// `denied.internal_error` when the configuration has counters).
fn fail_closed(state: Option<&PerConfig>, why: &str) -> Action {
    log::debug!("refusing request: {why}");
    if let Some(state) = state {
        state.count(|c| c.record_internal_error());
    }
    let body = format!("mesh-authn: {why}");
    if let Err(status) =
        host::send_local_response(500, "mesh_authn_internal_error", body.as_bytes(), &[])
    {
        log::warn!("could not send a local reply: {status}");
    }
    Action::Pause
}

/// What became of the request being decided.
pub(super) enum Outcome {
    /// Let it go on (mutations applied).
    Continue,
    /// Answered locally (denied or refused).
    Answered,
    /// Pause it until these keys are fetched.
    Wait(KeyWait),
}

/// Decides the current (effective) request and applies the decision: from the stream's own
/// `on_http_request_headers`, and again from the root when keys it waited for arrive.
pub(super) fn decide_current(state: &PerConfig, remote: &dyn RemoteKeys, now_ms: u64) -> Outcome {
    let config = &*state.config;
    let refuse = |why: &str| fail_closed(Some(state), why);
    let request = match host::request_headers() {
        Ok(request) => request,
        Err(status) => {
            refuse(&format!("cannot read request headers: {status}"));
            return Outcome::Answered;
        }
    };
    let crypto = crypto::current();
    let env = Env {
        now: now_ms / 1000,
        crypto: &*crypto,
        remote,
        cache: Some(&config.token_cache),
    };
    let (decision, attribution) = config.request_authn.authenticate_attributed(&request, &env);
    match &decision {
        Decision::Allow(mutations) => {
            // Counted once applied: a request refused here is counted as `internal_error`.
            if let Err(why) = apply_mutations(mutations) {
                refuse(&why);
                return Outcome::Answered;
            }
            state.count(|c| c.record(&decision, &attribution));
            Outcome::Continue
        }
        Decision::Deny(status) => {
            state.count(|c| c.record(&decision, &attribution));
            deny(*status, &request);
            Outcome::Answered
        }
        Decision::NeedKeys(wait) => Outcome::Wait(*wait),
    }
}

/// Removes and rewrites what the allowed request must not carry upstream.
fn apply_mutations(mutations: &Mutations) -> Result<(), String> {
    for name in &mutations.remove_headers {
        host::remove_request_header(name)
            .map_err(|status| format!("cannot remove header {name}: {status}"))?;
    }
    if let Some(path) = &mutations.path {
        host::replace_request_header(":path", path)
            .map_err(|status| format!("cannot rewrite :path: {status}"))?;
    }
    apply_header_writes(mutations)
}

/// Answers the current (effective) request with Envoy's reply for `status` (its keys could
/// not be fetched in time).
pub(super) fn deny_current(state: &PerConfig, status: AuthnStatus) {
    let request = host::request_headers().unwrap_or_default();
    state.count(|c| c.record(&Decision::Deny(status), &Attribution::default()));
    deny(status, &request);
}

fn deny(status: AuthnStatus, request: &Request) {
    let reply = LocalReply::for_status(status, request);
    let headers: Vec<(&str, &[u8])> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_slice()))
        .collect();
    if let Err(status) =
        host::send_local_response(reply.code, &reply.details, reply.body.as_bytes(), &headers)
    {
        log::warn!("could not send a local reply: {status}");
    }
}

impl Context for AuthnHttp {}

/// Sets (Envoy's `setCopy`: the first value replaced in place, the others removed) and appends
/// headers, in the order the core gave them.
fn apply_header_writes(mutations: &Mutations) -> Result<(), String> {
    for (name, value) in &mutations.set_headers {
        host::replace_request_header(name, value)
            .map_err(|status| format!("cannot set header {name}: {status}"))?;
    }
    for (name, value) in &mutations.add_headers {
        host::add_request_header(name, value)
            .map_err(|status| format!("cannot add header {name}: {status}"))?;
    }
    Ok(())
}

impl HttpContext for AuthnHttp {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        let Some(state) = self.state.clone() else {
            return fail_closed(None, "the plugin has no valid configuration");
        };
        let refuse = |why: &str| fail_closed(Some(&state), why);
        // PeerAuthentication first, as Istio's filter chain refuses the connection before any
        // HTTP filter runs; a refusal never reaches the upstream nor the JWT checks.
        match super::peer::verdict(&state.config.peer_authn) {
            Ok(PeerVerdict::Allow) => {}
            Ok(PeerVerdict::Deny(denial)) => {
                state.count(|c| c.record_peer_denial(denial));
                return send_reply(&denial.local_reply());
            }
            Err(why) => return refuse(&why),
        }
        if state.config.request_authn.providers().is_empty() {
            state.count(|c| c.record_allowed());
            return Action::Continue;
        }
        let now_ms = match host::now_unix_millis() {
            Ok(now) => now,
            Err(status) => return refuse(&format!("cannot read the clock: {status}")),
        };
        let outcome = match &self.jwks {
            None => decide_current(&state, &NoRemoteKeys, now_ms),
            Some(runtime) => match runtime.try_borrow() {
                Ok(runtime) => decide_current(&state, &runtime.view(now_ms), now_ms),
                Err(_) => return refuse("the JWKS cache is busy"),
            },
        };
        match (outcome, &self.jwks) {
            (Outcome::Continue, _) => Action::Continue,
            (Outcome::Answered, _) => Action::Pause,
            (Outcome::Wait(wait), Some(runtime)) => {
                jwks_host::wait(runtime, &state, self.context_id, wait, now_ms);
                Action::Pause
            }
            (Outcome::Wait(_), None) => {
                deny_current(&state, AuthnStatus::JwksFetchFail);
                Action::Pause
            }
        }
    }
}

/// Answers locally and stops the request.
fn send_reply(reply: &LocalReply) -> Action {
    let headers: Vec<(&str, &[u8])> = reply
        .headers
        .iter()
        .map(|(n, v)| (*n, v.as_slice()))
        .collect();
    if let Err(status) =
        host::send_local_response(reply.code, &reply.details, reply.body.as_bytes(), &headers)
    {
        log::warn!("could not send a local reply: {status}");
    }
    Action::Pause
}

impl Drop for AuthnHttp {
    fn drop(&mut self) {
        // A request that went away while waiting for keys is no longer waited on.
        if let Some(runtime) = &self.jwks {
            if let Ok(mut runtime) = runtime.try_borrow_mut() {
                runtime.forget(self.context_id);
            }
        }
    }
}
