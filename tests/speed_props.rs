//! Must-holds of the speed model across the catalogs (proptest): decode never beats bandwidth ÷
//! bytes read per step, and prefill never beats the peak FLOP/s, on any GPU, count, engine,
//! format, context and batch. GPUs without a number give null, never a panic.

use headroom::catalog::gpus::GpuCatalog;
use headroom::catalog::models::ModelCatalog;
use headroom::commands::plan::{device, device_speed, runs_on};
use headroom::model::tensors::{inventory, param_counts};
use headroom::plan::basis::BasisLog;
use headroom::plan::device::HostSpeed;
use headroom::plan::engine::LayerSet;
use headroom::plan::throughput::{plan_speed, work, Efficiency, Params, SpeedRequest};
use headroom::plan::{plan_inference, Device, Engine, EngineOptions, Generation, InferenceRequest, WeightLayout};
use headroom::quant::{KvFormat, WeightFormat};
use headroom::units::Bytes;
use proptest::prelude::*;

const FORMATS: [&str; 5] = ["bf16", "gptq", "nf4", "fp8", "q4_k_m"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn speeds_respect_the_rooflines(
        model_i in 0usize..64, gpu_i in 0usize..64, count_i in 0usize..4, engine_i in 0usize..8,
        format_i in 0usize..5, context in 1u64..40_000, batch in 1u64..300,
    ) {
        let models: Vec<_> = ModelCatalog::builtin().iter().collect();
        let gpus: Vec<_> = GpuCatalog::builtin().iter().collect();
        let spec = models[model_i % models.len()].spec();
        let gpu = gpus[gpu_i % gpus.len()];
        let count = [1u32, 2, 4, 8][count_i];
        let engine = Engine::ALL[engine_i];
        // Only setups the CLI accepts: the engine on its platform, one GPU per unified-memory machine.
        if runs_on(engine, gpu).is_err() || (gpu.unified_memory && count > 1) {
            return Ok(());
        }
        let format = WeightFormat::parse(FORMATS[format_i]).unwrap();
        let tensors = inventory(spec);
        let counts = param_counts(spec, &tensors);
        let weights = WeightLayout::from_inventory(spec.num_layers, &tensors, |t| format.tensor_bytes(t, spec));
        let req = InferenceRequest {
            spec, weights: &weights, format, kv: KvFormat::Bf16, context, batch, engine,
            options: EngineOptions::default(),
            device: Some(device(gpu, count)),
            split: None,
        };
        let Ok(plan) = plan_inference(&req) else { return Ok(()) };
        let device = device_speed(gpu);
        let efficiency = Efficiency::defaults(engine, req.device.as_ref().unwrap().generation);
        let params = Params { total: counts.total, active: counts.active };
        let sreq = SpeedRequest { inference: &req, plan: &plan, device: &device, efficiency: &efficiency, params, quantized: format.is_quantized(), host: None };
        let s = plan_speed(&sreq, &mut BasisLog::default());
        let tp = if plan.per_gpu.len() > 1 && plan.per_gpu.iter().all(|g| g.layers == (0, spec.num_layers)) { plan.per_gpu.len() as f64 } else { 1.0 };
        if let Some(per_seq) = s.decode_tokens_per_s_per_sequence {
            let bytes = work::decode_weight_bytes(&req, batch) + work::decode_kv_bytes(&req, context, batch);
            let bound = tp * device.bandwidth.0 / bytes;
            prop_assert!(per_seq <= bound * (1.0 + 1e-9), "decode {per_seq} > bound {bound} on {}", gpu.id);
            prop_assert!(per_seq.is_finite() && per_seq > 0.0);
        }
        if let Some(ttft) = s.time_to_first_token_s {
            let flops = work::prefill_flops(spec, params, context, batch, &req.options);
            let peak = device.peak_16bit_fp16_acc.or(device.peak_16bit).unwrap().0.max(device.peak_16bit.unwrap().0);
            prop_assert!(flops / ttft <= tp * peak * (1.0 + 1e-9), "prefill beats peak on {}", gpu.id);
        } else {
            prop_assert!(device.peak_16bit.is_none() || (count > 1 && device.link.is_none()));
        }
    }
}

const MOE_MODELS: [&str; 4] = ["gpt-oss-20b", "qwen3-30b-a3b", "mixtral-8x7b", "deepseek-v2-lite"];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    /// llama.cpp with weights in host RAM: moving more of them there (more --n-cpu-moe layers,
    /// fewer --n-gpu-layers) never speeds decode up, faster host RAM never slows it down, and
    /// every speed is finite and positive. Host layers give no prefill, nor a ubatch (or the
    /// batch's last one) of 2–31 tokens a decode speed.
    #[test]
    fn host_weights_slow_decode_monotonically(
        model_i in 0usize..4, gpu_i in 0usize..64, gbs in 10.0f64..300.0, context in 1u64..40_000,
        batch in 1u64..64, n in 0u64..1000, ubatch in 1u64..4096,
    ) {
        let spec = ModelCatalog::builtin().get(MOE_MODELS[model_i]).unwrap().spec();
        let gpus: Vec<_> = GpuCatalog::builtin().iter().collect();
        let gpu = gpus[gpu_i % gpus.len()];
        let format = WeightFormat::parse("q4_k_m").unwrap();
        let tensors = inventory(spec);
        let counts = param_counts(spec, &tensors);
        let weights = WeightLayout::from_inventory(spec.num_layers, &tensors, |t| format.tensor_bytes(t, spec));
        let device = device_speed(gpu);
        // Without a PCIe link in the catalog (unified memory: Apple silicon, Strix Halo) uploads have no speed.
        prop_assume!(device.host_link.is_some() && device.peak_16bit.is_some());
        let efficiency = Efficiency::defaults(Engine::LlamaCpp, Generation::Ada);
        // Only while the host's RAM streams slower than the GPU's memory (a 12-channel server
        // beside an L4 can be faster, and then moving layers to it is faster too).
        let gpu_rate = device.bandwidth.0 * efficiency.bandwidth.value;
        prop_assume!(2.0 * gbs * 1e9 * efficiency.host_bandwidth.value < gpu_rate);
        let params = Params { total: counts.total, active: counts.active };
        let speed = |options: EngineOptions, host_gbs: f64| {
            let req = InferenceRequest {
                spec, weights: &weights, format, kv: KvFormat::Bf16, context, batch, engine: Engine::LlamaCpp,
                options,
                device: Some(Device { id: gpu.id.clone(), capacity: Bytes(1 << 50), reserved: Bytes::ZERO, in_use: Bytes::ZERO, unified_memory: None, count: 1, generation: Generation::Ada, compute_capability: None }),
                split: None,
            };
            let plan = plan_inference(&req).unwrap();
            let host = HostSpeed::parse(&host_gbs.to_string()).unwrap();
            let sreq = SpeedRequest { inference: &req, plan: &plan, device: &device, efficiency: &efficiency, params, quantized: true, host: Some(&host) };
            plan_speed(&sreq, &mut BasisLog::default())
        };
        let base = EngineOptions { n_ubatch: ubatch, ..EngineOptions::default() };
        let layers = spec.num_layers;
        let n = n % layers;
        let moe = |k: u64| speed(EngineOptions { cpu_moe: LayerSet::first(k.min(layers)), ..base.clone() }, gbs);
        let ngl = |k: u64| speed(EngineOptions { gpu_layers: Some(k.min(layers)), ..base.clone() }, gbs);
        // 2–31 tokens a pass run the host's matmuls on the CPU, whose FLOP rate is not modelled.
        let tokens = batch.min(ubatch);
        if [tokens, batch % tokens].iter().any(|t| (2..32).contains(t)) {
            prop_assert!(moe(n + 1).decode_tokens_per_s.is_none());
            return Ok(());
        }
        let decode = |s: &headroom::plan::throughput::Speed| s.decode_tokens_per_s.unwrap();
        let (fewer, more) = (moe(n), moe(n + 1));
        prop_assert!(decode(&more) <= decode(&fewer) * (1.0 + 1e-12), "--n-cpu-moe {} → {}: {} > {}", n, n + 1, decode(&more), decode(&fewer));
        let faster = speed(EngineOptions { cpu_moe: LayerSet::first((n + 1).min(layers)), ..base.clone() }, gbs * 2.0);
        prop_assert!(decode(&faster) >= decode(&more));
        prop_assert!(more.time_to_first_token_s.is_some_and(|t| t.is_finite() && t > 0.0));
        let (on_gpu, on_host) = (ngl(layers.saturating_sub(n)), ngl(layers.saturating_sub(n + 1)));
        prop_assert!(decode(&on_host) <= decode(&on_gpu) * (1.0 + 1e-12));
        prop_assert!(decode(&on_host).is_finite() && decode(&on_host) > 0.0);
        prop_assert!(on_host.prefill_tokens_per_s.is_none());
    }
}
