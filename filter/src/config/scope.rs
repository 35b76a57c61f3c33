//! Which policies apply to the workload this Envoy fronts (istiod's `getConfigsForWorkload`
//! and `ShouldAttachPolicy` for selectors).

use std::fmt;

use serde::Deserialize;

use super::istio::Labels;
use super::{ConfigError, NodeMetadata};

/// The workload: its namespace and labels, as Kubernetes would give them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// The workload's namespace.
    pub namespace: String,
    /// The workload's labels.
    pub labels: Labels,
}

/// `workload:` as written: each field left out comes from Envoy's node metadata.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "cli", derive(schemars::JsonSchema))]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "cli", schemars(rename = "Workload"))]
pub(super) struct RawWorkload {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    labels: Option<Labels>,
}

impl Workload {
    /// The workload: each field the configuration gives, else the node metadata's (`NAMESPACE`,
    /// `LABELS`). Filling field by field keeps `workload: {namespace: foo}` from dropping the
    /// node's labels, which would silently take every selector policy out of scope. Labels
    /// given, even `{}`, win whole; a namespace from neither is an error.
    pub(super) fn resolve(
        raw: Option<RawWorkload>,
        node: &NodeMetadata,
    ) -> Result<Workload, ConfigError> {
        let Some(raw) = raw else {
            return node.workload();
        };
        let namespace = match raw.namespace {
            Some(ns) if ns.is_empty() => {
                return Err(ConfigError::field(
                    "workload.namespace",
                    "required: the workload's namespace (empty here)",
                ))
            }
            Some(ns) => ns,
            None => node.namespace()?.ok_or_else(|| {
                ConfigError::field(
                    "workload.namespace",
                    "required: the workload's namespace (Envoy's node metadata has no \
                     NAMESPACE to take it from)",
                )
            })?,
        };
        let labels = match raw.labels {
            Some(labels) => labels,
            None => node.labels()?.unwrap_or_default(),
        };
        Ok(Workload { namespace, labels })
    }

    /// Whether a policy in `namespace` with this selector applies: the policy must live in the
    /// workload's namespace or the root namespace (where it is mesh-wide), and every label of
    /// its selector must be on the workload. No selector, or an empty one, selects every
    /// workload in scope.
    pub fn is_selected(
        &self,
        namespace: &str,
        selector: Option<&Labels>,
        root_namespace: &str,
    ) -> bool {
        if namespace != self.namespace && namespace != root_namespace {
            return false;
        }
        selector.is_none_or(|labels| labels.iter().all(|(k, v)| self.labels.get(k) == Some(v)))
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{{", self.namespace)?;
        for (i, (k, v)) in self.labels.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { "" } else { "," })?;
        }
        write!(f, "}}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn namespace_root_namespace_and_selector_subset() {
        let w = Workload {
            namespace: "foo".into(),
            labels: labels(&[("app", "httpbin"), ("version", "v1")]),
        };
        let root = "istio-system";
        type Case<'a> = (&'a str, Option<&'a [(&'a str, &'a str)]>, bool);
        let cases: &[Case] = &[
            ("foo", None, true),
            ("foo", Some(&[]), true),
            ("foo", Some(&[("app", "httpbin")]), true),
            ("foo", Some(&[("app", "httpbin"), ("version", "v1")]), true),
            ("foo", Some(&[("app", "httpbin"), ("version", "v2")]), false),
            ("foo", Some(&[("app", "other")]), false),
            ("foo", Some(&[("team", "x")]), false),
            ("bar", None, false),
            ("bar", Some(&[("app", "httpbin")]), false),
            ("istio-system", None, true),
            ("istio-system", Some(&[("app", "httpbin")]), true),
            ("istio-system", Some(&[("app", "other")]), false),
        ];
        for (ns, sel, want) in cases {
            let sel = sel.map(labels);
            assert_eq!(w.is_selected(ns, sel.as_ref(), root), *want, "{ns} {sel:?}");
        }
    }
}
