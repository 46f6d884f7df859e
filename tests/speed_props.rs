//! Must-holds of the speed model across the catalogs (proptest): decode never beats bandwidth ÷
//! bytes read per step, and prefill never beats the peak FLOP/s, on any GPU, count, engine,
//! format, context and batch. GPUs without a number give null, never a panic.

use headroom::catalog::gpus::GpuCatalog;
use headroom::catalog::models::ModelCatalog;
use headroom::commands::plan::device_speed;
use headroom::model::tensors::{inventory, param_counts};
use headroom::plan::basis::BasisLog;
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
        model_i in 0usize..64, gpu_i in 0usize..64, count_i in 0usize..4, engine_i in 0usize..6,
        format_i in 0usize..5, context in 1u64..40_000, batch in 1u64..300,
    ) {
        let models: Vec<_> = ModelCatalog::builtin().iter().collect();
        let gpus: Vec<_> = GpuCatalog::builtin().iter().collect();
        let spec = models[model_i % models.len()].spec();
        let gpu = gpus[gpu_i % gpus.len()];
        let count = [1u32, 2, 4, 8][count_i];
        let engine = Engine::ALL[engine_i];
        let format = WeightFormat::parse(FORMATS[format_i]).unwrap();
        let tensors = inventory(spec);
        let counts = param_counts(spec, &tensors);
        let weights = WeightLayout::from_inventory(spec.num_layers, &tensors, |t| format.tensor_bytes(t, spec));
        let req = InferenceRequest {
            spec, weights: &weights, format, kv: KvFormat::Bf16, context, batch, engine,
            options: EngineOptions::default(),
            device: Some(Device { id: gpu.id.clone(), capacity: Bytes(gpu.usable_bytes()), reserved: Bytes(gpu.reserved_bytes()), in_use: Bytes::ZERO, count, generation: Generation::Ampere, compute_capability: None }),
            split: None,
        };
        let Ok(plan) = plan_inference(&req) else { return Ok(()) };
        let device = device_speed(gpu);
        let efficiency = Efficiency::defaults(engine, Generation::Hopper);
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
