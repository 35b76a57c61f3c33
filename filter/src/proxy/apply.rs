//! Decide-and-apply, in one place: reads the current (effective) request, asks the core for
//! the decision, and applies it (mutations, or the core's local reply). Used by the stream's
//! `on_http_request_headers` and by the root when it resumes a request that waited for keys.

use super::crypto;
use super::host;
use super::per_config::PerConfig;
use crate::authorize;
use crate::decision::{Decision, Mutations};
use crate::jwt::AuthnStatus;
use crate::local_reply::LocalReply;
use crate::remote_jwks::{KeyWait, RemoteKeys};
use crate::request::Request;
use crate::request_authn::{Attribution, Env};

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
    let config = &state.config;
    let request = match host::request_headers() {
        Ok(request) => request,
        Err(status) => {
            refuse(
                Some(state),
                &format!("cannot read request headers: {status}"),
            );
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
            // AuthorizationPolicy after RequestAuthentication, on the request as the upstream
            // would see it (Envoy's RBAC filter runs after `jwt_authn`).
            if !config.authz.is_empty() {
                match authorize(state, &request, mutations, &attribution) {
                    Ok(true) => {}
                    Ok(false) => return Outcome::Answered,
                    Err(why) => {
                        refuse(Some(state), &why);
                        return Outcome::Answered;
                    }
                }
            }
            // Counted once applied: a request refused here is counted as `internal_error`.
            let applied = apply_mutations(mutations).and_then(|()| match config.export_identity {
                true => export(&attribution),
                false => Ok(()),
            });
            if let Err(why) = applied {
                refuse(Some(state), &why);
                return Outcome::Answered;
            }
            state.count(|c| c.record(&decision, &attribution));
            Outcome::Continue
        }
        Decision::Deny(status) => {
            state.count(|c| c.record(&decision, &attribution));
            send(&LocalReply::jwt_denied(*status, &request));
            Outcome::Answered
        }
        Decision::NeedKeys(wait) => Outcome::Wait(*wait),
    }
}

/// AuthorizationPolicy's verdict on an authenticated request: `Ok(false)` when it denied (the
/// 403 is sent and counted here), `Err` when a property it needs, or the verified token's
/// claims, could not be read.
fn authorize(
    state: &PerConfig,
    request: &Request,
    mutations: &Mutations,
    attribution: &Attribution,
) -> Result<bool, String> {
    let config = &state.config;
    let conn = super::peer::authz_connection(config.authz.needs())?;
    let outcome = authorize::authorize(config, request, mutations, attribution, &conn)
        .map_err(|e| e.to_string())?;
    state.count(|c| c.record_authz(&config.authz, &outcome));
    let Some(reply) = LocalReply::authz_denied(&outcome) else {
        if let Some(m) = outcome.allowed_by {
            log::debug!("AuthorizationPolicy: allowed by {}", m.rule_id);
        }
        return Ok(true);
    };
    log::debug!("AuthorizationPolicy: denied, {}", reply.details);
    send(&reply);
    Ok(false)
}

/// Answers the current (effective) request with Envoy's reply for `status` (its keys could
/// not be fetched in time).
pub(super) fn deny_current(state: &PerConfig, status: AuthnStatus) {
    let request = host::request_headers().unwrap_or_default();
    state.count(|c| c.record(&Decision::Deny(status), &Attribution::default()));
    send(&LocalReply::jwt_denied(status, &request));
}

/// Fail closed: the filter could not decide, so the request does not go through (counted as
/// `denied.internal_error` when the configuration has counters).
pub(super) fn refuse(state: Option<&PerConfig>, why: &str) {
    log::debug!("refusing request: {why}");
    if let Some(state) = state {
        state.count(|c| c.record_internal_error());
    }
    send(&LocalReply::internal_error(why));
}

/// Sends a local reply the core built.
pub(super) fn send(reply: &LocalReply) {
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

/// Writes who the allowed request is ([`crate::export`]) as properties for the filters after
/// this one and the access log.
fn export(attribution: &Attribution) -> Result<(), String> {
    let san = super::peer::peer_uri_san()?;
    let exports = crate::export::exports(attribution, san.as_deref()).map_err(|e| e.to_string())?;
    for (key, value) in exports {
        host::set_property(&[key], value.as_bytes())
            .map_err(|status| format!("cannot set property {key}: {status}"))?;
    }
    Ok(())
}

/// Removes and rewrites what the allowed request must not carry upstream, then sets
/// (Envoy's `setCopy`: the first value replaced in place, the others removed) and appends
/// headers, in the order the core gave them.
fn apply_mutations(mutations: &Mutations) -> Result<(), String> {
    for name in &mutations.remove_headers {
        host::remove_request_header(name)
            .map_err(|status| format!("cannot remove header {name}: {status}"))?;
    }
    if let Some(path) = &mutations.path {
        host::replace_request_header(":path", path)
            .map_err(|status| format!("cannot rewrite :path: {status}"))?;
    }
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
