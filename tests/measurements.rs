//! Every published measurement in data/measurements/published.toml is a test: the planner's
//! prediction for the record's setup must land within the record's tolerance.

use clap::Parser;
use headroom::cli::{Cli, Command};
use headroom::commands::plan::report;
use headroom::report::PlanReport;
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    record: Vec<Record>,
}

#[derive(Deserialize)]
struct Record {
    id: String,
    args: String,
    compare: String,
    value: toml::Value,
    unit: Option<String>,
    tolerance: Option<f64>,
    justification: String,
    /// "excluded": recorded with its reason, not tested.
    status: Option<String>,
}

/// Every record file in data/measurements/.
const FILES: [(&str, &str); 5] = [
    ("published.toml", include_str!("../data/measurements/published.toml")),
    ("published-speed.toml", include_str!("../data/measurements/published-speed.toml")),
    ("device-h200-2026-11-27.toml", include_str!("../data/measurements/device-h200-2026-11-27.toml")),
    ("published-train.toml", include_str!("../data/measurements/published-train.toml")),
    ("device-h200-2026-11-27-train.toml", include_str!("../data/measurements/device-h200-2026-11-27-train.toml")),
];

fn records() -> Vec<Record> {
    FILES
        .iter()
        .flat_map(|(name, text)| toml::from_str::<File>(text).unwrap_or_else(|e| panic!("{name}: {e}")).record)
        .collect()
}

#[test]
fn every_record_file_is_tested() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/measurements");
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        if name.ends_with(".toml") {
            assert!(FILES.iter().any(|(f, _)| *f == name), "{name} is not in FILES");
        }
    }
}

fn plan(args: &str) -> PlanReport {
    let argv = ["headroom", "plan"].into_iter().chain(args.split_whitespace());
    let Command::Plan(plan_args) = Cli::try_parse_from(argv).expect("record args parse").command else {
        unreachable!("argv starts with plan")
    };
    report(&plan_args).expect("record plans")
}

fn unit_bytes(unit: &str) -> f64 {
    match unit {
        "tok/s" | "s" => 1.0,
        "GB" => 1e9,
        "GiB" => (1u64 << 30) as f64,
        "MB" => 1e6,
        "MiB" => (1u64 << 20) as f64,
        "B" => 1.0,
        other => panic!("unknown unit {other}"),
    }
}

/// A planned speed: tokens per second or seconds.
fn predicted_speed(r: &PlanReport, compare: &str) -> Option<f64> {
    let t = &r.throughput;
    let value = match compare {
        "decode_tokens_per_s" => t.decode_tokens_per_s,
        "decode_tokens_per_s_per_sequence" => t.decode_tokens_per_s_per_sequence,
        "prefill_tokens_per_s" => t.prefill_tokens_per_s,
        "time_to_first_token_s" => t.time_to_first_token_s,
        "train_tokens_per_s" => t.train_tokens_per_s,
        "train_step_time_s" => r.training_speed.as_ref().map(|s| s.step_time_s),
        _ => return None,
    };
    Some(value.unwrap_or_else(|| panic!("{compare} is null for {}", r.model.id)))
}

/// The planned quantity a record compares against, in bytes, summed over GPUs (or a speed).
fn predicted_bytes(r: &PlanReport, compare: &str) -> f64 {
    if let Some(speed) = predicted_speed(r, compare) {
        return speed;
    }
    if compare == "vllm_kv_pool" {
        let pool = r.vllm.as_ref().expect("vllm records run the vllm engine").kv_pool_bytes;
        return pool as f64 * r.per_gpu.len() as f64;
    }
    if let Some(v) = training_bytes(r, compare) {
        return v;
    }
    r.per_gpu
        .iter()
        .map(|g| {
            let m = &g.memory;
            match compare {
                "allocated" => (m.total.0 - m.cuda_context.0) as f64,
                // NVML's per-process figure (headroom validate and watch): context included.
                "total" => m.total.0 as f64,
                "cuda_context" => m.cuda_context.0 as f64,
                "allocated_no_kv" => (m.total.0 - m.cuda_context.0 - m.kv_cache.0) as f64,
                "weights" => m.weights.0 as f64,
                "kv_cache" => m.kv_cache.0 as f64,
                "activations" => m.activations.0 as f64,
                other => panic!("unknown compare {other}"),
            }
        })
        .sum()
}

/// Training quantities of the busiest GPU (training records are single-GPU).
fn training_bytes(r: &PlanReport, compare: &str) -> Option<f64> {
    let t = r.training.as_ref()?;
    let allocated = |m: &headroom::plan::MemoryBreakdown| (m.total.0 - m.cuda_context.0) as f64;
    let sum = |f: fn(&headroom::plan::training::ModelShare) -> u64| t.models.iter().map(f).sum::<u64>() as f64;
    Some(match compare {
        "train_saved" => t.saved_activations_bytes as f64,
        "train_gradients" => sum(|m| m.gradients_bytes),
        "train_optimizer" => sum(|m| m.optimizer_bytes),
        _ => match compare.strip_prefix("phase:") {
            Some(name) => allocated(&t.phases.iter().find(|p| p.phase == name).expect("phase exists").memory),
            None => return None,
        },
    })
}

/// (id, measured, predicted, relative error, tolerance) for every numeric record.
fn errors() -> Vec<(String, f64, f64, f64, f64)> {
    let mut out = Vec::new();
    for rec in records() {
        if rec.compare == "fits" || rec.status.as_deref() == Some("excluded") {
            continue;
        }
        let unit = unit_bytes(rec.unit.as_deref().expect("numeric records have a unit"));
        let measured = rec.value.as_float().or(rec.value.as_integer().map(|i| i as f64)).expect("numeric value") * unit;
        let predicted = predicted_bytes(&plan(&rec.args), &rec.compare);
        let tolerance = rec.tolerance.expect("numeric records have a tolerance");
        // Byte-valued records display in GiB; speeds as they are.
        let is_speed = matches!(rec.unit.as_deref(), Some("tok/s" | "s"));
        let shown = if unit == 1.0 && !is_speed { (1u64 << 30) as f64 } else { unit };
        out.push((rec.id, measured / shown, predicted / shown, (predicted - measured) / measured, tolerance));
    }
    out
}

#[test]
fn every_record_is_justified() {
    for rec in records() {
        assert!(rec.justification.len() > 20, "{}: justify the tolerance", rec.id);
    }
}

#[test]
fn numeric_records_are_within_tolerance() {
    let mut failures = Vec::new();
    for (id, measured, predicted, err, tol) in errors() {
        println!(
            "{id:45} measured {measured:>10.3} predicted {predicted:>10.3} error {:+.2}% (tolerance {:.1}%)",
            err * 100.0,
            tol * 100.0
        );
        if err.abs() > tol {
            failures.push(id);
        }
    }
    assert!(failures.is_empty(), "outside tolerance: {failures:?}");
}

#[test]
fn verdict_records_match() {
    for rec in records().into_iter().filter(|r| r.compare == "fits" && r.status.as_deref() != Some("excluded")) {
        let fits = plan(&rec.args).fit.expect("fits records name a GPU").fits;
        assert_eq!(Some(fits), rec.value.as_bool(), "{}", rec.id);
    }
}

fn median_and_worst(mut errors: Vec<f64>) -> (f64, f64) {
    errors.sort_by(f64::total_cmp);
    (errors[errors.len() / 2], errors[errors.len() - 1])
}

/// Our own GPU records of peak memory (transformers generate, plain forwards and training-step
/// peaks on the H200) meet the accuracy bar of issue 6: median within 3%, worst within 8%. The
/// summary of every group is printed (`-- --nocapture`; scripts/accuracy.py renders it).
#[test]
fn device_memory_accuracy_summary() {
    let all = errors();
    let is_memory =
        |id: &str| id.starts_with("h200-generate") || id.starts_with("h200-forward") || id.ends_with("-peak");
    let memory: Vec<f64> = all.iter().filter(|e| is_memory(&e.0)).map(|e| e.3.abs()).collect();
    let speed: Vec<f64> = all
        .iter()
        .filter(|e| {
            e.0.starts_with("h200-decode") || e.0.starts_with("h200-prefill") || e.0.starts_with("h200-train-speed")
        })
        .map(|e| e.3.abs())
        .collect();
    assert!(memory.len() >= 30 && !speed.is_empty(), "{} memory, {} speed records", memory.len(), speed.len());
    let (m_med, m_worst) = median_and_worst(memory);
    let (s_med, s_worst) = median_and_worst(speed);
    println!("device memory: median {:.2}%, worst {:.2}%", m_med * 100.0, m_worst * 100.0);
    println!("device speed: median {:.2}%, worst {:.2}%", s_med * 100.0, s_worst * 100.0);
    assert!(m_med <= 0.03 && m_worst <= 0.08, "memory median {m_med}, worst {m_worst}");
}
