//! `PeerAuthentication` resources: validated as istiod's admission does
//! (`pkg/config/validation/validation.go#ValidatePeerAuthentication`) and composed for the
//! workload as istiod does (`pilot/pkg/security/authn/policy_applier.go#ComposePeerAuthentication`):
//!
//! - levels: **mesh** (root namespace, no selector), **namespace** (the workload's namespace, no
//!   selector), **workload** (the workload's namespace, selector matches). An empty
//!   `matchLabels` counts as no selector. A policy with a selector in the root namespace applies
//!   to no workload; istiod ignores it, and so do we, with a warning.
//! - within a level the oldest `metadata.creationTimestamp` wins; ties (timestamps have second
//!   resolution) go to the smaller name, as istiod's input order (`configCompareByCreationTime`:
//!   time, name, namespace) decides. A policy **without** a timestamp is older than every
//!   policy with one: istiod reads it as Go's zero time (year 1). Kubernetes always sets it, so
//!   this only concerns hand-written resources. The others are ignored with one warning per
//!   level, naming them.
//! - start PERMISSIVE; mesh, then namespace, then workload each override unless `UNSET`;
//!   `portLevelMtls` comes from the workload policy only, a port `UNSET` gets the composed
//!   workload mode.

use std::collections::BTreeMap;

use serde_json::Value;

use super::istio::{Labels, MutualTls, PeerAuthenticationSpec};
use super::{typed, ConfigError, Resource, Workload};
use crate::peer_authn::{MtlsMode, MtlsPolicy};

/// The `kind` this module compiles.
pub(super) const KIND: &str = "PeerAuthentication";

/// One validated PeerAuthentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PeerPolicy {
    name: String,
    namespace: String,
    /// `creationTimestamp` as (seconds, nanoseconds) since the Unix epoch; `None`: absent.
    created: Option<(i64, u32)>,
    /// `None` when absent or empty (namespace- or mesh-wide).
    selector: Option<Labels>,
    /// `None`: `UNSET`.
    mode: Option<MtlsMode>,
    /// `portLevelMtls`; `None`: `UNSET`.
    ports: BTreeMap<u32, Option<MtlsMode>>,
}

/// The composed result for the workload.
#[derive(Debug, Clone)]
pub(super) struct Composed {
    pub(super) policy: MtlsPolicy,
    /// For the summary line: the mode, and which policy decided each level.
    pub(super) summary: String,
    /// One line per problem a user should fix (ignored policies).
    pub(super) warnings: Vec<String>,
}

/// Whether a policy document is a PeerAuthentication.
pub(super) fn is_peer_authentication(doc: &Value) -> bool {
    doc.get("kind").and_then(Value::as_str) == Some(KIND)
}

impl PeerPolicy {
    fn id(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// Validates one PeerAuthentication resource at `path`.
    pub(super) fn compile(doc: Value, path: &str) -> Result<PeerPolicy, ConfigError> {
        let resource: Resource = typed(doc, path)?;
        let namespace = resource.checked_namespace(path)?;
        resource.checked_name(
            path,
            "it breaks ties between policies created in the same second",
        )?;
        let meta = resource.metadata;
        let created = match meta.creation_timestamp.as_deref() {
            None => None,
            Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
                ConfigError::field(
                    format!("{path}.metadata.creationTimestamp"),
                    format!(
                        "`{text}` is not an RFC 3339 time such as 2026-01-02T03:04:05Z; it \
                         decides which policy wins"
                    ),
                )
            })?),
        };
        let spec_path = format!("{path}.spec");
        let spec: PeerAuthenticationSpec = typed(
            resource.spec.unwrap_or(Value::Object(Default::default())),
            &spec_path,
        )?;
        let selector = spec
            .selector
            .map(|s| s.match_labels)
            .filter(|labels| !labels.is_empty());
        let mode = parse_mode(spec.mtls.as_ref(), &format!("{spec_path}.mtls.mode"))?;
        let mut ports = BTreeMap::new();
        if let Some(map) = spec.port_level_mtls {
            let ports_path = format!("{spec_path}.portLevelMtls");
            if selector.is_none() {
                return Err(ConfigError::field(
                    ports_path,
                    "mesh/namespace peer authentication cannot have port level mTLS (as \
                     istiod's validation): add `selector.matchLabels`",
                ));
            }
            if map.is_empty() {
                return Err(ConfigError::field(
                    ports_path,
                    "port level mTLS, if defined, must have at least one element",
                ));
            }
            let mut keys: BTreeMap<u32, String> = BTreeMap::new();
            for (key, mtls) in map {
                let number = port(&key).ok_or_else(|| {
                    ConfigError::field(
                        format!("{ports_path}.{key}"),
                        "port must be in range 1..65535 (a workload port number)",
                    )
                })?;
                // `8080` and `08080` are one port: which mode won would depend on key order.
                if let Some(first) = keys.get(&number) {
                    return Err(ConfigError::field(
                        format!("{ports_path}.{key}"),
                        format!(
                            "port {number} is given twice (as `{first}` and `{key}`); keep one"
                        ),
                    ));
                }
                let port_mode = parse_mode(mtls.as_ref(), &format!("{ports_path}.{key}.mode"))?;
                ports.insert(number, port_mode);
                keys.insert(number, key);
            }
        }
        Ok(PeerPolicy {
            name: meta.name,
            namespace,
            created,
            selector,
            mode,
            ports,
        })
    }

    /// istiod's order within a level: creation time (absent first), name, namespace.
    fn age_key(&self) -> ((i64, u32), &str, &str) {
        (
            self.created.unwrap_or((i64::MIN, 0)),
            &self.name,
            &self.namespace,
        )
    }
}

/// A `MutualTLS.mode`; `None` is `UNSET` (also when `mtls` or `mode` is absent).
fn parse_mode(mtls: Option<&MutualTls>, path: &str) -> Result<Option<MtlsMode>, ConfigError> {
    match mtls.and_then(|m| m.mode.as_deref()) {
        None | Some("UNSET") => Ok(None),
        Some("DISABLE") => Ok(Some(MtlsMode::Disable)),
        Some("PERMISSIVE") => Ok(Some(MtlsMode::Permissive)),
        Some("STRICT") => Ok(Some(MtlsMode::Strict)),
        Some(other) => Err(ConfigError::field(
            path,
            format!("`{other}` is not one of UNSET, DISABLE, PERMISSIVE, STRICT"),
        )),
    }
}

/// A `portLevelMtls` key: decimal digits only, 1–65535.
fn port(key: &str) -> Option<u32> {
    if key.is_empty() || !key.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    key.parse::<u32>().ok().filter(|p| (1..=65535).contains(p))
}

/// The plugin configuration's `trustDomain` and `trustDomainAliases`, validated: SPIFFE trust
/// domain names (lower-case letters, digits, `.`, `-`, `_`).
pub(super) fn trust_domains(
    trust_domain: Option<String>,
    aliases: Option<Vec<String>>,
) -> Result<Vec<String>, ConfigError> {
    let aliases = aliases.unwrap_or_default();
    let Some(trust_domain) = trust_domain else {
        if aliases.is_empty() {
            return Ok(Vec::new());
        }
        return Err(ConfigError::field(
            "trustDomainAliases",
            "needs `trustDomain` (the mesh's own trust domain, e.g. cluster.local)",
        ));
    };
    let mut all = Vec::with_capacity(1 + aliases.len());
    let fields = std::iter::once(("trustDomain".to_owned(), trust_domain)).chain(
        aliases
            .into_iter()
            .enumerate()
            .map(|(i, a)| (format!("trustDomainAliases[{i}]"), a)),
    );
    for (field, td) in fields {
        let valid = !td.is_empty()
            && td.bytes().all(|b| {
                b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'_')
            });
        if !valid {
            return Err(ConfigError::field(
                field,
                format!(
                    "`{td}` is not a SPIFFE trust domain (lower-case letters, digits, `.`, `-`, \
                     `_`; no scheme or path), e.g. cluster.local"
                ),
            ));
        }
        all.push(td);
    }
    Ok(all)
}

/// Composes the PeerAuthentications for `workload`, as istiod.
pub(super) fn compose(
    policies: &[PeerPolicy],
    workload: &Workload,
    root_namespace: &str,
    trust_domains: &[String],
) -> Result<Composed, ConfigError> {
    for (i, p) in policies.iter().enumerate() {
        let earlier = policies.get(..i).unwrap_or_default();
        if earlier
            .iter()
            .any(|q| q.namespace == p.namespace && q.name == p.name)
        {
            return Err(ConfigError::field(
                "policies",
                format!(
                    "PeerAuthentication {} appears twice; Kubernetes would keep one",
                    p.id()
                ),
            ));
        }
    }
    let mut levels: [(&str, Vec<&PeerPolicy>); 3] = [
        ("mesh", Vec::new()),
        ("namespace", Vec::new()),
        ("workload", Vec::new()),
    ];
    let mut not_selected = Vec::new();
    let mut warnings = Vec::new();
    for p in policies {
        let in_scope = p.namespace == workload.namespace || p.namespace == root_namespace;
        let level = match (&p.selector, p.namespace == root_namespace) {
            _ if !in_scope => None,
            (None, true) => Some(0),
            (None, false) => Some(1),
            (Some(_), true) => {
                warnings.push(format!(
                    "PeerAuthentication {} ignored: a policy with a selector in the root \
                     namespace {root_namespace} applies to no workload (istiod ignores it); \
                     remove the selector for a mesh-wide policy",
                    p.id()
                ));
                continue;
            }
            (Some(_), false) => workload
                .is_selected(&p.namespace, p.selector.as_ref(), root_namespace)
                .then_some(2),
        };
        match level.and_then(|i| levels.get_mut(i)) {
            Some((_, bucket)) => bucket.push(p),
            None => not_selected.push(p.id()),
        }
    }
    let mut mode = MtlsMode::Permissive;
    let mut decided_by = Vec::new();
    let mut workload_policy = None;
    for (level, bucket) in &levels {
        // The oldest by istiod's order; the others in document order for the warning.
        let Some(oldest) = bucket
            .iter()
            .copied()
            .min_by(|a, b| a.age_key().cmp(&b.age_key()))
        else {
            continue;
        };
        let younger: Vec<String> = bucket
            .iter()
            .filter(|p| !std::ptr::eq(**p, oldest))
            .map(|p| p.id())
            .collect();
        if !younger.is_empty() {
            let names = younger;
            warnings.push(format!(
                "PeerAuthentication [{}] ignored: {} is the oldest at the {level} level, and \
                 istiod applies only the oldest",
                names.join(", "),
                oldest.id()
            ));
        }
        if let Some(m) = oldest.mode {
            mode = m;
        }
        decided_by.push(format!(
            "{level} {} {}",
            oldest.id(),
            oldest.mode.map_or("UNSET", MtlsMode::as_str)
        ));
        if *level == "workload" {
            workload_policy = Some(oldest);
        }
    }
    let per_port: BTreeMap<u32, MtlsMode> = workload_policy
        .map(|p| {
            p.ports
                .iter()
                .map(|(port, m)| (*port, m.unwrap_or(mode)))
                .collect()
        })
        .unwrap_or_default();
    let policy = MtlsPolicy::new(mode, per_port, trust_domains);
    let summary = format!(
        "PeerAuthentication {policy} from [{}]; not selected: [{}]",
        decided_by.join(", "),
        not_selected.join(", ")
    );
    Ok(Composed {
        policy,
        summary,
        warnings,
    })
}

/// RFC 3339 (`2026-01-02T03:04:05Z`, `…05.123+02:00`) to (seconds, nanoseconds) since the Unix
/// epoch; `None` when it is not one.
fn parse_rfc3339(text: &str) -> Option<(i64, u32)> {
    let b = text.as_bytes();
    let num = |from: usize, len: usize| -> Option<i64> {
        let digits = b.get(from..from.checked_add(len)?)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(digits).ok()?.parse().ok()
    };
    let at = |i: usize| b.get(i).copied();
    if at(4)? != b'-' || at(7)? != b'-' || !matches!(at(10)?, b'T' | b't' | b' ') {
        return None;
    }
    if at(13)? != b':' || at(16)? != b':' {
        return None;
    }
    let (year, month, day) = (num(0, 4)?, num(5, 2)?, num(8, 2)?);
    let (hour, minute, second) = (num(11, 2)?, num(14, 2)?, num(17, 2)?);
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if !(1..=days_in_month).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if at(i) == Some(b'.') {
        i += 1;
        let start = i;
        while at(i).is_some_and(|c| c.is_ascii_digit()) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(at(i)? - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos = nanos.saturating_mul(10);
        }
    }
    let offset_secs = match at(i)? {
        b'Z' | b'z' if i + 1 == b.len() => 0,
        sign @ (b'+' | b'-') if i + 6 == b.len() && at(i + 3)? == b':' => {
            let (oh, om) = (num(i + 1, 2)?, num(i + 4, 2)?);
            if oh > 23 || om > 59 {
                return None;
            }
            let secs = oh * 3600 + om * 60;
            if sign == b'+' {
                secs
            } else {
                -secs
            }
        }
        _ => return None,
    };
    // Days since 1970-01-01 (H. Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs;
    Some((secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_times() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            parse_rfc3339("2026-01-02T03:04:05Z"),
            Some((1_767_323_045, 0))
        );
        assert_eq!(
            parse_rfc3339("2026-01-02T05:04:05.5+02:00"),
            Some((1_767_323_045, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("2000-02-29T00:00:00-00:30"),
            Some((951_784_200, 0))
        );
        for bad in [
            "",
            "2026-01-02",
            "2026-01-02T03:04:05",
            "2026-13-02T03:04:05Z",
            "2026-02-29T03:04:05Z",
            "2026-01-02T24:04:05Z",
            "2026-01-02T03:04:05.Z",
            "2026-01-02T03:04:05Zx",
            "2026-01-02T03:04:05+0200",
            "２026-01-02T03:04:05Z",
            "+026-01-02T03:04:05Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn port_keys() {
        assert_eq!(port("1"), Some(1));
        assert_eq!(port("65535"), Some(65535));
        for bad in ["0", "65536", "", "+80", "-1", "80a", " 80", "4294967296"] {
            assert_eq!(port(bad), None, "{bad:?}");
        }
    }
}

#[cfg(test)]
#[path = "peer_authn_tests.rs"]
mod composition_tests;
