//! Must-hold of the training speed model across the catalogs (proptest): full fine-tuning never
//! trains faster than all GPUs' peak ÷ (6·N_active) tokens/s, whatever the layout, overlap,
//! checkpointing, sequence or batch. GPUs without a number give null, never a panic.

use headroom::catalog::gpus::GpuCatalog;
use headroom::catalog::models::ModelCatalog;
use headroom::commands::plan::device_speed;
use headroom::model::tensors::{inventory, param_counts};
use headroom::plan::basis::BasisLog;
use headroom::plan::throughput::training::{train_speed, TrainSpeedRequest, Trained, TrainingEfficiency};
use headroom::plan::throughput::{Efficiency, Factor, Params};
use headroom::plan::training::{Checkpointing, Offload, Optimizer, Parallel};
use headroom::plan::{Engine, Generation};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    #[test]
    fn full_training_never_beats_peak_over_6n(
        model_i in 0usize..64, gpu_i in 0usize..64, count_i in 0usize..4, nodes in 1u64..4,
        zero in 0u8..4, ckpt_i in 0usize..3, seq in 1u64..16_384, batch in 1u64..16,
        grad_accum in 1u64..8, overlap: bool, frozen in 0u64..2,
    ) {
        let models: Vec<_> = ModelCatalog::builtin().iter().collect();
        let gpus: Vec<_> = GpuCatalog::builtin().iter().collect();
        let spec = models[model_i % models.len()].spec();
        let gpu = gpus[gpu_i % gpus.len()];
        let count = [1u64, 2, 4, 8][count_i] * nodes;
        let counts = param_counts(spec, &inventory(spec));
        let device = device_speed(gpu);
        let efficiency = Efficiency::defaults(Engine::Hf, Generation::Hopper);
        let req = TrainSpeedRequest {
            spec,
            params: Params { total: counts.total, active: counts.active },
            trained: Trained::Full,
            quantized: None,
            checkpointing: [Checkpointing::None, Checkpointing::Selective, Checkpointing::Full][ckpt_i],
            optimizer: Optimizer::Adamw,
            trainable: counts.total,
            state_bytes: 4.0,
            gradient_bytes: 2.0,
            weight_bytes: 2.0 * counts.total as f64,
            seq, micro_batch: batch, grad_accum,
            parallel: Parallel { gpus: count, tp: 1, pp: 1, zero: if count > 1 { zero } else { 0 }, offload: Offload::None },
            nodes,
            inter_node_bytes_per_s: 50e9,
            overlap,
            device: &device,
            efficiency: &efficiency,
            frozen_forwards: frozen,
            offloaded_activation_bytes: 0.0,
        };
        let gemm = Factor { value: 0.78, source: "test".into() };
        match train_speed(&req, &TrainingEfficiency::defaults(gemm), &mut BasisLog::default()) {
            Some(s) => {
                let tokens_per_s = s.tokens_per_step as f64 / s.step_time_s;
                // A frozen forward adds 2·N per token: the bound is peak over (6 + 2·frozen)·N.
                let per_token = (6.0 + 2.0 * frozen as f64) * counts.active as f64;
                let bound = count as f64 * device.peak_16bit.unwrap().0 / per_token;
                prop_assert!(tokens_per_s <= bound, "{tokens_per_s} > {bound} on {} × {count}", gpu.id);
                prop_assert!(s.mfu > 0.0 && s.mfu < 1.0, "mfu {}", s.mfu);
            }
            None => prop_assert!(device.peak_16bit.is_none() || (count > 1 && device.link.is_none())),
        }
    }
}
