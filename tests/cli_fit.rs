//! `headroom fit` and `headroom max` as a user runs them: exit codes, JSON shapes, the must-holds.

use assert_cmd::Command;
use serde_json::Value;

fn headroom() -> Command {
    Command::cargo_bin("headroom").unwrap()
}

fn json(args: &str) -> Value {
    let out = headroom().args(args.split_whitespace()).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn price(row: &Value) -> f64 {
    row["price"]["per_hour_usd"].as_f64().unwrap_or(f64::INFINITY)
}

/// 70B GPTQ: single 48 GB and 80 GB cards and multi-GPU consumer setups, cheapest first; a
/// single 24 GB card does not fit and is left out.
#[test]
fn fit_llama2_70b_gptq() {
    let v = json("fit llama-2-70b --weights gptq");
    let rows = v.as_array().unwrap();
    let has = |gpu: &str, n: u64| rows.iter().any(|r| r["fit"]["gpu"] == gpu && r["fit"]["gpu_count"] == n);
    for (gpu, n) in [("rtx-a6000", 1), ("l40s", 1), ("a100-80gb", 1), ("h100-sxm", 1), ("rtx-4090", 2), ("rtx-3090", 2)]
    {
        assert!(has(gpu, n), "{gpu}:{n} missing");
    }
    assert!(!has("rtx-4090", 1) && !has("a10", 1) && !has("l4", 1));
    assert!(rows.iter().all(|r| r["fit"]["fits"] == true));
    let prices: Vec<f64> = rows.iter().map(price).collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]), "not cheapest first: {prices:?}");
    // Shaped like `plan`'s output, plus a price.
    let first = &rows[0];
    for key in ["model", "memory", "fit", "throughput", "basis", "price"] {
        assert!(first.get(key).is_some(), "{key} missing");
    }
    assert!(first["price"]["per_hour_usd"].as_f64().unwrap() > 0.0);
    assert!(first["price"]["per_million_tokens_usd"].as_f64().unwrap() > 0.0);
}

#[test]
fn fit_filters() {
    let v = json("fit llama-2-7b --weights bf16 --engine vllm --min-decode-tokens-per-s 150 --max-price-per-hour 4");
    let rows = v.as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert!(r["throughput"]["decode_tokens_per_s"].as_f64().unwrap() >= 150.0);
        assert!(price(r) <= 4.0);
    }
}

#[test]
fn fit_rejects_gpu_and_bad_input() {
    let out = headroom().args(["fit", "llama-2-7b", "--gpu", "h100-sxm"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("drop --gpu"));
    let out = headroom().args(["fit", "no-such-model"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let out = headroom().args(["fit", "llama-2-7b", "--max-price-per-hour", "cheap"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// Llama-2-7B bf16 on an RTX 4090: the largest context that fits, and it is the boundary.
#[test]
fn max_context_is_the_fit_boundary() {
    let v = json("max llama-2-7b --gpu rtx-4090 --weights bf16");
    let c = v["max_context"].as_u64().unwrap();
    assert!(c > 4096 && c < 40_000, "{c}");
    assert!(v["max_batch"].as_u64().unwrap() >= 1);
    assert!(v["max_concurrency"].is_null(), "hf has no concurrency");
    let fits = |ctx: u64| {
        json(&format!("plan llama-2-7b --gpu rtx-4090 --weights bf16 --context {ctx}"))["fit"]["fits"]
            .as_bool()
            .unwrap()
    };
    assert!(fits(c) && !fits(c + 1));
}

#[test]
fn max_vllm_reports_concurrency_and_nothing_fits_is_null() {
    let v = json("max llama-2-7b --gpu h100-sxm --engine vllm --context 4096");
    assert!(v["max_concurrency"].as_u64().unwrap() >= 20);
    let v = json("max llama-2-70b --gpu rtx-4090 --weights bf16");
    assert!(v["max_context"].is_null() && v["max_batch"].is_null());
    let out = headroom().args(["max", "llama-2-7b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gpu"));
}

#[test]
fn plan_reports_speed_and_null_without_tflops() {
    let v = json("plan llama-2-7b --gpu m4-max --weights q4_k_m");
    assert!(v["throughput"]["prefill_tokens_per_s"].is_null());
    assert!(v["throughput"]["decode_tokens_per_s"].as_f64().unwrap() > 0.0);
    let v = json("plan llama-2-7b --gpu h200");
    assert!(v["throughput"]["time_to_first_token_s"].as_f64().unwrap() > 0.0);
}

#[test]
fn calibration_file_is_applied_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cal.json");
    std::fs::write(&path, r#"{"engines": {"hf": {"host_per_layer_ms": 2.0}}}"#).unwrap();
    let args = format!("plan llama-2-7b --gpu h200 --calibration {}", path.display());
    let v = json(&args);
    let latency = v["throughput"]["inter_token_latency_s"].as_f64().unwrap();
    assert!((latency - 0.064).abs() < 0.002, "{latency}");
    std::fs::write(&path, r#"{"engines": {"hf": {"bandwidth": 3.0}}}"#).unwrap();
    let out = headroom().args(args.split_whitespace()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    std::fs::write(&path, r#"{"engine": {}}"#).unwrap();
    let out = headroom().args(args.split_whitespace()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("documented shape"));
}

/// `fit --best-format --gpu`: every weight format that fits that one setup, most bits per weight
/// first (ties: faster decode first), shaped like fit's rows plus `bits_per_weight`. 70B in 16
/// or 8 bits does not fit two 24 GB cards; 4-bit formats do.
#[test]
fn best_format_ranks_fitting_formats_by_bits() {
    let v = json("fit llama-2-70b --gpu rtx-4090:2 --context 4096 --best-format");
    let rows = v.as_array().unwrap();
    let weights: Vec<&str> = rows.iter().map(|r| r["request"]["weights"].as_str().unwrap()).collect();
    for absent in ["bf16", "fp16", "q8_0", "int8"] {
        assert!(!weights.contains(&absent), "{absent} cannot fit 48 GB: {weights:?}");
    }
    for present in ["q4_k_m", "gptq", "nf4"] {
        assert!(weights.contains(&present), "{present} missing: {weights:?}");
    }
    let bits: Vec<f64> = rows.iter().map(|r| r["bits_per_weight"].as_f64().unwrap()).collect();
    assert!(bits.windows(2).all(|w| w[0] >= w[1]), "not most bits first: {bits:?}");
    assert!(bits[0] > 5.0 && bits[0] < 8.0, "{bits:?}");
    for r in rows {
        assert_eq!(r["fit"]["fits"], true);
        assert_eq!(r["fit"]["gpu_count"], 2);
        assert!(r.get("price").is_some() && r.get("throughput").is_some());
    }
    let out = headroom().args(["fit", "llama-2-7b", "--best-format"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--gpu"));
}

/// `--pricing cloud` ranks by on-demand hourly prices only, `--pricing own` by purchase prices
/// only; setups without such a price keep a null price and sort last.
#[test]
fn pricing_chooses_cloud_or_ownership_costs() {
    for (pricing, needle) in [("cloud", "on-demand cloud"), ("own", "purchase price")] {
        let rows = json(&format!("fit llama-2-13b --weights q4_k_m --pricing {pricing}"));
        let rows = rows.as_array().unwrap();
        let priced: Vec<&Value> = rows.iter().filter(|r| !r["price"].is_null()).collect();
        assert!(!priced.is_empty(), "{pricing}");
        assert!(priced.iter().all(|r| r["price"]["basis"].as_str().unwrap().contains(needle)), "{pricing}");
        let first_unpriced = rows.iter().position(|r| r["price"].is_null()).unwrap_or(rows.len());
        assert!(rows[first_unpriced..].iter().all(|r| r["price"].is_null()), "{pricing}: unpriced rows last");
        assert!(priced.windows(2).all(|w| price(w[0]) <= price(w[1])), "{pricing}: cheapest first");
    }
}

/// `fit` and `max` answer for a training `--mode` as they do for inference: the setups that
/// train the model, priced per million trained tokens, and the largest context a training step
/// fits at, which is the boundary of `plan --mode`.
#[test]
fn fit_and_max_answer_for_training_modes() {
    let rows = json("fit llama-2-7b --mode lora --context 1024");
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    for r in rows {
        assert_eq!(r["request"]["mode"], "lora");
        assert!(r["training"]["phases"].is_array(), "a training plan");
        assert!(r["fit"]["fits"].as_bool().unwrap());
    }
    // LoRA on 7B needs more than inference: the smallest cards that serve it cannot train it.
    let serve = json("fit llama-2-7b --context 1024");
    assert!(serve.as_array().unwrap().len() > rows.len());
    assert!(rows.iter().any(|r| r["price"]["per_million_tokens_usd"].as_f64().is_some()));

    let v = json("max llama-2-7b --gpu h100-sxm --mode lora");
    let c = v["max_context"].as_u64().unwrap();
    let fits = |ctx: u64| {
        json(&format!("plan llama-2-7b --gpu h100-sxm --mode lora --context {ctx}"))["fit"]["fits"].as_bool().unwrap()
    };
    assert!(fits(c) && !fits(c + 1), "{c}");
    for args in [["--mode", "lora", "--min-decode-tokens-per-s", "10"], ["--mode", "full", "--engine", "vllm"]] {
        let out = headroom().args(["fit", "llama-2-7b"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{args:?}");
    }
}

/// A bad `--in-use` is one error before the sweep, not an empty list of setups.
#[test]
fn fit_refuses_a_bad_in_use() {
    for value in ["nan", "500"] {
        let out = headroom().args(["fit", "gemma-3-1b", "--in-use", value]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("--in-use") && err.trim_end().lines().count() == 1, "{err}");
    }
}

/// `headroom accuracy` plans every built-in measurement now: every group's records sit within
/// their tolerances (the tests of tests/measurements.rs), and `--records` lists each one.
#[test]
fn accuracy_prints_the_track_record() {
    let groups = json("accuracy");
    let groups = groups.as_array().unwrap();
    assert!(groups.len() >= 5);
    let total: u64 = groups.iter().map(|g| g["records"].as_u64().unwrap()).sum();
    let within: u64 = groups.iter().map(|g| g["within_tolerance"].as_u64().unwrap()).sum();
    assert!(total >= 150 && within == total, "{within} of {total}");
    let records = json("accuracy --records");
    assert_eq!(records.as_array().unwrap().len() as u64, total);
}

/// Training setups that offload activations need host RAM: `fit` shows it per GPU (Llama 3.1
/// 8B at 16,384 tokens: 32 layer inputs × 16,384 × 4,096 × 2 B = 4 GiB), and only then.
#[test]
fn fit_shows_host_ram_when_training_offloads() {
    let text = |args: &str| {
        let out = headroom().args(args.split_whitespace()).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let offload = text("fit llama-3.1-8b --mode qlora --lora-rank 32 --checkpointing offload --context 16384");
    assert!(offload.contains("host RAM GiB per GPU") && offload.contains("4.00"), "{offload}");
    let plain = text("fit llama-3.1-8b --mode qlora --context 1024");
    assert!(!plain.contains("host RAM"), "{plain}");
}
