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
//! from RAM at 0.62 × 96 GB/s = 32.1 ms, plus 72 hops × 127 µs = 9.1 ms, plus the GPU's 2.1 ms
//! of attention and output weights and 0.9 ms of kernel gaps: 44.3 ms, 22.6 tok/s. A 512-token
//! prompt ubatch touches every expert: 61.07 GB over PCIe 4.0 x16 at 0.5 × 31.5 GB/s = 3.88 s,
//! so with the GPU's work (its MoE GEMMs at 16 tokens per expert) a 4,096-token prompt takes
//! 32.2 s (127 tok/s); a larger `--ubatch` amortises the uploads.

use super::super::basis::BasisLog;
use super::work;
use super::SpeedRequest;
use crate::plan::device::HostOrigin;
use crate::plan::engine::{HostPlacement, OP_OFFLOAD_MIN_TOKENS};
use crate::plan::Engine;
use crate::units::Bytes;

/// The `basis` entry naming the host RAM the speeds assume (reports and `max` read it back).
pub const HOST_RAM_BASIS: &str = "host RAM bandwidth";

/// Where the request leaves weights in host RAM; `None` when nothing is there (or the engine is
/// not llama.cpp, the only one the placement options apply to).
pub fn placement(req: &SpeedRequest) -> Option<HostPlacement> {
    let inf = req.inference;
    let p = inf.options.host_placement(inf.spec.num_layers);
    (inf.engine == Engine::LlamaCpp && p.any()).then_some(p)
}

/// Weight bytes of the decoder layers a pass of `tokens` tokens uses from host RAM: the host
/// layers' weights (the experts its tokens touch) and the `--n-cpu-moe` layers' touched experts.
pub fn host_layer_bytes(req: &SpeedRequest, p: &HostPlacement, tokens: u64) -> f64 {
    let inf = req.inference;
    let (dense, experts) = work::layer_reads(inf, 0..p.gpu_start, tokens);
    let cpu_moe: f64 = p.expert_layers().ranges().iter().map(|r| work::layer_reads(inf, r.clone(), tokens).1).sum();
    dense + experts + cpu_moe
}

/// The output layer's bytes when llama.cpp left it on the host.
fn host_output_bytes(req: &SpeedRequest, p: &HostPlacement) -> f64 {
    if p.output_on_gpu {
        0.0
    } else {
        work::lm_head_bytes(req.inference)
    }
}

/// Weight bytes a decode step of `tokens` tokens uses from host RAM: the layers' and an output
/// layer left there (every decoded row gives logits).
pub fn decode_host_bytes(req: &SpeedRequest, p: &HostPlacement, tokens: u64) -> f64 {
    host_layer_bytes(req, p, tokens) + host_output_bytes(req, p)
}

/// GPU↔CPU hand-offs a pass of fewer than 32 tokens adds: two per `--n-cpu-moe` layer that has
/// routed experts (to the CPU for them, back for the rest of the layer; a dense layer among
/// them stays on the GPU). Host layers sit before the GPU's (llama.cpp offloads the last ones),
/// so they add none to the embedding's own hop, and a host output layer's hop replaces the
/// logits copy.
fn handoffs(req: &SpeedRequest, p: &HostPlacement) -> f64 {
    let w = req.inference.weights;
    2.0 * p.expert_layers().iter().filter(|&l| w.experts_in(l..l + 1) > Bytes::ZERO).count() as f64
}

/// Time `bytes` of host weights cost a pass of `rows` rows: from 32 rows their upload over PCIe
/// (op offload), below it the CPU's reads of them from RAM and `hops` hand-offs. `None` without
/// a host or PCIe speed.
fn host_weights_s(req: &SpeedRequest, bytes: f64, rows: u64, hops: f64) -> Option<f64> {
    let e = req.efficiency;
    if rows >= OP_OFFLOAD_MIN_TOKENS {
        return Some(bytes / (req.device.host_link?.0 * e.host_upload.value));
    }
    Some(bytes / ram_bytes_per_s(req)? + hops * e.host_handoff_s.value)
}

/// What llama.cpp's CPU matmuls read from host RAM per second.
fn ram_bytes_per_s(req: &SpeedRequest) -> Option<f64> {
    Some(req.host?.memory_bandwidth.0 * req.efficiency.host_bandwidth.value)
}

/// A decode step's time on host weights, besides the GPU's own work: its ubatches (the batch's
/// tokens, `--ubatch` at a time) each read or upload them, and the host layers' attention reads
/// their KV cache from RAM. `None` for 2 to 31 tokens a pass: the CPU runs their matmuls at a
/// FLOP rate not modelled (one token is bound by the reads).
pub fn decode_host_s(req: &SpeedRequest, p: &HostPlacement) -> Option<f64> {
    let inf = req.inference;
    let tokens = inf.batch.min(inf.options.n_ubatch).max(1);
    let (whole, rest) = (inf.batch / tokens, inf.batch % tokens);
    if [tokens, rest].iter().any(|t| (2..OP_OFFLOAD_MIN_TOKENS).contains(t)) {
        return None;
    }
    let pass = |t: u64| host_weights_s(req, decode_host_bytes(req, p, t), t, handoffs(req, p));
    let last = if rest > 0 { pass(rest)? } else { 0.0 };
    let kv = work::decode_kv_bytes_in(inf, 0..p.gpu_start, inf.context, inf.batch) / ram_bytes_per_s(req)?;
    Some(whole as f64 * pass(tokens)? + last + kv)
}

/// A prefill's time on host weights: `whole` passes of `chunk` tokens and one of `rest`, each
/// uploading (or, under 32 tokens, reading) the layers' host weights, then the logits of the
/// last position of each sequence through a host output layer (every position's with
/// `--logits-all`, in every pass). `None` when host layers hold KV cache: their attention runs
/// on the CPU at a FLOP rate not modelled.
pub fn prefill_host_s(req: &SpeedRequest, p: &HostPlacement, (whole, chunk, rest): (u64, u64, u64)) -> Option<f64> {
    if p.gpu_start > 0 {
        return None;
    }
    let inf = req.inference;
    let logits_all = inf.options.logits_all_positions;
    let pass = |tokens: u64| {
        let output = if logits_all { host_output_bytes(req, p) } else { 0.0 };
        host_weights_s(req, host_layer_bytes(req, p, tokens) + output, tokens, handoffs(req, p))
    };
    let last = if rest > 0 { pass(rest)? } else { 0.0 };
    // Each ubatch holding some sequence's last position reads the output layer for it.
    let reads = inf.batch.min(whole + u64::from(rest > 0)).max(1);
    let rows = inf.batch.div_ceil(reads);
    let logits =
        if logits_all { 0.0 } else { reads as f64 * host_weights_s(req, host_output_bytes(req, p), rows, 0.0)? };
    Some(whole as f64 * pass(chunk)? + last + logits)
}

/// Adds the host's numbers to `basis`.
pub fn explain(req: &SpeedRequest, p: &HostPlacement, basis: &mut BasisLog) {
    let e = req.efficiency;
    match req.host {
        Some(h) => basis.add(
            HOST_RAM_BASIS,
            h.label.clone(),
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
    let batch = req.inference.batch.min(req.inference.options.n_ubatch);
    basis.add(
        "host weights read per decode step",
        format!("{:.0} B", decode_host_bytes(req, p, batch)),
        "the host layers' weights, the --n-cpu-moe layers' routed experts the batch picks (uniform routing), a host output layer; run on the CPU below 32 tokens, uploaded to the GPU from 32 on (op offload)",
    );
    basis.add("host bandwidth efficiency", format!("{:.2}", e.host_bandwidth.value), e.host_bandwidth.source.clone());
    explain_host_link(req, basis);
    if !p.expert_layers().is_empty() {
        basis.add(
            "GPU↔CPU hand-offs per decode step",
            format!("{:.0} × {:.0} µs", handoffs(req, p), e.host_handoff_s.value * 1e6),
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

/// The PCIe link host weights cross and the fraction of it they get (llama.cpp's uploads, vLLM's
/// offloaded reads), added to `basis`.
pub fn explain_host_link(req: &SpeedRequest, basis: &mut BasisLog) {
    let link = req
        .device
        .host_link
        .map_or("unknown: the speeds that cross it are null".to_string(), |l| format!("{:.2} GB/s", l.0 / 1e9));
    basis.add(
        "PCIe link to the host (per direction)",
        link,
        "GPU catalog: its PCIe interconnect, else x16 at its generation",
    );
    let e = &req.efficiency.host_upload;
    basis.add("host weight transfer efficiency over PCIe", format!("{:.2}", e.value), e.source.clone());
}
