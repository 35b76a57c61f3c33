//! `mesh-authn`: the filter's own core, offline. `check` validates plugin configurations,
//! `WasmPlugin` manifests and `kubectl get -o yaml` output and says what applies to a workload;
//! `explain` runs the filter's decision on one request and says why; `schema` prints the JSON
//! Schema of the plugin configuration; `--version` is the version the filter logs.
//!
//! Exit status: 0 when every input is valid (`check`) or the request was decided (`explain`,
//! whatever the verdict), 1 when a configuration is refused, 2 for a usage or input error.

mod check;
mod explain;
mod input;
mod render;
mod schema;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

/// `mesh-authn --version`: what the filter logs at VM start (`mesh-authn <version> (git <hash>)`).
const VERSION: &str = mesh_authn::VERSION;

#[derive(Parser)]
#[command(
    name = "mesh-authn",
    version = VERSION,
    about = "Check mesh-authn plugin configurations and explain its decisions, offline, with \
             the filter's own code"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Output {
    /// Readable by a person.
    Human,
    /// One JSON document.
    Json,
}

/// Which workload to evaluate for (Envoy's node metadata `NAMESPACE` and `LABELS`).
#[derive(clap::Args, Clone, Default)]
struct WorkloadArgs {
    /// The workload as `NAMESPACE/key=value,key=value` (labels optional).
    #[arg(long, conflicts_with_all = ["namespace", "labels"])]
    workload: Option<String>,
    /// The workload's namespace.
    #[arg(long)]
    namespace: Option<String>,
    /// The workload's labels, `key=value,key=value`.
    #[arg(long, requires = "namespace")]
    labels: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Validate plugin configurations, WasmPlugin manifests or `kubectl get -o yaml` output;
    /// with a workload, print what applies to it.
    Check {
        /// Files (YAML or JSON); `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        #[command(flatten)]
        workload: WorkloadArgs,
        /// Output format.
        #[arg(long, value_enum, default_value = "human")]
        output: Output,
    },
    /// Run the filter's decision on one request and say why.
    Explain(Box<explain::Args>),
    /// Print the JSON Schema of the plugin configuration.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check {
            files,
            workload,
            output,
        } => check::run(&files, &workload, output),
        Command::Explain(args) => explain::run(&args),
        Command::Schema => schema::text().map(|text| {
            print!("{text}");
            ExitCode::SUCCESS
        }),
    };
    match result {
        Ok(code) => code,
        Err(why) => {
            eprintln!("mesh-authn: {why}");
            ExitCode::from(2)
        }
    }
}
