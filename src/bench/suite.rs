//! The benchmark schedule: which workloads, how many warm-ups and repeats, and the loop that runs
//! them on a [`Gpu`]: check correctness, warm up, time each repeat, keep every sample; a workload
//! that fails (out of memory, a wrong result, a launch error) is recorded and the next one runs.

use super::stats::Summary;
use crate::gpu::workload::{BandwidthOp, DecodeKernel, GemmDtype, PrefillKernel};
use crate::gpu::{Check, Gpu, Workload};
use serde::Serialize;

/// How long to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    pub warmups: u32,
    pub repeats: u32,
    /// Launches per timed sample (short kernels are timed in batches).
    pub min_sample_ms: u32,
}

impl Plan {
    pub fn new(quick: bool) -> Self {
        if quick {
            Plan { warmups: 2, repeats: 10, min_sample_ms: 2 }
        } else {
            Plan { warmups: 5, repeats: 30, min_sample_ms: 5 }
        }
    }
}

/// The workloads, sized to fill a large GPU sensibly (buffers far larger than L2).
pub fn workloads(quick: bool) -> Vec<Workload> {
    let bw = if quick { 1u64 << 30 } else { 2u64 << 30 };
    let prefill = |kernel, kv_heads| Workload::AttentionPrefill {
        batch: 1,
        heads: 32,
        kv_heads,
        seq: 4096,
        head_dim: 128,
        kernel,
    };
    let decode =
        |kernel| Workload::AttentionDecode { batch: 8, heads: 32, kv_heads: 8, ctx: 8192, head_dim: 128, kernel };
    let mut w = vec![
        Workload::Bandwidth { op: BandwidthOp::Copy, bytes: bw },
        Workload::Bandwidth { op: BandwidthOp::Read, bytes: bw },
        Workload::Bandwidth { op: BandwidthOp::Write, bytes: bw },
        Workload::Gemm { dtype: GemmDtype::Bf16, m: 8192, n: 8192, k: 8192 },
        prefill(PrefillKernel::Br64, 32),
        prefill(PrefillKernel::Br128, 32),
        prefill(PrefillKernel::W32, 32),
        decode(DecodeKernel::Split),
        decode(DecodeKernel::V2),
        Workload::GemvInt4 { n: 28672, k: 8192 },
        Workload::GemvInt4Q8 { n: 28672, k: 8192 },
        Workload::GemvInt4V2 { n: 28672, k: 8192 },
        Workload::GemvInt8 { n: 8192, k: 8192 },
        Workload::Gemm { dtype: GemmDtype::Fp16, m: 8192, n: 8192, k: 8192 },
        Workload::Gemm { dtype: GemmDtype::Tf32, m: 8192, n: 8192, k: 8192 },
        Workload::Gemm { dtype: GemmDtype::Int8, m: 8192, n: 8192, k: 8192 },
        Workload::Gemm { dtype: GemmDtype::Fp8, m: 8192, n: 8192, k: 8192 },
        Workload::RmsNorm { rows: 4096, dim: 8192 },
        Workload::Rope { tokens: 4096, heads: 32, head_dim: 128 },
        Workload::SiluGate { n: 64 << 20 },
        Workload::AdamW { n: 64 << 20 },
    ];
    if !quick {
        w.insert(12, Workload::Gemm { dtype: GemmDtype::Fp32, m: 8192, n: 8192, k: 8192 });
        w.insert(5, prefill(PrefillKernel::Br64, 8));
    }
    w
}

/// What happened to one workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CaseResult {
    pub name: String,
    pub workload: Workload,
    pub check: Option<Check>,
    /// Launches per sample.
    pub launches_per_sample: u32,
    /// Per-launch times.
    pub summary: Option<Summary>,
    /// Why no timing exists (failed check, out of memory, launch error).
    pub error: Option<String>,
}

/// Runs one workload; never fails: errors land in the result.
pub fn run_case(gpu: &mut dyn Gpu, w: &Workload, plan: Plan) -> CaseResult {
    let mut out = CaseResult {
        name: w.name(),
        workload: w.clone(),
        check: None,
        launches_per_sample: 1,
        summary: None,
        error: None,
    };
    match gpu.prepare(w) {
        Err(e) => out.error = Some(e.to_string()),
        Ok(check) if !check.passed => {
            out.error = Some(format!(
                "wrong result: max relative error {:.3e} > tolerance {:.1e} against {}",
                check.max_rel_error, check.tolerance, check.reference
            ));
            out.check = Some(check);
        }
        Ok(check) => {
            out.check = Some(check);
            match time_case(gpu, plan) {
                Ok((launches, samples)) => {
                    out.launches_per_sample = launches;
                    out.summary = Summary::of(&samples);
                }
                Err(e) => out.error = Some(e.to_string()),
            }
        }
    }
    gpu.release();
    out
}

/// Warm-ups, then a calibrated number of launches per sample, then the repeats.
fn time_case(gpu: &mut dyn Gpu, plan: Plan) -> Result<(u32, Vec<f64>), crate::gpu::GpuError> {
    let one = gpu.time(1)?;
    let launches = if one > 0.0 { ((plan.min_sample_ms as f64 / one).ceil() as u32).clamp(1, 1000) } else { 1 };
    for _ in 0..plan.warmups {
        gpu.time(launches)?;
    }
    let mut samples = Vec::with_capacity(plan.repeats as usize);
    for _ in 0..plan.repeats {
        samples.push(gpu.time(launches)? / launches as f64);
    }
    Ok((launches, samples))
}

/// Runs every workload, calling `progress` after each.
pub fn run(
    gpu: &mut dyn Gpu,
    workloads: &[Workload],
    plan: Plan,
    mut progress: impl FnMut(&CaseResult),
) -> Vec<CaseResult> {
    workloads
        .iter()
        .map(|w| {
            let r = run_case(gpu, w, plan);
            progress(&r);
            r
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::mock::{MockGpu, Script};
    use crate::gpu::DeviceInfo;

    fn mock(scripts: Vec<(String, Script)>) -> MockGpu {
        MockGpu::new(DeviceInfo { name: "Mock H100".into(), ..Default::default() }, scripts)
    }

    #[test]
    fn a_failing_case_is_reported_and_the_suite_continues() {
        let ws =
            vec![Workload::SiluGate { n: 1024 }, Workload::AdamW { n: 1024 }, Workload::RmsNorm { rows: 4, dim: 4096 }];
        let mut gpu = mock(vec![
            (ws[0].name(), Script::OutOfMemory),
            (ws[1].name(), Script::WrongResult { max_rel_error: 0.5 }),
            (ws[2].name(), Script::Ok { ms_per_launch: 0.5, jitter_ms: vec![0.0, 0.1, -0.1] }),
        ]);
        let rs = run(&mut gpu, &ws, Plan { warmups: 1, repeats: 5, min_sample_ms: 1 }, |_| {});
        assert!(rs[0].error.as_ref().unwrap().contains("out of device memory"));
        assert!(rs[1].error.as_ref().unwrap().contains("wrong result"));
        assert!(rs[1].summary.is_none());
        let s = rs[2].summary.as_ref().unwrap();
        assert_eq!(s.samples_ms.len(), 5);
        assert_eq!(rs[2].launches_per_sample, 2);
        assert!((s.median_ms - 0.5).abs() < 1e-9, "{s:?}");
        assert_eq!(gpu.log.iter().filter(|l| *l == "release").count(), 3);
    }

    #[test]
    fn schedule_is_check_then_calibration_then_warmups_then_repeats() {
        let mut gpu = mock(vec![]);
        let w = Workload::AdamW { n: 8 };
        run_case(&mut gpu, &w, Plan { warmups: 2, repeats: 3, min_sample_ms: 5 });
        assert_eq!(
            gpu.log,
            vec!["prepare adamw 8", "time 1", "time 5", "time 5", "time 5", "time 5", "time 5", "release"]
        );
    }

    #[test]
    fn the_suite_covers_every_kernel_family() {
        let names: Vec<String> = workloads(true).iter().map(|w| w.name()).collect();
        for want in [
            "bandwidth copy",
            "gemm bf16 8192³",
            "attention prefill",
            "attention decode",
            "gemv int4",
            "gemv int8",
            "rmsnorm",
            "rope",
            "silu-gate",
            "adamw",
        ] {
            assert!(names.iter().any(|n| n.starts_with(want)), "{want} missing from {names:?}");
        }
        assert!(workloads(false).len() > workloads(true).len());
    }

    /// The decode candidate runs right after the kernel it would replace, in both schedules.
    #[test]
    fn the_suite_runs_decode_v2_after_the_split_kernel() {
        for quick in [true, false] {
            let names: Vec<String> = workloads(quick).iter().map(|w| w.name()).collect();
            let at = |n: &str| names.iter().position(|x| x == n);
            let v1 = at("attention decode b8 h32/8 ctx 8192");
            assert!(v1.is_some(), "{names:?}");
            assert_eq!(at("attention decode v2 b8 h32/8 ctx 8192"), v1.map(|i| i + 1), "{names:?}");
        }
    }

    /// Every GEMM type of issue 5, fp8 right after int8 in both schedules.
    #[test]
    fn the_suite_runs_fp8_after_int8() {
        for quick in [true, false] {
            let names: Vec<String> = workloads(quick).iter().map(|w| w.name()).collect();
            let at = |n: &str| names.iter().position(|x| x == n);
            assert_eq!(at("gemm fp8 8192³"), at("gemm int8 8192³").map(|i| i + 1), "{names:?}");
            for t in ["bf16", "fp16", "tf32", "int8", "fp8"] {
                assert!(at(&format!("gemm {t} 8192³")).is_some(), "{t} missing from {names:?}");
            }
        }
        assert!(workloads(false).iter().any(|w| w.name() == "gemm fp32 8192³"));
    }

    /// A GPU without FP8 tensor cores reports the case and runs the next one.
    #[test]
    fn an_unsupported_fp8_gemm_is_reported_and_the_suite_continues() {
        let fp8 = Workload::Gemm { dtype: GemmDtype::Fp8, m: 8192, n: 8192, k: 8192 };
        let ws = vec![fp8.clone(), Workload::RmsNorm { rows: 4096, dim: 8192 }];
        let mut gpu = mock(vec![(fp8.name(), Script::Unsupported { what: "fp8 GEMM (needs sm_89+)".into() })]);
        let rs = run(&mut gpu, &ws, Plan { warmups: 0, repeats: 2, min_sample_ms: 1 }, |_| {});
        assert_eq!(rs[0].error.as_deref(), Some("fp8 GEMM (needs sm_89+) is not supported on this device"));
        assert!(rs[0].summary.is_none() && rs[0].check.is_none());
        assert!(rs[1].error.is_none() && rs[1].summary.is_some());
    }
}
