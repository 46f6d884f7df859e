//! How far the planner's speeds have landed from measured ones on setups like the one planned.
//! Every speed record in data/measurements/ gives a ratio, measured ÷ planned speed: the tested
//! ones, and the excluded ones too, which record setups the plan does not model (gpt-oss prompts
//! on AMD Radeon GPUs, vLLM's V0 engine), so a band also says how far those have strayed. Many
//! records are the ones the planner's constants were fitted to, so the bands are partly
//! in-sample. The records of one speed (decode, prefill or training), engine and kind of GPU
//! make a group, and the 10th and 90th percentiles of its ratios, times a plan's speed, give the
//! range the middle 80% of those setups would put it in. `headroom accuracy --bands` computes
//! the table from the records; data/speed-bands.toml holds it (tests/measurements.rs checks it
//! is current), so a plan looks its band up instead of planning every record.
//!
//! Llama-3.3-70B Q4_K_M in llama.cpp on Strix Halo, Vulkan: decode planned at 4.0 tok/s; the
//! 31 llama.cpp decode records on AMD Radeon GPUs put measured ÷ planned between 0.911 and
//! 1.143 for their middle 80%, so 3.6–4.5 tok/s.

use super::accuracy::{numeric_outcome, records};
use crate::bench::stats::quantile;
use crate::catalog::gpus::{Arch, GpuCatalog, GpuSpec, Vendor};
use crate::report::{PlanReport, SpeedRange};
use serde::{Deserialize, Serialize};
use std::sync::OnceLock;

/// The committed table.
const TABLE: &str = include_str!("../../data/speed-bands.toml");

/// A group needs this many tested records before its spread stands for it; smaller groups fall
/// back to the engine's records on every kind of GPU, then to every record of the speed.
const MIN_RECORDS: usize = 8;
/// The percentiles of measured ÷ planned speed the range spans: the middle 80%.
const LOW: f64 = 0.10;
const HIGH: f64 = 0.90;
/// Stands for every engine or every kind of GPU in a band's key.
const ANY: &str = "any";

/// The spread of measured ÷ planned speed over one group of records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    /// `decode`, `prefill` or `train`.
    pub metric: String,
    /// An engine id, or `any`.
    pub engine: String,
    /// `nvidia`, `apple`, `amd-radeon`, `other`, or `any`.
    pub platform: String,
    pub records: usize,
    pub low: f64,
    pub median: f64,
    pub high: f64,
}

#[derive(Serialize, Deserialize)]
struct Table {
    band: Vec<Band>,
}

/// The kind of GPU a band groups by: its vendor's runtime family.
pub fn platform(gpu: &GpuSpec) -> &'static str {
    match (gpu.vendor, gpu.arch) {
        (Vendor::Apple, _) => "apple",
        (_, Arch::Rdna3 | Arch::Rdna35 | Arch::Rdna4) => "amd-radeon",
        (Vendor::Nvidia, _) => "nvidia",
        _ => "other",
    }
}

fn platform_words(platform: &str) -> &'static str {
    match platform {
        "apple" => "Apple silicon",
        "amd-radeon" => "AMD Radeon GPUs",
        "nvidia" => "NVIDIA GPUs",
        "other" => "other accelerators",
        _ => "any GPU",
    }
}

/// Which speed a record compares, and whether its value is a time (the inverse of a speed).
fn metric(compare: &str) -> Option<(&'static str, bool)> {
    Some(match compare {
        "decode_tokens_per_s" | "decode_tokens_per_s_per_sequence" => ("decode", false),
        "prefill_tokens_per_s" => ("prefill", false),
        "time_to_first_token_s" => ("prefill", true),
        "train_tokens_per_s" => ("train", false),
        "train_step_time_s" => ("train", true),
        _ => return None,
    })
}

/// The bands of every group with enough records, from the records planned now, as the TOML
/// data/speed-bands.toml holds.
pub fn compute() -> anyhow::Result<String> {
    // (metric, engine, platform, measured ÷ planned speed)
    let mut ratios: Vec<(&'static str, String, &'static str, f64)> = Vec::new();
    for (_, rec) in records()? {
        let Some(o) = numeric_outcome(&rec)? else { continue };
        let (Some((metric, is_time)), Some(gpu)) = (metric(&o.compare), o.gpu.as_deref()) else { continue };
        let Ok(gpu) = GpuCatalog::builtin().get(gpu) else { continue };
        let ratio = if is_time { o.predicted / o.measured } else { o.measured / o.predicted };
        ratios.push((metric, o.engine.clone(), platform(gpu), ratio));
    }
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for (m, e, p, _) in &ratios {
        for key in [(*m, e.as_str(), *p), (*m, e.as_str(), ANY), (*m, ANY, ANY)] {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
    }
    keys.sort();
    let mut band = Vec::new();
    for (m, e, p) in keys {
        let r: Vec<f64> = ratios
            .iter()
            .filter(|(rm, re, rp, _)| *rm == m && (e == ANY || re == e) && (p == ANY || *rp == p))
            .map(|x| x.3)
            .collect();
        if r.len() >= MIN_RECORDS {
            let round = |x: f64| (x * 1000.0).round() / 1000.0;
            band.push(Band {
                metric: m.into(),
                engine: e.into(),
                platform: p.into(),
                records: r.len(),
                low: round(quantile(&r, LOW)),
                median: round(quantile(&r, 0.5)),
                high: round(quantile(&r, HIGH)),
            });
        }
    }
    let header = "# Measured ÷ planned speed over the records of data/measurements/ (tested and excluded), by speed, engine and\n\
                  # kind of GPU (`any`: all of them), for groups of at least 8 records: the 10th percentile, the\n\
                  # median and the 90th. Generated by `headroom accuracy --bands` (scripts/accuracy.py writes\n\
                  # it); tests/measurements.rs fails when it no longer matches the records planned now.\n\n";
    Ok(format!("{header}{}", toml::to_string(&Table { band })?))
}

fn table() -> &'static [Band] {
    static BANDS: OnceLock<Vec<Band>> = OnceLock::new();
    // The table is built into the binary and checked by this module's tests.
    BANDS.get_or_init(|| toml::from_str::<Table>(TABLE).map(|t| t.band).expect("data/speed-bands.toml parses"))
}

/// The band for a speed of `engine` on `platform`: the group's own, else the engine's on any
/// GPU, else every record's of that speed.
pub fn band(metric: &str, engine: &str, platform: &str) -> Option<&'static Band> {
    [(engine, platform), (engine, ANY), (ANY, ANY)]
        .into_iter()
        .find_map(|(e, p)| table().iter().find(|b| b.metric == metric && b.engine == e && b.platform == p))
}

/// Attaches the likely ranges of a plan's speeds on `gpu`.
pub fn attach(report: &mut PlanReport, gpu: &GpuSpec) {
    let platform = platform(gpu);
    let engine = report.request.engine.clone();
    let range = |metric: &str, speed: Option<f64>| {
        let (speed, b) = (speed?, band(metric, &engine, platform)?);
        let group = match (b.engine.as_str(), b.platform.as_str()) {
            (ANY, _) => format!("{metric} records"),
            (e, ANY) => format!("{e} {metric} records"),
            (e, p) => format!("{e} {metric} records on {}", platform_words(p)),
        };
        Some(SpeedRange {
            low: speed * b.low,
            high: speed * b.high,
            basis: format!("80% of {} {group}: {:.2}–{:.2}× the plan", b.records, b.low, b.high),
        })
    };
    let t = &mut report.throughput;
    t.decode_range = range("decode", t.decode_tokens_per_s);
    t.prefill_range = range("prefill", t.prefill_tokens_per_s);
    t.train_range = range("train", t.train_tokens_per_s);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The committed table parses, and every group of it holds at least MIN_RECORDS with its
    /// percentiles in order.
    #[test]
    fn the_committed_table_is_well_formed() {
        assert!(!table().is_empty());
        for b in table() {
            assert!(b.records >= MIN_RECORDS && b.low <= b.median && b.median <= b.high, "{b:?}");
        }
    }

    /// A group too small for a band of its own falls back to the engine's, then to every record's.
    #[test]
    fn lookups_fall_back_to_wider_groups() {
        let any = band("decode", "no-such-engine", "nvidia").unwrap();
        assert_eq!((any.engine.as_str(), any.platform.as_str()), (ANY, ANY));
        assert!(band("no-such-metric", ANY, ANY).is_none());
    }
}
