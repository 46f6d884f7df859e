//! `headroom bench`: runs the kernel suite on local GPU 0 and prints achieved GB/s and TFLOPS
//! against the catalog peaks; `--json FILE` writes the full profile.

use crate::bench::{report, suite};
use crate::cli::BenchArgs;
use crate::gpu::{self, cuda::CudaGpu, Gpu};
use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

pub fn run(args: &BenchArgs) -> anyhow::Result<String> {
    gpu::cuda::driver_present()?;
    let nvml_info = gpu::nvml::devices().ok().and_then(|d| d.into_iter().next());
    let mut dev = CudaGpu::open(0, nvml_info)?;
    let workloads = suite::workloads(args.quick);
    let bar = progress_bar(workloads.len() as u64);
    let results = suite::run(&mut dev, &workloads, suite::Plan::new(args.quick), |r| {
        bar.set_message(r.name.clone());
        bar.inc(1);
        if let Some(e) = &r.error {
            bar.suspend(|| eprintln!("warning: {}: {e}", r.name));
        }
    });
    bar.finish_and_clear();
    let profile = report::profile(dev.device(), gpu::host::host(), args.quick, results);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&profile)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(super::render_listing(&report::listing(&profile), args.format))
}

/// A bar on stderr, hidden when stderr is not a terminal.
fn progress_bar(len: u64) -> ProgressBar {
    let bar = ProgressBar::new(len);
    if !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} {msg}") {
        bar.set_style(style);
    }
    bar
}
