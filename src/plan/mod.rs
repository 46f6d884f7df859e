//! THE PLANNER: pure arithmetic from a model, a format, a workload and a device to memory per
//! GPU and a verdict. No file system, no environment, no processes, no GPU: a test enforces it.

pub mod activations;
pub mod basis;
pub mod device;
pub mod engine;
pub mod inference;
pub mod kv;
pub mod limits;
pub mod llama_fit;
pub mod mlx;
pub mod throughput;
pub mod training;
pub mod vllm_moe;

pub use basis::Basis;
pub use device::{Device, DeviceSpeed, Generation, Link, LinkKind};
pub use engine::{Engine, EngineOptions};
pub use inference::{plan_inference, InferenceRequest, WeightLayout};

use crate::units::Bytes;
use serde::Serialize;
use thiserror::Error;

/// How several GPUs share a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Every layer divided among all GPUs (vLLM, Megatron): heads and MLP features.
    Tensor,
    /// Consecutive layers per GPU (llama.cpp, ExLlama, transformers `device_map="auto"`).
    Layer,
}

/// Memory of one GPU by component, in bytes.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MemoryBreakdown {
    #[serde(rename = "weights_bytes")]
    pub weights: Bytes,
    #[serde(rename = "kv_cache_bytes")]
    pub kv_cache: Bytes,
    #[serde(rename = "activations_bytes")]
    pub activations: Bytes,
    #[serde(rename = "gradients_bytes")]
    pub gradients: Bytes,
    /// Optimizer states including fp32 master weights.
    #[serde(rename = "optimizer_bytes")]
    pub optimizer: Bytes,
    #[serde(rename = "workspace_bytes")]
    pub workspace: Bytes,
    /// A rollout engine colocated with training (vLLM's `gpu_memory_utilization` share of the
    /// GPU, holding its own weights and KV pool); 0 otherwise.
    #[serde(rename = "rollout_engine_bytes")]
    pub rollout_engine: Bytes,
    /// The driver's per-process cost, which frameworks' "max allocated" figures exclude.
    #[serde(rename = "cuda_context_bytes")]
    pub cuda_context: Bytes,
    #[serde(rename = "total_bytes")]
    pub total: Bytes,
}

impl MemoryBreakdown {
    pub fn inference(
        weights: Bytes,
        kv_cache: Bytes,
        activations: Bytes,
        workspace: Bytes,
        cuda_context: Bytes,
    ) -> Self {
        MemoryBreakdown {
            weights,
            kv_cache,
            activations,
            workspace,
            cuda_context,
            total: weights + kv_cache + activations + workspace + cuda_context,
            ..Default::default()
        }
    }

    /// Sets `total` to the sum of the components, after one of them changed.
    pub fn retotal(&mut self) {
        self.total = self.components().iter().map(|(_, b)| *b).sum();
    }

    /// (label, bytes) of every component, in display order.
    pub fn components(&self) -> [(&'static str, Bytes); 8] {
        [
            ("weights", self.weights),
            ("kv cache", self.kv_cache),
            ("activations", self.activations),
            ("gradients", self.gradients),
            ("optimizer", self.optimizer),
            ("workspace", self.workspace),
            ("rollout engine", self.rollout_engine),
            ("cuda context", self.cuda_context),
        ]
    }
}

/// One GPU's share.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GpuMemory {
    pub gpu_index: u32,
    /// Decoder layers on this GPU, as a half-open range.
    pub layers: (u64, u64),
    pub memory: MemoryBreakdown,
}

/// The verdict against a GPU.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Fit {
    pub gpu: String,
    pub gpu_count: u32,
    /// Memory of one GPU that CUDA processes can allocate.
    pub capacity_bytes: u64,
    /// Kept by the driver and GPU firmware beyond `capacity_bytes` (nvidia-smi's total is the sum).
    pub reserved_bytes: u64,
    /// Held by other processes on each GPU (`--in-use`), not available to the plan.
    pub in_use_bytes: u64,
    /// Unified memory (Apple silicon, AMD's Strix Halo): the whole pool, of which
    /// `capacity_bytes` is what the OS lets the GPU use; null on discrete GPUs.
    pub unified_memory_bytes: Option<u64>,
    /// Who sets that share: `macos-wired-limit` or `amdgpu-gtt`; null on discrete GPUs.
    pub unified_limit: Option<device::UnifiedLimit>,
    /// The GPU runtime whose context the plan counts: `cuda`, `metal`, `hip / vulkan`, `runtime`.
    pub runtime: &'static str,
    pub fits: bool,
    /// Capacity left on the busiest GPU (negative: missing bytes). For vLLM, what is left of
    /// the `gpu_memory_utilization` budget after the requested KV cache.
    pub headroom_bytes: i64,
}

/// vLLM's own view: the KV pool it preallocates and what it holds.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VllmReport {
    pub gpu_memory_utilization: f64,
    /// utilization × capacity.
    pub budget_bytes: u64,
    /// budget − weights − activation peak − non-torch − graphs: preallocated for KV.
    pub kv_pool_bytes: u64,
    pub kv_capacity_tokens: u64,
    /// KV capacity ÷ tokens per sequence (vLLM's "Maximum concurrency").
    pub max_concurrency: f64,
    /// Why vLLM would refuse to start, each with its fix; empty when it starts.
    pub cannot_start: Vec<String>,
}

/// Memory a plan needs in host RAM (CPU-resident weights and KV cache), in bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostMemory {
    pub weights_bytes: u64,
    pub kv_cache_bytes: u64,
    pub total_bytes: u64,
}

/// A complete memory plan.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Plan {
    /// The busiest GPU's memory.
    pub memory: MemoryBreakdown,
    pub per_gpu: Vec<GpuMemory>,
    pub fit: Option<Fit>,
    pub vllm: Option<VllmReport>,
    /// Host RAM the engine needs besides the GPUs (null when everything sits on the GPUs).
    pub host: Option<HostMemory>,
    pub basis: Vec<Basis>,
}

/// Requests the planner refuses, each naming the input and the fix.
#[derive(Debug, Error, PartialEq)]
pub enum PlanError {
    #[error("--{what} {value} is invalid: {fix}")]
    BadNumber { what: &'static str, value: String, fix: &'static str },
    #[error("--{what} {value} is not supported for this model, engine or GPU: {fix}")]
    Unsupported { what: &'static str, value: String, fix: &'static str },
    #[error("tensor parallel degree {tp} does not divide the {heads} attention heads / {kv_heads} KV heads (or a linear-attention layer's key and value heads); use a GPU count that does, or --split layer")]
    TensorParallelHeads { tp: u64, heads: u64, kv_heads: u64 },
}
