//! The target hardware as the planner sees it: capacity per GPU, how many, and the generation
//! (which sets the CUDA context cost). Built by the command layer from the GPU catalog, so the
//! planner stays free of catalog and I/O code.

use crate::units::{Bytes, BytesPerSec, FlopsPerSec};
use serde::Serialize;

/// GPU generation, for per-generation runtime costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    Volta,
    Turing,
    Ampere,
    Ada,
    Hopper,
    Blackwell,
    /// AMD, Intel and Apple accelerators: no CUDA context; their runtime's own cost applies.
    Other,
}

/// GPUs of one kind that the model is planned onto.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    /// Catalog id, e.g. `rtx-4090`.
    pub id: String,
    /// Memory of one GPU that CUDA processes can allocate: the driver's total less `reserved`
    /// (`cudaMemGetInfo`'s total, which vLLM multiplies by `gpu_memory_utilization`).
    pub capacity: Bytes,
    /// What the driver and GPU firmware keep for themselves (NVML v2 `reserved`): part of the
    /// total nvidia-smi shows, never allocatable.
    pub reserved: Bytes,
    /// Memory other processes already hold on each GPU (a desktop session, another job).
    pub in_use: Bytes,
    pub count: u32,
    pub generation: Generation,
    /// CUDA compute capability (major, minor) where the catalog gives it: it picks kernels that
    /// change what an engine allocates (vLLM's MXFP4 MoE backend).
    pub compute_capability: Option<(u32, u32)>,
}

impl Device {
    /// The basis line of the memory one GPU offers the plan.
    pub fn capacity_basis(&self) -> super::Basis {
        super::Basis {
            name: "GPU memory CUDA can allocate".into(),
            value: self.capacity.0.to_string(),
            source: format!(
                "the driver's total less {} B it keeps for itself (NVML v2 reserved; `headroom gpus` gives its source)",
                self.reserved.0
            ),
        }
    }
}

/// Kind of GPU-to-GPU link, as far as collective latency cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    Nvlink,
    Pcie,
    /// Infinity Fabric, RoCE and other vendor links.
    Other,
}

/// The link between two GPUs of a node.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Link {
    pub kind: LinkKind,
    /// Bytes per second in one direction (NVLink totals are halved by the command layer).
    pub bandwidth_per_direction: BytesPerSec,
}

/// What the speed model needs of one GPU, filled by the command layer from the catalog. Peaks
/// are dense (no 2:4 sparsity); `None` where the catalog has no number, which makes the speeds
/// that need it null rather than guessed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceSpeed {
    /// Peak memory bandwidth.
    pub bandwidth: BytesPerSec,
    /// Dense 16-bit tensor peak (bf16, else fp16) with FP32 accumulation.
    pub peak_16bit: Option<FlopsPerSec>,
    /// Dense 16-bit peak with FP16 accumulation where it is faster (GeForce cards run it at twice
    /// the FP32-accumulate rate; engines whose GEMMs accumulate in fp16 get it, e.g. ExLlama).
    pub peak_16bit_fp16_acc: Option<FlopsPerSec>,
    /// Dense 8-bit peak (fp8, else int8), for fp8 weights.
    pub peak_8bit: Option<FlopsPerSec>,
    /// GPU-to-GPU link; `None` when the catalog gives none.
    pub link: Option<Link>,
}
