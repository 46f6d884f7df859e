//! The benchmark's outputs: the results table (achieved GB/s and TFLOPS against the catalog's
//! peaks) and the JSON profile (device, host, every sample summary, efficiency factors =
//! achieved ÷ catalog peak).

use super::host_memory::HostMemoryResult;
use super::suite::CaseResult;
use crate::catalog::gpus::GpuSpec;
use crate::gpu::host::HostInfo;
use crate::gpu::workload::Bound;
use crate::gpu::DeviceInfo;
use crate::report::Listing;
use serde::Serialize;

/// One row of the profile: a case with its achieved rates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measured {
    #[serde(flatten)]
    pub case: CaseResult,
    pub bytes_per_launch: u64,
    pub flops_per_launch: u64,
    pub achieved_gb_s: Option<f64>,
    pub achieved_tflops: Option<f64>,
    /// The catalog peak this case is judged against (GB/s or TFLOPS, by `bound`).
    pub catalog_peak: Option<f64>,
    pub bound: Bound,
    /// achieved ÷ catalog peak.
    pub efficiency: Option<f64>,
}

/// Everything `bench --json` writes.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Profile {
    pub schema_version: u32,
    pub headroom_version: String,
    pub device: DeviceInfo,
    pub catalog_id: Option<String>,
    pub host: HostInfo,
    pub quick: bool,
    pub results: Vec<Measured>,
    /// The host RAM's read bandwidth, measured beside the GPU suite (absent in older profiles).
    pub host_memory: Option<HostMemoryResult>,
}

/// Builds the profile from the suite's results.
pub fn profile(device: &DeviceInfo, host: HostInfo, quick: bool, results: Vec<CaseResult>) -> Profile {
    let spec = device.catalog_entry();
    let results = results.into_iter().map(|c| measured(c, spec)).collect();
    Profile {
        schema_version: 1,
        headroom_version: env!("CARGO_PKG_VERSION").into(),
        device: device.clone(),
        catalog_id: spec.map(|s| s.id.clone()),
        host,
        quick,
        results,
        host_memory: None,
    }
}

fn measured(case: CaseResult, spec: Option<&GpuSpec>) -> Measured {
    let (bytes, flops, bound) = (case.workload.bytes(), case.workload.flops(), case.workload.bound());
    let secs = case.summary.as_ref().map(|s| s.median_ms / 1e3).filter(|s| *s > 0.0);
    let gb_s = secs.map(|s| bytes as f64 / s / 1e9);
    let tflops = secs.filter(|_| flops > 0).map(|s| flops as f64 / s / 1e12);
    let catalog_peak = match bound {
        Bound::Memory => spec.map(|g| g.bandwidth_gb_s),
        Bound::Compute => spec.and_then(|g| case.workload.peak_key().and_then(|k| g.tflops.get(k))),
    };
    let achieved = if bound == Bound::Memory { gb_s } else { tflops };
    let efficiency = achieved.zip(catalog_peak).map(|(a, p)| a / p);
    Measured {
        case,
        bytes_per_launch: bytes,
        flops_per_launch: flops,
        achieved_gb_s: gb_s,
        achieved_tflops: tflops,
        catalog_peak,
        bound,
        efficiency,
    }
}

/// The results as a listing (rendered by `crate::report`).
pub fn listing(p: &Profile) -> Listing {
    let f = |v: Option<f64>, d: usize| v.map_or("—".to_string(), |x| format!("{x:.d$}"));
    let rows = p
        .results
        .iter()
        .map(|m| {
            let s = m.case.summary.as_ref();
            vec![
                m.case.name.clone(),
                m.case.check.as_ref().map_or("—".into(), |c| {
                    if c.passed {
                        format!("ok ({:.1e})", c.max_rel_error)
                    } else {
                        "FAIL".into()
                    }
                }),
                f(s.map(|s| s.median_ms * 1e3), 1),
                f(s.map(|s| 100.0 * s.relative_spread()), 1),
                f(m.achieved_gb_s, 0),
                f(m.achieved_tflops, 1),
                m.efficiency.map_or("—".into(), |e| format!("{:.0}%", 100.0 * e)),
                m.case.error.clone().unwrap_or_default(),
            ]
        })
        .chain(p.host_memory.iter().map(|h| {
            vec![
                format!("host RAM read ({} threads, {} MiB)", h.threads, h.buffer_bytes >> 20),
                "—".into(),
                f(Some(h.summary.median_ms * 1e3), 1),
                f(Some(100.0 * h.summary.relative_spread()), 1),
                f(Some(h.read_gb_s), 0),
                "—".into(),
                "—".into(),
                String::new(),
            ]
        }))
        .collect();
    let title = format!(
        "{} (sm_{}{}, driver {}, CUDA {}) — catalog: {}",
        p.device.name,
        p.device.compute_capability.0,
        p.device.compute_capability.1,
        p.device.driver_version,
        p.device.cuda_version,
        p.catalog_id.as_deref().unwrap_or("no match")
    );
    Listing {
        title,
        headers: vec!["kernel", "check", "median µs", "spread %", "GB/s", "TFLOPS", "of peak", "error"],
        rows,
        json: serde_json::to_value(p).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::suite::{run, Plan};
    use crate::gpu::mock::{MockGpu, Script};
    use crate::gpu::workload::{BandwidthOp, GemmDtype};
    use crate::gpu::{Gpu, Workload};

    /// The fp8 GEMM is judged against the catalog's `fp8` peak where the GPU has one (H100 SXM:
    /// 1978.9 dense TFLOPS) and has no efficiency where it has none (A100).
    #[test]
    fn fp8_gemm_is_judged_against_the_fp8_peak() {
        let fp8 = Workload::Gemm { dtype: GemmDtype::Fp8, m: 8192, n: 8192, k: 8192 };
        let rate = |name: &str, gib: u64| {
            let info = DeviceInfo { name: name.into(), memory_total_bytes: gib << 30, ..Default::default() };
            let mut gpu = MockGpu::new(info, vec![(fp8.name(), Script::Ok { ms_per_launch: 1.0, jitter_ms: vec![] })]);
            let results =
                run(&mut gpu, std::slice::from_ref(&fp8), Plan { warmups: 0, repeats: 3, min_sample_ms: 1 }, |_| {});
            profile(gpu.device(), HostInfo::default(), true, results).results.remove(0)
        };
        let h100 = rate("NVIDIA H100 80GB HBM3", 80);
        assert_eq!(h100.case.name, "gemm fp8 8192³");
        assert!((h100.achieved_tflops.unwrap() - 1_099.511_627_776).abs() < 1e-6);
        assert_eq!(h100.catalog_peak, Some(1978.9));
        assert!((h100.efficiency.unwrap() - 1_099.511_627_776 / 1978.9).abs() < 1e-9);
        assert_eq!(h100.bytes_per_launch, 4 * 8192 * 8192);
        let a100 = rate("NVIDIA A100-SXM4-80GB", 80);
        assert!(a100.achieved_tflops.is_some() && a100.catalog_peak.is_none() && a100.efficiency.is_none());
    }

    #[test]
    fn profile_computes_rates_and_efficiency_against_the_catalog() {
        let ws = vec![
            Workload::Bandwidth { op: BandwidthOp::Copy, bytes: 1 << 30 },
            Workload::Gemm { dtype: GemmDtype::Bf16, m: 8192, n: 8192, k: 8192 },
            Workload::AdamW { n: 1024 },
        ];
        let mut gpu = MockGpu::new(
            DeviceInfo {
                name: "NVIDIA H200".into(),
                memory_total_bytes: 150_754_820_096,
                compute_capability: (9, 0),
                ..Default::default()
            },
            vec![
                (ws[0].name(), Script::Ok { ms_per_launch: 0.5, jitter_ms: vec![] }),
                (ws[1].name(), Script::Ok { ms_per_launch: 1.0995, jitter_ms: vec![] }),
                (ws[2].name(), Script::OutOfMemory),
            ],
        );
        let results = run(&mut gpu, &ws, Plan { warmups: 0, repeats: 3, min_sample_ms: 1 }, |_| {});
        let p = profile(gpu.device(), HostInfo::default(), true, results);
        assert_eq!(p.catalog_id.as_deref(), Some("h200"));
        let copy = &p.results[0];
        assert!((copy.achieved_gb_s.unwrap() - 2.0 * 1073741824.0 / 0.5e-3 / 1e9).abs() < 1e-6);
        let gemm = &p.results[1];
        assert!((gemm.achieved_tflops.unwrap() - 1000.0).abs() < 1.0);
        assert!(gemm.efficiency.unwrap() > 0.5);
        assert!(p.results[2].efficiency.is_none());
        let l = listing(&p);
        assert_eq!(l.rows.len(), 3);
        assert!(l.rows[2][7].contains("out of device memory"));
        let json = serde_json::to_value(&p).unwrap();
        assert_eq!(json["results"][0]["summary"]["samples_ms"].as_array().unwrap().len(), 3);
        insta::assert_snapshot!(crate::report::table::listing(&l));
    }
}
