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
    /// Apple silicon GPUs (Metal): unified memory, no CUDA context.
    Apple,
    /// AMD Radeon GPUs (RDNA 3 and 4 cards, RDNA 3.5 APUs): llama.cpp's HIP and Vulkan backends.
    Rdna,
    /// AMD Instinct and Intel Gaudi accelerators: no CUDA context; their runtime's own cost applies.
    Other,
}

impl Generation {
    /// The runtime whose context the memory table names: `cuda`, `metal`, `hip / vulkan`
    /// (llama.cpp's AMD backends) or, on AMD Instinct and Intel Gaudi, the vendor's `runtime`.
    pub fn runtime(self) -> &'static str {
        match self {
            Generation::Apple => "metal",
            Generation::Rdna => "hip / vulkan",
            Generation::Other => "runtime",
            _ => "cuda",
        }
    }
}

/// Who sets a unified memory's share for the GPU, and so how a user raises it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnifiedLimit {
    /// macOS's GPU working set (Metal's `recommendedMaxWorkingSetSize`; `sudo sysctl
    /// iogpu.wired_limit_mb=N` raises it, `--wired-limit` plans it).
    MacosWiredLimit,
    /// The amdgpu driver's GTT limit under Linux (half the RAM by default; `amd-ttm --set` or the
    /// kernel option `ttm.pages_limit` raises it, `--gtt-limit` plans it).
    AmdgpuGtt,
}

impl UnifiedLimit {
    /// The plan option that sets the limit.
    pub fn flag(self) -> &'static str {
        match self {
            UnifiedLimit::MacosWiredLimit => "--wired-limit",
            UnifiedLimit::AmdgpuGtt => "--gtt-limit",
        }
    }

    /// The machines it applies to.
    pub fn platform(self) -> &'static str {
        match self {
            UnifiedLimit::MacosWiredLimit => "Apple silicon",
            UnifiedLimit::AmdgpuGtt => "AMD Strix Halo",
        }
    }
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
    /// A unified memory (Apple silicon, AMD's Strix Halo) as far as a raised limit can reach (a
    /// Mac's whole pool, the RAM Linux sees), where `capacity` is the part the OS lets the GPU use.
    pub unified_memory: Option<Bytes>,
}

impl Device {
    /// Who sets the GPU's share of its unified memory; `None` on a discrete GPU.
    pub fn unified_limit(&self) -> Option<UnifiedLimit> {
        self.unified_memory?;
        match self.generation {
            Generation::Apple => Some(UnifiedLimit::MacosWiredLimit),
            Generation::Rdna => Some(UnifiedLimit::AmdgpuGtt),
            _ => None,
        }
    }

    /// The basis line of the memory one GPU offers the plan.
    pub fn capacity_basis(&self) -> super::Basis {
        let total = self.unified_memory.unwrap_or(Bytes::ZERO);
        let (name, source) = match self.unified_limit() {
            Some(UnifiedLimit::MacosWiredLimit) => (
                "GPU memory Metal may wire",
                format!(
                    "macOS's GPU working-set limit (Metal's recommendedMaxWorkingSetSize, or --wired-limit) of {} B unified memory; `sudo sysctl iogpu.wired_limit_mb=N` raises it",
                    total.0
                ),
            ),
            Some(UnifiedLimit::AmdgpuGtt) => (
                "GPU memory amdgpu may map (GTT)",
                format!(
                    "the amdgpu driver's GTT limit under Linux (half of the {} B of RAM Linux sees by default, with a small BIOS carve-out; or --gtt-limit); `sudo amd-ttm --set N` or the kernel option ttm.pages_limit (amdttm.pages_limit with amdgpu-dkms) raises it (Windows: the Variable Graphics Memory set, up to 96 GB)",
                    total.0
                ),
            ),
            None => (
                "GPU memory CUDA can allocate",
                format!(
                    "the driver's total less {} B it keeps for itself (NVML v2 reserved; `headroom gpus` gives its source)",
                    self.reserved.0
                ),
            ),
        };
        super::Basis { name: name.into(), value: self.capacity.0.to_string(), source }
    }

    /// The verdict of a plan that `fits` with `headroom_bytes` left on the busiest GPU.
    pub fn fit(&self, fits: bool, headroom_bytes: i64) -> super::Fit {
        super::Fit {
            gpu: self.id.clone(),
            gpu_count: self.count,
            capacity_bytes: self.capacity.0,
            reserved_bytes: self.reserved.0,
            in_use_bytes: self.in_use.0,
            unified_memory_bytes: self.unified_memory.map(|b| b.0),
            unified_limit: self.unified_limit(),
            runtime: self.generation.runtime(),
            fits,
            headroom_bytes,
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

impl LinkKind {
    /// One step of a small ring all-reduce over this link: NCCL's `hwLat` for its LL protocol
    /// (src/graph/tuning.cc), 0.6 µs over NVLink and 1.0 µs over PCIe (taken for vendor links).
    pub fn allreduce_hop_s(self) -> f64 {
        match self {
            LinkKind::Nvlink => 0.6e-6,
            LinkKind::Pcie | LinkKind::Other => 1.0e-6,
        }
    }
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
    /// FP32 peak of the CUDA cores (no tensor cores), for kernels that compute there.
    pub peak_fp32: Option<FlopsPerSec>,
    /// GPU-to-GPU link; `None` when the catalog gives none.
    pub link: Option<Link>,
    /// The GPU's PCIe link to the host, one direction (x16 at the catalog's generation); `None`
    /// when the catalog gives no generation.
    pub host_link: Option<BytesPerSec>,
}

/// The host's RAM, for weights llama.cpp leaves there (`--n-gpu-layers`, `--n-cpu-moe`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostSpeed {
    /// Bandwidth of the host's RAM: its peak (channels × transfers per second × 8 bytes), or a
    /// read `headroom bench` measured.
    pub memory_bandwidth: BytesPerSec,
    /// The RAM in words, with its bandwidth (`DDR5-6000 × 2 channels, 96.0 GB/s`).
    pub label: String,
    pub origin: HostOrigin,
}

/// Where a [`HostSpeed`] comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HostOrigin {
    /// `--host-memory`.
    Given,
    /// `headroom bench`'s host RAM read, through `--calibration`.
    Measured,
    /// None given: a typical desktop.
    Assumed,
}

impl HostSpeed {
    /// The host assumed when none is given: a desktop with two channels of DDR5-5600, the
    /// common platform for GPU offload at home (AM5 and Intel LGA1700/1851 boards run DDR5 in
    /// two channels; 5600 MT/s is their JEDEC speed for two DIMMs).
    pub fn assumed_desktop() -> HostSpeed {
        HostSpeed { origin: HostOrigin::Assumed, ..HostSpeed::parse("ddr5-5600:2").expect("valid built-in host") }
    }

    /// A host whose RAM `headroom bench` read at `gb_s`.
    pub fn measured_read(gb_s: f64) -> HostSpeed {
        HostSpeed {
            memory_bandwidth: BytesPerSec(gb_s * 1e9),
            label: format!("{gb_s:.1} GB/s read"),
            origin: HostOrigin::Measured,
        }
    }

    /// Parses `--host-memory`: `ddr4-3200:2` or `ddr5-6000:12` (type, MT/s, 64-bit channels)
    /// or a peak bandwidth in GB/s (`96`, `460.8`). DDR5-6000 in two channels: 6,000e6 × 8 B × 2
    /// = 96 GB/s.
    pub fn parse(s: &str) -> Result<HostSpeed, String> {
        let fix = "give DDR type, MT/s and channels such as ddr5-6000:2 or ddr4-3200:8, or the peak bandwidth in GB/s such as 96";
        let t = s.trim().to_ascii_lowercase();
        if let Ok(gbs) = t.trim_end_matches("gb/s").trim().parse::<f64>() {
            if !(gbs.is_finite() && (1.0..=20_000.0).contains(&gbs)) {
                return Err(format!("--host-memory {s}: {gbs} GB/s is out of range (1 to 20,000); {fix}"));
            }
            return Ok(HostSpeed {
                memory_bandwidth: BytesPerSec(gbs * 1e9),
                label: format!("{gbs:.1} GB/s"),
                origin: HostOrigin::Given,
            });
        }
        let parsed = t.split_once('-').and_then(|(kind, rest)| {
            let (rate, channels) = rest.split_once(':').unwrap_or((rest, "2"));
            Some((kind, rate.parse::<u32>().ok()?, channels.parse::<u32>().ok()?))
        });
        let Some((kind, rate, channels)) = parsed.filter(|(k, _, _)| matches!(*k, "ddr3" | "ddr4" | "ddr5")) else {
            return Err(format!("--host-memory {s} is not understood: {fix}"));
        };
        if !(400..=16_000).contains(&rate) || !(1..=24).contains(&channels) {
            return Err(format!("--host-memory {s}: {rate} MT/s or {channels} channels is out of range (400–16,000 MT/s, 1–24 channels); {fix}"));
        }
        Ok(HostSpeed {
            memory_bandwidth: BytesPerSec(rate as f64 * 1e6 * 8.0 * channels as f64),
            label: format!(
                "{}-{rate} × {channels} channel{}, {:.1} GB/s",
                kind.to_uppercase(),
                if channels == 1 { "" } else { "s" },
                rate as f64 * 8e-3 * channels as f64
            ),
            origin: HostOrigin::Given,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Any text parses to a positive, finite bandwidth or to an error naming the option.
        #[test]
        fn host_memory_never_panics(s in "\\PC{0,24}", kind in "(ddr[0-9]|[a-z]{0,4})", rate in any::<i64>(), ch in any::<i32>()) {
            for text in [s.clone(), format!("{kind}-{rate}:{ch}"), format!("{rate}"), format!("{kind}-{rate}")] {
                match HostSpeed::parse(&text) {
                    Ok(h) => prop_assert!(h.memory_bandwidth.0.is_finite() && h.memory_bandwidth.0 >= 1e9),
                    Err(e) => prop_assert!(e.starts_with("--host-memory"), "{e}"),
                }
            }
        }
    }

    /// DDR5-6000 in two channels: 6,000e6 × 8 B × 2 = 96 GB/s; eight of DDR4-3200: 204.8 GB/s.
    #[test]
    fn host_memory_from_ddr_channels_or_gb_s() {
        let gbs = |s: &str| HostSpeed::parse(s).unwrap().memory_bandwidth.0 / 1e9;
        assert_eq!(gbs("ddr5-6000:2"), 96.0);
        assert_eq!(gbs("DDR4-3200:8"), 204.8);
        assert_eq!(gbs("ddr5-5600"), 89.6);
        assert_eq!(gbs("460.8"), 460.8);
        assert_eq!(gbs("96GB/s"), 96.0);
        assert_eq!(HostSpeed::parse("ddr5-6000:2").unwrap().label, "DDR5-6000 × 2 channels, 96.0 GB/s");
        assert_eq!(HostSpeed::assumed_desktop().origin, HostOrigin::Assumed);
        for bad in ["", "ddr9-6000:2", "ddr5-6000:0", "ddr5-6000:99", "ddr5-60:2", "ddr5-x:2", "0", "-5", "1e9", "nan"]
        {
            let err = HostSpeed::parse(bad).unwrap_err();
            assert!(err.starts_with("--host-memory") && err.contains("ddr5-6000:2"), "{bad}: {err}");
        }
    }
}
