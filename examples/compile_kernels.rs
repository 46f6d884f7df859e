//! Compiles every kernel family in `kernels/` to PTX for compute_80 and compute_90 with the same
//! NVRTC path `headroom bench` uses at run time, and writes `FAMILY.compute_XY.ptx` into the
//! folder given as the first argument (scripts/check-kernels.sh then assembles each with ptxas).
//! Needs libnvrtc on LD_LIBRARY_PATH; no GPU.

use headroom::gpu::kernels::{compile_ptx, FAMILIES};
use std::process::ExitCode;

fn main() -> ExitCode {
    let out = std::path::PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| ".".into()));
    let mut failed = 0;
    for arch in ["compute_80", "compute_90"] {
        for f in &FAMILIES {
            match compile_ptx(f, arch) {
                Ok(ptx) => {
                    let path = out.join(format!("{}.{arch}.ptx", f.name));
                    if let Err(e) = std::fs::write(&path, ptx) {
                        eprintln!("cannot write {}: {e}", path.display());
                        failed += 1;
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    failed += 1;
                }
            }
        }
    }
    if failed > 0 {
        eprintln!("{failed} kernel compilations failed");
        return ExitCode::FAILURE;
    }
    println!("compiled {} families for compute_80 and compute_90", FAMILIES.len());
    ExitCode::SUCCESS
}
