//! llama.cpp's `--fit` (src/plan/llama_fit.rs): the context along the line between the trained
//! and the minimum one, then layers and routed experts to host RAM by false position, each
//! checked against plans of the same request with the choice made by hand.

mod support;

use serde_json::Value;
use support::cli::{fits, headroom, plan_json, u};

const MIB: u64 = 1 << 20;
/// `-fitt`'s default: 1,024 MiB left free.
const MARGIN: i64 = 1024 * MIB as i64;

/// The GPU memory a plan leaves free (its headroom).
fn left(v: &Value) -> i64 {
    v.pointer("/fit/headroom_bytes").and_then(Value::as_i64).unwrap()
}

/// The plan's bytes on its GPUs beyond their CUDA contexts: what llama.cpp's dry run reports.
fn used(v: &Value) -> i64 {
    let gpus = v["per_gpu"].as_array().unwrap();
    gpus.iter().map(|g| (u(g, "/memory/total_bytes") - u(g, "/memory/cuda_context_bytes")) as i64).sum()
}

/// Memory free on each GPU after its CUDA context.
fn free(v: &Value) -> i64 {
    (u(v, "/fit/capacity_bytes") - u(v, "/memory/cuda_context_bytes")) as i64
}

/// Step 2's context for `base` (no --context): where the line between its plans at 4,096 and
/// 131,072 tokens meets `target` (given the plan at 131,072), rounded down to 256.
fn on_the_line(base: &str, target: impl Fn(&Value) -> i64) -> u64 {
    let (at_max, at_min) =
        (plan_json(&format!("{base} --context 131072")), plan_json(&format!("{base} --context 4096")));
    let target = target(&at_max);
    assert!(used(&at_max) > target && used(&at_min) < target);
    let line = 4096 + (131072 - 4096) * (target - used(&at_min)) / (used(&at_max) - used(&at_min));
    (line - line % 256) as u64
}

/// The value of the `llama.cpp --fit` basis row.
fn chosen(v: &Value) -> String {
    let rows = v["basis"].as_array().unwrap();
    let row = rows.iter().find(|b| b["name"] == "llama.cpp --fit").expect("a llama.cpp --fit row");
    row["value"].as_str().unwrap().to_string()
}

/// Llama-3.1-8B in bf16 on an RTX 4090 needs 7,990 MiB less at its trained 131,072 tokens: the
/// context falls to where the line between the plans at 4,096 and 131,072 tokens meets the
/// target, rounded down to 256, and every layer stays on the GPU.
#[test]
fn context_falls_along_the_line_between_the_minimum_and_the_trained_context() {
    let base = "llama-3.1-8b --weights bf16 --engine llama.cpp --gpu rtx-4090";
    let fitted = plan_json(&format!("{base} --fit"));
    let expected = on_the_line(base, |at_max| free(at_max) - MARGIN);
    assert_eq!(u(&fitted, "/request/context"), expected);
    assert_eq!(expected, 67_584);
    assert_eq!(chosen(&fitted), "-c 67584 -ngl 33");
    assert!(left(&fitted) >= MARGIN, "{}", left(&fitted));
    assert!(fitted.pointer("/host/kv_cache_bytes").is_none_or(|k| k == 0));
}

/// A plan that already leaves the margin changes nothing: Llama-3.1-8B Q4_K_M keeps all
/// 131,072 tokens on a 4090.
#[test]
fn a_plan_with_room_to_spare_is_unchanged() {
    let fitted = plan_json("llama-3.1-8b --weights q4_k_m --engine llama.cpp --gpu rtx-4090 --fit");
    assert_eq!(u(&fitted, "/request/context"), 131_072);
    assert_eq!(chosen(&fitted), "-c 131072 -ngl 33");
    assert!(left(&fitted) >= MARGIN);
}

/// Llama-3.1-70B Q4_K_M does not fit a 4090 even at 4,096 tokens: false position finds the
/// most layers that leave the margin, one more would not.
#[test]
fn dense_layers_move_to_host_ram_until_the_margin_is_met() {
    let base = "llama-3.1-70b --weights q4_k_m --engine llama.cpp --gpu rtx-4090";
    let fitted = plan_json(&format!("{base} --fit"));
    assert_eq!(u(&fitted, "/request/context"), 4096);
    let value = chosen(&fitted);
    let ngl: u64 = value.strip_prefix("-c 4096 -ngl ").unwrap().parse().unwrap();
    assert!((1..80).contains(&ngl), "{value}");
    let with = |n: u64| plan_json(&format!("{base} --context 4096 --n-gpu-layers {n}"));
    assert_eq!(used(&with(ngl)), used(&fitted));
    assert!(left(&with(ngl)) >= MARGIN && left(&with(ngl + 1)) < MARGIN);
    assert!(u(&fitted, "/host/kv_cache_bytes") > 0);
}

/// A context the user set stays; only the layers move, fewer of them than at 4,096 tokens.
#[test]
fn a_context_set_by_the_user_is_kept() {
    let base = "llama-3.1-70b --weights q4_k_m --engine llama.cpp --gpu rtx-4090 --fit";
    let short = chosen(&plan_json(base));
    let long = plan_json(&format!("{base} --context 16384"));
    assert_eq!(u(&long, "/request/context"), 16384);
    let ngl = |v: &str| v.rsplit(' ').next().unwrap().parse::<u64>().unwrap();
    assert!(ngl(&chosen(&long)) < ngl(&short), "{} vs {short}", chosen(&long));
    assert!(left(&long) >= MARGIN);
}

/// Layers the user placed stop the fit after the context step: llama.cpp loads them as set.
#[test]
fn layers_set_by_the_user_stop_the_fit_after_the_context() {
    let v = plan_json("llama-3.1-70b --weights q4_k_m --engine llama.cpp --gpu rtx-4090 --fit --n-gpu-layers 60");
    assert_eq!(u(&v, "/request/context"), 4096);
    assert_eq!(chosen(&v), "-c 4096 -ngl 60");
    assert!(v["basis"].as_array().unwrap().iter().any(|b| b["name"] == "llama.cpp --fit stopped"));
    assert!(!fits(&v));
}

/// gpt-oss-120b on a 4090: its dense weights fit with room to spare, so the front layers get
/// their routed experts back while the margin holds; the back ones keep theirs in host RAM.
/// Its 36 layers are alike, so `--n-cpu-moe N` holds the same bytes as N layers at the back.
#[test]
fn routed_experts_stay_in_host_ram_for_the_back_layers() {
    let base = "gpt-oss-120b --weights mxfp4_moe --engine llama.cpp --gpu rtx-4090";
    let fitted = plan_json(&format!("{base} --fit"));
    let value = chosen(&fitted);
    let (first, last) = value
        .strip_prefix("-c 4096 -ngl 37, experts of layers ")
        .and_then(|r| r.strip_suffix(" in host RAM"))
        .and_then(|r| r.split_once('–'))
        .unwrap_or_else(|| panic!("{value}"));
    let (first, last): (u64, u64) = (first.parse().unwrap(), last.parse().unwrap());
    assert_eq!(last, 35);
    let on_host = last + 1 - first;
    let with = |n: u64| plan_json(&format!("{base} --context 4096 --n-cpu-moe {n}"));
    assert_eq!(used(&with(on_host)), used(&fitted));
    assert!(left(&with(on_host)) >= MARGIN && left(&with(on_host - 1)) < MARGIN);
}

/// Over the catalog: whatever `--fit` chose on one GPU either leaves the margin or puts nothing
/// at all on the GPU; on two it fits.
#[test]
fn every_fit_leaves_the_margin_or_nothing_fits() {
    for model in [
        "llama-3.1-8b",
        "qwen3-30b-a3b",
        "gpt-oss-20b",
        "mixtral-8x7b",
        "deepseek-v2-lite",
        "gemma-3-27b",
        "llama-3.1-70b",
    ] {
        for gpu in ["rtx-3060", "rtx-4060-ti-16gb", "rtx-4090", "a100-80gb", "m4-max"] {
            let v = plan_json(&format!("{model} --weights q4_k_m --engine llama.cpp --gpu {gpu} --fit"));
            let value = chosen(&v);
            assert!(
                left(&v) >= MARGIN || value.ends_with("-ngl 0"),
                "{model} on {gpu}: {value}, {} MiB left",
                left(&v) >> 20
            );
        }
    }
}

#[test]
fn fit_refuses_what_it_cannot_search() {
    for (args, needle) in [
        ("llama-3.1-8b --weights q4_k_m --engine llama.cpp --fit", "add --gpu"),
        ("llama-3.1-8b --engine hf --gpu rtx-4090 --fit", "add --engine llama.cpp"),
        ("llama-3.1-8b --mode lora --gpu rtx-4090 --fit", "--fit"),
        ("llama-3.1-8b --engine llama.cpp --gpu rtx-4090 --fit-ctx 2048", "--fit"),
    ] {
        let out = headroom().arg("plan").args(args.split_whitespace()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{args}: {err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

/// On two GPUs the context falls along the same line, to a target lowered by three half
/// layers for the whole layers each GPU wastes; the layers are then placed anyway, the last
/// GPU filled first (and given the output layer), and each GPU holds the run `-ts` names.
#[test]
fn several_gpus_lower_the_target_by_the_layers_they_waste_then_split_the_layers() {
    let base = "llama-3.1-70b --weights q4_k_m --engine llama.cpp --gpu rtx-4090:2";
    let fitted = plan_json(&format!("{base} --fit"));
    // The target less (2 + 1) × a layer's weights ÷ 2.
    let expected = on_the_line(base, |at_max| {
        let model: i64 =
            at_max["per_gpu"].as_array().unwrap().iter().map(|g| u(g, "/memory/weights_bytes") as i64).sum();
        2 * (free(at_max) - MARGIN) - 3 * (model / 80) / 2
    });
    assert_eq!(u(&fitted, "/request/context"), expected);
    let gpus = |v: &Value| v["per_gpu"].as_array().unwrap().clone();
    let value = chosen(&fitted);
    let split: Vec<u64> = value.rsplit(" -ts ").next().unwrap().split(',').map(|n| n.parse().unwrap()).collect();
    assert_eq!(split.iter().sum::<u64>(), 81, "{value}");
    let runs: Vec<(u64, u64)> = gpus(&fitted).iter().map(|g| (u(g, "/layers/0"), u(g, "/layers/1"))).collect();
    assert_eq!(runs, vec![(0, split[0]), (split[0], 80)]);
    assert!(fits(&fitted));
}

/// gpt-oss-120b on two 4090s: the second GPU takes the output layer and dense-only layers, the
/// first then takes layers whole, and the second keeps its back layers' experts in host RAM.
#[test]
fn experts_of_the_last_gpus_back_layers_stay_in_host_ram() {
    let fitted = plan_json("gpt-oss-120b --weights mxfp4_moe --engine llama.cpp --gpu rtx-4090:2 --fit");
    let value = chosen(&fitted);
    let (split, experts) =
        value.strip_prefix("-c 4096 -ngl 37 -ts ").and_then(|r| r.split_once(", experts of layers ")).unwrap();
    let split: Vec<u64> = split.split(',').map(|n| n.parse().unwrap()).collect();
    let (first, last) = experts.strip_suffix(" in host RAM").and_then(|r| r.split_once('–')).unwrap();
    assert_eq!((last, split.iter().sum::<u64>()), ("35", 37));
    assert!(first.parse::<u64>().unwrap() > split[0], "{value}");
    assert!(fits(&fitted));
    // Two GPUs hold more experts than one.
    let one = chosen(&plan_json("gpt-oss-120b --weights mxfp4_moe --engine llama.cpp --gpu rtx-4090 --fit"));
    let host_layers = |v: &str| {
        let (a, b) = v.rsplit("layers ").next().unwrap().strip_suffix(" in host RAM").unwrap().split_once('–').unwrap();
        b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap()
    };
    assert!(host_layers(&value) < host_layers(&one), "{value} vs {one}");
}

/// A llama.cpp plan that does not fit says what `--fit` would load at its context.
#[test]
fn a_plan_that_does_not_fit_names_what_fit_would_load() {
    let base = "llama-3.1-70b --weights q4_k_m --engine llama.cpp --gpu rtx-4090 --context 8192";
    let out = headroom().arg("plan").args(base.split_whitespace()).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let fitted = chosen(&plan_json(&format!("{base} --fit")));
    assert!(text.contains(&format!("would load it as {fitted}: add --fit")), "{text}");
    // Once it fits, or with --fit, there is nothing to say.
    for args in [format!("{base} --fit"), "llama-3.1-8b --weights q4_k_m --engine llama.cpp --gpu rtx-4090".into()] {
        let out = headroom().arg("plan").args(args.split_whitespace()).output().unwrap();
        assert!(!String::from_utf8_lossy(&out.stdout).contains("would load it as"), "{args}");
    }
}

/// `headroom max` says what `--fit` loads beside its own limits, as `plan --fit` plans it.
#[test]
fn max_reports_what_fit_loads() {
    let base = "gpt-oss-120b --weights mxfp4_moe --engine llama.cpp --gpu rtx-4090";
    let out = headroom().arg("max").args(base.split_whitespace()).args(["--format", "json"]).output().unwrap();
    let max: Value = serde_json::from_slice(&out.stdout).unwrap();
    let planned = plan_json(&format!("{base} --fit"));
    assert_eq!(max["llama_fit"].as_str().unwrap(), chosen(&planned));
    assert_eq!(max["llama_fit_decode_tokens_per_s"], planned["throughput"]["decode_tokens_per_s"]);
    // Other engines have none.
    let out =
        headroom().args("max llama-3.1-8b --engine vllm --gpu h100-sxm --format json".split(' ')).output().unwrap();
    let vllm: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(vllm["llama_fit"].is_null());
}

/// Two sequences are two of llama.cpp's streams: `-c` counts both, rounded to 2 × 256, and the
/// plan's context is one sequence's share.
#[test]
fn sequences_are_streams_of_the_context() {
    let v = plan_json("llama-3.1-8b --weights bf16 --engine llama.cpp --gpu rtx-4090 --fit --batch 2");
    let context = u(&v, "/request/context");
    assert_eq!(context % 256, 0);
    assert!(context < 67_584, "{context}");
    assert_eq!(chosen(&v), format!("-c {} -ngl 33 -np 2", 2 * context));
    assert!(left(&v) >= MARGIN);
}

/// llama.cpp's own split gives each GPU the units whose position falls in its share of the free
/// memory: `-ngl 3` over eight GPUs puts the last two layers on GPUs 0 and 2 and the output
/// layer on GPU 5; the others hold only their CUDA context and compute buffer.
#[test]
fn units_go_to_the_gpus_whose_share_they_fall_in() {
    let v = plan_json("llama-3.1-8b --weights q4_k_m --engine llama.cpp --gpu rtx-4090:8 --n-gpu-layers 3");
    let layers: Vec<(u64, u64)> =
        (0..8).map(|i| (u(&v, &format!("/per_gpu/{i}/layers/0")), u(&v, &format!("/per_gpu/{i}/layers/1")))).collect();
    assert_eq!(layers[0], (30, 31));
    assert_eq!(layers[2], (31, 32));
    let weights = |i: usize| u(&v, &format!("/per_gpu/{i}/memory/weights_bytes"));
    assert!(weights(5) > 0 && layers[5].0 == layers[5].1, "{layers:?}");
    for i in [1, 3, 4, 6, 7] {
        assert_eq!(weights(i), 0, "GPU {i}: {layers:?}");
    }
}
