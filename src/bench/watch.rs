//! `headroom watch`: samples GPU memory while a command runs, until it exits, and derives the
//! peaks. Each tick reads every GPU ([`MemorySampler`]), and when NVML lists processes, the
//! watched command's process tree ([`ProcessTree`]), summing the bytes its members hold per GPU.
//! The command and the clock are seams too ([`Target`], [`Clock`]), so the loop and the
//! statistics run in tests on scripted samples.

use crate::gpu::memory::{DeviceMemory, MemorySampler, ProcessTree};
use serde::Serialize;
use std::time::{Duration, Instant};

/// How the watched command ended.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ExitInfo {
    /// Its exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// The signal that ended it (Unix), if one did.
    pub signal: Option<i32>,
}

impl ExitInfo {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `code 0`, `code 2`, `signal 9`.
    pub fn describe(&self) -> String {
        match (self.code, self.signal) {
            (Some(c), _) => format!("code {c}"),
            (None, Some(s)) => format!("signal {s}"),
            (None, None) => "an unknown status".into(),
        }
    }
}

/// The watched command.
pub trait Target {
    fn pid(&self) -> u32;
    /// `None` while it runs; how it ended once it has.
    fn poll(&mut self) -> std::io::Result<Option<ExitInfo>>;
}

impl Target for std::process::Child {
    fn pid(&self) -> u32 {
        self.id()
    }

    fn poll(&mut self) -> std::io::Result<Option<ExitInfo>> {
        Ok(self.try_wait()?.map(|s| ExitInfo { code: s.code(), signal: signal_of(&s) }))
    }
}

#[cfg(unix)]
fn signal_of(s: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(s)
}

#[cfg(not(unix))]
fn signal_of(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Time since the watch began, and waiting.
pub trait Clock {
    fn elapsed_ms(&self) -> f64;
    fn sleep_ms(&mut self, ms: u64);
}

/// The wall clock.
pub struct WallClock(Instant);

impl WallClock {
    pub fn start() -> Self {
        WallClock(Instant::now())
    }
}

impl Clock for WallClock {
    fn elapsed_ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1e3
    }

    fn sleep_ms(&mut self, ms: u64) {
        std::thread::sleep(Duration::from_millis(ms));
    }
}

/// One tick of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Sample {
    /// Milliseconds since the command started.
    pub t_ms: f64,
    /// Bytes in use on each GPU (all processes), in GPU index order.
    pub device_used_bytes: Vec<u64>,
    /// Bytes the command's process tree holds on each GPU, in GPU index order.
    pub process_tree_bytes: Vec<u64>,
}

impl Sample {
    fn of(t_ms: f64, devices: &[DeviceMemory], tree: Option<&std::collections::HashSet<u32>>) -> Sample {
        let held = |d: &DeviceMemory| -> u64 {
            let Some(tree) = tree else { return 0 };
            d.processes.iter().filter(|p| tree.contains(&p.pid)).filter_map(|p| p.used_bytes).sum()
        };
        Sample {
            t_ms,
            device_used_bytes: devices.iter().map(|d| d.used_bytes).collect(),
            process_tree_bytes: devices.iter().map(held).collect(),
        }
    }

    /// Process-tree bytes over all GPUs.
    pub fn tree_total(&self) -> u64 {
        self.process_tree_bytes.iter().sum()
    }
}

/// What the loop recorded.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub samples: Vec<Sample>,
    /// Ticks where NVML could not be read (skipped, not zero-filled).
    pub missed_samples: usize,
    /// Milliseconds from start to the tick that saw the command gone.
    pub duration_ms: f64,
    pub exit: ExitInfo,
}

/// Samples every `interval_ms` until `target` exits; one sample at least, taken at start.
pub fn record(
    sampler: &mut dyn MemorySampler,
    tree: &mut dyn ProcessTree,
    target: &mut dyn Target,
    clock: &mut dyn Clock,
    interval_ms: u64,
) -> std::io::Result<Recording> {
    let root = target.pid();
    let mut samples = Vec::new();
    let mut missed_samples = 0;
    loop {
        let t_ms = clock.elapsed_ms();
        match sampler.sample() {
            Ok(devices) => {
                // The process table is only read when some process holds GPU memory.
                let members = devices.iter().any(|d| !d.processes.is_empty()).then(|| tree.members(root));
                samples.push(Sample::of(t_ms, &devices, members.as_ref()));
            }
            Err(_) => missed_samples += 1,
        }
        if let Some(exit) = target.poll()? {
            let duration_ms = clock.elapsed_ms();
            return Ok(Recording { samples, missed_samples, duration_ms, exit });
        }
        clock.sleep_ms(interval_ms);
    }
}

/// A peak and when it happened.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Peak {
    pub bytes: u64,
    /// Milliseconds since start of the first sample at the peak.
    pub t_ms: f64,
}

/// One GPU's peaks.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DevicePeaks {
    pub index: u32,
    /// Device used memory before the command started, bytes.
    pub baseline_used_bytes: u64,
    pub device_used: Peak,
    pub process_tree: Peak,
}

/// Peaks over the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Peaks {
    /// The process tree's bytes summed over GPUs.
    pub process_tree: Peak,
    pub devices: Vec<DevicePeaks>,
    /// Whether NVML ever attributed memory to the command's processes (in a container without
    /// the host's pid namespace it cannot: NVML reports host pids).
    pub process_tree_seen: bool,
}

/// The first maximum of `value` over the samples.
fn peak(samples: &[Sample], value: impl Fn(&Sample) -> Option<u64>) -> Peak {
    let mut best = Peak::default();
    for s in samples {
        if let Some(v) = value(s).filter(|&v| v > best.bytes) {
            best = Peak { bytes: v, t_ms: s.t_ms };
        }
    }
    best
}

/// The peaks of a recording; `baseline` is the sample taken before the command started.
pub fn peaks(samples: &[Sample], baseline: &[DeviceMemory]) -> Peaks {
    let devices = baseline
        .iter()
        .enumerate()
        .map(|(i, d)| DevicePeaks {
            index: d.index,
            baseline_used_bytes: d.used_bytes,
            device_used: peak(samples, |s| s.device_used_bytes.get(i).copied()),
            process_tree: peak(samples, |s| s.process_tree_bytes.get(i).copied()),
        })
        .collect();
    let process_tree = peak(samples, |s| Some(s.tree_total()));
    Peaks { process_tree_seen: process_tree.bytes > 0, process_tree, devices }
}

/// A plan's prediction next to the measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    /// The plan's `total_bytes` (per GPU).
    pub predicted_bytes: u64,
    /// The measured peak on the busiest GPU.
    pub measured_bytes: u64,
    /// What was measured: `process tree` (includes the CUDA context), or `device used −
    /// baseline` when NVML never attributed memory to the command's processes.
    pub measured: String,
    /// (predicted − measured) / measured; `None` when nothing was measured.
    pub relative_error: Option<f64>,
}

/// Compares a plan's per-GPU total with the busiest GPU's measured peak.
pub fn compare(predicted_bytes: u64, peaks: &Peaks) -> Comparison {
    let (measured_bytes, measured) = if peaks.process_tree_seen {
        (peaks.devices.iter().map(|d| d.process_tree.bytes).max().unwrap_or(0), "process tree")
    } else {
        let delta = |d: &DevicePeaks| d.device_used.bytes.saturating_sub(d.baseline_used_bytes);
        (peaks.devices.iter().map(delta).max().unwrap_or(0), "device used − baseline")
    };
    let relative_error =
        (measured_bytes > 0).then(|| (predicted_bytes as f64 - measured_bytes as f64) / measured_bytes as f64);
    Comparison { predicted_bytes, measured_bytes, measured: measured.into(), relative_error }
}

#[cfg(test)]
#[path = "watch_tests.rs"]
pub(crate) mod tests;
