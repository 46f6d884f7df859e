//! The only code that touches CUDA or NVML. Everything here compiles without a GPU (cudarc and
//! nvml-wrapper load their libraries at run time) and, without a driver, returns a
//! [`GpuError`] whose [`GpuError::is_no_gpu`] is true instead of panicking: cudarc panics when a
//! library is missing, so every entry point checks `is_culib_present()` first.
//!
//! The seam is the [`Gpu`] trait: the benchmark scheduler (`crate::bench`) asks it to prepare a
//! [`Workload`] (compile, allocate, fill, check against a CPU reference) and to time launches; the
//! CUDA implementation is [`cuda::CudaGpu`], and [`mock::MockGpu`] answers tests. `headroom watch`
//! samples memory through [`memory::MemorySampler`] (NVML), scripted by [`mock::ScriptedSampler`].

pub mod cuda;
pub mod host;
pub mod kernels;
pub mod memory;
pub mod mock;
pub mod nvml;
pub mod reference;
pub mod workload;

use crate::catalog::gpus::{GpuCatalog, GpuSpec};
use serde::Serialize;
use thiserror::Error;

pub use workload::Workload;

/// Why a GPU operation failed.
#[derive(Debug, Error)]
pub enum GpuError {
    #[error(
        "no NVIDIA driver: libcuda.so could not be loaded (install the NVIDIA driver, or run on a machine with a GPU)"
    )]
    DriverNotFound,
    #[error(
        "NVML not found: libnvidia-ml.so / libnvidia-ml.so.1 could not be loaded (it ships with the NVIDIA driver)"
    )]
    NvmlNotFound,
    #[error("NVRTC not found: libnvrtc.so could not be loaded (put the CUDA toolkit's lib64, or the nvidia-cuda-nvrtc wheel's nvidia/cu13/lib, on LD_LIBRARY_PATH)")]
    NvrtcNotFound,
    #[error("cuBLAS not found: libcublas.so / libcublasLt.so could not be loaded (put the CUDA toolkit's lib64 or the nvidia-cublas wheel's lib on LD_LIBRARY_PATH)")]
    CublasNotFound,
    #[error("the driver reports no CUDA device")]
    NoDevice,
    #[error("kernel family '{kernel}' failed to compile for {arch}:\n{log}")]
    KernelCompile { kernel: String, arch: String, log: String },
    #[error("{what}: out of device memory (asked for {requested_bytes} bytes, {free_bytes} free)")]
    OutOfMemory { what: String, requested_bytes: u64, free_bytes: u64 },
    #[error("{context}: CUDA driver error {detail}")]
    Driver { context: String, detail: String },
    #[error("{context}: cuBLAS error {detail}")]
    Cublas { context: String, detail: String },
    #[error("NVML: {0}")]
    Nvml(String),
    #[error("{0} is not supported on this device")]
    Unsupported(String),
}

impl GpuError {
    /// True when the machine has no usable GPU stack (exit code 3 in `main`).
    pub fn is_no_gpu(&self) -> bool {
        matches!(
            self,
            GpuError::DriverNotFound
                | GpuError::NvmlNotFound
                | GpuError::NvrtcNotFound
                | GpuError::CublasNotFound
                | GpuError::NoDevice
        )
    }

    pub(crate) fn driver(context: impl Into<String>, e: impl std::fmt::Debug) -> Self {
        GpuError::Driver { context: context.into(), detail: format!("{e:?}") }
    }
}

/// A process holding device memory, as NVML reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GpuProcess {
    pub pid: u32,
    /// Bytes; `None` where the driver does not say.
    pub used_bytes: Option<u64>,
}

/// One local GPU as NVML and the driver describe it. Optional fields are what a driver may
/// refuse to report.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceInfo {
    pub index: u32,
    pub name: String,
    pub uuid: String,
    pub memory_total_bytes: u64,
    /// Allocated by processes (NVML v2: the driver's reservation not included).
    pub memory_used_bytes: u64,
    pub memory_free_bytes: u64,
    /// Kept by the driver and GPU firmware (NVML v2 `reserved`): CUDA's total is the total less
    /// this.
    pub memory_reserved_bytes: u64,
    /// (major, minor).
    pub compute_capability: (u32, u32),
    pub sm_count: Option<u32>,
    pub sm_clock_mhz: Option<u32>,
    pub max_sm_clock_mhz: Option<u32>,
    pub max_mem_clock_mhz: Option<u32>,
    pub power_w: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub temperature_c: Option<u32>,
    pub pcie_gen: Option<u32>,
    pub pcie_width: Option<u32>,
    pub l2_cache_bytes: Option<u64>,
    pub driver_version: String,
    /// CUDA version the driver supports, e.g. "13.0".
    pub cuda_version: String,
    pub processes: Vec<GpuProcess>,
}

impl DeviceInfo {
    /// The built-in catalog's entry for this device, by its driver name and memory
    /// ([`GpuCatalog::match_driver_name`]); `None` for a card the catalog lacks.
    pub fn catalog_entry(&self) -> Option<&'static GpuSpec> {
        GpuCatalog::builtin().match_driver_name(&self.name, Some(self.memory_total_bytes))
    }
}

/// Result of a workload's correctness check against its reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Check {
    /// What the output was compared with (`cpu reference`, `cublas fp32`...).
    pub reference: String,
    /// Largest |got − want| / (|want| + atol) over the checked elements.
    pub max_rel_error: f64,
    /// The tolerance the check applies.
    pub tolerance: f64,
    pub passed: bool,
}

/// The benchmark seam: a device that prepares workloads and times their launches.
pub trait Gpu {
    /// The device the workloads run on.
    fn device(&self) -> &DeviceInfo;
    /// Compiles, allocates and fills `w`, runs its correctness check on a small case, and keeps
    /// the full-size buffers for [`Gpu::time`].
    fn prepare(&mut self, w: &Workload) -> Result<Check, GpuError>;
    /// Launches the prepared workload `launches` times back to back between two CUDA events and
    /// returns the elapsed milliseconds for all of them.
    fn time(&mut self, launches: u32) -> Result<f64, GpuError>;
    /// Frees the prepared workload's buffers.
    fn release(&mut self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn driver_names_match_catalog_entries() {
        let gib = 1u64 << 30;
        let entry = |name: &str, memory_total_bytes: u64| {
            DeviceInfo { name: name.into(), memory_total_bytes, ..Default::default() }.catalog_entry()
        };
        assert_eq!(entry("NVIDIA H100 80GB HBM3", 80 * gib).unwrap().id, "h100-sxm");
        assert_eq!(entry("NVIDIA H100 PCIe", 80 * gib).unwrap().id, "h100-pcie");
        assert_eq!(entry("NVIDIA H200", 140 * gib).unwrap().id, "h200");
        assert_eq!(entry("NVIDIA A100-SXM4-80GB", 80 * gib).unwrap().id, "a100-80gb");
        assert!(entry("Mystery Card", gib).is_none());
        // The RTX 4080 and the 4080 SUPER report the same 16,376 MiB: the suffix decides.
        let mib = 16_376 << 20;
        assert_eq!(entry("NVIDIA GeForce RTX 4080", mib).unwrap().id, "rtx-4080");
        assert_eq!(entry("NVIDIA GeForce RTX 4080 SUPER", mib).unwrap().id, "rtx-4080-super");
        assert_eq!(entry("NVIDIA GeForce RTX 4070 Ti SUPER", mib).unwrap().id, "rtx-4070-ti-super");
        // A card the catalog lacks is not taken for its neighbour.
        assert!(entry("NVIDIA GeForce RTX 3080 Ti", 12_288 << 20).is_none());
    }
}
