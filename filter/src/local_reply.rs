//! Every reply the filter answers with itself: Envoy `jwt_authn`'s denial, the
//! PeerAuthentication refusal, Envoy RBAC's AuthorizationPolicy denial and the 500 fail-closed
//! refusal. Code, response-code details,
//! body and headers are all built here; the adapter only sends them.

use std::borrow::Cow;

use crate::jwt::AuthnStatus;
use crate::peer_authn::PeerDenial;
use crate::request::Request;

/// A local reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    /// HTTP status.
    pub code: u32,
    /// Response headers.
    pub headers: Vec<(&'static str, Vec<u8>)>,
    /// Response body.
    pub body: Cow<'static, str>,
    /// Response-code details for the access log (`%RESPONSE_CODE_DETAILS%`), no spaces.
    pub details: Cow<'static, str>,
}

/// The longest path echoed in `realm`, as Envoy's `buildOriginalUri` caps it.
const MAX_REALM_PATH_BYTES: usize = 256;

impl LocalReply {
    /// Envoy `jwt_authn`'s reply for a failed request: the status message as body, 401 (403 for
    /// an audience mismatch), and `WWW-Authenticate: Bearer realm="<url>"` with
    /// `, error="invalid_token"` unless the token was missing.
    ///
    /// Unlike Envoy, the realm carries no query string: Envoy echoes the request URL, so a token
    /// sent as `?access_token=` would come back in the response header.
    pub fn jwt_denied(status: AuthnStatus, request: &Request) -> LocalReply {
        let scheme = request
            .first("x-forwarded-proto")
            .or_else(|| request.first(":scheme"))
            .unwrap_or(b"http");
        let host = request.first(":authority").unwrap_or_default();
        let path = request
            .first("x-envoy-original-path")
            .unwrap_or_else(|| request.path());
        let path = path
            .split(|&b| b == b'?' || b == b'#')
            .next()
            .unwrap_or_default();
        let path = path.get(..MAX_REALM_PATH_BYTES).unwrap_or(path);
        let mut www = Vec::with_capacity(64 + host.len() + path.len());
        www.extend_from_slice(b"Bearer realm=\"");
        www.extend_from_slice(scheme);
        www.extend_from_slice(b"://");
        www.extend_from_slice(host);
        www.extend_from_slice(path);
        www.push(b'"');
        if !status.is_missing() {
            www.extend_from_slice(b", error=\"invalid_token\"");
        }
        LocalReply {
            code: status.http_code(),
            headers: vec![("www-authenticate", www)],
            body: Cow::Borrowed(status.message()),
            details: Cow::Owned(format!(
                "mesh_authn_denied{{{}}}",
                status.message().replace(' ', "_")
            )),
        }
    }

    /// PeerAuthentication STRICT's refusal: 403 with the reason. Istio closes the connection at
    /// L4 instead (no filter chain matches); an HTTP filter runs after that choice, so it
    /// answers in HTTP.
    pub fn peer_denied(denial: PeerDenial) -> LocalReply {
        LocalReply {
            code: 403,
            headers: Vec::new(),
            body: Cow::Borrowed(peer_message(denial)),
            details: Cow::Borrowed(peer_details(denial)),
        }
    }

    /// Envoy RBAC's denial (`rbac_filter.cc`): 403, body `RBAC: access denied`, details
    /// `rbac_access_denied_matched_policy[<rule>]` (`[none]` when no ALLOW rule matched).
    /// `None` when the outcome allows.
    pub fn authz_denied(outcome: &crate::authz::Outcome<'_>) -> Option<LocalReply> {
        Some(LocalReply {
            code: 403,
            headers: Vec::new(),
            body: Cow::Borrowed("RBAC: access denied"),
            details: Cow::Owned(outcome.response_code_details()?),
        })
    }

    /// The fail-closed refusal: the filter could not decide (`why`), so the request does not
    /// go through.
    pub fn internal_error(why: &str) -> LocalReply {
        LocalReply {
            code: 500,
            headers: Vec::new(),
            body: Cow::Owned(format!("mesh-authn: {why}")),
            details: Cow::Borrowed("mesh_authn_internal_error"),
        }
    }
}

/// The body of a PeerAuthentication refusal.
fn peer_message(denial: PeerDenial) -> &'static str {
    match denial {
        PeerDenial::NoClientCertificate => {
            "mesh-authn: PeerAuthentication STRICT mTLS requires a client certificate; \
             this connection presented none"
        }
        PeerDenial::NoSpiffeId => {
            "mesh-authn: PeerAuthentication STRICT mTLS requires a SPIFFE identity; \
             the client certificate has no URI SAN"
        }
        PeerDenial::ForeignTrustDomain => {
            "mesh-authn: PeerAuthentication STRICT mTLS: the client certificate's SPIFFE \
             identity is not in the configured trust domain"
        }
    }
}

/// `%RESPONSE_CODE_DETAILS%` of a PeerAuthentication refusal (static: no allocation).
fn peer_details(denial: PeerDenial) -> &'static str {
    match denial {
        PeerDenial::NoClientCertificate => {
            "mesh_authn_peer_denied{strict_mtls_no_client_certificate}"
        }
        PeerDenial::NoSpiffeId => "mesh_authn_peer_denied{strict_mtls_no_spiffe_id}",
        PeerDenial::ForeignTrustDomain => {
            "mesh_authn_peer_denied{strict_mtls_foreign_trust_domain}"
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_matches_envoy_but_drops_the_query() {
        let req = Request::from_pairs(&[
            (":authority", "127.0.0.1:18081"),
            (":path", "/p?access_token=secret"),
            (":scheme", "http"),
        ]);
        let reply = LocalReply::jwt_denied(AuthnStatus::JwtExpired, &req);
        assert_eq!(reply.code, 401);
        assert_eq!(reply.body, "Jwt is expired");
        assert_eq!(
            reply.headers,
            vec![(
                "www-authenticate",
                br#"Bearer realm="http://127.0.0.1:18081/p", error="invalid_token""#.to_vec()
            )]
        );
        assert_eq!(reply.details, "mesh_authn_denied{Jwt_is_expired}");
    }

    #[test]
    fn forwarded_proto_wins_and_missing_has_no_error_and_audience_is_403() {
        let req = Request::from_pairs(&[
            (":authority", "h"),
            (":path", "/"),
            (":scheme", "http"),
            ("x-forwarded-proto", "https"),
        ]);
        let reply = LocalReply::jwt_denied(AuthnStatus::JwtMissed, &req);
        assert_eq!(reply.headers[0].1, br#"Bearer realm="https://h/""#.to_vec());
        assert_eq!(
            LocalReply::jwt_denied(AuthnStatus::JwtAudienceNotAllowed, &req).code,
            403
        );
    }

    #[test]
    fn peer_replies_are_403_with_details_without_spaces() {
        for (i, d) in PeerDenial::ALL.into_iter().enumerate() {
            assert_eq!(d as usize, i);
            let reply = LocalReply::peer_denied(d);
            assert_eq!(reply.code, 403);
            assert!(reply.headers.is_empty());
            assert!(reply.body.contains("STRICT mTLS"), "{}", reply.body);
            assert!(!reply.details.contains(' '), "{}", reply.details);
            // The counter's reason and the access log's say the same.
            assert_eq!(
                reply.details,
                format!("mesh_authn_peer_denied{{{}}}", d.reason())
            );
        }
    }

    #[test]
    fn internal_error_is_500_naming_why() {
        let reply = LocalReply::internal_error("cannot read the clock: InternalFailure");
        assert_eq!(reply.code, 500);
        assert!(reply.headers.is_empty());
        assert_eq!(
            reply.body,
            "mesh-authn: cannot read the clock: InternalFailure"
        );
        assert_eq!(reply.details, "mesh_authn_internal_error");
    }
}
