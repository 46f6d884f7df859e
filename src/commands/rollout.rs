//! The rollout part of a PPO, GRPO or rejection-sampling (best-of-n) step: the policy generates
//! completions of `--response-tokens` tokens (`--group-size` per prompt for GRPO and best-of-n,
//! one for PPO) with transformers' `generate` (TRL's default) or vLLM (`--rollout-engine vllm`),
//! then no-grad forwards score them (GRPO: the reference, when one is kept; best-of-n: the reward
//! model; PPO: the actor's own log-probabilities, the reference, the reward model and the
//! critic's values). Each time comes from the inference speed model of `plan` for that model,
//! engine, batch and length: generation is a
//! prefill of the prompts plus one decode step per response token at the mean cached length;
//! a scoring forward is a prefill over the whole sequences. A vLLM server (`vllm-server`) is
//! timed as if on GPUs like the training ones; a colocated engine (`vllm`) generates in waves
//! when its KV pool cannot hold every sequence at once.
//!
//! `rollout_engine` sizes the colocated engine's memory: the `gpu_memory_utilization` share of
//! each training GPU that vLLM takes, and the KV pool its own plan of the policy leaves in it.
//!
//! Worked example, Llama-2-7B GRPO on an H200, 1 prompt × 8 completions, 512 prompt and 512
//! response tokens: prefill 8×512 tokens ≈ 0.1 s, 512 steps at batch 8 and 768 cached tokens at
//! transformers' host-bound ≈ 23 ms a step ≈ 11.8 s; the reference's scoring forward 0.2 s; the
//! training step over 8 sequences of 1,024 tokens about 0.9 s: generation dominates, as it does
//! in practice.

use super::plan::plan_report_on;
use super::source::ResolvedModel;
use crate::catalog::gpus::GpuSpec;
use crate::cli::{ModeArg, PlanArgs};
use crate::plan::basis::BasisLog;
use crate::plan::training::{Mode, ModelRole, RolloutEngine, TrainingRequest};
use crate::quant::{FloatType, WeightFormat};
use crate::units::Bytes;

/// TRL's `vllm_gpu_memory_utilization` default for a colocated engine (GRPOConfig, TRL ≥ 0.18).
const COLOCATED_VLLM_UTILIZATION: f64 = 0.3;

/// The weights a rollout engine generates with: transformers uses the policy as trained (NF4
/// for QLoRA); vLLM holds a 16-bit copy, into which TRL, OpenRLHF and veRL load the merged
/// weights after each step.
fn rollout_weights(engine: &str, trained: WeightFormat) -> WeightFormat {
    match trained {
        WeightFormat::Float(FloatType::F16 | FloatType::Bf16) => trained,
        _ if engine == "hf" => trained,
        _ => WeightFormat::Float(FloatType::Bf16),
    }
}

/// The rollout engine of a training plan on `gpu` (`tp` GPUs per model replica). A colocated
/// vLLM engine is sized by vLLM's own inference plan for the policy at the chosen
/// `gpu_memory_utilization`: what is left of that share after its 16-bit weights, profiled
/// activations and non-torch memory is its KV pool.
pub(super) fn rollout_engine(
    policy: &ResolvedModel,
    args: &PlanArgs,
    gpu: Option<(&'static GpuSpec, u32)>,
    trained: WeightFormat,
    seq: u64,
) -> anyhow::Result<RolloutEngine> {
    let t = &args.train;
    let rollouts = matches!(t.mode, ModeArg::Ppo | ModeArg::Grpo | ModeArg::BestOfN);
    match t.rollout_engine.as_str() {
        "vllm" if rollouts => {}
        "vllm-server" => return Ok(RolloutEngine::VllmServer),
        _ => return Ok(RolloutEngine::Hf),
    }
    let Some((g, _)) = gpu else {
        anyhow::bail!(
            "--rollout-engine vllm reserves a share of each GPU's memory: give --gpu, or plan a vLLM server on other GPUs with --rollout-engine vllm-server"
        )
    };
    let utilization = args.gpu_memory_utilization.unwrap_or(COLOCATED_VLLM_UTILIZATION);
    anyhow::ensure!(
        utilization > 0.0 && utilization < 1.0,
        "--gpu-memory-utilization {utilization} is invalid: a colocated engine shares the GPU, give a fraction in (0, 1)"
    );
    let mut a = args.clone();
    a.train.mode = ModeArg::Infer;
    a.engine = Some("vllm".into());
    a.weights = Some(rollout_weights("vllm", trained).id().to_string());
    a.batch = 1;
    a.context = Some(seq);
    a.gpu_memory_utilization = Some(utilization);
    let plan = plan_report_on(policy, &a, Some((g, t.tp as u32)), None)
        .map_err(|e| anyhow::anyhow!("--rollout-engine vllm (vLLM's own plan of the policy on {}): {e}", g.id))?;
    let v = plan.vllm.ok_or_else(|| anyhow::anyhow!("the vLLM plan of {} has no KV pool", policy.spec.id))?;
    // The planned batch is one sequence: what vLLM needs besides its pool, plus that sequence.
    let m = &plan.memory;
    let minimum = m.total.saturating_sub(m.cuda_context);
    Ok(RolloutEngine::VllmColocated {
        reserved: Bytes(v.budget_bytes),
        kv_capacity_tokens: v.kv_capacity_tokens,
        max_sequences: v.max_concurrency,
        minimum,
    })
}

/// Seconds of one micro-batch's rollout (generation and scoring), and its FLOPs; `None` where a
/// speed is unknown (a GPU without TFLOPS in the catalog).
pub(super) fn rollout_s(
    policy: &ResolvedModel,
    extra: &[(ModelRole, Option<ResolvedModel>)],
    args: &PlanArgs,
    req: &TrainingRequest,
    gpu: &'static GpuSpec,
    response: u64,
    basis: &mut BasisLog,
) -> anyhow::Result<Option<(f64, f64)>> {
    let per_prompt = if req.mode == Mode::Ppo { 1 } else { req.group_size };
    let sequences = req.micro_batch * per_prompt;
    let prompt = req.seq - response;
    let tp = req.parallel.tp as u32;
    // One inference plan's throughput for `m` at `batch` sequences of `context` tokens.
    let infer =
        |m: &ResolvedModel, batch: u64, context: u64, engine: &str| -> anyhow::Result<crate::report::Throughput> {
            let mut a = args.clone();
            a.train.mode = ModeArg::Infer;
            a.engine = Some(engine.to_string());
            a.batch = batch;
            a.context = Some(context);
            a.weights = Some(rollout_weights(engine, req.models[0].format).id().to_string());
            Ok(plan_report_on(m, &a, Some((gpu, tp)), None)?.throughput)
        };
    let generator = if args.train.rollout_engine == "hf" { "hf" } else { "vllm" };
    // A colocated pool too small for every sequence at full length generates in waves.
    let concurrent = match req.rollout {
        RolloutEngine::VllmColocated { max_sequences, .. } => (max_sequences as u64).clamp(1, sequences),
        _ => sequences,
    };
    let waves = sequences.div_ceil(concurrent);
    let prefill = infer(policy, concurrent, prompt, generator)?.time_to_first_token_s;
    let step = infer(policy, concurrent, prompt + response / 2, generator)?.inter_token_latency_s;
    let (Some(prefill), Some(step)) = (prefill, step) else { return Ok(None) };
    let generation = waves as f64 * (prefill + response as f64 * step);
    let n = |m: &ResolvedModel| m.counts.active as f64;
    let mut flops = 2.0 * n(policy) * (sequences * req.seq) as f64;
    let scorers: &[ModelRole] = match req.mode {
        Mode::Grpo => &[ModelRole::Reference],
        Mode::Ppo => &[ModelRole::Policy, ModelRole::Reference, ModelRole::Reward, ModelRole::Critic],
        _ => &[ModelRole::Reward],
    };
    let mut scoring = 0.0;
    let mut names = Vec::new();
    // The policy always scores (PPO's log-probabilities); the others when the plan keeps them
    // (a LoRA policy's reference is its own base: the same forward).
    for &role in scorers {
        let kept = role == ModelRole::Policy
            || req.models.iter().any(|m| m.role == role)
            || (role == ModelRole::Reference && req.models[0].method != crate::plan::training::Method::Full);
        if !kept {
            continue;
        }
        let m = extra.iter().find(|e| e.0 == role).and_then(|e| e.1.as_ref()).unwrap_or(policy);
        // Scoring runs in the training framework (transformers), whatever generated.
        let Some(forward) = infer(m, sequences, req.seq, "hf")?.time_to_first_token_s else { return Ok(None) };
        scoring += forward;
        flops += 2.0 * n(m) * (sequences * req.seq) as f64;
        names.push(format!("{role:?}").to_lowercase());
    }
    basis.add(
        "rollout: generation (s per micro-batch)",
        format!("{generation:.3}"),
        format!(
            "{} generate: {sequences} sequences ({waves} wave(s) of {concurrent}), prefill of {prompt} tokens + {response} decode steps at {} cached tokens",
            args.train.rollout_engine,
            prompt + response / 2
        ),
    );
    if scoring > 0.0 {
        basis.add(
            "rollout: scoring (s per micro-batch)",
            format!("{scoring:.3}"),
            format!("no-grad forwards ({}) over {sequences} sequences", names.join(", ")),
        );
    }
    Ok(Some((generation + scoring, flops)))
}
