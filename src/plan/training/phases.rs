//! The moments of a training step and the plan built from them.
//!
//! Measured on an H200 (transformers 5.17, torch 2.11; data/measurements/device/2026-11-27-h200/
//! train.json), for Llama-2-7B with LoRA the backward peak is its first moment (all saved
//! activations + the fp32 loss gradients), for full fine-tuning in bf16 it is the optimizer step
//! (all gradients + one foreach copy), and for TinyLlama under AMP it is again the backward start.
//! The model below evaluates every such moment and reports the largest.

use super::activations::{self as act, ActivationSetup};
use super::state::{model_state, ModelState};
use super::{
    rlhf, Checkpointing, Method, Mode, ModelInput, ModelRole, ModelShare, PhaseMemory, Precision, TrainingError,
    TrainingRequest, TrainingSummary,
};
use crate::model::tensors::TensorDesc;
use crate::plan::basis::BasisLog;
use crate::plan::device::{Device, Generation};
use crate::plan::engine::{self, Engine};
use crate::plan::{GpuMemory, MemoryBreakdown, Plan};
use crate::quant::{QuantScheme, WeightFormat};
use crate::units::Bytes;

/// Saved activations and transients of one trained model on one stage, per micro-batch.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Profile {
    /// The stage's layers (or their inputs alone under full checkpointing).
    pub layers: u64,
    /// autocast's bf16 weight copies, saved by each micro-batch's graph.
    pub copies: u64,
    /// After the last layer (last stage only).
    pub output: u64,
    pub loss_fwd: u64,
    pub loss_bwd: u64,
    pub layer_fwd: u64,
    /// Backward transient of one layer, including its recomputation under checkpointing.
    pub layer_bwd: u64,
    pub in_flight: u64,
    /// Layer inputs offloaded to host RAM (`Checkpointing::Offload`) per micro-batch.
    pub offloaded: u64,
    /// Unsloth's chunked fused loss, whose chunks shrink with the free memory.
    pub fused_loss: Option<super::unsloth::FusedLoss>,
    /// Buffers the engine keeps for the whole run (Unsloth's global dequantization pair).
    pub buffers: u64,
}

/// Bytes with the total filled in.
pub(super) fn breakdown(mut m: MemoryBreakdown) -> MemoryBreakdown {
    m.total = m.weights
        + m.kv_cache
        + m.activations
        + m.gradients
        + m.optimizer
        + m.workspace
        + m.rollout_engine
        + m.cuda_context;
    m
}

/// Plans training memory on every GPU.
pub fn plan_training(req: &TrainingRequest) -> Result<(Plan, TrainingSummary), TrainingError> {
    validate(req)?;
    let mut basis = BasisLog::default();
    let p = req.parallel;
    let mut stages = Vec::new();
    if req.engine == Engine::Headroom {
        super::headroom::check(req)?;
        let state = model_state(&req.models[0], req.precision, req.optimizer, false, &p, 0)?;
        explain_states(req, &state, &mut basis);
        let (phase, saved) = super::headroom::step(req, &mut basis)?;
        stages.push((phase.clone(), vec![phase], vec![state], saved, Offloaded::default()));
    }
    for stage in 0..if stages.is_empty() { p.pp } else { 0 } {
        let mut scratch = BasisLog::default();
        stages.push(stage_plan(req, stage, if stage == 0 { &mut basis } else { &mut scratch })?);
    }
    let busiest = (0..stages.len()).max_by_key(|&s| stages[s].0.memory.total).unwrap_or(0);
    let (peak, phases, states, saved, _) = stages[busiest].clone();
    // The first stage holds the most micro-batches in flight: the most offloaded activations.
    let host_activations = stages.iter().map(|s| s.4.held).max().unwrap_or(0);
    let offloaded_per_micro_batch = stages.iter().map(|s| s.4.per_micro_batch).max().unwrap_or(0);
    let per_stage = p.gpus / p.pp;
    let policy = &req.models[0];
    let mut per_gpu = Vec::new();
    for (s, st) in stages.iter().enumerate() {
        let layers = p.stage_layers(s as u64, policy.spec.num_layers);
        for r in 0..per_stage {
            let gpu_index = (s as u64 * per_stage + r) as u32;
            per_gpu.push(GpuMemory { gpu_index, layers: (layers.start, layers.end), memory: st.0.memory.clone() });
        }
    }
    basis.add("peak phase", &peak.phase, format!("largest moment: {}", peak.moment));
    let models = req
        .models
        .iter()
        .zip(&states)
        .map(|(m, s)| ModelShare {
            role: m.role,
            model: m.spec.id.clone(),
            trainable_parameters: s.trainable,
            weights_bytes: s.weights.0,
            gradients_bytes: s.gradients.0,
            optimizer_bytes: s.optimizer.0,
            host_bytes: s.host.0,
        })
        .collect();
    let paged = states.iter().map(|s| s.paged).sum::<Bytes>();
    let summary = TrainingSummary {
        mode: req.mode,
        trainable_parameters: states.iter().map(|s| s.trainable).sum(),
        peak_phase: peak.phase.clone(),
        phases,
        models,
        saved_activations_bytes: saved,
        host_bytes: states.iter().map(|s| s.host.0).sum::<u64>() + host_activations,
        offloaded_activation_bytes_per_micro_batch: offloaded_per_micro_batch,
        paged_optimizer_bytes: paged.0,
        paged_to_host_bytes: req.device.as_ref().map(|d| {
            let room = d.capacity.0.saturating_sub((peak.memory.total + d.in_use).0);
            paged.0.saturating_sub(room)
        }),
    };
    basis.0.extend(req.device.as_ref().map(Device::capacity_basis));
    // Unified memory gives way to ordinary allocations (on Linux): paged states never make a run fail.
    let fit = req.device.as_ref().map(|d| {
        let fits = peak.memory.total + d.in_use <= d.capacity && rlhf::rollout_engine_starts(req);
        d.fit(fits, d.capacity.0 as i64 - (peak.memory.total + d.in_use).0 as i64)
    });
    Ok((Plan { memory: peak.memory, per_gpu, fit, vllm: None, host: None, basis: basis.0 }, summary))
}

/// A stage's peak, its phases, the model states, the saved activations on the GPU and the
/// activations offloaded to host RAM.
type StagePlan = (PhaseMemory, Vec<PhaseMemory>, Vec<ModelState>, u64, Offloaded);

/// Layer inputs a stage keeps in host RAM (`Checkpointing::Offload`): per micro-batch, and held
/// at once (every in-flight micro-batch's).
#[derive(Clone, Copy, Debug, Default)]
struct Offloaded {
    per_micro_batch: u64,
    held: u64,
}

/// Every phase of one pipeline stage, its peak, the model states and the saved activations.
fn stage_plan(req: &TrainingRequest, stage: u64, log: &mut BasisLog) -> Result<StagePlan, TrainingError> {
    let p = &req.parallel;
    let states = req
        .models
        .iter()
        .map(|m| model_state(m, req.precision, req.optimizer, req.optimizer_in_backward, p, stage))
        .collect::<Result<Vec<_>, _>>()?;
    let generation = req.device.as_ref().map_or(Generation::Hopper, |d| d.generation);
    let ctx = engine::cuda_context(Engine::Hf, generation, None);
    let cublas = engine::torch_cublas_workspace();
    log.add(ctx.name, ctx.bytes.0, ctx.source);
    log.add(
        "cuBLAS workspaces (forward thread + autograd backward thread)",
        2 * cublas.bytes.0,
        "2 × 32 MiB: measured 67,108,864 B beyond weights and states before each step (H200)",
    );
    let base = breakdown(MemoryBreakdown {
        weights: states.iter().map(|s| s.weights).sum(),
        optimizer: states.iter().map(|s| s.optimizer).sum(),
        workspace: Bytes(2 * cublas.bytes.0) + states.iter().map(|s| s.buffers).sum(),
        rollout_engine: rlhf::colocated_engine(req, log),
        cuda_context: ctx.bytes,
        ..Default::default()
    });
    explain_states(req, &states[0], log);
    let tokens = req.seq * req.micro_batch * rlhf::sequences_per_prompt(req);
    let policy = match req.engine {
        Engine::Unsloth => super::unsloth::profile(req, tokens, log),
        _ => profile(req, &req.models[0], stage, tokens, log),
    };
    let base = breakdown(MemoryBreakdown { workspace: base.workspace + Bytes(policy.buffers), ..base });
    let prefix = if req.mode == Mode::Ppo { "actor " } else { "" };
    let mut phases = rlhf::before_training(req, stage, &base, log);
    phases.extend(train_phases(req, prefix, &base, &policy, &states[0]));
    // The critic trains after the actor: their offloaded activations are not held together.
    let held = |f: &Profile| f.in_flight * f.offloaded;
    let mut offloaded = Offloaded { per_micro_batch: policy.offloaded, held: held(&policy) };
    if let Some(i) = req.models.iter().position(|m| m.role == ModelRole::Critic) {
        let critic = profile(req, &req.models[i], stage, tokens, &mut BasisLog::default());
        phases.extend(train_phases(req, "critic ", &base, &critic, &states[i]));
        offloaded.per_micro_batch = offloaded.per_micro_batch.max(critic.offloaded);
        offloaded.held = offloaded.held.max(held(&critic));
    }
    let saved = policy.in_flight * (policy.layers + policy.copies) + policy.output;
    let peak = phases.iter().max_by_key(|ph| ph.memory.total).cloned().expect("a trained model has phases");
    Ok((peak, phases, states, saved, offloaded))
}

fn explain_states(req: &TrainingRequest, s: &ModelState, log: &mut BasisLog) {
    let precision = match req.precision {
        Precision::Mixed => "16-bit weights and gradients, fp32 master + states (LoRA: fp32 adapters)",
        Precision::Bf16 => "pure bf16: weights, gradients and states in bf16, no master",
        Precision::Amp => "fp32 parameters, gradients and states; bf16 autocast compute",
    };
    log.add("precision", format!("{:?}", req.precision).to_lowercase(), precision);
    log.add("optimizer", req.optimizer.id(), req.optimizer.source());
    log.add("trainable parameters (policy)", s.trainable, "full: every tensor; LoRA: r·(in + out) per adapted matrix");
    log.add("optimizer step temporaries (per GPU)", s.step.0, "foreach copy of the states' size; fused: none");
    if req.optimizer.is_paged() {
        log.add(
            "paged optimizer states (unified memory, not in the total)",
            s.paged.0,
            "bitsandbytes cudaMallocManaged m and v of tensors ≥ 100,000 elements: on the GPU while there is room, evicted to host RAM under pressure",
        );
    }
    if req.optimizer_in_backward {
        log.add(
            "gradients held (optimizer in backward)",
            s.gradients.0,
            "each parameter is stepped and its gradient freed as soon as it is complete: the largest one's",
        );
    }
}

/// The saved-activation profile of model `m` on `stage` for `tokens` tokens per micro-batch.
fn profile(req: &TrainingRequest, m: &ModelInput, stage: u64, tokens: u64, log: &mut BasisLog) -> Profile {
    let p = &req.parallel;
    let spec = m.spec;
    let (targets, adapter_bytes) = match &m.method {
        Method::Lora { targets, .. } => (Some(targets), if req.precision == Precision::Bf16 { 2 } else { 4 }),
        _ => (None, 0),
    };
    let setup = ActivationSetup {
        spec,
        base_trainable: m.method == Method::Full,
        targets,
        adapter_bytes,
        lora_dropout: req.lora_dropout > 0.0,
        frozen_saves_input: matches!(m.format, WeightFormat::Quantized(QuantScheme::Nf4 | QuantScheme::Nf4Double)),
        autocast: req.precision == Precision::Amp,
        trainer_autocast: req.precision == Precision::Mixed && req.autocast,
        flash: req.flash_attention || req.checkpointing != Checkpointing::None,
        seq: req.seq,
        litgpt: req.engine == Engine::Litgpt,
        adapter: match m.method {
            Method::Adapter { start_layer, v2, .. } => Some(act::AdapterActivations { start_layer, v2 }),
            _ => None,
        },
    };
    let layers = p.stage_layers(stage, spec.num_layers);
    let last = stage == p.pp - 1;
    let tp = p.tp;
    let per_layer: Vec<u64> = layers.clone().map(|l| act::sum(&act::layer_terms(&setup, l))).collect();
    let largest = per_layer.iter().copied().max().unwrap_or(0);
    let (layer_fwd, mut layer_bwd) = act::layer_transients(&setup);
    let residual = if setup.autocast { 4 } else { 2 };
    let checkpoints = per_layer.len() as u64 * residual * spec.hidden_size;
    let (saved_layers, offloaded) = match req.checkpointing {
        Checkpointing::Full => {
            layer_bwd += largest;
            (checkpoints, 0)
        }
        Checkpointing::Offload => {
            layer_bwd += largest;
            let on_gpu = per_layer.len().min(2) as u64 * residual * spec.hidden_size;
            (on_gpu, checkpoints)
        }
        _ => (per_layer.iter().sum(), 0),
    };
    let chunk = req.loss_chunk.map(|c| c.min(tokens));
    let (loss_fwd, loss_bwd) = match (m.role, chunk) {
        (ModelRole::Critic, _) => (0, 0),
        (_, None) if setup.litgpt => act::litgpt_loss_transients(spec, tp),
        (_, None) => act::loss_transients(spec, tp),
        (_, Some(_)) => act::chunked_loss_transients(spec, tp),
    };
    let loss_tokens = match chunk {
        None if setup.litgpt => act::LITGPT_CHUNK.min(tokens),
        _ => chunk.unwrap_or(tokens),
    };
    let (layer_dequant, head_dequant) = dequantized_transients(req, m, &layers);
    if layer_dequant + head_dequant > 0 {
        log.add(
            "dequantized 4-bit weights (transient, per GPU)",
            format!("{layer_dequant} in a layer, {head_dequant} at lm_head"),
            "largest matrix × bytes per weight of the 16-bit copies bitsandbytes makes in forward and backward",
        );
    }
    let mut out_terms = act::output_terms(&setup, tp, m.role != ModelRole::Critic && chunk.is_none());
    if chunk.is_some() && !setup.base_trainable {
        out_terms.push(("hidden states kept for the chunked loss's recompute", 2 * spec.hidden_size));
    }
    let copies = if setup.autocast { autocast_copies(m, &layers, last) / tp } else { 0 };
    let micro_batches = req.grad_accum;
    let prof = Profile {
        layers: tokens * saved_layers / tp,
        copies,
        output: if last { tokens * act::sum(&out_terms) / tp } else { 0 },
        loss_fwd: if last { loss_tokens * loss_fwd + head_dequant } else { 0 },
        loss_bwd: if last { loss_tokens * loss_bwd + head_dequant } else { 0 },
        layer_fwd: tokens * layer_fwd / tp + layer_dequant,
        layer_bwd: tokens * layer_bwd / tp + layer_dequant,
        in_flight: p.in_flight(stage, micro_batches),
        offloaded: tokens * offloaded / tp,
        fused_loss: None,
        buffers: 0,
    };
    if prof.offloaded > 0 {
        log.add(
            "activations offloaded to host RAM (per GPU)",
            prof.in_flight * prof.offloaded,
            "every layer's input (pinned), copied out in the forward pass and back before its recomputation; two layers' inputs stay on the GPU",
        );
    }
    let sources = ("activations.rs (Korthikanti 2022, per architecture)", "activations.rs");
    log_saved(log, &prof, act::layer_terms(&setup, layers.start), out_terms, tokens, sources);
    prof
}

/// The basis rows of a profile's saved tensors, which every engine's profile shows: per layer and
/// token (`layer`, one layer's), after the layers (`output`), the tokens and the saved total;
/// `sources` name where the layer and the output terms come from.
pub(super) fn log_saved(
    log: &mut BasisLog,
    prof: &Profile,
    layer: Vec<act::Term>,
    output: Vec<act::Term>,
    tokens: u64,
    sources: (&str, &str),
) {
    for (name, bytes) in layer {
        log.add(format!("saved per layer and token: {name}"), bytes, sources.0);
    }
    for (name, bytes) in output {
        log.add(format!("saved per token after the layers: {name}"), bytes, sources.1);
    }
    log.add("tokens per micro-batch", tokens, "seq × micro-batch (× 2 for DPO pairs, × group size for GRPO)");
    log.add(
        "saved activations (per GPU)",
        prof.in_flight * (prof.layers + prof.copies) + prof.output,
        "Σ layers × tokens ÷ tp, × in-flight micro-batches",
    );
}

/// The 16-bit copies a 4-bit base's matmuls make in forward and backward (bitsandbytes
/// `MatMul4Bit` dequantizes the whole weight each time; see `Engine::dequantized_bytes_per_weight`):
/// the stage's largest quantized layer matrix, and lm_head where the engine quantizes it (last
/// stage). Llama-2-7B QLoRA under LitGPT: 4 B × 11,008 × 4,096 = 180 MB in a layer, 4 B × 32,000
/// × 4,096 = 524 MB at lm_head.
fn dequantized_transients(req: &TrainingRequest, m: &ModelInput, layers: &std::ops::Range<u64>) -> (u64, u64) {
    let per_weight = req.engine.dequantized_bytes_per_weight(m.format);
    if per_weight == 0 || m.method == Method::Full {
        return (0, 0);
    }
    let tp = req.parallel.tp;
    let layer = largest_block_matrix(m.tensors, layers);
    let last = layers.end == m.spec.num_layers;
    let head = if last && m.quantized_lm_head { m.spec.vocab_size * m.spec.hidden_size } else { 0 };
    (per_weight * layer / tp, per_weight * head / tp)
}

/// Elements of the largest linear matrix in decoder layers `layers`.
pub(super) fn largest_block_matrix(tensors: &[TensorDesc], layers: &std::ops::Range<u64>) -> u64 {
    tensors
        .iter()
        .filter(|t| t.layer.is_some_and(|l| layers.contains(&(l as u64))) && t.role.is_block_linear())
        .map(|t| t.rows * t.cols)
        .max()
        .unwrap_or(0)
}

/// autocast's bf16 copies of the stage's fp32 linear weights (and lm_head), 2 B per element; a
/// 4-bit linear is dequantized by its own kernel instead (see `dequantized_transients`), and a
/// 4-bit checkpoint's 16-bit lm_head needs no copy.
fn autocast_copies(m: &ModelInput, layers: &std::ops::Range<u64>, last: bool) -> u64 {
    use crate::model::tensors::Role;
    m.tensors
        .iter()
        .filter(|t| match t.layer {
            Some(l) => layers.contains(&(l as u64)) && t.role.is_block_linear(),
            None => last && t.role == Role::Output,
        })
        .filter(|t| {
            matches!(m.format.tensor_type(t, m.spec), crate::quant::StoredType::Float(crate::quant::FloatType::F32))
        })
        .map(|t| 2 * t.elements())
        .sum()
}

/// Forward, backward and optimizer phases of one trained model over `base`.
pub(super) fn train_phases(
    req: &TrainingRequest,
    prefix: &str,
    base: &MemoryBreakdown,
    f: &Profile,
    s: &ModelState,
) -> Vec<PhaseMemory> {
    let held = if req.grad_accum > 1 { s.gradients } else { Bytes::ZERO };
    let acts = f.in_flight * (f.layers + f.copies);
    let at = |activations: u64, gradients: Bytes, extra: Bytes| {
        breakdown(MemoryBreakdown {
            activations: Bytes(activations),
            gradients,
            workspace: base.workspace + extra,
            ..base.clone()
        })
    };
    let phase = |name: &str, moments: Vec<(&str, MemoryBreakdown)>| {
        let (moment, memory) = moments.into_iter().max_by_key(|m| m.1.total).expect("moments");
        PhaseMemory { phase: format!("{prefix}{name}"), moment: moment.to_string(), memory }
    };
    // Unsloth's loss chunks fit half the memory free when the loss starts (the caching
    // allocator's reserve of the forward pass's layers counts as used); 4 GiB without a GPU.
    let loss_fwd = f.loss_fwd
        + f.fused_loss.map_or(0, |loss| {
            // The loss's T×h gradient is allocated before Unsloth reads the free memory.
            let free = req.device.as_ref().map(|d| {
                let before = (acts + f.output + f.loss_fwd).max(acts + f.layer_fwd);
                d.capacity.0.saturating_sub((at(before, held, Bytes::ZERO).total + d.in_use).0)
            });
            loss.chunk_bytes(free)
        });
    let forward = phase(
        "forward",
        vec![
            ("loss: 16-bit logits + fp32 upcast", at(acts + f.output + loss_fwd, held, Bytes::ZERO)),
            // Before lm_head: nothing after the layers exists yet.
            ("last layer's intermediates", at(acts + f.layer_fwd, held, Bytes::ZERO)),
        ],
    );
    // The optimizer inside the backward pass (no accumulation, so nothing held before it): no
    // gradient outlives its parameter's step but a tied embedding's, whose lm_head share waits
    // for the embedding's; lm_head's (the largest, `s.gradients`) is stepped at the start, a
    // layer's matrices in the layers, the embedding's at the end, and no optimizer phase follows.
    if let Some(ib) = &s.in_backward {
        let tied = ib.held_gradient;
        // A tied lm_head's share waits for the embedding's: no step at the start.
        let (head, head_step) = if tied > Bytes::ZERO { (tied, Bytes::ZERO) } else { (s.gradients, s.step) };
        let backward = phase(
            "backward + optimizer",
            vec![
                (
                    "start: loss gradients + lm_head's gradient and step",
                    at(acts + f.output + f.loss_bwd, head, head_step),
                ),
                (
                    "a layer's backward + its largest matrix's gradient and step",
                    at(acts + f.layer_bwd, tied + ib.layer_gradient, ib.layer_step),
                ),
                // A tied embedding adds its own share to lm_head's waiting one.
                ("end: the embedding's gradient and step", at(0, s.gradients.max(tied + tied), s.step)),
            ],
        );
        return vec![forward, backward];
    }
    vec![
        forward,
        phase(
            "backward",
            vec![
                (
                    "start: loss gradients over all saved activations",
                    at(acts + f.output + f.loss_bwd, held, Bytes::ZERO),
                ),
                ("first layer backward", at(acts + f.layer_bwd, held, Bytes::ZERO)),
                ("end: all gradients", at(f.layer_bwd, s.gradients, Bytes::ZERO)),
            ],
        ),
        phase("optimizer", vec![("step: gradients + temporaries", at(0, s.gradients, s.step))]),
    ]
}

fn validate(req: &TrainingRequest) -> Result<(), TrainingError> {
    if req.engine == Engine::Unsloth {
        super::unsloth::check(req)?;
    } else if req.xformers {
        return Err(TrainingError::EngineLimit(
            "--attention xformers is Unsloth's attention path: add --engine unsloth, or drop it".into(),
        ));
    }
    if req.optimizer_in_backward && req.grad_accum > 1 {
        return Err(TrainingError::InBackwardAccumulates(req.grad_accum));
    }
    if req.optimizer_in_backward && req.engine == Engine::Litgpt {
        return Err(TrainingError::EngineLimit(
            "--optimizer-in-backward cannot run under --engine litgpt: LitGPT steps its optimizer after the backward pass; plan torchtune's optimizer_in_bwd with --engine hf".into(),
        ));
    }
    for (what, v, fix) in [
        ("context", req.seq, "give at least 1 token"),
        ("batch", req.micro_batch, "give at least 1 sequence"),
        ("grad-accum", req.grad_accum, "give at least 1 micro-batch"),
        ("group-size", req.group_size, "give at least 1 completion per prompt"),
    ] {
        if v == 0 || v > 1 << 24 {
            return Err(TrainingError::BadNumber { what, value: v.to_string(), fix });
        }
    }
    let policy = &req.models[0];
    let sequences = req.micro_batch * req.group_size.max(2);
    if !crate::plan::limits::workload_fits_arithmetic(policy.spec, sequences, req.seq) {
        return Err(TrainingError::BadNumber {
            what: "batch × context",
            value: format!("{} × {}", req.micro_batch, req.seq),
            fix: "this workload's buffers exceed 1 EiB; reduce --batch, --context or --group-size",
        });
    }
    req.parallel.validate(policy.spec)?;
    for m in &req.models {
        validate_format(req, m)?;
    }
    Ok(())
}

fn validate_format(req: &TrainingRequest, m: &ModelInput) -> Result<(), TrainingError> {
    let four_bit = matches!(m.format, WeightFormat::Quantized(QuantScheme::Nf4 | QuantScheme::Nf4Double));
    if req.mode == Mode::Qlora && m.role == ModelRole::Policy && !four_bit {
        return Err(TrainingError::QloraNeeds4Bit(m.format.id().to_string()));
    }
    if m.method == Method::Full && m.format.is_quantized() {
        return Err(TrainingError::TrainsQuantized { mode: req.mode.id(), weights: m.format.id().to_string() });
    }
    if req.precision == Precision::Amp && m.method == Method::Full && m.format.compute_dtype_bytes() != 4 {
        return Err(TrainingError::AmpNeedsFp32(m.format.id().to_string()));
    }
    Ok(())
}
