//! Compiling a `RequestAuthentication` resource into Envoy `jwt_authn`-style providers.

use std::rc::Rc;

use serde_json::Value;

use super::istio::{JwtRule, Labels, RequestAuthenticationSpec};
use super::{refuse_target_refs, typed, ConfigError, Resource};
use crate::extract::Location;
use crate::jwt::{Audiences, Jwks};
use crate::outputs::{ClaimHeader, Outputs};
use crate::remote_jwks::{HttpUri, RemoteJwks, SourceKind, DEFAULT_FETCH_TIMEOUT_MS};
use crate::request_authn::{KeySource, Provider};

/// One `RequestAuthentication` resource compiled: its identity, selector and rules.
pub(super) struct RequestAuthnPolicy {
    pub(super) name: String,
    pub(super) namespace: String,
    pub(super) selector: Option<Labels>,
    pub(super) providers: Vec<Provider>,
}

impl RequestAuthnPolicy {
    /// Compiles the resource at `path` (its kind, apiVersion and namespace checked).
    pub(super) fn compile(
        doc: Value,
        path: &str,
        remote: &mut RemoteJwks,
    ) -> Result<RequestAuthnPolicy, ConfigError> {
        if !doc.is_object() {
            return Err(ConfigError::field(
                path,
                "expected a resource (a mapping with apiVersion, kind, metadata, spec)",
            ));
        }
        let resource: Resource = typed(doc, path)?;
        match resource.kind.as_deref().unwrap_or_default() {
            "RequestAuthentication" => {}
            "" => return Err(ConfigError::field(format!("{path}.kind"), "required; supported kinds: RequestAuthentication, PeerAuthentication, AuthorizationPolicy")),
            other => {
                return Err(ConfigError::field(
                    format!("{path}.kind"),
                    format!("unsupported kind `{other}`; supported kinds: RequestAuthentication, PeerAuthentication, AuthorizationPolicy"),
                ))
            }
        }
        let namespace = resource.checked_namespace(path)?;
        let name = resource.metadata.name;
        let spec_path = format!("{path}.spec");
        let spec = resource.spec.unwrap_or(Value::Object(Default::default()));
        let (selector, providers) = compile(spec, &spec_path, remote)?;
        Ok(RequestAuthnPolicy {
            name,
            namespace,
            selector,
            providers,
        })
    }
}

/// A spec's selector (`None`: namespace-wide) and its rules compiled, in document order.
pub(super) fn compile(
    spec: Value,
    spec_path: &str,
    remote: &mut RemoteJwks,
) -> Result<(Option<Labels>, Vec<Provider>), ConfigError> {
    let spec: RequestAuthenticationSpec = typed(spec, spec_path)?;
    refuse_target_refs(
        spec.target_ref.as_ref(),
        spec.target_refs.as_ref(),
        spec_path,
    )?;
    let providers: Vec<Provider> = spec
        .jwt_rules
        .into_iter()
        .enumerate()
        .map(|(i, rule)| compile_rule(rule, &format!("{spec_path}.jwtRules[{i}]"), remote))
        .collect::<Result<_, _>>()?;
    Ok((spec.selector.map(|s| s.match_labels), providers))
}

fn compile_rule(
    rule: JwtRule,
    path: &str,
    remote: &mut RemoteJwks,
) -> Result<Provider, ConfigError> {
    // istiod's `buildSpaceDelimitedClaims` (pilot/pkg/security/authn/policy_applier.go): the
    // rule's claims merged with the defaults `permission` and `scope`, deduplicated and sorted;
    // Envoy `jwt_authn` splits them for authorization (`normalize_payload_in_metadata`).
    let mut space_delimited_claims = vec!["permission".to_owned(), "scope".to_owned()];
    for (i, claim) in rule.space_delimited_claims.iter().enumerate() {
        if claim.is_empty() {
            return Err(ConfigError::field(
                format!("{path}.spaceDelimitedClaims[{i}]"),
                "must not be empty",
            ));
        }
        space_delimited_claims.push(claim.clone());
    }
    space_delimited_claims.sort();
    space_delimited_claims.dedup();
    let required = match rule.presence.as_deref() {
        None | Some("OPTIONAL") => false,
        Some("REQUIRED") => true,
        Some(other) => {
            return Err(ConfigError::field(
                format!("{path}.presence"),
                format!("`{other}` is not OPTIONAL or REQUIRED"),
            ))
        }
    };
    let outputs = compile_outputs(&rule, path)?;
    let timeout_ms = match &rule.timeout {
        Some(timeout) => parse_duration(timeout)
            .filter(|ms| *ms > 0)
            .ok_or_else(|| {
                ConfigError::field(
                    format!("{path}.timeout"),
                    format!("`{timeout}` is not a duration such as `5s` or `0.5s` (above 0)"),
                )
            })?,
        None => DEFAULT_FETCH_TIMEOUT_MS,
    };
    // istiod's validateJwtRule: an empty issuer (any `iss` accepted) needs a `jwksUri`; with an
    // inline `jwks` alone Istio refuses the rule, and so does mesh-authn.
    if rule.issuer.is_empty() && rule.jwks_uri.is_empty() {
        return Err(ConfigError::field(
            format!("{path}.issuer"),
            "empty, and `jwksUri` is not set: Istio requires an issuer or a jwksUri",
        ));
    }
    if !rule.jwks.is_empty() && !rule.jwks_uri.is_empty() {
        return Err(ConfigError::field(
            format!("{path}.jwksUri"),
            "set together with `jwks`; use only one of them",
        ));
    }
    let jwks = if !rule.jwks_uri.is_empty() {
        let uri = HttpUri::parse(&rule.jwks_uri)
            .map_err(|e| ConfigError::field(format!("{path}.jwksUri"), e))?;
        KeySource::Remote(remote.add(SourceKind::JwksUri(uri), timeout_ms))
    } else if rule.jwks.is_empty() {
        // istiod's OIDC discovery: <issuer>/.well-known/openid-configuration.
        let uri = HttpUri::discovery(&rule.issuer).map_err(|e| {
            ConfigError::field(
                format!("{path}.issuer"),
                format!(
                    "{e}: with neither `jwks` nor `jwksUri`, the keys are found by OIDC \
                     discovery from the issuer, which must then be an http(s) URL"
                ),
            )
        })?;
        KeySource::Remote(remote.add(SourceKind::Discovery(uri), timeout_ms))
    } else {
        let jwks = Jwks::parse(&rule.jwks)
            .map_err(|e| ConfigError::field(format!("{path}.jwks"), e.to_string()))?;
        KeySource::Inline(Rc::new(jwks))
    };
    none_empty(path, "audiences", &rule.audiences)?;

    let mut locations = Vec::new();
    for (i, h) in rule.from_headers.iter().enumerate() {
        let at = format!("{path}.fromHeaders[{i}].name");
        if h.name.is_empty() {
            return Err(ConfigError::field(at, "must not be empty"));
        }
        check_header_name(&h.name, &at)?;
        locations.push(Location::Header {
            name: h.name.to_ascii_lowercase(),
            prefix: h.prefix.clone(),
        });
    }
    none_empty(path, "fromParams", &rule.from_params)?;
    locations.extend(rule.from_params.iter().cloned().map(Location::Param));
    none_empty(path, "fromCookies", &rule.from_cookies)?;
    locations.extend(rule.from_cookies.iter().cloned().map(Location::Cookie));
    if locations.is_empty() {
        locations = Location::defaults();
    }
    Ok(Provider {
        issuer: rule.issuer,
        audiences: Audiences::new(&rule.audiences),
        jwks,
        locations,
        forward: rule.forward_original_token,
        outputs,
        required,
        space_delimited_claims,
    })
}

/// `outputPayloadToHeader` and `outputClaimToHeaders`, validated as istiod validates them
/// (claim headers `^[-_A-Za-z0-9]+$` and unique, claims non-empty).
fn compile_outputs(rule: &JwtRule, path: &str) -> Result<Outputs, ConfigError> {
    let mut outputs = Outputs::default();
    if !rule.output_payload_to_header.is_empty() {
        let name = &rule.output_payload_to_header;
        check_header_name(name, &format!("{path}.outputPayloadToHeader"))?;
        outputs.payload_header = Some(name.to_ascii_lowercase());
    }
    for (i, c) in rule.output_claim_to_headers.iter().enumerate() {
        let at = format!("{path}.outputClaimToHeaders[{i}]");
        let valid = |b: u8| b.is_ascii_alphanumeric() || b == b'-' || b == b'_';
        if c.header.is_empty() || !c.header.bytes().all(valid) {
            return Err(ConfigError::field(
                format!("{at}.header"),
                format!("`{}` must match ^[-_A-Za-z0-9]+$", c.header),
            ));
        }
        if c.claim.is_empty() {
            return Err(ConfigError::field(
                format!("{at}.claim"),
                "must not be empty",
            ));
        }
        let header = c.header.to_ascii_lowercase();
        if outputs.claims.iter().any(|o| o.header == header) {
            return Err(ConfigError::field(
                format!("{at}.header"),
                format!("`{}` is used twice; header names must be unique", c.header),
            ));
        }
        outputs.claims.push(ClaimHeader {
            header,
            path: c.claim.split('.').map(str::to_owned).collect(),
        });
    }
    Ok(outputs)
}

/// A header name must be an RFC 9110 `token` (tchar only): Envoy refuses any other name on the
/// wire, so a token or an output under it could never be seen, and the rule would check
/// nothing. Stricter than istiod, which only requires a non-empty name. Upper case is a token:
/// names are lower-cased, as Envoy stores them.
fn check_header_name(name: &str, path: &str) -> Result<(), ConfigError> {
    if name.bytes().all(is_tchar) {
        return Ok(());
    }
    let why = if name.starts_with(':') {
        "a pseudo-header, which Envoy keeps for the request line"
    } else if name.trim() != name {
        "it has leading or trailing white space"
    } else {
        "only letters, digits and !#$%&'*+-.^_`|~ may make a header name (RFC 9110 token)"
    };
    Err(ConfigError::field(
        path,
        format!("`{name}` is not an HTTP header name: {why}; no request could carry it"),
    ))
}

/// RFC 9110 `tchar`: what a header name is made of.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A proto3 JSON Duration (`"5s"`, `"0.5s"`), in milliseconds.
pub(super) fn parse_duration(text: &str) -> Option<u64> {
    let seconds: f64 = text.strip_suffix('s')?.parse().ok()?;
    if !(0.0..=315_576_000_000.0).contains(&seconds) {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    Some((seconds * 1000.0) as u64)
}

/// An output header that is also where some rule reads its token, if any. Envoy removes every
/// rule's output headers before it looks for tokens, so such a token would never be seen and
/// the rule would silently enforce nothing: refused instead.
pub(super) fn output_token_collision(providers: &[Provider]) -> Option<String> {
    providers
        .iter()
        .flat_map(|p| p.outputs.header_names())
        .find(|out| {
            providers.iter().any(|p| {
                p.locations
                    .iter()
                    .any(|l| matches!(l, Location::Header { name, .. } if name == out))
            })
        })
        .map(str::to_owned)
}

/// Refuses an empty entry of a list of strings, naming it (`<path>.<field>[i]`).
fn none_empty(path: &str, field: &str, items: &[String]) -> Result<(), ConfigError> {
    match items.iter().position(String::is_empty) {
        Some(i) => Err(ConfigError::field(
            format!("{path}.{field}[{i}]"),
            "must not be empty",
        )),
        None => Ok(()),
    }
}
