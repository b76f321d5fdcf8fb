//! `local`: the local runner's binary. Everything lives in the library; this only parses the
//! command line, sets up logging and the runtime, and turns the outcome into an exit status.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use local::cli::{Cli, Completion};

// Every delivery allocates (bodies, typed events, reports): with glibc's malloc the allocator was
// ~40% of the runner's CPU time under load. The Lambda binaries keep the system allocator (size).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The domain code logs with `tracing`; shown on stderr only when asked for with RUST_LOG,
    // so the flow on stdout stays readable (and parseable with --json).
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            // A closed stderr must not turn a clean failure into a panic.
            let _ = writeln!(
                std::io::stderr(),
                "error: cannot start the async runtime: {e}"
            );
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(local::cli::run(cli)) {
        Ok(Completion::Done) => ExitCode::SUCCESS,
        Ok(Completion::DemoDiffers) => ExitCode::from(3),
        Ok(Completion::Interrupted) => ExitCode::from(130),
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error [{}]: {e}", e.error_type());
            ExitCode::FAILURE
        }
    }
}
