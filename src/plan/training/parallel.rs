//! How training is spread over GPUs: ZeRO stages over the data-parallel ranks, CPU offload,
//! tensor parallelism (with sequence parallelism) and 1F1B pipeline parallelism.
//!
//! - ZeRO (Rajbhandari et al. 2020; FSDP): stage 1 shards the optimizer states (fp32 master
//!   included) over the `dp` ranks, stage 2 also the gradients, stage 3 also the weights. Stage 3
//!   gathers one layer's weights at a time and prefetches the next (two layers' 16-bit weights
//!   live), and stages 2–3 hold one layer's full gradients before the reduce-scatter.
//! - Offload (ZeRO-Offload / ZeRO-Infinity): `optimizer` moves states and master weights to host
//!   memory and steps there; `params` (stage 3) moves the weights as well.
//! - Tensor parallel `tp` with sequence parallelism (Korthikanti et al. 2022): weights, gradients,
//!   states and every saved activation are divided by `tp`; the loss is vocabulary-parallel.
//! - Pipeline parallel `pp`, 1F1B schedule (Narayanan et al. 2021): stage `s` (0-based) holds the
//!   activations of `min(pp − s, micro-batches)` micro-batches in flight; the first stage also
//!   holds the embeddings, the last the lm_head and the loss.
//!
//! Data parallel = GPUs / (tp · pp). Worked example: Llama-2-7B, 8 GPUs, ZeRO-3: weights,
//! gradients and the 12 B/param of AdamW states are divided by 8; 16·6.74e9/8 = 13.5 GB per GPU,
//! plus two gathered layers (2 · 404,766,720 B) and one layer's gradients (404,766,720 B).

use super::TrainingError;
use crate::model::spec::ModelSpec;
use serde::Serialize;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Offload {
    #[default]
    None,
    Optimizer,
    Params,
}

/// The parallel layout of a training run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Parallel {
    pub gpus: u64,
    pub tp: u64,
    pub pp: u64,
    /// ZeRO stage 0–3.
    pub zero: u8,
    pub offload: Offload,
}

/// Divisors of each model state on one GPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shards {
    pub weights: u64,
    pub gradients: u64,
    pub optimizer: u64,
}

impl Parallel {
    pub fn single() -> Parallel {
        Parallel { gpus: 1, tp: 1, pp: 1, zero: 0, offload: Offload::None }
    }

    /// Data-parallel ranks.
    pub fn dp(&self) -> u64 {
        self.gpus / (self.tp * self.pp).max(1)
    }

    pub fn validate(&self, spec: &ModelSpec) -> Result<(), TrainingError> {
        let Parallel { gpus, tp, pp, zero, offload } = *self;
        if tp == 0 || pp == 0 || gpus % (tp * pp) != 0 {
            return Err(TrainingError::Layout { gpus, tp, pp });
        }
        if zero > 3 {
            return Err(TrainingError::ZeroStage(zero));
        }
        if zero > 0 && self.dp() < 2 {
            return Err(TrainingError::ZeroNeedsDataParallel { zero, gpus, dp: self.dp() });
        }
        if !spec.splits_heads(tp) {
            return Err(TrainingError::TensorParallelHeads { tp, heads: spec.num_heads, kv_heads: spec.num_kv_heads });
        }
        if pp > spec.num_layers {
            return Err(TrainingError::PipelineTooDeep { pp, layers: spec.num_layers });
        }
        if offload == Offload::Params && zero != 3 {
            return Err(TrainingError::OffloadParamsNeedsZero3);
        }
        Ok(())
    }

    pub fn shards(&self) -> Shards {
        let dp = self.dp();
        let by = |stage: u8| if self.zero >= stage { dp * self.tp } else { self.tp };
        Shards { weights: by(3), gradients: by(2), optimizer: by(1) }
    }

    /// Decoder layers of pipeline stage `stage`.
    pub fn stage_layers(&self, stage: u64, layers: u64) -> std::ops::Range<u64> {
        (stage * layers / self.pp)..((stage + 1) * layers / self.pp)
    }

    /// Micro-batches whose activations stage `stage` holds under 1F1B.
    pub fn in_flight(&self, stage: u64, micro_batches: u64) -> u64 {
        (self.pp - stage).min(micro_batches.max(1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_stages_shard_progressively() {
        let p = |zero| Parallel { gpus: 8, tp: 1, pp: 1, zero, offload: Offload::None }.shards();
        assert_eq!(p(0), Shards { weights: 1, gradients: 1, optimizer: 1 });
        assert_eq!(p(1), Shards { weights: 1, gradients: 1, optimizer: 8 });
        assert_eq!(p(2), Shards { weights: 1, gradients: 8, optimizer: 8 });
        assert_eq!(p(3), Shards { weights: 8, gradients: 8, optimizer: 8 });
    }

    /// 1F1B with 4 stages and 8 micro-batches: the first stage holds 4, the last 1.
    #[test]
    fn one_f_one_b_in_flight() {
        let p = Parallel { gpus: 4, tp: 1, pp: 4, zero: 0, offload: Offload::None };
        assert_eq!((p.in_flight(0, 8), p.in_flight(3, 8), p.in_flight(0, 2)), (4, 1, 2));
        assert_eq!(p.stage_layers(1, 32), 8..16);
    }
}
