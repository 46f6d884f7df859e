//! The watch loop and its statistics on scripted samples: no GPU, no real command, no sleeping.

use super::*;
use crate::gpu::mock::{FixedTree, ScriptedSampler};
use crate::gpu::GpuProcess;

const GIB: u64 = 1 << 30;

/// A command that exits with `exit` on its `polls`-th poll.
struct FakeCommand {
    polls_left: usize,
    exit: ExitInfo,
}

impl Target for FakeCommand {
    fn pid(&self) -> u32 {
        100
    }

    fn poll(&mut self) -> std::io::Result<Option<ExitInfo>> {
        self.polls_left = self.polls_left.saturating_sub(1);
        Ok((self.polls_left == 0).then(|| self.exit.clone()))
    }
}

/// Time advances only by sleeping.
#[derive(Default)]
struct FakeClock {
    now_ms: f64,
    sleeps: Vec<u64>,
}

impl Clock for FakeClock {
    fn elapsed_ms(&self) -> f64 {
        self.now_ms
    }

    fn sleep_ms(&mut self, ms: u64) {
        self.sleeps.push(ms);
        self.now_ms += ms as f64;
    }
}

/// One GPU with `used` bytes in use, and `procs` (pid, bytes) on it.
pub(crate) fn gpu(index: u32, used: u64, procs: &[(u32, u64)]) -> DeviceMemory {
    DeviceMemory {
        index,
        used_bytes: used,
        total_bytes: 80 * GIB,
        processes: procs.iter().map(|&(pid, b)| GpuProcess { pid, used_bytes: Some(b) }).collect(),
    }
}

fn run(script: Vec<Option<Vec<DeviceMemory>>>, polls: usize, exit: ExitInfo) -> (Recording, FakeClock) {
    let mut sampler = ScriptedSampler::new(script);
    let mut tree = FixedTree(vec![101]);
    let mut cmd = FakeCommand { polls_left: polls, exit };
    let mut clock = FakeClock::default();
    let rec = record(&mut sampler, &mut tree, &mut cmd, &mut clock, 50).unwrap();
    (rec, clock)
}

#[test]
fn samples_every_interval_until_the_command_exits() {
    let script = vec![
        Some(vec![gpu(0, GIB, &[])]),
        Some(vec![gpu(0, 3 * GIB, &[(100, GIB), (999, GIB)])]),
        Some(vec![gpu(0, 5 * GIB, &[(100, GIB), (101, 2 * GIB), (999, GIB)])]),
        Some(vec![gpu(0, 2 * GIB, &[(999, GIB)])]),
    ];
    let (rec, clock) = run(script, 4, ExitInfo { code: Some(0), signal: None });
    assert_eq!(rec.samples.len(), 4);
    assert_eq!(clock.sleeps, vec![50, 50, 50]);
    assert_eq!(rec.duration_ms, 150.0);
    let t: Vec<f64> = rec.samples.iter().map(|s| s.t_ms).collect();
    assert_eq!(t, vec![0.0, 50.0, 100.0, 150.0]);
    // pid 999 is not in the tree; 100 (the root) and 101 (its child) are.
    let tree: Vec<u64> = rec.samples.iter().map(Sample::tree_total).collect();
    assert_eq!(tree, vec![0, GIB, 3 * GIB, 0]);
    assert!(rec.exit.success());
}

#[test]
fn a_failed_read_is_counted_and_skipped_not_zero_filled() {
    let script = vec![Some(vec![gpu(0, GIB, &[])]), None, Some(vec![gpu(0, 2 * GIB, &[])])];
    let (rec, _) = run(script, 3, ExitInfo { code: Some(3), signal: None });
    assert_eq!(rec.samples.len(), 2);
    assert_eq!(rec.missed_samples, 1);
    assert_eq!(rec.exit.describe(), "code 3");
    assert!(!rec.exit.success());
}

#[test]
fn a_command_that_exits_at_once_still_gets_one_sample() {
    let (rec, clock) = run(vec![Some(vec![gpu(0, GIB, &[])])], 1, ExitInfo { code: None, signal: Some(9) });
    assert_eq!(rec.samples.len(), 1);
    assert!(clock.sleeps.is_empty());
    assert_eq!(rec.exit.describe(), "signal 9");
}

#[test]
fn peaks_are_per_gpu_and_over_the_tree_with_their_times() {
    let script = vec![
        Some(vec![gpu(0, GIB, &[]), gpu(1, GIB, &[])]),
        Some(vec![gpu(0, 6 * GIB, &[(100, 4 * GIB)]), gpu(1, 2 * GIB, &[(101, GIB)])]),
        Some(vec![gpu(0, 4 * GIB, &[(100, 2 * GIB)]), gpu(1, 4 * GIB, &[(101, 3 * GIB)])]),
        Some(vec![gpu(0, GIB, &[]), gpu(1, GIB, &[])]),
    ];
    let baseline = vec![gpu(0, GIB / 2, &[]), gpu(1, GIB, &[])];
    let (rec, _) = run(script, 4, ExitInfo::default());
    let p = peaks(&rec.samples, &baseline);
    assert!(p.process_tree_seen);
    // Tree totals: 0, 5, 5, 0 GiB: the first maximum wins.
    assert_eq!(p.process_tree, Peak { bytes: 5 * GIB, t_ms: 50.0 });
    assert_eq!(p.devices[0].device_used, Peak { bytes: 6 * GIB, t_ms: 50.0 });
    assert_eq!(p.devices[0].process_tree, Peak { bytes: 4 * GIB, t_ms: 50.0 });
    assert_eq!(p.devices[1].device_used, Peak { bytes: 4 * GIB, t_ms: 100.0 });
    assert_eq!(p.devices[1].process_tree, Peak { bytes: 3 * GIB, t_ms: 100.0 });
    assert_eq!(p.devices[0].baseline_used_bytes, GIB / 2);

    // The plan is per GPU: it is compared with the busiest GPU's tree peak (4 GiB).
    let c = compare(5 * GIB, &p);
    assert_eq!(c.measured, "process tree");
    assert_eq!(c.measured_bytes, 4 * GIB);
    assert!((c.relative_error.unwrap() - 0.25).abs() < 1e-12);
}

#[test]
fn without_attributed_processes_the_comparison_uses_device_growth() {
    let script = vec![Some(vec![gpu(0, 2 * GIB, &[(4242, GIB)])]), Some(vec![gpu(0, 9 * GIB, &[(4242, 8 * GIB)])])];
    let (rec, _) = run(script, 2, ExitInfo::default());
    let p = peaks(&rec.samples, &[gpu(0, GIB, &[])]);
    assert!(!p.process_tree_seen);
    let c = compare(6 * GIB, &p);
    assert_eq!(c.measured, "device used − baseline");
    assert_eq!(c.measured_bytes, 8 * GIB);
    assert!((c.relative_error.unwrap() + 0.25).abs() < 1e-12);
}

#[test]
fn nothing_measured_has_no_relative_error() {
    let p = peaks(&[], &[gpu(0, GIB, &[])]);
    assert_eq!(compare(GIB, &p).relative_error, None);
}
