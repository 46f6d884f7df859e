//! Inference speed: prefill and decode as rooflines with efficiency factors.
//!
//! Each phase is the sum of its kernels' rooflines (LLM-Viewer style): a linear part
//! `max(bytes / (BW·e_bw), FLOPs / (peak·e_c))` and an attention part of the same form, plus
//! what the roofline does not see: tensor-parallel all-reduces (ring: `2(t−1)/t · bytes / link`
//! and `2(t−1)` latencies, twice per layer; llm-analysis), hidden-state hand-offs between
//! layer-split stages (run one after another, llama.cpp / ExLlama), dequantization passes and,
//! for eager engines, the host's per-layer launch time (the step cannot be shorter than it).
//! Weights outside the GPU add the time of their path: llama.cpp's host RAM and uploads
//! (`offload`), vLLM's `--cpu-offload-gb` reads over PCIe. llama.cpp's routed-expert GEMMs in a
//! prompt pass pay a fixed cost per touched expert, worth 72 tokens' work (`n / (n + 72)` of the
//! dense rate at n tokens per expert).
//! Because every term is at least its pure roofline, decode never beats bandwidth ÷ bytes read
//! and prefill never beats peak FLOP/s (property-tested over the catalog).
//!
//! Llama-2-7B bf16 on an H200 with transformers (hf), 4,096 tokens, batch 1: decode reads
//! 13.48 GB of weights + 2.15 GB of KV; at 0.885 × 4.8 TB/s that is 3.7 ms, but the host needs
//! 32 × 0.70 ms = 22.4 ms per step, so the step is 22.4 + 0.5 (attention) = 22.9 ms, 43.7 tok/s
//! (measured 34.6, median step; infer.json).

pub mod efficiency;
pub mod offload;
pub mod training;
pub mod work;

pub use efficiency::{Calibration, Efficiency, Factor};
pub use work::Params;

use super::basis::BasisLog;
use super::device::{DeviceSpeed, Generation, HostSpeed, LinkKind};
use super::engine::Engine;
use super::{InferenceRequest, Plan};
use crate::quant::gguf::GgufFileType;
use crate::quant::stored::FloatType;
use crate::quant::WeightFormat;
use serde::Serialize;

/// Speeds of one plan; `None` where the hardware lacks the number needed.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Speed {
    /// Prompt tokens per second of the whole batch (batch · context / prefill time).
    pub prefill_tokens_per_s: Option<f64>,
    /// Prefill time of the whole batch.
    pub time_to_first_token_s: Option<f64>,
    /// Decode step time with `context` tokens cached (the slowest step of a full context).
    pub inter_token_latency_s: Option<f64>,
    /// Tokens per second of one sequence.
    pub decode_tokens_per_s_per_sequence: Option<f64>,
    /// Tokens per second of the whole batch.
    pub decode_tokens_per_s: Option<f64>,
}

/// What the speed model needs besides the memory plan's request.
#[derive(Clone, Debug)]
pub struct SpeedRequest<'a> {
    pub inference: &'a InferenceRequest<'a>,
    pub plan: &'a Plan,
    pub device: &'a DeviceSpeed,
    pub efficiency: &'a Efficiency,
    pub params: Params,
    /// Weights stored below the compute precision (dequantization costs apply).
    pub quantized: bool,
    /// The host's RAM, for weights llama.cpp leaves there (`offload`); `None` makes such plans'
    /// speeds null.
    pub host: Option<&'a HostSpeed>,
}

/// The parallel layout the memory plan chose: (tensor-parallel degree, pipeline stages).
fn layout(req: &SpeedRequest) -> (f64, f64) {
    let per_gpu = &req.plan.per_gpu;
    let layers = (0, req.inference.spec.num_layers);
    if per_gpu.len() > 1 && per_gpu.iter().all(|g| g.layers == layers) {
        (per_gpu.len() as f64, 1.0)
    } else {
        (1.0, per_gpu.len().max(1) as f64)
    }
}

/// Time of the communication of `bytes` of activations per layer: tensor parallel all-reduces
/// (one per mixer and per MLP, two per layer, ring: `2(t−1)/t·bytes/link` plus the latency of
/// [`allreduce_latency_s`]) or stage hand-offs (`(stages−1)·(bytes/link + α)`, α the base
/// latency). Llama-2-70B, TP 2 over NVLink 4 (450 GB/s a direction), one decode token:
/// 80·2·(1·8,192·2 B / 450e9 + 6.6 µs + 2·0.6 µs) = 1.3 ms.
pub fn communication_s(req: &SpeedRequest, activation_bytes: f64) -> Option<f64> {
    let (tp, stages) = layout(req);
    if tp == 1.0 && stages == 1.0 {
        return Some(0.0);
    }
    let link = req.device.link?;
    let bw = link.bandwidth_per_direction.0;
    let e = req.efficiency;
    // One all-reduce after each mixer and each MLP.
    let all_reduces = req.inference.spec.sublayers() as f64;
    Some(if tp > 1.0 {
        all_reduces * (2.0 * (tp - 1.0) / tp * activation_bytes / bw + allreduce_latency_s(e, link.kind, tp))
    } else {
        (stages - 1.0) * (activation_bytes / bw + e.allreduce_base_s.value)
    })
}

/// Latency of one small ring all-reduce over `ranks` GPUs: the base latency and `2(ranks−1)`
/// hops of the link (NCCL's LL model, `efficiency::ALLREDUCE_BASE_S`). Eight GPUs over NVLink:
/// 6.6 + 14 × 0.6 = 15.0 µs.
pub fn allreduce_latency_s(e: &Efficiency, link: LinkKind, ranks: f64) -> f64 {
    e.allreduce_base_s.value + 2.0 * (ranks - 1.0).max(0.0) * link.allreduce_hop_s()
}

/// Dense 16-bit peak the engine's GEMMs run at: the FP16-accumulate rate (twice the FP32 one on
/// GeForce cards) where the engine's GEMMs accumulate in fp16. ExLlama's do. So do llama.cpp's
/// for F16 weights (cuBLAS with `CUBLAS_COMPUTE_16F`) and, in effect, for quantized ones: MMQ
/// runs int8 tensor-core MMAs on the quantized blocks at about that FLOP rate. RTX 4090 (330
/// TFLOPS FP16-accumulate): llama 7B F16 pp512 11,048 t/s × 13.5 GFLOP = 149 TFLOPS, llama 8B
/// Q4_0 pp512 10,359 t/s × 15.1 GFLOP = 156 TFLOPS (llama.cpp PRs #4766 and #7676), 0.45 and
/// 0.47 of it. BF16 and F32 weights run cuBLAS with FP32 accumulation.
fn peak(req: &SpeedRequest) -> Option<f64> {
    let d = req.device;
    let fp16_accumulate = match req.inference.engine {
        Engine::Exllama => true,
        Engine::LlamaCpp => !matches!(
            req.inference.format,
            WeightFormat::Float(FloatType::Bf16 | FloatType::F32)
                | WeightFormat::Gguf(GgufFileType::Bf16 | GgufFileType::F32)
        ),
        _ => false,
    };
    let fp16_acc = if fp16_accumulate { d.peak_16bit_fp16_acc } else { None };
    fp16_acc.or(d.peak_16bit).map(|p| p.0)
}

/// Prefill of `batch` prompts of `context` tokens: `max(FLOPs/(t·peak·e_c), weights/(t·BW·e_bw))`
/// plus a dequantization pass per forward pass (engines that dequantize to fp16 before the
/// GEMMs: read the quantized layers, write 2 bytes per weight) plus communication, plus the host
/// time of Python expert loops: transformers' MoE block reads the routing back to the host
/// (`nonzero()` on the expert mask) in every MoE layer, so its loop over experts cannot run ahead
/// of the GPU. Mixtral-8x7B, 4,064 tokens on an H200: 0.218 s of roofline + 32 × 1.2 ms = 0.256 s.
///
/// Every forward pass reads the decoder layers again (the experts its tokens touch); lm_head is
/// read once (every pass with all positions' logits); the token table is gathered, not read.
pub fn prefill_s(req: &SpeedRequest) -> Option<f64> {
    let inf = req.inference;
    let (tp, _) = layout(req);
    let e = req.efficiency;
    let flops = work::prefill_flops(inf.spec, req.params, inf.context, inf.batch, &inf.options);
    let bw = req.device.bandwidth.0 * e.bandwidth.value * tp;
    let (passes, pass_tokens) = prefill_passes(inf);
    // Routed-expert GEMMs pay a fixed cost per pass for each expert its tokens touch.
    let expert_fixed = passes as f64 * expert_fixed_flops(req, pass_tokens);
    let compute = (flops + expert_fixed) / (peak(req)? * e.prefill_compute.value * tp);
    let head_reads = if inf.options.logits_all_positions { passes } else { 1 };
    let memory = (passes as f64 * work::layer_weight_bytes(inf, pass_tokens)
        + head_reads as f64 * work::lm_head_bytes(inf))
        / bw;
    let dequant = if req.quantized && dequantizes_for_prefill(inf, pass_tokens) {
        let layer_bytes = inf.weights.layers_in(0..inf.spec.num_layers).0;
        let vision = inf.spec.encoder_parameters();
        let all_experts = work::Params { active: req.params.total.saturating_sub(vision), ..req.params };
        let elements = work::matmul_params(inf.spec, all_experts);
        passes as f64 * (layer_bytes as f64 + 2.0 * elements as f64) / bw
    } else {
        0.0
    };
    let unfused_scores = work::mlx_unfused_score_bytes(inf) / bw;
    let act = (inf.batch * inf.context * inf.spec.hidden_size * 2) as f64;
    let moe_layers = (0..inf.spec.num_layers).filter(|&l| inf.spec.is_moe_layer(l)).count() as f64;
    let expert_loops = moe_layers * e.host_per_moe_layer_s.value;
    let offload = passes as f64 * vllm_offload_s(req, pass_tokens)?;
    // vLLM --enforce-eager: a pass cannot finish before the host has launched every layer.
    let host = if inf.options.enforce_eager {
        passes as f64 * inf.spec.sublayers() as f64 / 2.0 * e.host_per_layer_s.value
    } else {
        0.0
    };
    Some(
        compute.max(memory).max(host)
            + dequant
            + unfused_scores
            + expert_loops
            + communication_s(req, act)?
            + host_weights_prefill_s(req)?
            + offload,
    )
}

/// Bytes a forward pass of `tokens` tokens reads of the parameters vLLM's `--cpu-offload-gb`
/// keeps in host memory, all GPUs together: each GPU's first layers (the experts its tokens
/// touch), read over PCIe by the kernels themselves (UVA, zero-copy, the default) or copied
/// before the layer runs.
fn vllm_offload_reads(req: &SpeedRequest, tokens: u64) -> f64 {
    let inf = req.inference;
    if inf.engine != Engine::Vllm || inf.options.cpu_offload_bytes == 0 {
        return 0.0;
    }
    let (tp, _) = layout(req);
    // Tensor-parallel ranks hold the same layers; stages of a layer split their own.
    let gpus = if tp > 1.0 { &req.plan.per_gpu[..1] } else { &req.plan.per_gpu[..] };
    let reads = |layers: std::ops::Range<u64>| {
        let (dense, experts) = work::layer_reads(inf, layers, tokens);
        dense + experts
    };
    gpus.iter()
        .map(|g| {
            let o = super::inference::vllm_offload(inf, g.layers.0..g.layers.1, tp as u64);
            reads(o.whole.clone()) + o.partial * reads(o.whole.end..o.whole.end + 1)
        })
        .sum()
}

/// Time those reads take: each GPU reads its share over its own PCIe link, tensor-parallel ranks
/// at once, pipeline stages one after another (the upload efficiency of llama.cpp's copies).
fn vllm_offload_s(req: &SpeedRequest, tokens: u64) -> Option<f64> {
    let bytes = vllm_offload_reads(req, tokens);
    if bytes == 0.0 {
        return Some(0.0);
    }
    let (tp, _) = layout(req);
    Some(bytes / (tp * req.device.host_link?.0 * req.efficiency.host_upload.value))
}

/// Prefill time spent on weights in host RAM (`offload`).
fn host_weights_prefill_s(req: &SpeedRequest) -> Option<f64> {
    let Some(p) = offload::placement(req) else { return Some(0.0) };
    let (_, chunk) = prefill_passes(req.inference);
    let tokens = req.inference.context * req.inference.batch;
    offload::prefill_host_s(req, &p, (tokens / chunk, chunk, tokens % chunk))
}

/// The fixed cost of one pass's routed-expert GEMMs, in dense-rate FLOPs beside the tokens' own
/// work. Two mechanisms, each zero where the engine has no such cost:
///
/// - a cost per touched expert: llama.cpp's CUDA MMQ with expert ids stages each touched
///   expert's weight tiles whatever few tokens it got, worth `n½` tokens' work per expert
///   (`expert_gemm_half_tokens`); an expert no token picked launches nothing. Per MoE layer:
///   `touched·E · n½ · 2·params_per_expert`, so a pass giving each expert `n = tokens·k/E` tokens
///   (all touched) runs them at `n / (n + n½)` of the dense rate. Qwen3-30B-A3B (k = 8 of 128, 48
///   layers of 3 · 2,048 · 768), a 16-token ubatch: 0.644 · 128 · 72 · 2 · 4,718,592 · 48 = 2.69
///   TFLOP against 16 · 2 · 8 · 4,718,592 · 48 = 58 GFLOP of the tokens' own expert work;
/// - whole tiles: llama.cpp's Metal `mul_mm_id`, which passes of 32 tokens or more take, computes
///   each expert's tokens in tiles of 32 (`expert_tile_tokens`) and a partly filled tile costs a
///   full one: `(E·T·E[⌈X/T⌉] −
///   tokens·k) · 2·params_per_expert` ([`work::expected_expert_tiles`]). gpt-oss-120b, 512
///   tokens: 128 · 32 · 1.00 = 4,096 tokens' work for 2,048 routed, the routed GEMMs at half rate.
fn expert_fixed_flops(req: &SpeedRequest, pass_tokens: u64) -> f64 {
    let (spec, e) = (req.inference.spec, req.efficiency);
    let Some(m) = spec.moe else { return 0.0 };
    let params_per_expert = work::routed_params_per_token(spec) as f64 / m.experts_per_token.max(1) as f64;
    let experts = m.num_experts as f64;
    let touched = work::touched_expert_fraction(spec, pass_tokens) * experts;
    let per_expert = touched * e.expert_gemm_half_tokens.value;
    // Below one tile of tokens llama.cpp's Metal backend multiplies experts row by row
    // (`mul_mv_id`; `ne21_mm_id_min = 32`): no padding.
    let tile = e.expert_tile_tokens.value;
    let padding = if tile >= 1.0 && pass_tokens as f64 >= tile {
        let computed = experts * tile * work::expected_expert_tiles(spec, pass_tokens, tile);
        (computed - (pass_tokens * m.experts_per_token) as f64).max(0.0)
    } else {
        0.0
    };
    (per_expert + padding) * 2.0 * params_per_expert
}

/// Whether the engine writes quantized weights out as fp16 before its prompt GEMMs.
/// transformers and LitGPT (bitsandbytes, GPTQ/AWQ kernels), ExLlama (`temp_dq`) and headroom do.
/// MLX's `quantized_matmul` dequantizes tile by tile inside the GEMM. llama.cpp's MMQ multiplies
/// the quantized blocks on int8 tensor cores from Turing on; on Volta
/// (FP16 tensor cores, no int8 ones) it uses MMQ below 64 tokens only and otherwise dequantizes
/// for cuBLAS (`ggml_cuda_should_use_mmq`).
fn dequantizes_for_prefill(inf: &InferenceRequest, pass_tokens: u64) -> bool {
    match inf.engine {
        Engine::Hf | Engine::Unsloth | Engine::Litgpt | Engine::Exllama | Engine::Headroom => true,
        Engine::LlamaCpp => {
            let volta = inf.device.as_ref().is_some_and(|d| d.generation == Generation::Volta);
            volta && pass_tokens >= 64
        }
        Engine::Vllm | Engine::Bare | Engine::Mlx => false,
    }
}

/// Forward passes a prefill takes and the tokens in each: llama.cpp evaluates the prompts in
/// ubatches of `n_ubatch` tokens, ExLlama each prompt in chunks of 2,048, vLLM in chunks of
/// `max_num_batched_tokens` (chunked prefill); transformers and LitGPT in one pass. Llama-3-8B
/// Q4_0 at 8,096 tokens under llama.cpp: 16 passes of 512.
pub fn prefill_passes(inf: &InferenceRequest) -> (u64, u64) {
    let vllm_chunk = super::inference::vllm_budget(inf).0;
    let chunk = inf.options.prompt_pass_tokens(inf.engine, inf.context, inf.batch, vllm_chunk);
    ((inf.context * inf.batch).div_ceil(chunk), chunk)
}

/// One decode step with `context` tokens cached per sequence:
/// `max(linear roofline, host time) + attention roofline + L·kernel gap + communication`.
pub fn decode_step_s(req: &SpeedRequest) -> Option<f64> {
    let inf = req.inference;
    let spec = inf.spec;
    let (tp, _) = layout(req);
    let e = req.efficiency;
    let bw = req.device.bandwidth.0 * e.bandwidth.value * tp;
    let (lin_flops, attn_flops) = work::decode_flops(spec, req.params, inf.context, inf.batch);
    let compute = |flops: f64| peak(req).map_or(0.0, |p| flops / (p * e.decode_compute.value * tp));
    let placement = offload::placement(req);
    // With weights in host RAM (`offload`), the GPU reads the rest and the CPU reads its share.
    let (host_weights, host_s, gpu_start) = match &placement {
        Some(p) => (offload::decode_host_bytes(req, p, inf.batch), offload::decode_host_s(req, p)?, p.gpu_start),
        None => (0.0, 0.0, 0),
    };
    // vLLM --cpu-offload-gb: those parameters cross PCIe instead of the GPU's memory bus.
    let (offloaded, offload_s) = (vllm_offload_reads(req, inf.batch), vllm_offload_s(req, inf.batch)?);
    let host_weights = host_weights + offloaded;
    let weights = work::decode_weight_bytes(inf, inf.batch);
    let gpu_share = 1.0 - host_weights / weights;
    let linear = ((weights - host_weights) / bw).max(compute(lin_flops * gpu_share));
    let on_gpu = gpu_start..spec.num_layers;
    let kv = work::decode_kv_bytes_in(inf, on_gpu.clone(), inf.context, inf.batch) / (bw * e.kv_read.value);
    // Arithmetic-bound attention (a dequantizing or latent cache) of host layers runs on the CPU
    // at a FLOP rate not modelled, taken as no faster than the GPU kernel's, after the GPU's
    // layers: moving a layer to the host never looks like a saving.
    let attention = kv
        .max(compute(attn_flops))
        .max(quantized_cache_attention_s(req, on_gpu.clone()))
        .max(latent_cache_attention_s(req, on_gpu))
        + quantized_cache_attention_s(req, 0..gpu_start)
        + latent_cache_attention_s(req, 0..gpu_start);
    // Host time and launch gaps per transformer layer's worth of kernels on the GPUs.
    let layers = spec.sublayers() as f64 / 2.0 * (spec.num_layers - gpu_start) as f64 / spec.num_layers as f64;
    let moe_layers = (0..spec.num_layers).filter(|&l| spec.is_moe_layer(l)).count() as f64;
    let quantized_linears =
        if req.quantized { work::quantized_linears_per_token(spec, inf.engine) as f64 } else { 0.0 };
    let per_linear = e.host_per_quantized_linear_s.value
        + if double_quant(inf) { e.host_per_double_quant_linear_s.value } else { 0.0 };
    let host =
        layers * e.host_per_layer_s.value + moe_layers * e.host_per_moe_layer_s.value + quantized_linears * per_linear;
    let act = (inf.batch * spec.hidden_size * 2) as f64;
    Some(
        linear.max(host)
            + attention
            + layers * e.kernel_gap_per_layer_s.value
            + moe_layers * e.kernel_gap_per_moe_layer_s.value
            + communication_s(req, act)?
            + host_s
            + offload_s,
    )
}

/// Decode attention over a q8_0 or q4_0 cache where the engine's one-token kernel dequantizes it
/// element by element on the CUDA cores (llama.cpp's flash attention at batch 1): the attention
/// FLOPs of the attention layers in `layers` (linear-attention states are not a cache) at
/// `quantized_kv_attention` of the FP32 peak; 0 where that is not modelled. Larger batches take
/// llama.cpp's f16-converting kernels, not modelled here. Llama-3.1-8B on an RTX 3090 at 32,768
/// tokens: 32 layers × 32,768 × 16,384 FLOP = 17.2 GFLOP at 0.08 × 35.6 TFLOPS, 6.0 ms a token
/// where the q8_0 cache's 2.3 GB take 2.9 ms to read.
fn quantized_cache_attention_s(req: &SpeedRequest, layers: std::ops::Range<u64>) -> f64 {
    let Some(flops_per_s) = dequantizing_attention_rate(req) else { return 0.0 };
    let spec = req.inference.spec;
    work::cached_attention_flops(spec, layers, req.inference.context) / (flops_per_s * layout(req).0)
}

/// Decode attention over a latent (MLA) cache where the engine's one-token kernel is bound by
/// its arithmetic (llama.cpp's CUDA backend at batch 1): `2·heads·(kv_lora + rope + kv_lora)`
/// FLOPs per cached token of each latent-attention layer in `layers`, at `mla_attention` of the
/// FP32 peak; 0 where that is not modelled (and for DeepSeek-V3.2's sparse attention, which reads
/// a selection). GLM-4.7-Flash on an RTX 4090 at 8,192 tokens: 47 × 8,192 × 2·20·1,088 = 16.8
/// GFLOP at 0.019 × 82.6 TFLOPS, 10.7 ms a token where the latent's 444 MB take 0.5 ms to read.
fn latent_cache_attention_s(req: &SpeedRequest, layers: std::ops::Range<u64>) -> f64 {
    let (inf, rate) = (req.inference, req.efficiency.mla_attention.value);
    let Some(m) = inf.spec.mla.filter(|m| m.indexer.is_none()) else { return 0.0 };
    let Some(fp32) = req.device.peak_fp32.filter(|_| rate > 0.0 && inf.batch == 1) else { return 0.0 };
    let per_token = 2 * inf.spec.num_heads * (2 * m.kv_lora_rank + m.qk_rope_head_dim);
    let cached = work::cached_keys(inf.spec, layers, inf.context);
    (cached * per_token) as f64 / (fp32.0 * rate * layout(req).0)
}

/// The FLOP/s of one GPU's attention over a dequantized-as-read cache, where that applies: a q8_0
/// or q4_0 cache at batch 1 with flash attention, an engine rate and a known FP32 peak.
fn dequantizing_attention_rate(req: &SpeedRequest) -> Option<f64> {
    let inf = req.inference;
    let rate = req.efficiency.quantized_kv_attention.value;
    let quantized = matches!(inf.kv, crate::quant::KvFormat::Q8_0 | crate::quant::KvFormat::Q4_0);
    let applies = quantized && rate > 0.0 && inf.batch == 1 && inf.options.flash_attention;
    req.device.peak_fp32.filter(|_| applies).map(|fp32| fp32.0 * rate)
}

/// NF4 with a quantized absmax (bitsandbytes double quantization).
fn double_quant(inf: &InferenceRequest) -> bool {
    inf.format == WeightFormat::Quantized(crate::quant::QuantScheme::Nf4Double)
}

/// Every speed of a plan, with the constants used written to `basis`.
pub fn plan_speed(req: &SpeedRequest, basis: &mut BasisLog) -> Speed {
    let e = req.efficiency;
    let inf = req.inference;
    let d = req.device;
    basis.add("memory bandwidth (per GPU)", format!("{:.0} GB/s", d.bandwidth.0 / 1e9), "GPU catalog");
    match peak(req) {
        Some(p) => {
            let fp16_accumulate = d.peak_16bit.is_some_and(|f| p > f.0);
            basis.add(
                "dense 16-bit peak (per GPU)",
                format!("{:.1} TFLOPS", p / 1e12),
                if fp16_accumulate {
                    "GPU catalog, FP16-accumulate rate (twice the FP32-accumulate one on GeForce): ExLlama accumulates in fp16; llama.cpp's cuBLAS F16 GEMMs do, and its int8 MMQ kernels reach about that rate"
                } else {
                    "GPU catalog"
                },
            )
        }
        None => basis.add(
            "dense 16-bit peak (per GPU)",
            "unknown",
            "no TFLOPS in the GPU catalog: prefill is null and decode ignores compute",
        ),
    }
    for (name, f, unit) in [
        ("bandwidth efficiency", &e.bandwidth, 1.0),
        ("prefill compute efficiency", &e.prefill_compute, 1.0),
        ("decode compute efficiency", &e.decode_compute, 1.0),
        ("host time per layer per step (ms)", &e.host_per_layer_s, 1e3),
    ] {
        basis.add(name, format!("{:.3}", f.value * unit), f.source.clone());
    }
    if latent_cache_attention_s(req, 0..req.inference.spec.num_layers) > 0.0 {
        let (f, fp32) = (&e.mla_attention, d.peak_fp32.map_or(0.0, |p| p.0));
        basis.add(
            "latent-cache attention at decode (of the FP32 peak)",
            format!("{:.3} of {:.1} TFLOPS", f.value, fp32 / 1e12),
            f.source.clone(),
        );
    }
    if dequantizing_attention_rate(req).is_some() {
        let (f, fp32) = (&e.quantized_kv_attention, d.peak_fp32.map_or(0.0, |p| p.0));
        basis.add(
            "quantized-cache attention at decode (of the FP32 peak)",
            format!("{:.3} of {:.1} TFLOPS", f.value, fp32 / 1e12),
            f.source.clone(),
        );
    }
    if req.quantized && e.host_per_quantized_linear_s.value > 0.0 {
        let f = &e.host_per_quantized_linear_s;
        basis.add("host time per quantized linear (ms)", format!("{:.3}", f.value * 1e3), f.source.clone());
    }
    if double_quant(inf) && e.host_per_double_quant_linear_s.value > 0.0 {
        let f = &e.host_per_double_quant_linear_s;
        basis.add("host time per double-quantized linear (ms)", format!("{:.3}", f.value * 1e3), f.source.clone());
    }
    if inf.spec.moe.is_some() {
        let f = &e.host_per_moe_layer_s;
        basis.add("host time per MoE layer (ms)", format!("{:.3}", f.value * 1e3), f.source.clone());
        basis.add("active parameters (speed)", req.params.active, "routed experts counted experts_per_token times");
    }
    let (half, tile) = (&e.expert_gemm_half_tokens, &e.expert_tile_tokens);
    if inf.spec.moe.is_some() && (half.value > 0.0 || tile.value > 0.0) {
        let (passes, pass_tokens) = prefill_passes(inf);
        let own = 2.0 * (inf.context * inf.batch) as f64 * work::routed_params_per_token(inf.spec) as f64;
        let fixed = passes as f64 * expert_fixed_flops(req, pass_tokens);
        let mut why = Vec::new();
        if half.value > 0.0 {
            why.push((format!("{:.0} tokens' work per touched expert per pass", half.value), half.source.as_str()));
        }
        if tile.value > 0.0 {
            why.push((format!("whole tiles of {:.0} tokens", tile.value), tile.source.as_str()));
        }
        let (what, source): (Vec<_>, Vec<_>) = why.into_iter().unzip();
        basis.add(
            "routed-expert GEMM rate in a prompt pass",
            format!(
                "{:.2} of dense ({}; {:.0}% of experts touched)",
                own / (own + fixed),
                what.join(", "),
                100.0 * work::touched_expert_fraction(inf.spec, pass_tokens)
            ),
            source.join("; "),
        );
    }
    if e.kernel_gap_per_layer_s.value > 0.0 {
        let f = &e.kernel_gap_per_layer_s;
        basis.add("kernel gaps per layer (µs)", format!("{:.0}", f.value * 1e6), f.source.clone());
    }
    if inf.spec.moe.is_some() && e.kernel_gap_per_moe_layer_s.value > 0.0 {
        let f = &e.kernel_gap_per_moe_layer_s;
        basis.add("further kernel gaps per MoE layer (µs)", format!("{:.0}", f.value * 1e6), f.source.clone());
    }
    let (tp, stages) = layout(req);
    if tp > 1.0 || stages > 1.0 {
        match d.link {
            Some(l) => {
                let kind = match l.kind {
                    LinkKind::Nvlink => "NVLink",
                    LinkKind::Pcie => "PCIe",
                    LinkKind::Other => "vendor link",
                };
                basis.add(
                    "GPU link (per direction)",
                    format!("{kind} {:.1} GB/s", l.bandwidth_per_direction.0 / 1e9),
                    if tp > 1.0 { "ring all-reduce, 2 per layer" } else { "stages run one after another" },
                );
                let name = if tp > 1.0 { "all-reduce latency" } else { "hand-off latency per stage" };
                basis.add(
                    name,
                    format!("{:.1} µs", allreduce_latency_s(e, l.kind, tp) * 1e6),
                    e.allreduce_base_s.source.clone(),
                );
            }
            None => basis.add("GPU link", "unknown", "no link in the GPU catalog: multi-GPU speeds are null"),
        }
    }
    if let Some(p) = offload::placement(req) {
        offload::explain(req, &p, basis);
    }
    let offloaded = vllm_offload_reads(req, inf.batch);
    if offloaded > 0.0 {
        basis.add(
            "offloaded weights read over PCIe per decode step (all GPUs)",
            format!("{offloaded:.0} B"),
            "vLLM --cpu-offload-gb: the kernels read the parameters in pinned host memory over each GPU's PCIe link (UVA), every forward pass; the experts a batch touches of a MoE layer",
        );
        offload::explain_host_link(req, basis);
    }
    let ttft = prefill_s(req);
    let step = decode_step_s(req);
    let batch = inf.batch as f64;
    Speed {
        prefill_tokens_per_s: ttft.map(|t| batch * inf.context as f64 / t),
        time_to_first_token_s: ttft,
        inter_token_latency_s: step,
        decode_tokens_per_s_per_sequence: step.map(|t| 1.0 / t),
        decode_tokens_per_s: step.map(|t| batch / t),
    }
}

#[cfg(test)]
mod tests;
