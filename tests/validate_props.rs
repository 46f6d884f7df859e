//! validate's engine and the planner's `headroom` profile describe the same buffers: for every
//! catalog model the engine runs, any format it takes, batch and context, the plan's weights, KV
//! cache, activations and workspace equal the engine's slabs to the byte. And a model or request
//! the engine cannot run is refused with an error, never a panic.

use headroom::catalog::models::ModelCatalog;
use headroom::model::tensors::inventory;
use headroom::plan::{plan_inference, Device, Engine, EngineOptions, Generation, InferenceRequest, WeightLayout};
use headroom::quant::{KvFormat, WeightFormat};
use headroom::units::Bytes;
use headroom::validate::layout::{layout, prompt_for, Request};
use proptest::prelude::*;

const FORMATS: [&str; 5] = ["bf16", "fp16", "gptq", "awq", "q4_k_m"];

proptest! {
    // About a third of the draws are models, formats or requests the engine refuses.
    #![proptest_config(ProptestConfig::with_cases(600))]

    #[test]
    fn the_plan_predicts_the_engine_slabs(
        model_i in 0usize..64, format_i in 0usize..5, batch in 1u64..9, context in 1u64..40_000,
        hopper in any::<bool>(),
    ) {
        let models: Vec<_> = ModelCatalog::builtin().iter().collect();
        let spec = models[model_i % models.len()].spec();
        let format = WeightFormat::parse(FORMATS[format_i]).unwrap();
        let req = Request { batch, context, prompt: prompt_for(context, 64) };
        let major = if hopper { 9 } else { 8 };
        // Refusals are errors, never panics; what runs is predicted exactly.
        let Ok(lay) = layout(spec, format, &req, major) else { return Ok(()) };
        let tensors = inventory(spec);
        let weights = WeightLayout::from_inventory(spec.num_layers, &tensors, |t| format.tensor_bytes(t, spec));
        let generation = if hopper { Generation::Hopper } else { Generation::Ampere };
        let device = Device { id: "gpu".into(), capacity: Bytes(1 << 50), reserved: Bytes::ZERO, in_use: Bytes::ZERO, unified_memory: None, count: 1, generation, compute_capability: None };
        let plan = plan_inference(&InferenceRequest {
            spec,
            weights: &weights, format,
            kv: KvFormat::Bf16,
            context,
            batch,
            engine: Engine::Headroom,
            options: EngineOptions::default(),
            device: Some(device),
            split: None,
        })
        .unwrap();
        let m = &plan.memory;
        prop_assert_eq!(m.weights.0, lay.weight_bytes(), "{} weights", spec.id);
        prop_assert_eq!(m.kv_cache.0, lay.kv_bytes(), "{} kv", spec.id);
        prop_assert_eq!(m.activations.0, lay.arena_bytes(), "{} arena", spec.id);
        prop_assert_eq!(m.workspace.0, lay.workspace_bytes(), "{} workspace", spec.id);
    }
}

/// Which catalog models the engine runs: the Llama-style ones with head_dim 128.
#[test]
fn the_engine_runs_the_llama_style_catalog_models() {
    let bf16 = WeightFormat::parse("bf16").unwrap();
    let req = Request { batch: 1, context: 4096, prompt: 4032 };
    let runs: Vec<String> = ModelCatalog::builtin()
        .iter()
        .filter(|m| layout(m.spec(), bf16, &req, 9).is_ok())
        .map(|m| m.entry.id.clone())
        .collect();
    for id in ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b"] {
        assert!(runs.iter().any(|r| r == id), "{id} not runnable: {runs:?}");
    }
    for id in ["mixtral-8x7b", "deepseek-v2-lite", "falcon-7b", "gemma-2-9b"] {
        assert!(!runs.iter().any(|r| r == id), "{id} should be refused");
    }
}

/// The training step: `plan --mode full --engine headroom` predicts the step's buffers exactly.
#[test]
fn the_training_plan_predicts_the_step_buffers() {
    use clap::Parser;
    use headroom::cli::{Cli, Command};
    use headroom::validate::train::{train_layout, TrainRequest};
    for (model, seq, batch) in [("llama-2-7b", 1024, 1), ("llama-2-13b", 2048, 2), ("llama-3.1-8b", 512, 4)] {
        let line = format!(
            "headroom plan {model} --mode full --precision mixed --optimizer adamw --engine headroom --context {seq} --batch {batch} --gpu h200"
        );
        let Command::Plan(args) = Cli::try_parse_from(line.split_whitespace()).unwrap().command else { unreachable!() };
        let r = headroom::commands::plan::report(&args).unwrap();
        let spec = ModelCatalog::builtin().get(model).unwrap().spec();
        let l = train_layout(spec, TrainRequest { batch, seq }, 9).unwrap();
        let m = &r.memory;
        assert_eq!(m.weights.0, l.weight_bytes(), "{model} weights");
        assert_eq!(m.gradients.0, l.gradients, "{model} gradients");
        assert_eq!(m.optimizer.0, l.optimizer, "{model} optimizer");
        assert_eq!(m.activations.0, l.saved_bytes() + l.scratch, "{model} activations");
        assert_eq!(m.workspace.0, l.workspace_bytes(), "{model} workspace");
        assert_eq!(r.training.as_ref().unwrap().saved_activations_bytes, l.saved_bytes());
    }
}

/// The plan arguments scripts/device_records.py writes into measurement records plan without
/// error, so a device run's records can be committed as they come (the 1.3B training shape is
/// the config kept in data/measurements/configs).
#[test]
fn device_record_arguments_plan() {
    use clap::Parser;
    use headroom::cli::{Cli, Command};
    for args in [
        "llama-2-7b --weights bf16 --batch 1 --engine headroom --gpu h200 --context 4096",
        "llama-2-70b --weights awq --batch 1 --engine headroom --gpu h100-sxm --context 4032",
        "data/measurements/configs/llama-1.3b-shaped --weights bf16 --batch 1 --engine headroom --gpu h100-sxm --mode full --precision mixed --optimizer adamw --context 1024",
    ] {
        let line = format!("headroom plan {args}");
        let Command::Plan(a) = Cli::try_parse_from(line.split_whitespace()).unwrap().command else { unreachable!() };
        let r = headroom::commands::plan::report(&a).unwrap_or_else(|e| panic!("{args}: {e:#}"));
        assert!(r.memory.total.0 > 0 && r.fit.as_ref().is_some_and(|f| f.fits), "{args}");
    }
}

/// The plan arguments of device-check's training and LitGPT cases (`ID|MODEL|options|plan
/// options` lines) plan without error on the device's GPU, so their records convert as they come.
#[test]
fn device_check_case_plans_are_valid() {
    use clap::Parser;
    use headroom::cli::{Cli, Command};
    let script = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/device-check.sh")).unwrap();
    let cases: Vec<(&str, &str)> = script
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.strip_suffix('"'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split('|').collect();
            (f.len() == 4 && (f[0].starts_with("train-") || f[0].starts_with("litgpt-"))).then(|| (f[1], f[3]))
        })
        .collect();
    assert!(cases.len() >= 9, "found {} cases", cases.len());
    for (model, plan) in cases {
        // TRAIN lines give the model separately; LITGPT lines carry it (their field 2 is LitGPT's config name).
        let args =
            if plan.starts_with("--") { format!("{model} {plan} --gpu h200") } else { format!("{plan} --gpu h200") };
        let line = format!("headroom plan {args}");
        let Command::Plan(a) = Cli::try_parse_from(line.split_whitespace()).unwrap().command else { unreachable!() };
        headroom::commands::plan::report(&a).unwrap_or_else(|e| panic!("{args}: {e:#}"));
    }
}
