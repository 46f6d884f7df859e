//! `headroom watch [options] -- CMD ARGS...`: runs CMD with this terminal's stdio and samples GPU
//! memory until it exits (bench/watch.rs), then prints the peaks and a chart
//! (bench/watch_report.rs). NVML is opened before CMD starts: without it, exit 3 and CMD never
//! runs. When CMD fails, the report is still printed and headroom exits 1 ([`CommandFailed`]).

use crate::bench::watch::{record, WallClock};
use crate::bench::watch_report::{self, WatchReport};
use crate::cli::{PlanLine, WatchArgs, WatchFormat};
use crate::gpu::memory::{MemorySampler, NvmlSampler, ProcessTree, SysinfoTree};
use anyhow::{anyhow, Context};
use clap::Parser;

/// The watched command failed; `report` is what to print on stdout before the error.
#[derive(Debug, thiserror::Error)]
#[error("the watched command `{program}` exited with {status}")]
pub struct CommandFailed {
    pub program: String,
    pub status: String,
    pub report: String,
}

pub fn run(args: &WatchArgs) -> anyhow::Result<String> {
    let plan = args.plan.as_deref().map(predict).transpose()?;
    let mut sampler = NvmlSampler::open()?;
    watch(args, plan, &mut sampler, &mut SysinfoTree::new())
}

/// Parses `--plan` as `plan`'s arguments and plans it: (description, total bytes per GPU).
fn predict(line: &str) -> anyhow::Result<(String, u64)> {
    let parsed = PlanLine::try_parse_from(line.split_whitespace()).map_err(|e| {
        let msg = e.to_string();
        let first = msg.lines().next().unwrap_or_default().trim_start_matches("error: ").to_string();
        anyhow!("--plan \"{line}\": {first}")
    })?;
    let report = super::plan::report(&parsed.plan).with_context(|| format!("--plan \"{line}\""))?;
    Ok((crate::report::headline(&report), report.memory.total.0))
}

/// Samples with `sampler` and `tree` while the command runs, and renders the report.
pub fn watch(
    args: &WatchArgs,
    plan: Option<(String, u64)>,
    sampler: &mut dyn MemorySampler,
    tree: &mut dyn ProcessTree,
) -> anyhow::Result<String> {
    let baseline = sampler.sample()?;
    let (program, rest) = args.command.split_first().context("no command to watch")?;
    let mut clock = WallClock::start();
    let mut child =
        std::process::Command::new(program).args(rest).spawn().with_context(|| format!("cannot start `{program}`"))?;
    let rec = record(sampler, tree, &mut child, &mut clock, args.interval_ms)
        .with_context(|| format!("lost track of `{program}`"))?;
    let report = WatchReport::new(args.command.clone(), args.interval_ms, rec, &baseline, plan);
    if let Some(path) = &args.svg {
        std::fs::write(path, watch_report::svg(&report)).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let out = match args.format {
        WatchFormat::Table => watch_report::table(&report),
        WatchFormat::Json => crate::report::json::render(&report) + "\n",
    };
    if !report.exit.success() {
        return Err(CommandFailed { program: program.clone(), status: report.exit.describe(), report: out }.into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::memory::DeviceMemory;
    use crate::gpu::mock::{FixedTree, ScriptedSampler};

    fn args(command: &[&str], format: WatchFormat, svg: Option<std::path::PathBuf>) -> WatchArgs {
        WatchArgs { interval_ms: 5, svg, plan: None, format, command: command.iter().map(|s| s.to_string()).collect() }
    }

    fn sampler() -> ScriptedSampler {
        let dev = |used| DeviceMemory { index: 0, used_bytes: used, total_bytes: 1 << 34, processes: vec![] };
        ScriptedSampler::new(vec![Some(vec![dev(1 << 20)]), Some(vec![dev(1 << 30)])])
    }

    #[test]
    fn a_real_command_runs_to_completion_and_the_svg_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let svg = dir.path().join("t.svg");
        let a = args(&["sh", "-c", "sleep 0.05"], WatchFormat::Json, Some(svg.clone()));
        let out = watch(&a, Some(("p".into(), 1 << 30)), &mut sampler(), &mut FixedTree(vec![])).unwrap();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["exit"]["code"], 0);
        assert!(v["sample_count"].as_u64().unwrap() >= 1);
        assert!(v["duration_ms"].as_f64().unwrap() >= 40.0, "{v}");
        assert_eq!(v["peaks"]["devices"][0]["baseline_used_bytes"], 1 << 20);
        assert_eq!(v["plan"]["measured"], "device used − baseline");
        assert!(std::fs::read_to_string(svg).unwrap().starts_with("<svg"));
    }

    #[test]
    fn a_failing_command_carries_its_status_and_the_report() {
        let a = args(&["sh", "-c", "exit 7"], WatchFormat::Table, None);
        let err = watch(&a, None, &mut sampler(), &mut FixedTree(vec![])).unwrap_err();
        let failed = err.downcast_ref::<CommandFailed>().unwrap();
        assert_eq!(failed.to_string(), "the watched command `sh` exited with code 7");
        assert!(failed.report.contains("exited with code 7"), "{}", failed.report);
    }

    #[test]
    fn a_missing_program_is_a_clear_error() {
        let a = args(&["headroom-no-such-program"], WatchFormat::Table, None);
        let err = watch(&a, None, &mut sampler(), &mut FixedTree(vec![])).unwrap_err();
        assert!(format!("{err:#}").starts_with("cannot start `headroom-no-such-program`: "), "{err:#}");
    }

    #[test]
    fn plan_arguments_are_parsed_and_planned() {
        let (desc, total) = predict("llama-2-7b --weights bf16 --context 4096 --gpu h100-sxm").unwrap();
        assert!(desc.starts_with("llama-2-7b · bf16"), "{desc}");
        assert!(total > 13 << 30 && total < 20 << 30, "{total}");
        let err = predict("llama-2-7b --no-such-flag").unwrap_err().to_string();
        assert!(err.starts_with("--plan \"llama-2-7b --no-such-flag\": unexpected argument"), "{err}");
    }
}
