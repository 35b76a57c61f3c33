//! Who the request is, for the filters after this one and the access log: the values the
//! adapter writes as proxy-wasm properties (Envoy keeps a property `<key>` as the filter state
//! object `wasm.<key>`). Only what was verified: a token that verified, a peer certificate the
//! listener validated. Nothing a client sends in a header can become one.

use crate::jwt::UnreadablePayload;
use crate::request_authn::Attribution;

/// `<iss>/<sub>` of the verified token (Istio's `request.auth.principal`).
pub const REQUEST_PRINCIPAL: &str = "mesh_authn.request_principal";
/// The first URI SAN of the validated peer certificate, as Envoy gives it
/// (`spiffe://cluster.local/ns/foo/sa/bar`).
pub const PEER_PRINCIPAL: &str = "mesh_authn.peer_principal";
/// The verified token's payload, as JSON.
pub const CLAIMS: &str = "mesh_authn.claims";

/// The `(key, value)` pairs to write for an allowed request: the token AuthorizationPolicy
/// reads (the last that verified) and the peer's URI SAN, each only when there is one.
///
/// An error when that token's payload cannot be read into a map ([`crate::jwt::Jwt::payload`]):
/// the request must then be refused, not passed on without its claims (or with others in
/// their place).
pub fn exports(
    attribution: &Attribution,
    peer_uri_san: Option<&str>,
) -> Result<Vec<(&'static str, String)>, UnreadablePayload> {
    let mut out = Vec::new();
    if let Some(token) = &attribution.token {
        let jwt = &token.jwt;
        if !jwt.iss.is_empty() && !jwt.sub.is_empty() {
            out.push((REQUEST_PRINCIPAL, format!("{}/{}", jwt.iss, jwt.sub)));
        }
        // A map of strings to JSON values always serializes; were it not to, refuse alike.
        let json = serde_json::to_string(jwt.payload()?).map_err(|_| UnreadablePayload)?;
        out.push((CLAIMS, json));
    }
    if let Some(san) = peer_uri_san.filter(|s| !s.is_empty()) {
        out.push((PEER_PRINCIPAL, san.to_owned()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_principal_only_from_a_certificate_and_nothing_without_a_token() {
        let none = Attribution::default();
        assert!(exports(&none, None).unwrap().is_empty());
        assert!(exports(&none, Some("")).unwrap().is_empty());
        assert_eq!(
            exports(&none, Some("spiffe://cluster.local/ns/foo/sa/bar")).unwrap(),
            vec![(
                PEER_PRINCIPAL,
                "spiffe://cluster.local/ns/foo/sa/bar".to_owned()
            )]
        );
    }
}
