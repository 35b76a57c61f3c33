//! `mesh-authn explain`: one request through the filter's own decision code in the filter's
//! order, PeerAuthentication, then `RequestAuthn::authenticate_attributed`, then
//! AuthorizationPolicy (`authorize::authorize`, what the adapter calls), with the reply Envoy would send
//! (`LocalReply`) or the changes to the request (`Mutations`). Signatures are checked with the
//! pure-Rust backend the native tests use (`PureRust`: the filter's fallback where the host has
//! no `verify_signature`); remote key sets come from files, never from the network.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use mesh_authn::authorize::{self, Connection};
use mesh_authn::authz::{EngineResult, Matched, Outcome};
use mesh_authn::config::FilterConfig;
use mesh_authn::decision::Decision;
use mesh_authn::extract::{text, RequestState};
use mesh_authn::jwt::verify::{self, PureRust};
use mesh_authn::jwt::{AuthnStatus, Jwks, Jwt};
use mesh_authn::local_reply::LocalReply;
use mesh_authn::peer_authn::{Peer, PeerVerdict};
use mesh_authn::remote_jwks::{Keys, RemoteKeys, SourceId, SourceKind};
use mesh_authn::request::Request;
use mesh_authn::request_authn::{check_claims, Env, KeySource, Provider};
use serde_json::{json, Value};

use crate::{check, input, render, workload, Output, WorkloadArgs};

#[derive(clap::Args)]
pub struct Args {
    /// The plugin configuration (or WasmPlugin, or resources with --workload).
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    workload: WorkloadArgs,
    /// A token, sent as `authorization: Bearer <T>`.
    #[arg(long)]
    token: Option<String>,
    /// A request header, `name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// `:method`.
    #[arg(long, default_value = "GET")]
    method: String,
    /// `:path` (with the query string).
    #[arg(long, default_value = "/")]
    path: String,
    /// `:authority` (the `Host`), echoed in `WWW-Authenticate`'s realm.
    #[arg(long, default_value = "localhost")]
    authority: String,
    /// `:scheme`.
    #[arg(long, default_value = "http")]
    scheme: String,
    /// `destination.port`: the port the connection arrived on (PeerAuthentication per port).
    #[arg(long)]
    port: Option<u32>,
    /// The connection presented a client certificate.
    #[arg(long)]
    mtls: bool,
    /// The client certificate's first URI SAN (implies --mtls).
    #[arg(long)]
    peer_spiffe_id: Option<String>,
    /// `source.address` / Envoy `remote_ip` for `remoteIpBlocks` and `remote.ip` (with Istio's
    /// `use_remote_address: false`, the last `x-forwarded-for` address, else the peer's).
    #[arg(long)]
    remote_ip: Option<std::net::IpAddr>,
    /// `destination.address`: the address the connection came to (`destination.ip`).
    #[arg(long)]
    destination_ip: Option<std::net::IpAddr>,
    /// The TLS SNI the client sent (`connection.sni`).
    #[arg(long)]
    sni: Option<String>,
    /// A remote key set from a file: `FILE` (the only remote source), or
    /// `ISSUER-OR-URL=FILE` (repeatable).
    #[arg(long)]
    jwks: Vec<String>,
    /// Now, in Unix seconds (default: the system clock).
    #[arg(long)]
    now: Option<u64>,
    /// Output format.
    #[arg(long, value_enum, default_value = "human")]
    output: Output,
}

/// Remote key sets read from files; a source without a file fails as a failed fetch would.
struct FileKeys(BTreeMap<SourceId, Rc<Jwks>>);

impl RemoteKeys for FileKeys {
    fn keys(&self, source: SourceId) -> Keys {
        self.0
            .get(&source)
            .map_or(Keys::Failed, |k| Keys::Ready(Rc::clone(k)))
    }
    fn refetch_for_unknown_kid(&self, _source: SourceId) -> bool {
        false
    }
}

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let asked = workload::node(&args.workload)?;
    let mut units = input::load(std::slice::from_ref(&args.config))?;
    if units.len() != 1 {
        return Err(format!(
            "{} holds {} configurations; explain needs exactly one",
            args.config.display(),
            units.len()
        ));
    }
    let unit = units.remove(0);
    let (config, for_workload) = check::compile(&unit, asked.as_ref());
    let config = match config {
        Ok(config) if for_workload => config,
        Ok(_) => {
            return Err(
                "no workload: pass --workload NAMESPACE/key=value,... to say which \
                        workload the request is for"
                    .to_owned(),
            )
        }
        Err(e) => {
            println!("{}: INVALID: {e}", unit.origin);
            println!("the filter refuses this configuration: Envoy does not start with it");
            return Ok(ExitCode::from(1));
        }
    };
    let (remote, key_notes) = remote_keys(&config, &args.jwks)?;
    let request = build_request(args)?;
    let now = match args.now {
        Some(now) => now,
        None => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|e| e.to_string())?
            .as_secs(),
    };
    let mut report = json!({
        "config": unit.origin,
        "log": format!("configured: {}", config.summary),
        "keys": key_notes,
        "notes": unit.notes,
        "now": now,
    });
    let mtls = args.mtls || args.peer_spiffe_id.is_some();
    let peer = Peer {
        mtls: Some(mtls),
        uri_san: args.peer_spiffe_id.as_deref().map(str::as_bytes),
        port: args.port,
    };
    let mode = config.peer_authn.mode_for(args.port);
    let verdict = config.peer_authn.decide(&peer);
    let peer_verdict = match verdict {
        PeerVerdict::Allow => "allowed".to_owned(),
        PeerVerdict::Deny(denial) => format!("denied: {}", denial.reason()),
    };
    render::set(
        &mut report,
        "peerAuthentication",
        json!({
            "mode": mode.as_str(),
            "port": args.port,
            "clientCertificate": mtls,
            "uriSan": args.peer_spiffe_id,
            "verdict": peer_verdict,
        }),
    );
    if let PeerVerdict::Deny(denial) = verdict {
        render::set(
            &mut report,
            "verdict",
            json!("denied by PeerAuthentication"),
        );
        render::set(
            &mut report,
            "reply",
            reply(&LocalReply::peer_denied(denial)),
        );
        return finish(&report, args.output);
    }
    let env = Env {
        now,
        crypto: &PureRust,
        remote: &remote,
        cache: None,
    };
    render::set(&mut report, "rules", trace(&config, &request, &env));
    let (decision, attribution) = config.request_authn.authenticate_attributed(&request, &env);
    let rule_name = |i: usize| {
        config
            .request_authn
            .providers()
            .get(i)
            .map_or_else(String::new, |p| {
                format!("rule {} (issuer {})", i + 1, p.issuer)
            })
    };
    render::set(
        &mut report,
        "corsPreflight",
        json!(attribution.cors_preflight),
    );
    match decision {
        Decision::Allow(m) => {
            render::set(
                &mut report,
                "verifiedBy",
                json!(attribution
                    .verified
                    .iter()
                    .map(|i| rule_name(*i))
                    .collect::<Vec<_>>()),
            );
            if !config.authz.is_empty() {
                let conn = Connection {
                    peer_uri_san: args.peer_spiffe_id.clone(),
                    // The command line names a peer by its SPIFFE ID only.
                    peer_dns_san: None,
                    peer_subject: None,
                    remote_ip: args.remote_ip,
                    destination_ip: args.destination_ip,
                    destination_port: args.port,
                    sni: args.sni.clone(),
                };
                let outcome = match authorize::authorize(&config, &request, &m, &attribution, &conn)
                {
                    Ok(outcome) => outcome,
                    // The filter refuses the request (`refuse` in proxy/apply.rs).
                    Err(unreadable) => {
                        render::set(&mut report, "verdict", json!("refused"));
                        let refusal = LocalReply::internal_error(&unreadable.to_string());
                        render::set(&mut report, "reply", reply(&refusal));
                        return finish(&report, args.output);
                    }
                };
                render::set(
                    &mut report,
                    "authorizationPolicy",
                    authz_report(&config, &outcome, &conn),
                );
                if let Some(reply_403) = LocalReply::authz_denied(&outcome) {
                    render::set(
                        &mut report,
                        "verdict",
                        json!("denied by AuthorizationPolicy"),
                    );
                    render::set(&mut report, "reply", reply(&reply_403));
                    return finish(&report, args.output);
                }
            }
            render::set(&mut report, "verdict", json!("allowed"));
            render::set(
                &mut report,
                "requestChanges",
                json!({
                    "removeHeaders": m.remove_headers.as_slice(),
                    "path": m.path.map(|p| String::from_utf8_lossy(&p).into_owned()),
                    "setHeaders": pairs(&m.set_headers),
                    "addHeaders": pairs(&m.add_headers),
                }),
            );
        }
        Decision::Deny(status) => {
            render::set(
                &mut report,
                "verdict",
                json!("denied by RequestAuthentication"),
            );
            render::set(
                &mut report,
                "deniedBy",
                json!(attribution.denied_by.map(rule_name)),
            );
            render::set(
                &mut report,
                "reply",
                reply(&LocalReply::jwt_denied(status, &request)),
            );
        }
        Decision::NeedKeys(_) => {
            // FileKeys never asks to wait; say it rather than guess.
            render::set(
                &mut report,
                "verdict",
                json!("waiting for remote keys (not expected offline)"),
            );
        }
    }
    finish(&report, args.output)
}

/// The AuthorizationPolicy step: the rule that decided (or `none`), AUDIT and dry-run results,
/// and which connection properties the policies read that the command line did not give.
fn authz_report(config: &FilterConfig, outcome: &Outcome<'_>, conn: &Connection) -> Value {
    let rule = |m: Matched<'_>| {
        json!({
            "policy": format!("{}/{}", m.policy.namespace, m.policy.name),
            "action": m.policy.action.as_str(),
            "rule": m.rule_id,
        })
    };
    let shadow = |r: EngineResult<'_>| match r {
        EngineResult::NotApplicable => Value::Null,
        EngineResult::Matched(m) => rule(m),
        EngineResult::NoMatch => json!("no rule matched"),
    };
    let decision = match outcome.denied {
        Some(Some(_)) => "denied: a DENY rule matched",
        Some(None) => "denied: ALLOW policies apply and no ALLOW rule matched",
        None if outcome.allowed_by.is_some() => "allowed: an ALLOW rule matched",
        None => "allowed: no DENY rule matched and no ALLOW policy applies",
    };
    let needs = config.authz.needs();
    let mut missing = Vec::new();
    for (needed, given, what) in [
        (needs.peer, conn.peer_uri_san.is_some(), "--peer-spiffe-id"),
        (needs.remote_ip, conn.remote_ip.is_some(), "--remote-ip"),
        (
            needs.destination_ip,
            conn.destination_ip.is_some(),
            "--destination-ip",
        ),
        (
            needs.destination_port,
            conn.destination_port.is_some(),
            "--port",
        ),
        (needs.sni, conn.sni.is_some(), "--sni"),
    ] {
        if needed && !given {
            missing.push(format!(
                "a policy reads what {what} gives; not given, so it is absent (matches no value)"
            ));
        }
    }
    json!({
        "decision": decision,
        "deniedBy": outcome.denied.map(|d| d.map_or(json!("none"), rule)),
        "allowedBy": outcome.allowed_by.map(rule),
        "auditedBy": outcome.audited_by.map(rule),
        "dryRun": {
            "deny": shadow(outcome.shadow_deny),
            "allow": shadow(outcome.shadow_allow),
            "audit": shadow(outcome.shadow_audit),
        },
        "notes": missing,
    })
}

fn pairs(p: &[(String, Vec<u8>)]) -> Vec<Value> {
    p.iter()
        .map(|(n, v)| json!([n, String::from_utf8_lossy(v)]))
        .collect()
}

fn reply(r: &LocalReply) -> Value {
    json!({
        "status": r.code,
        "body": r.body,
        "headers": r.headers.iter().map(|(n, v)| json!([n, String::from_utf8_lossy(v)])).collect::<Vec<_>>(),
        "responseCodeDetails": r.details,
    })
}

fn build_request(args: &Args) -> Result<Request, String> {
    let mut pairs = vec![
        (":method".to_owned(), args.method.clone()),
        (":path".to_owned(), args.path.clone()),
        (":authority".to_owned(), args.authority.clone()),
        (":scheme".to_owned(), args.scheme.clone()),
    ];
    if let Some(token) = &args.token {
        pairs.push(("authorization".to_owned(), format!("Bearer {token}")));
    }
    for h in &args.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| format!("--header {h:?} is not `name: value`"))?;
        pairs.push((name.trim().to_owned(), value.trim_start().to_owned()));
    }
    Ok(Request::new(
        pairs
            .into_iter()
            .map(|(n, v)| (n.into_bytes(), v.into_bytes()))
            .collect(),
    ))
}

/// The remote key sets from `--jwks` files; a note per source.
fn remote_keys(config: &FilterConfig, given: &[String]) -> Result<(FileKeys, Vec<String>), String> {
    let sources = &config.remote_jwks.sources;
    let mut keys = BTreeMap::new();
    for arg in given {
        let (name, file) = match arg.rsplit_once('=') {
            Some((name, file)) => (Some(name), file),
            None => (None, arg.as_str()),
        };
        let ids: Vec<SourceId> = match name {
            None if sources.len() == 1 => vec![SourceId(0)],
            None => {
                return Err(format!(
                    "--jwks {arg}: the configuration has {} remote key sets; say which: \
                     --jwks ISSUER-OR-URL=FILE",
                    sources.len()
                ))
            }
            Some(name) => {
                let by_issuer =
                    config
                        .request_authn
                        .providers()
                        .iter()
                        .filter_map(|p| match p.jwks {
                            KeySource::Remote(id) if p.issuer == name => Some(id),
                            _ => None,
                        });
                let by_url = sources
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.first_uri().text == name)
                    .map(|(i, _)| SourceId(i));
                let ids: Vec<SourceId> = by_issuer.chain(by_url).collect();
                if ids.is_empty() {
                    return Err(format!(
                        "--jwks {arg}: no rule with a remote key set has issuer or URL `{name}`"
                    ));
                }
                ids
            }
        };
        let text = std::fs::read(file).map_err(|e| format!("--jwks {arg}: {file}: {e}"))?;
        // The filter's own reading of a fetched body (size, JSON, usable keys).
        let (jwks, _) = mesh_authn::remote_jwks::parse_fetched_jwks(
            &text,
            config.remote_jwks.settings.allow_symmetric_keys,
        )
        .map_err(|e| format!("--jwks {arg}: {file}: {e}"))?;
        let jwks = Rc::new(jwks);
        for id in ids {
            keys.insert(id, Rc::clone(&jwks));
        }
    }
    let notes = sources
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let what = match &s.kind {
                SourceKind::JwksUri(u) => format!("jwksUri {}", u.text),
                SourceKind::Discovery(u) => format!("OIDC discovery {}", u.text),
            };
            match keys.get(&SourceId(i)) {
                Some(k) => format!("{what}: {} key(s) from --jwks", k.keys().len()),
                None => format!(
                    "{what}: no --jwks file given and no network here: tokens that need it fail \
                     as `Jwks remote fetch is failed` (give --jwks {}=FILE)",
                    s.first_uri().text
                ),
            }
        })
        .collect();
    Ok((FileKeys(keys), notes))
}

/// Each rule in the filter's order, as the core walks them (`verify_provider`): output headers
/// removed first, then per rule the tokens at its locations in what earlier rules left, the
/// last one first, each with its checks in Envoy's order (format, issuer-time-audience,
/// signature) and its header and claims decoded; a verified token the rule does not forward is
/// gone for later rules, and the rule's first failure ends its tokens. The verdict itself is
/// `authenticate_attributed`'s (with several rules Envoy's any-of/all-of combination).
fn trace(config: &FilterConfig, request: &Request, env: &Env<'_>) -> Value {
    let providers = config.request_authn.providers();
    let mut state = RequestState::new(request);
    for p in providers {
        state.sanitize(&p.outputs);
    }
    providers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            state.sanitize(&p.outputs);
            let mut tokens = Vec::new();
            for found in state.extract(&p.locations).iter().rev() {
                let t = token_trace(
                    p,
                    &text(&found.token),
                    env,
                    &render::location(found.location),
                );
                let verified = t.get("verified") == Some(&json!(true));
                tokens.push(t);
                if !verified {
                    break;
                }
                if !p.forward {
                    state.remove(found.location);
                }
            }
            json!({
                "rule": i + 1,
                "issuer": p.issuer,
                "locations": p.locations.iter().map(render::location).collect::<Vec<_>>(),
                "tokens": tokens,
            })
        })
        .collect()
}

fn token_trace(p: &Provider, token: &str, env: &Env<'_>, at: &str) -> Value {
    let mut checks = Vec::new();
    let result = (|| -> Result<(), AuthnStatus> {
        let jwt = Jwt::parse(token).inspect_err(|s| checks.push(json!(["format", s.message()])))?;
        checks.push(json!(["format", "OK"]));
        check_claims(p, &jwt, env.now)
            .inspect_err(|s| checks.push(json!(["issuer, time, audience", s.message()])))?;
        checks.push(json!(["issuer, time, audience", "OK"]));
        let jwks = match &p.jwks {
            KeySource::Inline(jwks) => Rc::clone(jwks),
            KeySource::Remote(id) => match env.remote.keys(*id) {
                Keys::Ready(jwks) => jwks,
                Keys::Wait | Keys::Failed => {
                    checks.push(json!([
                        "signature",
                        "no key set (no --jwks file for this source)"
                    ]));
                    return Err(AuthnStatus::JwksFetchFail);
                }
            },
        };
        verify::verify_signature(&jwt, &jwks, env.crypto)
            .inspect_err(|s| checks.push(json!(["signature", s.message()])))?;
        checks.push(json!(["signature", "OK"]));
        Ok(())
    })();
    let verified = result.is_ok();
    let (header, claims) = decode(token);
    json!({
        "at": at,
        "result": result.err().map_or("OK", AuthnStatus::message),
        "checks": checks,
        "header": header,
        "claims": claims,
        "verified": verified,
    })
}

/// The token's header and claims as JSON, when they decode (shown, never trusted).
fn decode(token: &str) -> (Value, Value) {
    let mut parts = token.split('.').filter(|s| !s.is_empty());
    let mut part = || {
        parts
            .next()
            .and_then(|p| URL_SAFE_NO_PAD.decode(p.trim_end_matches('=')).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
            .unwrap_or(Value::Null)
    };
    let header = part();
    (header, part())
}

fn finish(report: &Value, output: Output) -> Result<ExitCode, String> {
    match output {
        Output::Json => println!(
            "{}",
            serde_json::to_string_pretty(report).map_err(|e| e.to_string())?
        ),
        Output::Human => print(report),
    }
    Ok(ExitCode::SUCCESS)
}

fn print(r: &Value) {
    println!("config: {}", r["config"].as_str().unwrap_or_default());
    println!("  {}", r["log"].as_str().unwrap_or_default());
    for k in render::strings(&r["keys"]) {
        println!("  keys: {k}");
    }
    for n in render::strings(&r["notes"]) {
        println!("  note: {n}");
    }
    let peer = &r["peerAuthentication"];
    println!(
        "PeerAuthentication: {} on port {} ({}): {}",
        peer["mode"].as_str().unwrap_or_default(),
        peer["port"]
            .as_u64()
            .map_or("(not given)".to_owned(), |p| p.to_string()),
        match peer["uriSan"].as_str() {
            Some(san) => format!("client certificate, URI SAN {san}"),
            None if peer["clientCertificate"] == json!(true) => "client certificate".to_owned(),
            None => "no client certificate".to_owned(),
        },
        peer["verdict"].as_str().unwrap_or_default()
    );
    if r["corsPreflight"] == json!(true) {
        println!(
            "CORS preflight: let through without checking tokens (Istio's bypass_cors_preflight)"
        );
    }
    for rule in r["rules"].as_array().into_iter().flatten() {
        println!(
            "rule {}: issuer {} — looks in {}",
            rule["rule"],
            rule["issuer"].as_str().unwrap_or_default(),
            render::strings(&rule["locations"]).join("; ")
        );
        let tokens = rule["tokens"].as_array().cloned().unwrap_or_default();
        if tokens.is_empty() {
            println!("  no token there");
        }
        for t in &tokens {
            println!(
                "  token at {}: {}",
                t["at"].as_str().unwrap_or_default(),
                t["result"].as_str().unwrap_or_default()
            );
            for c in t["checks"].as_array().into_iter().flatten() {
                println!(
                    "    {}: {}",
                    c[0].as_str().unwrap_or_default(),
                    c[1].as_str().unwrap_or_default()
                );
            }
            let mark = if t["verified"] == json!(true) {
                "verified"
            } else {
                "UNVERIFIED"
            };
            println!("    header ({mark}): {}", t["header"]);
            println!("    claims ({mark}): {}", t["claims"]);
        }
    }
    let a = &r["authorizationPolicy"];
    if a.is_object() {
        println!(
            "AuthorizationPolicy (on the request as it would go upstream): {}",
            a["decision"].as_str().unwrap_or_default()
        );
        let rule = |v: &Value| {
            format!(
                "{} {} ({})",
                v["action"].as_str().unwrap_or_default(),
                v["policy"].as_str().unwrap_or_default(),
                v["rule"].as_str().unwrap_or_default()
            )
        };
        for (key, what) in [
            ("deniedBy", "denied by"),
            ("allowedBy", "allowed by"),
            ("auditedBy", "audited by"),
        ] {
            match &a[key] {
                Value::Null => {}
                // `none`: no ALLOW rule matched, the policy name Envoy RBAC reports then.
                Value::String(s) => println!("  {what} {s} (no ALLOW rule matched)"),
                v => println!("  {what} {}", rule(v)),
            }
        }
        for (key, what) in [("deny", "DENY"), ("allow", "ALLOW"), ("audit", "AUDIT")] {
            match a["dryRun"].get(key).unwrap_or(&Value::Null) {
                Value::Null => {}
                Value::String(s) => println!("  dry-run {what}: {s}"),
                v => println!("  dry-run {what}: would match {}", rule(v)),
            }
        }
        for n in render::strings(&a["notes"]) {
            println!("  note: {n}");
        }
    }
    println!("verdict: {}", r["verdict"].as_str().unwrap_or_default());
    if let Some(by) = r["deniedBy"].as_str() {
        println!("  decided by {by}");
    }
    if let Some(by) = r["verifiedBy"].as_array().filter(|a| !a.is_empty()) {
        println!(
            "  verified by {}",
            render::strings(&Value::Array(by.clone())).join(", ")
        );
    }
    if r["reply"].is_object() {
        let reply = &r["reply"];
        println!("Envoy answers: {} {}", reply["status"], reply["body"]);
        for h in reply["headers"].as_array().into_iter().flatten() {
            println!(
                "  {}: {}",
                h[0].as_str().unwrap_or_default(),
                h[1].as_str().unwrap_or_default()
            );
        }
        println!(
            "  response code details: {}",
            reply["responseCodeDetails"].as_str().unwrap_or_default()
        );
    }
    if let Some(c) = r["requestChanges"].as_object() {
        println!("the request goes upstream with these changes:");
        for h in render::strings(&c["removeHeaders"]) {
            println!("  remove {h}");
        }
        if let Some(p) = c["path"].as_str() {
            println!("  :path becomes {p}");
        }
        for (what, key) in [("set", "setHeaders"), ("add", "addHeaders")] {
            for h in c[key].as_array().into_iter().flatten() {
                println!(
                    "  {what} {}: {}",
                    h[0].as_str().unwrap_or_default(),
                    h[1].as_str().unwrap_or_default()
                );
            }
        }
    }
}
