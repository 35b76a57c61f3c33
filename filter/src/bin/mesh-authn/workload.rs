//! `--workload ns/k=v,...` (or `--namespace` and `--labels`) as the node metadata Envoy would
//! give the filter in that workload's sidecar: the configuration's own `workload` fields win,
//! exactly as in the proxy.

use mesh_authn::config::NodeMetadata;
use mesh_authn::request::HeaderPairs;

use crate::WorkloadArgs;

/// The node metadata the arguments describe; `None` when no workload was given.
pub fn node(args: &WorkloadArgs) -> Result<Option<NodeMetadata>, String> {
    let (namespace, labels) = match (&args.workload, &args.namespace) {
        (Some(w), _) => match w.split_once('/') {
            Some((ns, labels)) => (ns.to_owned(), labels.to_owned()),
            None => (w.clone(), String::new()),
        },
        (None, Some(ns)) => (ns.clone(), args.labels.clone().unwrap_or_default()),
        (None, None) => return Ok(None),
    };
    Ok(Some(NodeMetadata {
        namespace: Some(namespace.into_bytes()),
        labels: Some(parse_labels(&labels)?),
    }))
}

/// `key=value,key=value` (empty: no labels).
fn parse_labels(text: &str) -> Result<HeaderPairs, String> {
    text.split(',')
        .filter(|pair| !pair.trim().is_empty())
        .map(|pair| match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().as_bytes().to_vec(), v.trim().as_bytes().to_vec()))
            }
            _ => Err(format!(
                "label `{pair}` is not `key=value` (--workload NAMESPACE/key=value,key=value)"
            )),
        })
        .collect()
}

/// The node metadata of a workload in `namespace` with `labels` (a plugin's selector).
pub fn node_of(namespace: &str, labels: &[(String, String)]) -> NodeMetadata {
    NodeMetadata {
        namespace: Some(namespace.as_bytes().to_vec()),
        labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .collect(),
        ),
    }
}
