//! `headroom plan MODEL --mode full|lora|qlora|dpo|ppo|grpo|best-of-n`: builds the training request from
//! the arguments (resolving the extra RLHF models) and renders the training plan.

use super::fit::gpu_price;
use super::plan::{built_tensors, device, device_speed, keeps_vision, load_calibration};
use super::source::{resolve, ResolvedModel};
use crate::catalog::gpus::parse_gpu_arg;
use crate::catalog::gpus::GpuSpec;
use crate::cli::{AttentionArg, CheckpointingArg, ModeArg, OffloadArg, OptimizerArg, PlanArgs, PrecisionArg};
use crate::model::tensors::Role;
use crate::plan::basis::BasisLog;
use crate::plan::throughput::training::{
    train_speed, QuantizedBase, TrainSpeedRequest, Trained, TrainingEfficiency, TrainingSpeed,
};
use crate::plan::throughput::{efficiency::gemm, work::quantized_linears_per_token, Params};
use crate::plan::training::{
    lora, plan_training, Checkpointing, LoraTargets, Method, Mode, ModelInput, ModelRole, Offload, Optimizer, Parallel,
    Precision, TrainingRequest,
};
use crate::plan::Engine;
use crate::quant::{FloatType, QuantScheme, WeightFormat};
use crate::report::{ModelSummary, PlanReport, RequestSummary, Throughput};

/// peft's default LoRA rank.
const DEFAULT_LORA_RANK: u64 = 8;

pub fn train_report(model: &ResolvedModel, args: &PlanArgs) -> anyhow::Result<PlanReport> {
    let gpu = args.gpu.as_deref().map(parse_gpu_arg).transpose()?;
    train_report_on(model, args, gpu)
}

/// The training plan on `gpu` (GPUs per node), ignoring `args.gpu`: what `fit` and `max` sweep.
pub fn train_report_on(
    model: &ResolvedModel,
    args: &PlanArgs,
    gpu: Option<(&'static GpuSpec, u32)>,
) -> anyhow::Result<PlanReport> {
    let t = &args.train;
    let mode = mode(t.mode);
    // Training plans model transformers + PyTorch, LitGPT, or headroom's own engine (validate).
    let adapter = matches!(mode, Mode::Adapter | Mode::AdapterV2);
    let engine = match args.engine.as_deref().map(Engine::parse).transpose()? {
        // LLaMA-Adapter is LitGPT's fine-tuning method.
        None if adapter => Engine::Litgpt,
        Some(e) if adapter && e != Engine::Litgpt => {
            anyhow::bail!("--mode {} is LitGPT's LLaMA-Adapter: use --engine litgpt (the default for it)", mode.id())
        }
        None | Some(Engine::Hf) => Engine::Hf,
        Some(e @ (Engine::Headroom | Engine::Litgpt | Engine::Unsloth)) => e,
        Some(other) => anyhow::bail!(
            "--engine {} plans inference only; training plans use hf (transformers), litgpt, unsloth or headroom (validate's engine)",
            other.id()
        ),
    };
    let given = args.weights.as_deref().map(WeightFormat::parse).transpose()?;
    // A base bitsandbytes quantizes as it loads (what LitGPT and TRL check for).
    let bitsandbytes = given.map_or(mode == Mode::Qlora, |f| {
        matches!(f, WeightFormat::Quantized(QuantScheme::Nf4 | QuantScheme::Nf4Double | QuantScheme::Int8Row))
    });
    let precision = precision(t.precision, engine, bitsandbytes)?;
    let format = match (given, mode, precision) {
        (Some(w), _, _) => w,
        (None, Mode::Qlora, _) => WeightFormat::Quantized(QuantScheme::Nf4Double),
        (None, _, Precision::Amp) => WeightFormat::Float(FloatType::F32),
        (None, _, _) => model.default_format()?,
    };
    anyhow::ensure!(
        !matches!(format, WeightFormat::Quantized(q) if q.is_mlx()),
        "{} weights: MLX checkpoints train with mlx_lm.lora, which is not modelled; plan inference (drop --mode), or train the float checkpoint (--weights bf16)",
        format.id()
    );
    if engine == Engine::Litgpt {
        litgpt_supports(mode, args, model)?;
    }
    engine.loads(format).map_err(|why| anyhow::anyhow!("--weights {}: {why}", format.id()))?;
    let vision = keeps_vision(engine, model, args.text_only)?;
    let mut policy_method = policy_method(mode, t.lora_rank, &t.lora_targets)?;
    if let (Engine::Litgpt, Method::Lora { targets, .. }) = (engine, &mut policy_method) {
        targets.for_litgpt();
    }
    let extra = extra_models(mode, args)?;
    let tensors_of = |m: &ResolvedModel| built_tensors(engine, m, vision);
    let policy_tensors = tensors_of(model);
    let extra_tensors: Vec<_> = extra.iter().map(|(_, r)| tensors_of(r.as_ref().unwrap_or(model))).collect();
    let quantized_lm_head = engine.quantizes_lm_head() && format.is_quantized();
    let mut models = vec![ModelInput {
        role: ModelRole::Policy,
        spec: &model.spec,
        tensors: &policy_tensors,
        format,
        method: policy_method.clone(),
        quantized_lm_head,
    }];
    for ((role, resolved), tensors) in extra.iter().zip(&extra_tensors) {
        let m = resolved.as_ref().unwrap_or(model);
        let method = if *role == ModelRole::Critic { policy_method.clone() } else { Method::Frozen };
        models.push(ModelInput { role: *role, spec: &m.spec, tensors, format, method, quantized_lm_head });
    }
    anyhow::ensure!(t.nodes == 1 || gpu.is_some(), "--nodes {} needs --gpu ID:COUNT (GPUs per node)", t.nodes);
    anyhow::ensure!(
        args.backend.is_none(),
        "--backend is llama.cpp's, which does not train; drop it (training plans run transformers, LitGPT or headroom's engine)"
    );
    if let Some((g, per_node)) = gpu {
        super::plan::runs_on(engine, g)?;
        super::plan::check_per_machine(g, per_node)?;
        anyhow::ensure!(
            t.nodes == 1 || !g.unified_memory,
            "--nodes {}: training across several unified-memory machines ({}) is not modelled; plan one",
            t.nodes,
            g.id
        );
    }
    super::plan::runs_model(engine, &model.spec)?;
    let gpu = gpu.map(|(g, count)| (g, count * t.nodes as u32));
    let gpus = gpu.map_or(t.tp * t.pp, |(_, count)| count as u64);
    let context = args.context.unwrap_or(4096.min(model.spec.max_context));
    anyhow::ensure!(
        (0.0..1.0).contains(&t.lora_dropout),
        "--lora-dropout {} is invalid: give a probability in [0, 1)",
        t.lora_dropout
    );
    let parallel = Parallel { gpus, tp: t.tp, pp: t.pp, zero: t.zero, offload: offload(t.offload) };
    parallel.validate(&model.spec)?;
    let req = TrainingRequest {
        mode,
        models,
        precision,
        optimizer: optimizer(t.optimizer),
        optimizer_in_backward: t.optimizer_in_backward,
        checkpointing: match t.checkpointing {
            // Unsloth's `get_peft_model` defaults to use_gradient_checkpointing="unsloth".
            None if engine == Engine::Unsloth => Checkpointing::Offload,
            None | Some(CheckpointingArg::None) => Checkpointing::None,
            Some(CheckpointingArg::Selective) => Checkpointing::Selective,
            Some(CheckpointingArg::Full) => Checkpointing::Full,
            Some(CheckpointingArg::Offload) => Checkpointing::Offload,
        },
        lora_dropout: t.lora_dropout,
        flash_attention: args.attention != AttentionArg::Eager,
        xformers: args.attention == AttentionArg::Xformers,
        autocast: !t.no_autocast,
        seq: context,
        micro_batch: args.batch,
        grad_accum: t.grad_accum,
        group_size: t.group_size,
        loss_chunk: t.loss_chunk,
        parallel,
        device: gpu.map(|(g, count)| super::plan::device_in_use(g, count, args)).transpose()?,
        engine,
        // After the parallel layout is known to be valid: the rollout engine is planned on it.
        rollout: super::rollout::rollout_engine(model, args, gpu, format, context)?,
    };
    let (mut plan, summary) = plan_training(&req)?;
    let speed = match gpu {
        Some((g, _))
            if matches!(
                mode,
                Mode::Full
                    | Mode::Lora
                    | Mode::Qlora
                    | Mode::Dpo
                    | Mode::Grpo
                    | Mode::BestOfN
                    | Mode::Ppo
                    | Mode::Adapter
                    | Mode::AdapterV2
            ) && matches!(engine, Engine::Hf | Engine::Litgpt) =>
        {
            let mut basis = BasisLog(std::mem::take(&mut plan.basis));
            let s = speed(model, &extra, args, &req, g, &summary, &mut basis)?;
            plan.basis = basis.0;
            s
        }
        _ => None,
    };
    let throughput = Throughput {
        train_tokens_per_s: speed.as_ref().map(|s| s.tokens_per_step as f64 / s.step_time_s),
        ..Throughput::default()
    };
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
            engine: engine.id().to_string(),
            mode: mode.id().to_string(),
            backend: None,
        },
        memory: plan.memory,
        per_gpu: plan.per_gpu,
        fit: plan.fit,
        throughput,
        vllm: None,
        host: None,
        training: Some(summary),
        training_speed: speed,
        basis: plan.basis,
    })
}

/// The training precision: as given, or the framework's default. LitGPT trains in bf16-true
/// (`bf16`) or bf16-mixed (`amp`, its default), and refuses mixed precision with bitsandbytes.
/// TRL's trainers (0.26 and later: `SFTTrainer`, `DPOTrainer`, `GRPOTrainer`) cast the trainable
/// parameters of a bitsandbytes 4-bit or 8-bit base to bf16 (the QLoRA paper's recommendation),
/// so such a base under transformers trains bf16 adapters, gradients and states; peft alone
/// (transformers' `Trainer`) keeps fp32 adapters, `--precision mixed`, as Unsloth does.
fn precision(given: Option<PrecisionArg>, engine: Engine, bitsandbytes: bool) -> anyhow::Result<Precision> {
    let litgpt = engine == Engine::Litgpt;
    Ok(match given {
        Some(PrecisionArg::Mixed) if litgpt => anyhow::bail!(
            "--precision mixed (16-bit weights with an fp32 master copy) is not a LitGPT precision: use bf16 (bf16-true) or amp (bf16-mixed)"
        ),
        Some(PrecisionArg::Amp) if litgpt && bitsandbytes => {
            anyhow::bail!("LitGPT refuses bitsandbytes quantization with mixed precision: use --precision bf16 (bf16-true)")
        }
        Some(PrecisionArg::Amp) if engine == Engine::Unsloth => anyhow::bail!(
            "--precision amp keeps fp32 parameters, and Unsloth trains 16-bit ones: use --precision mixed (fp32 adapters) or bf16"
        ),
        Some(PrecisionArg::Mixed) => Precision::Mixed,
        Some(PrecisionArg::Bf16) => Precision::Bf16,
        Some(PrecisionArg::Amp) => Precision::Amp,
        None if litgpt && bitsandbytes => Precision::Bf16,
        None if litgpt => Precision::Amp,
        None if engine == Engine::Hf && bitsandbytes => Precision::Bf16,
        None => Precision::Mixed,
    })
}

/// What LitGPT's scripts cannot run: RLHF modes, multi-head latent attention, eager attention,
/// an external chunked loss, and LoRA options under LLaMA-Adapter (or an adapter with no layer
/// to adapt).
fn litgpt_supports(mode: Mode, args: &PlanArgs, model: &ResolvedModel) -> anyhow::Result<()> {
    let t = &args.train;
    anyhow::ensure!(
        !matches!(mode, Mode::Dpo | Mode::Ppo | Mode::Grpo | Mode::BestOfN),
        "LitGPT has no {} trainer: plan --mode {} with --engine hf (TRL)",
        mode.id(),
        mode.id()
    );
    anyhow::ensure!(
        model.spec.mla.is_none(),
        "{} uses multi-head latent attention, which LitGPT does not implement: plan it with --engine hf",
        model.spec.id
    );
    anyhow::ensure!(
        args.attention != AttentionArg::Eager,
        "LitGPT always runs scaled_dot_product_attention: drop --attention eager"
    );
    anyhow::ensure!(
        t.loss_chunk.is_none(),
        "LitGPT chunks its loss itself (lm_head_chunk_size 128): drop --loss-chunk"
    );
    anyhow::ensure!(
        t.checkpointing != Some(CheckpointingArg::Offload),
        "LitGPT does not offload activations: use --checkpointing full, or --engine hf for torchtune's or axolotl's offloading"
    );
    if matches!(mode, Mode::Adapter | Mode::AdapterV2) {
        anyhow::ensure!(
            t.lora_targets == "all-linear" && t.lora_dropout == 0.0,
            "--lora-targets and --lora-dropout apply to LoRA; LLaMA-Adapter has neither: drop them"
        );
        let start = crate::plan::training::ADAPTER_START_LAYER;
        anyhow::ensure!(
            model.spec.num_layers > start,
            "{} has {} layers; LLaMA-Adapter's prompts start at layer {start}: nothing would train",
            model.spec.id,
            model.spec.num_layers
        );
    }
    Ok(())
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
        ModeArg::Adapter => Mode::Adapter,
        ModeArg::AdapterV2 => Mode::AdapterV2,
    }
}

fn optimizer(o: OptimizerArg) -> Optimizer {
    match o {
        OptimizerArg::Adamw => Optimizer::Adamw,
        OptimizerArg::Adamw8bit => Optimizer::Adamw8bit,
        OptimizerArg::PagedAdamw8bit => Optimizer::PagedAdamw8bit,
        OptimizerArg::PagedAdamw32bit => Optimizer::PagedAdamw32bit,
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
    if matches!(mode, Mode::Adapter | Mode::AdapterV2) {
        anyhow::ensure!(rank.is_none(), "--lora-rank applies to LoRA; LLaMA-Adapter has no rank: drop it");
        return Ok(Method::Adapter {
            prompt_length: crate::plan::training::ADAPTER_PROMPT_LENGTH,
            start_layer: crate::plan::training::ADAPTER_START_LAYER,
            v2: mode == Mode::AdapterV2,
        });
    }
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

/// The speed of a supervised step (full, LoRA, QLoRA) or a DPO step on `gpu`, with
/// `--train-tokens` time and cost; `None` where the catalog lacks the GPU's TFLOPS or link, or
/// for DPO against a reference model of another architecture.
/// DPO trains on chosen and rejected completions (two sequences per pair) after the reference
/// model's no-grad forward over both (none with `--reference precomputed`).
fn speed(
    model: &ResolvedModel,
    extra: &[(ModelRole, Option<ResolvedModel>)],
    args: &PlanArgs,
    req: &TrainingRequest,
    gpu: &'static GpuSpec,
    summary: &crate::plan::training::TrainingSummary,
    basis: &mut BasisLog,
) -> anyhow::Result<Option<TrainingSpeed>> {
    let t = &args.train;
    let trainable = summary.trainable_parameters;
    let policy = &req.models[0];
    let spec = &model.spec;
    let rollout = matches!(req.mode, Mode::Grpo | Mode::BestOfN | Mode::Ppo);
    if rollout {
        let Some(r) = t.response_tokens else {
            basis.add(
                "training speed",
                "not modelled",
                "give --response-tokens: the rollout's generation time depends on it",
            );
            return Ok(None);
        };
        anyhow::ensure!(
            r >= 1 && r < req.seq,
            "--response-tokens {r} is invalid: give 1 to {} (the completion is the end of --context)",
            req.seq - 1
        );
    }
    let frozen_forwards = match (req.mode, t.reference.as_deref()) {
        (Mode::Dpo, Some("precomputed")) => 0,
        (Mode::Dpo, Some(other)) => {
            basis.add(
                "training speed",
                "not modelled",
                format!("DPO against reference {other}: the speed model runs frozen forwards of the policy's architecture only"),
            );
            return Ok(None);
        }
        (Mode::Dpo, None) => 1,
        _ => 0,
    };
    let generation = device(gpu, 1).generation;
    let mut efficiency = super::plan::efficiency_on(gpu, req.engine, generation, None);
    let device = device_speed(gpu);
    if let Some(cal) = load_calibration(args)? {
        efficiency.calibrate(&cal, req.engine, &gpu.id, (device.bandwidth.0, device.peak_16bit.map(|p| p.0)));
        anyhow::ensure!(efficiency.is_valid(), "calibration gives a fraction outside (0, 1] or a negative time");
    }
    let trained = match &policy.method {
        // Text batches never run the vision encoder: its adapters add no work.
        Method::Lora { rank, targets } => {
            let text: Vec<_> = policy.tensors.iter().filter(|t| !t.role.is_vision()).copied().collect();
            let a = lora::adapters(&text, *rank, targets)?;
            Trained::Lora { params: a.iter().map(|(r, c)| r * c).sum(), matrices: a.len() as u64 / 2 }
        }
        // A frozen base too: forward and input gradients, no weight gradients; the prompts and
        // gates are no matrices of their own.
        Method::Adapter { .. } => Trained::Lora { params: trainable, matrices: 0 },
        _ => Trained::Full,
    };
    let quantized = policy.format.is_quantized().then(|| {
        // The quantized linears: the blocks', and lm_head where the engine quantizes it.
        let linears = policy.tensors.iter().filter(|d| {
            d.role.is_block_linear() || (policy.quantized_lm_head && d.role == Role::Output && !d.is_vector())
        });
        let (bytes, elements) =
            linears.fold((0u64, 0u64), |(b, e), d| (b + policy.tensor_bytes(d).0, e + d.rows * d.cols * d.copies));
        QuantizedBase {
            stored_bytes: bytes as f64,
            elements: elements as f64,
            linears: quantized_linears_per_token(spec, req.engine),
        }
    });
    let wide = |p: Precision| if p == Precision::Bf16 { 2.0 } else { 4.0 };
    let gradient_bytes = match (req.precision, trained) {
        (Precision::Mixed, Trained::Full) => 2.0,
        (p, _) => wide(p),
    };
    let sreq = TrainSpeedRequest {
        spec,
        params: Params { total: model.counts.total, active: model.counts.active },
        trained,
        quantized,
        checkpointing: req.checkpointing,
        optimizer: req.optimizer,
        trainable,
        state_bytes: wide(req.precision),
        gradient_bytes,
        weight_bytes: if req.precision == Precision::Amp { 4.0 } else { 2.0 } * model.counts.total as f64,
        seq: req.seq,
        micro_batch: req.micro_batch * crate::plan::training::rlhf::sequences_per_prompt(req),
        grad_accum: req.grad_accum,
        parallel: req.parallel,
        nodes: t.nodes,
        inter_node_bytes_per_s: t.inter_node_gb_s * 1e9,
        overlap: !t.no_overlap,
        device: &device,
        efficiency: &efficiency,
        frozen_forwards,
        offloaded_activation_bytes: summary.offloaded_activation_bytes_per_micro_batch as f64,
    };
    let Some(mut s) = train_speed(&sreq, &TrainingEfficiency::defaults(gemm(generation)), basis) else {
        basis.add("training speed", "unknown", "no TFLOPS or link in the GPU catalog: training speed is null");
        return Ok(None);
    };
    if req.mode == Mode::Ppo {
        // The critic trains after the actor, on the same sequences: its step, scaled from the
        // actor's by active parameters (the same model by default: the same step).
        let critic = extra.iter().find(|e| e.0 == ModelRole::Critic).and_then(|e| e.1.as_ref()).unwrap_or(model);
        let ratio = critic.counts.active as f64 / model.counts.active as f64;
        basis.add(
            "critic training step (s)",
            format!("{:.3}", s.step_time_s * ratio),
            "the actor's step × critic/actor active parameters",
        );
        s.step_time_s *= 1.0 + ratio;
        s.flops_per_step *= 1.0 + ratio;
    }
    if let Some(response) = t.response_tokens.filter(|_| rollout) {
        let Some((seconds, flops)) = super::rollout::rollout_s(model, extra, args, req, gpu, response, basis)? else {
            return Ok(None);
        };
        // Every data-parallel rank rolls out its own micro-batches before training on them.
        s.step_time_s += req.grad_accum as f64 * seconds;
        s.flops_per_step += flops * (req.grad_accum * req.parallel.dp()) as f64;
        s.mfu =
            s.flops_per_step / (s.step_time_s * req.parallel.gpus as f64 * device.peak_16bit.map_or(f64::NAN, |p| p.0));
    }
    if let Some(tokens) = t.train_tokens {
        anyhow::ensure!(tokens > 0.0, "--train-tokens {tokens} is invalid: give a positive token count");
        let seconds = tokens / (s.tokens_per_step as f64 / s.step_time_s);
        s.time_to_train_s = Some(seconds);
        if let Some((per_gpu, source)) = gpu_price(gpu) {
            s.cost_usd = Some(seconds / 3600.0 * per_gpu * req.parallel.gpus as f64);
            basis.add("price per GPU-hour (US$)", format!("{per_gpu:.2}"), source);
        }
    }
    Ok(Some(s))
}
