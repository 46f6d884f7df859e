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

/// The `i`-th catalog model (modulo the catalog's size) and whether it has routed experts.
fn pick(i: usize) -> (String, bool) {
    let models: Vec<_> = ModelCatalog::builtin().iter().collect();
    let m = models[i % models.len()];
    (m.entry.id.clone(), m.spec().moe.is_some())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn inference_plans_never_panic(
        model in 0usize..1000, engine in 0usize..8, ctx_exp in 0u32..25, batch_exp in 0u32..21,
        gpus in prop::sample::select(vec!["h100-sxm", "h100-sxm:8", "rtx-4090:3", "h200:1024", "m4-max", "m3-ultra"]),
        eager in any::<bool>(), hybrid_off in any::<bool>(), cpu_moe in 0u64..200, gpu_layers in 0u64..200,
    ) {
        let (id, moe) = pick(model);
        let engine = ["hf", "vllm", "llama.cpp", "exllama", "bare", "headroom", "litgpt", "mlx"][engine];
        let attention = if eager { "eager" } else { "flash" };
        let manager = if hybrid_off && engine == "vllm" { "--disable-hybrid-kv-cache-manager" } else { "" };
        // llama.cpp's host offloads: whole layers (--n-gpu-layers), and a mixture of experts'
        // routed experts (--n-cpu-moe).
        let offload = match (engine, cpu_moe < 100) {
            ("llama.cpp", true) if moe => format!("--n-cpu-moe {cpu_moe} --n-gpu-layers {gpu_layers}"),
            ("llama.cpp", true) => format!("--n-gpu-layers {gpu_layers}"),
            _ => String::new(),
        };
        let _ = plan(&format!(
            "{id} --engine {engine} --context {} --batch {} --gpu {gpus} --attention {attention} {manager} {offload}",
            1u64 << ctx_exp, 1u64 << batch_exp
        ));
    }

    /// llama.cpp's `--fit` over any catalog model, GPU layout, context, batch and margin plans or
    /// refuses, never panics; on one GPU a placement it searched leaves the margin, or nothing of
    /// the model fits on the GPU (`-ngl 0`). A context read off step 2's line is trusted, as
    /// llama.cpp trusts it: sliding-window layers make memory grow more slowly than the line at
    /// long contexts, so it can overshoot (Olmo-3-7B, in the regressions file).
    #[test]
    fn llama_cpp_fit_leaves_the_margin_or_places_nothing(
        model in 0usize..1000, ctx_exp in prop::option::of(8u32..22), batch in 1u64..5,
        gpus in prop::sample::select(vec!["rtx-3060", "rtx-4090", "rtx-4090:2", "rtx-3090:4", "a100-80gb:8", "m4-max"]),
        margin_mib in prop::sample::select(vec![0u64, 512, 1024, 8192]),
    ) {
        let (id, _) = pick(model);
        let context = ctx_exp.map_or(String::new(), |e| format!("--context {}", 1u64 << e));
        let args = format!(
            "{id} --weights q4_k_m --engine llama.cpp --gpu {gpus} --batch {batch} {context} --fit --fit-target {margin_mib}"
        );
        let argv = ["headroom", "plan"].into_iter().chain(args.split_whitespace());
        let Command::Plan(plan_args) = Cli::try_parse_from(argv).unwrap().command else { unreachable!() };
        if let Ok(r) = report(&plan_args) {
            let row = r.basis.iter().find(|b| b.name == headroom::plan::llama_fit::FITTED).unwrap();
            let (chosen, on_the_line) = (row.value.clone(), row.source.contains("the entire model fits"));
            let fit = r.fit.unwrap();
            if fit.gpu_count == 1 && !chosen.contains("-ngl 0") && !on_the_line {
                prop_assert!(fit.headroom_bytes >= (margin_mib << 20) as i64, "{args}: {chosen}, {} B left", fit.headroom_bytes);
            }
        }
    }

    /// A user's config.json with any window, chunk or position-table size in the families that
    /// read one is planned or refused, in every engine: never an overflow.
    #[test]
    fn windowed_configs_plan_or_refuse(
        family in prop::sample::select(vec!["llama4_text", "gemma3_text", "mistral", "cohere2", "gpt2", "opt", "mpt", "gpt_bigcode"]),
        size in prop_oneof![Just(u64::MAX), any::<u64>(), 1u64..100_000],
        engine in 0usize..8, ctx_exp in 0u32..25, batch_exp in 0u32..21, hybrid_off in any::<bool>(),
        mpt_attention in prop::sample::select(vec!["multihead_attention", "multiquery_attention", "grouped_query_attention"]),
        mbt_exp in 0u32..27,
    ) {
        let config = serde_json::json!({
            "model_type": family, "hidden_size": 64, "intermediate_size": 96, "intermediate_size_mlp": 96,
            "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
            "num_local_experts": 4, "vocab_size": 100, "sliding_window": size, "attention_chunk_size": size,
            "n_positions": size, "max_position_embeddings": size, "max_seq_len": size,
            "d_model": 64, "n_layers": 4, "n_heads": 4, "attn_config": {"alibi": false, "kv_n_heads": size, "attn_type": mpt_attention},
        });
        let dir = tempfile::TempDir::new().unwrap();
        std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
        let engine = ["hf", "vllm", "llama.cpp", "exllama", "bare", "headroom", "litgpt", "mlx"][engine];
        let vllm = if engine == "vllm" {
            let manager = if hybrid_off { "--disable-hybrid-kv-cache-manager" } else { "" };
            format!("--max-num-batched-tokens {} {manager}", 1u64 << mbt_exp)
        } else {
            String::new()
        };
        let _ = plan(&format!(
            "{} --engine {engine} --context {} --batch {} --gpu h100-sxm:2 {vllm}",
            dir.path().display(), 1u64 << ctx_exp, 1u64 << batch_exp
        ));
    }

    #[test]
    fn training_plans_never_panic(
        model in 0usize..1000, mode in 0usize..9, ctx_exp in 0u32..25, batch_exp in 0u32..12,
        zero in 0u8..4, gpus in prop::sample::select(vec!["a100-80gb:8", "h100-sxm:1", "rtx-4090:2"]),
        engine in prop::sample::select(vec!["hf", "litgpt", "unsloth"]),
        rollout in prop::sample::select(vec!["hf", "vllm", "vllm-server"]),
        optimizer in prop::sample::select(vec!["adamw", "paged-adamw-8bit", "paged-adamw-32bit", "adafactor"]),
        checkpointing in prop::sample::select(vec!["none", "full", "offload"]),
        in_backward in any::<bool>(),
    ) {
        let ids = model_ids();
        let id = &ids[model % ids.len()];
        let mode = ["full", "lora", "qlora", "dpo", "ppo", "grpo", "best-of-n", "adapter", "adapter-v2"][mode];
        let generates = matches!(mode, "ppo" | "grpo" | "best-of-n");
        let rollout = if generates { format!("--rollout-engine {rollout} --response-tokens 1") } else { String::new() };
        let in_backward = if in_backward { "--optimizer-in-backward" } else { "" };
        let _ = plan(&format!(
            "{id} --mode {mode} --context {} --batch {} --zero {zero} --gpu {gpus} --engine {engine} {rollout} --optimizer {optimizer} --checkpointing {checkpointing} {in_backward}",
            1u64 << ctx_exp, 1u64 << batch_exp
        ));
    }

    /// A paged optimizer's states leave the optimizer component for unified memory byte for
    /// byte, and offloaded checkpointing moves every layer input but two to host RAM, on any
    /// catalog model.
    #[test]
    fn paged_states_and_offloaded_inputs_leave_the_gpu_total(model in 0usize..1000, ctx_exp in 6u32..13) {
        let ids = model_ids();
        let id = &ids[model % ids.len()];
        let context = 1u64 << ctx_exp;
        let spec = ModelCatalog::builtin().get(id).unwrap().spec();
        let text_only = if spec.vision.is_some() { "--text-only" } else { "" };
        let common = format!("{id} --mode full --precision bf16 --weights bf16 {text_only} --context {context} --gpu h200");
        let plain = train(&format!("{common} --optimizer adamw-8bit")).unwrap();
        let paged = train(&format!("{common} --optimizer paged-adamw-8bit")).unwrap();
        let t = paged.training.as_ref().unwrap();
        prop_assert_eq!(plain.training.as_ref().unwrap().paged_optimizer_bytes, 0);
        let opt = |r: &headroom::report::PlanReport| r.training.as_ref().unwrap().models[0].optimizer_bytes;
        prop_assert_eq!(opt(&plain), opt(&paged) + t.paged_optimizer_bytes);
        let (full, off) = (
            train(&format!("{common} --checkpointing full")).unwrap(),
            train(&format!("{common} --checkpointing offload")).unwrap(),
        );
        let input = context * spec.hidden_size * 2;
        let (tf, to) = (full.training.unwrap(), off.training.unwrap());
        prop_assert_eq!(to.host_bytes - tf.host_bytes, spec.num_layers * input);
        prop_assert_eq!(tf.saved_activations_bytes - to.saved_activations_bytes, (spec.num_layers - spec.num_layers.min(2)) * input);
        // Stepping inside the backward pass never holds more gradient than stepping after it
        // (its peak can still be higher: lm_head's step meets the loss's gradients).
        let after = train(&format!("{common} --optimizer adamw")).unwrap();
        let inside = train(&format!("{common} --optimizer adamw --optimizer-in-backward")).unwrap();
        prop_assert!(inside.memory.gradients.0 <= after.training.unwrap().models[0].gradients_bytes);
    }

    /// Unsloth's plan on every catalog model it runs, from 4,096 tokens (where every layer input
    /// is over its 2 MiB offload threshold): the GPU keeps exactly three layer inputs (two staging
    /// buffers and the last layer's) and, after the layers, the final norm's input and inverse RMS
    /// and the fused loss's T×h gradient; host RAM every input but the last; and offloading never
    /// needs more GPU memory than keeping every layer's tensors.
    #[test]
    fn unsloth_keeps_three_layer_inputs(model in 0usize..1000, ctx_exp in 12u32..16, batch in 1u64..4) {
        let ids = unsloth_ids();
        let id = &ids[model % ids.len()];
        let spec = ModelCatalog::builtin().get(id).unwrap().spec();
        let tokens = (1u64 << ctx_exp) * batch;
        let common = format!("{id} --mode qlora --lora-rank 16 --gpu h200 --engine unsloth --context {} --batch {batch}", 1u64 << ctx_exp);
        let offload = train(&common).unwrap();
        let t = offload.training.as_ref().unwrap();
        let input = 2 * spec.hidden_size;
        prop_assert_eq!(t.saved_activations_bytes, tokens * (3 * input + input + 4 + input));
        prop_assert_eq!(t.host_bytes, tokens * (spec.num_layers - 1) * input);
        let none = train(&format!("{common} --checkpointing none")).unwrap();
        prop_assert!(offload.memory.total <= none.memory.total, "{}: {} > {}", id, offload.memory.total.0, none.memory.total.0);
    }
}

/// The catalog models `--engine unsloth` plans (Llama, Mistral and Qwen3 dense ones).
fn unsloth_ids() -> &'static [String] {
    static IDS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| {
        let ids: Vec<String> = model_ids()
            .into_iter()
            .filter(|id| train(&format!("{id} --mode qlora --engine unsloth --context 4096")).is_ok())
            .collect();
        assert!(ids.len() > 10, "unsloth plans only {ids:?}");
        ids
    })
}

fn train(args: &str) -> Result<headroom::report::PlanReport, String> {
    let argv = ["headroom", "plan"].into_iter().chain(args.split_whitespace());
    let Command::Plan(plan_args) = Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command else {
        unreachable!()
    };
    report(&plan_args).map_err(|e| e.to_string())
}

/// The properties above run real plans: the argument strings they build are accepted.
#[test]
fn generated_arguments_are_valid() {
    assert_eq!(plan("llama-2-7b --engine hf --context 4096 --batch 1 --gpu h100-sxm:8 --attention eager"), Ok(()));
    assert_eq!(
        plan("mixtral-8x7b --mode best-of-n --context 1024 --batch 2 --zero 3 --gpu a100-80gb:8 --engine hf --rollout-engine vllm --response-tokens 1"),
        Ok(())
    );
    assert_eq!(
        plan("llama-2-7b --mode adapter-v2 --context 1024 --batch 2 --zero 3 --gpu a100-80gb:8 --engine litgpt"),
        Ok(())
    );
}
