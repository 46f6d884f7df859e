//! The built-in GPU catalog: one [`GpuSpec`] per accelerator, read from `data/gpus.toml`.
//!
//! The TOML file is embedded in the binary and parsed once, on first use, by
//! [`GpuCatalog::builtin`]. Every number in it carries a source (see the file's legend); a field
//! with no public source is left out rather than guessed, which is why most fields are optional.
//!
//! Units live in the field names: `memory_mib` is the usable memory the driver reports
//! (`nvidia-smi` total, in MiB), `bandwidth_gb_s` is in GB/s (1e9 bytes), and [`Tflops`] holds
//! dense (no 2:4 sparsity) peaks in 1e12 operations per second.
//!
//! ```
//! use headroom::catalog::gpus::{parse_gpu_arg, GpuCatalog};
//!
//! let h100 = GpuCatalog::builtin().get("h100-sxm").unwrap();
//! assert_eq!(h100.memory_mib, 81_559);
//! let (gpu, count) = parse_gpu_arg("rtx-4090:2").unwrap();
//! assert_eq!((gpu.id.as_str(), count), ("rtx-4090", 2));
//! ```

use std::collections::HashSet;
use std::sync::OnceLock;

use serde::Deserialize;
use thiserror::Error;

use crate::catalog::suggest::{closest, did_you_mean, loose_key, unique};

/// The most GPUs one `--gpu ID:COUNT` argument may ask for.
pub const MAX_GPU_COUNT: u32 = 1024;

const BUILTIN_TOML: &str = include_str!("../../data/gpus.toml");

/// Who makes the accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Vendor {
    Nvidia,
    Amd,
    Intel,
    Apple,
}

/// Micro-architecture (generation) of the accelerator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arch {
    Volta,
    Turing,
    Ampere,
    Ada,
    Hopper,
    Blackwell,
    Cdna2,
    Cdna3,
    /// AMD Radeon RX 7000 series (gfx110x): WMMA matrix instructions at 512 FP16 FLOPs per clock
    /// per CU.
    Rdna3,
    /// AMD's RDNA 3.5 integrated GPUs (Strix Halo's Radeon 8060S, gfx1151).
    #[serde(rename = "rdna3.5")]
    Rdna35,
    /// AMD Radeon RX 9000 series (gfx120x): WMMA at 1024 FP16 and 2048 INT8/FP8 FLOPs per clock
    /// per CU.
    Rdna4,
    Gaudi2,
    Gaudi3,
    AppleM1,
    AppleM2,
    AppleM3,
    AppleM4,
    AppleM5,
}

impl Arch {
    /// The vendor that designs this architecture.
    pub fn vendor(self) -> Vendor {
        match self {
            Arch::Volta | Arch::Turing | Arch::Ampere | Arch::Ada | Arch::Hopper => Vendor::Nvidia,
            Arch::Blackwell => Vendor::Nvidia,
            Arch::Cdna2 | Arch::Cdna3 | Arch::Rdna3 | Arch::Rdna35 | Arch::Rdna4 => Vendor::Amd,
            Arch::Gaudi2 | Arch::Gaudi3 => Vendor::Intel,
            Arch::AppleM1 | Arch::AppleM2 | Arch::AppleM3 | Arch::AppleM4 | Arch::AppleM5 => Vendor::Apple,
        }
    }
}

/// Dense peak throughput per data type, in TFLOPS (TOPS for `int8`); `None` where the hardware
/// lacks the type or no source gives the number. Tensor / matrix-core rates except `fp32`, which is
/// the non-tensor (vector) FP32 rate. GeForce cards list FP16/BF16/FP8 with FP32 accumulation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tflops {
    pub fp32: Option<f64>,
    pub tf32: Option<f64>,
    pub fp16: Option<f64>,
    pub bf16: Option<f64>,
    pub fp8: Option<f64>,
    pub int8: Option<f64>,
    pub fp4: Option<f64>,
}

impl Tflops {
    /// The data-type keys, narrowest last.
    pub const KEYS: [&'static str; 7] = ["fp32", "tf32", "fp16", "bf16", "fp8", "int8", "fp4"];

    /// The TFLOPS for a data type name (`bf16`, `bfloat16`, `fp16`, `float16`, `fp32`, `tf32`,
    /// `fp8`, `int8`, `fp4`, case-insensitive); `None` if unknown or absent.
    pub fn get(&self, dtype: &str) -> Option<f64> {
        match dtype.to_ascii_lowercase().as_str() {
            "fp32" | "f32" | "float32" => self.fp32,
            "tf32" => self.tf32,
            "fp16" | "f16" | "float16" | "half" => self.fp16,
            "bf16" | "bfloat16" => self.bf16,
            "fp8" | "f8" | "float8" => self.fp8,
            "int8" | "i8" => self.int8,
            "fp4" | "f4" | "float4" => self.fp4,
            _ => None,
        }
    }

    /// Every present value with its key, in the order of [`Tflops::KEYS`].
    pub fn entries(&self) -> Vec<(&'static str, f64)> {
        Self::KEYS.iter().filter_map(|&k| self.get(k).map(|v| (k, v))).collect()
    }
}

/// Kind of GPU-to-GPU link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LinkKind {
    Nvlink2,
    Nvlink3,
    Nvlink4,
    Nvlink5,
    Pcie3,
    Pcie4,
    Pcie5,
    InfinityFabric,
    Roce,
}

/// The link every pair of GPUs in a typical multi-GPU node can use. Two-card bridges (NVLink
/// bridges on PCIe cards) are noted in the data's comments, not modelled here.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Interconnect {
    pub kind: LinkKind,
    /// GB/s (1e9 bytes): total bidirectional as the vendor quotes it for NVLink, Infinity Fabric
    /// and RoCE; per direction for PCIe.
    pub bandwidth_gb_s: f64,
}

/// PCI Express generation of the host link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PcieGen {
    Gen3,
    Gen4,
    Gen5,
    Gen6,
}

impl PcieGen {
    /// GB/s one direction of an x16 link carries: gen3 8 GT/s × 128/130 × 16 lanes / 8 = 15.75,
    /// doubling with each generation (gen6 121, after its FLIT overhead).
    pub fn x16_gb_s(self) -> f64 {
        match self {
            PcieGen::Gen3 => 15.75,
            PcieGen::Gen4 => 31.5,
            PcieGen::Gen5 => 63.0,
            PcieGen::Gen6 => 121.0,
        }
    }
}

/// What the GPU costs, where a source gives it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// US dollars: launch MSRP for consumer cards, a quoted price otherwise.
    pub purchase_usd: Option<u32>,
    /// US dollars per GPU-hour, a commonly quoted on-demand cloud price.
    pub hourly_usd: Option<f64>,
    pub source: String,
}

/// One accelerator of the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GpuSpec {
    /// Lowercase, unique id used on the command line (`h100-sxm`).
    pub id: String,
    pub name: String,
    pub vendor: Vendor,
    pub arch: Arch,
    /// CUDA compute capability (`"9.0"`); NVIDIA only.
    pub compute_capability: Option<String>,
    /// Usable memory in MiB as the driver reports it, else the vendor capacity converted.
    pub memory_mib: u64,
    /// Where `memory_mib` comes from.
    pub memory_note: String,
    /// Memory the driver and GPU firmware reserve for themselves, MiB (NVML v2 `reserved`,
    /// `nvidia-smi -q` "FB Memory Usage: Reserved"): CUDA's total is `memory_mib` less this.
    /// NVIDIA only; `None` elsewhere.
    pub reserved_mib: Option<u64>,
    /// Where `reserved_mib` comes from (the observation, its driver, or the GPU it is borrowed from).
    pub reserved_note: Option<String>,
    /// Peak memory bandwidth, GB/s (1e9 bytes per second).
    pub bandwidth_gb_s: f64,
    /// A published device-to-device copy's achieved rate, GB/s counting read + write bytes, where
    /// one was found: it replaces the generation's bandwidth fraction (`headroom bench`'s
    /// calibration replaces it in turn).
    pub copy_gb_s: Option<f64>,
    /// Where `copy_gb_s` comes from: the tool, the figure and the source key.
    pub copy_note: Option<String>,
    pub tflops: Tflops,
    pub interconnect: Option<Interconnect>,
    pub pcie: Option<PcieGen>,
    /// Board power, watts.
    pub tdp_w: Option<u32>,
    pub price: Option<Price>,
    /// CPU and GPU share one memory pool (Apple silicon, AMD's Strix Halo).
    #[serde(default)]
    pub unified_memory: bool,
    /// Of a unified memory, what the OS lets the GPU use by default, MiB: on a Mac what macOS
    /// lets it wire (Metal's `recommendedMaxWorkingSetSize`; `sudo sysctl iogpu.wired_limit_mb`
    /// raises it), on an AMD APU under Linux the amdgpu driver's GTT limit (half the RAM;
    /// `ttm.pages_limit` raises it). Unified memory only.
    pub gpu_working_set_mib: Option<u64>,
    /// Where `gpu_working_set_mib` comes from.
    pub gpu_working_set_note: Option<String>,
    /// GPUs one machine holds at most, where the product fixes it (a DGX Spark's one GB10;
    /// unified-memory machines are one GPU too): `--gpu ID:COUNT` beyond it is refused, and `fit`
    /// leaves such counts out. Several machines over the network are not modelled for inference.
    pub max_per_node: Option<u32>,
    /// Other names `--gpu` accepts (`dgx-spark` for `gb10`).
    #[serde(default)]
    pub aliases: Vec<String>,
    /// Where every number of the entry comes from.
    pub sources: Vec<String>,
}

/// Vendor and brand words of GPU names (`NVIDIA GeForce RTX 4090`, `AMD Radeon RX 7900 XTX`):
/// no part of the model they name.
const BRAND_WORDS: [&str; 7] = ["nvidia", "geforce", "tesla", "amd", "radeon", "intel", "apple"];

impl GpuSpec {
    /// The id, then the aliases.
    fn names(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.id.as_str()).chain(self.aliases.iter().map(String::as_str))
    }

    /// Usable memory in bytes (`memory_mib` × 2^20).
    pub fn memory_bytes(&self) -> u64 {
        self.memory_mib * 1024 * 1024
    }

    /// Memory CUDA processes can allocate: the driver's total less its own reservation
    /// (`cudaMemGetInfo`'s and `torch.cuda.get_device_properties().total_memory`'s total). H200,
    /// driver 580: 143,771 − 615 = 143,156 MiB; measured 150,109,880,320 B = 143,155.94 MiB
    /// (data/measurements/device/2026-11-27-h200/context.json). On unified memory, what macOS
    /// lets the GPU wire (`gpu_working_set_mib`): M2 Ultra 192 GiB, 147,456 MiB.
    pub fn usable_bytes(&self) -> u64 {
        match self.gpu_working_set_mib {
            Some(mib) => mib * 1024 * 1024,
            None => self.memory_bytes() - self.reserved_bytes(),
        }
    }

    /// What the driver and firmware keep (`reserved_mib` × 2^20; 0 off NVIDIA).
    pub fn reserved_bytes(&self) -> u64 {
        self.reserved_mib.unwrap_or(0) * 1024 * 1024
    }

    /// Peak memory bandwidth in bytes per second (`bandwidth_gb_s` × 1e9).
    pub fn bandwidth_bytes_per_s(&self) -> f64 {
        self.bandwidth_gb_s * 1e9
    }

    /// Dense peak for a data type in FLOP/s (OP/s for `int8`); `None` if the GPU lacks it.
    pub fn peak_flops(&self, dtype: &str) -> Option<f64> {
        self.tflops.get(dtype).map(|t| t * 1e12)
    }
}

/// An id that is not in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("unknown GPU '{id}'{} (headroom gpus lists all)", did_you_mean(.suggestions))]
pub struct UnknownGpu {
    pub id: String,
    pub suggestions: Vec<String>,
}

/// A `--gpu ID[:COUNT]` argument that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum GpuArgError {
    #[error("empty GPU argument; expected ID or ID:COUNT, e.g. rtx-4090:2")]
    Empty,
    #[error("missing GPU id in '{arg}'; expected ID or ID:COUNT, e.g. rtx-4090:2")]
    MissingId { arg: String },
    #[error("invalid GPU count '{count}' in '{arg}'; expected a whole number from 1 to {MAX_GPU_COUNT}")]
    InvalidCount { arg: String, count: String },
    #[error(transparent)]
    UnknownGpu(#[from] UnknownGpu),
}

/// A catalog file that does not parse or breaks a rule.
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("GPU catalog does not parse: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("GPU catalog entry '{id}': {problem}")]
    Invalid { id: String, problem: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    gpu: Vec<GpuSpec>,
}

/// All known GPUs, in file order.
#[derive(Debug, Clone)]
pub struct GpuCatalog {
    gpus: Vec<GpuSpec>,
}

impl GpuCatalog {
    /// The catalog embedded from `data/gpus.toml`, parsed once.
    pub fn builtin() -> &'static GpuCatalog {
        static BUILTIN: OnceLock<GpuCatalog> = OnceLock::new();
        BUILTIN.get_or_init(|| {
            GpuCatalog::from_toml_str(BUILTIN_TOML)
                .unwrap_or_else(|e| panic!("built-in data/gpus.toml is invalid: {e}"))
        })
    }

    /// Parses and validates a catalog in the `data/gpus.toml` format.
    pub fn from_toml_str(text: &str) -> Result<GpuCatalog, CatalogError> {
        let file: CatalogFile = toml::from_str(text)?;
        let catalog = GpuCatalog { gpus: file.gpu };
        catalog.validate()?;
        Ok(catalog)
    }

    /// Looks up a GPU by id or alias (case-insensitive, surrounding spaces ignored), then by the
    /// one id or alias that matches with separators left out (`rtx4090`, `RTX 4090`; see
    /// [`loose_key`]), then, for an input that starts with the vendor, as the driver names it
    /// (`NVIDIA H100 80GB HBM3`, `NVIDIA GeForce RTX 4090`) when that names one entry.
    pub fn get(&self, id: &str) -> Result<&GpuSpec, UnknownGpu> {
        let wanted = id.trim().to_ascii_lowercase();
        let key = loose_key(&wanted);
        let vendor = ["nvidia ", "amd ", "intel ", "apple "].iter().any(|v| wanted.starts_with(v));
        self.gpus
            .iter()
            .find(|g| g.names().any(|n| n == wanted))
            .or_else(|| unique(self.gpus.iter().filter(|g| g.names().any(|n| loose_key(n) == key))))
            .or_else(|| vendor.then(|| self.match_driver_name(&wanted, None)).flatten())
            .ok_or_else(|| {
                // A driver's name suggests by what follows the vendor's words.
                let mut model = wanted.as_str();
                while let Some((_, rest)) = model.split_once(' ').filter(|(w, _)| BRAND_WORDS.contains(w)) {
                    model = rest.trim_start();
                }
                UnknownGpu {
                    id: id.trim().to_string(),
                    suggestions: closest(model, self.gpus.iter().flat_map(GpuSpec::names)),
                }
            })
    }

    /// The entry for a device the driver names (`NVIDIA H100 80GB HBM3`, `Tesla T4`,
    /// `NVIDIA A100-SXM4-80GB`): the one whose name has the same words, vendor and brand words
    /// (NVIDIA, GeForce, Tesla, AMD, Radeon ...), memory sizes, memory types and the catalog's
    /// parenthesised notes aside; the same form factor (PCIe, SXM, NVL: none in a driver's name
    /// means SXM for the GPUs sold both ways); and memory within 5% of `memory_total_bytes`
    /// where NVML reports it, else of a size the name states (`80GB`), the nearest winning.
    /// A name that fits none, or several equally (`NVIDIA A100` without a size), matches none:
    /// an RTX 3080 12GB is not the catalog's 10 GB RTX 3080, an RX 7900 XT not an XTX.
    pub fn match_driver_name(&self, name: &str, memory_total_bytes: Option<u64>) -> Option<&GpuSpec> {
        let dev = DriverName::parse(name);
        let mib = memory_total_bytes.map(|b| b >> 20).or(dev.stated_mib);
        let mut ranked: Vec<(u64, &GpuSpec)> = self
            .gpus
            .iter()
            .filter_map(|g| {
                let cat = DriverName::parse(&g.name);
                let form_agrees = match (dev.form, cat.form) {
                    (Some(a), Some(b)) => a == b,
                    (None, form) => !matches!(form, Some("pcie" | "nvl")),
                    (Some(_), None) => true,
                };
                let gap = mib.map_or(0, |m| g.memory_mib.abs_diff(m));
                let close = mib.is_none_or(|m| gap * 20 <= m);
                (cat.words == dev.words && form_agrees && close).then_some((gap, g))
            })
            .collect();
        ranked.sort_by_key(|(gap, _)| *gap);
        match ranked.as_slice() {
            [(best, g), (next, _), ..] if best < next => Some(g),
            [(_, g)] => Some(g),
            _ => None,
        }
    }

    /// Every GPU, in file order.
    pub fn iter(&self) -> impl Iterator<Item = &GpuSpec> {
        self.gpus.iter()
    }

    /// Parses `ID` or `ID:COUNT` (count 1..=[`MAX_GPU_COUNT`], default 1).
    pub fn parse_gpu_arg(&self, arg: &str) -> Result<(&GpuSpec, u32), GpuArgError> {
        let trimmed = arg.trim();
        if trimmed.is_empty() {
            return Err(GpuArgError::Empty);
        }
        let (id, count) = match trimmed.split_once(':') {
            None => (trimmed, 1),
            Some((id, count)) => (id.trim(), parse_count(trimmed, count.trim())?),
        };
        if id.is_empty() {
            return Err(GpuArgError::MissingId { arg: trimmed.to_string() });
        }
        Ok((self.get(id)?, count))
    }

    fn validate(&self) -> Result<(), CatalogError> {
        let mut seen = HashSet::new();
        for gpu in &self.gpus {
            let problem = match check_entry(gpu) {
                Err(problem) => problem,
                Ok(()) if gpu.names().all(|n| seen.insert(n)) => continue,
                Ok(()) => "duplicate id or alias",
            };
            let id = gpu.id.clone();
            return Err(CatalogError::Invalid { id, problem: problem.to_string() });
        }
        Ok(())
    }
}

/// [`GpuCatalog::parse_gpu_arg`] on the built-in catalog.
pub fn parse_gpu_arg(arg: &str) -> Result<(&'static GpuSpec, u32), GpuArgError> {
    GpuCatalog::builtin().parse_gpu_arg(arg)
}

fn parse_count(arg: &str, count: &str) -> Result<u32, GpuArgError> {
    match count.parse::<u32>() {
        Ok(n) if (1..=MAX_GPU_COUNT).contains(&n) => Ok(n),
        _ => Err(GpuArgError::InvalidCount { arg: arg.to_string(), count: count.to_string() }),
    }
}

/// The first rule an entry breaks, if any.
fn check_entry(gpu: &GpuSpec) -> Result<(), &'static str> {
    let positive = |v: f64| v.is_finite() && v > 0.0;
    let id_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    let link = gpu.interconnect.as_ref().map(|i| i.bandwidth_gb_s);
    let hourly = gpu.price.as_ref().and_then(|p| p.hourly_usd);
    let id_ok = gpu.names().all(|n| !n.is_empty() && n.chars().all(id_char));
    let arch_ok = gpu.arch.vendor() == gpu.vendor;
    let cc_ok = gpu.compute_capability.is_none() || gpu.vendor == Vendor::Nvidia;
    let unified_ok = !gpu.unified_memory || gpu.vendor == Vendor::Apple || gpu.arch == Arch::Rdna35;
    let per_node_ok = gpu.max_per_node.is_none_or(|n| n >= 1);
    let sizes_ok = gpu.memory_mib > 0 && positive(gpu.bandwidth_gb_s);
    let tflops_ok = gpu.tflops.entries().iter().all(|(_, v)| positive(*v));
    let noted = !gpu.memory_note.trim().is_empty();
    let reserved_noted = gpu.reserved_note.as_ref().is_some_and(|n| !n.trim().is_empty());
    let reserved_ok = match gpu.reserved_mib {
        Some(r) => gpu.vendor == Vendor::Nvidia && r < gpu.memory_mib && reserved_noted,
        None => gpu.vendor != Vendor::Nvidia && gpu.reserved_note.is_none(),
    };
    let working_set_noted = gpu.gpu_working_set_note.as_ref().is_some_and(|n| !n.trim().is_empty());
    let working_set_ok = match gpu.gpu_working_set_mib {
        Some(w) => gpu.unified_memory && w > 0 && w <= gpu.memory_mib && working_set_noted,
        None => !gpu.unified_memory && gpu.gpu_working_set_note.is_none(),
    };
    let copy_ok = match (gpu.copy_gb_s, &gpu.copy_note) {
        (Some(c), Some(note)) => positive(c) && c <= gpu.bandwidth_gb_s && !note.trim().is_empty(),
        (None, None) => true,
        _ => false,
    };
    let sourced = gpu.sources.iter().any(|s| !s.trim().is_empty());
    let rules = [
        (id_ok, "id and aliases must use only a-z, 0-9 and '-'"),
        (arch_ok, "arch does not belong to the vendor"),
        (cc_ok, "compute_capability is NVIDIA-only"),
        (unified_ok, "unified_memory is for Apple silicon and AMD's RDNA 3.5 APUs"),
        (per_node_ok, "max_per_node must be at least 1"),
        (sizes_ok, "memory and bandwidth must be positive"),
        (tflops_ok, "every tflops value must be positive"),
        (link.is_none_or(positive), "link bandwidth must be positive"),
        (hourly.is_none_or(positive), "hourly price must be positive"),
        (noted, "memory_note is required"),
        (reserved_ok, "NVIDIA GPUs need reserved_mib (below memory_mib) and reserved_note; others have neither"),
        (
            working_set_ok,
            "unified-memory GPUs need gpu_working_set_mib (at most memory_mib) and gpu_working_set_note; others have neither",
        ),
        (copy_ok, "copy_gb_s needs copy_note, and at most bandwidth_gb_s"),
        (sourced, "at least one source is required"),
    ];
    rules.iter().find(|(ok, _)| !ok).map_or(Ok(()), |(_, problem)| Err(problem))
}

/// A device name split into what tells GPUs apart: its other words (sorted), its form factor and
/// the memory it states.
struct DriverName {
    words: Vec<String>,
    form: Option<&'static str>,
    stated_mib: Option<u64>,
}

impl DriverName {
    fn parse(name: &str) -> DriverName {
        // The catalog's notes in parentheses (core counts, the cloud, the board) are no part of
        // what the driver prints.
        let mut plain = String::new();
        let mut depth = 0u32;
        for c in name.chars() {
            match c {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ if depth == 0 => plain.push(c.to_ascii_lowercase()),
                _ => {}
            }
        }
        let memory_type = |t: &str| t.starts_with("hbm") || t.starts_with("gddr");
        let size = |t: &str| t.strip_suffix("gb").and_then(|n| n.parse::<u64>().ok());
        let form_of = |t: &str| ["pcie", "nvl", "sxm"].into_iter().find(|f| t.starts_with(f));
        let (mut words, mut form, mut stated_mib) = (Vec::new(), None, None);
        for t in plain.split(|c: char| c.is_whitespace() || c == '-' || c == '_').filter(|t| !t.is_empty()) {
            if let Some(gib) = size(t) {
                stated_mib = Some(gib << 10);
            } else if let Some(f) = form_of(t) {
                form = Some(f);
            } else if !BRAND_WORDS.contains(&t) && t != "instinct" && !memory_type(t) {
                words.push(t.to_string());
            }
        }
        words.sort();
        DriverName { words, form, stated_mib }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE: &str = r#"
        [[gpu]]
        id = "test-gpu"
        name = "Test GPU"
        vendor = "nvidia"
        arch = "hopper"
        compute_capability = "9.0"
        memory_mib = 1024
        memory_note = "made up for a unit test"
        reserved_mib = 24
        reserved_note = "made up too"
        bandwidth_gb_s = 1000.0
        tflops = { fp32 = 10.0, bf16 = 100.0, fp8 = 200.0 }
        interconnect = { kind = "nvlink4", bandwidth_gb_s = 900.0 }
        pcie = "gen5"
        sources = ["unit test"]
    "#;

    #[test]
    fn units_convert_exactly() {
        let cat = GpuCatalog::from_toml_str(ONE).unwrap();
        let gpu = cat.get("test-gpu").unwrap();
        assert_eq!(gpu.memory_bytes(), 1024 * 1024 * 1024);
        assert_eq!(gpu.usable_bytes(), 1000 * 1024 * 1024);
        assert_eq!(gpu.bandwidth_bytes_per_s(), 1.0e12);
        assert_eq!(gpu.peak_flops("bf16"), Some(100.0e12));
        assert_eq!(gpu.peak_flops("BFloat16"), Some(100.0e12));
        assert_eq!(gpu.peak_flops("fp16"), None);
        assert_eq!(gpu.peak_flops("fp64"), None);
        assert_eq!(gpu.interconnect.as_ref().unwrap().kind, LinkKind::Nvlink4);
        assert_eq!(gpu.pcie, Some(PcieGen::Gen5));
    }

    #[test]
    fn ids_are_found_without_separators_and_by_driver_name() {
        let cat = GpuCatalog::builtin();
        let id = |input: &str| cat.get(input).map(|g| g.id.as_str());
        assert_eq!(id("rtx4090"), Ok("rtx-4090"));
        assert_eq!(id(" RTX 4090 "), Ok("rtx-4090"));
        assert_eq!(id("H100_SXM"), Ok("h100-sxm"));
        assert_eq!(id("NVIDIA GeForce RTX 4090"), Ok("rtx-4090"));
        assert_eq!(id("NVIDIA H100 80GB HBM3"), Ok("h100-sxm"));
        assert_eq!(id("NVIDIA A100-SXM4-40GB"), Ok("a100-40gb"));
        assert_eq!(id("NVIDIA RTX 6000 Ada Generation"), Ok("rtx-6000-ada"));
        assert_eq!(id("Apple M3 Max"), Ok("m3-max"));
        assert_eq!(id("AMD Radeon RX 7900 XTX"), Ok("rx-7900-xtx"));
        // Cards the catalog lacks are not taken for their neighbours.
        for other in [
            "NVIDIA A100-PCIE-40GB",
            "NVIDIA Tesla V100-PCIE-16GB",
            "NVIDIA GeForce RTX 3080 12GB",
            "NVIDIA GeForce RTX 4060 Ti 8GB",
            "AMD Radeon RX 7900 XT",
            "AMD Radeon RX 7900 GRE",
            "AMD Radeon RX 9070",
            "Apple M5 Pro",
        ] {
            assert!(cat.get(other).is_err(), "{other} matched {:?}", id(other));
        }
        // Two entries fit equally: the user chooses.
        let err = cat.get("NVIDIA A100").unwrap_err();
        assert_eq!(err.suggestions, ["a100-40gb", "a100-80gb", "a100-80gb-pcie"]);
        // Bare model tokens stay ambiguous, and a memory size is no model.
        assert!(cat.get("h100").is_err());
        let err = cat.get("h100-80gb").unwrap_err();
        assert!(err.suggestions.iter().all(|s| s.starts_with("h100")), "{:?}", err.suggestions);
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let twice = format!("{ONE}\n{ONE}");
        let err = GpuCatalog::from_toml_str(&twice).unwrap_err();
        assert_eq!(err.to_string(), "GPU catalog entry 'test-gpu': duplicate id or alias");
        let other = ONE.replace("id = \"test-gpu\"", "id = \"other-gpu\"\naliases = [\"test-gpu\"]");
        let err = GpuCatalog::from_toml_str(&format!("{ONE}\n{other}")).unwrap_err();
        assert_eq!(err.to_string(), "GPU catalog entry 'other-gpu': duplicate id or alias");
    }

    #[test]
    fn broken_entries_are_rejected() {
        for (from, to, needle) in [
            ("id = \"test-gpu\"", "id = \"Test-GPU\"", "a-z, 0-9"),
            ("vendor = \"nvidia\"", "vendor = \"amd\"", "does not belong"),
            ("bf16 = 100.0", "bf16 = 0.0", "tflops"),
            ("sources = [\"unit test\"]", "sources = []", "source"),
            ("reserved_mib = 24", "reserved_mib = 1024", "reserved_mib"),
            ("reserved_mib = 24\n", "", "reserved_mib"),
            ("pcie = \"gen5\"", "pcie = \"gen5\"\nflops = 1", "unknown field"),
            ("bandwidth_gb_s = 1000.0", "bandwidth_gb_s = 1000.0\ncopy_gb_s = 900.0", "copy_note"),
            ("bandwidth_gb_s = 1000.0", "bandwidth_gb_s = 1000.0\ncopy_gb_s = 1100.0\ncopy_note = \"x\"", "copy_note"),
            ("id = \"test-gpu\"", "id = \"test-gpu\"\naliases = [\"Test GPU\"]", "a-z, 0-9"),
        ] {
            let err = GpuCatalog::from_toml_str(&ONE.replace(from, to)).unwrap_err();
            assert!(err.to_string().contains(needle), "{needle}: {err}");
        }
    }

    const MAC: &str = r#"
        [[gpu]]
        id = "test-mac"
        name = "Test Mac"
        vendor = "apple"
        arch = "apple-m2"
        memory_mib = 98304
        memory_note = "made up for a unit test"
        gpu_working_set_mib = 73728
        gpu_working_set_note = "3/4, as macOS 14 gives 96 GiB"
        bandwidth_gb_s = 800.0
        tflops = {}
        unified_memory = true
        sources = ["unit test"]
    "#;

    /// On unified memory the plan gets what macOS lets the GPU wire, not the whole pool; the
    /// limit needs its note, fits inside the memory and belongs to unified memory only.
    #[test]
    fn unified_memory_offers_its_gpu_working_set() {
        let mac = GpuCatalog::from_toml_str(MAC).unwrap();
        let gpu = mac.get("test-mac").unwrap();
        assert_eq!((gpu.memory_bytes(), gpu.usable_bytes()), (96 << 30, 72 << 30));
        assert_eq!(GpuCatalog::builtin().get("m2-ultra").unwrap().usable_bytes(), 144 << 30);
        for (text, from, to) in [
            (MAC, "gpu_working_set_mib = 73728", "gpu_working_set_mib = 99000"),
            (MAC, "gpu_working_set_mib = 73728\n", ""),
            (MAC, "gpu_working_set_note = \"3/4, as macOS 14 gives 96 GiB\"\n", ""),
            (ONE, "pcie = \"gen5\"", "pcie = \"gen5\"\ngpu_working_set_mib = 512\ngpu_working_set_note = \"x\""),
        ] {
            let err = GpuCatalog::from_toml_str(&text.replace(from, to)).unwrap_err();
            assert!(err.to_string().contains("gpu_working_set_mib"), "{to}: {err}");
        }
    }
}
