use super::*;
use crate::model::config::parse_config;
use crate::model::spec::ModelSpec;
use crate::model::tensors::{inventory, param_counts};
use crate::plan::device::{Device, Generation, HostSpeed, Link};
use crate::plan::{plan_inference, EngineOptions, WeightLayout};
use crate::quant::{KvFormat, WeightFormat};
use crate::units::{Bytes, BytesPerSec, FlopsPerSec};

fn spec(extra: &str) -> ModelSpec {
    let text = format!(
        r#"{{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
        "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
        "max_position_embeddings": 4096 {extra}}}"#
    );
    parse_config(&text, "t", "t").unwrap().spec
}

fn h200() -> DeviceSpeed {
    DeviceSpeed {
        bandwidth: BytesPerSec(4.8e12),
        peak_16bit: Some(FlopsPerSec(989.4e12)),
        peak_16bit_fp16_acc: None,
        peak_8bit: Some(FlopsPerSec(1978.9e12)),
        peak_fp32: Some(FlopsPerSec(66.9e12)),
        link: Some(Link { kind: LinkKind::Nvlink, bandwidth_per_direction: BytesPerSec(450e9) }),
        host_link: Some(BytesPerSec(63e9)),
    }
}

/// Plans `spec` in bf16 on `count` H200s and returns its speed.
fn speed(spec: &ModelSpec, engine: Engine, context: u64, batch: u64, count: u32, device: &DeviceSpeed) -> Speed {
    let tensors = inventory(spec);
    let counts = param_counts(spec, &tensors);
    let format = WeightFormat::parse("bf16").unwrap();
    let weights = WeightLayout::from_inventory(spec.num_layers, &tensors, |t| format.tensor_bytes(t, spec));
    let mut req = request(spec, &weights, engine, "bf16", (context, batch), (150e9 as u64, Generation::Hopper));
    if let Some(d) = req.device.as_mut() {
        d.count = count;
    }
    let plan = plan_inference(&req).unwrap();
    let efficiency = Efficiency::defaults(engine, Generation::Hopper);
    let sreq = SpeedRequest {
        inference: &req,
        plan: &plan,
        device,
        efficiency: &efficiency,
        params: Params { total: counts.total, active: counts.active },
        quantized: false,
        host: None,
    };
    plan_speed(&sreq, &mut BasisLog::default())
}

/// The module doc: Llama-2-7B on an H200 with transformers is host-bound at 22.4 ms + 0.5 ms.
#[test]
fn llama2_7b_hf_decode_is_host_bound() {
    let s = speed(&spec(""), Engine::Hf, 4096, 1, 1, &h200());
    let step = s.inter_token_latency_s.unwrap();
    let attention = 2.0 * 1024.0 * 1024.0 * 1024.0 / (4.8e12 * 0.885);
    assert!((step - (32.0 * 0.70e-3 + attention)).abs() < 1e-6, "{step}");
    assert!((s.decode_tokens_per_s.unwrap() - 43.7).abs() < 0.2);
}

/// Without host overhead (bare) decode is the bandwidth roofline: (13.48 GB − 0.26 GB embedding
/// lookup + 2.15 GB KV) /
/// (0.885 × 4.8 TB/s) = 3.62 ms.
#[test]
fn bare_decode_is_the_bandwidth_roofline() {
    let s = speed(&spec(""), Engine::Bare, 4096, 1, 1, &h200());
    let bytes = 13_476_831_232.0 - 262_144_000.0 + 2.0 * 1024.0 * 1024.0 * 1024.0;
    let step = s.inter_token_latency_s.unwrap();
    assert!((step / (bytes / (4.8e12 * 0.885)) - 1.0).abs() < 0.002, "{step}");
}

/// Prefill of 4,064 tokens: 5.70e13 FLOPs at 0.50 × 989.4 TFLOPS = 115 ms.
#[test]
fn llama2_7b_hf_prefill() {
    let s = speed(&spec(""), Engine::Hf, 4064, 1, 1, &h200());
    let t = s.time_to_first_token_s.unwrap();
    assert!((t - 0.1153).abs() < 0.001, "{t}");
    assert!((s.prefill_tokens_per_s.unwrap() - 4064.0 / t).abs() < 1e-6);
}

/// Tensor parallel all-reduces: 2 per layer; at TP 2 a decode token of 8,192·2 bytes costs
/// 80·2·(16,384/450e9 + 6.6 µs + 2·0.6 µs) on a 70B-shaped model over NVLink. Each GPU reads
/// half the bytes but runs every layer's kernels (their gaps do not halve).
#[test]
fn tensor_parallel_adds_ring_all_reduces() {
    let s70 = spec(
        r#", "hidden_size": 8192, "num_hidden_layers": 80, "num_attention_heads": 64, "num_key_value_heads": 8, "intermediate_size": 28672"#,
    );
    let one = speed(&s70, Engine::Vllm, 4096, 1, 1, &h200()).inter_token_latency_s.unwrap();
    let two = speed(&s70, Engine::Vllm, 4096, 1, 2, &h200()).inter_token_latency_s.unwrap();
    let gaps = 80.0 * Efficiency::defaults(Engine::Vllm, Generation::Hopper).kernel_gap_per_layer_s.value;
    let comm = 80.0 * 2.0 * (16384.0 / 450e9 + 6.6e-6 + 2.0 * 0.6e-6);
    assert!(((two - (one - gaps) / 2.0 - gaps) - comm).abs() < 1e-6, "one {one} two {two} comm {comm}");
}

/// Small all-reduces cost NCCL's base latency and a hop per ring step: decode over eight GPUs
/// stays faster than over four when the weights' read time halves (QwQ-32B on A100s measured
/// 19.6 and 15.8 ms a token at TP 4 and 8, vLLM issue #16300).
#[test]
fn all_reduce_latency_grows_by_hops_not_by_base() {
    let e = Efficiency::defaults(Engine::Vllm, Generation::Hopper);
    assert!((allreduce_latency_s(&e, LinkKind::Nvlink, 8.0) - 15.0e-6).abs() < 1e-12);
    assert!((allreduce_latency_s(&e, LinkKind::Pcie, 2.0) - 8.6e-6).abs() < 1e-12);
    assert_eq!(allreduce_latency_s(&e, LinkKind::Nvlink, 1.0), 6.6e-6);
    let s32 = spec(
        r#", "hidden_size": 5120, "num_hidden_layers": 64, "num_attention_heads": 40, "num_key_value_heads": 8, "intermediate_size": 27648"#,
    );
    let step = |tp| speed(&s32, Engine::Vllm, 256, 1, tp, &h200()).inter_token_latency_s.unwrap();
    assert!(step(8) < step(4) && step(4) < step(2), "{} {} {}", step(2), step(4), step(8));
}

#[test]
fn missing_peak_gives_null_prefill_not_a_guess() {
    let mut d = h200();
    d.peak_16bit = None;
    let s = speed(&spec(""), Engine::Vllm, 4096, 1, 1, &d);
    assert!(s.prefill_tokens_per_s.is_none() && s.time_to_first_token_s.is_none());
    assert!(s.decode_tokens_per_s.is_some());
    d.link = None;
    let multi = speed(&spec(""), Engine::Vllm, 4096, 1, 2, &d);
    assert!(multi.decode_tokens_per_s.is_none());
}

/// Large batches become compute-bound: aggregate decode grows sublinearly.
#[test]
fn large_batches_hit_compute() {
    let s = spec(r#", "num_key_value_heads": 8"#);
    let b1 = speed(&s, Engine::Bare, 512, 1, 1, &h200()).decode_tokens_per_s.unwrap();
    let b512 = speed(&s, Engine::Bare, 512, 512, 1, &h200()).decode_tokens_per_s.unwrap();
    assert!(b512 > 50.0 * b1 && b512 < 512.0 * b1, "{b1} {b512}");
}

/// A request for `engine` on one GPU of `capacity` bytes and `generation`, in `format`.
fn request<'a>(
    spec: &'a ModelSpec,
    weights: &'a WeightLayout,
    engine: Engine,
    format: &str,
    (context, batch): (u64, u64),
    (capacity, generation): (u64, Generation),
) -> InferenceRequest<'a> {
    InferenceRequest {
        spec,
        weights,
        format: WeightFormat::parse(format).unwrap(),
        kv: KvFormat::Bf16,
        context,
        batch,
        engine,
        options: EngineOptions::default(),
        device: Some(Device {
            id: "gpu".into(),
            capacity: Bytes(capacity),
            reserved: Bytes::ZERO,
            in_use: Bytes::ZERO,
            unified_memory: None,
            count: 1,
            generation,
            compute_capability: None,
        }),
        split: None,
    }
}

/// llama.cpp's ubatches, vLLM's chunks (`vllm serve`: 8,192 tokens on a GPU of 70 GiB or more,
/// else 2,048),
/// ExLlama's 2,048-token chunks per prompt, and one pass for transformers.
#[test]
fn prefill_passes_follow_each_engine_s_chunking() {
    let s = spec("");
    let w = WeightLayout::new(s.num_layers);
    let big = (150e9 as u64, Generation::Hopper);
    let small = (24 << 30, Generation::Ada);
    let passes = |engine, tokens, gpu| prefill_passes(&request(&s, &w, engine, "bf16", tokens, gpu));
    assert_eq!(passes(Engine::LlamaCpp, (8096, 1), big), (16, 512));
    assert_eq!(passes(Engine::LlamaCpp, (100, 1), big), (1, 100));
    assert_eq!(passes(Engine::Vllm, (40_000, 1), big), (5, 8192));
    assert_eq!(passes(Engine::Vllm, (40_000, 1), small), (20, 2048));
    assert_eq!(passes(Engine::Exllama, (4096, 2), big), (2, 4096));
    assert_eq!(passes(Engine::Hf, (4096, 2), big), (1, 8192));
}

/// The peak the prefill runs at: llama.cpp's F16 and quantized GEMMs get a GeForce card's
/// doubled FP16-accumulate rate, its BF16 ones and vLLM's do not; on Volta llama.cpp dequantizes
/// quantized weights for cuBLAS once a ubatch reaches 64 tokens.
#[test]
fn llama_cpp_prefill_peak_and_dequantization() {
    let s = spec("");
    let tensors = inventory(&s);
    let counts = param_counts(&s, &tensors);
    let geforce = DeviceSpeed { peak_16bit_fp16_acc: Some(FlopsPerSec(330e12)), ..h200() };
    let prefill = |engine, format: &str, generation| {
        let f = WeightFormat::parse(format).unwrap();
        let w = WeightLayout::from_inventory(s.num_layers, &tensors, |t| f.tensor_bytes(t, &s));
        let req = request(&s, &w, engine, format, (512, 1), (24 << 30, generation));
        let plan = plan_inference(&req).unwrap();
        let efficiency = Efficiency::defaults(engine, generation);
        let sreq = SpeedRequest {
            inference: &req,
            plan: &plan,
            device: &geforce,
            efficiency: &efficiency,
            params: Params { total: counts.total, active: counts.active },
            quantized: f.is_quantized(),
            host: None,
        };
        (peak(&sreq), prefill_s(&sreq).unwrap())
    };
    assert_eq!(prefill(Engine::LlamaCpp, "f16", Generation::Ada).0, Some(330e12));
    assert_eq!(prefill(Engine::LlamaCpp, "q4_0", Generation::Ada).0, Some(330e12));
    assert_eq!(prefill(Engine::LlamaCpp, "bf16", Generation::Ada).0, Some(989.4e12));
    assert_eq!(prefill(Engine::Vllm, "bf16", Generation::Ada).0, Some(989.4e12));
    let (turing, volta) = (
        prefill(Engine::LlamaCpp, "q4_0", Generation::Turing).1,
        prefill(Engine::LlamaCpp, "q4_0", Generation::Volta).1,
    );
    assert!(volta > turing, "{volta} {turing}");
}

/// gpt-oss-20b (24 layers of 32 experts, 4 per token) in MXFP4 under llama.cpp on an H200-like
/// GPU (PCIe 5.0, 63 GB/s) with two channels of DDR5-6000 (96 GB/s): its speed, the bytes of
/// one decode step's host weights, and the routed experts' bytes.
fn gpt_oss_offload(options: EngineOptions, context: u64, batch: u64, host: Option<&HostSpeed>) -> (Speed, f64, f64) {
    let s = parse_config(include_str!("../../../data/models/gpt-oss-20b.json"), "g", "g").unwrap().spec;
    let tensors = inventory(&s);
    let counts = param_counts(&s, &tensors);
    let format = WeightFormat::parse("mxfp4_moe").unwrap();
    let weights = WeightLayout::from_inventory(s.num_layers, &tensors, |t| format.tensor_bytes(t, &s));
    let mut req =
        request(&s, &weights, Engine::LlamaCpp, "mxfp4_moe", (context, batch), (150e9 as u64, Generation::Hopper));
    req.options = options;
    let plan = plan_inference(&req).unwrap();
    let efficiency = Efficiency::defaults(Engine::LlamaCpp, Generation::Hopper);
    let sreq = SpeedRequest {
        inference: &req,
        plan: &plan,
        device: &h200(),
        efficiency: &efficiency,
        params: Params { total: counts.total, active: counts.active },
        quantized: true,
        host,
    };
    let host_bytes = offload::placement(&sreq).map_or(0.0, |p| offload::decode_host_bytes(&sreq, &p, 1));
    (plan_speed(&sreq, &mut BasisLog::default()), host_bytes, weights.routed_experts.0 as f64)
}

/// gpt-oss-20b's 24 layers with their routed experts in host RAM (`--cpu-moe`).
fn cpu_moe() -> EngineOptions {
    EngineOptions { cpu_moe: crate::plan::engine::LayerSet::first(24), ..EngineOptions::default() }
}

/// The llama.cpp host constants: RAM efficiency, upload efficiency, seconds per hop.
fn host_constants() -> (f64, f64, f64) {
    let e = Efficiency::defaults(Engine::LlamaCpp, Generation::Hopper);
    (e.host_bandwidth.value, e.host_upload.value, e.host_handoff_s.value)
}

/// `--cpu-moe`: a decoded token reads 4 of 32 experts per layer from RAM (96 GB/s at the host
/// efficiency) instead of from the GPU, and hops GPU→CPU→GPU in each of 24 layers. Two to 31
/// sequences would run the experts on the CPU at a FLOP rate not modelled: no decode speed.
#[test]
fn cpu_moe_decode_reads_the_picked_experts_from_host_ram() {
    let (ram, _, hop) = host_constants();
    let host = HostSpeed::parse("ddr5-6000:2").unwrap();
    let cpu_moe = cpu_moe();
    let (gpu, _, experts) = gpt_oss_offload(EngineOptions::default(), 4096, 1, Some(&host));
    let (offloaded, host_bytes, _) = gpt_oss_offload(cpu_moe.clone(), 4096, 1, Some(&host));
    assert!((host_bytes - experts * 4.0 / 32.0).abs() < 1.0, "{host_bytes} {experts}");
    let extra = host_bytes / (96e9 * ram) - host_bytes / (4.8e12 * 0.885) + 48.0 * hop;
    let (a, b) = (gpu.inter_token_latency_s.unwrap(), offloaded.inter_token_latency_s.unwrap());
    assert!((b - a - extra).abs() < 1e-9, "{a} {b} {extra}");
    // Without a host there is no speed to give, nor for a CPU matmul over 2–31 rows.
    assert!(gpt_oss_offload(cpu_moe.clone(), 4096, 1, None).0.decode_tokens_per_s.is_none());
    assert!(gpt_oss_offload(cpu_moe.clone(), 4096, 8, Some(&host)).0.decode_tokens_per_s.is_none());
    assert!(gpt_oss_offload(cpu_moe, 4096, 32, Some(&host)).0.decode_tokens_per_s.is_some());
}

/// Prompt ubatches of 32 tokens or more upload every expert they touch (all of them at 512
/// tokens) over PCIe 5.0 at the upload efficiency; a last pass of 4 tokens runs its experts on
/// the CPU instead. With layers left on the host, their attention runs on the CPU: no prefill
/// estimate.
#[test]
fn cpu_moe_prefill_uploads_the_experts_each_ubatch() {
    let (ram, upload, hop) = host_constants();
    let host = HostSpeed::parse("96").unwrap();
    let cpu_moe = cpu_moe();
    let (gpu, _, experts) = gpt_oss_offload(EngineOptions::default(), 4100, 1, Some(&host));
    let (offloaded, _, _) = gpt_oss_offload(cpu_moe, 4100, 1, Some(&host));
    let last_pass = experts * (1.0 - (28.0f64 / 32.0).powi(4)) / (96e9 * ram) + 48.0 * hop;
    let uploads = 8.0 * experts * (1.0 - (28.0f64 / 32.0).powi(512)) / (63e9 * upload);
    let (a, b) = (gpu.time_to_first_token_s.unwrap(), offloaded.time_to_first_token_s.unwrap());
    assert!((b - a - uploads - last_pass).abs() < 1e-9, "{a} {b} {uploads} {last_pass}");
    let host_layers = EngineOptions { gpu_layers: Some(12), ..EngineOptions::default() };
    let (partial, _, _) = gpt_oss_offload(host_layers, 4100, 1, Some(&host));
    assert!(partial.prefill_tokens_per_s.is_none() && partial.decode_tokens_per_s.is_some());
}

/// An output layer left on the host (`--n-gpu-layers` equal to the layer count, as llama.cpp
/// counted it before December 2025: `--ngl-output-last`) is read once per
/// decoded token, but a prompt needs it only for its last position: one CPU read of it, not an
/// upload per ubatch (every ubatch's with `--logits-all`).
#[test]
fn a_host_output_layer_serves_only_the_last_prompt_position() {
    let (ram, upload, _) = host_constants();
    let host = HostSpeed::parse("96").unwrap();
    let layers_only = EngineOptions { gpu_layers: Some(24), ngl_output_last: true, ..EngineOptions::default() };
    let (gpu, _, _) = gpt_oss_offload(EngineOptions::default(), 4096, 1, Some(&host));
    let (offloaded, output, _) = gpt_oss_offload(layers_only.clone(), 4096, 1, Some(&host));
    assert!(output > 5e8, "gpt-oss-20b's output layer is 0.58 GB: {output}");
    let (a, b) = (gpu.time_to_first_token_s.unwrap(), offloaded.time_to_first_token_s.unwrap());
    assert!((b - a - output / (96e9 * ram)).abs() < 1e-9, "{a} {b}");
    let logits_all = EngineOptions { logits_all_positions: true, ..layers_only };
    let (gpu_all, _, _) =
        gpt_oss_offload(EngineOptions { logits_all_positions: true, ..EngineOptions::default() }, 4096, 1, Some(&host));
    let (all, _, _) = gpt_oss_offload(logits_all, 4096, 1, Some(&host));
    let extra = all.time_to_first_token_s.unwrap() - gpu_all.time_to_first_token_s.unwrap();
    assert!((extra - 8.0 * output / (63e9 * upload)).abs() < 1e-9, "{extra}");
}
