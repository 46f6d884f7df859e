//! `headroom accuracy`: the planner's track record. Every measurement in data/measurements/
//! (published rows with their sources, and our own GPU runs) is built into the binary; this
//! command plans each record's setup now and compares with what was measured, so the numbers
//! always describe the planner that is running. The same records are the tests of
//! tests/measurements.rs, which fail when one leaves the tolerance it states.

use super::plan::report;
use crate::cli::{Cli, Command};
use crate::report::{Listing, PlanReport};
use anyhow::Context;
use clap::Parser;
use serde::Deserialize;
use serde_json::json;

/// Every record file in data/measurements/, with the group it reports under.
pub const FILES: [(&str, &str, &str); 5] = [
    (
        "published.toml",
        "published inference (LitGPT, ExLlama, HF, GGUF, llm-d, vLLM, llama.cpp, mlx-lm)",
        include_str!("../../data/measurements/published.toml"),
    ),
    (
        "published-speed.toml",
        "published speed (LitGPT, ExLlama, llama.cpp, vLLM, mlx-lm)",
        include_str!("../../data/measurements/published-speed.toml"),
    ),
    (
        "published-train.toml",
        "published fine-tuning (LitGPT, torchtune, Unsloth)",
        include_str!("../../data/measurements/published-train.toml"),
    ),
    (
        "device-h200-2026-11-27.toml",
        "our H200 runs: transformers inference",
        include_str!("../../data/measurements/device-h200-2026-11-27.toml"),
    ),
    (
        "device-h200-2026-11-27-train.toml",
        "our H200 runs: training steps",
        include_str!("../../data/measurements/device-h200-2026-11-27-train.toml"),
    ),
];

#[derive(Deserialize)]
struct File {
    record: Vec<Record>,
}

/// One measurement: the `headroom plan` arguments of its setup, which planned quantity it is
/// compared with, the measured value and the tolerance it is held to.
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    pub id: String,
    pub args: String,
    pub compare: String,
    pub value: toml::Value,
    pub unit: Option<String>,
    pub tolerance: Option<f64>,
    pub justification: String,
    /// "excluded": recorded with its reason, not tested.
    pub status: Option<String>,
}

impl Record {
    pub fn excluded(&self) -> bool {
        self.status.as_deref() == Some("excluded")
    }
}

/// The records of every file, with the file's group.
pub fn records() -> anyhow::Result<Vec<(&'static str, Record)>> {
    let mut out = Vec::new();
    for (name, group, text) in FILES {
        let file: File = toml::from_str(text).with_context(|| format!("data/measurements/{name}"))?;
        out.extend(file.record.into_iter().map(|r| (group, r)));
    }
    Ok(out)
}

/// One numeric record against the planner now.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub id: String,
    /// Display units: GiB for byte-valued records in bytes, the record's own unit otherwise.
    pub measured: f64,
    pub predicted: f64,
    /// (predicted − measured) / measured.
    pub error: f64,
    pub tolerance: f64,
    pub unit: String,
    /// What the record compares (`decode_tokens_per_s`, `allocated`, ...).
    pub compare: String,
    /// The engine its plan ran and the catalog GPU it named, if any.
    pub engine: String,
    pub gpu: Option<String>,
}

impl Outcome {
    /// "speed" for tokens per second and seconds, "memory" for bytes.
    pub fn kind(&self) -> &'static str {
        if matches!(self.unit.as_str(), "tok/s" | "s") {
            "speed"
        } else {
            "memory"
        }
    }
}

/// Plans a record's setup.
pub fn plan(args: &str) -> anyhow::Result<PlanReport> {
    let argv = ["headroom", "plan"].into_iter().chain(args.split_whitespace());
    let Command::Plan(plan_args) = Cli::try_parse_from(argv)?.command else {
        anyhow::bail!("record arguments are not a plan: {args}")
    };
    report(&plan_args)
}

/// Bytes (or 1 for speeds) per unit a record's value is written in.
fn unit_scale(unit: &str) -> anyhow::Result<f64> {
    Ok(match unit {
        "tok/s" | "s" | "B" => 1.0,
        "GB" => 1e9,
        "GiB" => (1u64 << 30) as f64,
        "MB" => 1e6,
        "MiB" => (1u64 << 20) as f64,
        other => anyhow::bail!("unknown unit {other}"),
    })
}

/// A planned speed: tokens per second or seconds.
fn predicted_speed(r: &PlanReport, compare: &str) -> Option<Option<f64>> {
    let t = &r.throughput;
    Some(match compare {
        "decode_tokens_per_s" => t.decode_tokens_per_s,
        "decode_tokens_per_s_per_sequence" => t.decode_tokens_per_s_per_sequence,
        "prefill_tokens_per_s" => t.prefill_tokens_per_s,
        "time_to_first_token_s" => t.time_to_first_token_s,
        "train_tokens_per_s" => t.train_tokens_per_s,
        "train_step_time_s" => r.training_speed.as_ref().map(|s| s.step_time_s),
        _ => return None,
    })
}

/// Training quantities of the busiest GPU (training records are single-GPU).
fn training_bytes(r: &PlanReport, compare: &str) -> Option<anyhow::Result<f64>> {
    let t = r.training.as_ref()?;
    let allocated = |m: &crate::plan::MemoryBreakdown| (m.total.0 - m.cuda_context.0) as f64;
    let sum = |f: fn(&crate::plan::training::ModelShare) -> u64| t.models.iter().map(f).sum::<u64>() as f64;
    Some(Ok(match compare {
        "train_saved" => t.saved_activations_bytes as f64,
        "train_gradients" => sum(|m| m.gradients_bytes),
        "train_optimizer" => sum(|m| m.optimizer_bytes),
        "train_paged" => t.paged_optimizer_bytes as f64,
        _ => {
            let name = compare.strip_prefix("phase:")?;
            match t.phases.iter().find(|p| p.phase == name) {
                Some(p) => allocated(&p.memory),
                None => return Some(Err(anyhow::anyhow!("the plan has no phase {name}"))),
            }
        }
    }))
}

/// The planned quantity a record compares against: bytes summed over GPUs, or a speed.
pub fn predicted(r: &PlanReport, compare: &str) -> anyhow::Result<f64> {
    if let Some(speed) = predicted_speed(r, compare) {
        return speed.with_context(|| format!("{compare} is null for {}", r.model.id));
    }
    if compare == "vllm_kv_pool" {
        let pool = r.vllm.as_ref().context("vllm_kv_pool records run the vllm engine")?.kv_pool_bytes;
        return Ok(pool as f64 * r.per_gpu.len() as f64);
    }
    if let Some(v) = training_bytes(r, compare) {
        return v;
    }
    if compare == "host_weights" {
        return Ok(r.host.as_ref().map_or(0, |h| h.weights_bytes) as f64);
    }
    let mut total = 0.0;
    for g in &r.per_gpu {
        let m = &g.memory;
        total += match compare {
            "allocated" => (m.total.0 - m.cuda_context.0) as f64,
            // NVML's per-process figure (headroom validate and watch): context included.
            "total" => m.total.0 as f64,
            "cuda_context" => m.cuda_context.0 as f64,
            "allocated_no_kv" => (m.total.0 - m.cuda_context.0 - m.kv_cache.0) as f64,
            "allocated_no_weights" => (m.total.0 - m.cuda_context.0 - m.weights.0) as f64,
            "weights" => m.weights.0 as f64,
            "kv_cache" => m.kv_cache.0 as f64,
            "activations" => m.activations.0 as f64,
            // llama.cpp's "compute buffer": the graph's activation peak and the scratch it holds.
            "compute_buffer" => (m.activations + m.workspace).0 as f64,
            other => anyhow::bail!("unknown compare {other}"),
        };
    }
    Ok(total)
}

/// A numeric, tested record against the planner now; `None` for verdict and excluded records.
pub fn outcome(rec: &Record) -> anyhow::Result<Option<Outcome>> {
    if rec.excluded() {
        return Ok(None);
    }
    numeric_outcome(rec)
}

/// A numeric record, tested or excluded, against the planner now; `None` for verdict records.
pub fn numeric_outcome(rec: &Record) -> anyhow::Result<Option<Outcome>> {
    if rec.compare == "fits" {
        return Ok(None);
    }
    let unit = rec.unit.as_deref().with_context(|| format!("{}: a numeric record needs a unit", rec.id))?;
    let scale = unit_scale(unit)?;
    let value = rec.value.as_float().or(rec.value.as_integer().map(|i| i as f64));
    let measured = value.with_context(|| format!("{}: value is not a number", rec.id))? * scale;
    let report = plan(&rec.args).with_context(|| format!("{}: {}", rec.id, rec.args))?;
    let predicted = predicted(&report, &rec.compare)?;
    let tolerance = rec.tolerance.with_context(|| format!("{}: a numeric record needs a tolerance", rec.id))?;
    // Bytes display in GiB; speeds and published GB/MB figures as the source wrote them.
    let (shown, shown_unit) = if unit == "B" { ((1u64 << 30) as f64, "GiB") } else { (scale, unit) };
    Ok(Some(Outcome {
        id: rec.id.clone(),
        measured: measured / shown,
        predicted: predicted / shown,
        error: (predicted - measured) / measured,
        tolerance,
        unit: shown_unit.to_string(),
        compare: rec.compare.clone(),
        engine: report.request.engine,
        gpu: report.fit.map(|f| f.gpu),
    }))
}

/// A verdict record (`compare = "fits"`) against the planner now: (measured, planned).
pub fn verdict(rec: &Record) -> anyhow::Result<Option<(bool, bool)>> {
    if rec.compare != "fits" || rec.excluded() {
        return Ok(None);
    }
    let measured = rec.value.as_bool().with_context(|| format!("{}: fits records hold true or false", rec.id))?;
    let fit = plan(&rec.args)?.fit.with_context(|| format!("{}: fits records name a GPU", rec.id))?;
    Ok(Some((measured, fit.fits)))
}

/// Median (the mean of the two middle values for an even count) and worst of absolute errors.
pub fn median_and_worst(errors: &[f64]) -> Option<(f64, f64)> {
    let mut e: Vec<f64> = errors.iter().map(|x| x.abs()).collect();
    e.sort_by(f64::total_cmp);
    let n = e.len();
    if n == 0 {
        return None;
    }
    let median = if n % 2 == 1 { *e.get(n / 2)? } else { (e.get(n / 2 - 1)? + e.get(n / 2)?) / 2.0 };
    Some((median, *e.last()?))
}

/// The summary by group, or every record with `all_records`.
pub fn listing(all_records: bool) -> anyhow::Result<Listing> {
    // (group · memory or speed, numeric outcomes, fits verdicts, verdicts the plan gets right)
    let mut by_group: Vec<(String, Vec<Outcome>, usize, usize)> = Vec::new();
    // The group's entry, added in file order the first time it is seen.
    fn entry(
        groups: &mut Vec<(String, Vec<Outcome>, usize, usize)>,
        name: String,
    ) -> &mut (String, Vec<Outcome>, usize, usize) {
        let i = groups.iter().position(|g| g.0 == name).unwrap_or_else(|| {
            groups.push((name, Vec::new(), 0, 0));
            groups.len() - 1
        });
        &mut groups[i]
    }
    for (group, rec) in records()? {
        let id = &rec.id;
        if let Some(o) = outcome(&rec).with_context(|| format!("record {id}"))? {
            entry(&mut by_group, format!("{group} · {}", o.kind())).1.push(o);
        } else if let Some((measured, planned)) = verdict(&rec).with_context(|| format!("record {id}"))? {
            let g = entry(&mut by_group, format!("{group} · memory"));
            g.2 += 1;
            g.3 += (measured == planned) as usize;
        }
    }
    let pct = |x: f64| format!("{:.2}%", x * 100.0);
    if all_records {
        let mut rows = Vec::new();
        let mut items = Vec::new();
        for (group, outcomes, _, _) in &by_group {
            for o in outcomes {
                rows.push(vec![
                    o.id.clone(),
                    format!("{:.3}", o.measured),
                    format!("{:.3}", o.predicted),
                    o.unit.clone(),
                    format!("{:+.2}%", o.error * 100.0),
                    pct(o.tolerance),
                ]);
                items.push(json!({"group": group, "id": o.id, "measured": o.measured, "predicted": o.predicted,
                    "unit": o.unit, "error": o.error, "tolerance": o.tolerance}));
            }
        }
        return Ok(Listing {
            title:
                "every numeric record (the fits verdicts are in the summary): the planner now against what was measured"
                    .into(),
            headers: vec!["record", "measured", "predicted", "unit", "error", "tolerance"],
            rows,
            json: json!(items),
        });
    }
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for (group, outcomes, verdicts, right) in &by_group {
        let errors: Vec<f64> = outcomes.iter().map(|o| o.error).collect();
        let within = outcomes.iter().filter(|o| o.error.abs() <= o.tolerance).count();
        let summary = median_and_worst(&errors);
        rows.push(vec![
            group.clone(),
            outcomes.len().to_string(),
            summary.map_or("—".into(), |s| pct(s.0)),
            summary.map_or("—".into(), |s| pct(s.1)),
            format!("{within} of {}", outcomes.len()),
            if *verdicts > 0 { format!("{right} of {verdicts}") } else { "—".into() },
        ]);
        items.push(json!({"group": group, "records": outcomes.len(), "median_abs_error": summary.map(|s| s.0),
            "worst_abs_error": summary.map(|s| s.1), "within_tolerance": within, "verdicts": verdicts,
            "verdicts_right": right}));
    }
    Ok(Listing {
        title: "the planner's track record: every measurement in data/measurements, planned now (--records lists each)"
            .into(),
        headers: vec!["group", "records", "median |error|", "worst |error|", "within tolerance", "fits verdicts right"],
        rows,
        json: json!(items),
    })
}
