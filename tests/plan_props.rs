//! Any model, engine, workload and GPU layout the CLI accepts is planned or refused with an
//! error: never a panic (overflow checks are on in test builds).

use clap::Parser;
use headroom::catalog::models::ModelCatalog;
use headroom::cli::{Cli, Command};
use headroom::commands::plan::report;
use proptest::prelude::*;

fn plan(args: &str) -> Result<(), String> {
    let argv = ["headroom", "plan"].into_iter().chain(args.split_whitespace());
    let Command::Plan(plan_args) = Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command else {
        unreachable!()
    };
    report(&plan_args).map(|_| ()).map_err(|e| e.to_string())
}

fn model_ids() -> Vec<String> {
    ModelCatalog::builtin().iter().map(|m| m.entry.id.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inference_plans_never_panic(
        model in 0usize..47, engine in 0usize..6, ctx_exp in 0u32..25, batch_exp in 0u32..21,
        gpus in prop::sample::select(vec!["h100-sxm", "h100-sxm:8", "rtx-4090:3", "h200:1024", "m4-max"]),
        eager in any::<bool>(),
    ) {
        let ids = model_ids();
        let id = &ids[model % ids.len()];
        let engine = ["hf", "vllm", "llama.cpp", "exllama", "bare", "headroom"][engine];
        let attention = if eager { "eager" } else { "flash" };
        let _ = plan(&format!(
            "{id} --engine {engine} --context {} --batch {} --gpu {gpus} --attention {attention}",
            1u64 << ctx_exp, 1u64 << batch_exp
        ));
    }

    #[test]
    fn training_plans_never_panic(
        model in 0usize..47, mode in 0usize..7, ctx_exp in 0u32..25, batch_exp in 0u32..12,
        zero in 0u8..4, gpus in prop::sample::select(vec!["a100-80gb:8", "h100-sxm:1", "rtx-4090:2"]),
    ) {
        let ids = model_ids();
        let id = &ids[model % ids.len()];
        let mode = ["full", "lora", "qlora", "dpo", "ppo", "grpo", "best-of-n"][mode];
        let _ = plan(&format!(
            "{id} --mode {mode} --context {} --batch {} --zero {zero} --gpu {gpus}",
            1u64 << ctx_exp, 1u64 << batch_exp
        ));
    }
}

/// The properties above run real plans: the argument strings they build are accepted.
#[test]
fn generated_arguments_are_valid() {
    assert_eq!(plan("llama-2-7b --engine hf --context 4096 --batch 1 --gpu h100-sxm:8 --attention eager"), Ok(()));
    assert_eq!(plan("mixtral-8x7b --mode best-of-n --context 1024 --batch 2 --zero 3 --gpu a100-80gb:8"), Ok(()));
}
