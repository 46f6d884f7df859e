//! `headroom bench`: runs the kernel suite on local GPU 0 and prints achieved GB/s and TFLOPS
//! against the catalog peaks, then the host RAM's read bandwidth; `--json FILE` writes the full
//! profile.

use crate::bench::{host_memory, report, suite};
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
    bar.set_message("host RAM read");
    let host = gpu::host::host();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let buffer = host_memory::buffer_bytes(host.memory_total_bytes, args.quick);
    let host_read = host_memory::measure_read(buffer, threads, if args.quick { 3 } else { 7 });
    bar.finish_and_clear();
    let mut profile = report::profile(dev.device(), host, args.quick, results);
    profile.host_memory = Some(host_read);
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
