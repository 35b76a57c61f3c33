//! Runs the real Envoy with the built `.wasm`, from the `envoy/mesh-authn.yaml` template, on
//! ports the kernel chooses (read back from the admin API, so there is no race on a port).

use std::fmt;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Sender};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::http;

/// How long Envoy gets to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How to start Envoy.
#[derive(Debug, Clone)]
pub struct Options {
    /// `--concurrency` (worker threads).
    pub concurrency: u32,
    /// `-l` log level.
    pub log_level: String,
    /// The bootstrap template under `envoy/`.
    pub template: String,
    /// Extra `(placeholder, value)` pairs for templates that have more placeholders.
    pub extra_values: Vec<(String, String)>,
    /// A command Envoy runs under, with its arguments (Envoy's path and arguments follow):
    /// e.g. valgrind for the benchmark's instruction counts. Empty: Envoy runs itself.
    pub wrapper: Vec<String>,
    /// How long Envoy gets to become ready.
    pub ready_timeout: Duration,
    /// More command-line options for Envoy (e.g. `--drain-time-s`).
    pub args: Vec<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            concurrency: 1,
            log_level: "info".to_owned(),
            template: "mesh-authn.yaml".to_owned(),
            extra_values: Vec::new(),
            wrapper: Vec::new(),
            ready_timeout: READY_TIMEOUT,
            args: Vec::new(),
        }
    }
}

/// Envoy exited, or did not become ready in time.
pub struct StartError {
    /// The exit status; `None` when Envoy was killed after the timeout.
    pub status: Option<ExitStatus>,
    /// What went wrong, in a sentence.
    pub reason: String,
    /// Envoy's captured stdout and stderr.
    pub log: String,
}

impl fmt::Debug for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}; Envoy's log:\n{}", self.reason, self.log)
    }
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl std::error::Error for StartError {}

/// A temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(prefix: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or_default();
        let dir = std::env::temp_dir().join(format!(
            "{prefix}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::SeqCst)
        ));
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

type SpawnRequest = (Command, Sender<std::io::Result<Child>>);

/// Spawns `cmd` so that the child gets SIGKILL when this process dies, however it dies (Linux
/// `PR_SET_PDEATHSIG`). The signal follows the thread that forked, so every child is forked by
/// one spawner thread that lives as long as the process; an Envoy may then be kept in a static
/// or handed between threads.
pub fn spawn_tied_to_process(mut cmd: Command) -> std::io::Result<Child> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: the closure runs between fork and exec and only calls prctl and getppid,
        // both async-signal-safe; it allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl.
                if libc::getppid() == 1 {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    static SPAWNER: OnceLock<Mutex<Sender<SpawnRequest>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("child-spawner".to_owned())
            .spawn(move || {
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((cmd, reply_tx))
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?;
    reply_rx
        .recv()
        .map_err(|_| std::io::Error::other("spawner thread is gone"))?
}

/// The `clusters:` section that ends a hand-written test bootstrap: one STATIC cluster
/// `upstream` on `127.0.0.1:port`, as the templates in `envoy/` have it.
pub fn upstream_clusters(port: u16) -> String {
    format!(
        r#"  clusters:
  - name: upstream
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint:
            address:
              socket_address: {{address: 127.0.0.1, port_value: {port}}}
"#
    )
}

/// The Envoy bootstrap for `plugin_config_yaml` in front of `127.0.0.1:upstream_port`, with
/// admin and listener on port 0.
pub fn render_config(plugin_config_yaml: &str, upstream_port: u16) -> String {
    render_config_with(plugin_config_yaml, upstream_port, &Options::default())
}

fn render_config_with(plugin_config_yaml: &str, upstream_port: u16, options: &Options) -> String {
    let wasm = crate::wasm_path();
    let upstream = upstream_port.to_string();
    let plugin = crate::yaml_string_literal(plugin_config_yaml);
    let wasm = wasm.to_string_lossy();
    let mut values: Vec<(&str, &str)> = vec![
        ("ADMIN_PORT", "0"),
        ("LISTEN_PORT", "0"),
        ("UPSTREAM_PORT", &upstream),
        ("WASM_PATH", &wasm),
        ("PLUGIN_CONFIG", &plugin),
    ];
    values.extend(
        options
            .extra_values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str())),
    );
    crate::render_envoy_template(&options.template, &values)
}

/// How long after a request mesh-authn's counters can still be short in `/stats`: the filter
/// adds what it counted on its root's tick, at most `mesh_authn::counters::FLUSH_MS`
/// apart, plus slack for the tick's timer.
pub const COUNTER_FLUSH: Duration = Duration::from_millis(mesh_authn::counters::FLUSH_MS + 200);

/// How long [`Envoy::assert_stats`] waits past [`COUNTER_FLUSH`] for a late tick before it
/// reports a mismatch.
pub const COUNTER_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// A running Envoy; on drop, checked for failed VMs, then killed and waited for
/// ([`Envoy::teardown`]).
pub struct Envoy {
    child: Child,
    port: u16,
    admin_port: u16,
    log_path: PathBuf,
    dir: TempDir,
    /// Set by [`Envoy::stop`]: the test ended Envoy itself, so its exit is no failure.
    stopped: bool,
    torn_down: bool,
}

impl Envoy {
    /// Starts Envoy with the filter configured by `plugin_config_yaml`, in front of the
    /// upstream at `127.0.0.1:upstream_port`, and waits until it is ready.
    pub fn start(plugin_config_yaml: &str, upstream_port: u16) -> Result<Envoy, StartError> {
        Envoy::start_with(plugin_config_yaml, upstream_port, &Options::default())
    }

    pub fn start_with(
        plugin_config_yaml: &str,
        upstream_port: u16,
        options: &Options,
    ) -> Result<Envoy, StartError> {
        let config = render_config_with(plugin_config_yaml, upstream_port, options);
        Envoy::start_config(&config, options)
    }

    /// Starts one Envoy with a listener per `(name, plugin configuration)`: the template's
    /// listener once per configuration ([`listeners_bootstrap`]), on ports the kernel chooses
    /// ([`Envoy::listener_ports`]).
    pub fn start_listeners(
        listeners: &[(&str, &str)],
        upstream_port: u16,
        options: &Options,
    ) -> Result<Envoy, StartError> {
        let bootstraps: Vec<(&str, String)> = listeners
            .iter()
            .map(|(name, plugin_config_yaml)| {
                let config = render_config_with(plugin_config_yaml, upstream_port, options);
                (*name, config)
            })
            .collect();
        Envoy::start_config(&listeners_bootstrap(&bootstraps), options)
    }

    /// Starts Envoy with a complete bootstrap (whose admin address must use port 0 or a free
    /// one) and waits until it is ready.
    pub fn start_config(config: &str, options: &Options) -> Result<Envoy, StartError> {
        let dir = TempDir::new("mesh-authn-envoy");
        let config_path = dir.0.join("envoy.yaml");
        let admin_path = dir.0.join("admin-address");
        let log_path = dir.0.join("envoy.log");
        std::fs::write(&config_path, config).expect("write envoy.yaml");
        let log = File::create(&log_path).expect("create envoy.log");
        let mut cmd = match options.wrapper.split_first() {
            None => Command::new(crate::envoy_bin()),
            Some((program, args)) => {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(crate::envoy_bin());
                cmd
            }
        };
        cmd.arg("-c")
            .arg(&config_path)
            .arg("--admin-address-path")
            .arg(&admin_path)
            .arg("--use-dynamic-base-id")
            // Access logs reach the log file within 200 ms (Envoy's default is 10 s).
            .arg("--file-flush-interval-msec")
            .arg("200")
            .arg("--concurrency")
            .arg(options.concurrency.to_string())
            .arg("-l")
            .arg(&options.log_level)
            .args(&options.args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = spawn_tied_to_process(cmd).unwrap_or_else(|e| {
            let program = options.wrapper.first().map(PathBuf::from);
            let program = program.unwrap_or_else(crate::envoy_bin);
            panic!("cannot run {}: {e}", program.display());
        });
        let mut envoy = Envoy {
            child,
            port: 0,
            admin_port: 0,
            log_path,
            dir,
            stopped: false,
            torn_down: false,
        };
        let deadline = Instant::now() + options.ready_timeout;
        loop {
            if let Ok(Some(status)) = envoy.child.try_wait() {
                // The start error says it all: no teardown check on top.
                envoy.torn_down = true;
                return Err(StartError {
                    status: Some(status),
                    reason: format!("Envoy exited during start-up with {status}"),
                    log: envoy.log(),
                });
            }
            if Instant::now() > deadline {
                envoy.torn_down = true;
                let _ = envoy.child.kill();
                let status = envoy.child.wait().ok();
                return Err(StartError {
                    status,
                    reason: format!("Envoy was not ready after {:?}", options.ready_timeout),
                    log: envoy.log(),
                });
            }
            if envoy.admin_port == 0 {
                envoy.admin_port = read_admin_port(&admin_path).unwrap_or(0);
            }
            if envoy.admin_port != 0 {
                let ready = http::try_request(envoy.admin_port, "GET", "/ready", &[], "")
                    .is_ok_and(|r| r.status == 200);
                if ready {
                    if let Some(port) = listener_port(envoy.admin_port) {
                        envoy.port = port;
                        return Ok(envoy);
                    }
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The HTTP listener's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Every listener's bound port, by listener name (admin `/listeners?format=json`).
    pub fn listener_ports(&self) -> std::collections::BTreeMap<String, u16> {
        let v = self.admin_get("/listeners?format=json").json();
        let statuses = v["listener_statuses"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        statuses
            .iter()
            .filter_map(|s| {
                let port = s
                    .pointer("/local_address/socket_address/port_value")?
                    .as_u64()?;
                Some((s["name"].as_str()?.to_owned(), u16::try_from(port).ok()?))
            })
            .collect()
    }

    /// The admin API's port.
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    /// Envoy's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything Envoy wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Where the log is written (inside a temporary directory removed on drop).
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// The temporary directory holding the config and log.
    pub fn dir(&self) -> &Path {
        &self.dir.0
    }

    /// `GET` on the admin API.
    pub fn admin_get(&self, path: &str) -> http::Response {
        http::get(self.admin_port, path, &[])
    }

    /// The admin `/stats` text.
    pub fn stats(&self) -> String {
        self.admin_get("/stats").body
    }

    /// One counter or gauge from `/stats`, by its full name.
    pub fn stat(&self, name: &str) -> Option<u64> {
        self.stats().lines().find_map(|l| {
            let (n, v) = l.split_once(": ")?;
            (n == name).then(|| v.trim().parse().ok()).flatten()
        })
    }

    /// Asserts that each stat of `want` (full names) has its value once mesh-authn's counts
    /// are flushed: it waits out one flush period ([`COUNTER_FLUSH`]), then reads `/stats`
    /// until every value matches or [`COUNTER_FLUSH_DEADLINE`] passes (a loaded machine can
    /// delay a tick). On a mismatch the message lists every mismatch and the `/stats` lines
    /// containing any of `shown`.
    pub fn assert_stats(&self, want: &[(String, u64)], shown: &[&str]) {
        std::thread::sleep(COUNTER_FLUSH);
        let start = Instant::now();
        let wrong = loop {
            let wrong: Vec<String> = want
                .iter()
                .filter_map(|(name, value)| {
                    let got = self.stat(name);
                    (got != Some(*value)).then(|| format!("{name}: want {value}, got {got:?}"))
                })
                .collect();
            if wrong.is_empty() || start.elapsed() > COUNTER_FLUSH_DEADLINE {
                break wrong;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(
            wrong.is_empty(),
            "{}\n/stats:\n{}",
            wrong.join("\n"),
            self.stats()
                .lines()
                .filter(|l| shown.iter().any(|s| l.contains(s)))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Kills Envoy and waits for it (also done on drop).
    pub fn stop(&mut self) {
        self.stopped = true;
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }

    /// What shows that a Wasm VM failed, so far: a panic or a VM failure in the log, a
    /// `wasm.*` stat counting failures, crashes or VM reloads that is not 0, Envoy gone without
    /// [`Envoy::stop`]. Empty when there is none. A dead VM answers only on its own worker, so
    /// a test's own requests can miss it; every test gets this check when its Envoy is dropped.
    ///
    /// A configuration the filter refused (Envoy's "Wasm VM failed Failed to configure base
    /// Wasm plugin", as when a hot update is rejected) is no VM failure: the tests that send
    /// one check the refusal themselves.
    pub fn vm_failures(&mut self) -> Vec<String> {
        let mut failures = Vec::new();
        for line in self.log().lines() {
            let lower = line.to_ascii_lowercase();
            let vm_failed = lower.contains("wasm vm failed")
                && !lower.contains("wasm vm failed failed to configure base wasm plugin");
            if line.contains("panicked") || vm_failed {
                failures.push(format!("log: {line}"));
            }
        }
        if self.is_running() {
            let stats = self.stats();
            for line in stats.lines().filter(|l| l.starts_with("wasm.")) {
                let Some((name, value)) = line.split_once(": ") else {
                    continue;
                };
                let counts_failures =
                    name.contains("fail") || name.contains("crash") || name.contains("vm_reload");
                if counts_failures && value.trim() != "0" {
                    failures.push(format!("stat {line}"));
                }
            }
        } else if !self.stopped {
            let status = self.child.try_wait().ok().flatten();
            failures.push(format!("Envoy exited during the test ({status:?})"));
        }
        failures
    }

    /// The teardown every test that starts an Envoy gets (on drop; a wrapper that must clean
    /// up after Envoy calls it first): no VM failed, unless the test is already failing; then
    /// Envoy is stopped and, when the test failed, the end of its log shown. Runs once.
    pub fn teardown(&mut self) {
        if self.torn_down {
            return;
        }
        self.torn_down = true;
        let failures = if std::thread::panicking() {
            Vec::new()
        } else {
            self.vm_failures()
        };
        self.stop();
        if std::thread::panicking() || !failures.is_empty() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(80).collect();
            eprintln!(
                "---- last lines of Envoy's log ({}) ----",
                self.log_path.display()
            );
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
            eprintln!("---- end of Envoy's log ----");
        }
        assert!(
            failures.is_empty(),
            "a VM failed during the test:\n{}",
            failures.join("\n")
        );
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        self.teardown();
    }
}

/// One bootstrap with the listeners of several, for one Envoy instead of one each: each
/// `(name, bootstrap)` must have one listener, which is renamed `name`; everything else (admin,
/// clusters) must be the same in all of them. Each listener's Wasm filters get their own VM
/// (`vm_id` suffixed with `-name`), so no VM state is shared between them, as with one Envoy
/// each; V8 compiles a `.wasm` once per process, so N listeners start in about the time one
/// Envoy does instead of N times it. The bootstrap is JSON (which Envoy reads as YAML).
pub fn listeners_bootstrap(bootstraps: &[(&str, String)]) -> String {
    let mut merged: Option<serde_json::Value> = None;
    let mut listeners = Vec::new();
    for (name, text) in bootstraps {
        let mut config: serde_json::Value = serde_yaml_ng::from_str(text)
            .unwrap_or_else(|e| panic!("listener {name}: the bootstrap is not YAML: {e}"));
        let mut listener = match config["static_resources"]["listeners"].take() {
            serde_json::Value::Array(mut one) if one.len() == 1 => one.remove(0),
            other => panic!("listener {name}: the bootstrap has not one listener: {other}"),
        };
        listener["name"] = serde_json::json!(name);
        suffix_vm_ids(&mut listener, name);
        listeners.push(listener);
        match &merged {
            None => merged = Some(config),
            Some(first) => assert!(
                *first == config,
                "listener {name}: the bootstrap differs from the first one outside its listener"
            ),
        }
    }
    let mut merged = merged.expect("at least one bootstrap");
    merged["static_resources"]["listeners"] = serde_json::Value::Array(listeners);
    merged.to_string()
}

/// Appends `-suffix` to every `vm_id` in `value`.
fn suffix_vm_ids(value: &mut serde_json::Value, suffix: &str) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                match v {
                    serde_json::Value::String(id) if key == "vm_id" => {
                        id.push('-');
                        id.push_str(suffix);
                    }
                    _ => suffix_vm_ids(v, suffix),
                }
            }
        }
        serde_json::Value::Array(items) => {
            for v in items {
                suffix_vm_ids(v, suffix);
            }
        }
        _ => {}
    }
}

fn read_admin_port(path: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(path).ok()?;
    let addr: std::net::SocketAddr = text.trim().parse().ok()?;
    (addr.port() != 0).then_some(addr.port())
}

/// The first listener's bound port from admin `/listeners?format=json`.
fn listener_port(admin_port: u16) -> Option<u16> {
    let r = http::try_request(admin_port, "GET", "/listeners?format=json", &[], "").ok()?;
    let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
    let statuses = v.get("listener_statuses")?.as_array()?;
    statuses.iter().find_map(|s| {
        let port = s
            .pointer("/local_address/socket_address/port_value")?
            .as_u64()?;
        u16::try_from(port).ok().filter(|p| *p != 0)
    })
}

/// Runs `envoy --mode validate -c <config_path>`: whether it passed, and its output.
pub fn validate(config_path: &Path) -> (bool, String) {
    let out = Command::new(crate::envoy_bin())
        .arg("--mode")
        .arg("validate")
        .arg("-c")
        .arg(config_path)
        .arg("--use-dynamic-base-id")
        .arg("-l")
        .arg("info")
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", crate::envoy_bin().display()));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Renders the bootstrap for `plugin_config_yaml` and validates it with
/// `envoy --mode validate`.
pub fn validate_plugin_config(plugin_config_yaml: &str, upstream_port: u16) -> (bool, String) {
    validate_template(
        &Options::default().template,
        plugin_config_yaml,
        upstream_port,
    )
}

/// Renders the template `envoy/<template>` with the standard placeholders and validates it
/// with `envoy --mode validate` (which also loads the `.wasm` and runs its configuration).
pub fn validate_template(
    template: &str,
    plugin_config_yaml: &str,
    upstream_port: u16,
) -> (bool, String) {
    validate_template_with(template, plugin_config_yaml, upstream_port, &[])
}

/// [`validate_template`] with values for a template's extra placeholders.
pub fn validate_template_with(
    template: &str,
    plugin_config_yaml: &str,
    upstream_port: u16,
    extra_values: &[(String, String)],
) -> (bool, String) {
    let options = Options {
        template: template.to_owned(),
        extra_values: extra_values.to_vec(),
        ..Options::default()
    };
    let dir = TempDir::new("mesh-authn-validate");
    let path = dir.0.join("envoy.yaml");
    let config = render_config_with(plugin_config_yaml, upstream_port, &options);
    std::fs::write(&path, config).expect("write config");
    validate(&path)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plugin configuration whose workload namespace the filter logs at start-up.
    fn config_logging(namespace: &str) -> String {
        format!("workload: {{namespace: {namespace}, labels: {{app: httpbin}}}}\npolicies: []\n")
    }

    #[test]
    fn listeners_bootstrap_names_each_listener_and_gives_it_its_own_vm() {
        let merged = listeners_bootstrap(&[
            ("a", render_config(&config_logging("foo"), 9)),
            ("b", render_config(&config_logging("bar"), 9)),
        ]);
        let merged: serde_json::Value = serde_json::from_str(&merged).unwrap();
        let listeners = merged["static_resources"]["listeners"].as_array().unwrap();
        let names: Vec<&str> = listeners
            .iter()
            .map(|l| l["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["a", "b"]);
        for (listener, (name, namespace)) in listeners.iter().zip([("a", "foo"), ("b", "bar")]) {
            let text = listener.to_string();
            assert!(
                text.contains(&format!("\"vm_id\":\"mesh-authn-{name}\"")),
                "{text}"
            );
            assert!(text.contains(&format!("namespace: {namespace}")), "{text}");
        }
    }

    #[test]
    #[should_panic(expected = "differs from the first one outside its listener")]
    fn listeners_bootstrap_refuses_bootstraps_that_differ_outside_their_listener() {
        listeners_bootstrap(&[
            ("a", render_config(&config_logging("foo"), 9)),
            ("b", render_config(&config_logging("foo"), 10)),
        ]);
    }

    #[test]
    fn control_a_healthy_envoy_passes_its_teardown() {
        let envoy = Envoy::start(&config_logging("foo"), 9).unwrap();
        drop(envoy);
    }

    // The filter logs "configured: workload panicked/…": to the teardown, that is a panic.
    #[test]
    #[should_panic(expected = "a VM failed during the test:\nlog: ")]
    fn the_teardown_fails_a_test_whose_log_shows_a_panic() {
        let envoy = Envoy::start(&config_logging("panicked"), 9).unwrap();
        assert!(envoy.log().contains("configured: workload panicked"));
        drop(envoy);
    }

    #[test]
    #[should_panic(expected = "a VM failed during the test:\nEnvoy exited during the test")]
    fn the_teardown_fails_a_test_whose_envoy_died() {
        let mut envoy = Envoy::start(&config_logging("foo"), 9).unwrap();
        let pid = libc::pid_t::try_from(envoy.pid()).unwrap();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGKILL) }, 0);
        let deadline = Instant::now() + READY_TIMEOUT;
        while envoy.is_running() {
            assert!(Instant::now() < deadline, "Envoy outlived SIGKILL");
            std::thread::sleep(Duration::from_millis(20));
        }
        drop(envoy);
    }
}
