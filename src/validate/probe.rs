//! [`NvmlProbe`]: this process's GPU memory from NVML. The per-process figure is what the driver
//! charges the process (context, modules, every allocation); where the driver withholds process
//! lists (some containers, vGPU), the device's used memory minus what was used before this
//! process opened its context stands in, which also counts other processes' changes.

use super::run::MemoryProbe;
use crate::gpu::memory::{MemorySampler, NvmlSampler};
use crate::gpu::GpuError;

pub struct NvmlProbe {
    sampler: NvmlSampler,
    pid: u32,
    /// Device used bytes before this process's context existed.
    baseline: u64,
    /// NVML index of the GPU (validate runs on CUDA device 0; with one GPU they agree).
    index: usize,
    used_fallback: bool,
}

impl NvmlProbe {
    /// Opens NVML and records the baseline; call before creating the CUDA context.
    pub fn open() -> Result<Self, GpuError> {
        let mut sampler = NvmlSampler::open()?;
        let devices = sampler.sample()?;
        let baseline = devices.first().map_or(0, |d| d.used_bytes);
        Ok(NvmlProbe { sampler, pid: std::process::id(), baseline, index: 0, used_fallback: false })
    }
}

impl MemoryProbe for NvmlProbe {
    fn process_bytes(&mut self) -> Option<u64> {
        let devices = self.sampler.sample().ok()?;
        // The GPU that lists this process, else the first.
        if let Some((i, bytes)) = devices.iter().enumerate().find_map(|(i, d)| {
            d.processes.iter().find(|p| p.pid == self.pid).and_then(|p| p.used_bytes).map(|b| (i, b))
        }) {
            self.index = i;
            return Some(bytes);
        }
        self.used_fallback = true;
        devices.get(self.index).map(|d| d.used_bytes.saturating_sub(self.baseline))
    }

    fn method(&self) -> String {
        if self.used_fallback {
            "NVML device used − baseline (no per-process figure)".into()
        } else {
            "NVML per-process used memory".into()
        }
    }
}
