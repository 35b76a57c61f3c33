//! Envoy's connection properties read with host calls; their names, encodings and which ones
//! a request needs are the core's ([`crate::properties`]).

use super::host;
use crate::authorize::Connection;
use crate::authz::Needs;
use crate::peer_authn::{MtlsPolicy, PeerVerdict};
use crate::properties::{Decoded, RawProperty};

/// A property's bytes from the host; a host failure is an error naming the property.
fn read(path: &[&str]) -> RawProperty {
    host::get_property(path)
        .map_err(|status| format!("cannot read {}: host returned {status}", path.join(".")))
}

/// The host's properties, decoded by the core.
fn host_properties() -> Decoded<fn(&[&str]) -> RawProperty> {
    Decoded(read)
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
