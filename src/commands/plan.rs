//! `headroom plan MODEL [options]`: memory per GPU and the verdict.

use super::render_plan;
use super::source::{resolve, ResolvedModel};
use crate::catalog::gpus::{parse_gpu_arg, Arch, GpuSpec, LinkKind as CatalogLink, PcieGen};
use crate::cli::{AttentionArg, BackendArg, CheckpointingArg, ModeArg, OffloadArg, PlanArgs, SplitArg};
use crate::model::spec::Family;
use crate::model::tensors::TensorDesc;
use crate::plan::basis::BasisLog;
use crate::plan::device::{HostSpeed, UnifiedLimit};
use crate::plan::engine::{GgmlBackend, LayerSet};
use crate::plan::llama_fit;
use crate::plan::throughput::{plan_speed, Calibration, Efficiency, Params, SpeedRequest};
use crate::plan::{
    plan_inference, Device, DeviceSpeed, Engine, EngineOptions, Generation, InferenceRequest, Link, LinkKind, Plan,
    Split, WeightLayout,
};
use crate::quant::{KvFormat, WeightFormat};
use crate::report::{ModelSummary, PlanReport, RequestSummary, Throughput};
use crate::units::{BytesPerSec, FlopsPerSec};
use anyhow::Context;

pub fn run(args: &PlanArgs) -> anyhow::Result<String> {
    Ok(render_plan(&report(args)?, args.format))
}

/// Resolves the model and plans it: the report every output format renders.
pub fn report(args: &PlanArgs) -> anyhow::Result<PlanReport> {
    check_mode_options(args)?;
    anyhow::ensure!(
        args.in_use.is_none() || args.gpu.is_some(),
        "--in-use needs --gpu: it is memory held on those GPUs"
    );
    anyhow::ensure!(args.wired_limit.is_none() || args.gpu.is_some(), "--wired-limit needs --gpu: an Apple silicon id");
    anyhow::ensure!(args.gtt_limit.is_none() || args.gpu.is_some(), "--gtt-limit needs --gpu: an AMD Strix Halo id");
    let model = resolve(&args.model)?;
    let mut report = plan_report(&model, args)?;
    report.basis.extend(llama_fit_hint(&model, args, &report));
    Ok(report)
}

/// Whether `engine` runs on `gpu`'s platform: vLLM on NVIDIA, AMD (ROCm) and Gaudi (vllm-gaudi),
/// not Apple silicon (no Metal backend); ExLlama on NVIDIA and AMD (CUDA/HIP kernels);
/// llama.cpp on NVIDIA, AMD and Apple (CUDA, HIP, Metal), not Gaudi; headroom's engine on
/// NVIDIA Ampere and newer (its kernels are CUDA, prefill attention needs sm_80); mlx-lm on
/// Apple silicon (MLX's CUDA backend is not modelled); transformers everywhere.
pub fn runs_on(engine: Engine, gpu: &GpuSpec) -> anyhow::Result<()> {
    use crate::catalog::gpus::Arch as A;
    let apple = gpu.vendor == crate::catalog::gpus::Vendor::Apple;
    let gaudi = matches!(gpu.arch, A::Gaudi2 | A::Gaudi3);
    let amd = gpu.vendor == crate::catalog::gpus::Vendor::Amd;
    let ok = match engine {
        Engine::Vllm => !apple,
        Engine::Exllama => !apple && !gaudi,
        Engine::LlamaCpp => !gaudi,
        Engine::Headroom => !(apple || gaudi || amd || matches!(gpu.arch, A::Volta | A::Turing)),
        Engine::Mlx => apple,
        Engine::Hf | Engine::Bare | Engine::Litgpt => true,
        // Unsloth's Triton kernels: NVIDIA, AMD (ROCm) and Intel GPUs.
        Engine::Unsloth => !apple && !gaudi,
    };
    anyhow::ensure!(
        ok,
        "--engine {} does not run on {} ({:?}); pick another engine or GPU",
        engine.id(),
        gpu.id,
        gpu.arch
    );
    Ok(())
}

/// Whether `engine` implements `spec`'s architecture. Recurrent hybrids (Qwen3-Next's Gated
/// DeltaNet, Nemotron-H's and Granite 4.0's Mamba-2) run in transformers, vLLM and llama.cpp
/// (`qwen3next`, `nemotron_h`, `granitehybrid`), not in ExLlama (Llama-family only), LitGPT (no
/// recurrent block) or headroom's engine (attention layers only).
pub fn runs_model(engine: Engine, spec: &crate::model::spec::ModelSpec) -> anyhow::Result<()> {
    let hybrid_ok = matches!(engine, Engine::Hf | Engine::Vllm | Engine::LlamaCpp | Engine::Bare | Engine::Mlx);
    let hybrid_family = matches!(spec.family, Family::NemotronH | Family::GraniteMoeHybrid);
    anyhow::ensure!(
        (spec.linear_attention.is_none() && !hybrid_family) || hybrid_ok,
        "--engine {}: {} has recurrent (Gated DeltaNet or Mamba-2) layers, which it does not implement; use --engine hf, vllm, llama.cpp or mlx",
        engine.id(),
        spec.id
    );
    Ok(())
}

/// `--mtp K`: vLLM only, on a checkpoint with multi-token-prediction layers; more draft tokens
/// than layers reuse them in turn, so K must be a multiple of the layer count (vLLM's rule).
fn parse_mtp(args: &PlanArgs, engine: Engine, spec: &crate::model::spec::ModelSpec) -> anyhow::Result<u64> {
    let Some(k) = args.mtp else { return Ok(0) };
    let n = spec.mtp_layers;
    anyhow::ensure!(
        engine == Engine::Vllm,
        "--mtp is vLLM's multi-token-prediction speculative decoding: add --engine vllm"
    );
    anyhow::ensure!(
        n > 0,
        "--mtp: no multi-token-prediction layers modelled for {} (Qwen3-Next, Qwen3.5, DeepSeek-V3 and GLM-4.5 checkpoints)",
        spec.id
    );
    anyhow::ensure!(
        args.split != Some(SplitArg::Layer),
        "--mtp with --split layer is not modelled; use tensor parallel"
    );
    let multiple = if n > 1 { format!(", a multiple of the model's {n} MTP layers above {n}") } else { String::new() };
    anyhow::ensure!(
        (1..=64).contains(&k) && (k <= n || k % n == 0),
        "--mtp {k} is invalid: give 1 to 64 draft tokens{multiple}"
    );
    Ok(k)
}

/// Refuses options the chosen mode would silently ignore: inference knobs on a training plan,
/// training knobs on an inference plan (those with a default count only when changed).
pub fn check_mode_options(args: &PlanArgs) -> anyhow::Result<()> {
    let t = &args.train;
    let training = t.mode != ModeArg::Infer;
    let set = |on: bool, name: &'static str| on.then_some(name);
    let ignored: Vec<&str> = if training {
        [
            set(args.n_gpu_layers.is_some(), "--n-gpu-layers"),
            set(args.ngl_output_last, "--ngl-output-last"),
            set(args.tensor_split.is_some(), "--tensor-split"),
            set(args.n_cpu_moe.is_some(), "--n-cpu-moe"),
            set(args.cpu_moe, "--cpu-moe"),
            set(args.fit, "--fit"),
            set(args.host_memory.is_some(), "--host-memory"),
            set(args.kv_cache.is_some(), "--kv-cache"),
            set(args.logits_all, "--logits-all"),
            set(args.no_prefix_caching, "--no-prefix-caching"),
            set(args.mtp.is_some(), "--mtp"),
            set(args.disable_hybrid_kv_cache_manager, "--disable-hybrid-kv-cache-manager"),
            set(args.cpu_offload_gb.is_some(), "--cpu-offload-gb"),
            set(args.enforce_eager, "--enforce-eager"),
            set(args.max_num_batched_tokens.is_some(), "--max-num-batched-tokens"),
            set(args.max_num_seqs.is_some(), "--max-num-seqs"),
            set(args.split.is_some(), "--split"),
        ]
        .into_iter()
        .flatten()
        .collect()
    } else {
        [
            set(t.lora_rank.is_some(), "--lora-rank"),
            set(t.reference.is_some(), "--reference"),
            set(t.critic.is_some(), "--critic"),
            set(t.reward.is_some(), "--reward"),
            set(t.response_tokens.is_some(), "--response-tokens"),
            set(t.train_tokens.is_some(), "--train-tokens"),
            set(t.loss_chunk.is_some(), "--loss-chunk"),
            set(t.zero != 0, "--zero"),
            set(t.tp != 1, "--tp"),
            set(t.pp != 1, "--pp"),
            set(t.grad_accum != 1, "--grad-accum"),
            set(t.nodes != 1, "--nodes"),
            set(t.no_overlap, "--no-overlap"),
            set(t.no_autocast, "--no-autocast"),
            set(t.checkpointing.is_some_and(|c| c != CheckpointingArg::None), "--checkpointing"),
            set(t.offload != OffloadArg::None, "--offload"),
            set(t.rollout_engine != "hf", "--rollout-engine"),
        ]
        .into_iter()
        .flatten()
        .collect()
    };
    // vLLM's own flags need vLLM whatever the format (`fit` would otherwise skip every format).
    let vllm = args.engine.as_deref().map(Engine::parse).transpose()? == Some(Engine::Vllm);
    for (on, option) in [(args.enforce_eager, "--enforce-eager"), (args.cpu_offload_gb.is_some(), "--cpu-offload-gb")] {
        anyhow::ensure!(training || !on || vllm, "{option} is a vLLM option: add --engine vllm or drop it");
    }
    if let Some(gib) = args.in_use {
        anyhow::ensure!(
            gib.is_finite() && gib >= 0.0,
            "--in-use {gib:.3} is invalid: give the GiB other processes hold on each GPU (0 or more)"
        );
    }
    let rollouts = matches!(t.mode, ModeArg::Ppo | ModeArg::Grpo | ModeArg::BestOfN);
    for (set, option) in
        [(t.rollout_engine != "hf", "--rollout-engine"), (t.response_tokens.is_some(), "--response-tokens")]
    {
        anyhow::ensure!(
            !training || rollouts || !set,
            "{option} applies to ppo, grpo and best-of-n, which generate; drop it with --mode {}",
            mode_id(t.mode)
        );
    }
    anyhow::ensure!(
        !training || args.gpu_memory_utilization.is_none() || t.rollout_engine == "vllm",
        "--gpu-memory-utilization applies to a colocated vLLM rollout engine in training plans: add --rollout-engine vllm or drop it"
    );
    match (ignored.first(), training) {
        (Some(o), true) => anyhow::bail!("{o} applies to inference plans; drop it with --mode {}", mode_id(t.mode)),
        (Some(o), false) => {
            anyhow::bail!("{o} applies to training plans; add --mode (full, lora, qlora, ...) or drop it")
        }
        (None, _) => Ok(()),
    }
}

fn mode_id(m: ModeArg) -> String {
    use clap::ValueEnum;
    m.to_possible_value().map_or_else(|| format!("{m:?}"), |v| v.get_name().to_string())
}

/// Builds the request from the arguments and plans it.
pub fn plan_report(model: &ResolvedModel, args: &PlanArgs) -> anyhow::Result<PlanReport> {
    if args.train.mode != ModeArg::Infer {
        return super::train::train_report(model, args);
    }
    let gpu = args.gpu.as_deref().map(parse_gpu_arg).transpose()?;
    plan_report_on(model, args, gpu, load_calibration(args)?.as_ref())
}

/// Whether `engine` builds `model`'s vision tower: not where the engine leaves it out or the user
/// serves text only (llama.cpp without --mmproj, vLLM with no image per prompt).
pub fn keeps_vision(engine: Engine, model: &ResolvedModel, text_only: bool) -> anyhow::Result<bool> {
    anyhow::ensure!(
        !text_only || model.tensors.iter().any(|t| t.role.is_vision()),
        "--text-only: {} has no vision encoder to leave out; drop it",
        model.spec.id
    );
    Ok(engine.builds_vision_tower() && !text_only)
}

/// LitGPT builds lm_head and the embedding as two matrices even for tied checkpoints.
fn unties(engine: Engine, model: &ResolvedModel) -> bool {
    engine.unties_embeddings() && model.spec.tie_word_embeddings
}

/// The tensors `engine` builds from `model`: its inventory, less the vision tower unless
/// `vision`, plus a separate lm_head where the engine unties a tied checkpoint; LitGPT's fused
/// QKV as its q, k and v parts (`unfused_qkv`).
pub fn built_tensors(engine: Engine, model: &ResolvedModel, vision: bool) -> Vec<TensorDesc> {
    let mut tensors = model.tensors.clone();
    if !vision {
        tensors.retain(|t| !t.role.is_vision());
    }
    if unties(engine, model) {
        tensors.push(crate::model::tensors::output_matrix(&model.spec));
    }
    if engine == Engine::Litgpt {
        tensors = crate::model::tensors::unfused_qkv(&model.spec, &tensors);
    }
    tensors
}

/// Reads `--calibration FILE`, if given: a calibration file (plan/throughput/efficiency.rs) or a
/// `headroom bench --json` profile, whose achieved copy bandwidth and bf16 GEMM rate calibrate
/// the GPU it ran on.
pub fn load_calibration(args: &PlanArgs) -> anyhow::Result<Option<Calibration>> {
    let Some(path) = &args.calibration else { return Ok(None) };
    let text = std::fs::read_to_string(path).with_context(|| format!("reading calibration {}", path.display()))?;
    let mut value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("calibration {} is not JSON", path.display()))?;
    if value.get("results").is_some() && value.get("schema_version").is_some() {
        value = calibration_from_bench(&value).with_context(|| {
            format!("bench profile {} has no catalog GPU or no copy / bf16 GEMM result", path.display())
        })?;
    }
    let mut cal: Calibration = serde_json::from_value(value)
        .with_context(|| format!("calibration {} does not match the documented shape", path.display()))?;
    // GPUs may be keyed by an alias (`strix-halo`): the planner looks them up by catalog id.
    let catalog = crate::catalog::gpus::GpuCatalog::builtin();
    cal.gpus = std::mem::take(&mut cal.gpus)
        .into_iter()
        .map(|(key, g)| (catalog.get(&key).map_or(key, |spec| spec.id.clone()), g))
        .collect();
    if let Some(read) = cal.host.as_ref().and_then(|h| h.read_gb_s) {
        anyhow::ensure!(
            read.is_finite() && (0.1..=20_000.0).contains(&read),
            "calibration {}: host.read_gb_s {read} is out of range (0.1 to 20,000 GB/s)",
            path.display()
        );
    }
    Ok(Some(cal))
}

/// The calibration a bench profile implies: achieved copy GB/s and bf16 GEMM TFLOPS of its GPU,
/// and the host RAM's read bandwidth where the profile has it.
fn calibration_from_bench(profile: &serde_json::Value) -> Option<serde_json::Value> {
    let gpu = profile.get("catalog_id")?.as_str()?;
    let results = profile.get("results")?.as_array()?;
    let achieved = |name: &str, field: &str| {
        results.iter().find(|r| r["name"] == name && r["check"]["passed"] == true).and_then(|r| r[field].as_f64())
    };
    let bandwidth = achieved("bandwidth copy", "achieved_gb_s")?;
    let gemm = achieved("gemm bf16 8192³", "achieved_tflops")?;
    let device = profile["device"]["name"].as_str().unwrap_or("unknown GPU");
    let mut cal = serde_json::json!({
        "description": format!("headroom bench on {device}"),
        "gpus": { gpu: { "bandwidth_gb_s": bandwidth, "bf16_tflops": gemm } },
    });
    if let Some(read) = profile.pointer("/host_memory/read_gb_s").and_then(|v| v.as_f64()) {
        cal["host"] = serde_json::json!({ "read_gb_s": read });
    }
    Some(cal)
}

/// Plans on `gpu` (ignoring `args.gpu`), with an already loaded calibration.
pub fn plan_report_on(
    model: &ResolvedModel,
    args: &PlanArgs,
    gpu: Option<(&'static GpuSpec, u32)>,
    calibration: Option<&Calibration>,
) -> anyhow::Result<PlanReport> {
    let mut report = if args.train.mode != ModeArg::Infer {
        super::train::train_report_on(model, args, gpu)?
    } else {
        inference_report_on(model, args, gpu, calibration)?
    };
    if let Some((gpu, _)) = gpu {
        super::track_record::attach(&mut report, gpu);
    }
    Ok(report)
}

fn inference_report_on(
    model: &ResolvedModel,
    args: &PlanArgs,
    gpu: Option<(&'static GpuSpec, u32)>,
    calibration: Option<&Calibration>,
) -> anyhow::Result<PlanReport> {
    let spec = &model.spec;
    let mut format = match &args.weights {
        Some(w) => WeightFormat::parse(w)?,
        None => model.default_format()?,
    };
    // A local file's stored bytes win over formulas unless --weights asks for another format.
    let from_file = model.file.as_ref().filter(|_| args.weights.is_none());
    let is_gguf = from_file.map_or(matches!(format, WeightFormat::Gguf(_)), |f| f.model.gguf.is_some());
    let engine = match &args.engine {
        Some(e) => Engine::parse(e)?,
        None if is_gguf => Engine::LlamaCpp,
        None if matches!(format, WeightFormat::Quantized(q) if q.is_mlx()) => Engine::Mlx,
        None => Engine::Hf,
    };
    anyhow::ensure!(
        engine != Engine::Unsloth,
        "--engine unsloth plans fine-tuning: add --mode lora or --mode qlora (inference: --engine hf)"
    );
    anyhow::ensure!(
        args.attention != AttentionArg::Xformers,
        "--attention xformers is Unsloth's training attention: plan inference with flash or eager"
    );
    if let Some((g, _)) = gpu {
        runs_on(engine, g).map_err(|e| match &args.engine {
            None if engine == Engine::Mlx => anyhow::anyhow!(
                "{}: {} weights run in mlx-lm, on Apple silicon only; plan a Mac (headroom gpus lists them), or the model in another format with --weights (e.g. bf16)",
                spec.id,
                format.id()
            ),
            _ => e,
        })?;
    }
    runs_model(engine, spec)?;
    let mtp_tokens = parse_mtp(args, engine, spec)?;
    if args.cpu_moe || args.n_cpu_moe.is_some() {
        let flag = if args.cpu_moe { "--cpu-moe" } else { "--n-cpu-moe" };
        anyhow::ensure!(engine == Engine::LlamaCpp, "{flag} is a llama.cpp option: add --engine llama.cpp");
        anyhow::ensure!(
            spec.moe.is_some(),
            "{flag}: {} has no routed experts to keep in host RAM; use --n-gpu-layers",
            spec.id
        );
    }
    if args.fit {
        anyhow::ensure!(engine == Engine::LlamaCpp, "--fit is llama.cpp's: add --engine llama.cpp");
        anyhow::ensure!(gpu.is_some(), "--fit searches a GPU's free memory: add --gpu");
    }
    if args.prefill_step_size.is_some() {
        anyhow::ensure!(engine == Engine::Mlx, "--prefill-step-size is an mlx-lm option: add --engine mlx");
    }
    if args.disable_hybrid_kv_cache_manager {
        anyhow::ensure!(
            engine == Engine::Vllm,
            "--disable-hybrid-kv-cache-manager is a vLLM option: add --engine vllm"
        );
        anyhow::ensure!(
            !crate::plan::kv::hybrid(spec),
            "--disable-hybrid-kv-cache-manager: vLLM cannot cache {}'s recurrent layers beside its attention without its hybrid KV cache manager; drop the option",
            spec.id
        );
    }
    // A checkpoint the engine cannot run as published is planned as the file it converts to.
    let converted = engine
        .gguf_for_checkpoint(format)
        .filter(|_| args.weights.is_none() && from_file.is_none())
        .map(|(gguf, why)| (std::mem::replace(&mut format, gguf), why));
    if from_file.is_none() {
        engine
            .loads(format)
            .map_err(|why| anyhow::anyhow!("--engine {} with --weights {}: {why}", engine.id(), format.id()))?;
    }
    // The cache defaults to the compute dtype: bf16, or f16 in llama.cpp.
    let default_kv = if engine == Engine::LlamaCpp { "fp16" } else { "bf16" };
    let kv = KvFormat::parse(args.kv_cache.as_deref().unwrap_or(default_kv))?;
    engine
        .stores_kv(kv)
        .map_err(|why| anyhow::anyhow!("--engine {} with --kv-cache {}: {why}", engine.id(), kv.id()))?;
    anyhow::ensure!(
        args.quantized_kv_start.is_none() || kv.mlx_bits().is_some(),
        "--quantized-kv-start applies to mlx-lm's quantized cache: add --engine mlx --kv-cache mlx-4bit (or mlx-8bit)"
    );
    // llama.cpp's --fit starts from the trained context when -c is unset.
    let context = args.context.unwrap_or(if args.fit { spec.max_context } else { 4096.min(spec.max_context) });
    if let Some((gpu, count)) = gpu {
        check_per_machine(gpu, count)?;
    }
    let device = gpu.map(|(gpu, count)| device_in_use(gpu, count, args)).transpose()?;
    let bytes_of = |t: &TensorDesc| format.tensor_bytes_with_head(t, spec, engine.quantizes_lm_head());
    let vision = keeps_vision(engine, model, args.text_only)?;
    let mut weights = match from_file {
        Some(file) => {
            let mut layout = file.layout.clone();
            if !vision {
                layout.vision = crate::units::Bytes::ZERO;
            }
            if unties(engine, model) {
                layout.output += bytes_of(&crate::model::tensors::output_matrix(spec));
            }
            layout
        }
        None => WeightLayout::from_inventory(spec.num_layers, &built_tensors(engine, model, vision), bytes_of),
    };
    if mtp_tokens > 0 {
        weights.drafter = crate::model::tensors::mtp_inventory(spec).iter().map(bytes_of).sum();
    }
    let weights_label = from_file.map_or_else(|| format.id().to_string(), |f| f.label.clone());
    let mut options = EngineOptions {
        gpu_memory_utilization: args.gpu_memory_utilization.unwrap_or(EngineOptions::default().gpu_memory_utilization),
        block_size: args.block_size,
        max_num_batched_tokens: args.max_num_batched_tokens,
        max_num_seqs: args.max_num_seqs,
        n_ubatch: args.ubatch,
        gpu_layers: args.n_gpu_layers,
        ngl_output_last: args.ngl_output_last,
        cpu_moe: LayerSet::first(if args.cpu_moe {
            spec.num_layers
        } else {
            args.n_cpu_moe.unwrap_or(0).min(spec.num_layers)
        }),
        layer_split: None,
        flash_attention: args.attention == AttentionArg::Flash,
        logits_all_positions: args.logits_all,
        prefix_caching: !args.no_prefix_caching,
        mtp_tokens,
        hybrid_kv_cache_manager: !args.disable_hybrid_kv_cache_manager,
        cpu_offload_bytes: cpu_offload_bytes(args, engine)?,
        prefill_step_size: args.prefill_step_size.unwrap_or(crate::plan::engine::MLX_PROMPT_CHUNK),
        quantized_kv_start: args.quantized_kv_start.unwrap_or(crate::plan::engine::MLX_QUANTIZED_KV_START),
        ggml_backend: args.backend.map(BackendArg::ggml),
        enforce_eager: args.enforce_eager,
    };
    if let Some(shares) = &args.tensor_split {
        options.layer_split = Some(tensor_split(shares, &options, spec, engine, gpu.map_or(1, |g| g.1), args.split)?);
    }
    let mut req = InferenceRequest {
        spec,
        weights: &weights,
        format,
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
    let fitted = args.fit.then(|| apply_llama_fit(&mut req, args)).transpose()?;
    let mut plan = plan_inference(&req)?;
    plan.basis.extend(fitted.into_iter().flatten());
    if let Some((native, why)) = converted {
        plan.basis.push(crate::plan::Basis {
            name: "weights as the engine runs them".into(),
            value: format!("{} (the checkpoint is {})", format.id(), native.id()),
            source: why.into(),
        });
    }
    let throughput = match gpu {
        Some((gpu, _)) => speed(&req, &mut plan, gpu, model, args, calibration)?,
        None => Throughput::default(),
    };
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
            context: req.context,
            batch: args.batch,
            engine: engine.id().to_string(),
            mode: "infer".to_string(),
            backend: req.options.ggml_backend.map(|b| b.id().to_string()),
        },
        memory: plan.memory,
        per_gpu: plan.per_gpu,
        fit: plan.fit,
        throughput,
        vllm: plan.vllm,
        host: plan.host,
        training: None,
        training_speed: None,
        basis: plan.basis,
    })
}

/// llama.cpp's `-ts`: the units on the GPUs (layers, then the output layer) split by `shares`.
fn tensor_split(
    shares: &[f32],
    options: &EngineOptions,
    spec: &crate::model::spec::ModelSpec,
    engine: Engine,
    gpus: u32,
    split: Option<SplitArg>,
) -> anyhow::Result<Vec<u64>> {
    anyhow::ensure!(engine == Engine::LlamaCpp, "--tensor-split is a llama.cpp option: add --engine llama.cpp");
    anyhow::ensure!(
        split != Some(SplitArg::Tensor),
        "--tensor-split with --split tensor (llama.cpp's row split) shares rows, which is not modelled: drop one"
    );
    anyhow::ensure!(
        shares.len() == gpus as usize,
        "--tensor-split gives {} shares for {gpus} GPU(s): give one per GPU (--gpu ID:COUNT)",
        shares.len()
    );
    anyhow::ensure!(
        shares.iter().all(|s| s.is_finite() && *s >= 0.0) && shares.iter().sum::<f32>() > 0.0,
        "--tensor-split {shares:?}: give shares of 0 or more, not all 0"
    );
    let units = options.host_placement(spec.num_layers).units(spec.num_layers);
    Ok(crate::plan::engine::llama_cpp_runs(units, shares))
}

/// What llama.cpp's `--fit` may change for these options on `req`'s GPUs, and how much it keeps
/// free. A row split stops the placement only on several GPUs, as in fit.cpp.
fn fit_settings(args: &PlanArgs, req: &InferenceRequest) -> llama_fit::FitSettings {
    use llama_fit::{FitSettings, DEFAULT_MARGIN_MIB, DEFAULT_MIN_CONTEXT};
    let gpus = req.device.as_ref().map_or(1, |d| d.count);
    FitSettings {
        margin: crate::units::Bytes::from_mib(args.fit_target.unwrap_or(DEFAULT_MARGIN_MIB)),
        min_context: args.fit_ctx.unwrap_or(DEFAULT_MIN_CONTEXT),
        context_auto: args.context.is_none(),
        placement_auto: args.n_gpu_layers.is_none()
            && args.n_cpu_moe.is_none()
            && !args.cpu_moe
            && args.tensor_split.is_none()
            && !(args.split == Some(SplitArg::Tensor) && gpus > 1),
    }
}

/// For the user's llama.cpp plan that does not fit: what `--fit` would load at the same context
/// (as if `-c` were given), when that fits. Only the plan a user reads gets it: `max` and `fit`
/// plan many candidates that do not fit and skip this search.
fn llama_fit_hint(model: &ResolvedModel, args: &PlanArgs, report: &PlanReport) -> Option<crate::plan::Basis> {
    let short = report.request.engine == Engine::LlamaCpp.id() && report.fit.as_ref().is_some_and(|f| !f.fits);
    if !short || args.fit || args.train.mode != ModeArg::Infer {
        return None;
    }
    let fitted =
        plan_report(model, &PlanArgs { fit: true, context: Some(report.request.context), ..args.clone() }).ok()?;
    let stopped = fitted.basis.iter().any(|b| b.name == llama_fit::STOPPED);
    if stopped || !fitted.fit.is_some_and(|f| f.fits) {
        return None;
    }
    let row = fitted.basis.into_iter().find(|b| b.name == llama_fit::FITTED)?;
    Some(crate::plan::Basis { name: llama_fit::WOULD_LOAD.into(), ..row })
}

/// Runs llama.cpp's `--fit` on the request and applies what it chooses. Returns the basis rows
/// that say so.
fn apply_llama_fit(req: &mut InferenceRequest, args: &PlanArgs) -> anyhow::Result<Vec<crate::plan::Basis>> {
    let settings = fit_settings(args, req);
    let outcome = llama_fit::fit(req, &settings)?;
    outcome.apply(req);
    let mut rows = vec![crate::plan::Basis {
        name: llama_fit::FITTED.into(),
        value: llama_fit::flags(req),
        source: format!(
            "common_fit_params (llama-server, llama-cli; -fitt {} MiB, -fitc {}): {}. Not modelled: part of one more MoE layer placed after that",
            settings.margin.0 >> 20,
            settings.min_context,
            outcome.steps.join("; ")
        ),
    }];
    if let Some(why) = outcome.failure {
        rows.push(crate::plan::Basis {
            name: llama_fit::STOPPED.into(),
            value: "placement unchanged".into(),
            source: why,
        });
    }
    Ok(rows)
}

/// `--cpu-offload-gb` in bytes: a vLLM option, at most 1 TiB per GPU.
fn cpu_offload_bytes(args: &PlanArgs, engine: Engine) -> anyhow::Result<u64> {
    let Some(gib) = args.cpu_offload_gb else { return Ok(0) };
    anyhow::ensure!(engine == Engine::Vllm, "--cpu-offload-gb is a vLLM option: add --engine vllm");
    anyhow::ensure!(
        gib.is_finite() && (0.0..=1024.0).contains(&gib),
        "--cpu-offload-gb {gib} is invalid: give the GiB of each GPU's weights to keep in host memory (0 to 1024)"
    );
    Ok((gib * (1u64 << 30) as f64) as u64)
}

/// Refuses more GPUs in one machine than the product holds: a unified-memory machine (a Mac, a
/// Strix Halo) and a DGX Spark are one GPU each (`max_per_node`).
pub(crate) fn check_per_machine(gpu: &GpuSpec, count: u32) -> anyhow::Result<()> {
    anyhow::ensure!(
        count == 1 || !gpu.unified_memory,
        "--gpu {}:{count}: a unified-memory machine has one GPU; plan --gpu {} (several machines over llama.cpp's RPC are not modelled)",
        gpu.id,
        gpu.id
    );
    if let Some(max) = gpu.max_per_node.filter(|&max| count > max) {
        anyhow::bail!(
            "--gpu {}:{count}: one machine holds at most {max} {}; plan --gpu {}:{max} (machines joined over the network are not modelled for inference; training takes --nodes)",
            gpu.id,
            gpu.id,
            gpu.id
        );
    }
    Ok(())
}

/// The planned GPUs at the share of unified memory `--wired-limit` (Apple silicon) or
/// `--gtt-limit` (AMD Strix Halo) sets, less what `--in-use` says other processes hold on each.
pub(crate) fn device_in_use(gpu: &GpuSpec, count: u32, args: &PlanArgs) -> anyhow::Result<Device> {
    let mut d = device(gpu, count);
    for (gib, kind) in [(args.wired_limit, UnifiedLimit::MacosWiredLimit), (args.gtt_limit, UnifiedLimit::AmdgpuGtt)] {
        let Some(gib) = gib else { continue };
        let (flag, platform) = (kind.flag(), kind.platform());
        let Some(total) = d.unified_memory.filter(|_| d.unified_limit() == Some(kind)) else {
            anyhow::bail!("{flag} applies to {platform}'s unified memory, not to {}: drop it", gpu.id)
        };
        anyhow::ensure!(
            gib.is_finite() && gib > 0.0 && gib <= total.gib(),
            "{flag} {gib:.3} is invalid: give the GiB {platform} lets the GPU use (above 0, at most the {:.2} GiB of {})",
            total.gib(),
            gpu.id
        );
        d.capacity = crate::units::Bytes((gib * (1u64 << 30) as f64) as u64);
    }
    if let Some(gib) = args.in_use {
        let cap = d.capacity.gib();
        anyhow::ensure!(
            gib.is_finite() && (0.0..cap).contains(&gib),
            "--in-use {gib:.3} is invalid: give the GiB other processes hold on each {} (0 to {cap:.2})",
            gpu.id
        );
        d.in_use = crate::units::Bytes((gib * (1u64 << 30) as f64) as u64);
    }
    Ok(d)
}

/// An engine's efficiency defaults on a catalog GPU: its generation's (and llama.cpp's backend's),
/// with the bandwidth fraction of a published device copy where the catalog has one, and
/// llama.cpp's CUDA kernels' per-SM limits (`cap_for_llama_cuda`).
pub(crate) fn efficiency_on(
    gpu: &GpuSpec,
    engine: crate::plan::engine::Engine,
    generation: Generation,
    ggml_backend: Option<GgmlBackend>,
) -> Efficiency {
    let mut efficiency = Efficiency::defaults(engine, generation);
    efficiency.on_ggml_backend(engine, generation, ggml_backend);
    if let (Some(copy), Some(note)) = (gpu.copy_gb_s, &gpu.copy_note) {
        efficiency.bandwidth = Efficiency::of_measured_copy(copy, gpu.bandwidth_gb_s, note);
    }
    cap_for_llama_cuda(&mut efficiency, gpu, engine, generation);
    efficiency
}

/// llama.cpp's CUDA kernels' per-SM limits on `gpu` (`Efficiency::cap_llama_cuda`), where its
/// SM·GHz is known; applied again after a calibration, whose measured copy bandwidth does not
/// lift the kernels' own limit.
fn cap_for_llama_cuda(efficiency: &mut Efficiency, gpu: &GpuSpec, engine: Engine, generation: Generation) {
    let cuda = GgmlBackend::native(generation) == Some(GgmlBackend::Cuda);
    let sm_ghz = crate::plan::throughput::efficiency::sm_ghz(gpu.tflops.fp32, gpu.compute_capability.as_deref());
    if let Some(sm_ghz) = sm_ghz.filter(|_| engine == Engine::LlamaCpp && cuda) {
        let speed = device_speed(gpu);
        let peak = speed.peak_16bit_fp16_acc.or(speed.peak_16bit).map(|p| p.0 / 1e12);
        efficiency.cap_llama_cuda(sm_ghz, gpu.bandwidth_gb_s, peak);
    }
}

/// The planner's view of `count` catalog GPUs: capacity, generation and compute capability.
pub fn device(gpu: &GpuSpec, count: u32) -> Device {
    let generation = match gpu.arch {
        Arch::Volta => Generation::Volta,
        Arch::Turing => Generation::Turing,
        Arch::Ampere => Generation::Ampere,
        Arch::Ada => Generation::Ada,
        Arch::Hopper => Generation::Hopper,
        Arch::Blackwell => Generation::Blackwell,
        Arch::AppleM1 | Arch::AppleM2 | Arch::AppleM3 | Arch::AppleM4 | Arch::AppleM5 => Generation::Apple,
        Arch::Rdna3 | Arch::Rdna35 | Arch::Rdna4 => Generation::Rdna,
        Arch::Cdna2 | Arch::Cdna3 | Arch::Gaudi2 | Arch::Gaudi3 => Generation::Other,
    };
    Device {
        id: gpu.id.clone(),
        capacity: crate::units::Bytes(gpu.usable_bytes()),
        reserved: crate::units::Bytes(gpu.reserved_bytes()),
        in_use: crate::units::Bytes::ZERO,
        // What a raised limit can reach: a Mac's whole pool; on Strix Halo the RAM Linux sees,
        // twice its default GTT limit (125.65 of 128 GiB).
        unified_memory: gpu.unified_memory.then(|| match gpu.arch {
            Arch::Rdna35 => crate::units::Bytes(2 * gpu.usable_bytes()),
            _ => crate::units::Bytes(gpu.memory_bytes()),
        }),
        count,
        generation,
        compute_capability: gpu.compute_capability.as_deref().and_then(|cc| {
            let (major, minor) = cc.split_once('.')?;
            Some((major.parse().ok()?, minor.parse().ok()?))
        }),
    }
}

/// The speed of a memory plan on `gpu`; appends its constants to the plan's basis.
fn speed(
    req: &InferenceRequest,
    plan: &mut Plan,
    gpu: &GpuSpec,
    model: &ResolvedModel,
    args: &PlanArgs,
    calibration: Option<&Calibration>,
) -> anyhow::Result<Throughput> {
    let quantized = req.format.is_quantized();
    let device = device_speed(gpu);
    let generation = req.device.as_ref().map_or(Generation::Other, |d| d.generation);
    let mut efficiency = efficiency_on(gpu, req.engine, generation, req.options.ggml_backend);
    if req.options.enforce_eager {
        efficiency.without_cuda_graphs(req.engine);
    }
    // The host: as given, else as `headroom bench` measured it (planned at the fraction of a
    // measured read, unless the calibration sets one), else a typical desktop.
    let measured_read = calibration.and_then(|c| c.host.as_ref()).and_then(|h| h.read_gb_s);
    let host = match (&args.host_memory, measured_read) {
        (Some(h), _) => h.clone(),
        (None, Some(gbs)) => {
            efficiency.host_bandwidth = Efficiency::of_measured_host_read();
            HostSpeed::measured_read(gbs)
        }
        (None, None) => HostSpeed::assumed_desktop(),
    };
    if let Some(cal) = calibration {
        efficiency.calibrate(cal, req.engine, &gpu.id, (device.bandwidth.0, device.peak_16bit.map(|p| p.0)));
        anyhow::ensure!(efficiency.is_valid(), "calibration gives a fraction outside (0, 1] or a negative time");
        cap_for_llama_cuda(&mut efficiency, gpu, req.engine, generation);
    }
    let params = Params { total: model.counts.total, active: model.counts.active };
    let sreq = SpeedRequest {
        inference: req,
        plan,
        device: &device,
        efficiency: &efficiency,
        params,
        quantized,
        host: Some(&host),
    };
    let mut basis = BasisLog::default();
    let s = plan_speed(&sreq, &mut basis);
    plan.basis.extend(basis.0);
    Ok(Throughput {
        prefill_tokens_per_s: s.prefill_tokens_per_s,
        decode_tokens_per_s: s.decode_tokens_per_s,
        time_to_first_token_s: s.time_to_first_token_s,
        train_tokens_per_s: None,
        inter_token_latency_s: s.inter_token_latency_s,
        decode_tokens_per_s_per_sequence: s.decode_tokens_per_s_per_sequence,
        max_concurrency: plan.vllm.as_ref().map(|v| v.max_concurrency),
        ..Throughput::default()
    })
}

/// What the speed model needs of a catalog GPU. GeForce cards run fp16-accumulate GEMMs at twice
/// the FP32-accumulate rate the catalog lists (data/gpus.toml rules); NVLink and vendor-link
/// totals are bidirectional, so one direction is half.
pub fn device_speed(gpu: &GpuSpec) -> DeviceSpeed {
    let flops = |t: Option<f64>| t.map(|t| FlopsPerSec(t * 1e12));
    let peak_16bit = flops(gpu.tflops.bf16.or(gpu.tflops.fp16));
    let geforce = gpu.name.contains("GeForce");
    let link = gpu.interconnect.as_ref().map(|i| {
        let (kind, per_direction) = match i.kind {
            CatalogLink::Nvlink2 | CatalogLink::Nvlink3 | CatalogLink::Nvlink4 | CatalogLink::Nvlink5 => {
                (LinkKind::Nvlink, i.bandwidth_gb_s / 2.0)
            }
            CatalogLink::Pcie3 | CatalogLink::Pcie4 | CatalogLink::Pcie5 => (LinkKind::Pcie, i.bandwidth_gb_s),
            CatalogLink::InfinityFabric | CatalogLink::Roce => (LinkKind::Other, i.bandwidth_gb_s / 2.0),
        };
        Link { kind, bandwidth_per_direction: BytesPerSec(per_direction * 1e9) }
    });
    // The host link: a PCIe interconnect entry counts the card's lanes; otherwise x16 at the
    // catalog's generation.
    let pcie_interconnect = gpu
        .interconnect
        .as_ref()
        .filter(|i| matches!(i.kind, CatalogLink::Pcie3 | CatalogLink::Pcie4 | CatalogLink::Pcie5));
    let host_link = pcie_interconnect.map(|i| i.bandwidth_gb_s).or(gpu.pcie.map(PcieGen::x16_gb_s));
    DeviceSpeed {
        host_link: host_link.map(|gbs| BytesPerSec(gbs * 1e9)),
        bandwidth: BytesPerSec(gpu.bandwidth_bytes_per_s()),
        peak_16bit,
        peak_16bit_fp16_acc: flops(gpu.tflops.fp16.filter(|_| geforce).map(|t| 2.0 * t)),
        peak_8bit: flops(gpu.tflops.fp8.or(gpu.tflops.int8)),
        peak_fp32: flops(gpu.tflops.fp32),
        link,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::gpus::GpuCatalog;

    /// The llama.cpp CUDA caps only ever lower llama.cpp's fractions, on NVIDIA GPUs; every other
    /// engine gets its generation's defaults (with a published copy's bandwidth) on every GPU.
    #[test]
    fn llama_cuda_caps_only_lower_llama_cpp_fractions() {
        let mut capped = 0;
        for gpu in GpuCatalog::builtin().iter() {
            let generation = device(gpu, 1).generation;
            for engine in Engine::ALL {
                let mut uncapped = Efficiency::defaults(engine, generation);
                if let (Some(copy), Some(note)) = (gpu.copy_gb_s, &gpu.copy_note) {
                    uncapped.bandwidth = Efficiency::of_measured_copy(copy, gpu.bandwidth_gb_s, note);
                }
                let e = efficiency_on(gpu, engine, generation, None);
                if engine != Engine::LlamaCpp || gpu.vendor != crate::catalog::gpus::Vendor::Nvidia {
                    assert_eq!(e, uncapped, "{} {:?}", gpu.id, engine);
                    continue;
                }
                assert!(e.bandwidth.value <= uncapped.bandwidth.value, "{}", gpu.id);
                assert!(e.prefill_compute.value <= uncapped.prefill_compute.value, "{}", gpu.id);
                capped += (e != uncapped) as u32;
            }
        }
        // A100 (three), H100 (PCIe, SXM), H200, GH200, B200, V100, RTX 3060 at least.
        assert!(capped >= 10, "{capped}");
    }
}
