//! Renderers: one file per output format. A plan becomes a `PlanReport` (the JSON contract of
//! DESIGN.md plus a few added fields); listings (`models`, `gpus`, `formats`, `inspect`) become
//! a `Listing` of headers and rows.

pub mod chart;
pub mod csv;
pub mod json;
pub mod markdown;
pub mod table;

use crate::plan::device::UnifiedLimit;
use crate::plan::throughput::training::TrainingSpeed;
use crate::plan::training::TrainingSummary;
use crate::plan::{Basis, Fit, GpuMemory, HostMemory, MemoryBreakdown, VllmReport};
use serde::Serialize;

/// What the model is, as the plan counted it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSummary {
    pub id: String,
    pub parameters: u64,
    pub active_parameters: u64,
    pub trainable_parameters: u64,
}

/// The workload the plan answers for.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestSummary {
    pub weights: String,
    pub kv_cache: String,
    pub context: u64,
    pub batch: u64,
    pub engine: String,
    pub mode: String,
    /// llama.cpp's ggml backend when `--backend` names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backend: Option<String>,
}

/// Speed estimates; null where they don't apply (no GPU, or a number the catalog lacks).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Throughput {
    /// Prompt tokens per second of the whole batch.
    pub prefill_tokens_per_s: Option<f64>,
    /// Generated tokens per second of the whole batch (`--batch` sequences).
    pub decode_tokens_per_s: Option<f64>,
    /// Prefill time of the whole batch, seconds.
    pub time_to_first_token_s: Option<f64>,
    pub train_tokens_per_s: Option<f64>,
    /// Seconds per decode step with the full context cached.
    #[serde(default)]
    pub inter_token_latency_s: Option<f64>,
    /// Generated tokens per second of one sequence.
    #[serde(default)]
    pub decode_tokens_per_s_per_sequence: Option<f64>,
    /// vLLM: sequences of `context` tokens the KV pool holds at once.
    #[serde(default)]
    pub max_concurrency: Option<f64>,
    /// Where measured speeds of setups like this one have landed: the planned speed times the
    /// 10th and 90th percentiles of measured ÷ planned over the records of this engine on this
    /// kind of GPU (data/speed-bands.toml). Absent without a GPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decode_range: Option<SpeedRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefill_range: Option<SpeedRange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_range: Option<SpeedRange>,
}

/// A range of tokens per second with the records it comes from.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpeedRange {
    pub low: f64,
    pub high: f64,
    pub basis: String,
}

/// A plan as rendered: field names are the stable JSON contract.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PlanReport {
    pub model: ModelSummary,
    pub request: RequestSummary,
    /// The busiest GPU's memory (all values per GPU).
    pub memory: MemoryBreakdown,
    pub per_gpu: Vec<GpuMemory>,
    pub fit: Option<Fit>,
    pub throughput: Throughput,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vllm: Option<VllmReport>,
    /// Host RAM besides the GPUs: weights and KV cache the engine keeps on the CPU.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<HostMemory>,
    /// Training runs: phases, per-model shares, host memory.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training: Option<TrainingSummary>,
    /// Training runs on a GPU: step time, tokens and FLOPs per step, MFU, communication.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub training_speed: Option<TrainingSpeed>,
    pub basis: Vec<Basis>,
}

/// A table of strings with a JSON twin (for `--format json`).
#[derive(Clone, Debug, PartialEq)]
pub struct Listing {
    pub title: String,
    pub headers: Vec<&'static str>,
    pub rows: Vec<Vec<String>>,
    pub json: serde_json::Value,
}

/// The memory table's rows: (component, GiB, share of total); the runtime's context is named
/// after the GPU's runtime (Metal on Apple silicon, HIP / Vulkan on AMD Radeon).
pub(crate) fn component_rows(r: &PlanReport) -> Vec<[String; 3]> {
    let memory = &r.memory;
    let runtime = r.fit.as_ref().map(|f| f.runtime).or(r.request.backend.as_deref()).unwrap_or("cuda");
    let context = format!("{runtime} context");
    let total = memory.total.0.max(1) as f64;
    let label = |name: &'static str| if name == "cuda context" { context.clone() } else { name.to_string() };
    let mut rows: Vec<[String; 3]> = memory
        .components()
        .into_iter()
        .filter(|(_, b)| b.0 > 0)
        .map(|(name, b)| [label(name), format!("{:.2}", b.gib()), format!("{:.1}%", 100.0 * b.0 as f64 / total)])
        .collect();
    rows.push(["total".into(), format!("{:.2}", memory.total.gib()), "100.0%".into()]);
    rows
}

/// One-line headline of a plan.
pub(crate) fn headline(r: &PlanReport) -> String {
    let backend = r.request.backend.as_ref().map_or(String::new(), |b| format!(" ({b})"));
    format!(
        "{} · {} weights · {} KV · context {} · batch {} · {}{backend}",
        r.model.id, r.request.weights, r.request.kv_cache, r.request.context, r.request.batch, r.request.engine
    )
}

/// The verdict sentence, or a note that no GPU was given; a llama.cpp plan that does not fit
/// says what llama.cpp's `--fit` would load instead.
pub(crate) fn verdict(r: &PlanReport) -> String {
    let memory = memory_verdict(r);
    let basis = r.basis.iter().find(|b| b.name == crate::plan::llama_fit::WOULD_LOAD);
    match basis {
        Some(b) => format!("{memory}; llama.cpp's --fit (on by default in llama-server and llama-cli) would load it as {}: add --fit to plan that", b.value),
        None => memory,
    }
}

fn memory_verdict(r: &PlanReport) -> String {
    let Some(fit) = &r.fit else {
        return "no --gpu given: memory only".to_string();
    };
    let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
    let head = fit.headroom_bytes as f64 / (1u64 << 30) as f64;
    let gpus = if fit.gpu_count > 1 { format!("{}× {}", fit.gpu_count, fit.gpu) } else { fit.gpu.clone() };
    let usable = match (fit.unified_memory_bytes, fit.unified_limit) {
        (Some(total), Some(UnifiedLimit::AmdgpuGtt)) => {
            format!("{:.2} GiB the GPU may map of the {:.2} GiB Linux sees", gib(fit.capacity_bytes), gib(total))
        }
        (Some(total), _) => {
            format!("{:.2} of {:.0} GiB unified memory the GPU may wire", gib(fit.capacity_bytes), gib(total))
        }
        (None, _) => format!("{:.2} GiB usable per GPU", gib(fit.capacity_bytes)),
    };
    let per_gpu = match fit.in_use_bytes {
        0 => usable,
        used => format!("{usable}, {:.2} GiB in use by others", gib(used)),
    };
    if fit.fits {
        format!("FITS on {gpus} ({per_gpu}): {head:.2} GiB headroom on the busiest GPU")
    } else if head >= 0.0 {
        format!("DOES NOT FIT on {gpus} ({per_gpu}): the memory adds up, but the engine cannot start (see the basis)")
    } else {
        let short = format!("DOES NOT FIT on {gpus} ({per_gpu}): {:.2} GiB short on the busiest GPU", -head);
        let needed = fit.capacity_bytes as i64 - fit.headroom_bytes;
        // The OS's limit, not the memory, stops it: say how to raise the limit.
        let (Some(total), Some(limit)) = (fit.unified_memory_bytes, fit.unified_limit) else { return short };
        if needed > total as i64 {
            return short;
        }
        let mib = (needed as u64).div_ceil(1 << 20);
        match limit {
            UnifiedLimit::MacosWiredLimit => format!(
                "{short}; raising macOS's GPU limit fits it (`sudo sysctl iogpu.wired_limit_mb={mib}`, then --wired-limit {:.2}), leaving {:.2} GiB to macOS and other apps",
                mib as f64 / 1024.0,
                gib(total - needed as u64)
            ),
            // amd-ttm takes whole GiB (of 262,144 pages of 4 KiB) up to the RAM Linux sees.
            UnifiedLimit::AmdgpuGtt => match (needed as u64).div_ceil(1 << 30) {
                whole if whole << 30 > total => short,
                whole => format!(
                    "{short}; raising amdgpu's GTT limit fits it (`sudo amd-ttm --set {whole}` or the kernel option ttm.pages_limit={}, then --gtt-limit {whole}), leaving {:.2} GiB to Linux and other apps",
                    whole << 18,
                    gib(total - (whole << 30))
                ),
            },
        }
    }
}

/// A paged optimizer's states, which the total leaves out: how much of them stays on the GPU
/// beside the peak and how much pages through host RAM each step; `None` without any.
pub(crate) fn paged_line(r: &PlanReport) -> Option<String> {
    let t = r.training.as_ref().filter(|t| t.paged_optimizer_bytes > 0)?;
    let gib = |b: u64| crate::units::Bytes(b).gib();
    let paged = t.paged_optimizer_bytes;
    let mut line = format!(
        "paged optimizer states: {:.2} GiB per GPU in CUDA unified memory, not in the total (on Linux evicted to host RAM when the GPU needs the room)",
        gib(paged)
    );
    if let Some(host) = t.paged_to_host_bytes {
        line = format!(
            "{line}: {:.2} GiB stay on the GPU beside the peak, {:.2} GiB page through host RAM each step (PCIe traffic the speed leaves out)",
            gib(paged - host),
            gib(host)
        );
    }
    Some(line)
}

/// One line of speeds, or `None` when the plan has none.
pub(crate) fn speed_line(r: &PlanReport) -> Option<String> {
    if let Some(s) = &r.training_speed {
        return Some(train_speed_line(s));
    }
    let t = &r.throughput;
    let decode = t.decode_tokens_per_s?;
    let mut line = format!(
        "speed: decode {decode:.1} tok/s ({:.1} per sequence, {:.1} ms per token)",
        t.decode_tokens_per_s_per_sequence.unwrap_or(decode),
        t.inter_token_latency_s.unwrap_or(0.0) * 1e3
    );
    match (t.prefill_tokens_per_s, t.time_to_first_token_s) {
        (Some(p), Some(ttft)) => line.push_str(&format!(" · prefill {p:.0} tok/s, first token after {:.3} s", ttft)),
        _ => line.push_str(" · prefill unknown (no TFLOPS for this GPU)"),
    }
    if let Some(c) = t.max_concurrency {
        line.push_str(&format!(" · vLLM concurrency {c:.1}"));
    }
    Some(line)
}

/// Where similar setups' measured speeds put this plan's: one line of likely ranges, each with
/// the records it comes from, or `None` without any.
pub(crate) fn likely_line(r: &PlanReport) -> Option<String> {
    let t = &r.throughput;
    let ranges: Vec<(&str, &SpeedRange)> =
        [("decode", &t.decode_range), ("prefill", &t.prefill_range), ("train", &t.train_range)]
            .into_iter()
            .filter_map(|(name, range)| Some((name, range.as_ref()?)))
            .collect();
    if ranges.is_empty() {
        return None;
    }
    let spans: Vec<String> = ranges
        .iter()
        .map(|(name, range)| {
            let digits = if range.high < 100.0 { 1 } else { 0 };
            format!("{name} {:.digits$}–{:.digits$} tok/s ({})", range.low, range.high, range.basis)
        })
        .collect();
    Some(format!("likely: {}; `headroom accuracy --bands`", spans.join(", ")))
}

/// One line of training speed: tokens/s, step, MFU, communication, and the `--train-tokens` time.
fn train_speed_line(s: &TrainingSpeed) -> String {
    let mut line = format!(
        "speed: train {:.0} tok/s ({} tokens per {:.3} s step, MFU {:.2}, communication {:.3} s of which {:.3} s exposed)",
        s.tokens_per_step as f64 / s.step_time_s,
        s.tokens_per_step,
        s.step_time_s,
        s.mfu,
        s.communication_s,
        s.exposed_communication_s
    );
    if let Some(t) = s.time_to_train_s {
        line.push_str(&format!(" · {:.1} h to train", t / 3600.0));
    }
    if let Some(c) = s.cost_usd {
        line.push_str(&format!(", US${c:.0}"));
    }
    line
}

/// Training plans: rows of (phase, moment, activations, gradients, total GiB) and of each
/// model's share (role, model, trainable, weights, gradients, optimizer GiB).
pub(crate) type Rows = Vec<Vec<String>>;

pub(crate) fn training_rows(r: &PlanReport) -> Option<(Rows, Rows)> {
    let t = r.training.as_ref()?;
    let gib = |b: u64| format!("{:.2}", b as f64 / (1u64 << 30) as f64);
    let phases = t
        .phases
        .iter()
        .map(|p| {
            let mark = if p.phase == t.peak_phase { " (peak)" } else { "" };
            let m = &p.memory;
            vec![
                format!("{}{mark}", p.phase),
                p.moment.clone(),
                gib(m.activations.0),
                gib(m.gradients.0),
                gib(m.total.0),
            ]
        })
        .collect();
    let models = t
        .models
        .iter()
        .map(|m| {
            vec![
                format!("{:?}", m.role).to_lowercase(),
                m.model.clone(),
                m.trainable_parameters.to_string(),
                gib(m.weights_bytes),
                gib(m.gradients_bytes),
                gib(m.optimizer_bytes),
            ]
        })
        .collect();
    Some((phases, models))
}
