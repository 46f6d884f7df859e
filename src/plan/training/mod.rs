//! The training memory plan: full fine-tuning, LoRA, QLoRA and the RLHF family (DPO, PPO,
//! GRPO), with ZeRO, offload, tensor and pipeline parallelism, by phase.
//!
//! A training step has three phases, and the peak is the largest moment of any of them:
//! - forward: model states + the activations saved so far + the loss's transient logits;
//! - backward: starts with every saved activation plus the loss gradients, frees activations
//!   layer by layer while gradients accumulate, and ends with all gradients;
//! - optimizer step: model states + gradients + the step's temporaries.
//!
//! With the optimizer in the backward pass (`optimizer_in_backward`) the last two merge: each
//! parameter is stepped as its gradient completes, and one gradient lives at a time.
//!
//! `memory` in the plan is the composition of the peak moment; every phase's own breakdown is in
//! `TrainingSummary::phases`, and each model's share (RLHF runs several) in `models`.
//! Modules: `lora` (adapters), `optimizer` (states), `activations` (saved for backward),
//! `state` (per-model bytes on a GPU), `parallel` (ZeRO/TP/PP), `phases` (moments), `rlhf`.

pub mod activations;
pub mod headroom;
pub mod lora;
pub mod optimizer;
pub mod parallel;
mod phases;
pub mod rlhf;
mod state;
pub mod unsloth;

pub use lora::{LoraError, LoraTargets};
pub use optimizer::Optimizer;
pub use parallel::{Offload, Parallel};
pub use phases::plan_training;

use super::device::Device;
use super::MemoryBreakdown;
use crate::model::spec::ModelSpec;
use crate::model::tensors::TensorDesc;
use crate::quant::WeightFormat;
use crate::units::Bytes;
use serde::Serialize;
use thiserror::Error;

/// What a training run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Full,
    Lora,
    Qlora,
    Dpo,
    Ppo,
    Grpo,
    /// Rejection sampling / best-of-n: generate n completions per prompt, score them with a
    /// reward model, then a supervised step on the best one.
    BestOfN,
    /// LLaMA-Adapter (Zhang et al. 2023; LitGPT): a frozen base with learned prompt tokens
    /// attended to from `ADAPTER_START_LAYER` on, behind zero-initialised gates.
    Adapter,
    /// LLaMA-Adapter v2 (Gao et al. 2023; LitGPT): adapter v1 plus a bias and a scale on every
    /// linear layer's output and trainable norms.
    AdapterV2,
}

impl Mode {
    pub fn id(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Lora => "lora",
            Mode::Qlora => "qlora",
            Mode::Dpo => "dpo",
            Mode::Ppo => "ppo",
            Mode::Grpo => "grpo",
            Mode::BestOfN => "best-of-n",
            Mode::Adapter => "adapter",
            Mode::AdapterV2 => "adapter-v2",
        }
    }
}

/// Number formats of the trained parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    /// 16-bit weights and gradients, fp32 master weights (LoRA: fp32 adapters).
    Mixed,
    /// Everything in bf16, no master copy (LitGPT `bf16-true`).
    Bf16,
    /// fp32 parameters under `torch.autocast(bfloat16)` (PyTorch AMP).
    Amp,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Checkpointing {
    None,
    /// Recompute the attention core (Korthikanti): the score matrix is never saved.
    Selective,
    /// Save each layer's input only and recompute the layer in the backward pass.
    Full,
    /// As `Full`, with the saved layer inputs copied to pinned host RAM as the forward pass
    /// leaves each layer and back before its recomputation (torchtune's activation offloading,
    /// Unsloth's and axolotl's offloaded checkpointing): the GPU holds two layers' inputs, the
    /// one in use and the one in flight. Only the layer inputs are modelled as offloaded
    /// (torchtune also offloads other saved tensors of 1 KiB or more, and keeps up to five in
    /// flight); the copies run on their own stream, as torchtune's, TRL's, axolotl's and
    /// Unsloth's current ones do (the 2024 Unsloth and axolotl legacy ones shared the compute
    /// stream, which exposes them).
    Offload,
}

impl Checkpointing {
    /// Whether the backward pass runs each layer's forward again.
    pub fn recomputes(self) -> bool {
        matches!(self, Checkpointing::Full | Checkpointing::Offload)
    }
}

/// What generates the rollouts of PPO, GRPO and best-of-n, and what it holds on a training GPU.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum RolloutEngine {
    /// transformers `generate` in the training process: a KV cache for every rollout sequence
    /// while generating (TRL's default without `use_vllm`).
    Hf,
    /// vLLM inside the training process (TRL `vllm_mode="colocate"`, veRL's and OpenRLHF's
    /// hybrid engines): it takes `reserved` = `gpu_memory_utilization` × GPU memory at start-up
    /// and keeps it for the whole run (its own 16-bit weights, activations and KV pool); the pool
    /// holds `kv_capacity_tokens`, `max_sequences` sequences of the training length at once (as
    /// vLLM reports its concurrency: a hybrid model's linear-attention states share the pool),
    /// and vLLM refuses to start when that is under one sequence (`minimum`: its weights,
    /// activations and non-torch memory plus one sequence's KV).
    VllmColocated { reserved: Bytes, kv_capacity_tokens: u64, max_sequences: f64, minimum: Bytes },
    /// vLLM on other GPUs (TRL `vllm_mode="server"`): nothing on the training GPUs.
    VllmServer,
}

/// How one model's weights are treated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Method {
    Full,
    Lora {
        rank: u64,
        targets: LoraTargets,
    },
    /// LLaMA-Adapter: `prompt_length` learned tokens and one gate per head in every layer from
    /// `start_layer` on; v2 adds a bias and a scale per output feature of every linear layer
    /// (lm_head included) and trains the norms (LitGPT `adapter_v2.py`).
    Adapter {
        prompt_length: u64,
        start_layer: u64,
        v2: bool,
    },
    Frozen,
}

/// LitGPT's adapter defaults (`Config.adapter_prompt_length`, `adapter_start_layer`).
pub const ADAPTER_PROMPT_LENGTH: u64 = 10;
pub const ADAPTER_START_LAYER: u64 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelRole {
    Policy,
    Reference,
    Critic,
    Reward,
}

/// One model of a training run.
#[derive(Clone, Debug)]
pub struct ModelInput<'a> {
    pub role: ModelRole,
    pub spec: &'a ModelSpec,
    pub tensors: &'a [TensorDesc],
    /// Storage of the base weights.
    pub format: WeightFormat,
    pub method: Method,
    /// The quantizer covers lm_head too (LitGPT's bitsandbytes plugin); `tensors` then lists
    /// lm_head even for a tied checkpoint, as LitGPT builds both matrices.
    pub quantized_lm_head: bool,
}

impl ModelInput<'_> {
    /// Stored bytes of tensor `t` of this model.
    pub fn tensor_bytes(&self, t: &TensorDesc) -> Bytes {
        self.format.tensor_bytes_with_head(t, self.spec, self.quantized_lm_head)
    }
}

/// Everything a training plan depends on.
#[derive(Clone, Debug)]
pub struct TrainingRequest<'a> {
    pub mode: Mode,
    /// The trained policy first; then reference, critic, reward as the mode needs.
    pub models: Vec<ModelInput<'a>>,
    pub precision: Precision,
    pub optimizer: Optimizer,
    /// The optimizer steps each parameter inside the backward pass, as soon as its gradient is
    /// complete (torchtune `optimizer_in_bwd`, PyTorch `register_post_accumulate_grad_hook`):
    /// one parameter's gradient lives at a time. Needs `grad_accum == 1`.
    pub optimizer_in_backward: bool,
    pub checkpointing: Checkpointing,
    /// LoRA dropout probability (peft's default 0; LitGPT's 0.05).
    pub lora_dropout: f64,
    pub flash_attention: bool,
    /// Unsloth's xFormers path: grouped-query K and V copied to every query head and saved so.
    pub xformers: bool,
    /// The step runs under `torch.autocast(bfloat16)` (transformers' `Trainer` with
    /// `bf16=True`, TRL, Unsloth); off for a plain PyTorch loop over 16-bit weights. It matters
    /// for `Precision::Mixed` LoRA, whose fp32 adapters then save 16-bit copies of their inputs.
    pub autocast: bool,
    /// Tokens per sequence (prompt + completion for RLHF).
    pub seq: u64,
    /// Sequences per micro-batch (prompts for GRPO, pairs for DPO).
    pub micro_batch: u64,
    pub grad_accum: u64,
    /// GRPO completions per prompt.
    pub group_size: u64,
    /// Chunked cross-entropy: logits exist for this many tokens at a time and are recomputed
    /// in the backward pass (`None`: the whole sequence's logits at once).
    pub loss_chunk: Option<u64>,
    pub parallel: Parallel,
    pub device: Option<Device>,
    /// Hf: transformers and PyTorch autograd (dynamic allocation, phases). Headroom:
    /// `validate`'s training step, every buffer allocated up front.
    pub engine: crate::plan::Engine,
    pub rollout: RolloutEngine,
}

/// One phase's memory at its largest moment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseMemory {
    pub phase: String,
    /// The moment within the phase where it peaks.
    pub moment: String,
    pub memory: MemoryBreakdown,
}

/// One model's share of the busiest GPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelShare {
    pub role: ModelRole,
    pub model: String,
    pub trainable_parameters: u64,
    pub weights_bytes: u64,
    pub gradients_bytes: u64,
    pub optimizer_bytes: u64,
    /// Offloaded to host RAM (CPU offload), per GPU.
    pub host_bytes: u64,
}

/// The training-specific part of a plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainingSummary {
    pub mode: Mode,
    pub trainable_parameters: u64,
    /// The phase the peak falls in.
    pub peak_phase: String,
    pub phases: Vec<PhaseMemory>,
    pub models: Vec<ModelShare>,
    /// Activations saved by the forward pass for the backward pass, on the busiest GPU.
    pub saved_activations_bytes: u64,
    /// Host memory per GPU for offloaded states and offloaded activations.
    pub host_bytes: u64,
    /// Layer inputs one GPU copies to host RAM and back per micro-batch (`--checkpointing
    /// offload`; the largest pipeline stage's).
    pub offloaded_activation_bytes_per_micro_batch: u64,
    /// A paged optimizer's states per GPU in CUDA unified memory, outside the memory total: they
    /// stay on the GPU beside the peak as far as it has room.
    pub paged_optimizer_bytes: u64,
    /// With a GPU: the part of `paged_optimizer_bytes` that has no room beside the peak (of the
    /// busiest GPU), evicted to host RAM while the peak needs the room and brought back for
    /// each tensor's update.
    pub paged_to_host_bytes: Option<u64>,
}

/// Requests the training planner refuses, each naming the conflict and the fix.
#[derive(Debug, Error, PartialEq)]
pub enum TrainingError {
    #[error("--{what} {value} is invalid: {fix}")]
    BadNumber { what: &'static str, value: String, fix: &'static str },
    #[error("--mode qlora needs a 4-bit base (--weights nf4 or nf4-dq), not {0}")]
    QloraNeeds4Bit(String),
    #[error("--mode {mode} trains the base weights, which must be fp32, fp16 or bf16, not {weights}; use --mode qlora for a quantized base")]
    TrainsQuantized { mode: &'static str, weights: String },
    #[error("--precision amp keeps fp32 parameters; drop --weights {0} or use --precision mixed")]
    AmpNeedsFp32(String),
    #[error("{gpus} GPUs cannot be split into tensor parallel {tp} × pipeline parallel {pp}; use a GPU count divisible by tp·pp")]
    Layout { gpus: u64, tp: u64, pp: u64 },
    #[error("--zero {0} does not exist; use 0, 1, 2 or 3")]
    ZeroStage(u8),
    #[error("--zero {zero} shards over data-parallel ranks, but {gpus} GPU(s) leave {dp}; use more GPUs (--gpu ID:N) or drop --zero")]
    ZeroNeedsDataParallel { zero: u8, gpus: u64, dp: u64 },
    #[error("tensor parallel degree {tp} does not divide the {heads} attention heads / {kv_heads} KV heads (or a linear-attention layer's key and value heads); use a --tp that does")]
    TensorParallelHeads { tp: u64, heads: u64, kv_heads: u64 },
    #[error("pipeline parallel degree {pp} exceeds the model's {layers} layers")]
    PipelineTooDeep { pp: u64, layers: u64 },
    #[error("--optimizer-in-backward steps each parameter as its gradient completes, so gradients cannot accumulate over --grad-accum {0} micro-batches; use --grad-accum 1 (torchtune refuses the same)")]
    InBackwardAccumulates(u64),
    /// What an engine's own training code cannot run, with the fix.
    #[error("{0}")]
    EngineLimit(String),
    #[error("--offload params needs --zero 3 (parameters are offloaded only when sharded)")]
    OffloadParamsNeedsZero3,
    #[error(transparent)]
    Lora(#[from] LoraError),
}
