//! llama.cpp's `--fit`: how llama-server and llama-cli choose the context and the layers' places
//! when the user leaves them unset (on by default since December 2025, PR #16653;
//! `common_fit_params` in common/fit.cpp since PR #22171). llama.cpp measures each candidate by
//! a dry run (the model and context allocated with `no_alloc`, per-device model + context +
//! compute bytes); here each candidate is planned instead, so the same search runs on the
//! plan's bytes:
//!
//! 1. **Check.** The plan at the trained context (`-c` unset means `n_ctx_train`) with every
//!    layer on the GPUs: done when each GPU keeps the margin (`-fitt`, 1,024 MiB) of the memory
//!    free after the CUDA context and other processes.
//! 2. **Context.** When the GPUs together miss their targets and `-c` is unset: the plan at the
//!    minimum context (`-fitc`, 4,096) and a straight line between the two; the context where
//!    the line meets the summed target, rounded down to a multiple of 256 (per sequence: `--batch`
//!    sequences are planned as llama.cpp's unshared streams, `n_streams = n_seq_max`; llama-server's
//!    automatic slots share one cache, one stream) and never below the minimum. On one GPU, done
//!    whenever the line reaches the target, without planning that context again: memory that
//!    grows more slowly than the line (sliding-window layers, whose cache stops at the window)
//!    can end above the target, as in llama.cpp (Olmo-3-7B Q4_K_M, three sequences, on an RTX
//!    3060 with `-fitt 0`: 111 MiB short). On several, the target is first
//!    lowered by (GPUs + 1) × a layer's weights ÷ 2 (÷ 6 for a mixture of experts), for the
//!    whole layers each GPU wastes, and the layers are then placed anyway. Where the line does
//!    not reach the target, the minimum is kept.
//! 3. **Layers.** With `-ngl`, `-ts`, `-ot` and `--n-cpu-moe` unset, the GPUs are filled from
//!    the last (which takes the output layer, counted as one) to the first: on each, the most
//!    of the layers left that meet its target, found by false position between what it has and
//!    all of them. A mixture of experts is filled with its routed experts in host RAM
//!    ("dense-only" layers).
//! 4. **Experts.** When every dense-only layer fits, the GPUs from the first on take layers
//!    back whole, experts included, the most that meet each one's target, again by false
//!    position; the dense-only layers left keep their experts in host RAM.
//!
//! Worked example (tests/llama_cpp_fit.rs): Llama-3.1-8B in bf16 on an RTX 4090, 23,960 MiB
//! free after the CUDA context. At its trained 131,072 tokens it needs 30,926 MiB (16 GiB of it
//! the f16 cache), 7,990 MiB over the target; at 4,096 tokens 14,930 MiB. The line between
//! them meets the 22,936 MiB target at 67,584 tokens (rounded to 256), with every layer on the
//! GPU. Llama-3.1-70B Q4_K_M on the same card keeps 4,096 tokens and `-ngl 43`.
//!
//! Not modelled: after step 4 llama.cpp tries to place part of one more MoE layer on a GPU
//! (its up, or up and gate experts, overflowing to the next GPU) or that layer's shared experts
//! in host RAM: at most one layer's experts.

use super::engine::{Engine, LayerSet};
use super::inference::{plan_inference, InferenceRequest};
use super::PlanError;
use crate::units::Bytes;

/// The basis row of a llama.cpp plan that does not fit without `--fit`: what `--fit` would
/// load it as at the same context.
pub const WOULD_LOAD: &str = "llama.cpp --fit would load";

/// The basis row of a plan made with `--fit`: what llama.cpp loads.
pub const FITTED: &str = "llama.cpp --fit";
/// The basis row of a fit that stopped before placing layers, and why.
pub const STOPPED: &str = "llama.cpp --fit stopped";

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
    /// `-ngl`: units from the back on the GPUs, the output layer first; `None` when every layer
    /// and the output layer are there.
    pub gpu_layers: Option<u64>,
    /// Layers per GPU, the output layer counted on the last (`-ts` as `--fit` writes it); `None`
    /// on one GPU or when the placement was left as requested.
    pub layer_split: Option<Vec<u64>>,
    /// Decoder layers whose routed experts stay in host RAM.
    pub cpu_moe: LayerSet,
    /// The decisions, one line each.
    pub steps: Vec<String>,
    /// Why it stopped before placing layers, when it did (llama.cpp then loads what it chose so
    /// far).
    pub failure: Option<String>,
}

impl FitOutcome {
    /// Puts the chosen context and placement into `req`.
    pub fn apply(&self, req: &mut InferenceRequest) {
        req.context = self.context;
        req.options.gpu_layers = self.gpu_layers;
        req.options.layer_split = self.layer_split.clone();
        req.options.cpu_moe = self.cpu_moe.clone();
    }
}

/// A request's context and placement as llama.cpp's flags: `-c 4096 -ngl 43` (`-c` counts every
/// sequence's tokens, `-np` the sequences), `-ts 40,41` with a layer split, and the layers whose
/// routed experts stay in host RAM.
pub fn flags(req: &InferenceRequest) -> String {
    let ngl = req.options.gpu_layers.unwrap_or(req.spec.num_layers + 1);
    let mut flags = format!("-c {} -ngl {ngl}", req.context * req.batch);
    if req.batch > 1 {
        flags += &format!(" -np {}", req.batch);
    }
    if let Some(split) = &req.options.layer_split {
        flags += &format!(" -ts {}", split.iter().map(u64::to_string).collect::<Vec<_>>().join(","));
    }
    if !req.options.cpu_moe.is_empty() {
        flags += &format!(", experts of layers {} in host RAM", req.options.cpu_moe);
    }
    flags
}

/// Layers one GPU holds in llama.cpp's terms (`ngl_t` in common/fit.cpp): `n_layer` units (the
/// last GPU's last unit is the output layer when all are placed), of which the last `n_part`
/// keep their routed experts in host RAM.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Layers {
    n_layer: u64,
    n_part: u64,
}

impl Layers {
    fn n_full(self) -> u64 {
        self.n_layer - self.n_part
    }
}

/// A placement: one `Layers` per GPU.
type Placement = Vec<Layers>;

/// A candidate's bytes per GPU beyond the CUDA context (what llama.cpp's dry run reports as
/// model + context + compute), and the weights among them.
#[derive(Clone, Debug)]
struct Measured {
    used: Vec<i64>,
    model: i64,
    /// The CUDA context each GPU holds besides.
    cuda_context: i64,
}

struct Search<'r, 'a> {
    req: &'r InferenceRequest<'a>,
    gpus: usize,
    num_layers: u64,
}

impl Search<'_, '_> {
    /// The plan at `context` with `placement` (or the request's own), optionally with every
    /// routed expert in host RAM.
    fn measure(
        &self,
        context: u64,
        placement: Option<&[Layers]>,
        all_experts_on_host: bool,
    ) -> Result<Measured, PlanError> {
        let mut req = self.req.clone();
        req.context = context;
        if let Some(p) = placement {
            (req.options.gpu_layers, req.options.layer_split, req.options.cpu_moe) = self.options(p);
        }
        if all_experts_on_host {
            req.options.cpu_moe = LayerSet::first(self.num_layers);
        }
        let plan = plan_inference(&req)?;
        let mut used = vec![0; self.gpus];
        let (mut model, mut cuda_context) = (0, 0);
        for g in &plan.per_gpu {
            used[g.gpu_index as usize] = g.memory.total.0 as i64 - g.memory.cuda_context.0 as i64;
            model += g.memory.weights.0 as i64;
            cuda_context = g.memory.cuda_context.0 as i64;
        }
        Ok(Measured { used, model, cuda_context })
    }

    /// `-ngl`, the layer split and the expert overrides of a placement, as
    /// `set_ngl_tensor_split_tbo` writes them: the runs start at `i_gpu_start = hp_ngl + 1 −
    /// ngl`, and each GPU's overrides start `n_full` units into its run. So the unit kept whole on
    /// the last GPU is the first layer of its run, and the output layer (the last unit, with no
    /// experts) is among its "partial" units: the range is clipped to the decoder layers.
    fn options(&self, p: &[Layers]) -> (Option<u64>, Option<Vec<u64>>, LayerSet) {
        let l = self.num_layers;
        let total: u64 = p.iter().map(|d| d.n_layer).sum();
        let mut at = l + 1 - total;
        let mut ranges = Vec::new();
        for d in p {
            at += d.n_full();
            ranges.push(at.min(l)..(at + d.n_part).min(l));
            at += d.n_part;
        }
        let split = (p.len() > 1).then(|| p.iter().map(|d| d.n_layer).collect());
        ((total <= l).then_some(total), split, LayerSet::new(ranges))
    }
}

/// Runs llama.cpp's `--fit` on the request's GPUs: the context and placement it loads with.
pub fn fit(req: &InferenceRequest, settings: &FitSettings) -> Result<FitOutcome, PlanError> {
    let Some(device) = req.device.as_ref().filter(|_| req.engine == Engine::LlamaCpp) else {
        return Err(PlanError::Unsupported {
            what: "fit",
            value: "here".into(),
            fix: "--fit is llama.cpp's search of the GPUs' free memory: add --engine llama.cpp and --gpu",
        });
    };
    let gpus = device.count as usize;
    let s = Search { req, gpus, num_layers: req.spec.num_layers };
    // Step 1: the request as given (the trained context when -c is unset).
    let full = s.measure(req.context, None, false)?;
    let free = device.capacity.0 as i64 - device.in_use.0 as i64 - full.cuda_context;
    let margin = settings.margin.0 as i64;
    let target = free - margin;
    let mib = |bytes: i64| bytes / (1 << 20);
    let mut out = FitOutcome {
        context: req.context,
        gpu_layers: req.options.gpu_layers,
        layer_split: req.options.layer_split.clone(),
        cpu_moe: req.options.cpu_moe.clone(),
        steps: Vec::new(),
        failure: None,
    };

    let sum_used: i64 = full.used.iter().sum();
    let sum_target = target * gpus as i64;
    out.steps.push(format!(
        "projected to use {} MiB of device memory vs. {} MiB free",
        mib(sum_used),
        mib(free * gpus as i64)
    ));
    if full.used.iter().all(|&u| u <= target) {
        out.steps.push(format!("every GPU keeps {} MiB free: no changes needed", mib(margin)));
        return Ok(out);
    }

    // Step 2: a shorter context, along the line between the minimum and the trained one.
    if sum_used > sum_target {
        out.steps.push(format!(
            "cannot meet the free memory target of {} MiB per GPU: {} MiB too much",
            mib(margin),
            mib(sum_used - sum_target)
        ));
        let streams = req.batch;
        if !settings.context_auto {
            out.steps.push(format!("context size set by user to {} -> no change", req.context));
        } else if req.context <= settings.min_context {
            out.steps.push(format!(
                "default model context size is {} which is <= the min. context size of {} -> no change",
                req.context, settings.min_context
            ));
        } else {
            let moe_divisor = if req.spec.moe.is_some() { 6 } else { 2 };
            // Several GPUs take whole layers: allow for what each wastes.
            // fit.cpp: the model's bytes over min(-ngl, layers) (all layers when -ngl is unset).
            let placed = req.options.gpu_layers.map_or(s.num_layers, |n| n.min(s.num_layers)).max(1);
            let waste = if gpus > 1 { (gpus as i64 + 1) * (full.model / placed as i64) / moe_divisor } else { 0 };
            let used_target = sum_target - waste;
            let used_min: i64 = s.measure(settings.min_context, None, false)?.used.iter().sum();
            let (max_total, min_total) = (req.context * streams, settings.min_context * streams);
            out.context = settings.min_context;
            if used_target > used_min && sum_used > used_min {
                let step =
                    (max_total - min_total) as i128 * (used_target - used_min) as i128 / (sum_used - used_min) as i128;
                let total = min_total + step as u64;
                out.context = (total - total % (CONTEXT_ALIGN * streams)).max(min_total) / streams;
                if gpus == 1 {
                    out.steps.push(format!(
                        "context size reduced from {} to {}: the entire model fits",
                        req.context, out.context
                    ));
                    return Ok(out);
                }
                out.steps.push(format!(
                    "context size reduced from {} to {}: the model should fit across the GPUs",
                    req.context, out.context
                ));
            } else {
                out.steps.push(format!(
                    "context size reduced from {} to {} -> {} MiB less, not enough",
                    req.context,
                    out.context,
                    mib(sum_used - used_min)
                ));
            }
        }
    }

    // Steps 3 and 4: layers and experts to host RAM.
    if !settings.placement_auto {
        out.failure = Some("the placement was set by the user (--n-gpu-layers, --n-cpu-moe, --split tensor): llama.cpp aborts the fit there and loads it as set".into());
        return Ok(out);
    }
    let context = out.context;
    let moe = req.spec.moe.is_some() && req.weights.routed_experts > Bytes::ZERO;
    let surplus_dense_only =
        if moe { sum_target - s.measure(context, None, true)?.used.iter().sum::<i64>() } else { 0 };
    if moe {
        out.steps.push(if surplus_dense_only > 0 {
            format!("with only dense weights on the GPUs there is a surplus of {} MiB", mib(surplus_dense_only))
        } else {
            format!("with only dense weights on the GPUs there is still a deficit of {} MiB", mib(-surplus_dense_only))
        });
    }
    let measure = |p: &[Layers]| s.measure(context, Some(p), false).map(|m| m.used);
    let last = gpus - 1;
    let log = |out: &mut FitOutcome, p: &[Layers], used: &[i64], id: usize| {
        out.steps.push(format!(
            // llama.cpp's own wording: units, of which the overflowing keep their experts on the
            // host (on the last GPU the output unit counts among them).
            "GPU {id}: {} layers ({} overflowing), {} MiB used, {} MiB free",
            p[id].n_layer,
            p[id].n_part,
            mib(used[id]),
            mib(free - used[id])
        ))
    };

    // Step 3: dense (or dense-only) layers from the back, the last GPU first.
    let mut placement: Placement = vec![Layers::default(); gpus];
    let mut used = measure(&placement)?;
    for id in (0..gpus).rev() {
        let unassigned = s.num_layers + 1 - placement[id + 1..].iter().map(|d| d.n_layer).sum::<u64>();
        let mut high = placement.clone();
        high[id] = Layers {
            n_layer: unassigned,
            n_part: if !moe {
                0
            } else if id < last {
                unassigned
            } else {
                unassigned - 1
            },
        };
        if unassigned > 0 {
            let high_used = measure(&high)?;
            (placement, used) = search(
                id,
                (placement, used),
                (high, high_used),
                target,
                |low, high| high[id].n_layer - low[id].n_layer,
                |low, step| {
                    let mut test = low.to_vec();
                    let d = &mut test[id];
                    d.n_layer += step;
                    if moe {
                        // fit.cpp: "the first layer is the output layer which must always be
                        // full": the last GPU keeps one unit whole (by index, its first layer).
                        d.n_part += if id == last && d.n_part == 0 { step - 1 } else { step };
                    }
                    test
                },
                measure,
            )?;
        }
        log(&mut out, &placement, &used, id);
    }

    // Step 4: experts back into the front layers, GPU by GPU, while they fit.
    if moe && surplus_dense_only > 0 {
        let mut dense_start = (0..gpus).rev().take_while(|&d| placement[d].n_layer > 0).last().unwrap_or(gpus);
        let mut id = 0;
        while id <= dense_start && dense_start < gpus {
            let mut high = placement.clone();
            for jd in dense_start..gpus {
                let moved = if jd < last { high[jd].n_layer } else { high[jd].n_layer - 1 };
                high[jd].n_layer -= moved;
                high[jd].n_part = 0;
                high[id].n_layer += moved;
            }
            let high_used = measure(&high)?;
            let start = dense_start;
            (placement, used) = search(
                id,
                (placement, used),
                (high, high_used),
                target,
                |low, high| high[id].n_full() - low[id].n_full(),
                |low, step| convert(low, id, start, step),
                measure,
            )?;
            log(&mut out, &placement, &used, id);
            dense_start = (start..gpus).find(|&d| placement[d].n_part > 0).unwrap_or(gpus);
            id += 1;
        }
    }
    (out.gpu_layers, out.layer_split, out.cpu_moe) = s.options(&placement);
    Ok(out)
}

/// Step 4's move of `step` dense-only layers, front first from GPU `from` on, to GPU `id` as
/// whole layers.
fn convert(placement: &[Layers], id: usize, from: usize, step: u64) -> Placement {
    let mut test = placement.to_vec();
    let mut converted = 0;
    for d in from..test.len() {
        let n = (step - converted).min(test[d].n_part);
        test[d].n_layer -= n;
        test[d].n_part -= n;
        test[id].n_layer += n;
        converted += n;
        if test[d].n_part > 0 {
            break;
        }
    }
    test
}

/// llama.cpp's method of false position for GPU `id`, between a placement within its target
/// (`low`, with the bytes per GPU) and a larger one (`high`): taken whole when it is within the
/// target too; otherwise each guess interpolates GPU `id`'s bytes per unit between the bounds,
/// replaces the bound it falls on, and the search stops one unit (`gap`) short of the high
/// bound. `advance` moves `step` units up from the low bound.
fn search(
    id: usize,
    low: (Placement, Vec<i64>),
    high: (Placement, Vec<i64>),
    target: i64,
    gap: impl Fn(&[Layers], &[Layers]) -> u64,
    advance: impl Fn(&[Layers], u64) -> Placement,
    measure: impl Fn(&[Layers]) -> Result<Vec<i64>, PlanError>,
) -> Result<(Placement, Vec<i64>), PlanError> {
    let ((mut low, mut low_used), (mut high, mut high_used)) = (low, high);
    if high_used[id] <= target {
        return Ok((high, high_used));
    }
    while gap(&low, &high) > 1 {
        let test = advance(&low, false_position(gap(&low, &high), target - low_used[id], high_used[id] - low_used[id]));
        let test_used = measure(&test)?;
        if test_used[id] <= target {
            (low, low_used) = (test, test_used);
        } else {
            (high, high_used) = (test, test_used);
        }
    }
    Ok((low, low_used))
}

/// The method of false position's next step within `delta` layers: the share of the memory
/// between the bounds that is left under the target, at least 1 and short of the high bound.
fn false_position(delta: u64, below_target: i64, between: i64) -> u64 {
    let step = match delta as i128 * below_target as i128 {
        // llama.cpp casts a negative guess (the low bound already over the target) to uint32_t:
        // a huge step, clamped to the last one below the high bound.
        _ if between <= 0 => delta - 1,
        guess if guess < 0 => delta - 1,
        guess => (guess / between as i128).min(delta as i128) as u64,
    };
    step.clamp(1, delta - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn false_position_steps_stay_inside_the_bounds() {
        // 40 units apart, a quarter of the bytes between the bounds left under the target: 10.
        assert_eq!(false_position(40, 250, 1000), 10);
        // Never the bounds themselves, whatever the bytes say (a negative guess wraps to the
        // high end, as llama.cpp's unsigned cast does).
        assert_eq!(false_position(40, -5, 1000), 39);
        assert_eq!(false_position(40, 2000, 1000), 39);
        assert_eq!(false_position(40, 10, 0), 39);
    }

    /// Step 4 takes dense-only layers from the front of the dense GPUs, GPU by GPU.
    #[test]
    fn converting_takes_dense_only_layers_front_first() {
        let p =
            vec![Layers { n_layer: 0, n_part: 0 }, Layers { n_layer: 3, n_part: 3 }, Layers { n_layer: 5, n_part: 4 }];
        let moved = convert(&p, 0, 1, 5);
        assert_eq!(moved[0], Layers { n_layer: 5, n_part: 0 });
        assert_eq!(moved[1], Layers { n_layer: 0, n_part: 0 });
        assert_eq!(moved[2], Layers { n_layer: 3, n_part: 2 });
    }
}
