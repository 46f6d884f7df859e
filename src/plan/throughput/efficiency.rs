//! Efficiency factors: how much of a GPU's peak an engine really gets, each named and sourced.
//!
//! Defaults come from published or measured evidence, per engine and GPU generation. A
//! calibration file (`--calibration FILE`) replaces them with measured ones. Its shape, all
//! fields optional (JSON):
//!
//! ```json
//! {
//!   "description": "H200, torch 2.11, transformers 5.17 (where the numbers come from)",
//!   "gpus": { "h200": { "bandwidth_gb_s": 4247, "bf16_tflops": 771 } },
//!   "engines": { "hf": { "bandwidth": 0.885, "prefill_compute": 0.50, "decode_compute": 0.30,
//!                        "kv_read": 1.0,
//!                        "host_per_layer_ms": 0.70, "host_per_moe_layer_ms": 1.2,
//!                        "host_per_quantized_linear_ms": 0.078,
//!                        "host_per_double_quant_linear_ms": 0.034, "kernel_gap_per_layer_us": 0 },
//!                "llama.cpp": { "host_bandwidth": 0.62, "host_upload": 0.5, "host_handoff_us": 127,
//!                               "expert_gemm_half_tokens": 72, "expert_tile_tokens": 0 } }
//! }
//! ```
//!
//! `gpus.<id>.bandwidth_gb_s` (a catalog id or alias) is achieved bandwidth (a copy kernel
//! counting read + write); it replaces the bandwidth fraction as achieved ÷ peak for that GPU.
//! `bf16_tflops` is an achieved large-GEMM rate and sets the `bare` engine's compute fraction. `engines.<id>` fields replace the
//! engine's defaults one by one: fractions of peak (`bandwidth`, `prefill_compute`,
//! `decode_compute`, `kv_read`, and `quantized_kv_attention`, of the FP32 peak, for attention over a
//! q8_0 or q4_0 cache), host time per decode step (`host_per_*_ms`) and GPU time lost
//! per layer between small kernels (`kernel_gap_per_layer_us`, and further per MoE layer
//! `kernel_gap_per_moe_layer_us`), the routed-expert GEMMs' fixed
//! cost per touched expert (`expert_gemm_half_tokens`, in tokens' work) and tile width (`expert_tile_tokens`,
//! a partly filled tile costing a full one); for weights llama.cpp leaves in
//! host RAM, the fraction of the RAM's peak its CPU matmuls get (`host_bandwidth`), the fraction of
//! the PCIe link its uploads of them to the GPU get (`host_upload`) and the time of one GPU↔CPU hop in a
//! decode step (`host_handoff_us`).

use super::super::device::Generation;
use super::super::engine::{Engine, GgmlBackend};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One factor with where it comes from.
#[derive(Clone, Debug, PartialEq)]
pub struct Factor {
    pub value: f64,
    pub source: String,
}

fn f(value: f64, source: &str) -> Factor {
    Factor { value, source: source.to_string() }
}

/// Everything the speed model takes from evidence rather than arithmetic.
#[derive(Clone, Debug, PartialEq)]
pub struct Efficiency {
    /// Fraction of peak memory bandwidth that streaming weight reads achieve.
    pub bandwidth: Factor,
    /// Fraction of the bandwidth fraction that KV-cache reads get (1: as fast as weights).
    pub kv_read: Factor,
    /// Fraction of the GPU's FP32 (CUDA-core) peak at which decode attention over a quantized
    /// cache (q8_0, q4_0) runs its FLOPs where the kernel dequantizes it element by element
    /// (0: such attention is bound by the cache's bytes alone).
    pub quantized_kv_attention: Factor,
    /// Fraction of the GPU's FP32 peak at which decode attention over a latent (MLA) cache runs
    /// its FLOPs, counted as the engine computes them over the latent: `2·heads·(kv_lora + rope
    /// + kv_lora)` per cached token and layer (0: bound by the cache's bytes alone).
    pub mla_attention: Factor,
    /// Fraction of dense peak FLOP/s a whole prefill achieves (GEMMs and everything between).
    pub prefill_compute: Factor,
    /// Fraction of dense peak FLOP/s large-batch decode GEMMs achieve.
    pub decode_compute: Factor,
    /// Host (Python / launch) time per decoder layer and decode step: eager frameworks cannot
    /// step faster than `layers × this`.
    pub host_per_layer_s: Factor,
    /// Extra host time per mixture-of-experts layer (expert loops in Python).
    pub host_per_moe_layer_s: Factor,
    /// Extra host time per quantized linear layer (separate dequantization kernels).
    pub host_per_quantized_linear_s: Factor,
    /// Further host time per NF4 double-quantized linear: bitsandbytes first dequantizes the
    /// 8-bit absmax (`dequantize_blockwise`, one more kernel) before the 4-bit GEMV.
    pub host_per_double_quant_linear_s: Factor,
    /// GPU time per layer and step not covered by the roofline (gaps between small kernels).
    pub kernel_gap_per_layer_s: Factor,
    /// Further GPU time per mixture-of-experts layer and step: routing, gathers and the
    /// experts' separate mat-vecs.
    pub kernel_gap_per_moe_layer_s: Factor,
    /// Fixed latency of one small all-reduce (or stage hand-off); `throughput::allreduce_latency_s`
    /// adds the link's per-hop steps.
    pub allreduce_base_s: Factor,
    /// Tokens per expert at which a prompt pass's routed-expert GEMMs run at half the dense rate
    /// (0: as fast as dense ones).
    pub expert_gemm_half_tokens: Factor,
    /// Tokens per tile of an engine whose routed-expert GEMMs compute whole tiles, a partly
    /// filled one costing a full one (0: no such padding).
    pub expert_tile_tokens: Factor,
    /// Fraction of the host RAM's peak bandwidth that llama.cpp's CPU matmuls get on host
    /// weights (`offload`).
    pub host_bandwidth: Factor,
    /// Fraction of the PCIe link's peak that llama.cpp's uploads of host weights get.
    pub host_upload: Factor,
    /// Time of one GPU↔CPU hand-off in a decode step (a `--n-cpu-moe` layer makes two).
    pub host_handoff_s: Factor,
}

/// Kernel launches per decoder layer and decode step in headroom's engine (validate/engine.rs):
/// 2 RMSNorms, 7 linear layers, 2 RoPE, 2 KV-cache writes, 2 attention passes (split and
/// reduce), 2 residual adds, 1 SiLU-gate.
const HEADROOM_LAUNCHES_PER_LAYER: f64 = 18.0;

/// llama.cpp's CPU decode, weight bytes per token × tokens/s over the RAM's peak bandwidth, in
/// published CPU-only runs: EPYC 9554, 12 × DDR5-4800 (460.8 GB/s), Phi-4 Q4_K_M–Q8_0: 0.56–0.65;
/// Threadripper PRO 7965WX, 8 × DDR5-4800 (307.2 GB/s), a 7.9 GiB Q4_0: 0.62 (Intel MLC measured
/// 225–250 GB/s there, so 0.77–0.85 of a read benchmark); i9-13900K, DDR5-6400 × 2, 7B: 0.68.
const HOST_BANDWIDTH: f64 = 0.62;
const HOST_BANDWIDTH_SOURCE: &str = "llama.cpp CPU decode in published runs: 0.56–0.65 of peak on 12 × DDR5-4800 (EPYC 9554), 0.62 on 8 × DDR5-4800 (Threadripper PRO 7965WX, ik_llama.cpp #602), 0.68 on 2 × DDR5-6400 (i9-13900K, llama.cpp #34)";
/// llama.cpp's CPU decode, of a measured read bandwidth on the same machine: 0.84–0.91 of STREAM's
/// read-only kernel on a Raspberry Pi 5 (llama.cpp #26484), 0.77–0.85 of Intel MLC's figure on a
/// Threadripper PRO 7965WX with 8 × DDR5-4800 (ik_llama.cpp #602 and #370).
pub const HOST_BANDWIDTH_OF_READ: f64 = 0.85;
const HOST_BANDWIDTH_OF_READ_SOURCE: &str = "of the measured host read (calibration): llama.cpp CPU decode reaches 0.84–0.91 of a read-only kernel (llama.cpp #26484) and 0.77–0.85 of Intel MLC's figure (ik_llama.cpp #602)";

/// llama.cpp's uploads of host weights, of the PCIe link's peak (one direction). Each prompt
/// ubatch uploads every expert it touches before its matmuls (mmapped, pageable memory by
/// default). gpt-oss-120b with every expert on the host (61 GB) of an i9-14900K with an 8 GB
/// GPU prompted at 134 tok/s, 3.8 s per 512-token ubatch (a llama-server log, r/LocalLLaMA):
/// 0.51 of PCIe 4.0 x16 (the GPU's link is not stated); with them on an RTX 4080's host, 3.9 s per 4,096 tokens including the
/// GEMMs (ik_llama.cpp #829): at least 0.50; a pageable copy ran at 9.6 GB/s and a pinned one at
/// 32.4 on an RTX 5090 (PCIe 5.0) under WSL2 (kekzl/imp #1409).
const HOST_UPLOAD: f64 = 0.5;
const HOST_UPLOAD_SOURCE: &str = "published prompt rates with every expert on the host: gpt-oss-120b 3.8 s per 512-token ubatch for 61 GB, if on PCIe 4.0 x16 (i9-14900K host, llama-server log), at most 3.9 s per 4,096 tokens on an RTX 4080 (ik_llama.cpp #829): 0.50 of the link; routing that uses fewer experts than uniform copies less (llama.cpp PR #15346 copies only the used ones)";

/// One GPU→CPU or CPU→GPU hop of a decode step: the scheduler copies the hidden state across
/// and synchronises, then the CPU's threads start on their split, or the GPU's next split is
/// launched kernel by kernel behind it (nothing is queued ahead across a hop). Fitted to one
/// row: Qwen3-30B-A3B Q4_K_M with `--n-cpu-moe 36` on an RTX 2080 and quad-channel DDR4 (~102
/// GB/s) generates 36.7 tok/s (llmfit PR #755, the server's own figure); the GPU's roofline and
/// the host reads give 55.2, and the 72 hops make up the rest at 127 µs each. The same host's
/// dense `--n-gpu-layers` rows, which hop once, land within 6% without it, but for
/// Mistral-Small-24B (+23%).
const HOST_HANDOFF_S: f64 = 127e-6;
const HOST_HANDOFF_SOURCE: &str = "fitted: Qwen3-30B-A3B Q4_K_M --n-cpu-moe 36 on an RTX 2080 + i9-10900X (~102 GB/s DDR4), 36.7 tok/s (llmfit PR #755): 72 hops at 127 µs close the gap to the read times (55.2 tok/s); a synchronised copy, then the CPU's threads or the next GPU split's kernel launches";

/// llama.cpp's routed-expert GEMMs (MMQ with expert ids) pay a fixed cost per pass for each
/// expert its tokens touch, beside the work of those tokens: staging the expert's weight tiles,
/// the tile setup and stream-k fix-up, whatever few columns the tile holds; an expert no token
/// picked launches nothing. Worth about 72 tokens' work, so a pass giving each expert `n` tokens
/// runs them at `n / (n + 72)` of the dense rate. Fitted to one ubatch sweep: gpt-oss-20b pp512
/// on an RTX 3090 (llama.cpp PR #20586, 2026) at ubatch 64, 128, 256, 512 (8–64 tokens per
/// expert, every expert touched) gives 1,672, 2,036, 3,086, 4,739 tok/s, planned within −22% to
/// +23% with it and 2.2–4.5× too fast without. Checked beyond the fit, where few experts are
/// touched: Qwen3-30B-A3B on an RTX 4090 at 1, 2, 4 tokens per expert plans 9%, 19%, 15% slow
/// (PR #15631, a 2025 build). The form is linear in the pass's tokens where the sweep is
/// concave. Dense models keep their rate; larger ubatches recover the MoE rate, as llama.cpp
/// users find.
const EXPERT_GEMM_HALF_TOKENS: f64 = 72.0;
const EXPERT_GEMM_HALF_TOKENS_SOURCE: &str = "fitted: gpt-oss-20b pp512 on an RTX 3090 at ubatch 64–512 (8–64 tokens per expert; llama.cpp PR #20586, 2026), −22% to +23%: a fixed cost per touched expert per pass worth ~72 tokens, a dense-equivalent rate n/(n+72) at n tokens per expert";

/// NCCL's own latency model of a ring all-reduce in its low-latency (LL) protocol, the one it
/// picks for the kilobyte messages of decode (`baseLat` and `hwLat` in NCCL's
/// src/graph/tuning.cc): a base of 6.6 µs plus 0.6 µs per step over NVLink, 1.0 µs over PCIe,
/// with `2(t−1)` steps. Eight GPUs on NVLink: 6.6 + 14 × 0.6 = 15.0 µs; two on PCIe: 8.6 µs.
/// vLLM's custom all-reduce (one-shot, NVLink or PCIe peer access) is of the same order.
pub const ALLREDUCE_BASE_S: f64 = 6.6e-6;
const ALLREDUCE_BASE_SOURCE: &str =
    "NCCL's tuning model (src/graph/tuning.cc, ring LL): 6.6 µs base + 2(t−1) hops of 0.6 µs (NVLink) or 1.0 µs (PCIe)";

/// vLLM's decode step over the bandwidth roofline, per layer: a layer runs about ten kernels
/// inside the CUDA graph (fused add-and-norm twice, the qkv, o, gate-up and down GEMVs, rotary,
/// the KV-cache write, attention and its split-KV combine, SiLU-and-mul); the small ones take a
/// few microseconds each whatever their bytes, and batch-1 GEMVs fall short of the copy
/// bandwidth. What single-GPU rows at batch 1 leave over the planner's roofline, per layer:
/// RTX 4090 Qwen3-4B bf16, median TPOT 10.5 ms against 9.43 (30 µs over 36 layers); H100
/// Llama-3-8B bf16, 6.5 ms a forward in vLLM's own log against 5.07 (45 µs over 32); A100 40GB
/// Llama-3.1-8B bf16, about 75 tok/s, 13.3 ms against 11.47 (57 µs). The median, 45 µs.
const VLLM_KERNEL_GAP_S: f64 = 45e-6;
const VLLM_KERNEL_GAP_SOURCE: &str = "vLLM decode at batch 1 over the bandwidth roofline, per layer: RTX 4090 Qwen3-4B 30 µs, H100 Llama-3-8B 45 µs, A100 40GB Llama-3.1-8B 57 µs; the median (published-speed.toml, vllm-* rows)";

/// vLLM under `--enforce-eager`: every decode step runs the model's Python forward and launches
/// each kernel from the host, so a small model's step is bound by the host's time per layer
/// (the GPU works through each kernel as it arrives). vllm-omni #7960 (vLLM 0.29, an A800 80GB,
/// the dense 28-layer Qwen2.5-7B thinker of Qwen2.5-Omni-7B at TP 1): median TPOT 22–23 ms
/// eager against 13 ms with graphs. Host-bound, 22.5 ms less 28 × 45 µs of kernel gaps and
/// about 0.3 ms of attention over 28 layers is 0.75 ms a layer. The host's CPU sets it: a
/// vLLM fork at TP 2 on two RTX 3060s decodes a 7B at 31.4 tok/s eager (about 1.1 ms a layer
/// with its all-reduces), an arm64 IGX board's A6000 at 11.2 tok/s against 45.9 with graphs.
const VLLM_EAGER_HOST_PER_LAYER_S: f64 = 0.75e-3;
const VLLM_EAGER_HOST_PER_LAYER_SOURCE: &str = "vLLM --enforce-eager: Qwen2.5-7B (28 layers) on an A800, TPOT 22–23 ms eager vs 13 ms with graphs (vllm-omni #7960, vLLM 0.29): host-bound at 0.75 ms a layer; slower hosts take more (a 7B at TP 2 on RTX 3060s: ~1.1 ms)";

/// llama.cpp's CUDA decode attention over DeepSeek-style latent (MLA) caches, of the FP32 peak.
/// llama.cpp multiplies each head's absorbed query against the 576-wide latent keys and the
/// 512-wide latent values of every cached token, `2·heads·(576 + 512)` FLOPs per token and layer,
/// and its one-token kernel for those head sizes is bound by that arithmetic, not by the cache's
/// 1,152 bytes. GLM-4.7-Flash (20 heads, 47 layers) on an RTX 4090, build 5f91b1d5d (8286),
/// tg64 over its depth-0 rate (132.52 tok/s at Q4_K, 137.73 at Q2_K): depths 8,192, 16,384 and
/// 32,768 add 10.4, 21.4 and 45.1 ms a token for 16.8, 33.6 and 67.1 GFLOP, 1.49–1.61 TFLOPS,
/// 0.018–0.019 of the 82.6 TFLOPS peak (the Q2_K file the same): 0.019, fitted to these rows.
const LLAMA_CUDA_MLA_ATTENTION: f64 = 0.019;
const LLAMA_CUDA_MLA_ATTENTION_SOURCE: &str = "llama.cpp CUDA decode over a latent (MLA) cache: GLM-4.7-Flash on an RTX 4090 (build 8286) adds 10.4, 21.4 and 45.1 ms a token at 8K, 16K and 32K of cache for 2·20·(576+512) FLOPs per cached token and layer: 1.5-1.6 TFLOPS, 0.019 of the FP32 peak, fitted (published-speed.toml)";

/// llama.cpp's CUDA decode attention over a q8_0 or q4_0 cache, of the FP32 peak. The one-token
/// flash-attention kernel (`flash_attn_ext_vec`) dequantizes every cached element and multiplies
/// it on the CUDA cores, once for each query head sharing it, so a quantized cache is bound by
/// that arithmetic rather than by its halved bytes: published ladders decode slower with a q8_0
/// cache than with an f16 one (RTX 3090, Llama-3-8B Q4_0 at 16,384 tokens: 101.74 against 115.17
/// tok/s). The RTX 3090 rows over their depth-0 row (154.62 tok/s): Llama-3-8B Q4_0 at depths
/// 16,384, 32,768 and 65,536 adds 3.36, 6.83 and 13.85 ms a token for 8.6, 17.2 and 34.4 GFLOP of
/// attention (2·2·32 heads·128 per cached token and layer), 2.5 TFLOPS, 0.070–0.072 of 35.6; Gemma-2B
/// (MQA, head dim 256) 0.089–0.092. The median of both models, 0.08; an RTX 5070 Laptop's rows
/// (1.34 TFLOPS) fit it at a sustained 17–19 TFLOPS FP32.
const LLAMA_CUDA_QUANTIZED_KV_ATTENTION: f64 = 0.08;
const LLAMA_CUDA_QUANTIZED_KV_ATTENTION_SOURCE: &str = "llama.cpp CUDA one-token flash attention over a q8_0 or q4_0 cache (fitted on q8_0), of the FP32 peak: RTX 3090 depth ladders over their depth-0 row, Llama-3-8B Q4_0 0.070-0.072 at 16-64K tokens, Gemma-2B 0.089-0.092; the median 0.08 (Abai/llama.cpp bench-out/jg-multi, master 36b101543, 2026-09; published-speed.toml)";

/// llama.cpp's decode on AMD Radeon GPUs over the bandwidth roofline, per layer, when the build's
/// backend (HIP or Vulkan) is not given: a layer's ~18 kernels run without the CUDA backend's
/// graphs, one after the other. What twelve Strix Halo tg128 rows leave over its measured
/// copy rate (212 of 256 GB/s), per layer: Llama-2-7B Q4_0 78, 89, 88, 47 µs (ROCm hipBLASLt,
/// rocWMMA, AMDVLK, RADV); Llama-3.3-70B Q4_K_M 11 (RADV); gpt-oss-120b 54, 82, 113, 30; gpt-oss-20b
/// 49, 67, 105 (RADV, AMDVLK, ROCm; a 2026 Vulkan build for the 30). The median, 72 µs. Fitted to
/// the APU, it predicts the RX 7900 XTX, which copies three times as fast (643 of 960 GB/s):
/// five rows from 2024 to 2026 land within −1% to +18% (published-speed.toml). Llama-2-7B Q4_0
/// on Strix Halo: 3.82 GB read a token at 212 GB/s is 18.0 ms, plus 32 × 72 µs = 2.3 ms: 20.3
/// ms, 49.2 tok/s (ROCm with hipBLASLt measured 48.8).
const RDNA_KERNEL_GAP_S: f64 = 72e-6;
const RDNA_KERNEL_GAP_SOURCE: &str = "llama.cpp HIP / Vulkan decode on Strix Halo over the measured copy rate (212 of 256 GB/s), per layer: the median of 12 tg128 rows (Llama-2-7B, Llama-3.3-70B, gpt-oss-20b/120b; ROCm, AMDVLK, RADV; builds 6118-11188): 72 µs; checked on the RX 7900 XTX (published-speed.toml)";

/// The same gap when the build's backend is known: HIP builds launch every kernel through the
/// HIP runtime (its graph capture, GGML_HIP_GRAPHS, is off by default), while the Vulkan backend
/// records a graph's dispatches into command buffers and submits them in batches. The Strix Halo
/// rows of each: HIP 78.8, 88.5, 105.0, 112.5 µs (Llama-2-7B hipBLASLt and rocWMMA, gpt-oss-20b
/// and -120b), the median 97 µs; Vulkan 10.8, 30.2, 47.3, 48.7, 54.4, 66.9, 81.7, 88.2 µs (RADV,
/// AMDVLK and a 2026 build), the median 52 µs. Llama-2-7B Q4_0 on Strix Halo: 18.0 ms of reads
/// plus 32 × 97 µs is 21.1 ms, 47.4 tok/s on HIP (48.8 and 48.0 measured); plus 32 × 52 µs,
/// 19.7 ms, 50.9 tok/s on Vulkan (51.2 RADV, 48.0 AMDVLK). The RX 7900 XTX, PRO W7900 and
/// RX 9070 XT check them (published-speed.toml).
const RDNA_HIP_KERNEL_GAP_S: f64 = 97e-6;
const RDNA_HIP_KERNEL_GAP_SOURCE: &str = "llama.cpp HIP (ROCm) decode on Strix Halo over the measured copy rate, per layer: the median of 4 tg128 rows (Llama-2-7B hipBLASLt / rocWMMA, gpt-oss-20b / -120b; builds 6118-6736): 97 µs; kernels launched one by one (published-speed.toml)";
const RDNA_VULKAN_KERNEL_GAP_S: f64 = 52e-6;
const RDNA_VULKAN_KERNEL_GAP_SOURCE: &str = "llama.cpp Vulkan decode on Strix Halo over the measured copy rate, per layer: the median of 8 tg128 rows (Llama-2-7B, Llama-3.3-70B, gpt-oss-20b / -120b; RADV, AMDVLK; builds 6118-11188): 52 µs; dispatches recorded into command buffers (published-speed.toml)";

/// llama.cpp's prompt processing on AMD Radeon GPUs, of the WMMA FP16 peak. The backends differ
/// twofold (rocBLAS, hipBLASLt or rocWMMA on HIP; AMDVLK or RADV cooperative matrices on Vulkan),
/// and the APU's sustained clock under its power limit is not published. Seven dense pp512 rows
/// on both chips reach 0.19–0.34 of the peak (Strix Halo Llama-2-7B Q4_0: 0.24 rocWMMA, 0.30
/// AMDVLK, 0.20 RADV; Llama-3.3-70B 0.19 RADV; RX 7900 XTX 0.34, 0.34 ROCm, 0.24 AMDVLK): the
/// median, 0.24, fitted to those rows (HIP's flash attention without rocWMMA, 0.15, is excluded).
/// Only llama.cpp is fitted on these GPUs; other engines keep the generic fractions.
const RDNA_PREFILL_COMPUTE: f64 = 0.24;
const RDNA_PREFILL_COMPUTE_SOURCE: &str = "llama.cpp HIP / Vulkan pp512 on Strix Halo and the RX 7900 XTX, of the WMMA FP16 peak: the median of 7 dense rows, 0.19-0.34 by backend (hipBLASLt / rocWMMA, AMDVLK / RADV): 0.24, fitted (published-speed.toml)";

/// llama.cpp's routed-expert GEMMs on AMD Radeon GPUs carry the per-touched-expert cost its CUDA
/// MMQ has ([`EXPERT_GEMM_HALF_TOKENS`]): a HIP build compiles the same `mul_mat_id` kernels for
/// ROCm, and Vulkan's `mul_mat_id` also works expert by expert. Not fitted here: the CUDA value.
/// Against 13 Strix Halo pp512 rows (gpt-oss-20b and -120b, GLM-4.7-Flash, Qwen3.5-35B-A3B;
/// RADV, AMDVLK, 2026 Vulkan and ROCm builds) it plans −67% to +23%, median −22%, where the
/// dense rate alone plans +21% to +249%; builds differ up to 2.3× on the same model.
const RDNA_EXPERT_GEMM_SOURCE: &str = "llama.cpp's CUDA MMQ per-expert cost (an RTX 3090 ubatch sweep), kept for AMD: HIP builds compile the same mul_mat_id kernels and Vulkan's also dispatches expert by expert; 13 Strix Halo MoE pp512 rows plan -67% to +23% with it, +21% to +249% without (published-speed.toml)";

/// llama.cpp's Metal decode over the bandwidth roofline, per layer. The backend encodes a layer
/// as ~20 kernels (norms, the Q/K/V/O and MLP mat-vecs, RoPE, KV-cache copies, attention, adds),
/// most of them depending on the one before, and an Apple GPU drains between dependent dispatches:
/// at batch 1 that costs about five times the CUDA backend's gaps (26 µs, where graphs replay the
/// launches). What ggerganov's Nov 2024 M2 Ultra sweep leaves over 0.85 of 800 GB/s, per layer
/// (llama.cpp PRs #10238, #10491, #10581; pp1 and tg128 rows): Qwen2.5-7B Q4_0 129, Q4_1 118, Q8_0 120,
/// Q4_K_M 189 µs; Qwen2.5-14B Q4_0 125, Q4_K_M 152, Q6_K 141, Q8_0 125; Qwen2.5-32B Q4_K_M 158;
/// Llama-3.2-3B F16 156, Q4_0 128. The median, 129 µs. Other chips and builds check it
/// (published-speed.toml, Apple rows).
const METAL_KERNEL_GAP_S: f64 = 129e-6;
const METAL_KERNEL_GAP_SOURCE: &str = "llama.cpp Metal decode over the bandwidth roofline, per layer: the median of 11 pp1 and tg128 rows of ggerganov's M2 Ultra (Qwen2.5-7B/14B/32B, Llama-3.2-3B, F16 to Q4_0; llama.cpp PRs #10238, #10491, #10581, Nov 2024): 129 µs; dependent Metal dispatches drain the GPU between them";

/// llama.cpp's Metal prompt processing, of the FP16 (= FP32) ALU peak: its `mul_mm` kernels
/// multiply 8×8 simdgroup matrices after dequantizing each weight tile into threadgroup memory,
/// where a PyTorch MPS FP32 GEMM reaches 0.74 of an M2 Ultra's 27.2 TFLOPS and 0.80 of an M3
/// Max's (chsasank/device-benchmarks). Over whole prompts of 512 tokens on an M2 Ultra the median
/// of 18 published dense-model rows is 0.62 (F16 0.61–0.76, quantized 0.50–0.67; XiongjieDai's
/// GPU-Benchmarks-on-LLM-Inference and ggerganov's PRs, 2023–2026; published-speed.toml).
const METAL_PREFILL_COMPUTE: f64 = 0.62;
const METAL_PREFILL_COMPUTE_SOURCE: &str = "llama.cpp Metal pp512 on an M2 Ultra, of 27.2 TFLOPS: median of 18 published dense-model rows 0.62 (F16 0.61–0.76, quantized 0.50–0.67; XiongjieDai GPU-Benchmarks-on-LLM-Inference, llama.cpp PRs 2023–2026); a PyTorch MPS GEMM reaches 0.74 (chsasank/device-benchmarks)";

/// mlx-lm's prompt chunks, of the FP16 (= FP32) ALU peak: 2,048-token chunks are large GEMMs, and
/// a large Metal GEMM reaches 0.74 of an M2 Ultra's 27.2 TFLOPS and 0.80 of an M3 Max's peak
/// (PyTorch MPS FP32 matmul, chsasank/device-benchmarks); the lower is planned. Not fitted to
/// mlx-lm rows, which check it (published-speed.toml).
const MLX_PREFILL_COMPUTE: f64 = 0.74;
const MLX_PREFILL_COMPUTE_SOURCE: &str = "a large Metal GEMM's share of the ALU peak: PyTorch MPS FP32 matmul 0.74 on an M2 Ultra, 0.80 on an M3 Max (chsasank/device-benchmarks); mlx-lm's 2,048-token prompt chunks are large GEMMs";

/// mlx-lm's decode over the bandwidth roofline, per layer: MLX builds each token's graph in Python
/// (overlapped with the GPU by `mx.async_eval`) and launches a layer's kernels one by one. What
/// three dense rows leave, per layer: Qwen3-8B 4-bit on an M4 Max 30 µs, Qwen3.5-9B 4-bit 37 µs
/// on an M4 Max and 25 µs on an M5 Max (itsmostafa/inference-speed-tests, 2026); the median.
const MLX_KERNEL_GAP_S: f64 = 30e-6;
const MLX_KERNEL_GAP_SOURCE: &str = "mlx-lm decode over the bandwidth roofline, per layer: Qwen3-8B 4-bit on an M4 Max 30 µs, Qwen3.5-9B 4-bit 37 µs (M4 Max) and 25 µs (M5 Max); the median (itsmostafa/inference-speed-tests, published-speed.toml)";

/// mlx-lm's MoE layer beyond a dense one's 30 µs: the router's top-k (`argpartition`), the
/// gathered quantized mat-vecs of gate, up and down (`gather_qmm`), the weighted sum. What gpt-oss
/// MXFP4-Q8 leaves per MoE layer: 20b 82 µs (M4 Max) and 66 µs (M5 Max), 120b 97 and 79 µs; the
/// median, 80 µs.
const MLX_MOE_GAP_S: f64 = 80e-6;
const MLX_MOE_GAP_SOURCE: &str = "mlx-lm decode of gpt-oss MXFP4-Q8 over the roofline and the dense gap, per MoE layer: 20b 82 µs (M4 Max), 66 µs (M5 Max); 120b 97, 79 µs; the median (itsmostafa/inference-speed-tests, published-speed.toml)";

/// llama.cpp's decode gap per layer on AMD Radeon GPUs: the backend's own, or without one the
/// median of both.
fn rdna_kernel_gap(backend: Option<GgmlBackend>) -> Factor {
    match backend {
        Some(GgmlBackend::Hip) => f(RDNA_HIP_KERNEL_GAP_S, RDNA_HIP_KERNEL_GAP_SOURCE),
        Some(GgmlBackend::Vulkan) => f(RDNA_VULKAN_KERNEL_GAP_S, RDNA_VULKAN_KERNEL_GAP_SOURCE),
        _ => f(RDNA_KERNEL_GAP_S, RDNA_KERNEL_GAP_SOURCE),
    }
}

/// Bandwidth fraction by generation.
fn bandwidth(generation: Generation) -> Factor {
    match generation {
        Generation::Apple => f(
            0.85,
            "Apple GPUs: copy and GEMV benchmarks reach 0.73–0.83 of the bus (M1 Max 317.6 and 340 GB/s of 409.6, llama.cpp #1642, #2188; PyTorch copies: M2 Ultra 636 of 819.2, M3 Max 318 of 409.6, M4 Max 396 of 546, chsasank/device-benchmarks), llama.cpp's F16 decode 0.86–0.96 of the quoted rate (M2 Ultra, M3 Max; XiongjieDai's F16 against Q4_0 rows): 0.85 of Apple's figure on every chip",
        ),
        Generation::Rdna => f(
            0.67,
            "Navi 31's GDDR6 copy: an RX 7900 XTX copies 643 of 960 GB/s (rocm-bandwidth-test, read + write; ROCm #2253); for Radeon GPUs without a copy figure of their own in the catalog",
        ),
        Generation::Hopper => f(
            0.885,
            "H200 torch copy: 4,247 GB/s (read+write) of 4,800 peak (data/measurements/device/2026-11-27-h200/torch_kernels.json)",
        ),
        _ => f(0.85, "ExLlama decode on RTX 4090 (rows 64–66) fitted: 0.85 of 1,008 GB/s plus 42 µs per layer; used for non-Hopper GPUs until measured"),
    }
}

/// Bytes per clock each SM streams in llama.cpp's CUDA decode kernels (its F16 and quantized
/// matrix-vector products run a few warps per row, so an SM keeps only a few KB of loads in
/// flight): their bandwidth cannot pass `SMs × clock × 6.0 B`, whatever the bus. GeForce and
/// workstation cards reach 0.81-0.94 of their GDDR bus before that bites; HBM cards do not:
/// what A100 and H100 rows give per SM and clock, over 26 µs a layer of gaps, 5.6-7.2 B (A100
/// SXM/PCIe and H100 PCIe F16 8B 5.9/6.0/5.8 and Q4_K_M 70B 7.2/6.5/5.6, XiongjieDai's llama-bench
/// notebooks, May 2024; A100 80GB Llama 2 7B Q4_0 5.7, H100 6.6 if PCIe, the #15013 scoreboard):
/// 6.0, their median. A100 SXM: 108 SMs × 1.41 GHz × 6.0 = 914 GB/s, 0.45 of its 2,039.
pub const LLAMA_CUDA_DECODE_BYTES_PER_SM_CLOCK: f64 = 6.0;

/// FP32 lanes per SM by compute capability (CUDA C++ Programming Guide, arithmetic instruction
/// throughput: 32-bit floating-point add, multiply, multiply-add per clock per SM): 64 on GP100,
/// Volta, Turing and GA100; 128 on GP10x, GA10x, Ada, Hopper and Blackwell. `None` for others.
fn fp32_lanes_per_sm(compute_capability: &str) -> Option<f64> {
    match compute_capability {
        "6.0" | "7.0" | "7.2" | "7.5" | "8.0" => Some(64.0),
        "6.1" | "6.2" | "8.6" | "8.7" | "8.9" | "9.0" | "10.0" | "10.3" | "11.0" | "12.0" | "12.1" => Some(128.0),
        _ => None,
    }
}

/// Prompt FLOPs per clock each SM gives llama.cpp's CUDA prompt kernels (MMQ: `mma.sync` tiles
/// of quantized blocks, dequantized in registers, tuned for GeForce SMs): they use about what a
/// GeForce SM's tensor cores offer (1,024 dense FP16 FLOPs per clock), so the wider tensor cores
/// of GA100 and GH100 SMs (2,048 and 4,096) stay mostly idle. What the quantized prompt rows on
/// A100 and H100 give per SM and clock: A100 80GB Llama 2 7B Q4_0 427 (#15013), A100 SXM/PCIe
/// Llama 3 8B Q4_K_M 627/630, H100 PCIe 652, 70B Q4_K_M A100 SXM/PCIe 757/689, H100 PCIe 714
/// (XiongjieDai's notebooks, May 2024): 652, their median. GeForce and workstation cards stop
/// first at their prefill fraction (0.45 × 1,024 = 461 per SM and clock). cuBLAS's F16 prompts
/// run 15-20% above it on A100/H100 (the notebooks' F16 rows); the cap applies to every prompt
/// all the same. A100 SXM: 152.3 SM·GHz × 652 = 99 TFLOPS, 0.32 of its 312.
pub const LLAMA_CUDA_PROMPT_FLOPS_PER_SM_CLOCK: f64 = 652.0;

/// SMs × boost clock (SM·GHz) from a GPU's FP32 rate (2 FLOPs per lane and clock): A100
/// 19.5 TFLOPS / (2 × 64) = 152.3 (108 SMs × 1.41 GHz). `None` without an FP32 rate or a known
/// compute capability in the catalog.
pub fn sm_ghz(fp32_tflops: Option<f64>, compute_capability: Option<&str>) -> Option<f64> {
    Some(fp32_tflops? * 1e3 / (2.0 * fp32_lanes_per_sm(compute_capability?)?))
}

/// Large-GEMM fraction by generation: an upper bound for any engine's compute.
pub(crate) fn gemm(generation: Generation) -> Factor {
    match generation {
        Generation::Hopper => f(0.78, "H200 bf16 matmul 8192³: 771 of 989 TFLOPS (torch_kernels.json)"),
        _ => f(0.78, "Hopper GEMM measurement (771/989 on H200); not yet measured on this generation"),
    }
}

impl Efficiency {
    /// The defaults for an engine on a GPU generation.
    pub fn defaults(engine: Engine, generation: Generation) -> Efficiency {
        let zero = |why: &str| f(0.0, why);
        let mut e = Efficiency {
            bandwidth: bandwidth(generation),
            kv_read: f(1.0, "KV reads stream like weights (paged / flash-decoding kernels)"),
            quantized_kv_attention: zero(
                "a quantized cache's attention bound by its bytes (no dequantization cost measured for this engine)",
            ),
            mla_attention: zero("latent-cache attention bound by its bytes (no rate measured for this engine)"),
            prefill_compute: f(0.45, "prefill MFU 0.45 (inference-sim / llm-optimizer, formulas.md §4.4)"),
            decode_compute: f(0.30, "decode MFU 0.30 (inference-sim / llm-optimizer, formulas.md §4.4)"),
            host_per_layer_s: zero("CUDA graphs or a compiled loop: no per-layer host bound"),
            host_per_moe_layer_s: zero("fused MoE kernels"),
            host_per_quantized_linear_s: zero("dequantization fused into the GEMM"),
            host_per_double_quant_linear_s: zero("no nested quantization state"),
            kernel_gap_per_layer_s: zero("CUDA graphs: no launch gaps modelled (lower bound)"),
            kernel_gap_per_moe_layer_s: zero("no MoE launch time beyond a dense layer's modelled"),
            allreduce_base_s: f(ALLREDUCE_BASE_S, ALLREDUCE_BASE_SOURCE),
            expert_gemm_half_tokens: zero("grouped expert GEMMs at the dense rate (not measured for this engine)"),
            expert_tile_tokens: zero("expert GEMMs without tile padding modelled"),
            host_bandwidth: f(HOST_BANDWIDTH, HOST_BANDWIDTH_SOURCE),
            host_upload: f(HOST_UPLOAD, HOST_UPLOAD_SOURCE),
            host_handoff_s: f(HOST_HANDOFF_S, HOST_HANDOFF_SOURCE),
        };
        match engine {
            // LitGPT's generate is the same eager PyTorch loop on the host.
            Engine::Hf | Engine::Unsloth | Engine::Litgpt => {
                e.prefill_compute = f(
                    0.50,
                    "H200 transformers 5.17 SDPA prefill: 465–530 TFLOPS of 989 over 4 dense models (infer.json)",
                );
                e.host_per_layer_s = f(0.70e-3, "H200 host, transformers 5.17 eager decode: median step 22–23 ms for 32-layer 7–8B models (infer.json)");
                e.host_per_moe_layer_s =
                    f(1.2e-3, "H200 host: Mixtral 63 ms / 32 layers, DeepSeek-V2-Lite 48 ms / 27 layers (infer2.json)");
                e.host_per_quantized_linear_s = f(0.078e-3, "LitGPT + bitsandbytes on A100 (rows 56–57): 0.112 ms per NF4 linear on a 1.0 ms/layer host, scaled to 0.70 ms/layer");
                e.host_per_double_quant_linear_s = f(0.034e-3, "LitGPT + bitsandbytes on A100 (row 57): nf4-dq 0.048 ms per linear slower than nf4 on a 1.0 ms/layer host, scaled to 0.70 ms/layer");
            }
            Engine::Exllama => {
                e.prefill_compute =
                    f(0.60, "ExLlama prompt speed on RTX 4090 (rows 64–66): 0.57–0.60 of the FP16-accumulate peak");
                e.kernel_gap_per_layer_s = f(
                    42e-6,
                    "ExLlama decode on RTX 4090 (rows 64–66) fitted: 42 µs per layer besides 0.85 of bandwidth",
                );
            }
            Engine::Bare => {
                e.prefill_compute = gemm(generation);
                e.decode_compute = gemm(generation);
            }
            Engine::Headroom => {
                e.prefill_compute = gemm(generation);
                e.decode_compute = gemm(generation);
                e.host_per_layer_s = f(
                    HEADROOM_LAUNCHES_PER_LAYER * 3e-6,
                    "headroom validate: 18 launches per decode layer × 3 µs host time each (assumed, typical cuLaunchKernel / cuBLAS dispatch; validate reports the measured enqueue time)",
                );
            }
            Engine::LlamaCpp if generation == Generation::Apple => {
                e.kernel_gap_per_layer_s = f(METAL_KERNEL_GAP_S, METAL_KERNEL_GAP_SOURCE);
                e.prefill_compute = f(METAL_PREFILL_COMPUTE, METAL_PREFILL_COMPUTE_SOURCE);
                e.expert_tile_tokens = f(32.0, "llama.cpp's Metal kernel_mul_mm_id: 64 × 32 tiles (BLOCK_SIZE_M × BLOCK_SIZE_N, ggml-metal.metal), 32 tokens of one expert per tile, for passes of 32 tokens or more (below, mul_mv_id row by row)");
            }
            Engine::LlamaCpp if generation == Generation::Rdna => {
                e.kernel_gap_per_layer_s = rdna_kernel_gap(None);
                e.prefill_compute = f(RDNA_PREFILL_COMPUTE, RDNA_PREFILL_COMPUTE_SOURCE);
                e.expert_gemm_half_tokens = f(EXPERT_GEMM_HALF_TOKENS, RDNA_EXPERT_GEMM_SOURCE);
            }
            Engine::LlamaCpp if generation != Generation::Other => {
                e.kernel_gap_per_layer_s = f(
                    26e-6,
                    "llama.cpp decode runs ~18 small kernels per layer (norms, RoPE, KV writes, attention, adds, GLU): 26 µs per layer over the bandwidth roofline, the median of four llama-bench tg128 rows (RTX 4090 F16 7B 28 µs; RTX 6000 Ada 8B Q4_0 18, 3B Q4_K_M 25, gpt-oss-20b 32; published-speed.toml)",
                );
                e.expert_gemm_half_tokens = f(EXPERT_GEMM_HALF_TOKENS, EXPERT_GEMM_HALF_TOKENS_SOURCE);
                e.quantized_kv_attention =
                    f(LLAMA_CUDA_QUANTIZED_KV_ATTENTION, LLAMA_CUDA_QUANTIZED_KV_ATTENTION_SOURCE);
                e.mla_attention = f(LLAMA_CUDA_MLA_ATTENTION, LLAMA_CUDA_MLA_ATTENTION_SOURCE);
            }
            Engine::Vllm => e.kernel_gap_per_layer_s = f(VLLM_KERNEL_GAP_S, VLLM_KERNEL_GAP_SOURCE),
            Engine::Mlx => {
                e.prefill_compute = f(MLX_PREFILL_COMPUTE, MLX_PREFILL_COMPUTE_SOURCE);
                e.kernel_gap_per_layer_s = f(MLX_KERNEL_GAP_S, MLX_KERNEL_GAP_SOURCE);
                e.kernel_gap_per_moe_layer_s = f(MLX_MOE_GAP_S, MLX_MOE_GAP_SOURCE);
            }
            Engine::LlamaCpp => {}
        }
        e
    }

    /// llama.cpp's CUDA kernels on a GPU with `sm_ghz` SMs × GHz: its decode cannot stream more
    /// than [`LLAMA_CUDA_DECODE_BYTES_PER_SM_CLOCK`] per SM and clock, nor its prompts compute
    /// more than [`LLAMA_CUDA_PROMPT_FLOPS_PER_SM_CLOCK`]; where that is below the bandwidth
    /// fraction of `peak_gb_s` or the prefill fraction of `peak_tflops`, the fraction drops to
    /// it. That is the A100, H100, H200 and B200 by far; the V100 and RTX 3060 a little (0.82
    /// and 0.83 of their bus); other GeForce and workstation cards keep theirs. `peak_tflops` is
    /// the rate llama.cpp's quantized prompts use (a GeForce card's FP16-accumulate one).
    pub fn cap_llama_cuda(&mut self, sm_ghz: f64, peak_gb_s: f64, peak_tflops: Option<f64>) {
        let stream = sm_ghz * LLAMA_CUDA_DECODE_BYTES_PER_SM_CLOCK;
        if peak_gb_s > 0.0 && stream < self.bandwidth.value * peak_gb_s {
            self.bandwidth = Factor {
                value: stream / peak_gb_s,
                source: format!(
                    "llama.cpp CUDA decode kernels: {sm_ghz:.1} SM·GHz × {LLAMA_CUDA_DECODE_BYTES_PER_SM_CLOCK:.1} B = {stream:.0} GB/s of {peak_gb_s:.0}, below {:.3} of the bus (memory-level parallelism per SM; A100/H100 llama-bench rows, published-speed.toml)",
                    self.bandwidth.value
                ),
            };
        }
        let compute = sm_ghz * LLAMA_CUDA_PROMPT_FLOPS_PER_SM_CLOCK / 1e3;
        if let Some(peak) = peak_tflops.filter(|&p| p > 0.0 && compute < self.prefill_compute.value * p) {
            self.prefill_compute = Factor {
                value: compute / peak,
                source: format!(
                    "llama.cpp CUDA prompt kernels (MMQ): {sm_ghz:.1} SM·GHz × {LLAMA_CUDA_PROMPT_FLOPS_PER_SM_CLOCK:.0} FLOPs = {compute:.0} TFLOPS of {peak:.0}, below {:.3} of the peak (GeForce-sized tiles leave the wider tensor cores idle; A100/H100 llama-bench rows, published-speed.toml)",
                    self.prefill_compute.value
                ),
            };
        }
    }

    /// llama.cpp on a named ggml backend: on AMD Radeon GPUs HIP's or Vulkan's own decode gap in
    /// place of the median of both. Prompts keep the shared fraction: the rows do not separate
    /// by backend (each backend's pp512 rows spread 0.19-0.36 of the peak, chip by chip).
    pub fn on_ggml_backend(&mut self, engine: Engine, generation: Generation, backend: Option<GgmlBackend>) {
        if engine == Engine::LlamaCpp && generation == Generation::Rdna {
            self.kernel_gap_per_layer_s = rdna_kernel_gap(backend);
        }
    }

    /// vLLM `--enforce-eager`: no CUDA graphs, so each decode step waits on the host's Python
    /// forward, [`VLLM_EAGER_HOST_PER_LAYER_S`] a layer. A calibration's `host_per_layer_ms` for
    /// vLLM, applied after, replaces it (measure it with graphs off).
    pub fn without_cuda_graphs(&mut self, engine: Engine) {
        if engine == Engine::Vllm {
            self.host_per_layer_s = f(VLLM_EAGER_HOST_PER_LAYER_S, VLLM_EAGER_HOST_PER_LAYER_SOURCE);
        }
    }

    /// The bandwidth fraction a published device copy achieved (read + write bytes), from the
    /// GPU catalog: RX 7900 XTX 643 of 960 GB/s is 0.67.
    pub fn of_measured_copy(copy_gb_s: f64, peak_gb_s: f64, note: &str) -> Factor {
        Factor {
            value: copy_gb_s / peak_gb_s,
            source: format!("measured device copy, {copy_gb_s} of {peak_gb_s} GB/s: {note}"),
        }
    }

    /// Applies a calibration: GPU achievements first, then the engine's own fields.
    pub fn calibrate(&mut self, cal: &Calibration, engine: Engine, gpu: &str, peaks: (f64, Option<f64>)) {
        let origin =
            |what: &str| format!("calibration: {what} ({})", cal.description.as_deref().unwrap_or("no description"));
        if let Some(g) = cal.gpus.get(gpu) {
            if let Some(bw) = g.bandwidth_gb_s.filter(|_| peaks.0 > 0.0) {
                self.bandwidth = Factor { value: (bw * 1e9 / peaks.0).min(1.0), source: origin("achieved bandwidth") };
            }
            if let (Some(t), Some(peak), Engine::Bare | Engine::Headroom) = (g.bf16_tflops, peaks.1, engine) {
                let v = (t * 1e12 / peak).min(1.0);
                self.prefill_compute = Factor { value: v, source: origin("achieved bf16 GEMM") };
                self.decode_compute = Factor { value: v, source: origin("achieved bf16 GEMM") };
            }
        }
        let Some(c) = cal.engines.get(engine.id()) else { return };
        let set = |slot: &mut Factor, v: Option<f64>, scale: f64, name: &str| {
            if let Some(v) = v {
                *slot = Factor { value: v * scale, source: origin(name) };
            }
        };
        set(&mut self.bandwidth, c.bandwidth, 1.0, "bandwidth");
        set(&mut self.kv_read, c.kv_read, 1.0, "kv_read");
        set(&mut self.quantized_kv_attention, c.quantized_kv_attention, 1.0, "quantized_kv_attention");
        set(&mut self.mla_attention, c.mla_attention, 1.0, "mla_attention");
        set(&mut self.prefill_compute, c.prefill_compute, 1.0, "prefill_compute");
        set(&mut self.decode_compute, c.decode_compute, 1.0, "decode_compute");
        set(&mut self.host_per_layer_s, c.host_per_layer_ms, 1e-3, "host_per_layer_ms");
        set(&mut self.host_per_moe_layer_s, c.host_per_moe_layer_ms, 1e-3, "host_per_moe_layer_ms");
        set(
            &mut self.host_per_quantized_linear_s,
            c.host_per_quantized_linear_ms,
            1e-3,
            "host_per_quantized_linear_ms",
        );
        set(
            &mut self.host_per_double_quant_linear_s,
            c.host_per_double_quant_linear_ms,
            1e-3,
            "host_per_double_quant_linear_ms",
        );
        set(&mut self.kernel_gap_per_layer_s, c.kernel_gap_per_layer_us, 1e-6, "kernel_gap_per_layer_us");
        set(&mut self.kernel_gap_per_moe_layer_s, c.kernel_gap_per_moe_layer_us, 1e-6, "kernel_gap_per_moe_layer_us");
        set(&mut self.expert_gemm_half_tokens, c.expert_gemm_half_tokens, 1.0, "expert_gemm_half_tokens");
        set(&mut self.expert_tile_tokens, c.expert_tile_tokens, 1.0, "expert_tile_tokens");
        set(&mut self.host_bandwidth, c.host_bandwidth, 1.0, "host_bandwidth");
        set(&mut self.host_upload, c.host_upload, 1.0, "host_upload");
        set(&mut self.host_handoff_s, c.host_handoff_us, 1e-6, "host_handoff_us");
    }

    /// The host fraction against a measured read bandwidth rather than a DDR peak.
    pub fn of_measured_host_read() -> Factor {
        f(HOST_BANDWIDTH_OF_READ, HOST_BANDWIDTH_OF_READ_SOURCE)
    }

    /// Fractions must lie in (0, 1], times be finite and non-negative, and an expert tile be off
    /// (0) or at least one token wide.
    pub fn is_valid(&self) -> bool {
        let frac = [
            &self.bandwidth,
            &self.kv_read,
            &self.prefill_compute,
            &self.decode_compute,
            &self.host_bandwidth,
            &self.host_upload,
        ];
        let times = [
            &self.host_per_layer_s,
            &self.host_per_moe_layer_s,
            &self.host_per_quantized_linear_s,
            &self.host_per_double_quant_linear_s,
            &self.kernel_gap_per_layer_s,
            &self.kernel_gap_per_moe_layer_s,
            &self.allreduce_base_s,
            &self.host_handoff_s,
            &self.expert_gemm_half_tokens,
            &self.expert_tile_tokens,
        ];
        let tile = self.expert_tile_tokens.value;
        let (dequant, mla) = (self.quantized_kv_attention.value, self.mla_attention.value);
        frac.iter().all(|x| x.value > 0.0 && x.value <= 1.0)
            && (0.0..=1.0).contains(&dequant)
            && (0.0..=1.0).contains(&mla)
            && times.iter().all(|x| x.value.is_finite() && x.value >= 0.0)
            && (tile == 0.0 || tile >= 1.0)
    }
}

/// A calibration file (see the module doc for its shape).
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Calibration {
    pub description: Option<String>,
    #[serde(default)]
    pub gpus: BTreeMap<String, GpuCalibration>,
    #[serde(default)]
    pub engines: BTreeMap<String, EngineCalibration>,
    pub host: Option<HostCalibration>,
}

/// What the host achieved.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostCalibration {
    /// Read bandwidth of the host's RAM, GB/s (`headroom bench`'s host RAM read): weights left
    /// in host RAM are planned at [`HOST_BANDWIDTH_OF_READ`] of it instead of at a fraction of a
    /// DDR configuration's peak.
    pub read_gb_s: Option<f64>,
}

/// What a GPU achieved.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct GpuCalibration {
    /// Achieved copy bandwidth, GB/s (1e9 B/s), counting read + write.
    pub bandwidth_gb_s: Option<f64>,
    /// Achieved bf16 large-GEMM rate, TFLOPS.
    pub bf16_tflops: Option<f64>,
}

/// Engine efficiencies; each replaces its default.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct EngineCalibration {
    pub bandwidth: Option<f64>,
    pub kv_read: Option<f64>,
    pub quantized_kv_attention: Option<f64>,
    pub mla_attention: Option<f64>,
    pub prefill_compute: Option<f64>,
    pub decode_compute: Option<f64>,
    pub host_per_layer_ms: Option<f64>,
    pub host_per_moe_layer_ms: Option<f64>,
    pub host_per_quantized_linear_ms: Option<f64>,
    pub host_per_double_quant_linear_ms: Option<f64>,
    pub kernel_gap_per_layer_us: Option<f64>,
    pub kernel_gap_per_moe_layer_us: Option<f64>,
    pub expert_gemm_half_tokens: Option<f64>,
    pub expert_tile_tokens: Option<f64>,
    pub host_bandwidth: Option<f64>,
    pub host_upload: Option<f64>,
    pub host_handoff_us: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caps' doc examples: an A100 SXM (19.5 FP32 TFLOPS over 64 lanes: 108 SMs × 1.41 GHz)
    /// streams 914 GB/s in llama.cpp's decode, 0.45 of its bus, and computes 99 TFLOPS in its
    /// prompts, 0.32 of 312; an RTX 4090 (82.6 over 128 lanes) keeps 0.85 of 1,008 GB/s and its
    /// prefill fraction of the doubled FP16-accumulate 330 TFLOPS.
    #[test]
    fn llama_cuda_caps_bind_on_a100_not_on_rtx_4090() {
        let a100 = sm_ghz(Some(19.5), Some("8.0")).unwrap();
        let mut e = Efficiency::defaults(Engine::LlamaCpp, Generation::Ampere);
        e.cap_llama_cuda(a100, 2039.0, Some(312.0));
        assert!((e.bandwidth.value * 2039.0 - 914.06).abs() < 0.01, "{}", e.bandwidth.value);
        assert!((e.prefill_compute.value * 312.0 - 99.33).abs() < 0.01, "{}", e.prefill_compute.value);
        let rtx_4090 = sm_ghz(Some(82.6), Some("8.9")).unwrap();
        let mut e = Efficiency::defaults(Engine::LlamaCpp, Generation::Ada);
        let before = e.clone();
        e.cap_llama_cuda(rtx_4090, 1008.0, Some(330.4));
        assert_eq!(e, before);
        assert_eq!(sm_ghz(None, Some("8.0")), None);
        assert_eq!(sm_ghz(Some(5.0), Some("3.5")), None, "Kepler: lanes not listed");
    }

    #[test]
    fn every_default_is_valid_and_sourced() {
        for engine in Engine::ALL {
            for g in [
                Generation::Ampere,
                Generation::Ada,
                Generation::Hopper,
                Generation::Apple,
                Generation::Rdna,
                Generation::Other,
            ] {
                let e = Efficiency::defaults(engine, g);
                assert!(e.is_valid(), "{engine:?} {g:?}");
                assert!(!e.bandwidth.source.is_empty() && !e.prefill_compute.source.is_empty());
            }
        }
    }

    /// llama.cpp's Metal backend has its own gaps, prompt rate and expert tiles; its CUDA backend
    /// keeps the MMQ per-expert cost and no tiles; on AMD Radeon it has its own gap and prompt
    /// rate and CUDA's per-expert cost; no other engine runs on these numbers.
    #[test]
    fn llama_cpp_backends_differ() {
        let rdna = Efficiency::defaults(Engine::LlamaCpp, Generation::Rdna);
        assert_eq!((rdna.kernel_gap_per_layer_s.value, rdna.prefill_compute.value), (72e-6, 0.24));
        assert_eq!((rdna.expert_tile_tokens.value, rdna.expert_gemm_half_tokens.value), (0.0, 72.0));
        assert_eq!(Efficiency::defaults(Engine::Vllm, Generation::Rdna).prefill_compute.value, 0.45);
        let metal = Efficiency::defaults(Engine::LlamaCpp, Generation::Apple);
        assert_eq!(metal.kernel_gap_per_layer_s.value, 129e-6);
        assert_eq!(metal.prefill_compute.value, 0.62);
        assert_eq!((metal.expert_tile_tokens.value, metal.expert_gemm_half_tokens.value), (32.0, 0.0));
        let cuda = Efficiency::defaults(Engine::LlamaCpp, Generation::Ada);
        assert_eq!(cuda.kernel_gap_per_layer_s.value, 26e-6);
        assert_eq!((cuda.expert_tile_tokens.value, cuda.expert_gemm_half_tokens.value), (0.0, 72.0));
        let hf = Efficiency::defaults(Engine::Hf, Generation::Apple);
        assert_eq!((hf.kernel_gap_per_layer_s.value, hf.expert_tile_tokens.value), (0.0, 0.0));
    }

    /// On AMD Radeon a named backend sets llama.cpp's decode gap (HIP above the median of both,
    /// Vulkan below) and leaves its prompt rate; it changes nothing for other engines or GPUs.
    #[test]
    fn a_named_radeon_backend_sets_the_gap() {
        let gap = |engine, generation, backend| {
            let mut e = Efficiency::defaults(engine, generation);
            e.on_ggml_backend(engine, generation, backend);
            (e.kernel_gap_per_layer_s.value, e.prefill_compute.value)
        };
        let (llama, rdna) = (Engine::LlamaCpp, Generation::Rdna);
        assert_eq!(gap(llama, rdna, None), (72e-6, 0.24));
        assert_eq!(gap(llama, rdna, Some(GgmlBackend::Hip)), (97e-6, 0.24));
        assert_eq!(gap(llama, rdna, Some(GgmlBackend::Vulkan)), (52e-6, 0.24));
        assert_eq!(gap(llama, Generation::Ada, Some(GgmlBackend::Cuda)), (26e-6, 0.45));
        assert_eq!(gap(Engine::Vllm, rdna, Some(GgmlBackend::Hip)), gap(Engine::Vllm, rdna, None));
    }

    /// The Hopper bandwidth fraction is the measured copy: 4,247 / 4,800.
    #[test]
    fn hopper_bandwidth_is_the_measured_copy() {
        let e = Efficiency::defaults(Engine::Vllm, Generation::Hopper);
        assert!((e.bandwidth.value - 4247.0 / 4800.0).abs() < 0.001);
    }

    #[test]
    fn calibration_replaces_defaults() {
        let cal: Calibration = serde_json::from_str(
            r#"{"description": "t", "gpus": {"h200": {"bandwidth_gb_s": 2400}},
                "engines": {"hf": {"host_per_layer_ms": 1.0, "prefill_compute": 0.4}}}"#,
        )
        .unwrap();
        let mut e = Efficiency::defaults(Engine::Hf, Generation::Hopper);
        e.calibrate(&cal, Engine::Hf, "h200", (4.8e12, Some(989e12)));
        assert!((e.bandwidth.value - 0.5).abs() < 1e-9);
        assert!((e.host_per_layer_s.value - 1e-3).abs() < 1e-12);
        assert_eq!(e.prefill_compute.value, 0.4);
        assert!(e.host_per_layer_s.source.starts_with("calibration"));
        assert!(serde_json::from_str::<Calibration>(r#"{"engines": {"hf": {"bogus": 1}}}"#).is_err());
    }
}
