//! Training speed: the FLOPs of one optimizer step, the time the GPUs need for them, the
//! optimizer's own memory-bound pass and the data-parallel communication.
//!
//! FLOPs of one micro-batch of `T = batch · seq` tokens (formulas.md §4.6, Kaplan et al. 2020;
//! Narayanan et al. 2021):
//! - forward `2·N_active·T`; backward `4·N_active·T` for fully trained weights (input and weight
//!   gradients), `2·N_active·T` for frozen LoRA / QLoRA bases (input gradients only), plus the
//!   adapters' own `6·A·T`;
//! - causal attention: forward `Σ_layers pairs·2·n_h·(d_qk+d_v)` per sequence (`2·L·s²·h` for
//!   Llama), backward twice that;
//! - full checkpointing runs the forward once more (selective: the attention core once more);
//! - DPO trains on two sequences per pair (chosen, rejected) after a frozen reference's no-grad
//!   forward over both: `2·N·T` and one attention forward more (Rafailov et al. 2023).
//!
//! Time on one GPU: GEMM FLOPs at the measured large-GEMM fraction of peak (771 of 989 TFLOPS on
//! an H200), plus the non-GEMM kernels (norms, activations, rotary, residuals, attention
//! inefficiency) as bytes per layer, token and hidden unit at the achieved bandwidth, plus host
//! time per LoRA adapter, plus QLoRA's dequantization passes, plus the optimizer step (foreach
//! AdamW: 21 element reads/writes per trainable parameter), plus the communication not hidden
//! behind the backward pass.
//!
//! Worked example, Llama-2-7B full fine-tune in bf16, 1,024 tokens on one H200:
//! FLOPs = 6·6,738,415,616·1,024 + 3·32·1,024²/2·16,384 = 4.140e13 + 8.25e11 = 4.223e13;
//! GEMMs 4.223e13 / 771.7e12 = 54.7 ms; non-GEMM 1,280·32·1,024·4,096 B / 4,248 GB/s = 40.4 ms;
//! AdamW 21·2·6.74e9 B / 4,248 GB/s = 66.6 ms; step 161.8 ms, 6,330 tok/s (measured 186 ms,
//! 5,504 tok/s; train.json).

use super::super::basis::BasisLog;
use super::super::device::{DeviceSpeed, LinkKind};
use super::super::training::{Checkpointing, Optimizer, Parallel};
use super::efficiency::{Efficiency, Factor};
use super::work::{mixing_flops, Params};
use crate::model::spec::ModelSpec;
use serde::Serialize;

/// InfiniBand NDR: 400 Gb/s = 50 GB/s per GPU and direction (one ConnectX-7 per GPU, NVIDIA DGX
/// H100 user guide, "Network ports").
pub const DEFAULT_INTER_NODE_GB_S: f64 = 50.0;

/// How the policy's weights are trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Trained {
    Full,
    /// Frozen base with adapters: `params` adapter parameters on `matrices` adapted matrices.
    Lora {
        params: u64,
        matrices: u64,
    },
}

/// A 4-bit base that is dequantized before each GEMM (QLoRA, bitsandbytes).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantizedBase {
    /// Stored bytes of the quantized decoder-layer weights.
    pub stored_bytes: f64,
    /// Elements those weights expand to (written as 2-byte values per pass).
    pub elements: f64,
    /// Quantized linear layers (one dequantization kernel each per pass).
    pub linears: u64,
}

/// Everything the training speed depends on.
#[derive(Clone, Debug)]
pub struct TrainSpeedRequest<'a> {
    pub spec: &'a ModelSpec,
    pub params: Params,
    pub trained: Trained,
    pub quantized: Option<QuantizedBase>,
    pub checkpointing: Checkpointing,
    pub optimizer: Optimizer,
    /// Trainable parameters (the optimizer's work).
    pub trainable: u64,
    /// Bytes per element of the optimizer's states and updated parameters (4 fp32, 2 bf16).
    pub state_bytes: f64,
    /// Bytes per element of the gradients the data-parallel ranks all-reduce.
    pub gradient_bytes: f64,
    /// Bytes of the 16-bit weights ZeRO-3 gathers (all GPUs' shards together).
    pub weight_bytes: f64,
    pub seq: u64,
    pub micro_batch: u64,
    pub grad_accum: u64,
    /// The layout over all nodes (`gpus` counts every GPU).
    pub parallel: Parallel,
    pub nodes: u64,
    /// Per GPU and direction between nodes.
    pub inter_node_bytes_per_s: f64,
    /// Gradient communication overlapped with the backward pass (and ZeRO-3 gathers with compute).
    pub overlap: bool,
    pub device: &'a DeviceSpeed,
    pub efficiency: &'a Efficiency,
    /// No-grad forward passes of frozen copies of the policy's architecture over the same tokens,
    /// per micro-batch (DPO's reference model: 1).
    pub frozen_forwards: u64,
    /// Layer inputs one GPU offloads to host RAM per micro-batch (`--checkpointing offload`):
    /// copied out in the forward pass and back in the backward pass over the host link,
    /// overlapped with the compute.
    pub offloaded_activation_bytes: f64,
}

/// The speed of one optimizer step, as rendered under `training_speed`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingSpeed {
    /// Seconds per optimizer step (all micro-batches of all data-parallel ranks).
    pub step_time_s: f64,
    /// Tokens per optimizer step, all GPUs together.
    pub tokens_per_step: u64,
    /// FLOPs executed per optimizer step, all GPUs together (recomputation included).
    pub flops_per_step: f64,
    /// Executed FLOPs ÷ (step time · GPUs · dense 16-bit peak).
    pub mfu: f64,
    /// Seconds of data-parallel and tensor-parallel communication per step.
    pub communication_s: f64,
    /// The part of `communication_s` not hidden behind compute.
    pub exposed_communication_s: f64,
    /// `--train-tokens`: seconds to train on that many tokens.
    pub time_to_train_s: Option<f64>,
    /// `--train-tokens`: GPU-hours × the catalog's hourly price, all GPUs.
    pub cost_usd: Option<f64>,
}

/// Measured or fitted constants of the training speed model.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainingEfficiency {
    /// Fraction of dense peak that training GEMMs reach.
    pub gemm: Factor,
    /// Non-GEMM traffic, bytes per layer, token and hidden unit (forward + backward).
    pub non_gemm_bytes: Factor,
    /// Host and launch time per adapted matrix and step (forward + backward).
    pub host_per_adapter_s: Factor,
    /// Fraction of the host link's peak that pinned host↔device copies reach (offloaded
    /// activations).
    pub host_copy: Factor,
}

impl TrainingEfficiency {
    pub fn defaults(gemm: Factor) -> TrainingEfficiency {
        TrainingEfficiency {
            gemm,
            non_gemm_bytes: Factor {
                value: 1280.0,
                source: "fitted to H200 full fine-tunes, Llama-2-7B ×1,024 (1,237) and TinyLlama 2×2,048 (1,340): \
                         fwd+bwd time beyond the GEMMs at 4,248 GB/s (train.json); those rows check consistency only"
                    .into(),
            },
            host_per_adapter_s: Factor {
                value: 0.18e-3,
                source: "H200 peft LoRA (train.json): r16 all-linear (224 adapters) is 29 ms slower per step than \
                         r8 q,v (64): 0.18 ms per adapter; those rows check consistency only"
                    .into(),
            },
            host_copy: Factor {
                value: 0.8,
                source: "NVIDIA's bandwidthTest: pinned copies reach about 25 of PCIe 4.0 x16's 31.5 GB/s; not yet measured here"
                    .into(),
            },
        }
    }
}

/// Element reads + writes per trainable parameter of one optimizer step. torch foreach AdamW:
/// mul(p) 2, lerp(m, g) 3, mul(v) 2, addcmul(v, g, g) 4, sqrt 2, div 2, add 2, addcdiv(p, m, √v) 4 = 21
/// (torch/optim/adam.py `_multi_tensor_adam`). bitsandbytes 8-bit: one fused kernel reading and
/// writing p, g and two 1-byte states (about 5 parameter-sized accesses); its 32-bit kernel the
/// same with fp32 states (p read and written, g read: 3, plus 16 B of m and v in
/// parameter-sized units: 11 for bf16 parameters); SGD momentum 6; Lion 8; Adafactor 10
/// (row/column statistics, update, clip, apply) — estimated from the updates.
fn optimizer_accesses(o: Optimizer, state_bytes: f64) -> f64 {
    match o {
        Optimizer::Adamw => 21.0,
        Optimizer::Adamw8bit | Optimizer::PagedAdamw8bit => 5.0,
        Optimizer::PagedAdamw32bit => 3.0 + 16.0 / state_bytes,
        Optimizer::Sgd => 6.0,
        Optimizer::Lion => 8.0,
        Optimizer::Adafactor => 10.0,
    }
}

/// FLOPs of one micro-batch: `(GEMM-class FLOPs, attention FLOPs)`, recomputation included.
///
/// Llama-2-7B full fine-tune, 1 × 1,024 tokens: linear 6·6,738,415,616·1,024 = 4.140e13,
/// attention 3·32·1,024²/2·16,384 = 8.25e11.
/// (linear, attention) FLOPs of one plain forward over a micro-batch: `2·N_active·T` and the
/// causal attention forward.
pub fn forward_flops(req: &TrainSpeedRequest) -> (f64, f64) {
    let tokens = (req.seq * req.micro_batch) as f64;
    let attn_fwd = mixing_flops(req.spec, req.seq) * req.micro_batch as f64;
    (2.0 * req.params.active as f64 * tokens, attn_fwd)
}

pub fn micro_batch_flops(req: &TrainSpeedRequest) -> (f64, f64) {
    let tokens = (req.seq * req.micro_batch) as f64;
    let n = req.params.active as f64;
    let (backward, adapters) = match req.trained {
        Trained::Full => (4.0 * n, 0.0),
        Trained::Lora { params, .. } => (2.0 * n, 6.0 * params as f64),
    };
    let attn_fwd = forward_flops(req).1;
    let (re_linear, re_attn) = match req.checkpointing {
        Checkpointing::Full | Checkpointing::Offload => (2.0 * n, attn_fwd),
        Checkpointing::Selective => (0.0, attn_fwd),
        Checkpointing::None => (0.0, 0.0),
    };
    ((2.0 * n + backward + re_linear) * tokens + adapters * tokens, 3.0 * attn_fwd + re_attn)
}

/// Seconds of gradient (and ZeRO-3 parameter) communication per step, and the part of the
/// backward it can hide behind. Ring all-reduce of `G` bytes over `d` ranks: `2(d−1)/d·G/link`
/// (Patarasuk & Yuan 2009); ZeRO-3 replaces it by a reduce-scatter `(d−1)/d·G` plus two
/// all-gathers of the weights `(d−1)/d·W` (forward and backward; Rajbhandari et al. 2020). The
/// slowest link of the ring sets the pace: NVLink/PCIe within a node, the NIC between nodes.
fn data_parallel_s(req: &TrainSpeedRequest) -> Option<f64> {
    let p = req.parallel;
    let dp = p.dp() as f64;
    if dp <= 1.0 {
        return Some(0.0);
    }
    let intra = if p.gpus / req.nodes.max(1) > 1 { Some(req.device.link?.bandwidth_per_direction.0) } else { None };
    let inter = (req.nodes > 1).then_some(req.inter_node_bytes_per_s);
    let bw = match (intra, inter) {
        (Some(a), Some(b)) => a.min(b),
        (a, b) => a.or(b)?,
    };
    let shard = (p.tp * p.pp) as f64;
    let grads = req.trainable as f64 * req.gradient_bytes / shard;
    let frac = (dp - 1.0) / dp;
    let bytes = if p.zero >= 3 { frac * grads + 2.0 * frac * req.weight_bytes / shard } else { 2.0 * frac * grads };
    // Latency: a base per collective and a hop per ring step (NCCL's model; vendor-link hops
    // between nodes), small beside gigabytes of gradients.
    let hop = req.device.link.filter(|_| req.nodes <= 1).map_or(LinkKind::Other, |l| l.kind).allreduce_hop_s();
    let (collectives, steps) = if p.zero >= 3 { (3.0, 3.0 * (dp - 1.0)) } else { (1.0, 2.0 * (dp - 1.0)) };
    Some(bytes / bw + collectives * req.efficiency.allreduce_base_s.value + steps * hop)
}

/// Tensor-parallel activation all-reduces: 2 per layer forward, 2 backward (Megatron), each
/// `2(t−1)/t·(b·s·h·2 B)/link`; never overlapped.
fn tensor_parallel_s(req: &TrainSpeedRequest) -> Option<f64> {
    let tp = req.parallel.tp as f64;
    if tp <= 1.0 {
        return Some(0.0);
    }
    let link = req.device.link?;
    let act = (req.micro_batch * req.seq * req.spec.hidden_size * 2) as f64;
    // Two all-reduces (forward and backward) after each mixer and each MLP.
    let all_reduces = 2.0 * req.spec.sublayers() as f64 / req.parallel.pp as f64;
    let per = 2.0 * (tp - 1.0) / tp * act / link.bandwidth_per_direction.0
        + super::allreduce_latency_s(req.efficiency, link.kind, tp);
    Some(all_reduces * per * req.grad_accum as f64)
}

/// The speed of one optimizer step, or `None` where the GPU lacks a TFLOPS figure or a needed link.
pub fn train_speed(req: &TrainSpeedRequest, t: &TrainingEfficiency, basis: &mut BasisLog) -> Option<TrainingSpeed> {
    let p = req.parallel;
    let peak = req.device.peak_16bit?.0;
    let bw = req.device.bandwidth.0 * req.efficiency.bandwidth.value;
    let split = (p.tp * p.pp) as f64;
    let micro = req.grad_accum as f64;
    let (linear, attention) = micro_batch_flops(req);
    let recompute = if req.checkpointing.recomputes() { 4.0 / 3.0 } else { 1.0 };
    let tokens_mb = (req.seq * req.micro_batch) as f64;
    let gemm_s = (linear + attention) / (peak * t.gemm.value);
    let spec = req.spec;
    // Per transformer layer's worth of norms, activations and residuals (Nemotron-H blocks: half).
    let layers = spec.sublayers() as f64 / 2.0;
    let non_gemm_s = t.non_gemm_bytes.value * layers * spec.hidden_size as f64 * tokens_mb * recompute / bw;
    let adapters = match req.trained {
        Trained::Lora { matrices, .. } => matrices as f64 * t.host_per_adapter_s.value * recompute,
        Trained::Full => 0.0,
    };
    let dequant = req.quantized.map_or(0.0, |q| {
        let passes = 2.0 + if req.checkpointing.recomputes() { 1.0 } else { 0.0 };
        let host = q.linears as f64 * req.efficiency.host_per_quantized_linear_s.value;
        passes * ((q.stored_bytes + 2.0 * q.elements) / bw + host)
    });
    // 1F1B pipeline bubble: (pp − 1) idle slots over `grad_accum` micro-batches.
    let bubble = 1.0 + (p.pp as f64 - 1.0) / micro;
    // Frozen models' no-grad forwards (DPO's reference): the forward's GEMMs, 2·N·T plus the
    // attention forward, and the forward's share of the non-GEMM traffic, a third (the backward
    // touches each activation about twice, as its FLOPs are twice the forward's).
    let frozen = req.frozen_forwards as f64;
    let (fwd_linear, fwd_attention) = forward_flops(req);
    let frozen_s = frozen * ((fwd_linear + fwd_attention) / (peak * t.gemm.value) + non_gemm_s / recompute / 3.0);
    // One micro-batch's compute on one GPU, and the step's.
    let per_micro = (gemm_s + non_gemm_s + dequant + frozen_s) / split + adapters / p.pp as f64;
    let compute_s = micro * bubble * per_micro;
    let opt_shard = (split * if p.zero >= 1 { p.dp() as f64 } else { 1.0 }).max(1.0);
    let optimizer_s =
        optimizer_accesses(req.optimizer, req.state_bytes) * req.state_bytes * req.trainable as f64 / opt_shard / bw;
    let dp_s = data_parallel_s(req)?;
    let tp_s = tensor_parallel_s(req)?;
    let window = if p.zero >= 3 { compute_s } else { compute_s * 2.0 / 3.0 };
    let exposed_dp = if req.overlap { (dp_s - window).max(0.0) } else { dp_s };
    // Offloaded checkpoints cross the host link out during the forward pass and back during the
    // backward pass, on their own stream: each direction hides behind its pass's compute, the
    // forward's share of the FLOPs (a quarter under recomputation).
    let copy_s = match req.device.host_link {
        Some(link) if req.offloaded_activation_bytes > 0.0 => {
            req.offloaded_activation_bytes / (link.0 * t.host_copy.value)
        }
        _ => 0.0,
    };
    let forward_share = (fwd_linear + fwd_attention) / (linear + attention);
    let exposed_offload =
        micro * ((copy_s - forward_share * per_micro).max(0.0) + (copy_s - (1.0 - forward_share) * per_micro).max(0.0));
    let step = compute_s + optimizer_s + tp_s + exposed_dp + exposed_offload;
    let dp = p.dp() as f64;
    let flops_per_step = (linear + attention + frozen * (fwd_linear + fwd_attention)) * micro * dp;
    let speed = TrainingSpeed {
        step_time_s: step,
        tokens_per_step: req.seq * req.micro_batch * req.grad_accum * p.dp(),
        flops_per_step,
        mfu: flops_per_step / (step * p.gpus as f64 * peak),
        communication_s: dp_s + tp_s,
        exposed_communication_s: exposed_dp + tp_s,
        time_to_train_s: None,
        cost_usd: None,
    };
    if copy_s > 0.0 {
        basis.add(
            "activation offload copies per micro-batch (ms)",
            format!("{:.1} out, {:.1} back, {:.1} exposed", copy_s * 1e3, copy_s * 1e3, exposed_offload / micro * 1e3),
            format!("layer inputs over the host link at {} of its peak ({}), each direction behind its pass's compute (a separate copy stream, as torchtune's, TRL's and Unsloth's; same-stream copies, as axolotl's legacy offload, add them all)", t.host_copy.value, t.host_copy.source),
        );
    }
    log_basis(req, t, &speed, optimizer_s, basis);
    Some(speed)
}

fn log_basis(req: &TrainSpeedRequest, t: &TrainingEfficiency, s: &TrainingSpeed, optimizer_s: f64, b: &mut BasisLog) {
    let rule = match req.trained {
        Trained::Full => "2·N forward + 4·N backward per token",
        Trained::Lora { .. } => "2·N forward + 2·N backward (frozen base: input gradients) + 6·A adapters",
    };
    b.add("training FLOPs per step", format!("{:.3e}", s.flops_per_step), format!("{rule}; attention 3× forward"));
    if req.frozen_forwards > 0 {
        b.add(
            "frozen forwards per micro-batch",
            req.frozen_forwards,
            "DPO: the reference model's no-grad forward over chosen and rejected (2·N·T + attention)",
        );
    }
    b.add("training GEMM efficiency", format!("{:.3}", t.gemm.value), t.gemm.source.clone());
    b.add("training non-GEMM bytes per layer·token·hidden", t.non_gemm_bytes.value, t.non_gemm_bytes.source.clone());
    if matches!(req.trained, Trained::Lora { .. }) {
        let h = &t.host_per_adapter_s;
        b.add("host time per LoRA adapter per step (ms)", format!("{:.2}", h.value * 1e3), h.source.clone());
    }
    b.add(
        "optimizer step (ms)",
        format!("{:.1}", optimizer_s * 1e3),
        format!(
            "{} element accesses per trainable parameter at achieved bandwidth",
            optimizer_accesses(req.optimizer, req.state_bytes)
        ),
    );
    if req.parallel.dp() > 1 {
        let how = if req.overlap { "overlapped with backward" } else { "not overlapped (--no-overlap)" };
        b.add("data-parallel communication (ms)", format!("{:.1}", s.communication_s * 1e3), how);
    }
    if req.nodes > 1 {
        b.add(
            "inter-node bandwidth (per GPU, per direction)",
            format!("{:.1} GB/s", req.inter_node_bytes_per_s / 1e9),
            "--inter-node-gb-s (default: InfiniBand NDR 400 Gb/s per GPU, DGX H100 user guide)",
        );
    }
}

#[cfg(test)]
#[path = "training_tests.rs"]
mod tests;
