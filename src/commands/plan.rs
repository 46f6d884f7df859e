//! `headroom plan MODEL [options]`: memory per GPU and the verdict.

use super::render_plan;
use super::source::{resolve, ResolvedModel};
use crate::catalog::gpus::{parse_gpu_arg, Arch, GpuSpec};
use crate::cli::{AttentionArg, ModeArg, PlanArgs, SplitArg};
use crate::plan::{plan_inference, Device, Engine, EngineOptions, Generation, InferenceRequest, Split, WeightLayout};
use crate::quant::{KvFormat, WeightFormat};
use crate::report::{ModelSummary, PlanReport, RequestSummary, Throughput};

pub fn run(args: &PlanArgs) -> anyhow::Result<String> {
    Ok(render_plan(&report(args)?, args.format))
}

/// Resolves the model and plans it: the report every output format renders.
pub fn report(args: &PlanArgs) -> anyhow::Result<PlanReport> {
    plan_report(&resolve(&args.model)?, args)
}

/// Builds the request from the arguments and plans it.
pub fn plan_report(model: &ResolvedModel, args: &PlanArgs) -> anyhow::Result<PlanReport> {
    if args.train.mode != ModeArg::Infer {
        return super::train::train_report(model, args);
    }
    let spec = &model.spec;
    let format = match &args.weights {
        Some(w) => WeightFormat::parse(w)?,
        None => model.default_format,
    };
    // A local file's stored bytes win over formulas unless --weights asks for another format.
    let from_file = model.file.as_ref().filter(|_| args.weights.is_none());
    let is_gguf = from_file.map_or(matches!(format, WeightFormat::Gguf(_)), |f| f.model.gguf.is_some());
    let engine = match &args.engine {
        Some(e) => Engine::parse(e)?,
        None if is_gguf => Engine::LlamaCpp,
        None => Engine::Hf,
    };
    // The cache defaults to the compute dtype: bf16, or f16 in llama.cpp.
    let default_kv = if engine == Engine::LlamaCpp { "fp16" } else { "bf16" };
    let kv = KvFormat::parse(args.kv_cache.as_deref().unwrap_or(default_kv))?;
    let context = args.context.unwrap_or(4096.min(spec.max_context));
    let device = args.gpu.as_deref().map(parse_gpu_arg).transpose()?.map(|(gpu, count)| device(gpu, count));
    let weights = match from_file {
        Some(file) => file.layout.clone(),
        None => WeightLayout::from_inventory(spec.num_layers, &model.tensors, |t| format.tensor_bytes(t, spec)),
    };
    let weights_label = from_file.map_or_else(|| format.id().to_string(), |f| f.label.clone());
    let options = EngineOptions {
        gpu_memory_utilization: args.gpu_memory_utilization,
        block_size: args.block_size,
        max_num_batched_tokens: args.max_num_batched_tokens,
        max_num_seqs: args.max_num_seqs,
        n_ubatch: args.ubatch,
        flash_attention: args.attention == AttentionArg::Flash,
        logits_all_positions: args.logits_all,
    };
    let req = InferenceRequest {
        spec,
        weights: &weights,
        kv,
        context,
        batch: args.batch,
        engine,
        options,
        device,
        split: args.split.map(|s| match s {
            SplitArg::Tensor => Split::Tensor,
            SplitArg::Layer => Split::Layer,
        }),
    };
    let plan = plan_inference(&req)?;
    Ok(PlanReport {
        model: ModelSummary {
            id: spec.id.clone(),
            parameters: model.counts.total,
            active_parameters: model.counts.active,
            trainable_parameters: 0,
        },
        request: RequestSummary {
            weights: weights_label,
            kv_cache: kv.id().to_string(),
            context,
            batch: args.batch,
            engine: engine.id().to_string(),
            mode: "infer".to_string(),
        },
        memory: plan.memory,
        per_gpu: plan.per_gpu,
        fit: plan.fit,
        throughput: Throughput::default(),
        vllm: plan.vllm,
        training: None,
        basis: plan.basis,
    })
}

pub(crate) fn device(gpu: &GpuSpec, count: u32) -> Device {
    let generation = match gpu.arch {
        Arch::Volta => Generation::Volta,
        Arch::Turing => Generation::Turing,
        Arch::Ampere => Generation::Ampere,
        Arch::Ada => Generation::Ada,
        Arch::Hopper => Generation::Hopper,
        Arch::Blackwell => Generation::Blackwell,
        _ => Generation::Other,
    };
    Device { id: gpu.id.clone(), capacity: crate::units::Bytes(gpu.memory_bytes()), count, generation }
}
