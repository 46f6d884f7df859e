//! `headroom max MODEL --gpu G [plan options]`: the largest context, batch and vLLM concurrency
//! that fit, by binary search over the pure planner (fits is monotone in context and batch).

use super::plan::{load_calibration, plan_report_on};
use super::render_listing;
use super::source::{resolve, ResolvedModel};
use crate::catalog::gpus::{parse_gpu_arg, GpuSpec};
use crate::cli::{MaxArgs, OutputFormat, PlanArgs};
use crate::plan::throughput::Calibration;
use crate::report::{self, Listing};
use anyhow::Context;
use serde::Serialize;

/// Planner limits (plan/inference.rs `validate`).
const CONTEXT_LIMIT: u64 = 1 << 24;
const BATCH_LIMIT: u64 = 1 << 20;

/// The answer; a field is null where it does not apply (nothing fits, or not vLLM).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MaxReport {
    pub model: String,
    pub gpu: String,
    pub gpu_count: u32,
    pub engine: String,
    /// Largest context (tokens per sequence) at `--batch` that fits; may exceed the model's
    /// trained maximum, which `model_max_context` gives.
    pub max_context: Option<u64>,
    pub model_max_context: u64,
    /// Decoder layers of the model.
    pub model_layers: u64,
    /// Largest batch at `--context` that fits.
    pub max_batch: Option<u64>,
    /// vLLM: whole sequences of `--context` tokens its KV pool holds at once.
    pub max_concurrency: Option<u64>,
    /// llama.cpp: the most layers `--n-gpu-layers` can offload at `--context` and `--batch`,
    /// the output layer counted first (layers + 1: everything on the GPUs).
    pub max_gpu_layers: Option<u64>,
    /// `max_gpu_layers` counts decoder layers only, as llama.cpp did before December 2025
    /// (`--ngl-output-last`).
    pub ngl_output_last: bool,
    /// llama.cpp: what its `--fit` (on by default in llama-server and llama-cli) loads with the
    /// options given, `-c` unset unless `--context` is given: `-c 67584 -ngl 33`.
    pub llama_fit: Option<String>,
    /// Decode tokens/s (whole batch) at `llama_fit`.
    pub llama_fit_decode_tokens_per_s: Option<f64>,
    /// Decode tokens/s (whole batch) at `max_gpu_layers`, the rest read from host RAM.
    pub max_gpu_layers_decode_tokens_per_s: Option<f64>,
    /// llama.cpp on a mixture of experts: the fewest layers whose routed experts `--n-cpu-moe`
    /// must keep in host RAM for the rest to fit at `--context` and `--batch` (0: none).
    pub min_cpu_moe: Option<u64>,
    /// Decode tokens/s (whole batch) at `min_cpu_moe`.
    pub min_cpu_moe_decode_tokens_per_s: Option<f64>,
    /// vLLM: the least `--cpu-offload-gb` (GiB per GPU, in quarters) that makes the plan fit
    /// when it does not without (0 when it does).
    pub min_cpu_offload_gb: Option<f64>,
    /// Decode tokens/s (whole batch) at `min_cpu_offload_gb`.
    pub min_cpu_offload_decode_tokens_per_s: Option<f64>,
    /// The host RAM those speeds assume (`--host-memory`, a bench profile's read, or a typical
    /// desktop), as the plan's basis gives it.
    pub host_memory: Option<String>,
    pub context: u64,
    pub batch: u64,
    /// Why the engine would not start at `--context` and `--batch` whatever the memory, when
    /// it would not (vLLM's refusal of a `max_num_seqs` its hybrid pool cannot serve, or of a
    /// budget larger than what is free).
    pub engine_refusal: Option<String>,
}

struct Search<'a> {
    model: &'a ResolvedModel,
    gpu: (&'static GpuSpec, u32),
    calibration: Option<&'a Calibration>,
}

impl Search<'_> {
    fn fits(&self, args: &PlanArgs, context: u64, batch: u64) -> bool {
        self.fits_with(&PlanArgs { context: Some(context), batch, ..args.clone() })
    }

    fn fits_with(&self, args: &PlanArgs) -> bool {
        let args = PlanArgs { calibration: None, ..args.clone() };
        plan_report_on(self.model, &args, Some(self.gpu), self.calibration).is_ok_and(|r| r.fit.is_some_and(|f| f.fits))
    }

    /// The plan's decode speed and the host RAM it assumed, for a layout found to fit.
    fn decode_with(&self, args: &PlanArgs) -> (Option<f64>, Option<String>) {
        let Ok(r) = plan_report_on(self.model, args, Some(self.gpu), self.calibration) else { return (None, None) };
        let host = r
            .basis
            .iter()
            .find(|b| b.name == crate::plan::throughput::offload::HOST_RAM_BASIS)
            .map(|b| b.value.clone());
        (r.throughput.decode_tokens_per_s, host)
    }
}

/// The smallest `n` in `0..=limit` with `fits(n)`, where `fits` stays true above its boundary;
/// `None` when even `limit` does not fit.
pub fn smallest(limit: u64, fits: impl Fn(u64) -> bool) -> Option<u64> {
    if !fits(limit) {
        return None;
    }
    let (mut lo, mut hi) = (0u64, limit); // the answer lies in lo..=hi, and fits(hi)
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    Some(hi)
}

/// The largest `n` in `1..=limit` with `fits(n)`, or `None` when even 1 does not fit.
pub fn largest(limit: u64, fits: impl Fn(u64) -> bool) -> Option<u64> {
    if !fits(1) {
        return None;
    }
    let (mut lo, mut hi) = (1u64, 2u64);
    while hi <= limit && fits(hi) {
        lo = hi;
        hi *= 2;
    }
    let mut hi = hi.min(limit + 1); // fits(lo), !fits(hi) or hi beyond the limit
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    Some(lo)
}

pub fn run(args: &MaxArgs) -> anyhow::Result<String> {
    let r = report(&args.plan)?;
    Ok(match args.plan.format {
        OutputFormat::Json => report::json::render(&r) + "\n",
        format => render_listing(&listing(&r), format),
    })
}

pub fn report(args: &PlanArgs) -> anyhow::Result<MaxReport> {
    super::plan::check_mode_options(args)?;
    // Every search below sets its own context and placement: --fit is reported on its own.
    let args = &PlanArgs { fit: false, ..args.clone() };
    let gpu_arg = args.gpu.as_deref().context("max needs --gpu ID[:COUNT], e.g. --gpu rtx-4090")?;
    let gpu = parse_gpu_arg(gpu_arg)?;
    let model = resolve(&args.model)?;
    let calibration = load_calibration(args)?;
    let base = plan_report_on(&model, args, Some(gpu), calibration.as_ref())?;
    let search = Search { model: &model, gpu, calibration: calibration.as_ref() };
    let context = base.request.context;
    let llama_cpp = base.request.engine == "llama.cpp";
    // --n-gpu-layers is searched with the user's expert placement; --n-cpu-moe replaces --cpu-moe.
    let at_context = PlanArgs { context: Some(context), ..args.clone() };
    let with_gpu_layers = |n: u64| PlanArgs { n_gpu_layers: Some(n), ..at_context.clone() };
    let with_cpu_moe = |n: u64| PlanArgs { n_cpu_moe: Some(n), cpu_moe: false, ..at_context.clone() };
    let max_gpu_layers =
        llama_cpp.then(|| largest(model.spec.num_layers + 1, |n| search.fits_with(&with_gpu_layers(n)))).flatten();
    let min_cpu_moe = (llama_cpp && model.spec.moe.is_some())
        .then(|| smallest(model.spec.num_layers, |n| search.fits_with(&with_cpu_moe(n))))
        .flatten();
    let (gpu_layers_decode, host_a) = max_gpu_layers.map_or((None, None), |n| search.decode_with(&with_gpu_layers(n)));
    let (cpu_moe_decode, host_b) = min_cpu_moe.map_or((None, None), |n| search.decode_with(&with_cpu_moe(n)));
    // vLLM --cpu-offload-gb, searched in quarter GiB up to the weights one GPU holds.
    let with_offload = |quarters: u64| PlanArgs { cpu_offload_gb: Some(quarters as f64 / 4.0), ..at_context.clone() };
    // The limit: every weight one GPU holds without any offload the user asked for.
    let unoffloaded = PlanArgs { cpu_offload_gb: None, ..at_context.clone() };
    let weight_quarters = match base.request.engine.as_str() {
        "vllm" => {
            plan_report_on(&model, &unoffloaded, Some(gpu), calibration.as_ref())?.memory.weights.0.div_ceil(1 << 28)
        }
        _ => 0,
    };
    let min_offload = (base.request.engine == "vllm")
        .then(|| smallest(weight_quarters, |q| search.fits_with(&with_offload(q))))
        .flatten();
    let offload_decode = min_offload.and_then(|q| search.decode_with(&with_offload(q)).0);
    let fitted = llama_cpp
        .then(|| plan_report_on(&model, &PlanArgs { fit: true, ..args.clone() }, Some(gpu), calibration.as_ref()).ok())
        .flatten();
    let llama_fit = fitted
        .as_ref()
        .and_then(|r| r.basis.iter().find(|b| b.name == crate::plan::llama_fit::FITTED))
        .map(|b| b.value.clone());
    Ok(MaxReport {
        model: base.model.id.clone(),
        gpu: gpu.0.id.clone(),
        gpu_count: gpu.1,
        engine: base.request.engine.clone(),
        max_context: largest(CONTEXT_LIMIT, |c| search.fits(args, c, args.batch)),
        model_max_context: model.spec.max_context,
        model_layers: model.spec.num_layers,
        max_batch: largest(BATCH_LIMIT, |b| search.fits(args, context, b)),
        max_concurrency: base.vllm.as_ref().map(|v| v.max_concurrency.floor() as u64),
        max_gpu_layers,
        ngl_output_last: args.ngl_output_last,
        llama_fit,
        llama_fit_decode_tokens_per_s: fitted.and_then(|r| r.throughput.decode_tokens_per_s),
        max_gpu_layers_decode_tokens_per_s: gpu_layers_decode,
        min_cpu_moe,
        min_cpu_moe_decode_tokens_per_s: cpu_moe_decode,
        min_cpu_offload_gb: min_offload.map(|q| q as f64 / 4.0),
        min_cpu_offload_decode_tokens_per_s: offload_decode,
        host_memory: host_a.or(host_b),
        context,
        batch: args.batch,
        engine_refusal: base.vllm.as_ref().and_then(|v| v.cannot_start.first().cloned()),
    })
}

fn listing(r: &MaxReport) -> Listing {
    let opt = |v: Option<u64>| v.map_or("does not fit".to_string(), |v| v.to_string());
    let refusal = r.engine_refusal.as_ref().map_or(String::new(), |why| format!("vLLM cannot start: {why}"));
    let mut rows = vec![
        vec![
            format!("max context at batch {}", r.batch),
            opt(r.max_context),
            format!("model trained to {}", r.model_max_context),
        ],
        vec![format!("max batch at context {}", r.context), opt(r.max_batch), refusal],
    ];
    if r.engine == "llama.cpp" {
        let layers = r.model_layers;
        let speed = |tps: Option<f64>| {
            let host = r.host_memory.as_ref().map_or(String::new(), |h| format!(", host RAM {h}"));
            tps.map_or(String::new(), |t| format!(" · decode {t:.1} tok/s{host}"))
        };
        let note = match r.max_gpu_layers {
            Some(n) if n > layers => {
                format!("every layer and the output layer{}", speed(r.max_gpu_layers_decode_tokens_per_s))
            }
            Some(n) => format!(
                "{} of {layers} layers{}; the rest run on the CPU{}",
                if r.ngl_output_last { n } else { n.saturating_sub(1) },
                if r.ngl_output_last || n == 0 { "" } else { " and the output layer" },
                speed(r.max_gpu_layers_decode_tokens_per_s)
            ),
            None => String::new(),
        };
        rows.push(vec![format!("max --n-gpu-layers at context {}", r.context), opt(r.max_gpu_layers), note]);
        if let Some(n) = r.min_cpu_moe {
            let note = if n == 0 {
                "every expert fits on the GPUs".to_string()
            } else {
                format!("of {layers} layers' routed experts in host RAM{}", speed(r.min_cpu_moe_decode_tokens_per_s))
            };
            rows.push(vec![format!("min --n-cpu-moe at context {}", r.context), n.to_string(), note]);
        }
        if let Some(fit) = &r.llama_fit {
            let note =
                format!("llama.cpp's default in llama-server and llama-cli{}", speed(r.llama_fit_decode_tokens_per_s));
            rows.push(vec!["--fit loads".into(), fit.clone(), note]);
        }
    }
    if r.engine == "vllm" && r.min_cpu_offload_gb.is_none() {
        let row = format!("min --cpu-offload-gb at context {}", r.context);
        rows.push(vec![row, "does not fit".into(), "not even with every decoder layer in host memory".into()]);
    }
    if let Some(gib) = r.min_cpu_offload_gb {
        let note = if gib == 0.0 {
            "every weight fits on the GPUs".to_string()
        } else {
            let speed =
                r.min_cpu_offload_decode_tokens_per_s.map_or(String::new(), |t| format!(" · decode {t:.1} tok/s"));
            format!("GiB per GPU of the first layers in host memory, read over PCIe every step{speed}")
        };
        rows.push(vec![format!("min --cpu-offload-gb at context {}", r.context), format!("{gib}"), note]);
    }
    if let Some(c) = r.max_concurrency {
        rows.push(vec![format!("vLLM concurrency at context {}", r.context), c.to_string(), String::new()]);
    }
    let gpus = if r.gpu_count > 1 { format!("{}× {}", r.gpu_count, r.gpu) } else { r.gpu.clone() };
    Listing {
        title: format!("{} on {gpus} ({})", r.model, r.engine),
        headers: vec!["limit", "value", "note"],
        rows,
        json: serde_json::Value::Null,
    }
}

#[cfg(test)]
mod tests {
    use super::{largest, smallest};

    #[test]
    fn smallest_finds_the_boundary() {
        assert_eq!(smallest(36, |n| n >= 17), Some(17));
        assert_eq!(smallest(36, |_| true), Some(0));
        assert_eq!(smallest(36, |_| false), None);
        assert_eq!(smallest(0, |_| true), Some(0));
    }

    #[test]
    fn largest_finds_the_boundary() {
        assert_eq!(largest(1 << 24, |n| n <= 12_345), Some(12_345));
        assert_eq!(largest(100, |_| true), Some(100));
        assert_eq!(largest(100, |_| false), None);
        assert_eq!(largest(1, |n| n <= 1), Some(1));
    }
}
