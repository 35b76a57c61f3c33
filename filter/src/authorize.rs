//! The AuthorizationPolicy step of the filter's decision, after PeerAuthentication and
//! RequestAuthentication allowed the request: what the policies see (the request as the
//! upstream will get it, the verified token, the connection) and their verdict. The adapter
//! (`proxy/apply.rs`) and `mesh-authn explain` both call [`authorize`], so they cannot differ.

use std::net::IpAddr;

use crate::authz::{Attributes, Outcome, PeerIdentities, TokenClaims};
use crate::config::FilterConfig;
use crate::decision::Mutations;
use crate::jwt::UnreadablePayload;
use crate::request::Request;
use crate::request_authn::Attribution;

/// The connection properties AuthorizationPolicy reads; the adapter fills in only those
/// [`crate::authz::Authz::needs`] asks for (anything else `None`: matches no value).
#[derive(Debug, Default, Clone)]
pub struct Connection {
    /// The peer certificate's first URI SAN (`connection.uri_san_peer_certificate`).
    pub peer_uri_san: Option<String>,
    /// Its first DNS SAN (`connection.dns_san_peer_certificate`).
    pub peer_dns_san: Option<String>,
    /// Its subject (`connection.subject_peer_certificate`; empty reads as `None`).
    pub peer_subject: Option<String>,
    /// `source.address`: Envoy's downstream remote address, which the connection manager
    /// derives from `x-forwarded-for` unless `use_remote_address` is set (measured on Envoy
    /// 1.40, see the README).
    pub remote_ip: Option<IpAddr>,
    /// The address the connection came to.
    pub destination_ip: Option<IpAddr>,
    /// The port the connection came to.
    pub destination_port: Option<u32>,
    /// The TLS SNI.
    pub sni: Option<String>,
}

/// The policies' verdict on a request RequestAuthentication allowed with `mutations`: they
/// read the request after those changes (removed tokens, output headers), as Envoy's RBAC
/// filter reads what `jwt_authn` left, and the last token that verified (`attribution`).
///
/// An error when that token's payload cannot be read into a map ([`crate::jwt::Jwt::payload`]):
/// a policy on its claims could not be decided, so the request must be refused, never decided
/// as if the token claimed nothing.
pub fn authorize<'c>(
    config: &'c FilterConfig,
    request: &Request,
    mutations: &Mutations,
    attribution: &Attribution,
    conn: &Connection,
) -> Result<Outcome<'c>, UnreadablePayload> {
    let effective;
    let headers = if mutations.is_empty() {
        request
    } else {
        effective = mutations.apply_to(request);
        &effective
    };
    let token = match &attribution.token {
        Some(t) => match config.request_authn.providers().get(t.provider) {
            Some(provider) => Some(TokenClaims {
                payload: t.jwt.payload()?,
                space_delimited: &provider.space_delimited_claims,
            }),
            None => None,
        },
        None => None,
    };
    let attrs = Attributes {
        headers,
        peer: PeerIdentities {
            uri_san: conn.peer_uri_san.as_deref(),
            dns_san: conn.peer_dns_san.as_deref(),
            subject: conn.peer_subject.as_deref(),
        },
        remote_ip: conn.remote_ip,
        destination_ip: conn.destination_ip,
        destination_port: conn.destination_port,
        sni: conn.sni.as_deref(),
        token,
    };
    Ok(config.authz.evaluate(&attrs))
}
