//! PeerAuthentication at L7: the composed mTLS mode of the workload (per destination port) and
//! the verdict on one request from what Envoy says about its connection.
//!
//! Istio enforces the mode at L4 with filter chains (`filterchain_options.go`): under STRICT a
//! plaintext connection matches no chain and is closed. An HTTP filter runs after the chain was
//! chosen, so it can only refuse the request (403 here). What it sees, Envoy's attributes:
//!
//! - `connection.mtls`: a peer certificate was *presented* (Envoy's `peerCertificatePresented`),
//!   not "validated": validation is the listener's `DownstreamTlsContext`'s job. Measured on
//!   Envoy 1.40: present and `false` on plaintext and on TLS without a client certificate.
//! - `connection.uri_san_peer_certificate`: the **first** URI SAN of the peer certificate; absent
//!   without a certificate.
//! - `destination.port`: the port the connection arrived on (the key of `portLevelMtls`).
//!
//! The compiled [`MtlsPolicy`] is built by `config::peer_authn` (istiod's
//! `ComposePeerAuthentication`); this module only decides: which of those properties a policy
//! needs ([`MtlsPolicy::verdict`] asks a [`ConnectionProperties`] reader for no more), and the
//! verdict on them.

use std::collections::BTreeMap;
use std::fmt;

/// `PeerAuthentication.MutualTLS.Mode` after composition (`UNSET` has been resolved).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MtlsMode {
    /// The connection is not expected to be mTLS; both plaintext and mTLS pass.
    Disable,
    /// Both plaintext and mTLS pass (Istio's default when no policy applies).
    Permissive,
    /// Only connections that presented a client certificate pass.
    Strict,
}

impl MtlsMode {
    /// The Istio enum name.
    pub fn as_str(self) -> &'static str {
        match self {
            MtlsMode::Disable => "DISABLE",
            MtlsMode::Permissive => "PERMISSIVE",
            MtlsMode::Strict => "STRICT",
        }
    }
}

impl fmt::Display for MtlsMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The workload's composed PeerAuthentication (istiod's `MergedPeerAuthentication`) plus the
/// trust domains a STRICT peer must belong to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MtlsPolicy {
    mode: MtlsMode,
    per_port: BTreeMap<u32, MtlsMode>,
    /// `spiffe://<trust domain>/` for the trust domain and each alias; empty: no check.
    spiffe_prefixes: Vec<String>,
}

impl Default for MtlsPolicy {
    /// No PeerAuthentication: PERMISSIVE everywhere, as istiod.
    fn default() -> Self {
        MtlsPolicy::new(MtlsMode::Permissive, BTreeMap::new(), &[])
    }
}

/// What Envoy says about the request's connection. `None`: the property is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peer<'a> {
    /// `connection.mtls`: a peer certificate was presented.
    pub mtls: Option<bool>,
    /// `connection.uri_san_peer_certificate`: the first URI SAN of the peer certificate.
    pub uri_san: Option<&'a [u8]>,
    /// `destination.port`.
    pub port: Option<u32>,
}

/// Envoy's connection properties, each read only when asked: the adapter implements it with
/// host calls, tests with fakes. `None`: the property is absent.
pub trait ConnectionProperties {
    /// Why a property could not be read (a host failure, an unexpected encoding).
    type Error;
    /// `connection.mtls`: a peer certificate was presented.
    fn mtls(&mut self) -> Result<Option<bool>, Self::Error>;
    /// `connection.uri_san_peer_certificate`: the first URI SAN of the peer certificate.
    fn uri_san_peer_certificate(&mut self) -> Result<Option<Vec<u8>>, Self::Error>;
    /// `destination.port`.
    fn destination_port(&mut self) -> Result<Option<u32>, Self::Error>;
}

/// The verdict on a request's connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerVerdict {
    /// The mode lets it through.
    Allow,
    /// STRICT refuses it.
    Deny(PeerDenial),
}

/// Why STRICT refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerDenial {
    /// Plaintext, or TLS without a client certificate.
    NoClientCertificate,
    /// A client certificate without a URI SAN, while trust domains are configured.
    NoSpiffeId,
    /// The certificate's first URI SAN is not `spiffe://<trust domain>/…` of a configured one.
    ForeignTrustDomain,
}

impl PeerDenial {
    /// Every reason, in declaration order (`as usize` indexes it).
    pub const ALL: [PeerDenial; 3] = [
        PeerDenial::NoClientCertificate,
        PeerDenial::NoSpiffeId,
        PeerDenial::ForeignTrustDomain,
    ];

    /// The reason as one snake-case word: the counter `mesh_authn.denied.<reason>` and the
    /// element inside `%RESPONSE_CODE_DETAILS%`.
    pub fn reason(self) -> &'static str {
        match self {
            PeerDenial::NoClientCertificate => "strict_mtls_no_client_certificate",
            PeerDenial::NoSpiffeId => "strict_mtls_no_spiffe_id",
            PeerDenial::ForeignTrustDomain => "strict_mtls_foreign_trust_domain",
        }
    }
}

impl MtlsPolicy {
    /// A composed policy. `trust_domains`: the trust domain and its aliases (empty: any
    /// certificate the listener accepted passes STRICT).
    pub fn new(
        mode: MtlsMode,
        per_port: BTreeMap<u32, MtlsMode>,
        trust_domains: &[String],
    ) -> MtlsPolicy {
        MtlsPolicy {
            mode,
            per_port,
            spiffe_prefixes: trust_domains
                .iter()
                .map(|td| format!("spiffe://{td}/"))
                .collect(),
        }
    }

    /// The workload-wide mode.
    pub fn mode(&self) -> MtlsMode {
        self.mode
    }

    /// The `portLevelMtls` modes, `UNSET` already resolved.
    pub fn per_port(&self) -> &BTreeMap<u32, MtlsMode> {
        &self.per_port
    }

    /// Whether some port may be STRICT; when not, no request needs a look at its connection.
    pub fn may_require_mtls(&self) -> bool {
        self.mode == MtlsMode::Strict || self.per_port.values().any(|m| *m == MtlsMode::Strict)
    }

    /// Whether the decision depends on the destination port (some port's mode differs from the
    /// workload's).
    pub fn depends_on_port(&self) -> bool {
        self.per_port.values().any(|m| *m != self.mode)
    }

    /// Whether STRICT also checks the SPIFFE trust domain of the peer's URI SAN.
    pub fn checks_trust_domain(&self) -> bool {
        !self.spiffe_prefixes.is_empty()
    }

    /// The mode for a connection to `port`. An unknown port, where the port matters, gets the
    /// strictest mode configured for any port: failing closed.
    pub fn mode_for(&self, port: Option<u32>) -> MtlsMode {
        match port {
            Some(port) => self.per_port.get(&port).copied().unwrap_or(self.mode),
            None => self
                .per_port
                .values()
                .copied()
                .fold(self.mode, std::cmp::max),
        }
    }

    /// The verdict on a request's connection, reading from `properties` only what this policy
    /// needs: nothing when no port can be STRICT, the destination port only when a port's mode
    /// differs, nothing more on a port that is not STRICT, the URI SAN only when a certificate
    /// was presented and trust domains are configured. A read that fails fails the verdict.
    pub fn verdict<P: ConnectionProperties>(
        &self,
        properties: &mut P,
    ) -> Result<PeerVerdict, P::Error> {
        if !self.may_require_mtls() {
            return Ok(PeerVerdict::Allow);
        }
        let port = if self.depends_on_port() {
            properties.destination_port()?
        } else {
            None
        };
        if self.mode_for(port) != MtlsMode::Strict {
            return Ok(PeerVerdict::Allow);
        }
        let mtls = properties.mtls()?;
        let uri_san = if mtls == Some(true) && self.checks_trust_domain() {
            properties.uri_san_peer_certificate()?
        } else {
            None
        };
        Ok(self.decide(&Peer {
            mtls,
            uri_san: uri_san.as_deref(),
            port,
        }))
    }

    /// The verdict on a request whose connection Envoy describes as `peer`.
    pub fn decide(&self, peer: &Peer<'_>) -> PeerVerdict {
        if self.mode_for(peer.port) != MtlsMode::Strict {
            return PeerVerdict::Allow;
        }
        // An absent `connection.mtls` means no peer certificate.
        if peer.mtls != Some(true) {
            return PeerVerdict::Deny(PeerDenial::NoClientCertificate);
        }
        if !self.checks_trust_domain() {
            return PeerVerdict::Allow;
        }
        let Some(san) = peer.uri_san else {
            return PeerVerdict::Deny(PeerDenial::NoSpiffeId);
        };
        // Case-sensitive prefix, as Istio's `match_subject_alt_names` URI prefix is.
        if self
            .spiffe_prefixes
            .iter()
            .any(|prefix| san.starts_with(prefix.as_bytes()))
        {
            PeerVerdict::Allow
        } else {
            PeerVerdict::Deny(PeerDenial::ForeignTrustDomain)
        }
    }
}

impl fmt::Display for MtlsPolicy {
    /// `STRICT`, `STRICT, port 8080 DISABLE`, `…; trust domains [cluster.local]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.mode)?;
        for (port, mode) in &self.per_port {
            write!(f, ", port {port} {mode}")?;
        }
        if !self.spiffe_prefixes.is_empty() {
            let tds: Vec<&str> = self
                .spiffe_prefixes
                .iter()
                .map(|p| p.trim_start_matches("spiffe://").trim_end_matches('/'))
                .collect();
            write!(
                f,
                "; STRICT peers must be in trust domains [{}]",
                tds.join(", ")
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use MtlsMode::*;

    const GOOD: &[u8] = b"spiffe://cluster.local/ns/foo/sa/bar";
    const ALIAS: &[u8] = b"spiffe://old.example/ns/foo/sa/bar";
    const FOREIGN: &[u8] = b"spiffe://other.example/ns/foo/sa/bar";

    fn policy(mode: MtlsMode, ports: &[(u32, MtlsMode)], tds: &[&str]) -> MtlsPolicy {
        let tds: Vec<String> = tds.iter().map(|s| s.to_string()).collect();
        MtlsPolicy::new(mode, ports.iter().copied().collect(), &tds)
    }

    fn peer(mtls: Option<bool>, san: Option<&'static [u8]>, port: Option<u32>) -> Peer<'static> {
        Peer {
            mtls,
            uri_san: san,
            port,
        }
    }

    #[test]
    fn decisions_by_mode_port_and_certificate() {
        use PeerDenial::*;
        use PeerVerdict::*;
        let plain = |port| peer(Some(false), None, port);
        let absent = |port| peer(None, None, port);
        let cert = |san, port| peer(Some(true), san, port);
        let ports = [(8080, Disable), (9090, Strict)];
        let cases: Vec<(MtlsPolicy, Peer<'static>, PeerVerdict)> = vec![
            // mode × plaintext / no property / certificate
            (policy(Permissive, &[], &[]), plain(None), Allow),
            (policy(Disable, &[], &[]), plain(None), Allow),
            (
                policy(Strict, &[], &[]),
                plain(None),
                Deny(NoClientCertificate),
            ),
            (
                policy(Strict, &[], &[]),
                absent(None),
                Deny(NoClientCertificate),
            ),
            (policy(Strict, &[], &[]), cert(None, None), Allow),
            (policy(Strict, &[], &[]), cert(Some(FOREIGN), None), Allow),
            (policy(Permissive, &[], &[]), cert(Some(GOOD), None), Allow),
            (policy(Disable, &[], &[]), cert(Some(GOOD), None), Allow),
            // trust domains
            (
                policy(Strict, &[], &["cluster.local"]),
                cert(Some(GOOD), None),
                Allow,
            ),
            (
                policy(Strict, &[], &["cluster.local", "old.example"]),
                cert(Some(ALIAS), None),
                Allow,
            ),
            (
                policy(Strict, &[], &["cluster.local"]),
                cert(Some(FOREIGN), None),
                Deny(ForeignTrustDomain),
            ),
            (
                policy(Strict, &[], &["cluster.local"]),
                cert(None, None),
                Deny(NoSpiffeId),
            ),
            (
                policy(Strict, &[], &["cluster.local"]),
                plain(None),
                Deny(NoClientCertificate),
            ),
            // a prefix of the trust domain is not the trust domain; the scheme is exact
            (
                policy(Strict, &[], &["cluster.local"]),
                cert(Some(b"spiffe://cluster.local.evil/ns/foo/sa/bar"), None),
                Deny(ForeignTrustDomain),
            ),
            (
                policy(Strict, &[], &["cluster.local"]),
                cert(Some(b"SPIFFE://cluster.local/ns/foo/sa/bar"), None),
                Deny(ForeignTrustDomain),
            ),
            (
                policy(Strict, &[], &["cluster.local"]),
                cert(Some(b"spiffe://cluster.local"), None),
                Deny(ForeignTrustDomain),
            ),
            // trust domains only matter under STRICT
            (
                policy(Permissive, &[], &["cluster.local"]),
                cert(Some(FOREIGN), None),
                Allow,
            ),
            // ports
            (policy(Strict, &ports, &[]), plain(Some(8080)), Allow),
            (
                policy(Strict, &ports, &[]),
                plain(Some(9090)),
                Deny(NoClientCertificate),
            ),
            (
                policy(Strict, &ports, &[]),
                plain(Some(7070)),
                Deny(NoClientCertificate),
            ),
            (policy(Permissive, &ports, &[]), plain(Some(7070)), Allow),
            (
                policy(Permissive, &ports, &[]),
                plain(Some(9090)),
                Deny(NoClientCertificate),
            ),
            (
                policy(Permissive, &ports, &[]),
                cert(None, Some(9090)),
                Allow,
            ),
            // unknown port where the port matters: the strictest mode
            (
                policy(Permissive, &ports, &[]),
                plain(None),
                Deny(NoClientCertificate),
            ),
            (
                policy(Permissive, &[(8080, Disable)], &[]),
                plain(None),
                Allow,
            ),
        ];
        for (i, (policy, peer, want)) in cases.iter().enumerate() {
            assert_eq!(policy.decide(peer), *want, "case {i}: {policy} {peer:?}");
        }
    }

    #[test]
    fn which_properties_are_needed() {
        assert!(!policy(Permissive, &[], &[]).may_require_mtls());
        assert!(!policy(Disable, &[(1, Permissive)], &[]).may_require_mtls());
        assert!(policy(Disable, &[(1, Strict)], &[]).may_require_mtls());
        assert!(policy(Strict, &[], &[]).may_require_mtls());
        assert!(!policy(Strict, &[(1, Strict)], &[]).depends_on_port());
        assert!(policy(Strict, &[(1, Disable)], &[]).depends_on_port());
        assert!(!policy(Strict, &[], &[]).checks_trust_domain());
        assert!(policy(Strict, &[], &["td"]).checks_trust_domain());
    }

    /// A fake connection: each property's value (or read failure), and the reads made.
    struct Fake {
        mtls: Result<Option<bool>, &'static str>,
        uri_san: Result<Option<&'static [u8]>, &'static str>,
        port: Result<Option<u32>, &'static str>,
        reads: Vec<&'static str>,
    }

    /// Every property absent.
    fn absent() -> Fake {
        Fake {
            mtls: Ok(None),
            uri_san: Ok(None),
            port: Ok(None),
            reads: Vec::new(),
        }
    }

    impl ConnectionProperties for Fake {
        type Error = &'static str;
        fn mtls(&mut self) -> Result<Option<bool>, &'static str> {
            self.reads.push("connection.mtls");
            self.mtls
        }
        fn uri_san_peer_certificate(&mut self) -> Result<Option<Vec<u8>>, &'static str> {
            self.reads.push("connection.uri_san_peer_certificate");
            self.uri_san.map(|san| san.map(<[u8]>::to_vec))
        }
        fn destination_port(&mut self) -> Result<Option<u32>, &'static str> {
            self.reads.push("destination.port");
            self.port
        }
    }

    /// The verdict over `fake`, and the properties it read.
    fn run(
        policy: &MtlsPolicy,
        mut fake: Fake,
    ) -> (Result<PeerVerdict, &'static str>, Vec<&'static str>) {
        let verdict = policy.verdict(&mut fake);
        (verdict, fake.reads)
    }

    #[test]
    fn reads_only_what_the_policy_needs() {
        let deny = Ok(PeerVerdict::Deny(PeerDenial::NoClientCertificate));
        let allow = Ok(PeerVerdict::Allow);
        let td = &["cluster.local"];
        // PERMISSIVE or DISABLE everywhere: no read at all.
        let (v, reads) = run(&policy(Permissive, &[(1, Disable)], td), absent());
        assert_eq!((v, reads.len()), (allow, 0));
        // STRICT, no ports, no trust domain: connection.mtls only.
        let fake = Fake {
            mtls: Ok(Some(true)),
            ..absent()
        };
        let (v, reads) = run(&policy(Strict, &[], &[]), fake);
        assert_eq!((v, reads), (allow, vec!["connection.mtls"]));
        // Absent connection.mtls: no certificate.
        let (v, _) = run(&policy(Strict, &[], &[]), absent());
        assert_eq!(v, deny);
        // Trust domain: the URI SAN only once a certificate was presented.
        let fake = Fake {
            mtls: Ok(Some(false)),
            ..absent()
        };
        let (v, reads) = run(&policy(Strict, &[], td), fake);
        assert_eq!((v, reads.len()), (deny, 1));
        let fake = Fake {
            mtls: Ok(Some(true)),
            uri_san: Ok(Some(GOOD)),
            ..absent()
        };
        let (v, reads) = run(&policy(Strict, &[], td), fake);
        assert_eq!((v, reads.len()), (allow, 2));
        // Port-level: the port first, and nothing more on a port that is not STRICT.
        let ports = policy(Strict, &[(8080, Disable)], &[]);
        let fake = Fake {
            port: Ok(Some(8080)),
            ..absent()
        };
        let (v, reads) = run(&ports, fake);
        assert_eq!((v, reads), (allow, vec!["destination.port"]));
        let fake = Fake {
            port: Ok(Some(9090)),
            mtls: Ok(Some(false)),
            ..absent()
        };
        let (v, reads) = run(&ports, fake);
        assert_eq!((v, reads.len()), (deny, 2));
        // Unknown port where it matters: the strictest mode.
        let (v, _) = run(&policy(Disable, &[(8080, Strict)], &[]), absent());
        assert_eq!(v, deny);
    }

    #[test]
    fn strict_on_a_disabled_port_reads_neither_certificate_nor_san() {
        let fake = Fake {
            port: Ok(Some(8080)),
            mtls: Ok(Some(true)),
            uri_san: Ok(Some(FOREIGN)),
            reads: Vec::new(),
        };
        let (v, reads) = run(
            &policy(Strict, &[(8080, Disable)], &["cluster.local"]),
            fake,
        );
        assert_eq!(
            (v, reads),
            (Ok(PeerVerdict::Allow), vec!["destination.port"])
        );
    }

    #[test]
    fn the_port_is_not_read_when_every_port_has_the_workload_mode() {
        let fake = Fake {
            port: Err("must not be read"),
            mtls: Ok(Some(true)),
            uri_san: Ok(Some(GOOD)),
            reads: Vec::new(),
        };
        let (v, reads) = run(&policy(Strict, &[(8080, Strict)], &["cluster.local"]), fake);
        assert_eq!(
            (v, reads),
            (
                Ok(PeerVerdict::Allow),
                vec!["connection.mtls", "connection.uri_san_peer_certificate"]
            )
        );
    }

    #[test]
    fn a_failed_read_fails_the_verdict_and_stops_reading() {
        let strict_td = policy(Strict, &[], &["cluster.local"]);
        let fake = Fake {
            mtls: Err("mtls"),
            ..absent()
        };
        assert_eq!(
            run(&strict_td, fake),
            (Err("mtls"), vec!["connection.mtls"])
        );
        let fake = Fake {
            mtls: Ok(Some(true)),
            uri_san: Err("san"),
            ..absent()
        };
        assert_eq!(run(&strict_td, fake).0, Err("san"));
        let fake = Fake {
            port: Err("port"),
            ..absent()
        };
        let ports = policy(Strict, &[(8080, Disable)], &[]);
        assert_eq!(run(&ports, fake), (Err("port"), vec!["destination.port"]));
    }

    #[test]
    fn display_names_modes_ports_and_trust_domains() {
        let p = policy(Strict, &[(8080, Disable)], &["cluster.local", "old"]);
        assert_eq!(
            p.to_string(),
            "STRICT, port 8080 DISABLE; STRICT peers must be in trust domains [cluster.local, old]"
        );
        assert_eq!(MtlsPolicy::default().to_string(), "PERMISSIVE");
    }
}
