//! The `mesh-authn` command-line tool (filter/src/bin/mesh-authn, feature `cli`), built for the
//! tests that run it: built here with cargo, so a test never runs a stale binary.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The arguments of the `cargo build` that makes the binary. Cargo resolves features for the
/// packages a command selects (and with dev-dependencies only when a test, bench or example
/// target is selected), and a different feature set is a different build of every dependency
/// it touches. `-p mesh-authn --features cli` resolves them differently from `make test`'s
/// `cargo test --workspace --all-targets` (syn, rsa's num-* and hashbrown get other features),
/// so on a clean clone this build compiled the CLI's ~140 dependency units a second time
/// inside the first test that ran it (~100 s of host-tests/tests/cli.rs). `--workspace` plus
/// one bench target (for the dev-dependencies; built by `--all-targets` too) resolves them as
/// that command does: after it, this build has nothing to do.
pub const BUILD_ARGS: [&str; 7] = [
    "build",
    "--quiet",
    "--workspace",
    "--bin",
    "mesh-authn",
    // Only for the feature resolution described above.
    "--bench",
    "verify",
];

/// The built `mesh-authn` binary (debug profile), built once per test process
/// ([`BUILD_ARGS`]).
pub fn binary() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let status = Command::new(cargo)
                .current_dir(crate::workspace_root())
                .args(BUILD_ARGS)
                .status()
                .expect("cannot run cargo to build the mesh-authn CLI");
            assert!(status.success(), "`cargo {}` failed", BUILD_ARGS.join(" "));
            crate::workspace_root().join("target/debug/mesh-authn")
        })
        .clone()
}

/// Runs `mesh-authn ARGS` in the workspace root.
pub fn run(args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(crate::workspace_root())
        .args(args)
        .output()
        .expect("cannot run mesh-authn")
}
