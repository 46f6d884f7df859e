//! The `headroom` binary: parse the command line, run the command, map errors to exit codes
//! (0 success, including "does not fit"; 1 bad input or unreadable file; 2 usage, from clap;
//! 3 no usable GPU for a GPU command: a `GpuError` whose `is_no_gpu()` holds). When the command
//! `watch` runs fails, its report is still printed and the exit code is 1.

use clap::Parser;
use headroom::cli::Cli;
use std::io::Write;
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match headroom::commands::run(&cli.command) {
        Ok(out) => {
            // A closed pipe (`| head`) is not an error worth reporting.
            let _ = std::io::stdout().write_all(out.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            if let Some(failed) = e.downcast_ref::<headroom::commands::watch::CommandFailed>() {
                let _ = std::io::stdout().write_all(failed.report.as_bytes());
            }
            eprintln!("error: {e:#}");
            let no_gpu = e.downcast_ref::<headroom::gpu::GpuError>().is_some_and(|g| g.is_no_gpu());
            ExitCode::from(if no_gpu { 3 } else { 1 })
        }
    }
}
