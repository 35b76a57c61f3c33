//! A bad plugin configuration makes Envoy refuse to start, and the filter says why in one log
//! line per VM start naming the field: `invalid plugin configuration: <field path>: <message>`.
//!
//! Every bad configuration of the table goes through the filter's own parser (the text the
//! log line carries after the mark, checked natively: fast); Envoy then starts once per way a
//! refusal reaches it (a field the filter refuses, text that is not YAML, `envoy --mode
//! validate`), which is what only Envoy can show: the line per VM start and the refused start.

use host_tests::bad_configs::{jwks_line, rule_spec, table, with_spec, WORKLOAD};
use host_tests::envoy::Envoy;
use mesh_authn::config::FilterConfig;

const MARK: &str = "invalid plugin configuration:";

/// What the filter's parser says of `config`: the text the log line carries after [`MARK`].
fn refusal(config: &str) -> Result<String, String> {
    match FilterConfig::parse(config.as_bytes()) {
        Ok(_) => Err(format!("accepted:\n{config}")),
        Err(e) => Ok(e.to_string()),
    }
}

/// `<field_path>: <message>` on one line, with a message containing every keyword.
fn check_message(line: &str, field_path: &str, keywords: &[&str]) -> Result<(), String> {
    let message = line
        .strip_prefix(field_path)
        .and_then(|rest| rest.strip_prefix(": "))
        .ok_or_else(|| format!("{line:?} does not name {field_path:?}"))?;
    if line.contains('\n') {
        return Err(format!("{line:?} is more than one line"));
    }
    match keywords.iter().find(|k| !message.contains(*k)) {
        Some(k) => Err(format!("{line:?} lacks {k:?}")),
        None => Ok(()),
    }
}

#[test]
fn every_bad_configuration_is_refused_naming_its_field() {
    let failures: Vec<String> = table()
        .iter()
        .filter_map(|row| {
            refusal(&row.config)
                .and_then(|line| check_message(&line, row.field_path, row.keywords))
                .err()
                .map(|why| format!("{}: {why}\nconfig:\n{}", row.name, row.config))
        })
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Starts Envoy with `config` and asserts that it refused to start (exited non-zero) and that
/// its log has exactly one [`MARK`] line per VM start, each naming `field_path`, with a message
/// containing every keyword.
fn assert_refused_by_envoy(config: &str, field_path: &str, keywords: &[&str]) {
    let err = match Envoy::start(config, 9) {
        Ok(mut envoy) => {
            envoy.stop();
            panic!(
                "Envoy started with a bad configuration:\n{config}\nlog:\n{}",
                envoy.log()
            );
        }
        Err(e) => e,
    };
    let status = err
        .status
        .unwrap_or_else(|| panic!("Envoy neither became ready nor exited: {err:?}"));
    assert!(
        !status.success(),
        "Envoy exited 0 with a bad configuration: {err:?}"
    );
    let lines: Vec<&str> = err
        .log
        .lines()
        .filter_map(|l| l.split_once(MARK).map(|(_, rest)| rest.trim()))
        .collect();
    // The filter's on_vm_start line: "wasm log mesh-authn mesh-authn: mesh-authn <v> (..) started".
    let vm_starts = err
        .log
        .lines()
        .filter(|l| l.contains("wasm log") && l.trim_end().ends_with(" started"))
        .count();
    let context = format!("config:\n{config}\nEnvoy's log:\n{}", err.log);
    assert!(vm_starts >= 1, "no VM start in the log; {context}");
    assert_eq!(
        lines.len(),
        vm_starts,
        "want one {MARK:?} line per VM start; {context}"
    );
    for line in lines {
        if let Err(why) = check_message(line, field_path, keywords) {
            panic!("{why}; {context}");
        }
    }
}

#[test]
fn control_the_helpers_make_a_config_envoy_accepts() {
    let config = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    if let Ok(line) = refusal(&config) {
        panic!("the filter's parser refused the control: {line}");
    }
    let mut envoy = Envoy::start(&config, 9).unwrap();
    assert!(envoy.is_running());
    assert!(!envoy.log().contains(MARK), "{}", envoy.log());
}

/// The channel every row of the table takes in Envoy: the filter refuses the configuration
/// when the VM starts, and Envoy does not start. One row stands for them all.
#[test]
fn envoy_refuses_to_start_with_a_field_the_filter_refuses() {
    let table = table();
    let row = table
        .iter()
        .find(|r| r.name == "wrong type: forwardOriginalToken")
        .unwrap();
    assert_refused_by_envoy(&row.config, row.field_path, row.keywords);
}

#[test]
fn not_yaml() {
    let config = format!("{WORKLOAD}policies: [\n");
    assert!(refusal(&config).unwrap().contains("not valid YAML"));
    let err = Envoy::start(&config, 9).err().unwrap();
    assert!(!err.status.unwrap().success(), "{err:?}");
    let lines: Vec<&str> = err.log.lines().filter(|l| l.contains(MARK)).collect();
    assert_eq!(lines.len(), 1, "{err:?}");
    assert!(lines[0].contains("not valid YAML"), "{err:?}");
}

#[test]
fn envoy_validate_mode_runs_the_filter_config_check() {
    let good = with_spec("RequestAuthentication", &rule_spec(&jwks_line()));
    let (ok, out) = host_tests::envoy::validate_plugin_config(&good, 9);
    assert!(ok && !out.contains(MARK), "{out}");
    let (ok, out) = host_tests::envoy::validate_plugin_config("policies: []\n", 9);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("{MARK} workload: required")), "{out}");
}
