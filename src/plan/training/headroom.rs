//! Training memory of headroom's own engine (`headroom validate --mode full`): one full
//! fine-tuning step with every buffer allocated before the step starts, so the peak is the sum
//! of the buffers rather than a moment of a dynamic allocator. States follow the planner's
//! mixed-precision accounting (2 B weight, 2 B gradient, 12 B master and AdamW m, v per
//! parameter); the activations are the tensors the engine's backward reads (validate/train.rs
//! saves the same list, and a test holds the two to the byte).
//!
//! Worked example, Llama-2-7B, one sequence of 1024 tokens (T), bf16: saved per layer
//! 2·T·(4h + 2q + 2kv + 3i) = 2·1024·(16,384 + 16,384 + 33,024) = 134,742,016 B, × 32 layers
//! plus the final residual and its norm (2·2·T·h = 16,777,216 B); scratch 2·T·(2h + 2q + 2kv +
//! 3i) = 117,964,800 B; workspace 32 MiB cuBLAS + logits 2·T·V = 65,536,000 B + ids, targets and
//! losses 12·T + RoPE tables 3·T·64·4 + attention row statistics 2·1·32·T·4.

use super::state::model_state;
use super::{Checkpointing, Method, Mode, PhaseMemory, Precision, TrainingError, TrainingRequest};
use crate::plan::basis::BasisLog;
use crate::plan::device::Generation;
use crate::plan::engine::{self, Engine};
use crate::plan::training::optimizer::Optimizer;
use crate::plan::MemoryBreakdown;
use crate::units::Bytes;

/// The engine's limits: what its training step runs.
pub(super) fn check(req: &TrainingRequest) -> Result<(), TrainingError> {
    let refuse = |what: String| {
        Err(TrainingError::EngineLimit(format!(
            "--engine headroom cannot run {what}: its training step is one model, fully trained, in mixed precision with AdamW stepped after the backward pass, on one GPU, without checkpointing; drop it or use --engine hf"
        )))
    };
    let m = &req.models[0];
    if req.mode != Mode::Full || m.method != Method::Full || req.models.len() > 1 {
        return refuse(format!("--mode {}", req.mode.id()));
    }
    if req.precision != Precision::Mixed {
        return refuse(format!("--precision {}", format!("{:?}", req.precision).to_lowercase()));
    }
    if req.optimizer != Optimizer::Adamw {
        return refuse(format!("--optimizer {}", req.optimizer.id()));
    }
    if req.optimizer_in_backward {
        return refuse("--optimizer-in-backward".into());
    }
    if req.parallel.gpus != 1 {
        return refuse(format!("{} GPUs", req.parallel.gpus));
    }
    if req.checkpointing != Checkpointing::None {
        return refuse("--checkpointing".into());
    }
    if req.loss_chunk.is_some() {
        return refuse("--loss-chunk".into());
    }
    Ok(())
}

/// Saved activations of one layer per token, in bytes (all bf16).
pub fn saved_per_token_layer(h: u64, q: u64, kv: u64, i: u64) -> u64 {
    // Layer input and its norm, mid-layer residual and its norm (4h); q and k after RoPE, v and
    // the attention output (2q + 2kv); gate, up and their SiLU product (3i).
    2 * (4 * h + 2 * q + 2 * kv + 3 * i)
}

/// The step's memory: one phase, every buffer at once.
pub(super) fn step(req: &TrainingRequest, log: &mut BasisLog) -> Result<(PhaseMemory, u64), TrainingError> {
    let m = &req.models[0];
    let spec = m.spec;
    let state = model_state(m, req.precision, req.optimizer, false, &req.parallel, 0)?;
    let generation = req.device.as_ref().map_or(Generation::Hopper, |d| d.generation);
    let (t, seq) = (req.seq * req.micro_batch, req.seq);
    let (h, q, kv, i, v) = (spec.hidden_size, spec.q_width(), spec.kv_width(), spec.intermediate_size, spec.vocab_size);
    let saved = spec.num_layers * t * saved_per_token_layer(h, q, kv, i) + 2 * 2 * t * h;
    // Forward temporaries (q, k, v and the head-major attention output) and backward gradients
    // (residual, norm, d_o, dq, dk, dv, and the MLP's three) share one region.
    let scratch = (2 * t * (2 * q + 2 * kv)).max(2 * t * (2 * h + 2 * q + 2 * kv + 3 * i));
    let blas = if matches!(generation, Generation::Hopper | Generation::Blackwell) { 32 << 20 } else { 4 << 20 };
    let workspace = blas
        + 2 * t * v
        + 3 * t * 4
        + 3 * seq * (spec.head_dim / 2) * 4
        + 2 * req.micro_batch * spec.num_heads * seq * 4;
    let ctx = engine::cuda_context(Engine::Headroom, generation, None);
    log.add(
        "saved activations (headroom engine)",
        saved,
        "2·T·(4h + 2q + 2kv + 3i) per layer + 2·2·T·h after the last",
    );
    log.add("scratch (headroom engine)", scratch, "forward temporaries and backward gradients, one region");
    log.add(
        "workspace (headroom engine)",
        workspace,
        "cuBLAS, logits T·V bf16, ids/targets/losses, RoPE tables, row statistics",
    );
    log.add(ctx.name, ctx.bytes.0, ctx.source);
    let memory = super::phases::breakdown(MemoryBreakdown {
        weights: state.weights,
        gradients: state.gradients,
        optimizer: state.optimizer,
        activations: Bytes(saved + scratch),
        workspace: Bytes(workspace),
        cuda_context: ctx.bytes,
        ..Default::default()
    });
    let phase = PhaseMemory {
        phase: "training step".into(),
        moment: "every buffer is allocated before the step".into(),
        memory,
    };
    Ok((phase, saved))
}
