//! The CUDA kernel sources in `kernels/`, embedded with `include_str!`, and their NVRTC
//! compilation: every family is prefixed with `kernels/common.cuh` (NVRTC has no headers) and
//! compiled to PTX for one virtual architecture (`compute_XY`). `headroom bench` compiles for the
//! device's compute capability and caches each module per process; `examples/compile_kernels.rs`
//! (run by `scripts/check-kernels.sh` in CI) uses this same function for compute_80 and compute_90.

use crate::gpu::GpuError;

const COMMON: &str = include_str!("../../kernels/common.cuh");

/// One `.cu` file: a kernel family and its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Family {
    /// The file stem, e.g. `attention_prefill`.
    pub name: &'static str,
    /// The source without the common prelude.
    pub source: &'static str,
    /// The lowest compute capability (major·10 + minor) the family compiles for.
    pub min_sm: u32,
}

macro_rules! family {
    ($name:literal, $min_sm:expr) => {
        Family { name: $name, source: include_str!(concat!("../../kernels/", $name, ".cu")), min_sm: $min_sm }
    };
}

/// Every kernel family, in the order the suite uses them.
pub const FAMILIES: [Family; 11] = [
    family!("fill", 70),
    family!("bandwidth", 70),
    family!("attention_decode", 70),
    family!("gemv", 70),
    family!("rmsnorm", 70),
    family!("rope", 70),
    family!("silu_gate", 70),
    family!("adamw", 70),
    family!("layer", 70),
    family!("train", 70),
    family!("attention_prefill", 80),
];

/// The family named `name`.
pub fn family(name: &str) -> Option<&'static Family> {
    FAMILIES.iter().find(|f| f.name == name)
}

/// The full translation unit NVRTC sees: the common prelude, then the family.
pub fn translation_unit(f: &Family) -> String {
    format!("{COMMON}\n#line 1 \"{}.cu\"\n{}", f.name, f.source)
}

/// `compute_XY` for a compute capability.
pub fn virtual_arch(major: u32, minor: u32) -> String {
    format!("compute_{major}{minor}")
}

/// True when NVRTC can be loaded (checked before any call: cudarc panics without the library).
pub fn nvrtc_present() -> bool {
    // SAFETY: only tries to dlopen the library; no NVRTC call is made.
    unsafe { cudarc::nvrtc::sys::is_culib_present() }
}

/// Compiles a family to PTX text for `arch` (`compute_90`).
pub fn compile_ptx(f: &Family, arch: &str) -> Result<String, GpuError> {
    if !nvrtc_present() {
        return Err(GpuError::NvrtcNotFound);
    }
    let opts = cudarc::nvrtc::CompileOptions {
        options: vec![format!("--gpu-architecture={arch}"), "--std=c++17".into(), "-lineinfo".into()],
        fmad: Some(true),
        name: Some(format!("{}.cu", f.name)),
        ..Default::default()
    };
    match cudarc::nvrtc::compile_ptx_with_opts(translation_unit(f), opts) {
        Ok(ptx) => Ok(ptx.to_src()),
        Err(cudarc::nvrtc::CompileError::CompileError { log, .. }) => Err(GpuError::KernelCompile {
            kernel: f.name.to_string(),
            arch: arch.to_string(),
            log: log.to_string_lossy().into_owned(),
        }),
        Err(e) => {
            Err(GpuError::KernelCompile { kernel: f.name.to_string(), arch: arch.to_string(), log: e.to_string() })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_is_embedded_and_named_after_its_file() {
        for f in &FAMILIES {
            assert!(f.source.contains("extern \"C\" __global__"), "{} has no kernel", f.name);
            assert!(translation_unit(f).starts_with("// common.cuh"));
        }
        assert!(family("gemv").is_some());
        assert_eq!(virtual_arch(9, 0), "compute_90");
    }

    #[test]
    fn kernels_are_header_free() {
        for f in &FAMILIES {
            assert!(!f.source.contains("#include"), "{} includes a header; NVRTC from the wheel has none", f.name);
        }
    }
}
