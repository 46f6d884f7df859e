//! Model states on one GPU: weights (adapters included), gradients, optimizer states (fp32
//! masters included), the optimizer step's temporaries, and what is offloaded to host memory.
//!
//! Bytes per trainable element by precision (ZeRO paper's 16Ψ for mixed precision AdamW):
//!
//! | precision | weights | gradients | master | AdamW m + v | step temporaries |
//! |---|---|---|---|---|---|
//! | `mixed` (16-bit weights, fp32 master) | 2 | 2 | 4 | 8 | none (fused step, as DeepSpeed/Megatron) |
//! | `bf16` (pure bf16, PyTorch foreach AdamW) | 2 | 2 | – | 4 | one 2-byte copy |
//! | `amp` (fp32 parameters + autocast) | 4 | 4 | – | 8 | one 4-byte copy |
//!
//! LoRA adapters are fp32 under `mixed` and `amp` (peft's default `autocast_adapter_dtype`) and
//! bf16 under `bf16`; their gradients and states follow their dtype, with no separate master.
//!
//! Worked example, Llama-2-7B full fine-tuning, `mixed`, AdamW, one GPU: weights and gradients
//! 13,476,831,232 B each (2 B/param), optimizer 80,860,987,392 B (12 B/param).
//!
//! A multimodal checkpoint's vision encoder and projector are trained like any other tensor
//! under full fine-tuning (transformers leaves every parameter trainable), and get LoRA adapters
//! where the targets cover their linears (peft's `all-linear` does): an upper bound for
//! text-only data, where they receive no gradients and PyTorch's optimizers create no state.

use super::lora;
use super::parallel::{Offload, Parallel};
use super::{Method, ModelInput, Precision, TrainingError};
use crate::model::spec::ModelSpec;
use crate::model::tensors::{Part, Role, TensorDesc};
use crate::plan::training::optimizer::Optimizer;
use crate::units::Bytes;

/// One model's states on one GPU of a pipeline stage.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ModelState {
    pub weights: Bytes,
    pub gradients: Bytes,
    pub optimizer: Bytes,
    /// The optimizer step's temporaries.
    pub step: Bytes,
    /// ZeRO-3 gathered layers and the gradient reduce-scatter bucket.
    pub buffers: Bytes,
    /// Offloaded to host memory.
    pub host: Bytes,
    /// A paged optimizer's states in CUDA unified memory (see `optimizer.rs`): not in `optimizer`,
    /// on the GPU only while it has room.
    pub paged: Bytes,
    /// With the optimizer in the backward pass: the gradients alive at its moments.
    pub in_backward: Option<InBackward>,
    /// Trainable parameters of the whole model.
    pub trainable: u64,
}

/// The gradients alive when each parameter is stepped inside the backward pass (torchtune
/// `optimizer_in_bwd`) and its gradient freed at once. `gradients` and `step` of the
/// [`ModelState`] are then the largest tensor's (lm_head or the embedding, stepped at the start
/// and the end of the backward pass); in between only a layer's matrix is stepped.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InBackward {
    /// The largest decoder-layer tensor's gradient and its step's temporaries.
    pub layer_gradient: Bytes,
    pub layer_step: Bytes,
    /// A tied embedding's gradient: lm_head's share waits in autograd's accumulation buffer for
    /// the embedding's, all through the backward pass.
    pub held_gradient: Bytes,
}

/// Byte widths of one trainable element: (gradient, master, optimizer state, adapter weight).
fn widths(method: &Method, precision: Precision) -> (u64, u64, u64, u64) {
    match (method, precision) {
        (Method::Full, Precision::Mixed) => (2, 4, 4, 0),
        (Method::Full, Precision::Bf16) => (2, 0, 2, 0),
        (Method::Full, Precision::Amp) => (4, 0, 4, 0),
        (_, Precision::Bf16) => (2, 0, 2, 2),
        _ => (4, 0, 4, 4),
    }
}

/// Whether tensor `t` sits on pipeline stage `stage`: the embedding and a multimodal
/// checkpoint's vision encoder and projector on the first, lm_head and the final norm on the last.
fn on_stage(t: &TensorDesc, layers: &std::ops::Range<u64>, stage: u64, stages: u64) -> bool {
    match t.layer {
        Some(l) => layers.contains(&(l as u64)),
        None if t.role.is_embedding() || t.role.is_vision() => stage == 0,
        None => stage == stages - 1,
    }
}

/// The trainable tensors of a model on a stage, as (rows, cols) element grids.
pub fn trainable_tensors(m: &ModelInput, tensors: &[TensorDesc]) -> Result<Vec<(u64, u64)>, TrainingError> {
    Ok(match &m.method {
        Method::Full => tensors.iter().map(|t| (t.rows, t.cols * t.copies)).collect(),
        Method::Lora { rank, targets } if !tensors.is_empty() => lora::adapters(tensors, *rank, targets)?,
        Method::Adapter { prompt_length, start_layer, v2 } => {
            adapter_tensors(m.spec, tensors, *prompt_length, *start_layer, *v2)
        }
        _ => Vec::new(),
    })
}

/// LLaMA-Adapter's trainable tensors among `tensors` (one stage's): in every layer from
/// `start_layer` on, the prompt (`prompt_length × hidden`) and one gate per head; v2 adds a bias
/// and a scale per output feature of every linear layer (lm_head included) and trains the norms'
/// weights and biases. Llama-2-7B: 30 × (10 × 4,096 + 32) = 1,229,760; v2 adds 32 layers × 2 ×
/// 42,496 outputs + 2 × 32,000 (lm_head) + 65 norms × 4,096 = 3,049,984, so 4,279,744 in all
/// (the trainable counts LitGPT's resource tables print).
fn adapter_tensors(spec: &ModelSpec, tensors: &[TensorDesc], prompt: u64, start: u64, v2: bool) -> Vec<(u64, u64)> {
    let layers: std::collections::BTreeSet<u32> = tensors.iter().filter_map(|t| t.layer).collect();
    let mut out = Vec::new();
    for _ in layers.iter().filter(|&&l| l as u64 >= start) {
        out.push((prompt, spec.hidden_size));
        out.push((1, spec.num_heads));
    }
    if v2 {
        // LitGPT's adapter_filter trains `norm_1`, `norm_2` and `ln_f`: a layer's first two norms
        // (not Gemma's post-norms, nor the q/k norms) and the final one.
        let mut norms_seen: std::collections::HashMap<(Option<u32>, Role), u64> = Default::default();
        for t in tensors {
            if t.part == Part::Weight && (t.role.is_block_linear() || t.role == Role::Output) {
                out.push((2, t.rows * t.copies));
            } else if matches!(t.role, Role::AttnNorm | Role::FfnNorm | Role::OutputNorm) {
                let seen = norms_seen.entry((t.layer, t.role)).or_default();
                // A LayerNorm's weight and bias come in pairs: one norm per role and layer.
                let per_norm = if spec.norm == crate::model::spec::NormKind::LayerNorm { 2 } else { 1 };
                if *seen < per_norm {
                    *seen += 1;
                    out.push((t.rows, t.cols));
                }
            }
        }
    }
    out
}

/// States of model `m` on one GPU of pipeline stage `stage`. With the optimizer in the backward
/// pass (torchtune `optimizer_in_bwd`), each parameter is updated as soon as its gradient is
/// complete and the gradient freed: the gradients and the step's temporaries are those of the
/// largest trainable tensor (Llama-3.1-8B full: its 128,256 × 4,096 embedding, 1,050,673,152 B
/// of bf16 gradient, instead of 16,060,522,496 B for all), whole even under ZeRO or FSDP, which
/// reduce-scatter a gradient only once it is complete (tensor parallelism's slices are smaller).
pub fn model_state(
    m: &ModelInput,
    precision: Precision,
    optimizer: Optimizer,
    in_backward: bool,
    parallel: &Parallel,
    stage: u64,
) -> Result<ModelState, TrainingError> {
    let spec = m.spec;
    let layers = parallel.stage_layers(stage, spec.num_layers);
    let here: Vec<TensorDesc> =
        m.tensors.iter().copied().filter(|t| on_stage(t, &layers, stage, parallel.pp)).collect();
    let trainable = trainable_tensors(m, &here)?;
    let elements: u64 = trainable.iter().map(|(r, c)| r * c).sum();
    let (grad_b, master_b, state_b, adapter_b) = widths(&m.method, precision);
    let base: u64 = here.iter().map(|t| m.tensor_bytes(t).0).sum();
    let states: u64 = trainable.iter().map(|&(r, c)| optimizer.state_bytes(r, c, state_b)).sum();
    let sh = parallel.shards();
    // bitsandbytes decides per tensor it steps: a shard, under ZeRO or tensor parallelism.
    let paged: u64 = trainable.iter().map(|&(r, c)| optimizer.paged_bytes(r * c, sh.optimizer)).sum();
    let fused = m.method == Method::Full && precision == Precision::Mixed;
    let step_of = |ts: &[(u64, u64)]| if fused { 0 } else { optimizer.step_transient(ts, state_b) / sh.optimizer };
    let mut s = ModelState {
        weights: Bytes((base + elements * adapter_b) / sh.weights),
        gradients: Bytes(elements * grad_b / sh.gradients),
        optimizer: Bytes((elements * master_b + states - paged) / sh.optimizer),
        step: Bytes(step_of(&trainable)),
        buffers: Bytes(buffers(m, &here, parallel, grad_b, &layers)),
        host: Bytes::ZERO,
        paged: Bytes(paged / sh.optimizer),
        in_backward: None,
        trainable: total_trainable(m)?,
    };
    if in_backward {
        let largest = largest_matrix(trainable.iter().copied());
        // A fully trained model's layer tensors; an adapter's are all in the layers.
        let layer = match m.method {
            Method::Full => {
                largest_matrix(here.iter().filter(|t| t.layer.is_some()).map(|t| (t.rows, t.cols * t.copies)))
            }
            _ => largest,
        };
        let tied = spec.tie_word_embeddings && m.method == Method::Full;
        let embedding: u64 = here.iter().filter(|t| tied && t.role == Role::TokenEmbd).map(TensorDesc::elements).sum();
        // Tensor parallelism splits every matrix; data parallelism only a complete gradient.
        let tp = parallel.tp;
        s.gradients = Bytes(largest.0 * largest.1 * grad_b / tp);
        s.step = Bytes(step_of(&[largest]));
        s.in_backward = Some(InBackward {
            layer_gradient: Bytes(layer.0 * layer.1 * grad_b / tp),
            layer_step: Bytes(step_of(&[layer])),
            held_gradient: Bytes(embedding * grad_b / tp),
        });
    }
    if parallel.offload != Offload::None {
        s.host = s.optimizer + s.step + s.paged;
        s.optimizer = Bytes::ZERO;
        s.paged = Bytes::ZERO;
        s.step = Bytes::ZERO;
    }
    if parallel.offload == Offload::Params {
        s.host += s.weights;
        s.weights = Bytes::ZERO;
    }
    Ok(s)
}

/// Trainable parameters of the whole model.
pub fn total_trainable(m: &ModelInput) -> Result<u64, TrainingError> {
    Ok(trainable_tensors(m, m.tensors)?.iter().map(|(r, c)| r * c).sum())
}

/// The (rows, columns) of the largest of `matrices`, (0, 0) for none.
fn largest_matrix(matrices: impl Iterator<Item = (u64, u64)>) -> (u64, u64) {
    matrices.max_by_key(|(r, c)| r * c).unwrap_or((0, 0))
}

/// ZeRO-3: the gathered current and prefetched layer in 16-bit; ZeRO-2/3: one layer's full
/// gradients before the reduce-scatter. Sized by the stage's largest layer.
fn buffers(m: &ModelInput, here: &[TensorDesc], p: &Parallel, grad_b: u64, layers: &std::ops::Range<u64>) -> u64 {
    if p.zero < 2 {
        return 0;
    }
    let layer_elements =
        |l: u64| -> u64 { here.iter().filter(|t| t.layer == Some(l as u32)).map(TensorDesc::elements).sum() };
    let largest = layers.clone().map(layer_elements).max().unwrap_or(0) / p.tp;
    let gathered = if p.zero == 3 { 2 * 2 * largest } else { 0 };
    let bucket = if m.method == Method::Full { largest * grad_b } else { 0 };
    gathered + bucket
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensors::inventory;
    use crate::model::testing::llama_2_7b;
    use crate::quant::{FloatType, WeightFormat};

    /// The module doc's worked example.
    #[test]
    fn llama_2_7b_mixed_adamw_is_2_2_12() {
        let spec = llama_2_7b();
        let tensors = inventory(&spec);
        let m = ModelInput {
            role: super::super::ModelRole::Policy,
            spec: &spec,
            tensors: &tensors,
            format: WeightFormat::Float(FloatType::Bf16),
            method: Method::Full,
            quantized_lm_head: false,
        };
        let s = model_state(&m, Precision::Mixed, Optimizer::Adamw, false, &Parallel::single(), 0).unwrap();
        assert_eq!((s.weights.0, s.gradients.0, s.optimizer.0), (13_476_831_232, 13_476_831_232, 80_860_987_392));
        assert_eq!(s.step, Bytes::ZERO);
    }

    /// Optimizer in backward, Llama-2-7B full in bf16: lm_head's 32,000 × 4,096 gradient is the
    /// largest (262,144,000 B), a layer's largest matrix the 11,008 × 4,096 MLP's (90,177,536 B);
    /// a tied embedding's gradient is held through the backward pass; ZeRO does not shard them.
    #[test]
    fn optimizer_in_backward_holds_one_gradient() {
        let mut spec = llama_2_7b();
        let state = |spec: &ModelSpec, parallel: &Parallel| {
            let tensors = inventory(spec);
            let m = ModelInput {
                role: super::super::ModelRole::Policy,
                spec,
                tensors: &tensors,
                format: WeightFormat::Float(FloatType::Bf16),
                method: Method::Full,
                quantized_lm_head: false,
            };
            model_state(&m, Precision::Bf16, Optimizer::Adamw, true, parallel, 0).unwrap()
        };
        let s = state(&spec, &Parallel::single());
        let ib = s.in_backward.clone().unwrap();
        assert_eq!((s.gradients.0, s.step.0), (262_144_000, 262_144_000));
        assert_eq!((ib.layer_gradient.0, ib.held_gradient.0), (90_177_536, 0));
        let zero3 = Parallel { gpus: 8, tp: 1, pp: 1, zero: 3, offload: Offload::None };
        assert_eq!(state(&spec, &zero3).gradients.0, 262_144_000);
        spec.tie_word_embeddings = true;
        assert_eq!(state(&spec, &Parallel::single()).in_backward.unwrap().held_gradient.0, 262_144_000);
    }

    /// The trainable counts LitGPT's resource tables print for Llama-2-7B.
    #[test]
    fn llama_adapter_trains_what_litgpt_prints() {
        let spec = llama_2_7b();
        let tensors = inventory(&spec);
        let count = |v2| {
            let method = Method::Adapter { prompt_length: 10, start_layer: 2, v2 };
            let m = ModelInput {
                role: super::super::ModelRole::Policy,
                spec: &spec,
                tensors: &tensors,
                format: WeightFormat::Float(FloatType::Bf16),
                method,
                quantized_lm_head: false,
            };
            total_trainable(&m).unwrap()
        };
        assert_eq!(count(false), 1_229_760);
        assert_eq!(count(true), 4_279_744);
    }
}
