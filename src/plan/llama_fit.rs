//! llama.cpp's `--fit`: how llama-server and llama-cli choose the context and the layers' places
//! when the user leaves them unset (on by default since December 2025, PR #16653;
//! `common_fit_params` in common/fit.cpp since PR #22171). llama.cpp measures each candidate by
//! a dry run (the model and context allocated with `no_alloc`, per-device model + context +
//! compute bytes); here each candidate is planned instead, so the same search runs on the
//! plan's bytes. On one GPU:
//!
//! 1. **Check.** The plan at the trained context (`-c` unset means `n_ctx_train`) with every
//!    layer on the GPU: done when it leaves the margin (`-fitt`, 1,024 MiB) of the memory free
//!    after the CUDA context and other processes.
//! 2. **Context.** With `-c` unset, the plan at the minimum context (`-fitc`, 4,096) and a
//!    straight line between the two: the context where the line meets the target, rounded down
//!    to a multiple of 256 and never below the minimum. If that is above the minimum, done.
//!    Otherwise the minimum is kept and the layers move.
//! 3. **Layers.** With `-ngl`, `-ts`, `-ot` and `--n-cpu-moe` unset, layers from the back (the
//!    output layer first) go on the GPU: the most that meet the target, found by false position
//!    between none and all. A mixture of experts is filled first with its routed experts in host
//!    RAM ("dense-only" layers).
//! 4. **Experts.** When every dense-only layer fits, front layers get their experts back, the
//!    most that meet the target, again by false position.
//!
//! Worked example (tests/llama_cpp_fit.rs): Llama-3.1-8B in bf16 on an RTX 4090, 23,960 MiB
//! free after the CUDA context. At its trained 131,072 tokens it needs 30,926 MiB (16 GiB of it
//! the f16 cache), 7,990 MiB over the target; at 4,096 tokens 14,930 MiB. The line between
//! them meets the 22,936 MiB target at 67,584 tokens (rounded to 256), with every layer on the
//! GPU. Llama-3.1-70B Q4_K_M on the same card keeps 4,096 tokens and `-ngl 43`.
//!
//! Not modelled: llama.cpp then tries to place part of one more MoE layer on the GPU (its up,
//! or up and gate experts) or its shared experts in host RAM; fits on several GPUs (which also
//! choose the tensor split) are refused.

use super::engine::Engine;
use super::inference::{plan_inference, InferenceRequest};
use super::PlanError;
use crate::units::Bytes;
use std::ops::Range;

/// The basis row of a llama.cpp plan that does not fit without `--fit`: what `--fit` would
/// load it as at the same context.
pub const WOULD_LOAD: &str = "llama.cpp --fit would load";

/// `-fitt`: MiB each GPU keeps free by default.
pub const DEFAULT_MARGIN_MIB: u64 = 1024;
/// `-fitc`: the smallest context `--fit` chooses by default.
pub const DEFAULT_MIN_CONTEXT: u64 = 4096;
/// llama.cpp rounds a reduced context down to a multiple of this (per sequence), for its CUDA
/// backend.
const CONTEXT_ALIGN: u64 = 256;

/// What `--fit` may change and how much it keeps free.
#[derive(Clone, Debug, PartialEq)]
pub struct FitSettings {
    /// Memory each GPU must keep free (`-fitt`).
    pub margin: Bytes,
    /// The smallest context it chooses (`-fitc`).
    pub min_context: u64,
    /// The context was left unset (`-c` absent): it starts at the request's context (the
    /// trained one) and may fall to `min_context`.
    pub context_auto: bool,
    /// The placement was left unset (`-ngl`, `-ts`, `-ot`, `--n-cpu-moe`, `-sm row` absent):
    /// layers and experts may move to host RAM.
    pub placement_auto: bool,
}

/// What `--fit` chose, and why, as llama.cpp would log it.
#[derive(Clone, Debug, PartialEq)]
pub struct FitOutcome {
    /// Tokens per sequence.
    pub context: u64,
    /// `-ngl` as llama.cpp counts it (decoder layers from the back, the output layer first);
    /// `None` when every layer stays on the GPU.
    pub gpu_layers: Option<u64>,
    /// Decoder layers whose routed experts stay in host RAM.
    pub cpu_moe: Range<u64>,
    /// The decisions, one line each.
    pub steps: Vec<String>,
    /// Why it gave up before meeting the margin, when it did (llama.cpp then loads what it
    /// chose so far).
    pub failure: Option<String>,
}

/// Layers one GPU holds in llama.cpp's terms (`ngl_t` in common/fit.cpp): `n_layer` from the
/// back counting the output layer as one, of which `n_part` keep their routed experts in host
/// RAM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Layers {
    n_layer: u64,
    n_part: u64,
}

impl Layers {
    fn n_full(self) -> u64 {
        self.n_layer - self.n_part
    }
}

/// One candidate's bytes on the GPU beyond the CUDA context: what llama.cpp's dry run
/// reports (model + context + compute buffers).
struct Search<'r, 'a> {
    req: &'r InferenceRequest<'a>,
    /// The most a candidate may use: free memory less the margin.
    target: i64,
    num_layers: u64,
}

impl Search<'_, '_> {
    fn used(&self, context: u64, placement: Option<Layers>, all_experts_on_host: bool) -> Result<i64, PlanError> {
        let mut req = self.req.clone();
        req.context = context;
        if let Some(p) = placement {
            let (gpu_layers, cpu_moe) = self.options(p);
            req.options.gpu_layers = gpu_layers;
            req.options.cpu_moe = cpu_moe;
        }
        if all_experts_on_host {
            req.options.cpu_moe = 0..self.num_layers;
        }
        let plan = plan_inference(&req)?;
        let gpu = &plan.per_gpu[0].memory;
        Ok(gpu.total.0 as i64 - gpu.cuda_context.0 as i64)
    }

    /// `-ngl` and the expert overrides of a placement, as `set_ngl_tensor_split_tbo` writes
    /// them: overrides start `n_full` units after `hp_ngl + 1 − ngl` (one past the first GPU
    /// layer when the output layer stays on the host).
    fn options(&self, p: Layers) -> (Option<u64>, Range<u64>) {
        let l = self.num_layers;
        let first = l + 1 - p.n_layer + p.n_full();
        let cpu_moe = first.min(l)..(first + p.n_part).min(l);
        let gpu_layers = (p.n_layer <= l).then_some(p.n_layer);
        (gpu_layers, cpu_moe)
    }

    fn mib(bytes: i64) -> i64 {
        bytes / (1 << 20)
    }
}

/// Runs llama.cpp's `--fit` on the request's one GPU: the context and placement it loads with.
pub fn fit(req: &InferenceRequest, settings: &FitSettings) -> Result<FitOutcome, PlanError> {
    let device = req.device.as_ref().filter(|_| req.engine == Engine::LlamaCpp);
    let Some(device) = device else {
        return Err(PlanError::Unsupported {
            what: "fit",
            value: "here".into(),
            fix: "--fit is llama.cpp's search of one GPU's memory: add --engine llama.cpp and --gpu",
        });
    };
    if device.count > 1 {
        return Err(PlanError::Unsupported {
            what: "fit",
            value: format!("on {} GPUs", device.count),
            fix: "llama.cpp's fit over several GPUs also chooses the tensor split, which is not modelled: plan one GPU, or set --n-gpu-layers",
        });
    }
    let plan = plan_inference(req)?;
    let context_bytes = plan.per_gpu[0].memory.cuda_context;
    let free = device.capacity.0 as i64 - device.in_use.0 as i64 - context_bytes.0 as i64;
    let margin = settings.margin.0 as i64;
    let s = Search { req, target: free - margin, num_layers: req.spec.num_layers };
    let mib = Search::mib;
    let mut out = FitOutcome {
        context: req.context,
        gpu_layers: req.options.gpu_layers,
        cpu_moe: req.options.cpu_moe.clone(),
        steps: Vec::new(),
        failure: None,
    };

    // Step 1: the request as given (the trained context when -c is unset).
    let used = s.used(req.context, None, false)?;
    out.steps.push(format!("projected to use {} MiB of device memory vs. {} MiB free", mib(used), mib(free)));
    if free - used >= margin {
        out.steps.push(format!("will leave {} >= {} MiB free: no changes needed", mib(free - used), mib(margin)));
        return Ok(out);
    }
    out.steps.push(format!(
        "cannot meet the free memory target of {} MiB: {} MiB too much",
        mib(margin),
        mib(used - s.target)
    ));

    // Step 2: a shorter context, along the line between the minimum and the trained one.
    let streams = req.batch;
    if !settings.context_auto {
        out.steps.push(format!("context size set by user to {} -> no change", req.context));
    } else if req.context <= settings.min_context {
        out.steps.push(format!(
            "default model context size is {} which is <= the min. context size of {} -> no change",
            req.context, settings.min_context
        ));
    } else {
        let used_min = s.used(settings.min_context, None, false)?;
        let (max_total, min_total) = (req.context * streams, settings.min_context * streams);
        out.context = settings.min_context;
        if s.target > used_min && used > used_min {
            let step = (max_total - min_total) as i128 * (s.target - used_min) as i128 / (used - used_min) as i128;
            let total = min_total + step as u64;
            let total = (total - total % (CONTEXT_ALIGN * streams)).max(min_total);
            out.context = total / streams;
            out.steps
                .push(format!("context size reduced from {} to {}: the entire model fits", req.context, out.context));
            return Ok(out);
        }
        out.steps.push(format!(
            "context size reduced from {} to {} -> {} MiB less, not enough",
            req.context,
            out.context,
            mib(used - used_min)
        ));
    }

    // Steps 3 and 4: layers and experts to host RAM.
    if !settings.placement_auto {
        out.failure = Some("the placement was set by the user (--n-gpu-layers, --n-cpu-moe, --split tensor): llama.cpp aborts the fit there and loads it as set".into());
        return Ok(out);
    }
    let context = out.context;
    let moe = req.spec.moe.is_some() && req.weights.routed_experts > Bytes::ZERO;
    let surplus_dense_only = if moe { s.target - s.used(context, None, true)? } else { 0 };
    if moe {
        out.steps.push(if surplus_dense_only > 0 {
            format!("with only dense weights on the GPU there is a surplus of {} MiB", mib(surplus_dense_only))
        } else {
            format!("with only dense weights on the GPU there is still a deficit of {} MiB", mib(-surplus_dense_only))
        });
    }
    let measure = |p: Layers| s.used(context, Some(p), false);

    // Step 3: dense (or dense-only) layers from the back, by false position.
    let all = s.num_layers + 1;
    let none = Layers { n_layer: 0, n_part: 0 };
    let every = Layers { n_layer: all, n_part: if moe { all - 1 } else { 0 } };
    let (mut low, mut mem_low) = search(
        (none, measure(none)?),
        (every, measure(every)?),
        s.target,
        |low, high| high.n_layer - low.n_layer,
        |low, step| Layers {
            n_layer: low.n_layer + step,
            // The first unit is the output layer, which is always whole.
            n_part: if !moe {
                0
            } else if low.n_part == 0 {
                step - 1
            } else {
                low.n_part + step
            },
        },
        measure,
    )?;
    out.steps.push(format!(
        "-ngl {}{}: {} MiB used, {} MiB free",
        low.n_layer,
        if moe { " with the routed experts in host RAM" } else { "" },
        mib(mem_low),
        mib(free - mem_low)
    ));

    // Step 4: experts back into the front layers while they fit.
    if moe && surplus_dense_only > 0 && low.n_layer > 0 {
        let whole = Layers { n_layer: low.n_layer, n_part: 0 };
        (low, mem_low) = search(
            (low, mem_low),
            (whole, measure(whole)?),
            s.target,
            |low, high| high.n_full() - low.n_full(),
            |low, step| Layers { n_layer: low.n_layer, n_part: low.n_part - step.min(low.n_part) },
            measure,
        )?;
        let (_, host) = s.options(low);
        out.steps.push(format!(
            "{} layers' routed experts left in host RAM: {} MiB used, {} MiB free",
            host.end - host.start,
            mib(mem_low),
            mib(free - mem_low)
        ));
    }
    let (gpu_layers, cpu_moe) = s.options(low);
    out.gpu_layers = gpu_layers;
    out.cpu_moe = cpu_moe;
    Ok(out)
}

/// llama.cpp's method of false position between a placement within the target (`low`, with its
/// bytes) and a larger one (`high`): taken whole when it is within the target too; otherwise
/// each guess interpolates the bytes per unit between the bounds, replaces the bound it falls
/// on, and the search stops one unit (`gap`) short of the high bound. `advance` moves `step`
/// units up from the low bound.
fn search(
    low: (Layers, i64),
    high: (Layers, i64),
    target: i64,
    gap: impl Fn(Layers, Layers) -> u64,
    advance: impl Fn(Layers, u64) -> Layers,
    measure: impl Fn(Layers) -> Result<i64, PlanError>,
) -> Result<(Layers, i64), PlanError> {
    let ((mut low, mut mem_low), (mut high, mut mem_high)) = (low, high);
    if mem_high <= target {
        return Ok((high, mem_high));
    }
    while gap(low, high) > 1 {
        let test = advance(low, false_position(gap(low, high), target - mem_low, mem_high - mem_low));
        let mem = measure(test)?;
        if mem <= target {
            (low, mem_low) = (test, mem);
        } else {
            (high, mem_high) = (test, mem);
        }
    }
    Ok((low, mem_low))
}

/// The method of false position's next step within `delta` layers: the share of the memory
/// between the bounds that is left under the target, at least 1 and short of the high bound.
fn false_position(delta: u64, below_target: i64, between: i64) -> u64 {
    let step =
        if between > 0 { (delta as i128 * below_target as i128 / between as i128).max(0) as u64 } else { delta - 1 };
    step.clamp(1, delta - 1)
}
