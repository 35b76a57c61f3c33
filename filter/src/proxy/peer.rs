//! Envoy's connection properties read with host calls; their names, encodings and which ones
//! a request needs are the core's ([`crate::properties`]).

use super::host;
use crate::authorize::Connection;
use crate::authz::Needs;
use crate::peer_authn::{MtlsPolicy, PeerVerdict};
use crate::properties::Decoded;

/// The host's properties, decoded by the core; a host failure is an error naming the property.
fn host_properties() -> Decoded<impl FnMut(&[&str]) -> Result<Option<Vec<u8>>, String>> {
    Decoded(|path: &[&str]| {
        host::get_property(path)
            .map_err(|status| format!("cannot read {}: host returned {status}", path.join(".")))
    })
}

/// The connection properties AuthorizationPolicy reads, each only when `needs` asks.
pub(super) fn authz_connection(needs: Needs) -> Result<Connection, String> {
    host_properties().authz_connection(needs)
}

/// The validated peer certificate's first URI SAN (`None` without a certificate).
pub(super) fn peer_uri_san() -> Result<Option<String>, String> {
    host_properties().peer_uri_san()
}

/// The policy's verdict on this request's connection, or why it could not be judged.
pub(super) fn verdict(policy: &MtlsPolicy) -> Result<PeerVerdict, String> {
    policy.verdict(&mut host_properties())
}
