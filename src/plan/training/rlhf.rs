//! RLHF and preference training: the phases that come before the policy's own training step,
//! and how many sequences one prompt becomes. None of the surveyed tools models these.
//!
//! - DPO (Rafailov et al. 2023; TRL `DPOTrainer`): chosen and rejected completions are
//!   concatenated, so each pair is two sequences in the policy's step; the frozen reference runs
//!   a no-grad forward first (skipped with precomputed reference log-probs; a LoRA policy uses
//!   its own base with adapters disabled, so no second copy of the weights).
//! - PPO (Ouyang et al. 2022; TRL / OpenRLHF): actor and critic are trained, reference and reward
//!   are frozen; all four stay resident. A rollout phase generates with the actor (KV cache for
//!   every sequence of the batch), a scoring phase runs the no-grad forwards (reference
//!   log-probs, rewards, values), then actor and critic train one after the other.
//! - GRPO (Shao et al. 2024): no critic; each prompt is generated `group_size` times, and the
//!   policy trains on all of them.
//! - Rejection sampling / best-of-n (Touvron et al. 2023, Llama 2 §3.2.3): the policy generates
//!   `group_size` completions per prompt, a frozen reward model scores them, and the policy takes
//!   a supervised step on the best one only.
//!
//! - Rollout engines: transformers `generate` allocates the rollout KV cache in the generation
//!   phase only; a colocated vLLM engine (TRL's colocate mode, veRL's and OpenRLHF's hybrid
//!   engines) holds its `gpu_memory_utilization` share in every phase; a vLLM server lives on
//!   other GPUs. vLLM's sleep mode (releasing the share while training) is not modelled.
//!
//! No-grad forwards hold the 16-bit logits, their fp32 upcast and the fp32 log-softmax
//! (2 + 4 + 4 B per vocabulary entry and token) beside one layer's intermediates.
//! Worked example, Llama-2-7B GRPO, 4 prompts × group 8 × 1024 tokens: generation caches
//! 32 sequences × 1024 tokens × 512 KiB = 16 GiB of KV.

use super::activations::{layer_transients, ActivationSetup};
use super::phases::breakdown;
use super::{Mode, ModelRole, PhaseMemory, RolloutEngine, TrainingRequest};
use crate::plan::basis::BasisLog;
use crate::plan::engine::{Engine, EngineOptions};
use crate::plan::kv::{kv_bytes, KvRequest};
use crate::plan::MemoryBreakdown;
use crate::quant::KvFormat;
use crate::units::Bytes;

/// Sequences the policy trains on per prompt (or pair) of the micro-batch.
pub fn sequences_per_prompt(req: &TrainingRequest) -> u64 {
    match req.mode {
        Mode::Dpo => 2,
        Mode::Grpo => req.group_size,
        _ => 1,
    }
}

/// Sequences generated per prompt in the rollout phase (0: the mode does not generate).
fn rollouts_per_prompt(req: &TrainingRequest) -> u64 {
    match req.mode {
        Mode::Ppo => 1,
        Mode::Grpo | Mode::BestOfN => req.group_size,
        _ => 0,
    }
}

/// The bytes a colocated rollout engine holds on every training GPU for the whole run (0 for
/// transformers generate, which allocates per phase, and for a vLLM server on other GPUs).
/// Worked example: TRL GRPO with vLLM colocated on an H100 SXM at TRL's default
/// `vllm_gpu_memory_utilization` 0.3 reserves 0.3 of what CUDA sees, (81,559 − 454) MiB =
/// 85,044,756,480 B: 25,513,426,944 B ≈ 23.8 GiB.
pub fn colocated_engine(req: &TrainingRequest, log: &mut BasisLog) -> Bytes {
    match req.rollout {
        RolloutEngine::VllmColocated { reserved, kv_capacity_tokens, max_sequences, minimum }
            if rollouts_per_prompt(req) > 0 =>
        {
            log.add(
                "colocated vLLM rollout engine",
                reserved.0,
                format!(
                    "gpu_memory_utilization × GPU memory, held for the whole run: its 16-bit weights, \
                     activations and a KV pool of {kv_capacity_tokens} tokens"
                ),
            );
            if max_sequences < 1.0 {
                let capacity = req.device.as_ref().map_or(0, |d| d.capacity.0).max(1);
                let share = minimum.0 as f64 / capacity as f64;
                let fix = if share < 1.0 {
                    // Rounded up: the printed share must be enough.
                    format!("raise --gpu-memory-utilization to at least {:.2}", (share * 100.0).ceil() / 100.0)
                } else {
                    "no share of one GPU holds it: use --rollout-engine vllm-server or a larger --tp".to_string()
                };
                log.add(
                    "colocated vLLM cannot start",
                    minimum.0,
                    format!(
                        "bytes it needs for its 16-bit weights, activations and one {}-token sequence: {fix}",
                        req.seq
                    ),
                );
            }
            reserved
        }
        _ => Bytes::ZERO,
    }
}

/// Whether the rollout engine starts: vLLM refuses a KV pool smaller than one sequence.
pub fn rollout_engine_starts(req: &TrainingRequest) -> bool {
    match req.rollout {
        RolloutEngine::VllmColocated { max_sequences, .. } if rollouts_per_prompt(req) > 0 => max_sequences >= 1.0,
        _ => true,
    }
}

/// Peak of a no-grad forward over `tokens` tokens on one GPU: vocabulary-sized logits on the
/// last stage (value heads have none), one layer's intermediates elsewhere.
fn no_grad_forward(req: &TrainingRequest, role: ModelRole, stage: u64, tokens: u64) -> u64 {
    let Some(m) = req.models.iter().find(|m| m.role == role) else { return 0 };
    let setup = ActivationSetup {
        spec: m.spec,
        base_trainable: false,
        targets: None,
        adapter_bytes: 2,
        lora_dropout: false,
        frozen_saves_input: false,
        autocast: false,
        trainer_autocast: false,
        flash: true,
        seq: req.seq,
        litgpt: req.engine == Engine::Litgpt,
        adapter: None,
    };
    let tp = req.parallel.tp;
    let layer = tokens * layer_transients(&setup).0 / tp;
    let last = stage == req.parallel.pp - 1;
    let vocab_head = matches!(role, ModelRole::Policy | ModelRole::Reference);
    let logits = if last && vocab_head { tokens * 10 * m.spec.vocab_size / tp } else { 0 };
    layer.max(logits)
}

/// Phases before the policy's training step, over the resident `base`.
pub fn before_training(
    req: &TrainingRequest,
    stage: u64,
    base: &MemoryBreakdown,
    log: &mut BasisLog,
) -> Vec<PhaseMemory> {
    let tokens = req.seq * req.micro_batch * sequences_per_prompt(req);
    let rollout_tokens = req.seq * req.micro_batch * rollouts_per_prompt(req);
    let with = |activations: u64, kv: Bytes| {
        breakdown(MemoryBreakdown { activations: Bytes(activations), kv_cache: kv, ..base.clone() })
    };
    let mut out = Vec::new();
    if req.mode == Mode::Dpo && req.models.iter().any(|m| m.role == ModelRole::Reference) {
        let a = no_grad_forward(req, ModelRole::Reference, stage, tokens);
        log.add("reference forward (no grad)", a, "(2 + 4 + 4) B × vocab × tokens: logits, fp32 upcast, log-softmax");
        out.push(PhaseMemory {
            phase: "reference forward".into(),
            moment: "reference logits".into(),
            memory: with(a, Bytes::ZERO),
        });
    }
    if rollouts_per_prompt(req) > 0 && req.rollout == RolloutEngine::Hf {
        let policy = &req.models[0];
        let sequences = req.micro_batch * rollouts_per_prompt(req);
        let options = EngineOptions::default();
        let kv = KvRequest {
            spec: policy.spec,
            format: KvFormat::Bf16,
            context: req.seq,
            batch: sequences,
            engine: Engine::Hf,
            options: &options,
            tp: req.parallel.tp,
            max_batched_tokens: 0,
        };
        let kv = kv_bytes(&kv, req.parallel.stage_layers(stage, policy.spec.num_layers));
        log.add(
            "rollout KV cache",
            kv.0,
            format!("{sequences} sequences × {} tokens, bf16, generated by the policy", req.seq),
        );
        let decode = sequences * policy.spec.vocab_size * 6 / req.parallel.tp;
        out.push(PhaseMemory {
            phase: "generation".into(),
            moment: "rollouts at full length".into(),
            memory: with(decode, kv),
        });
    }
    if rollouts_per_prompt(req) > 0 {
        let scoring = [ModelRole::Policy, ModelRole::Reference, ModelRole::Reward, ModelRole::Critic]
            .into_iter()
            .map(|r| no_grad_forward(req, r, stage, rollout_tokens))
            .max()
            .unwrap_or(0);
        out.push(PhaseMemory {
            phase: "scoring".into(),
            moment: "no-grad forwards: log-probs, rewards, values".into(),
            memory: with(scoring, Bytes::ZERO),
        });
    }
    out
}
