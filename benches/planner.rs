//! Planner speed: one plan, and every built-in model × every weight format.
//!
//! `cargo bench --bench planner`. Targets: one plan in a few microseconds; the sweeps in
//! milliseconds (the `fit` sweep under 5 ms).

use criterion::{criterion_group, criterion_main, Criterion};
use headroom::catalog::models::ModelCatalog;
use headroom::model::tensors::inventory;
use headroom::plan::{plan_inference, Device, Engine, EngineOptions, Generation, InferenceRequest, WeightLayout};
use headroom::quant::{KvFormat, WeightFormat};
use headroom::units::Bytes;
use std::hint::black_box;

fn request<'a>(
    spec: &'a headroom::model::spec::ModelSpec,
    weights: &'a WeightLayout,
    format: WeightFormat,
) -> InferenceRequest<'a> {
    InferenceRequest {
        spec,
        weights,
        format,
        kv: KvFormat::Bf16,
        context: 4096,
        batch: 1,
        engine: Engine::Hf,
        options: EngineOptions::default(),
        device: Some(Device {
            id: "a100-80gb".into(),
            capacity: Bytes(85_099_282_432),
            reserved: Bytes(800_063_488),
            in_use: Bytes::ZERO,
            unified_memory: None,
            count: 1,
            generation: Generation::Ampere,
            compute_capability: None,
        }),
        split: None,
    }
}

fn one_plan(c: &mut Criterion) {
    let model = ModelCatalog::builtin().get("llama-2-7b").unwrap();
    let spec = model.spec();
    let tensors = inventory(spec);
    let format = WeightFormat::parse("bf16").unwrap();
    c.bench_function("plan llama-2-7b bf16 4096 (weights + plan)", |b| {
        b.iter(|| {
            let weights = WeightLayout::from_inventory(spec.num_layers, &tensors, |t| format.tensor_bytes(t, spec));
            black_box(plan_inference(&request(spec, &weights, format)).unwrap())
        })
    });
}

fn sweep(c: &mut Criterion) {
    let models: Vec<_> = ModelCatalog::builtin().iter().map(|m| (m.spec().clone(), inventory(m.spec()))).collect();
    c.bench_function("plan all models × all formats", |b| {
        b.iter(|| {
            let mut total = 0u64;
            for (spec, tensors) in &models {
                for format in WeightFormat::all() {
                    let weights =
                        WeightLayout::from_inventory(spec.num_layers, tensors, |t| format.tensor_bytes(t, spec));
                    total += plan_inference(&request(spec, &weights, *format)).unwrap().memory.total.0;
                }
            }
            black_box(total)
        })
    });
}

/// `headroom fit llama-2-70b --weights gptq` in process: every catalog GPU × 1, 2, 4, 8, memory
/// and speed, sorted. Target: under 5 ms.
fn fit_sweep(c: &mut Criterion) {
    use clap::Parser;
    let cli = headroom::cli::Cli::try_parse_from(["headroom", "fit", "llama-2-70b", "--weights", "gptq"]).unwrap();
    let headroom::cli::Command::Fit(args) = cli.command else { unreachable!("argv starts with fit") };
    c.bench_function("fit llama-2-70b gptq (catalog × 1,2,4,8)", |b| {
        b.iter(|| black_box(headroom::commands::fit::sweep(&args).unwrap().len()))
    });
    let cli = headroom::cli::Cli::try_parse_from(["headroom", "plan", "llama-2-7b", "--gpu", "h100-sxm"]).unwrap();
    let headroom::cli::Command::Plan(args) = cli.command else { unreachable!("argv starts with plan") };
    c.bench_function("plan llama-2-7b on h100-sxm with speed (report)", |b| {
        b.iter(|| black_box(headroom::commands::plan::report(&args).unwrap()))
    });
}

criterion_group!(benches, one_plan, sweep, fit_sweep);
criterion_main!(benches);
