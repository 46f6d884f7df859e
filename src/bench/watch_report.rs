//! What `headroom watch` reports: the summary (exit status, duration, peaks, the plan's error)
//! with every sample for JSON, as a text summary with a terminal chart, and as an SVG chart.

use super::watch::{compare, peaks, Comparison, ExitInfo, Peaks, Recording, Sample};
use crate::gpu::memory::DeviceMemory;
use crate::report::chart::{self, Line};
use serde::Serialize;

const GIB: f64 = (1u64 << 30) as f64;
const CHART_WIDTH: usize = 60;
const CHART_HEIGHT: usize = 8;
const COLORS: [&str; 6] = ["#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2"];

/// The plan checked against the measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanCheck {
    /// The plan's one-line description (model, formats, context, batch, engine).
    pub plan: String,
    #[serde(flatten)]
    pub comparison: Comparison,
}

/// The whole watch, as `--format json` prints it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WatchReport {
    pub command: Vec<String>,
    pub exit: ExitInfo,
    pub interval_ms: u64,
    /// Milliseconds from start until the command was seen gone.
    pub duration_ms: f64,
    pub sample_count: usize,
    /// Ticks where NVML could not be read.
    pub missed_samples: usize,
    pub peaks: Peaks,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<PlanCheck>,
    pub samples: Vec<Sample>,
}

impl WatchReport {
    /// The report of a recording; `baseline` was sampled before the command started, and
    /// `plan` is (description, predicted total bytes per GPU).
    pub fn new(
        command: Vec<String>,
        interval_ms: u64,
        rec: Recording,
        baseline: &[DeviceMemory],
        plan: Option<(String, u64)>,
    ) -> Self {
        let peaks = peaks(&rec.samples, baseline);
        let plan = plan.map(|(plan, predicted)| PlanCheck { plan, comparison: compare(predicted, &peaks) });
        WatchReport {
            command,
            exit: rec.exit,
            interval_ms,
            duration_ms: rec.duration_ms,
            sample_count: rec.samples.len(),
            missed_samples: rec.missed_samples,
            peaks,
            plan,
            samples: rec.samples,
        }
    }

    /// The series the terminal chart shows: the process tree when NVML attributed memory to
    /// it, else every GPU's used memory summed.
    fn headline_series(&self) -> (&'static str, Vec<(f64, u64)>) {
        if self.peaks.process_tree_seen {
            ("process-tree GPU memory", self.samples.iter().map(|s| (s.t_ms, s.tree_total())).collect())
        } else {
            let used = |s: &Sample| s.device_used_bytes.iter().sum();
            ("device used memory, all GPUs", self.samples.iter().map(|s| (s.t_ms, used(s))).collect())
        }
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.2} GiB", bytes as f64 / GIB)
}

fn secs(ms: f64) -> String {
    format!("{:.2} s", ms / 1e3)
}

/// The text summary with its chart.
pub fn table(r: &WatchReport) -> String {
    let mut out = format!("watched: {} (exited with {})\n", r.command.join(" "), r.exit.describe());
    out.push_str(&format!(
        "duration {} · {} samples every {} ms ({} missed)\n",
        secs(r.duration_ms),
        r.sample_count,
        r.interval_ms,
        r.missed_samples
    ));
    let tree = &r.peaks.process_tree;
    if r.peaks.process_tree_seen {
        out.push_str(&format!("peak process-tree GPU memory: {} at {}\n", gib(tree.bytes), secs(tree.t_ms)));
    } else {
        out.push_str(
            "peak process-tree GPU memory: none seen (NVML attributed no memory to the command's processes; \
             in a container it reports host pids)\n",
        );
    }
    for d in &r.peaks.devices {
        out.push_str(&format!(
            "GPU {}: peak used {} at {} (before start {}; process tree peak {})\n",
            d.index,
            gib(d.device_used.bytes),
            secs(d.device_used.t_ms),
            gib(d.baseline_used_bytes),
            gib(d.process_tree.bytes)
        ));
    }
    let (title, series) = r.headline_series();
    out.push_str(&format!("\n{title}\n"));
    out.push_str(&chart::terminal(&series, r.duration_ms, CHART_WIDTH, CHART_HEIGHT));
    if let Some(p) = &r.plan {
        out.push_str(&plan_line(p));
    }
    out
}

/// `plan: … predicted X per GPU, measured Y (what), error Z%`.
fn plan_line(p: &PlanCheck) -> String {
    let c = &p.comparison;
    let error = c.relative_error.map_or("n/a (nothing measured)".to_string(), |e| format!("{:+.1}%", 100.0 * e));
    format!(
        "\nplan: {}\npredicted {} per GPU (total_bytes), measured peak {} ({}, busiest GPU): error {error}\n",
        p.plan,
        gib(c.predicted_bytes),
        gib(c.measured_bytes),
        c.measured
    )
}

/// The SVG chart: the process tree and every GPU's used memory.
pub fn svg(r: &WatchReport) -> String {
    let tree: Vec<(f64, u64)> = r.samples.iter().map(|s| (s.t_ms, s.tree_total())).collect();
    let devices: Vec<(String, Vec<(f64, u64)>)> = r
        .peaks
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let pts = r.samples.iter().filter_map(|s| s.device_used_bytes.get(i).map(|&b| (s.t_ms, b))).collect();
            (format!("GPU {} used", d.index), pts)
        })
        .collect();
    let mut lines = vec![Line { label: "process tree (all GPUs)", color: "#1f77b4", points: &tree }];
    for (i, (label, pts)) in devices.iter().enumerate() {
        lines.push(Line { label, color: COLORS[i % COLORS.len()], points: pts });
    }
    let title = format!("headroom watch: {} ({})", r.command.join(" "), r.exit.describe());
    chart::svg(&title, &lines, r.duration_ms)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::watch::tests::gpu;

    const G: u64 = 1 << 30;

    fn report(with_tree: bool) -> WatchReport {
        let tree = if with_tree { 3 * G } else { 0 };
        let sample = |t_ms: f64, used: u64, tree: u64| Sample {
            t_ms,
            device_used_bytes: vec![used],
            process_tree_bytes: vec![tree],
        };
        let samples = vec![sample(0.0, G, 0), sample(100.0, 4 * G, tree), sample(200.0, 2 * G, 0)];
        let rec = Recording {
            samples,
            missed_samples: 0,
            duration_ms: 200.0,
            exit: ExitInfo { code: Some(0), signal: None },
        };
        let cmd = vec!["python".to_string(), "serve.py".to_string()];
        WatchReport::new(cmd, 100, rec, &[gpu(0, G, &[])], Some(("llama-2-7b · bf16".into(), 3 * G + G / 2)))
    }

    #[test]
    fn table_names_the_peaks_their_times_and_the_plan_error() {
        let t = table(&report(true));
        assert!(t.contains("watched: python serve.py (exited with code 0)"), "{t}");
        assert!(t.contains("duration 0.20 s · 3 samples every 100 ms (0 missed)"), "{t}");
        assert!(t.contains("peak process-tree GPU memory: 3.00 GiB at 0.10 s"), "{t}");
        assert!(t.contains("GPU 0: peak used 4.00 GiB at 0.10 s (before start 1.00 GiB"), "{t}");
        assert!(t.contains("3.0 GiB ┤"), "{t}");
        assert!(t.contains("predicted 3.50 GiB per GPU (total_bytes), measured peak 3.00 GiB (process tree"), "{t}");
        assert!(t.contains("error +16.7%"), "{t}");
    }

    #[test]
    fn without_attributed_memory_the_table_says_so_and_charts_the_device() {
        let t = table(&report(false));
        assert!(t.contains("none seen"), "{t}");
        assert!(t.contains("device used memory, all GPUs\n   4.0 GiB ┤"), "{t}");
        assert!(t.contains("(device used − baseline, busiest GPU): error +16.7%"), "{t}");
    }

    #[test]
    fn json_has_the_summary_and_every_sample() {
        let v = serde_json::to_value(report(true)).unwrap();
        assert_eq!(v["sample_count"], 3);
        assert_eq!(v["samples"].as_array().unwrap().len(), 3);
        assert_eq!(v["samples"][1]["process_tree_bytes"][0], 3 * G);
        assert_eq!(v["peaks"]["process_tree"]["bytes"], 3 * G);
        assert_eq!(v["peaks"]["devices"][0]["device_used"]["t_ms"], 100.0);
        assert_eq!(v["plan"]["measured_bytes"], 3 * G);
        assert_eq!(v["exit"]["code"], 0);
    }

    #[test]
    fn svg_draws_the_tree_and_each_gpu() {
        let s = svg(&report(true));
        assert_eq!(s.matches("<polyline").count(), 2);
        assert!(s.contains("GPU 0 used") && s.contains("python serve.py"));
    }
}
