//! `mesh-authn check FILE…`: every configuration through the filter's own parser
//! (`FilterConfig::parse_with_node`), with the node metadata of the workload asked for.

use std::path::PathBuf;
use std::process::ExitCode;

use mesh_authn::config::{FilterConfig, NodeMetadata};
use serde_json::{json, Value};

use crate::input::{self, Unit};
use crate::render;
use crate::workload::{self, node_of};
use crate::{Output, WorkloadArgs};

/// The namespace of the stand-in workload a configuration is validated for when no workload
/// is known (its policies are all compiled whatever the workload; only selection differs).
const NO_WORKLOAD: &str = "mesh-authn-check";

pub fn run(files: &[PathBuf], args: &WorkloadArgs, output: Output) -> Result<ExitCode, String> {
    let asked = workload::node(args)?;
    let units = input::load(files)?;
    let reports: Vec<Value> = units.iter().map(|u| report(u, asked.as_ref())).collect();
    let valid = reports.iter().all(|r| r["valid"] == json!(true));
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(&json!({"valid": valid, "inputs": reports}))
                .map_err(|e| e.to_string())?
        ),
        Output::Human => reports.iter().for_each(print),
    }
    Ok(if valid {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Compiles one unit: with the workload asked for, else the one a plugin's selector names,
/// else (resources, a mesh-wide plugin) a stand-in that only validates.
pub fn compile(unit: &Unit, asked: Option<&NodeMetadata>) -> (Result<FilterConfig, String>, bool) {
    let (node, for_workload) = match (asked, &unit.plugin_node, unit.kind) {
        (Some(node), _, _) => (node.clone(), true),
        (None, Some(node), _) => (node.clone(), true),
        (None, None, "plugin configuration") => (NodeMetadata::default(), true),
        (None, None, _) => (node_of(NO_WORKLOAD, &[]), false),
    };
    let result = FilterConfig::parse_with_node(&unit.bytes, &node).map_err(|e| {
        let mut line = render::error(&e, unit.path_prefix);
        if line.starts_with("workload") && asked.is_none() {
            line.push_str(
                " (in Istio the sidecar's node metadata gives it: pass --workload \
                 NAMESPACE/key=value,... to check as that workload)",
            );
        }
        line
    });
    (result, for_workload)
}

fn report(unit: &Unit, asked: Option<&NodeMetadata>) -> Value {
    let (result, for_workload) = compile(unit, asked);
    let mut notes = unit.notes.clone();
    let own_workload = serde_yaml_ng::from_slice::<Value>(&unit.bytes)
        .ok()
        .is_some_and(|v| v.get("workload").is_some());
    if asked.is_some() && own_workload {
        notes.push(
            "the configuration names its own `workload`: its fields win, --workload fills only \
             what it leaves out (as Envoy's node metadata does)"
                .to_owned(),
        );
    }
    let mut r = json!({
        "input": unit.origin,
        "kind": unit.kind,
        "valid": result.is_ok(),
        "warnings": unit.warnings,
        "notes": notes,
    });
    match result {
        Err(error) => {
            render::set(&mut r, "error", json!(error));
            // `policies[i]` of gathered resources: say which document that is.
            if let Some(i) = policy_index(&error) {
                if let Some(source) = unit.sources.get(i) {
                    render::set(
                        &mut r,
                        "errorSource",
                        json!(format!("policies[{i}] is {source}")),
                    );
                }
            }
        }
        Ok(config) if for_workload => render::set(&mut r, "applies", render::applies(&config)),
        Ok(config) => {
            render::set(
                &mut r,
                "rules",
                json!(config.request_authn.providers().len()),
            );
            r.get_mut("notes")
                .and_then(Value::as_array_mut)
                .into_iter()
                .for_each(|n| {
                    n.push(json!(
                        "no workload given: every policy was validated; pass --workload \
                     NAMESPACE/key=value,... to see what applies to one"
                    ))
                });
        }
    }
    r
}

/// `i` of an error that starts with `policies[i]`.
fn policy_index(error: &str) -> Option<usize> {
    let rest = error.strip_prefix("policies[")?;
    rest.get(..rest.find(']')?)?.parse().ok()
}

fn print(r: &Value) {
    let input = r["input"].as_str().unwrap_or_default();
    match r["error"].as_str() {
        Some(error) => {
            println!(
                "{input}: INVALID ({})",
                r["kind"].as_str().unwrap_or_default()
            );
            println!("  error: {error}");
            if let Some(source) = r["errorSource"].as_str() {
                println!("  ({source})");
            }
        }
        None => println!("{input}: OK ({})", r["kind"].as_str().unwrap_or_default()),
    }
    if r["applies"].is_object() {
        render::print_applies(&r["applies"]);
    }
    for w in render::strings(&r["warnings"]) {
        println!("  warning: {w}");
    }
    for n in render::strings(&r["notes"]) {
        println!("  note: {n}");
    }
}
