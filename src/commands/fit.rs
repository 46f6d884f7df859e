//! `headroom fit MODEL [plan options]`: every catalog GPU at 1, 2, 4 and 8 per node that fits,
//! cheapest first, with speed and cost.
//!
//! Price per hour is the catalog's on-demand cloud price per GPU where it has one; consumer and
//! workstation cards with only a purchase price are amortized over three years of continuous use
//! plus their board power at US$0.15/kWh (shown as `basis` of the price); `--pricing cloud` or
//! `--pricing own` ranks by one kind of price only. Cost per million
//! tokens = price per hour ÷ (aggregate decode tokens/s × 3,600) × 10⁶; with a training `--mode`,
//! the setups that train the model and the cost per million trained tokens.
//!
//! `--best-format --gpu ID[:COUNT]` turns the sweep around: one setup, every weight format
//! (`headroom formats`) that fits it, ranked by the model's whole-file bits per weight (a quality
//! proxy: more bits, less quantization error), then by decode speed.

use super::plan::{load_calibration, plan_report_on};
use super::render_listing;
use super::source::resolve;
use crate::catalog::gpus::{parse_gpu_arg, GpuCatalog, GpuSpec};
use crate::cli::{FitArgs, OutputFormat, PricingArg};
use crate::quant::WeightFormat;
use crate::report::{self, Listing, PlanReport};
use anyhow::ensure;
use serde::Serialize;

/// GPUs per node that `fit` tries.
pub const COUNTS: [u32; 4] = [1, 2, 4, 8];
/// Amortization of a purchase price: three years of hours.
const AMORTIZATION_HOURS: f64 = 3.0 * 8760.0;
/// Electricity price for amortized cards, US$ per kWh.
const POWER_USD_PER_KWH: f64 = 0.15;

/// What a setup costs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Price {
    /// All GPUs together, US$ per hour.
    pub per_hour_usd: f64,
    /// US$ per million generated tokens at the aggregate decode speed (trained tokens at the
    /// training speed for a training `--mode`).
    pub per_million_tokens_usd: Option<f64>,
    pub basis: String,
}

/// One row of `fit`: a plan on one setup, and its price (null when the catalog has none).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitRow {
    #[serde(flatten)]
    pub report: PlanReport,
    pub price: Option<Price>,
}

/// One row of `fit --best-format`: a fit row and the format's bits per weight on this model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FormatRow {
    #[serde(flatten)]
    pub row: FitRow,
    /// Weight bytes × 8 ÷ parameters (unquantized embeddings, norms and scales included).
    pub bits_per_weight: f64,
}

/// Price per hour of one GPU, and how it was derived.
pub(crate) fn gpu_price(gpu: &GpuSpec) -> Option<(f64, &'static str)> {
    cloud_price(gpu).or_else(|| own_price(gpu))
}

/// On-demand cloud price of one GPU-hour, where the catalog has one.
fn cloud_price(gpu: &GpuSpec) -> Option<(f64, &'static str)> {
    let h = gpu.price.as_ref()?.hourly_usd?;
    Some((h, "on-demand cloud price per GPU-hour (GPU catalog)"))
}

/// What owning the GPU costs per hour: purchase price over three years, plus power.
fn own_price(gpu: &GpuSpec) -> Option<(f64, &'static str)> {
    let amortized = gpu.price.as_ref()?.purchase_usd? as f64 / AMORTIZATION_HOURS;
    Some(match gpu.tdp_w {
        Some(w) => (
            amortized + w as f64 / 1000.0 * POWER_USD_PER_KWH,
            "purchase price over 3 years + board power at $0.15/kWh",
        ),
        None => (amortized, "purchase price over 3 years (board power unknown: not included)"),
    })
}

fn price(pricing: PricingArg, gpu: &GpuSpec, count: u32, decode_tokens_per_s: Option<f64>) -> Option<Price> {
    let (per_gpu, basis) = match pricing {
        PricingArg::Any => gpu_price(gpu),
        PricingArg::Cloud => cloud_price(gpu),
        PricingArg::Own => own_price(gpu),
    }?;
    let per_hour_usd = per_gpu * count as f64;
    let per_million_tokens_usd = decode_tokens_per_s.filter(|t| *t > 0.0).map(|t| per_hour_usd / (t * 3600.0) * 1e6);
    Some(Price { per_hour_usd, per_million_tokens_usd, basis: basis.to_string() })
}

/// Plans every catalog GPU × count; keeps what fits and passes the filters, cheapest first
/// (setups without a price last, then fastest first).
pub fn sweep(args: &FitArgs) -> anyhow::Result<Vec<FitRow>> {
    super::plan::check_mode_options(&args.plan)?;
    ensure!(args.plan.gpu.is_none(), "fit tries every catalog GPU; drop --gpu (headroom plan checks one setup)");
    ensure!(
        args.plan.wired_limit.is_none(),
        "fit tries every catalog GPU; --wired-limit is one Mac's setting: check it with headroom plan --gpu ID --wired-limit GIB"
    );
    ensure!(
        args.plan.gtt_limit.is_none(),
        "fit tries every catalog GPU; --gtt-limit is one Strix Halo's setting: check it with headroom plan --gpu ID --gtt-limit GIB"
    );
    ensure!(
        args.plan.train.mode == crate::cli::ModeArg::Infer || args.min_decode_tokens_per_s.is_none(),
        "--min-decode-tokens-per-s filters inference setups; drop it with --mode"
    );
    let model = resolve(&args.plan.model)?;
    let calibration = load_calibration(&args.plan)?;
    // Input errors that no setup can fix surface here, not as an empty sweep.
    plan_report_on(&model, &args.plan, None, calibration.as_ref())?;
    if let Some(gib) = args.plan.in_use {
        let largest = GpuCatalog::builtin().iter().map(|g| g.usable_bytes()).max().unwrap_or(0);
        ensure!(
            gib * ((1u64 << 30) as f64) < largest as f64,
            "--in-use {gib:.3} is more than any catalog GPU holds ({:.2} GiB at most)",
            largest as f64 / (1u64 << 30) as f64
        );
    }
    let mut rows = Vec::new();
    for gpu in GpuCatalog::builtin().iter() {
        for count in COUNTS {
            // A layout the model cannot take (heads not divisible by the TP degree) is skipped.
            let Ok(report) = plan_report_on(&model, &args.plan, Some((gpu, count)), calibration.as_ref()) else {
                continue;
            };
            rows.extend(keep(args, report, gpu, count));
        }
    }
    rows.sort_by(|a, b| {
        let key = |r: &FitRow| r.price.as_ref().map_or(f64::INFINITY, |p| p.per_hour_usd);
        let speed = |r: &FitRow| {
            let t = &r.report.throughput;
            t.decode_tokens_per_s.or(t.train_tokens_per_s).unwrap_or(0.0)
        };
        key(a).total_cmp(&key(b)).then(speed(b).total_cmp(&speed(a)))
    });
    Ok(rows)
}

/// Plans every weight format on the `--gpu` setup; keeps what fits and passes the filters, most
/// bits per weight first, then fastest decode.
pub fn format_sweep(args: &FitArgs) -> anyhow::Result<Vec<FormatRow>> {
    super::plan::check_mode_options(&args.plan)?;
    let gpu_arg = args.plan.gpu.as_deref();
    let gpu_arg =
        gpu_arg.ok_or_else(|| anyhow::anyhow!("--best-format ranks formats on one setup; give --gpu ID[:COUNT]"))?;
    ensure!(args.plan.weights.is_none(), "--best-format tries every weight format; drop --weights");
    let (gpu, count) = parse_gpu_arg(gpu_arg)?;
    let model = resolve(&args.plan.model)?;
    let calibration = load_calibration(&args.plan)?;
    let params = model.counts.total.max(1) as f64;
    let mut rows = Vec::new();
    for format in WeightFormat::all() {
        let plan_args = crate::cli::PlanArgs { weights: Some(format.id().to_string()), ..args.plan.clone() };
        // A format the model or engine cannot take is skipped, like a layout in `sweep`.
        let Ok(report) = plan_report_on(&model, &plan_args, Some((gpu, count)), calibration.as_ref()) else {
            continue;
        };
        if let Some(row) = keep(args, report, gpu, count) {
            let bits_per_weight = format.weight_bytes(&model.spec, &model.tensors).0 as f64 * 8.0 / params;
            rows.push(FormatRow { row, bits_per_weight });
        }
    }
    rows.sort_by(|a, b| {
        let speed = |r: &FormatRow| r.row.report.throughput.decode_tokens_per_s.unwrap_or(0.0);
        b.bits_per_weight.total_cmp(&a.bits_per_weight).then(speed(b).total_cmp(&speed(a)))
    });
    Ok(rows)
}

/// The row for a planned setup, if it fits and passes the speed and price filters.
fn keep(args: &FitArgs, report: PlanReport, gpu: &GpuSpec, count: u32) -> Option<FitRow> {
    if !report.fit.as_ref().is_some_and(|f| f.fits) {
        return None;
    }
    let t = &report.throughput;
    let decode = t.decode_tokens_per_s;
    if args.min_decode_tokens_per_s.is_some_and(|min| decode.is_none_or(|d| d < min)) {
        return None;
    }
    let price = price(args.pricing, gpu, count, decode.or(t.train_tokens_per_s));
    if args.max_price_per_hour.is_some_and(|max| price.as_ref().is_none_or(|p| p.per_hour_usd > max)) {
        return None;
    }
    Some(FitRow { report, price })
}

pub fn run(args: &FitArgs) -> anyhow::Result<String> {
    if args.best_format {
        let rows = format_sweep(args)?;
        return Ok(match args.plan.format {
            OutputFormat::Json => report::json::render(&rows) + "\n",
            format => render_listing(&format_listing(&rows, &args.plan.model), format),
        });
    }
    let rows = sweep(args)?;
    Ok(match args.plan.format {
        OutputFormat::Json => report::json::render(&rows) + "\n",
        format => render_listing(
            &listing(&rows, &args.plan.model, args.plan.train.mode != crate::cli::ModeArg::Infer),
            format,
        ),
    })
}

/// Host RAM per GPU a training row needs: offloaded states and activations, and the paged
/// optimizer states with no room beside the peak.
fn training_host_bytes(r: &FitRow) -> u64 {
    r.report.training.as_ref().map_or(0, |t| t.host_bytes + t.paged_to_host_bytes.unwrap_or(0))
}

fn listing(rows: &[FitRow], model: &str, training: bool) -> Listing {
    let opt = |v: Option<f64>, digits: usize| v.map_or("—".to_string(), |v| format!("{v:.digits$}"));
    // Offloading or paging setups also need host RAM: a column when any row does.
    let host_bytes: Vec<u64> = rows.iter().map(training_host_bytes).collect();
    let host = training && host_bytes.iter().any(|&b| b > 0);
    let table = rows
        .iter()
        .zip(&host_bytes)
        .map(|(r, &host_bytes)| {
            let fit = r.report.fit.as_ref().expect("fit rows have a GPU");
            let t = &r.report.throughput;
            let (speed, time) = if training {
                (t.train_tokens_per_s, r.report.training_speed.as_ref().map(|s| s.step_time_s))
            } else {
                (t.decode_tokens_per_s, t.time_to_first_token_s)
            };
            let mut row = vec![
                fit.gpu.clone(),
                fit.gpu_count.to_string(),
                format!("{:.2}", fit.headroom_bytes as f64 / (1u64 << 30) as f64),
                opt(speed, 1),
                opt(time, 3),
                opt(r.price.as_ref().map(|p| p.per_hour_usd), 2),
                opt(r.price.as_ref().and_then(|p| p.per_million_tokens_usd), 2),
            ];
            if host {
                row.insert(3, format!("{:.2}", crate::units::Bytes(host_bytes).gib()));
            }
            row
        })
        .collect();
    let (what, headers) = if training {
        let mut headers = vec!["gpu", "count", "headroom GiB", "train tok/s", "step s", "$/hour", "$/M trained tokens"];
        if host {
            headers.insert(3, "host RAM GiB per GPU");
        }
        ("train it", headers)
    } else {
        ("fit", vec!["gpu", "count", "headroom GiB", "decode tok/s", "TTFT s", "$/hour", "$/M tokens"])
    };
    Listing {
        title: format!("{model}: {} setups that {what}, cheapest first", rows.len()),
        headers,
        rows: table,
        json: serde_json::Value::Null,
    }
}

fn format_listing(rows: &[FormatRow], model: &str) -> Listing {
    let opt = |v: Option<f64>, digits: usize| v.map_or("—".to_string(), |v| format!("{v:.digits$}"));
    let table = rows
        .iter()
        .map(|r| {
            let fit = r.row.report.fit.as_ref().expect("format rows have a GPU");
            let t = &r.row.report.throughput;
            vec![
                r.row.report.request.weights.clone(),
                format!("{:.3}", r.bits_per_weight),
                format!("{:.2}", fit.headroom_bytes as f64 / (1u64 << 30) as f64),
                opt(t.decode_tokens_per_s, 1),
                opt(t.time_to_first_token_s, 3),
                r.row.report.request.engine.clone(),
            ]
        })
        .collect();
    let setup = rows
        .first()
        .and_then(|r| r.row.report.fit.as_ref())
        .map_or(String::new(), |f| format!(" on {}× {}", f.gpu_count, f.gpu));
    Listing {
        title: format!("{model}{setup}: {} weight formats that fit, most bits per weight first", rows.len()),
        headers: vec!["weights", "bits/weight", "headroom GiB", "decode tok/s", "TTFT s", "engine"],
        rows: table,
        json: serde_json::Value::Null,
    }
}
