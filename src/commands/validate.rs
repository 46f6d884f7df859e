//! `headroom validate MODEL [plan options]`: runs the planned configuration on local GPU 0 with
//! headroom's own engine (random weights of the exact shapes and format), measures memory after
//! each phase with NVML and times a prefill and decode steps, then prints predicted against
//! measured. The model and request are checked before any GPU is touched, so bad input exits 1
//! and a machine without a GPU exits 3.

use super::source::{resolve, ResolvedModel};
use crate::catalog::gpus::{parse_gpu_arg, GpuSpec};
use crate::cli::{ModeArg, OptimizerArg, OutputFormat, PrecisionArg, ValidateArgs};
use crate::gpu::{DeviceInfo, GpuError};
use crate::plan::throughput::Efficiency;
use crate::plan::{Engine, Generation};
use crate::quant::WeightFormat;
use crate::validate::layout::{layout, prompt_for, Request};
use crate::validate::report::{DeviceSummary, Predicted, Record};
use crate::validate::run::{kernel_check, measure, MemoryProbe};
use crate::validate::train::{train_layout, TrainRequest};
use crate::validate::train_backend::TrainBackend;
use crate::validate::train_run::{measure_training, train_kernel_check};
use anyhow::Context;

pub fn run(args: &ValidateArgs) -> anyhow::Result<String> {
    let model = resolve(&args.plan.model)?;
    // Input errors first (exit 1), before any GPU is touched.
    let setup = Setup::new(&model, args)?;
    crate::gpu::cuda::driver_present()?;
    let mut probe = crate::validate::probe::NvmlProbe::open()?;
    let nvml_info = crate::gpu::nvml::devices().ok().and_then(|d| d.into_iter().next());
    let gpu = crate::gpu::cuda::CudaGpu::open(0, nvml_info)?;
    let mut layers = crate::gpu::cuda::layer::CudaLayers::new(gpu);
    let device = layers.device().clone();
    let record = validate_on(&mut layers, &mut probe, &model, args, &device, setup)?;
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&record)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let format = if args.plan.format == OutputFormat::Json { OutputFormat::Json } else { OutputFormat::Table };
    Ok(super::render_listing(&record.listing(), format))
}

/// What a validate run does: inference (prefill and decode) or one full fine-tuning step.
#[derive(Clone, Copy, Debug)]
enum Work {
    Infer(Request),
    Train(TrainRequest),
}

/// The format and request of a validate run, checked against what the engine runs.
pub struct Setup {
    format: WeightFormat,
    work: Work,
}

impl Setup {
    /// Checks the model, format and request are ones the engine runs.
    pub fn new(model: &ResolvedModel, args: &ValidateArgs) -> anyhow::Result<Setup> {
        let p = &args.plan;
        if p.engine.as_deref().is_some_and(|e| Engine::parse(e) != Ok(Engine::Headroom)) {
            anyhow::bail!("validate runs headroom's own engine; drop --engine (its plan is `--engine headroom`)");
        }
        super::plan::check_mode_options(p)?;
        anyhow::ensure!(p.in_use.is_none(), "validate measures what is free on the GPU itself; drop --in-use");
        anyhow::ensure!(
            p.kv_cache.as_deref().is_none_or(|k| k.eq_ignore_ascii_case("bf16")),
            "validate's engine keeps a bf16 KV cache; drop --kv-cache"
        );
        let format = match &p.weights {
            Some(w) => WeightFormat::parse(w)?,
            None => model.default_format()?,
        };
        let context = p.context.unwrap_or(4096.min(model.spec.max_context));
        let work = match p.train.mode {
            ModeArg::Infer => {
                let req = Request { batch: p.batch, context, prompt: prompt_for(context, args.decode_steps) };
                // Any compute capability: it only sizes the cuBLAS workspace.
                layout(&model.spec, format, &req, 9)?;
                Work::Infer(req)
            }
            ModeArg::Full => {
                anyhow::ensure!(
                    !format.is_quantized(),
                    "validate trains bf16 weights; drop --weights {} for --mode full",
                    format.id()
                );
                let req = TrainRequest { batch: p.batch, seq: context };
                train_layout(&model.spec, req, 9)?;
                Work::Train(req)
            }
            _ => anyhow::bail!("validate runs inference or --mode full (one fine-tuning step); drop --mode"),
        };
        Ok(Setup { format, work })
    }
}

/// The catalog entry the prediction uses: `--gpu`, else the local device's match.
fn catalog_gpu(args: &ValidateArgs, device: &DeviceInfo) -> anyhow::Result<Option<&'static GpuSpec>> {
    Ok(match &args.plan.gpu {
        Some(g) => Some(parse_gpu_arg(g)?.0),
        None => device.catalog_entry(),
    })
}

/// The planner's view of the run, through `plan --engine headroom` (with `--mode full
/// --precision mixed --optimizer adamw` for a training step).
fn predict(
    model: &ResolvedModel,
    args: &ValidateArgs,
    setup: &Setup,
    gpu: Option<&'static GpuSpec>,
) -> anyhow::Result<Predicted> {
    let mut plan_args = args.plan.clone();
    plan_args.engine = Some("headroom".into());
    plan_args.weights = Some(setup.format.id().to_string());
    let calibration = super::plan::load_calibration(&plan_args)?;
    let on = gpu.map(|g| (g, 1));
    let memory = |r: &crate::report::PlanReport| {
        let m = &r.memory;
        Predicted {
            cuda_context_bytes: m.cuda_context.0,
            weights_bytes: m.weights.0,
            kv_cache_bytes: m.kv_cache.0,
            activations_bytes: m.activations.0,
            gradients_bytes: m.gradients.0,
            optimizer_bytes: m.optimizer.0,
            workspace_bytes: m.workspace.0,
            total_bytes: m.total.0,
            ..Predicted::default()
        }
    };
    match setup.work {
        Work::Infer(req) => {
            plan_args.context = Some(req.context);
            let full = super::plan::plan_report_on(model, &plan_args, on, calibration.as_ref())?;
            plan_args.context = Some(req.prompt);
            let prompt = super::plan::plan_report_on(model, &plan_args, on, calibration.as_ref())?;
            let generation = gpu.map_or(Generation::Hopper, |g| super::plan::device(g, 1).generation);
            let host = Efficiency::defaults(Engine::Headroom, generation).host_per_layer_s.value;
            Ok(Predicted {
                prefill_tokens_per_s: prompt.throughput.prefill_tokens_per_s,
                decode_tokens_per_s: full.throughput.decode_tokens_per_s,
                decode_host_ms_per_step: gpu.map(|_| host * model.spec.num_layers as f64 * 1e3),
                ..memory(&full)
            })
        }
        Work::Train(req) => {
            plan_args.context = Some(req.seq);
            plan_args.train.precision = Some(PrecisionArg::Mixed);
            plan_args.train.optimizer = OptimizerArg::Adamw;
            plan_args.gpu = gpu.map(|g| g.id.clone());
            let r = super::train::train_report(model, &plan_args)?;
            Ok(memory(&r))
        }
    }
}

/// Predicts, measures (when the plan fits in the free memory) and checks the kernels on `b`.
pub fn validate_on<B: TrainBackend, P: MemoryProbe>(
    b: &mut B,
    probe: &mut P,
    model: &ResolvedModel,
    args: &ValidateArgs,
    device: &DeviceInfo,
    setup: Setup,
) -> anyhow::Result<Record> {
    let major = device.compute_capability.0;
    let gpu = catalog_gpu(args, device)?;
    let predicted = predict(model, args, &setup, gpu)?;
    // The kernel checks double as the warm-up: they compile every kernel and start cuBLAS, so
    // the context sample after them holds the whole runtime, as the planner's context does.
    let names: &[&str] = match setup.work {
        Work::Train(_) => &["bf16", "training step"],
        Work::Infer(_) if setup.format.is_quantized() => &["bf16", "awq"],
        Work::Infer(_) => &["bf16"],
    };
    let mut checks = Vec::new();
    for &name in names {
        let check = match name {
            "training step" => train_kernel_check(b),
            format => kernel_check(b, format),
        }
        .with_context(|| format!("the kernel check ({name}) on the small model"))?;
        if !args.no_check {
            checks.push(check);
        }
    }
    b.release_all()?;
    let needed = predicted.total_bytes - predicted.cuda_context_bytes;
    let fits = needed <= device.memory_free_bytes;
    let mut note = None;
    let (mut measured, mut measured_training) = (None, None);
    let oom = |e: GpuError| match e {
        GpuError::OutOfMemory { .. } => Ok(format!("ran out of memory: {e}")),
        e => Err(e),
    };
    if !fits {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        note = Some(format!(
            "does not fit: the plan needs {:.2} GiB besides the CUDA context, {:.2} GiB are free",
            gib(needed),
            gib(device.memory_free_bytes)
        ));
    } else {
        match setup.work {
            Work::Infer(req) => {
                match measure(b, probe, &model.spec, &layout(&model.spec, setup.format, &req, major)?, &req) {
                    Ok(m) => measured = Some(m),
                    Err(e) => note = Some(oom(e)?),
                }
            }
            Work::Train(req) => {
                match measure_training(b, probe, &model.spec, &train_layout(&model.spec, req, major)?, req) {
                    Ok(m) => measured_training = Some(m),
                    Err(e) => note = Some(oom(e)?),
                }
            }
        }
    }
    let (context, batch, mode) = match setup.work {
        Work::Infer(r) => (r.context, r.batch, "infer"),
        Work::Train(r) => (r.seq, r.batch, "full"),
    };
    let mut record = Record {
        schema: "headroom-validate/1",
        model: model.spec.id.clone(),
        model_input: args.plan.model.clone(),
        mode,
        weights: setup.format.id().to_string(),
        context,
        batch,
        device: DeviceSummary {
            name: device.name.clone(),
            catalog_id: gpu.map(|g| g.id.clone()),
            memory_total_bytes: device.memory_total_bytes,
            compute_capability: format!("{}.{}", device.compute_capability.0, device.compute_capability.1),
            driver_version: device.driver_version.clone(),
            cuda_version: device.cuda_version.clone(),
        },
        fits,
        note,
        predicted,
        measured,
        measured_training,
        memory: Vec::new(),
        speed: Vec::new(),
        kernel_checks: checks,
    };
    record.compare();
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use crate::validate::cpu::CpuLayers;
    use clap::Parser;

    fn probe() -> crate::validate::run::CountingProbe {
        crate::validate::run::CountingProbe { bytes: 0, step: 1 << 20 }
    }

    fn args(line: &str) -> ValidateArgs {
        match Cli::try_parse_from(format!("headroom validate {line}").split_whitespace()).unwrap().command {
            Command::Validate(a) => a,
            _ => unreachable!(),
        }
    }

    fn tiny_dir() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), crate::validate::TINY_CONFIG).unwrap();
        dir
    }

    fn h200(free: u64) -> DeviceInfo {
        DeviceInfo {
            name: "NVIDIA H200".into(),
            memory_total_bytes: 150_754_820_096,
            memory_free_bytes: free,
            compute_capability: (9, 0),
            ..Default::default()
        }
    }

    /// The whole command path on the CPU backend: a tiny model, predicted against "measured".
    #[test]
    fn validates_a_small_model_on_the_cpu_backend() {
        let dir = tiny_dir();
        let a = args(&format!("{} --context 128 --decode-steps 8", dir.path().join("config.json").display()));
        let model = resolve(&a.plan.model).unwrap();
        let setup = Setup::new(&model, &a).unwrap();
        let r = validate_on(&mut CpuLayers::new(), &mut probe(), &model, &a, &h200(100 << 30), setup).unwrap();
        assert!(r.fits && r.note.is_none());
        let m = r.measured.as_ref().unwrap();
        assert_eq!((m.prompt_tokens, m.decode_steps), (64, 64));
        assert_eq!(r.device.catalog_id.as_deref(), Some("h200"));
        assert!(r.predicted.decode_tokens_per_s.is_some() && r.predicted.prefill_tokens_per_s.is_some());
        assert!(r.kernel_checks.iter().all(|c| c.passed) && r.kernel_checks.len() == 1);
        assert_eq!(r.memory.len(), 5);
    }

    /// A training step on the CPU backend: states and saved activations predicted, one step
    /// measured, the training kernels checked.
    #[test]
    fn validates_a_training_step_on_the_cpu_backend() {
        let dir = tiny_dir();
        let a = args(&format!("{} --mode full --context 64", dir.path().join("config.json").display()));
        let model = resolve(&a.plan.model).unwrap();
        let setup = Setup::new(&model, &a).unwrap();
        let r = validate_on(&mut CpuLayers::new(), &mut probe(), &model, &a, &h200(100 << 30), setup).unwrap();
        assert_eq!((r.mode, r.fits), ("full", true));
        let m = r.measured_training.as_ref().unwrap();
        assert!(m.loss_after < m.loss_before);
        assert!(
            r.predicted.gradients_bytes > 0 && r.predicted.optimizer_bytes == 6 * r.predicted.gradients_bytes,
            "{:?}",
            r.predicted
        );
        let names: Vec<_> = r.kernel_checks.iter().map(|c| c.check.as_str()).collect();
        assert_eq!(names, ["bf16", "training step"]);
        assert!(r.kernel_checks.iter().all(|c| c.passed));
        assert!(r.memory.iter().any(|c| c.name == "gradients + optimizer states" && c.measured.is_some()));
    }

    #[test]
    fn a_plan_larger_than_free_memory_is_reported_not_run() {
        let a = args("llama-2-70b --weights bf16 --no-check");
        let model = resolve(&a.plan.model).unwrap();
        let setup = Setup::new(&model, &a).unwrap();
        let r = validate_on(&mut CpuLayers::new(), &mut probe(), &model, &a, &h200(80 << 30), setup).unwrap();
        assert!(!r.fits && r.measured.is_none());
        assert!(r.note.as_deref().unwrap().starts_with("does not fit"));
    }

    #[test]
    fn unsupported_input_is_refused_before_the_gpu() {
        for (line, want) in [
            ("llama-2-7b --engine vllm", "headroom's own engine"),
            ("llama-2-7b --mode lora", "drop --mode"),
            ("llama-2-7b --mode full --weights awq", "trains bf16"),
            ("llama-2-7b --mode full --context 100", "multiple of 64"),
            ("llama-2-7b --weights q4_k_m", "4-bit group-128"),
            ("mixtral-8x7b", "mixture-of-experts"),
            ("llama-2-7b --weights awq --batch 2", "one sequence"),
        ] {
            let a = args(line);
            let model = resolve(&a.plan.model).unwrap();
            let e = Setup::new(&model, &a).err().unwrap_or_else(|| panic!("{line} was accepted"));
            assert!(format!("{e:#}").contains(want), "{line}: {e:#}");
        }
    }
}
