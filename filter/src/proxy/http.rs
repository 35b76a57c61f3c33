//! The HTTP context: PeerAuthentication's verdict on the connection, then the
//! RequestAuthentication decision and AuthorizationPolicy ([`apply`](super::apply)), pausing
//! the request while keys it needs are fetched.

use std::rc::Rc;

use super::apply::{self, Outcome};
use super::host;
use super::jwks_host;
use super::per_config::PerConfig;
use crate::host_abi::Action;
use crate::local_reply::LocalReply;
use crate::peer_authn::PeerVerdict;
use crate::remote_jwks::NoRemoteKeys;

/// The HTTP context of one request, from its creation to its deletion.
pub struct AuthnHttp {
    /// Its root's configuration and counters (`None`: the root has no valid configuration).
    state: Option<Rc<PerConfig>>,
    context_id: u32,
}

impl AuthnHttp {
    pub(super) fn new(state: Option<Rc<PerConfig>>, context_id: u32) -> AuthnHttp {
        AuthnHttp { state, context_id }
    }
}

impl AuthnHttp {
    /// The configuration this request is decided under, and its context id.
    pub(super) fn state(&self) -> (Option<Rc<PerConfig>>, u32) {
        (self.state.clone(), self.context_id)
    }
}

/// The request's headers arrived: decide (or pause for keys) and apply. Takes the context's
/// state out of the dispatcher's table, which is not borrowed while this runs.
pub(super) fn on_request_headers(state: Option<Rc<PerConfig>>, context_id: u32) -> Action {
    let Some(state) = state else {
        apply::refuse(None, "the plugin has no valid configuration");
        return Action::Pause;
    };
    let refuse = |why: &str| {
        apply::refuse(Some(&state), why);
        Action::Pause
    };
    // PeerAuthentication first, as Istio's filter chain refuses the connection before any
    // HTTP filter runs; a refusal never reaches the upstream nor the JWT checks.
    match super::peer::verdict(&state.config.peer_authn) {
        Ok(PeerVerdict::Allow) => {}
        Ok(PeerVerdict::Deny(denial)) => {
            state.count(|c| c.record_peer_denial(denial));
            apply::send(&LocalReply::peer_denied(denial));
            return Action::Pause;
        }
        Err(why) => return refuse(&why),
    }
    if state.config.request_authn.providers().is_empty() && state.config.authz.is_empty() {
        state.count(|c| c.record_allowed());
        return Action::Continue;
    }
    let now_ms = match host::now_unix_millis() {
        Ok(now) => now,
        Err(status) => return refuse(&format!("cannot read the clock: {status}")),
    };
    let outcome = match &state.jwks {
        None => apply::decide_current(&state, &NoRemoteKeys, now_ms),
        Some(runtime) => match runtime.try_borrow() {
            Ok(runtime) => apply::decide_current(&state, &runtime.view(now_ms), now_ms),
            Err(_) => return refuse("the JWKS cache is busy"),
        },
    };
    match outcome {
        Outcome::Continue => Action::Continue,
        Outcome::Answered => Action::Pause,
        Outcome::Wait(wait) => {
            jwks_host::wait(&state, context_id, wait, now_ms);
            Action::Pause
        }
    }
}

impl Drop for AuthnHttp {
    fn drop(&mut self) {
        // A request that went away while waiting for keys is no longer waited on.
        if let Some(state) = &self.state {
            state.with_jwks(|runtime, _| runtime.forget(self.context_id));
        }
    }
}
