//! llama.cpp with weights in host RAM: `--n-gpu-layers` below the layer count (whole layers and
//! their KV cache on the CPU) and `--n-cpu-moe` (the first layers' routed experts on the CPU).
//!
//! llama.cpp's scheduler cuts a step's graph into splits, each run by the backend holding its
//! weights, one after another. What happens to host weights depends on the tokens in the pass
//! (`ggml_backend_cuda_device_offload_op`: a matmul of 32 tokens or more on host weights runs on
//! the GPU):
//!
//! - **Fewer than 32 tokens** (decode): the CPU runs the matmuls on host weights, reading every
//!   weight it needs (the routed experts its tokens pick) from RAM: memory-bound, at the host's
//!   bandwidth. Each `--n-cpu-moe` layer hands the hidden state from the GPU to the CPU and back,
//!   two synchronised copies per layer and step. Host layers also read their KV cache from RAM.
//! - **32 tokens or more** (prompt ubatches): op offload. Each pass copies the host weights its
//!   matmuls use (the experts its tokens touch) over PCIe into the first GPU's compute buffer,
//!   then runs them there; nothing overlaps the copy. The attention of host layers stays with
//!   their KV cache on the CPU, whose FLOP rate is not modelled: no prefill estimate then.
//!
//! gpt-oss-120b (MXFP4) with `--cpu-moe` on an RTX 4090, two channels of DDR5-6000 (96 GB/s):
//! a decoded token picks 4 of 128 experts (13.25 MB each) in each of 36 layers, 1.909 GB read
//! from RAM at 0.62 × 96 GB/s = 32.1 ms, plus 72 hops × 120 µs = 8.6 ms, plus the GPU's 2.0 ms
//! of attention and output weights and 0.9 ms of kernel gaps: 43.8 ms, 22.8 tok/s. A 512-token
//! prompt ubatch touches every expert: 61.07 GB over PCIe 4.0 x16 at 0.7 × 31.5 GB/s = 2.77 s,
//! so a 4,096-token prompt takes 22.7 s (180 tok/s); a larger `--ubatch` amortises the uploads.

use super::super::basis::BasisLog;
use super::work;
use super::SpeedRequest;
use crate::plan::device::HostOrigin;
use crate::plan::engine::{HostPlacement, OP_OFFLOAD_MIN_TOKENS};
use crate::plan::Engine;

/// Where the request leaves weights in host RAM; `None` when nothing is there (or the engine is
/// not llama.cpp, the only one the placement options apply to).
pub fn placement(req: &SpeedRequest) -> Option<HostPlacement> {
    let inf = req.inference;
    let p = inf.options.host_placement(inf.spec.num_layers);
    (inf.engine == Engine::LlamaCpp && p.any()).then_some(p)
}

/// Weight bytes a pass of `tokens` tokens uses from host RAM: the host layers' weights (their
/// touched experts), the `--n-cpu-moe` layers' touched experts, and an output layer left there.
pub fn host_weight_bytes(req: &SpeedRequest, p: &HostPlacement, tokens: u64) -> f64 {
    let inf = req.inference;
    let (dense, experts) = work::layer_reads(inf, 0..p.gpu_start, tokens);
    let (_, cpu_moe) = work::layer_reads(inf, p.expert_layers(), tokens);
    let output = if p.output_on_gpu { 0.0 } else { work::lm_head_bytes(inf) };
    dense + experts + cpu_moe + output
}

/// GPU↔CPU hand-offs a pass of fewer than 32 tokens adds: two per `--n-cpu-moe` layer (to the
/// CPU for the experts, back for the rest of the layer). Host layers sit before the GPU's
/// (llama.cpp offloads the last ones), so they add none to the embedding's own hop, and a host
/// output layer's hop replaces the logits copy.
fn handoffs(p: &HostPlacement) -> f64 {
    2.0 * (p.expert_layers().end - p.expert_layers().start) as f64
}

/// Time a pass of `tokens` tokens spends on host weights, besides the GPU's own work: below 32
/// tokens the CPU's reads of them (and of the host layers' KV cache, `host_kv_bytes`) plus the
/// hand-offs; from 32 on their upload over PCIe. `None` without a host or PCIe speed.
pub fn host_pass_s(req: &SpeedRequest, p: &HostPlacement, tokens: u64, host_kv_bytes: f64) -> Option<f64> {
    let e = req.efficiency;
    let weights = host_weight_bytes(req, p, tokens);
    let ram = req.host?.memory_bandwidth.0 * e.host_bandwidth.value;
    if tokens >= OP_OFFLOAD_MIN_TOKENS {
        let upload = req.device.host_link?.0 * e.host_upload.value;
        return Some(weights / upload + host_kv_bytes / ram);
    }
    Some((weights + host_kv_bytes) / ram + handoffs(p) * e.host_handoff_s.value)
}

/// Adds the host's numbers to `basis`.
pub fn explain(req: &SpeedRequest, p: &HostPlacement, basis: &mut BasisLog) {
    let e = req.efficiency;
    match req.host {
        Some(h) => basis.add(
            "host RAM bandwidth",
            format!("{}, {:.1} GB/s", h.label, h.memory_bandwidth.0 / 1e9),
            match h.origin {
                HostOrigin::Given => "--host-memory: the peak of its channels",
                HostOrigin::Measured => "calibration: headroom bench's host RAM read",
                HostOrigin::Assumed => {
                    "assumed (a typical desktop): give yours with --host-memory, e.g. ddr5-6000:2 or ddr4-3200:8, or a headroom bench profile with --calibration"
                }
            },
        ),
        None => basis.add("host RAM", "unknown", "no host given: speeds with weights in host RAM are null"),
    }
    let batch = req.inference.batch;
    basis.add(
        "host weights read per decode step",
        format!("{:.0} B", host_weight_bytes(req, p, batch)),
        "the host layers' weights, the --n-cpu-moe layers' routed experts the batch picks (uniform routing), a host output layer; run on the CPU below 32 tokens, uploaded to the GPU from 32 on (op offload)",
    );
    basis.add("host bandwidth efficiency", format!("{:.2}", e.host_bandwidth.value), e.host_bandwidth.source.clone());
    let link = req.device.host_link.map_or("unknown (prefill null)".to_string(), |l| format!("{:.2} GB/s", l.0 / 1e9));
    basis.add(
        "PCIe link to the host (per direction)",
        link,
        "GPU catalog: its PCIe interconnect, else x16 at its generation",
    );
    basis.add(
        "host weight upload efficiency (op offload)",
        format!("{:.2}", e.host_upload.value),
        e.host_upload.source.clone(),
    );
    if !p.expert_layers().is_empty() {
        basis.add(
            "GPU↔CPU hand-offs per decode step",
            format!("{:.0} × {:.0} µs", handoffs(p), e.host_handoff_s.value * 1e6),
            e.host_handoff_s.source.clone(),
        );
    }
    if p.gpu_start > 0 {
        basis.add(
            "prefill with host layers",
            "not estimated",
            "the attention of layers left on the host runs on the CPU beside their KV cache, at a FLOP rate not modelled",
        );
    }
}
