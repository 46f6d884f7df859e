//! `headroom plan --mode ...` as a user runs it: the must-hold numbers, the Llama 2
//! launch-discussion facts, and invalid combinations.

mod support;

use serde_json::Value;
use support::cli::{f, fits, headroom, plan_json, u};

const P7B: f64 = 6_738_415_616.0;

#[test]
fn full_mixed_adamw_is_2_and_12_bytes_per_parameter() {
    let v = plan_json("llama-2-7b --mode full --optimizer adamw --context 1024 --gpu h100-sxm");
    assert_eq!(u(&v, "/model/trainable_parameters"), 6_738_415_616);
    let grads = u(&v, "/memory/gradients_bytes") as f64 / P7B;
    let opt = u(&v, "/memory/optimizer_bytes") as f64 / P7B;
    assert!((grads - 2.0).abs() / 2.0 < 0.01, "{grads}");
    assert!((opt - 12.0).abs() / 12.0 < 0.01, "{opt}");
    // A fused mixed-precision step adds no temporaries: the peak holds every gradient.
    assert!(["backward", "optimizer"].contains(&v["training"]["peak_phase"].as_str().unwrap()));
    assert_eq!(v["training"]["phases"].as_array().unwrap().len(), 3);
    assert!(!fits(&v), "16 B/param of 6.7e9 is more than 80 GB");
}

#[test]
fn zero3_over_8_gpus_divides_model_states_by_8_plus_gather_buffers() {
    let one = plan_json("llama-2-7b --mode full --context 1024");
    let z3 = plan_json("llama-2-7b --mode full --context 1024 --zero 3 --gpu a100-80gb:8");
    // The peak moment of ZeRO-3 is the backward start (no gradients yet): compare model states.
    for field in ["weights_bytes", "gradients_bytes", "optimizer_bytes"] {
        let path = format!("/training/models/0/{field}");
        let (a, b) = (u(&one, &path), u(&z3, &path));
        assert!(b.abs_diff(a / 8) <= 8, "{field}: {b} vs {a}/8");
    }
    let buffers = u(&z3, "/memory/workspace_bytes") - u(&one, "/memory/workspace_bytes");
    assert_eq!(buffers, 3 * 2 * 202_383_360, "two gathered layers + one layer's gradients, bf16");
    assert_eq!(z3["per_gpu"].as_array().unwrap().len(), 8);
    assert!(fits(&z3));
}

#[test]
fn lora_trainable_parameters() {
    let all = plan_json("llama-2-7b --mode lora --lora-rank 16 --lora-targets all-linear");
    assert_eq!(u(&all, "/model/trainable_parameters"), 39_976_960);
    let qv = plan_json("llama-2-7b --mode lora --lora-rank 8 --lora-targets q_proj,v_proj");
    assert_eq!(u(&qv, "/model/trainable_parameters"), 4_194_304);
}

/// Llama 2 launch discussions: 7B QLoRA trains on a free 16 GB T4 (Colab, gradient
/// checkpointing, short Alpaca-style sequences).
#[test]
fn qlora_7b_trains_on_a_t4() {
    assert!(fits(&plan_json("llama-2-7b --mode qlora --context 512 --checkpointing full --gpu t4")));
}

/// QLoRA under `--precision amp`: the 4-bit base keeps its 16-bit embeddings and lm_head (the
/// same weights as under mixed), autocast copies no 4-bit linear, and the default base is NF4
/// double-quant as for any QLoRA plan.
#[test]
fn qlora_under_amp_copies_no_quantized_weight() {
    let plan = |p: &str| plan_json(&format!("llama-2-7b --mode qlora --weights nf4 --precision {p}"));
    // Against mixed precision in a loop without autocast, whose fp32 adapters keep fp32 copies
    // of their inputs as amp's fp32 residual stream does.
    let (amp, mixed) = (plan("amp"), plan("mixed --no-autocast"));
    assert_eq!(u(&amp, "/memory/weights_bytes"), u(&mixed, "/memory/weights_bytes"));
    // An autocast copy of the 4-bit linears would be 2 B × 6.5e9 = 13 GB of activations.
    assert!(u(&amp, "/memory/activations_bytes") < u(&mixed, "/memory/activations_bytes") + (1 << 30));
    assert_eq!(plan_json("llama-2-7b --mode qlora --precision amp")["request"]["weights"], "nf4-dq");
}

/// 70B QLoRA trains on one 80 GB A100 (Dettmers et al.: 65B on one 48 GB GPU).
#[test]
fn qlora_70b_trains_on_one_a100_80gb() {
    let v = plan_json("llama-2-70b --mode qlora --context 1024 --checkpointing full --gpu a100-80gb");
    assert!(fits(&v));
    assert!(!fits(&plan_json("llama-2-70b --mode lora --context 1024 --checkpointing full --gpu a100-80gb")));
}

/// RLHF needs far more than supervised fine-tuning of the same model: PPO keeps four models.
#[test]
fn ppo_needs_far_more_than_sft() {
    let sft = plan_json("llama-2-7b --mode full --context 1024");
    let ppo = plan_json("llama-2-7b --mode ppo --context 1024");
    assert!(u(&ppo, "/memory/total_bytes") as f64 > 1.5 * u(&sft, "/memory/total_bytes") as f64);
    let roles: Vec<&str> =
        ppo["training"]["models"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["policy", "reference", "critic", "reward"]);
    let grpo = plan_json("llama-2-7b --mode grpo --context 1024 --group-size 8");
    assert!(grpo["training"]["phases"].as_array().unwrap().iter().any(|p| p["phase"] == "generation"));
    let dpo = plan_json("llama-2-7b --mode dpo --context 1024");
    assert_eq!(dpo["training"]["models"].as_array().unwrap().len(), 2);
}

/// DPO has a speed: two sequences per pair plus the reference's forward, slower per pair than
/// supervised training on one sequence, faster with precomputed reference log-probs; against a
/// reference of another architecture the model says it cannot tell.
#[test]
fn dpo_steps_have_a_speed() {
    let step = |args: &str| plan_json(args)["training_speed"]["step_time_s"].as_f64();
    let sft = step("llama-2-7b --mode full --context 1024 --gpu h200").unwrap();
    let dpo = step("llama-2-7b --mode dpo --context 1024 --gpu h200").unwrap();
    let precomputed = step("llama-2-7b --mode dpo --context 1024 --gpu h200 --reference precomputed").unwrap();
    assert!(dpo > precomputed && precomputed > sft, "{sft} {precomputed} {dpo}");
    assert_eq!(step("llama-2-7b --mode dpo --context 1024 --gpu h200 --reference llama-2-13b"), None);
}

/// PPO, GRPO and best-of-n steps include their rollout once --response-tokens says how long the
/// completions are: generation dominates, and more completions per prompt take longer.
#[test]
fn rollout_steps_have_a_speed_with_response_tokens() {
    let step = |args: &str| plan_json(args)["training_speed"]["step_time_s"].as_f64();
    let base = "llama-2-7b --context 1024 --gpu h200";
    assert_eq!(step(&format!("{base} --mode grpo --group-size 8")), None);
    let g8 = step(&format!("{base} --mode grpo --group-size 8 --response-tokens 512")).unwrap();
    let g4 = step(&format!("{base} --mode grpo --group-size 4 --response-tokens 512")).unwrap();
    let sft = step(&format!("{base} --mode full --batch 8")).unwrap();
    assert!(g8 > g4 && g8 > 5.0 * sft, "grpo g8 {g8}, g4 {g4}, sft over the same tokens {sft}");
    let bon = plan_json(&format!("{base} --mode best-of-n --group-size 4 --response-tokens 256"));
    assert!(bon["basis"].as_array().unwrap().iter().any(|b| b["name"] == "rollout: scoring (s per micro-batch)"));
    // PPO: one completion per prompt, four scoring forwards, and the critic's step after the actor's.
    let ppo = plan_json(&format!("{base} --mode ppo --response-tokens 512"));
    let names: Vec<&str> = ppo["basis"].as_array().unwrap().iter().filter_map(|b| b["name"].as_str()).collect();
    assert!(names.contains(&"critic training step (s)") && names.contains(&"rollout: scoring (s per micro-batch)"));
    let ppo_step = ppo["training_speed"]["step_time_s"].as_f64().unwrap();
    assert!(ppo_step > step(&format!("{base} --mode full")).unwrap() * 2.0, "{ppo_step}");
    // vLLM rollouts have no per-layer host bound: far faster generation.
    let vllm = step(&format!("{base} --mode grpo --group-size 8 --response-tokens 512 --rollout-engine vllm")).unwrap();
    assert!(vllm < g8 / 2.0, "vllm {vllm} vs hf {g8}");
    let (code, err) = error_of("llama-2-7b --context 1024 --gpu h200 --mode grpo --response-tokens 1024");
    assert!(code == 1 && err.contains("--response-tokens 1024"), "{err}");
}

/// A colocated vLLM engine holds `--gpu-memory-utilization` of each GPU (TRL's 0.3 by default)
/// for the whole run in place of transformers' per-phase rollout KV cache; a vLLM server on other
/// GPUs holds nothing there; a share too small for one sequence's KV cannot start.
#[test]
fn colocated_vllm_rollouts_reserve_their_share() {
    let base = "tinyllama-1.1b --mode grpo --group-size 8 --context 1024 --gpu h100-sxm";
    let phases = |v: &Value| -> Vec<String> {
        v["training"]["phases"].as_array().unwrap().iter().map(|p| p["phase"].as_str().unwrap().to_string()).collect()
    };
    let hf = plan_json(base);
    let colocated = plan_json(&format!("{base} --rollout-engine vllm"));
    let server = plan_json(&format!("{base} --rollout-engine vllm-server"));
    assert!(phases(&hf).contains(&"generation".to_string()));
    assert!(
        !phases(&colocated).contains(&"generation".to_string()) && !phases(&server).contains(&"generation".to_string())
    );
    let capacity = u(&colocated, "/fit/capacity_bytes") as f64;
    let reserved = u(&colocated, "/memory/rollout_engine_bytes") as f64;
    assert!((reserved / capacity - 0.3).abs() < 1e-6, "{reserved} of {capacity}");
    assert_eq!(u(&server, "/memory/rollout_engine_bytes"), 0);
    assert_eq!(u(&hf, "/memory/rollout_engine_bytes"), 0);
    // The training step's own peak is the same; only the colocated share adds to it.
    let train_peak = |v: &Value| {
        v["training"]["phases"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["phase"] == "backward")
            .map(|p| u(p, "/memory/total_bytes"))
            .next()
            .unwrap()
    };
    assert_eq!(train_peak(&colocated) - train_peak(&server), reserved as u64);
    let half = plan_json(&format!("{base} --rollout-engine vllm --gpu-memory-utilization 0.5"));
    assert!(u(&half, "/memory/rollout_engine_bytes") > reserved as u64);
    // 2% of 80 GB cannot hold 1.1B parameters in bf16, let alone a KV pool: vLLM would not start.
    let tiny = plan_json(&format!("{base} --rollout-engine vllm --gpu-memory-utilization 0.02"));
    assert!(!fits(&tiny) && tiny["fit"]["headroom_bytes"].as_i64().unwrap() > 0);
    assert!(tiny["basis"].as_array().unwrap().iter().any(|b| b["name"] == "colocated vLLM cannot start"));
    assert_one_line_errors(&[
        ("tinyllama-1.1b --mode grpo --rollout-engine vllm", "--gpu"),
        ("tinyllama-1.1b --mode lora --rollout-engine vllm --gpu h100-sxm", "ppo, grpo and best-of-n"),
        ("tinyllama-1.1b --mode grpo --gpu-memory-utilization 0.4 --gpu h100-sxm", "--rollout-engine vllm"),
        ("tinyllama-1.1b --rollout-engine vllm", "training plans"),
        ("tinyllama-1.1b --mode grpo --rollout-engine vllm --gpu-memory-utilization 1.0 --gpu h100-sxm", "(0, 1)"),
    ]);
}

fn error_of(args: &str) -> (i32, String) {
    let out = headroom().arg("plan").args(args.split_whitespace()).output().unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Each `plan ARGS` fails with exit 1 and one line of error that contains its needle.
fn assert_one_line_errors(cases: &[(&str, &str)]) {
    for (args, needle) in cases {
        let (code, err) = error_of(args);
        assert_eq!(code, 1, "{args}: {err}");
        assert!(err.contains(needle), "{args}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    }
}

#[test]
fn invalid_combinations_are_one_line_errors() {
    assert_one_line_errors(&[
        ("llama-2-7b --mode qlora --weights fp32", "4-bit base"),
        ("llama-2-7b --mode full --zero 3", "--zero 3"),
        ("llama-2-7b --mode full --tp 3 --gpu a100-80gb:3", "tensor parallel degree 3"),
        ("llama-2-7b --mode full --weights nf4", "quantized base"),
        ("llama-2-7b --mode full --offload params --gpu a100-80gb:2 --zero 2", "--zero 3"),
        ("llama-2-7b --mode lora --lora-targets q_prj", "q_prj"),
        ("llama-2-7b --mode lora --engine headroom", "--engine headroom cannot run --mode lora"),
        ("llama-2-7b --mode full --engine headroom --checkpointing full", "cannot run --checkpointing"),
        ("llama-2-7b --mode full --engine headroom --gpu h100-sxm:2", "cannot run 2 GPUs"),
        ("llama-2-7b --mode full --engine litgpt --optimizer-in-backward", "LitGPT steps its optimizer"),
    ]);
}

#[test]
fn training_table_shows_phases() {
    let out = headroom().args(["plan", "llama-2-7b", "--mode", "ppo", "--context", "512"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("phase") && text.contains("critic backward") && text.contains("reward"), "{text}");
}

/// Rejection sampling / best-of-n: the policy generates n completions per prompt (n times the KV
/// cache of one), a frozen reward model scores them, and the step trains on one per prompt.
#[test]
fn best_of_n_generates_n_and_trains_on_one() {
    let v = plan_json("llama-2-7b --mode best-of-n --lora-rank 16 --group-size 8 --context 1024 --gpu a100-80gb");
    let roles: Vec<&str> =
        v["training"]["models"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["policy", "reward"]);
    let phases = v["training"]["phases"].as_array().unwrap();
    let generation = phases.iter().find(|p| p["phase"] == "generation").expect("a generation phase");
    // 8 sequences × 1024 tokens × 512 KiB.
    assert_eq!(u(generation, "/memory/kv_cache_bytes"), 8 * 1024 * 512 * 1024);
    let sft = plan_json("llama-2-7b --mode lora --lora-rank 16 --context 1024 --gpu a100-80gb");
    assert_eq!(u(&v, "/model/trainable_parameters"), u(&sft, "/model/trainable_parameters"));
    assert!(fits(&v));
}

/// With a 128k vocabulary the loss dominates long sequences; a chunked loss keeps one chunk's
/// logits instead of the sequence's fp32 log-probabilities (4 B × 128,256 × 8,192 = 3.9 GiB saved).
#[test]
fn chunked_loss_removes_the_vocabulary_sized_peak() {
    let args = "llama-3.1-8b --mode lora --lora-rank 16 --context 8192 --checkpointing full";
    let whole = plan_json(args);
    let chunked = plan_json(&format!("{args} --loss-chunk 1024"));
    let saved = |v: &Value| u(v, "/training/saved_activations_bytes");
    let vocab_fp32 = 4 * 128_256 * 8192;
    assert!(saved(&whole) - saved(&chunked) > vocab_fp32 * 9 / 10, "{} vs {}", saved(&whole), saved(&chunked));
    assert!(u(&chunked, "/memory/total_bytes") + (4u64 << 30) < u(&whole, "/memory/total_bytes"));
}

/// `--train-tokens`: the time is tokens ÷ tokens/s, the cost that time × the catalog's hourly
/// price × GPUs; the table shows one speed line.
#[test]
fn train_tokens_give_time_and_cost() {
    let v = plan_json("llama-2-7b --mode lora --context 2048 --gpu h100-sxm:2 --train-tokens 1e9");
    let rate = v["throughput"]["train_tokens_per_s"].as_f64().unwrap();
    let s = &v["training_speed"];
    let time = s["time_to_train_s"].as_f64().unwrap();
    assert!((time - 1e9 / rate).abs() / time < 1e-9, "{time} vs {rate}");
    assert_eq!(u(&v, "/training_speed/tokens_per_step"), 2 * 2048);
    assert!(s["mfu"].as_f64().unwrap() > 0.1 && s["mfu"].as_f64().unwrap() < 0.78);
    let cost = s["cost_usd"].as_f64().unwrap();
    let hourly = cost / (time / 3600.0) / 2.0;
    assert!(hourly > 0.5 && hourly < 20.0, "per GPU-hour {hourly}");
    let out =
        headroom().args("plan llama-2-7b --mode lora --gpu h100-sxm --train-tokens 1e9".split(' ')).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.lines().filter(|l| l.contains("speed: train")).count(), 1, "{text}");
    // Inference and RLHF plans have no training speed; training without a GPU neither.
    assert!(plan_json("llama-2-7b --mode full --context 1024")["throughput"]["train_tokens_per_s"].is_null());
}

/// `--nodes`: the gradient all-reduce crosses the 50 GB/s NIC instead of NVLink, so 2 nodes of 8
/// spend more time communicating than 1 node of 8, and `--no-overlap` exposes all of it.
#[test]
fn nodes_slow_the_all_reduce() {
    let args = "llama-2-7b --mode full --context 4096 --zero 3 --gpu h100-sxm:8";
    let one = plan_json(args);
    let two = plan_json(&format!("{args} --nodes 2"));
    let comm = |v: &Value| v["training_speed"]["communication_s"].as_f64().unwrap();
    assert!(comm(&two) > 5.0 * comm(&one), "{} vs {}", comm(&two), comm(&one));
    assert_eq!(u(&two, "/training_speed/tokens_per_step"), 16 * 4096);
    assert_eq!(u(&two, "/fit/gpu_count"), 16);
    let exposed = plan_json(&format!("{args} --nodes 2 --no-overlap"));
    assert_eq!(exposed["training_speed"]["exposed_communication_s"], exposed["training_speed"]["communication_s"]);
    let (code, err) = error_of("llama-2-7b --mode full --nodes 2");
    assert_eq!(code, 1);
    assert!(err.contains("--nodes 2 needs --gpu"), "{err}");
}

/// LitGPT trains with its own model code: its QLoRA quantizes lm_head (smaller weights) but
/// dequantizes it whole in forward and backward, so the 7B step peaks higher than transformers'.
#[test]
fn litgpt_training_plans() {
    let base = "llama-2-7b --mode qlora --weights nf4 --lora-targets q_proj,v_proj --lora-dropout 0.05 --precision bf16 --context 1304";
    let hf = plan_json(base);
    let lit = plan_json(&format!("{base} --engine litgpt"));
    assert!(u(&lit, "/memory/weights_bytes") < u(&hf, "/memory/weights_bytes"), "NF4 lm_head");
    assert!(u(&lit, "/memory/total_bytes") > u(&hf, "/memory/total_bytes") + 500_000_000);
    assert_eq!(lit["request"]["engine"], "litgpt");
    // LitGPT's own defaults and limits: bf16-mixed (fp32 weights) unless the base is 4-bit.
    let lora = plan_json("llama-2-7b --mode lora --engine litgpt --context 1024");
    assert!(lora["basis"].as_array().unwrap().iter().any(|b| b["name"] == "precision" && b["value"] == "amp"));
    assert_one_line_errors(&[
        ("llama-2-7b --mode lora --engine vllm", "litgpt"),
        ("llama-2-7b --mode lora --engine litgpt --precision mixed", "not a LitGPT precision"),
        ("llama-2-7b --mode qlora --engine litgpt --precision amp", "bf16-true"),
        ("llama-2-7b --mode grpo --engine litgpt", "TRL"),
        ("deepseek-v2-lite --mode lora --engine litgpt", "latent attention"),
        ("llama-2-7b --mode lora --engine litgpt --attention eager", "eager"),
        ("llama-2-7b --mode lora --engine litgpt --loss-chunk 256", "--loss-chunk"),
        ("llama-2-7b --mode lora --response-tokens 64", "--response-tokens"),
    ]);
}

/// LitGPT's `lora_query` / `lora_value` adapt the q and v parts of a fused QKV linear (GPT-NeoX's
/// `query_key_value`): StableLM-Alpha-3B trains the 2,097,152 parameters LitGPT's resource table
/// prints (16 layers × 8 × (2 × 4,096 + 2 × 4,096)), and naming the fused module adapts all three
/// parts. transformers + peft has no `q_proj` in that checkpoint.
#[test]
fn litgpt_lora_adapts_parts_of_a_fused_qkv() {
    let base = "stablelm-base-alpha-3b --mode lora --precision bf16 --context 1034";
    let qv = plan_json(&format!("{base} --engine litgpt --lora-targets q_proj,v_proj"));
    assert_eq!(u(&qv, "/model/trainable_parameters"), 2_097_152);
    let qkv = plan_json(&format!("{base} --engine litgpt --lora-targets query_key_value"));
    assert_eq!(u(&qkv, "/model/trainable_parameters"), 16 * 8 * (3 * 4096 + 3 * 4096));
    assert_one_line_errors(&[(
        "stablelm-base-alpha-3b --mode lora --lora-targets q_proj,v_proj",
        "matches no linear layer",
    )]);
}

/// LLaMA-Adapter is LitGPT's: it plans with LitGPT's model code by default, refuses other
/// engines and LoRA options, and v2 (scales on every linear output, trained norms) saves more.
#[test]
fn adapter_modes_plan_litgpt() {
    let base = "llama-2-7b --precision bf16 --context 1304";
    let v1 = plan_json(&format!("{base} --mode adapter"));
    let v2 = plan_json(&format!("{base} --mode adapter-v2"));
    assert_eq!(v1["request"]["engine"], "litgpt");
    assert_eq!((u(&v1, "/model/trainable_parameters"), u(&v2, "/model/trainable_parameters")), (1_229_760, 4_279_744));
    assert!(u(&v2, "/training/saved_activations_bytes") > u(&v1, "/training/saved_activations_bytes") + 4_000_000_000);
    assert_one_line_errors(&[
        ("llama-2-7b --mode adapter --engine hf", "--engine litgpt"),
        ("llama-2-7b --mode adapter --lora-rank 8", "--lora-rank"),
        ("llama-2-7b --mode adapter --lora-targets q_proj", "--lora-targets"),
        ("llama-2-7b --mode adapter-v2 --lora-dropout 0.1", "--lora-dropout"),
    ]);
}

/// torchtune's single-GPU full fine-tune of Llama 3.1 8B (`8B_full_single_device.yaml`: bf16,
/// PagedAdamW8bit, `optimizer_in_bwd`, activation checkpointing, a chunked loss) runs on an RTX
/// 4090 at batch 2 × 2,048 (its README). One gradient lives at a time, the largest (the 128,256 ×
/// 4,096 embedding in bf16), and the paged 8-bit states sit in unified memory outside the total,
/// so it fits on 24 GB; with a plain 8-bit AdamW and every gradient held it does not. The loss is
/// planned as `--loss-chunk`, which recomputes each chunk's logits; torchtune's own chunked loss
/// keeps every chunk's bf16 logits (1 GB more here, still inside the 4.8 GiB of headroom), so the
/// README's 18.9 GiB peak is not compared.
#[test]
fn torchtune_full_finetune_of_8b_fits_a_4090() {
    let common = "llama-3.1-8b --mode full --precision bf16 --context 2048 --batch 2 --checkpointing full --loss-chunk 512 --gpu rtx-4090";
    let v = plan_json(&format!("{common} --optimizer paged-adamw-8bit --optimizer-in-backward"));
    assert!(fits(&v));
    assert_eq!(u(&v, "/memory/gradients_bytes"), 128_256 * 4096 * 2);
    assert_eq!(v["training"]["phases"].as_array().unwrap().len(), 2, "the step runs inside backward");
    // Every matrix pages its 8-bit m and v; only the norms' states (under 100,000 elements) and
    // the absmax stay ordinary allocations.
    let paged = u(&v, "/training/paged_optimizer_bytes");
    let trainable = u(&v, "/model/trainable_parameters");
    let norms = (2 * 32 + 1) * 4096;
    assert_eq!(paged, 2 * (trainable - norms));
    let spill = u(&v, "/training/paged_to_host_bytes");
    assert!(spill > 0 && spill < paged, "{spill} of {paged} pages through host RAM");
    let plain = plan_json(&format!("{common} --optimizer adamw-8bit"));
    assert!(!fits(&plain));
    assert_eq!(u(&plain, "/training/paged_optimizer_bytes"), 0);
    assert!(u(&plain, "/memory/optimizer_bytes") > paged);
}

#[test]
fn optimizer_in_backward_refuses_gradient_accumulation() {
    let out = headroom()
        .args("plan llama-2-7b --mode full --optimizer-in-backward --grad-accum 8".split(' '))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--grad-accum 1") && !err.contains("panicked"), "{err}");
}

/// Offloaded checkpointing (torchtune's activation offloading, Unsloth's and axolotl's
/// offloaded gradient checkpointing): the 32 layer inputs of Llama-2-7B (4,096 tokens × 4,096 ×
/// 2 B each) move to host RAM, and the GPU keeps two of them; the recomputation is as under
/// full checkpointing.
#[test]
fn offloaded_checkpoints_move_layer_inputs_to_host_ram() {
    let common = "llama-2-7b --mode lora --precision bf16 --context 4096 --gpu a100-80gb";
    let full = plan_json(&format!("{common} --checkpointing full"));
    let off = plan_json(&format!("{common} --checkpointing offload"));
    let input = 4096 * 4096 * 2;
    assert_eq!(u(&off, "/training/host_bytes") - u(&full, "/training/host_bytes"), 32 * input);
    let saved = |v: &Value| u(v, "/training/saved_activations_bytes");
    assert_eq!(saved(&full) - saved(&off), 30 * input);
    assert_eq!(u(&full, "/memory/total_bytes") - u(&off, "/memory/total_bytes"), 30 * input);
    let tok_s = |v: &Value| f(v, "/throughput/train_tokens_per_s");
    assert!((tok_s(&off) - tok_s(&full)).abs() / tok_s(&full) < 1e-9, "the copies hide behind the compute");
}

/// Unsloth's step for Llama-3.1-8B QLoRA r32 on all projections at 16,384 tokens
/// (plan/training/unsloth.rs): offloaded checkpointing by default, so the GPU keeps two staging
/// buffers and the last layer's input (3 × 8,192 B per token) and host RAM the other 31 inputs;
/// after the layers, the final norm's input and inverse RMS and the fused loss's T×h gradient;
/// at the last layer's backward, its 102,536 B per token of saved tensors, 45,056 B of
/// transients and a fresh dequantized matrix beside the global one.
#[test]
fn unsloth_qlora_keeps_three_layer_inputs_and_no_logits() {
    let t = 16_384;
    let plan =
        plan_json(&format!("llama-3.1-8b --mode qlora --lora-rank 32 --engine unsloth --context {t} --gpu a100-80gb"));
    assert_eq!(u(&plan, "/training/host_bytes"), 31 * t * 8_192);
    assert_eq!(u(&plan, "/training/saved_activations_bytes"), t * (3 * 8_192 + 8_196 + 8_192));
    let phases = plan.pointer("/training/phases").unwrap().as_array().unwrap();
    let backward = phases.iter().find(|p| p["phase"] == "backward").unwrap();
    let dequantized = 2 * 14_336 * 4_096 + 4 * 14_336 * 4_096 / 64;
    assert_eq!(u(backward, "/memory/activations_bytes"), t * (3 * 8_192 + 102_536 + 45_056) + dequantized);
    // No vocabulary-sized tensor outlives a loss chunk: far below transformers with the same
    // offloading and a chunked loss.
    let hf = plan_json(&format!(
        "llama-3.1-8b --mode qlora --lora-rank 32 --checkpointing offload --loss-chunk 1024 --context {t} --gpu a100-80gb"
    ));
    assert!(u(&plan, "/memory/total_bytes") < u(&hf, "/memory/total_bytes"));
    // Without checkpointing every layer keeps its 110,728 B per token.
    let none = plan_json(&format!(
        "llama-3.1-8b --mode qlora --lora-rank 32 --engine unsloth --checkpointing none --context {t} --gpu a100-80gb"
    ));
    assert_eq!(u(&none, "/training/saved_activations_bytes"), t * (32 * 110_728 + 8_196 + 8_192));
}

#[test]
fn unsloth_refuses_what_its_fast_path_does_not_run() {
    assert_one_line_errors(&[
        ("llama-3.1-8b --engine unsloth", "add --mode lora"),
        ("llama-3.1-8b --mode full --engine unsloth", "--mode full"),
        ("llama-3.1-8b --mode lora --engine unsloth --lora-targets q_proj,v_proj", "all-linear"),
        ("llama-3.1-8b --mode lora --engine unsloth --lora-dropout 0.05", "--lora-dropout 0"),
        ("mixtral-8x7b --mode qlora --engine unsloth", "--engine hf"),
        ("gemma-2-9b --mode qlora --engine unsloth", "--engine hf"),
        ("llama-3.1-8b --mode lora --engine unsloth --tp 2 --gpu a100-80gb:2", "--tp"),
        ("llama-3.1-8b --mode lora --engine unsloth --loss-chunk 512", "--loss-chunk"),
        ("llama-3.1-8b --mode lora --attention xformers", "--engine unsloth"),
        ("llama-3.1-8b --mode lora --engine unsloth --weights int8", "nf4-dq"),
        ("llama-3.1-8b --mode lora --engine unsloth --weights fp32", "nf4-dq"),
        ("llama-3.1-8b --mode lora --engine unsloth --precision amp", "--precision amp"),
        ("llama-3.1-8b --mode lora --engine unsloth --checkpointing selective", "--checkpointing selective"),
        ("llama-3.1-8b --engine hf --attention xformers", "training attention"),
    ]);
    // xFormers saves K and V widened to all 32 query heads: 4 × (4,096 − 1,024) B more per token
    // in the recomputed layer.
    let common = "llama-3.1-8b --mode qlora --engine unsloth --context 8192";
    let (flash, xformers) = (plan_json(common), plan_json(&format!("{common} --attention xformers")));
    let backward = |v: &Value| {
        let phases = v.pointer("/training/phases").unwrap().as_array().unwrap().clone();
        u(phases.iter().find(|p| p["phase"] == "backward").unwrap(), "/memory/activations_bytes")
    };
    assert_eq!(backward(&xformers) - backward(&flash), 8_192 * 12_288);
    // A Llama with projection biases runs peft's layers under Unsloth, which are not modelled.
    let dir = tempfile::tempdir().unwrap();
    let config = include_str!("../data/models/llama-3.1-8b.json")
        .replace("\"attention_bias\": false", "\"attention_bias\": true");
    let path = dir.path().join("config.json");
    std::fs::write(&path, config).unwrap();
    let (code, err) = error_of(&format!("{} --mode qlora --engine unsloth", path.display()));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("projection biases") && err.contains("--engine hf"), "{err}");
}

/// TRL's trainers (0.26 and later) cast a quantized base's adapters to bf16: QLoRA under
/// transformers defaults to bf16 adapters, gradients and AdamW states (2 + 2 + 4 B per trainable
/// parameter); `--precision mixed` plans peft's fp32 adapters (4 + 4 + 8 B), as transformers'
/// Trainer and Unsloth keep them.
#[test]
fn qlora_adapters_are_bf16_under_trl_and_fp32_with_mixed() {
    let trainable = 4_194_304;
    let common = "llama-2-7b --mode qlora --lora-targets q_proj,v_proj";
    let trl = plan_json(common);
    let peft = plan_json(&format!("{common} --precision mixed"));
    assert_eq!(u(&trl, "/training/models/0/gradients_bytes"), 2 * trainable);
    assert_eq!(u(&trl, "/training/models/0/optimizer_bytes"), 4 * trainable);
    assert_eq!(u(&peft, "/training/models/0/gradients_bytes"), 4 * trainable);
    assert_eq!(u(&peft, "/training/models/0/optimizer_bytes"), 8 * trainable);
    let unsloth = plan_json("llama-2-7b --mode qlora --engine unsloth");
    assert_eq!(u(&unsloth, "/training/models/0/optimizer_bytes"), 8 * u(&unsloth, "/training/trainable_parameters"));
}

/// Unsloth offloads a layer input only above 1,048,576 elements and from 512 tokens of
/// `max_seq_length` on; below either, every input stays on the GPU (plain recomputation).
#[test]
fn unsloth_keeps_small_inputs_on_the_gpu() {
    let host = |args: &str| u(&plan_json(&format!("--mode qlora --engine unsloth {args}")), "/training/host_bytes");
    // Llama-3.2-1B (h 2,048, 16 layers): 512 × 2,048 = 1,048,576 elements is not above the
    // threshold; one more token is.
    assert_eq!(host("llama-3.2-1b --context 512"), 0);
    assert_eq!(host("llama-3.2-1b --context 513"), 15 * 513 * 4_096);
    // 511 tokens × 4 sequences of Llama-3.1-8B are over it, but Unsloth does not offload below 512.
    assert_eq!(host("llama-3.1-8b --context 511 --batch 4"), 0);
}

/// Qwen2's biased q/k/v keep peft's LoRA layers inside Unsloth's fast path: on a 4-bit base they
/// share the normed input the 4-bit matmuls save, on a 16-bit base each of the three adapters
/// saves its own bf16 copy; each lora_B keeps lora_A's r-wide output. Qwen2.5-7B (h 3,584, 28
/// layers) without checkpointing, r16: 3 × 2 × 16 B more per layer and token than the fused path
/// under QLoRA, and 2 × 2 × 3,584 more again under LoRA.
#[test]
fn unsloth_runs_qwen2_qkv_through_peft() {
    let t = 2_048;
    let saved = |mode: &str| {
        let v = plan_json(&format!(
            "qwen2.5-7b --mode {mode} --lora-rank 16 --engine unsloth --checkpointing none --context {t}"
        ));
        u(&v, "/training/saved_activations_bytes")
    };
    let (qlora, lora) = (saved("qlora"), saved("lora"));
    assert_eq!(lora - qlora, t * 28 * 2 * 2 * 3_584);
    let per_layer = |total: u64| total / t - 2 * 3_584 - 4 - 2 * 3_584;
    let h = 3_584;
    let (q, kv, i) = (3_584, 512, 18_944);
    let fused = 2 * h + 8 + 2 * h + 2 * (2 * q + 2 * kv) + 4 * 28 + 2 * h + 2 * h + 4 * i;
    assert_eq!(per_layer(qlora), 28 * (fused + 3 * 2 * 16));
}
