//! The workload from Envoy's node metadata, as Istio's sidecars and gateways carry it
//! (`NAMESPACE`, `LABELS`), so that a `WasmPlugin` needs no `workload` of its own.
//!
//! Measured on Envoy 1.40: the node is the `xds.node` property (`node` is not found), a string
//! field comes as its bytes, and a struct such as `LABELS` comes in the proxy-wasm map encoding
//! (the header-map pairs). [`NodeMetadata::read`] reads and decodes them through the adapter's
//! property reader.

use super::istio::Labels;
use super::scope::Workload;
use super::ConfigError;
use crate::request::HeaderPairs;

/// `xds.node.metadata.NAMESPACE` and `.LABELS` as the host gave them; `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeMetadata {
    /// `NAMESPACE`: the bytes of a string.
    pub namespace: Option<Vec<u8>>,
    /// `LABELS`: the struct's fields as `(key, value)` pairs.
    pub labels: Option<HeaderPairs>,
}

/// Where the node metadata says things, for messages.
const NAMESPACE_PATH: &str = "xds.node.metadata.NAMESPACE";
const LABELS_PATH: &str = "xds.node.metadata.LABELS";

impl NodeMetadata {
    /// Reads `NAMESPACE` and `LABELS` through a host property reader: from `xds.node` (Envoy
    /// 1.40, measured), else from `node` (older hosts). A property the host cannot read, or
    /// `LABELS` that is not a map, is an error naming its path.
    pub fn read<E: core::fmt::Display>(
        mut property: impl FnMut(&[&str]) -> Result<Option<Vec<u8>>, E>,
    ) -> Result<NodeMetadata, String> {
        let mut node = NodeMetadata::default();
        for root in [&["xds", "node"][..], &["node"][..]] {
            let mut field = |name: &'static str| {
                let path: Vec<&str> = root.iter().copied().chain(["metadata", name]).collect();
                property(&path).map_err(|e| format!("{}: {e}", path.join(".")))
            };
            node.namespace = field("NAMESPACE")?;
            node.labels = match field("LABELS")? {
                None => None,
                Some(bytes) => Some(crate::request::decode_map(&bytes).ok_or_else(|| {
                    format!("{}.metadata.LABELS is not a map of strings", root.join("."))
                })?),
            };
            if node.namespace.is_some() || node.labels.is_some() {
                break;
            }
        }
        Ok(node)
    }

    /// The workload the node metadata describes. Without a namespace there is no workload: a
    /// configuration error, never a guess.
    pub fn workload(&self) -> Result<Workload, ConfigError> {
        let Some(namespace) = self.namespace()? else {
            return Err(ConfigError::field(
                "workload",
                format!(
                    "required: Envoy's node metadata has no {NAMESPACE_PATH} (Istio's sidecars and \
                     gateways set it, with LABELS); give the workload here, e.g. \
                     `workload: {{namespace: foo, labels: {{app: httpbin}}}}`"
                ),
            ));
        };
        Ok(Workload {
            namespace,
            labels: self.labels()?.unwrap_or_default(),
        })
    }

    /// `NAMESPACE`, checked to be a Kubernetes namespace name; `None` when absent.
    pub(super) fn namespace(&self) -> Result<Option<String>, ConfigError> {
        let Some(namespace) = &self.namespace else {
            return Ok(None);
        };
        std::str::from_utf8(namespace)
            .ok()
            .filter(|ns| is_namespace(ns))
            .map(|ns| Some(ns.to_owned()))
            .ok_or_else(|| {
                ConfigError::field(
                    "workload",
                    format!(
                        "{NAMESPACE_PATH} is not a Kubernetes namespace name: {:?}",
                        String::from_utf8_lossy(namespace)
                    ),
                )
            })
    }

    /// `LABELS` as strings; `None` when absent.
    pub(super) fn labels(&self) -> Result<Option<Labels>, ConfigError> {
        let Some(pairs) = &self.labels else {
            return Ok(None);
        };
        let mut labels = Labels::new();
        for (key, value) in pairs {
            let (Ok(k), Ok(v)) = (std::str::from_utf8(key), std::str::from_utf8(value)) else {
                return Err(ConfigError::field(
                    "workload",
                    format!("{LABELS_PATH} has a key or value that is not a UTF-8 string"),
                ));
            };
            labels.insert(k.to_owned(), v.to_owned());
        }
        Ok(Some(labels))
    }
}

/// RFC 1123 label, as Kubernetes requires of namespace names.
fn is_namespace(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> HeaderPairs {
        p.iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect()
    }

    #[test]
    fn namespace_and_labels() {
        let node = NodeMetadata {
            namespace: Some(b"foo".to_vec()),
            labels: Some(pairs(&[("app", "httpbin"), ("version", "v1")])),
        };
        let w = node.workload().unwrap();
        assert_eq!(w.namespace, "foo");
        assert_eq!(w.labels.get("app").map(String::as_str), Some("httpbin"));
        assert_eq!(w.labels.len(), 2);
        // Labels are optional.
        let node = NodeMetadata {
            namespace: Some(b"foo".to_vec()),
            labels: None,
        };
        assert!(node.workload().unwrap().labels.is_empty());
    }

    /// Properties as a fake host holds them: `(dotted path, Ok(bytes) | Err(status text))`.
    fn read(props: &[(&str, Result<Vec<u8>, &str>)]) -> Result<NodeMetadata, String> {
        NodeMetadata::read(
            |path: &[&str]| match props.iter().find(|(p, _)| *p == path.join(".")) {
                None => Ok(None),
                Some((_, Ok(bytes))) => Ok(Some(bytes.clone())),
                Some((_, Err(e))) => Err(*e),
            },
        )
    }

    #[test]
    fn node_metadata_is_read_from_xds_node_then_node() {
        let labels = crate::request::encode_map(&[("app", "httpbin")]);
        let xds = read(&[
            ("xds.node.metadata.NAMESPACE", Ok(b"foo".to_vec())),
            ("xds.node.metadata.LABELS", Ok(labels.clone())),
            ("node.metadata.NAMESPACE", Ok(b"other".to_vec())),
        ])
        .unwrap();
        assert_eq!(xds.namespace.as_deref(), Some(&b"foo"[..]));
        assert_eq!(xds.labels, Some(pairs(&[("app", "httpbin")])));
        let old = read(&[("node.metadata.NAMESPACE", Ok(b"bar".to_vec()))]).unwrap();
        assert_eq!(old.namespace.as_deref(), Some(&b"bar"[..]));
        assert_eq!(old.labels, None);
        assert_eq!(read(&[]).unwrap(), NodeMetadata::default());
        let e = read(&[("xds.node.metadata.LABELS", Ok(vec![9, 9]))]).unwrap_err();
        assert_eq!(e, "xds.node.metadata.LABELS is not a map of strings");
        let e = read(&[("xds.node.metadata.NAMESPACE", Err("BadArgument (2)"))]).unwrap_err();
        assert_eq!(e, "xds.node.metadata.NAMESPACE: BadArgument (2)");
    }

    #[test]
    fn no_namespace_or_a_bad_one_is_an_error() {
        let labels_only = NodeMetadata {
            namespace: None,
            labels: Some(pairs(&[("app", "x")])),
        };
        for node in [NodeMetadata::default(), labels_only] {
            let e = node.workload().unwrap_err().to_string();
            assert!(e.starts_with("workload: required"), "{e}");
        }
        // A number in NAMESPACE arrives as an 8-byte double.
        for bad in [&b"Foo"[..], b"", b"\0\0\0\0\0\0\x08@", b"-x"] {
            let node = NodeMetadata {
                namespace: Some(bad.to_vec()),
                labels: None,
            };
            assert!(node.workload().is_err(), "{bad:?}");
        }
        let node = NodeMetadata {
            namespace: Some(b"foo".to_vec()),
            labels: Some(vec![(b"app".to_vec(), vec![0xff])]),
        };
        assert!(node.workload().is_err());
    }
}
