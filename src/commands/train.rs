//! `headroom plan MODEL --mode full|lora|qlora|dpo|ppo|grpo|best-of-n`: builds the training request from
//! the arguments (resolving the extra RLHF models) and renders the training plan.

use super::plan::device;
use super::source::{resolve, ResolvedModel};
use crate::catalog::gpus::parse_gpu_arg;
use crate::cli::{AttentionArg, CheckpointingArg, ModeArg, OffloadArg, OptimizerArg, PlanArgs, PrecisionArg};
use crate::plan::training::{
    plan_training, Checkpointing, LoraTargets, Method, Mode, ModelInput, ModelRole, Offload, Optimizer, Parallel,
    Precision, TrainingRequest,
};
use crate::quant::{FloatType, QuantScheme, WeightFormat};
use crate::report::{ModelSummary, PlanReport, RequestSummary, Throughput};

/// peft's default LoRA rank.
const DEFAULT_LORA_RANK: u64 = 8;

pub fn train_report(model: &ResolvedModel, args: &PlanArgs) -> anyhow::Result<PlanReport> {
    let t = &args.train;
    let mode = mode(t.mode);
    let precision = match t.precision {
        PrecisionArg::Mixed => Precision::Mixed,
        PrecisionArg::Bf16 => Precision::Bf16,
        PrecisionArg::Amp => Precision::Amp,
    };
    let format = match (&args.weights, mode, precision) {
        (Some(w), _, _) => WeightFormat::parse(w)?,
        (None, _, Precision::Amp) => WeightFormat::Float(FloatType::F32),
        (None, Mode::Qlora, _) => WeightFormat::Quantized(QuantScheme::Nf4Double),
        (None, _, _) => model.default_format,
    };
    let policy_method = policy_method(mode, t.lora_rank, &t.lora_targets)?;
    let extra = extra_models(mode, args)?;
    let mut models = vec![ModelInput {
        role: ModelRole::Policy,
        spec: &model.spec,
        tensors: &model.tensors,
        format,
        method: policy_method.clone(),
    }];
    for (role, resolved) in &extra {
        let m = resolved.as_ref().unwrap_or(model);
        let method = if *role == ModelRole::Critic { policy_method.clone() } else { Method::Frozen };
        models.push(ModelInput { role: *role, spec: &m.spec, tensors: &m.tensors, format, method });
    }
    let gpu = args.gpu.as_deref().map(parse_gpu_arg).transpose()?;
    let gpus = gpu.map_or(t.tp * t.pp, |(_, count)| count as u64);
    let context = args.context.unwrap_or(4096.min(model.spec.max_context));
    let req = TrainingRequest {
        mode,
        models,
        precision,
        optimizer: optimizer(t.optimizer),
        checkpointing: match t.checkpointing {
            CheckpointingArg::None => Checkpointing::None,
            CheckpointingArg::Selective => Checkpointing::Selective,
            CheckpointingArg::Full => Checkpointing::Full,
        },
        flash_attention: args.attention == AttentionArg::Flash,
        seq: context,
        micro_batch: args.batch,
        grad_accum: t.grad_accum,
        group_size: t.group_size,
        loss_chunk: t.loss_chunk,
        parallel: Parallel { gpus, tp: t.tp, pp: t.pp, zero: t.zero, offload: offload(t.offload) },
        device: gpu.map(|(g, count)| device(g, count)),
    };
    let (plan, summary) = plan_training(&req)?;
    Ok(PlanReport {
        model: ModelSummary {
            id: model.spec.id.clone(),
            parameters: model.counts.total,
            active_parameters: model.counts.active,
            trainable_parameters: summary.trainable_parameters,
        },
        request: RequestSummary {
            weights: format.id().to_string(),
            kv_cache: "bf16".to_string(),
            context,
            batch: args.batch,
            engine: "hf".to_string(),
            mode: mode.id().to_string(),
        },
        memory: plan.memory,
        per_gpu: plan.per_gpu,
        fit: plan.fit,
        throughput: Throughput::default(),
        vllm: None,
        training: Some(summary),
        basis: plan.basis,
    })
}

fn mode(m: ModeArg) -> Mode {
    match m {
        ModeArg::Full | ModeArg::Infer => Mode::Full,
        ModeArg::Lora => Mode::Lora,
        ModeArg::Qlora => Mode::Qlora,
        ModeArg::Dpo => Mode::Dpo,
        ModeArg::Ppo => Mode::Ppo,
        ModeArg::Grpo => Mode::Grpo,
        ModeArg::BestOfN => Mode::BestOfN,
    }
}

fn optimizer(o: OptimizerArg) -> Optimizer {
    match o {
        OptimizerArg::Adamw => Optimizer::Adamw,
        OptimizerArg::Adamw8bit => Optimizer::Adamw8bit,
        OptimizerArg::PagedAdamw8bit => Optimizer::PagedAdamw8bit,
        OptimizerArg::Sgd => Optimizer::Sgd,
        OptimizerArg::Adafactor => Optimizer::Adafactor,
        OptimizerArg::Lion => Optimizer::Lion,
    }
}

fn offload(o: OffloadArg) -> Offload {
    match o {
        OffloadArg::None => Offload::None,
        OffloadArg::Optimizer => Offload::Optimizer,
        OffloadArg::Params => Offload::Params,
    }
}

/// LoRA for lora/qlora, and for the RLHF modes when a rank is given; full otherwise.
fn policy_method(mode: Mode, rank: Option<u64>, targets: &str) -> anyhow::Result<Method> {
    let lora = matches!(mode, Mode::Lora | Mode::Qlora) || (mode != Mode::Full && rank.is_some());
    if !lora {
        return Ok(Method::Full);
    }
    let rank = rank.unwrap_or(DEFAULT_LORA_RANK);
    anyhow::ensure!(rank > 0, "--lora-rank 0 is invalid: give a rank of at least 1");
    Ok(Method::Lora { rank, targets: LoraTargets::parse(targets)? })
}

/// The RLHF models besides the policy: `None` means the policy's own model.
fn extra_models(mode: Mode, args: &PlanArgs) -> anyhow::Result<Vec<(ModelRole, Option<ResolvedModel>)>> {
    let t = &args.train;
    let load = |id: &Option<String>| id.as_deref().map(resolve).transpose();
    let lora_policy = t.lora_rank.is_some();
    let mut out = Vec::new();
    let reference_needed = match mode {
        // A LoRA policy's reference is its base with adapters disabled: no second copy.
        Mode::Dpo | Mode::Grpo => t.reference.as_deref() != Some("precomputed") && !lora_policy,
        Mode::Ppo => !lora_policy,
        _ => false,
    };
    if reference_needed {
        out.push((ModelRole::Reference, load(&t.reference.clone().filter(|r| r != "precomputed"))?));
    }
    if mode == Mode::Ppo {
        out.push((ModelRole::Critic, load(&t.critic)?));
    }
    if matches!(mode, Mode::Ppo | Mode::BestOfN) {
        out.push((ModelRole::Reward, load(&t.reward)?));
    }
    Ok(out)
}
