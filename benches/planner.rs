//! Planner speed: one plan, and every built-in model × every weight format.
//!
//! `cargo bench --bench planner`. Targets: one plan in a few microseconds; the sweep in
//! milliseconds.

use criterion::{criterion_group, criterion_main, Criterion};
use headroom::catalog::models::ModelCatalog;
use headroom::model::tensors::inventory;
use headroom::plan::{plan_inference, Device, Engine, EngineOptions, Generation, InferenceRequest, WeightLayout};
use headroom::quant::{KvFormat, WeightFormat};
use headroom::units::Bytes;
use std::hint::black_box;

fn request<'a>(spec: &'a headroom::model::spec::ModelSpec, weights: &'a WeightLayout) -> InferenceRequest<'a> {
    InferenceRequest {
        spec,
        weights,
        kv: KvFormat::Bf16,
        context: 4096,
        batch: 1,
        engine: Engine::Hf,
        options: EngineOptions::default(),
        device: Some(Device {
            id: "a100-80gb".into(),
            capacity: Bytes(85_899_345_920),
            count: 1,
            generation: Generation::Ampere,
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
            black_box(plan_inference(&request(spec, &weights)).unwrap())
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
                    total += plan_inference(&request(spec, &weights)).unwrap().memory.total.0;
                }
            }
            black_box(total)
        })
    });
}

criterion_group!(benches, one_plan, sweep);
criterion_main!(benches);
