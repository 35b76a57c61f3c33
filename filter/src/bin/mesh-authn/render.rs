//! How the compiled configuration reads in a report: rules, locations, key sources, modes.
//! Every report is built once as JSON (`--output json`) and printed for people from that.

use mesh_authn::config::{ConfigError, FilterConfig};
use mesh_authn::extract::Location;
use mesh_authn::remote_jwks::SourceKind;
use mesh_authn::request_authn::{KeySource, Provider};
use serde_json::{json, Map, Value};

/// A location as the rule's YAML would say it.
pub fn location(l: &Location) -> String {
    match l {
        Location::Header { name, prefix } if prefix.is_empty() => format!("header {name}"),
        Location::Header { name, prefix } => format!("header {name} (prefix {prefix:?})"),
        Location::Param(name) => format!("query parameter {name}"),
        Location::Cookie(name) => format!("cookie {name}"),
    }
}

/// Where a rule's keys come from.
pub fn key_source(config: &FilterConfig, p: &Provider) -> String {
    match &p.jwks {
        KeySource::Inline(jwks) => {
            let kids: Vec<&str> = jwks
                .keys()
                .iter()
                .map(|k| {
                    if k.kid.is_empty() {
                        "(no kid)"
                    } else {
                        k.kid.as_str()
                    }
                })
                .collect();
            format!("inline jwks, {} key(s): {}", kids.len(), kids.join(", "))
        }
        KeySource::Remote(id) => match config.remote_jwks.get(*id) {
            Some(source) => {
                let uri = source.first_uri();
                let cluster = config.remote_jwks.settings.cluster_for(uri);
                match &source.kind {
                    SourceKind::JwksUri(u) => {
                        format!("jwksUri {} (fetched through cluster {cluster})", u.text)
                    }
                    SourceKind::Discovery(u) => format!(
                        "OIDC discovery {} (fetched through cluster {cluster})",
                        u.text
                    ),
                }
            }
            None => "remote (unknown source)".to_owned(),
        },
    }
}

/// One rule, in the order the filter tries it.
pub fn rule(config: &FilterConfig, p: &Provider) -> Value {
    let mut outputs = Map::new();
    if let Some(h) = &p.outputs.payload_header {
        outputs.insert("outputPayloadToHeader".into(), json!(h));
    }
    if !p.outputs.claims.is_empty() {
        outputs.insert(
            "outputClaimToHeaders".into(),
            p.outputs
                .claims
                .iter()
                .map(|c| json!({"header": c.header, "claim": c.path.join(".")}))
                .collect(),
        );
    }
    json!({
        "issuer": p.issuer,
        "audiences": p.audiences.configured(),
        "locations": p.locations.iter().map(location).collect::<Vec<_>>(),
        "keys": key_source(config, p),
        "forwardOriginalToken": p.forward,
        "presence": if p.required { "REQUIRED" } else { "optional" },
        "outputs": outputs,
    })
}

/// What applies to the workload: rules in the filter's order, the PeerAuthentication mode per
/// port, and the filter's own log lines (the summary names the policies that decided and the
/// ones not selected; warnings name ignored ones and why).
pub fn applies(config: &FilterConfig) -> Value {
    let peer = &config.peer_authn;
    let ports: Map<String, Value> = peer
        .per_port()
        .iter()
        .map(|(port, mode)| (port.to_string(), json!(mode.as_str())))
        .collect();
    json!({
        "requestAuthentication": config
            .request_authn
            .providers()
            .iter()
            .map(|p| rule(config, p))
            .collect::<Vec<_>>(),
        "peerAuthentication": {
            "mode": peer.mode().as_str(),
            "ports": ports,
            "trustDomainChecked": peer.checks_trust_domain(),
        },
        "authorizationPolicy": {
            "applies": config.authz.policies().iter().map(|p| json!({
                "policy": format!("{}/{}", p.namespace, p.name),
                "action": p.action.as_str(),
                "dryRun": p.dry_run,
                "rules": p.rules.len(),
                // istiod leaves these ALLOW rules out (a field it cannot translate): they never match.
                "rulesNeverMatching": p.rules.iter().filter(|r| r.never).map(|r| r.id.as_str()).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
            "notSelected": config.authz_not_selected.iter().map(|(id, why)| json!({
                "policy": id,
                "why": why,
            })).collect::<Vec<_>>(),
        },
        "log": format!("configured: {}", config.summary),
        "warnings": config.warnings,
    })
}

/// The filter's refusal with the field path as it stands in the input.
pub fn error(e: &ConfigError, prefix: &str) -> String {
    match e {
        ConfigError::Field { path, message } => format!("{prefix}{path}: {message}"),
        ConfigError::Syntax(_) => e.to_string(),
    }
}

/// Prints `applies` for people, indented.
pub fn print_applies(v: &Value) {
    let rules = v["requestAuthentication"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if rules.is_empty() {
        println!("  RequestAuthentication: no rule applies (every request passes this filter's JWT checks)");
    } else {
        println!("  RequestAuthentication rules, in the order the filter tries them:");
    }
    for (i, r) in rules.iter().enumerate() {
        let issuer = r["issuer"].as_str().unwrap_or_default();
        println!(
            "    {}. issuer {}",
            i + 1,
            if issuer.is_empty() { "(any)" } else { issuer }
        );
        let auds = strings(&r["audiences"]);
        println!(
            "       audiences: {}",
            if auds.is_empty() {
                "(any)".to_owned()
            } else {
                auds.join(", ")
            }
        );
        println!(
            "       tokens from: {}",
            strings(&r["locations"]).join("; ")
        );
        println!("       keys: {}", r["keys"].as_str().unwrap_or_default());
        println!(
            "       presence: {}, forwardOriginalToken: {}",
            r["presence"].as_str().unwrap_or_default(),
            r["forwardOriginalToken"]
        );
        if let Some(outputs) = r["outputs"].as_object().filter(|o| !o.is_empty()) {
            println!("       outputs: {}", Value::Object(outputs.clone()));
        }
    }
    let peer = &v["peerAuthentication"];
    let ports = peer["ports"].as_object().cloned().unwrap_or_default();
    let mut line = format!(
        "  PeerAuthentication: {}",
        peer["mode"].as_str().unwrap_or_default()
    );
    for (port, mode) in &ports {
        line.push_str(&format!(
            ", port {port}: {}",
            mode.as_str().unwrap_or_default()
        ));
    }
    if peer["trustDomainChecked"] == json!(true) {
        line.push_str(" (STRICT peers must be in the configured trust domain)");
    }
    println!("{line}");
    let authz = &v["authorizationPolicy"];
    let policies = authz["applies"].as_array().cloned().unwrap_or_default();
    if policies.is_empty() {
        println!("  AuthorizationPolicy: none applies (every authenticated request is allowed)");
    } else {
        println!("  AuthorizationPolicy that apply (evaluated AUDIT, then DENY, then ALLOW):");
    }
    for p in &policies {
        let rules = p["rules"].as_u64().unwrap_or_default();
        println!(
            "    {} {}: {} rule(s){}{}",
            p["action"].as_str().unwrap_or_default(),
            p["policy"].as_str().unwrap_or_default(),
            rules,
            if rules == 0 { " (never matches)" } else { "" },
            if p["dryRun"] == json!(true) {
                ", dry-run (istio.io/dry-run: evaluated and logged, never enforced)"
            } else {
                ""
            }
        );
        for r in strings(&p["rulesNeverMatching"]) {
            println!("       {r}: never matches (istiod leaves this ALLOW rule out)");
        }
    }
    for n in authz["notSelected"].as_array().into_iter().flatten() {
        println!(
            "    not selected: {}: {}",
            n["policy"].as_str().unwrap_or_default(),
            n["why"].as_str().unwrap_or_default()
        );
    }
    println!("  filter log: {}", v["log"].as_str().unwrap_or_default());
    for w in strings(&v["warnings"]) {
        println!("  warning (the filter logs it): {w}");
    }
}

/// The strings of a JSON array.
pub fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .map(|s| s.as_str().map_or_else(|| s.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// Sets `key` of a report object (a report is always an object; anything else is left alone).
pub fn set(report: &mut Value, key: &str, value: Value) {
    if let Some(map) = report.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}
