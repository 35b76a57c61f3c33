//! RequestAuthentication semantics over one request, as Istio configures Envoy `jwt_authn`
//! (`policy_applier.go#convertToEnvoyJwtConfig`): one provider per rule, and the requirement:
//!
//! - one rule: `requires_any[P0, allow_missing]`;
//! - n rules: `requires_any[P0, …, Pn-1, requires_all[any(P0, allow_missing), …]]`;
//! - any rule `presence: REQUIRED`: `requires_all[Pi or any(Pi, allow_missing), …]`.
//!
//! So a request without tokens passes, every token at a rule's locations must verify, and a
//! verified token is removed (unless `forwardOriginalToken`) before the next branch looks,
//! which is what makes Envoy's result order-dependent; this module reproduces that order.

use std::rc::Rc;

use smallvec::SmallVec;

use crate::bytes;
use crate::decision::Decision;
use crate::extract::{text, FoundToken, Location, RequestState};
use crate::jwt::verify::{self, SignatureVerifier};
use crate::jwt::{Audiences, AuthnStatus, Jwks, Jwt, CLOCK_SKEW_SECS};
use crate::outputs::Outputs;
use crate::remote_jwks::{FetchReason, KeyWait, Keys, RemoteKeys, SourceId};
use crate::request::Request;
use crate::token_cache::{TokenCache, TokenKey};

/// Where a provider's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// `jwks`: parsed at configuration time.
    Inline(Rc<Jwks>),
    /// `jwksUri` or OIDC discovery: fetched, looked up through [`Env::remote`].
    Remote(SourceId),
}

/// One `jwtRule` compiled: Envoy's `JwtProvider`.
#[derive(Debug, Clone)]
pub struct Provider {
    /// Required `iss`; empty accepts any.
    pub issuer: String,
    /// Accepted audiences.
    pub audiences: Audiences,
    /// The key set.
    pub jwks: KeySource,
    /// Where its tokens are.
    pub locations: Vec<Location>,
    /// `forwardOriginalToken`.
    pub forward: bool,
    /// `outputPayloadToHeader` and `outputClaimToHeaders`.
    pub outputs: Outputs,
    /// `presence: REQUIRED`: a request without a token at this rule's locations is refused.
    pub required: bool,
    /// Top-level claims AuthorizationPolicy matches as lists of space-separated words
    /// (`permission`, `scope` and the rule's `spaceDelimitedClaims`).
    pub space_delimited_claims: Vec<String>,
}

/// The merged rules of every RequestAuthentication that applies to the workload.
#[derive(Debug, Clone, Default)]
pub struct RequestAuthn {
    providers: Vec<Provider>,
}

/// What verification needs from outside the request: the clock and the signature backend.
#[derive(Clone, Copy)]
pub struct Env<'a> {
    /// Now, in Unix seconds.
    pub now: u64,
    /// The signature backend.
    pub crypto: &'a dyn SignatureVerifier,
    /// The remote key sets as they are now.
    pub remote: &'a dyn RemoteKeys,
    /// The VM's verified-token cache (`None`: verify every token).
    pub cache: Option<&'a TokenCache>,
}

/// Which rules a decision came from, by index into [`RequestAuthn::providers`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attribution {
    /// The request was a CORS preflight, let through unauthenticated.
    pub cors_preflight: bool,
    /// Rules that verified at least one token (on an allowed request, the rules it passed by).
    pub verified: SmallVec<[usize; 2]>,
    /// On a denied request, the rule whose failure is the reply.
    pub denied_by: Option<usize>,
    /// The token AuthorizationPolicy reads: the last one that verified. Envoy `jwt_authn`
    /// writes each verified payload under the one `payload_in_metadata` key istiod gives every
    /// provider (`payload`; `verifier.cc#addExtractedData` overwrites), and Istio's RBAC
    /// matchers read that key, so the last verified token is the request's principal.
    pub token: Option<VerifiedToken>,
    failures: SmallVec<[(usize, AuthnStatus); 2]>,
}

/// A verified token and the rule (by index into [`RequestAuthn::providers`]) it verified under.
#[derive(Debug, Clone)]
pub struct VerifiedToken {
    /// The rule.
    pub provider: usize,
    /// The token (from the cache or verified now: the payload is there either way).
    pub jwt: Rc<Jwt>,
}

impl PartialEq for VerifiedToken {
    /// The same rule and the same claims (a payload that cannot be read equals only the same
    /// payload text).
    fn eq(&self, other: &Self) -> bool {
        self.provider == other.provider
            && match (self.jwt.payload(), other.jwt.payload()) {
                (Ok(a), Ok(b)) => a == b,
                _ => self.jwt.payload_b64() == other.jwt.payload_b64(),
            }
    }
}

impl Eq for VerifiedToken {}

/// A provider's verdict on the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Verified,
    Failed(AuthnStatus),
    /// Keys are being fetched: decide again when they are there.
    Wait(KeyWait),
}

impl RequestAuthn {
    /// From providers already in Istio's order (sorted by issuer). Each provider's locations
    /// are put in Envoy's extraction order ([`Location::envoy_order`]).
    pub fn new(mut providers: Vec<Provider>) -> RequestAuthn {
        for p in &mut providers {
            Location::envoy_order(&mut p.locations);
        }
        RequestAuthn { providers }
    }

    /// The providers, in evaluation order.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// Decides the request.
    pub fn authenticate(&self, request: &Request, env: &Env<'_>) -> Decision<'_> {
        self.authenticate_attributed(request, env).0
    }

    /// Decides the request, and says which rules the decision came from (for counters).
    pub fn authenticate_attributed(
        &self,
        request: &Request,
        env: &Env<'_>,
    ) -> (Decision<'_>, Attribution) {
        let mut tally = Attribution::default();
        let decision = self.decide(request, env, &mut tally);
        if let Decision::Deny(status) = decision {
            tally.denied_by = tally
                .failures
                .iter()
                .rev()
                .find(|(_, s)| *s == status)
                .map(|(i, _)| *i);
        }
        (decision, tally)
    }

    fn decide(&self, request: &Request, env: &Env<'_>, tally: &mut Attribution) -> Decision<'_> {
        let mut state = RequestState::new(request);
        // Every rule's output headers go first, whatever happens next, CORS preflight
        // included: a client cannot supply them (measured: Envoy does the same).
        for p in &self.providers {
            state.sanitize(&p.outputs);
        }
        if is_cors_preflight(request) {
            // Istio sets `bypass_cors_preflight`: a preflight carries no credentials.
            tally.cors_preflight = true;
            return Decision::allow(state);
        }
        let verdict = match self.providers.as_slice() {
            [] => Verdict::Verified,
            some if some.iter().any(|p| p.required) => Self::all_of(some, &mut state, tally, env),
            [only] => match verify_provider(0, only, &mut state, tally, env) {
                Verdict::Failed(AuthnStatus::JwtMissed) => Verdict::Verified,
                other => other,
            },
            many => self.any_of_all(many, &mut state, tally, env),
        };
        match verdict {
            Verdict::Verified => Decision::allow(state),
            Verdict::Failed(status) => Decision::Deny(status),
            Verdict::Wait(wait) => Decision::NeedKeys(wait),
        }
    }

    /// With any rule `presence: REQUIRED`, istiod (istio/istio #60830) drops the outer
    /// `requires_any` and emits `requires_all[R, any(O, allow_missing), …]`: a required rule is
    /// a bare provider (missing ⇒ `Jwt is missing`), an optional one may be missing, and the
    /// first failure, in rule order, is the answer.
    fn all_of<'c>(
        providers: &'c [Provider],
        state: &mut RequestState<'_, 'c>,
        tally: &mut Attribution,
        env: &Env<'_>,
    ) -> Verdict {
        for (i, p) in providers.iter().enumerate() {
            match verify_provider(i, p, state, tally, env) {
                Verdict::Failed(AuthnStatus::JwtMissed) if !p.required => {}
                Verdict::Failed(status) => return Verdict::Failed(status),
                wait @ Verdict::Wait(_) => return wait,
                Verdict::Verified => {}
            }
        }
        Verdict::Verified
    }

    /// `requires_any[P0..Pn-1, requires_all[any(Pi, allow_missing)...]]`, with Envoy's error
    /// aggregation (`verifier.cc#AnyVerifierImpl`).
    fn any_of_all<'c>(
        &self,
        providers: &'c [Provider],
        state: &mut RequestState<'_, 'c>,
        tally: &mut Attribution,
        env: &Env<'_>,
    ) -> Verdict {
        let mut statuses = Vec::with_capacity(providers.len() + 1);
        // A rule waiting for keys does not hold up the others: Envoy's any-verifier answers as
        // soon as one child verifies. Only when none does is the first wait the answer.
        let mut waiting = None;
        for (i, p) in providers.iter().enumerate() {
            match verify_provider(i, p, state, tally, env) {
                Verdict::Verified => return Verdict::Verified,
                Verdict::Failed(s) => statuses.push(s),
                Verdict::Wait(wait) => waiting = waiting.or(Some(wait)),
            }
        }
        if let Some(wait) = waiting {
            return Verdict::Wait(wait);
        }
        // The requires_all branch runs on what earlier branches left of the request.
        let mut all = Verdict::Verified;
        for (i, p) in providers.iter().enumerate() {
            match verify_provider(i, p, state, tally, env) {
                Verdict::Failed(s) if !s.is_missing() => {
                    all = Verdict::Failed(s);
                    break;
                }
                wait @ Verdict::Wait(_) => return wait,
                _ => {}
            }
        }
        let Verdict::Failed(all_status) = all else {
            return Verdict::Verified;
        };
        statuses.push(all_status);
        // Prefer errors that are neither JwtMissed nor JwtUnknownIssuer (the last such wins);
        // prefer JwtUnknownIssuer over JwtMissed.
        let mut final_status = AuthnStatus::JwtMissed;
        for s in statuses {
            let plain = s != AuthnStatus::JwtMissed && s != AuthnStatus::JwtUnknownIssuer;
            if plain || final_status == AuthnStatus::JwtMissed {
                final_status = s;
            }
        }
        Verdict::Failed(final_status)
    }
}

/// Envoy's `ProviderVerifier`: every token at the provider's locations must verify, the last
/// extracted first; the first failure ends it. A verified token is removed at once unless the
/// rule forwards it.
fn verify_provider<'c>(
    index: usize,
    provider: &'c Provider,
    state: &mut RequestState<'_, 'c>,
    tally: &mut Attribution,
    env: &Env<'_>,
) -> Verdict {
    // Envoy sanitizes at every provider verification, which also drops what an earlier pass
    // of the same provider added.
    state.sanitize(&provider.outputs);
    let tokens = state.extract(&provider.locations);
    if tokens.is_empty() {
        tally.failures.push((index, AuthnStatus::JwtMissed));
        return Verdict::Failed(AuthnStatus::JwtMissed);
    }
    for FoundToken { location, token } in tokens.iter().rev() {
        // A rule that copies claims needs the payload's map: a token without one is refused.
        let checked = check_token_cached(provider, token.as_ref(), env)
            .and_then(|jwt| Ok((provider.outputs.headers_for(&jwt)?, jwt)));
        let (headers, jwt) = match checked {
            Ok(checked) => checked,
            Err(TokenFailure::Status(status)) => {
                tally.failures.push((index, status));
                return Verdict::Failed(status);
            }
            Err(TokenFailure::Wait(wait)) => return Verdict::Wait(wait),
        };
        if !tally.verified.contains(&index) {
            tally.verified.push(index);
        }
        tally.token = Some(VerifiedToken {
            provider: index,
            jwt: Rc::clone(&jwt),
        });
        for (name, value) in headers {
            state.add_header(name, value);
        }
        if !provider.forward {
            state.remove(location);
        }
    }
    Verdict::Verified
}

/// Envoy's `isCorsPreflightRequest`: `OPTIONS` with a non-empty `Origin` and
/// `Access-Control-Request-Method`.
fn is_cors_preflight(request: &Request) -> bool {
    request.first(":method") == Some(b"OPTIONS")
        && request.first("origin").is_some_and(|v| !v.is_empty())
        && request
            .first("access-control-request-method")
            .is_some_and(|v| !v.is_empty())
}

/// Envoy's authenticator order: parse, issuer, time, audience, signature. So an expired token
/// with a forged signature says `Jwt is expired`.
/// Remote keys that are not there yet fail as `Jwks remote fetch is failed`.
pub fn verify_token(provider: &Provider, token: &str, env: &Env<'_>) -> Result<Jwt, AuthnStatus> {
    check_token(provider, token, env).map_err(|f| match f {
        TokenFailure::Status(s) => s,
        TokenFailure::Wait(_) => AuthnStatus::JwksFetchFail,
    })
}

/// Why a token did not verify: a status, or keys to wait for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenFailure {
    /// Verification failed.
    Status(AuthnStatus),
    /// The keys (or a refetch for an unknown `kid`) are being fetched.
    Wait(KeyWait),
}

impl From<AuthnStatus> for TokenFailure {
    fn from(s: AuthnStatus) -> Self {
        TokenFailure::Status(s)
    }
}

/// [`verify_token`], saying when the token has to wait for remote keys. Only a token that got
/// as far as the signature check waits: a request without a token, or with an expired or
/// foreign one, is decided at once.
pub fn check_token(provider: &Provider, token: &str, env: &Env<'_>) -> Result<Jwt, TokenFailure> {
    check_token_with(provider, token, env).map(|(jwt, _)| jwt)
}

/// [`check_token`] through the verified-token cache (`env.cache`), for a token as the request
/// carries it: a hit skips the signature but not issuer, time and audience, which
/// [`check_claims`] checks again for this provider; only a token that passed everything is
/// remembered, with the key set that verified it. The bytes are read as text ([`text`]) only
/// on a miss: a cached token is ASCII, so bytes that are not UTF-8 never hit.
pub fn check_token_cached(
    provider: &Provider,
    token: &[u8],
    env: &Env<'_>,
) -> Result<Rc<Jwt>, TokenFailure> {
    let Some(cache) = env.cache else {
        return check_token(provider, &text(token), env).map(Rc::new);
    };
    // Hashed once: the lookup's key is the insert's on a miss.
    let key = TokenKey::new(token);
    if let Some(keys) = current_keys(provider, env) {
        if let Some(jwt) = cache.get(&key, &keys, env.now) {
            check_claims(provider, &jwt, env.now)?;
            return Ok(jwt);
        }
    }
    let (mut jwt, keys) = check_token_with(provider, &text(token), env)?;
    // What the cache keeps: the token and its claims, not the decoded signature.
    jwt.signature = Vec::new();
    let jwt = Rc::new(jwt);
    cache.insert(&key, &keys, Rc::clone(&jwt));
    Ok(jwt)
}

/// The claim checks, in Envoy's authenticator order: issuer, time, audience. The one path for
/// a freshly parsed token and for a cache hit (which skips only the signature).
pub fn check_claims(provider: &Provider, jwt: &Jwt, now: u64) -> Result<(), AuthnStatus> {
    if !provider.issuer.is_empty() && !bytes::same(provider.issuer.as_bytes(), jwt.iss.as_bytes()) {
        return Err(AuthnStatus::JwtUnknownIssuer);
    }
    jwt.check_time(now, CLOCK_SKEW_SECS)?;
    if !provider.audiences.allows(&jwt.audiences) {
        return Err(AuthnStatus::JwtAudienceNotAllowed);
    }
    Ok(())
}

/// The key set a provider verifies with now, without waiting or fetching.
fn current_keys(provider: &Provider, env: &Env<'_>) -> Option<Rc<Jwks>> {
    match &provider.jwks {
        KeySource::Inline(jwks) => Some(Rc::clone(jwks)),
        KeySource::Remote(source) => match env.remote.keys(*source) {
            Keys::Ready(jwks) => Some(jwks),
            Keys::Wait | Keys::Failed => None,
        },
    }
}

/// [`check_token`], also giving the key set the signature verified under.
fn check_token_with(
    provider: &Provider,
    token: &str,
    env: &Env<'_>,
) -> Result<(Jwt, Rc<Jwks>), TokenFailure> {
    let jwt = Jwt::parse(token)?;
    check_claims(provider, &jwt, env.now)?;
    let source = match &provider.jwks {
        KeySource::Inline(jwks) => {
            verify::verify_signature(&jwt, jwks, env.crypto)?;
            return Ok((jwt, Rc::clone(jwks)));
        }
        KeySource::Remote(source) => *source,
    };
    let jwks = match env.remote.keys(source) {
        Keys::Ready(jwks) => jwks,
        Keys::Wait => {
            return Err(TokenFailure::Wait(KeyWait {
                source,
                reason: FetchReason::FirstUse,
            }))
        }
        Keys::Failed => return Err(AuthnStatus::JwksFetchFail.into()),
    };
    match verify::verify_signature(&jwt, &jwks, env.crypto) {
        // Rotation: the issuer signs with a key this set does not have yet. (A set with a
        // kid-less key tries it for any kid, so that failure can be a rotation too; a failure
        // under a key that has the token's kid is a bad signature, never refetched for.)
        Err(AuthnStatus::JwksKidAlgMismatch | AuthnStatus::JwtVerificationFail)
            if !jwt.kid.is_empty()
                && !jwks.keys().iter().any(|k| k.kid == jwt.kid)
                && env.remote.refetch_for_unknown_kid(source) =>
        {
            Err(TokenFailure::Wait(KeyWait {
                source,
                reason: FetchReason::UnknownKid,
            }))
        }
        Err(status) => Err(status.into()),
        Ok(()) => Ok((jwt, jwks)),
    }
}
