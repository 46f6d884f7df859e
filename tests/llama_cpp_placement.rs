//! Where llama.cpp puts a model: `--n-cpu-moe N` / `--cpu-moe` keep the routed experts of the
//! first N layers in host RAM (a GPU running their batched matmuls holds a copy of one layer's
//! experts), and the row split divides only the matrices.

mod support;

use headroom::model::tensors::inventory;
use headroom::quant::WeightFormat;
use support::catalog::spec;
use support::cli::{f, headroom, per_gpu, plan_json, u};

const MODEL: &str = "gpt-oss-120b --engine llama.cpp --weights mxfp4_moe --gpu rtx-4090 --context 8192";

/// gpt-oss-120b's routed experts in the MXFP4 MoE GGUF, all 36 layers alike.
fn expert_bytes() -> u64 {
    let s = spec("gpt-oss-120b");
    let format = WeightFormat::parse("mxfp4_moe").unwrap();
    inventory(&s).iter().filter(|t| t.role.is_routed_expert()).map(|t| format.tensor_bytes(t, &s).0).sum()
}

#[test]
fn cpu_moe_moves_every_routed_expert_to_host_ram() {
    let gpu = plan_json(MODEL);
    let split = plan_json(&format!("{MODEL} --cpu-moe"));
    let experts = expert_bytes();
    assert_eq!(experts % 36, 0);
    assert_eq!(u(&gpu, "/memory/weights_bytes") - u(&split, "/memory/weights_bytes"), experts);
    assert_eq!(u(&split, "/host/weights_bytes") - u(&gpu, "/host/weights_bytes"), experts);
    // One layer's experts are copied into the compute buffer for batched matmuls, which grows to
    // the larger of that copy and the activation peak.
    let compute = |v: &serde_json::Value| u(v, "/memory/workspace_bytes") + u(v, "/memory/activations_bytes");
    assert_eq!(compute(&split), compute(&gpu).max(u(&gpu, "/memory/workspace_bytes") + experts / 36));
    // The KV cache stays on the GPU.
    assert_eq!(u(&split, "/memory/kv_cache_bytes"), u(&gpu, "/memory/kv_cache_bytes"));
    // A decoded token reads the 4 of 128 experts it picks in each layer from host RAM: faster
    // RAM helps, less than in proportion (the GPU's share and the hand-offs stay).
    let read = split["basis"].as_array().unwrap().iter().find(|b| b["name"] == "host weights read per decode step");
    assert_eq!(read.unwrap()["value"], format!("{} B", experts / 32));
    let decode = |host: &str| {
        f(&plan_json(&format!("{MODEL} --cpu-moe --host-memory {host}")), "/throughput/decode_tokens_per_s")
    };
    let (two, four) = (decode("ddr5-6000:2"), decode("ddr5-6000:4"));
    assert!(
        two < f(&gpu, "/throughput/decode_tokens_per_s") / 3.0 && four > 1.5 * two && four < 2.0 * two,
        "{two} {four}"
    );
}

#[test]
fn n_cpu_moe_moves_the_first_layers_only() {
    let gpu = plan_json(MODEL);
    let split = plan_json(&format!("{MODEL} --n-cpu-moe 10"));
    assert_eq!(u(&gpu, "/memory/weights_bytes") - u(&split, "/memory/weights_bytes"), 10 * expert_bytes() / 36);
    // Below 32 tokens per ubatch the experts' matmuls stay on the CPU: no copy.
    let small = plan_json(&format!("{MODEL} --n-cpu-moe 10 --ubatch 16"));
    let small_gpu = plan_json(&format!("{MODEL} --ubatch 16"));
    assert_eq!(u(&small, "/memory/workspace_bytes"), u(&small_gpu, "/memory/workspace_bytes"));
    // More layers than the model has means all of them.
    assert_eq!(
        plan_json(&format!("{MODEL} --n-cpu-moe 99"))["memory"],
        plan_json(&format!("{MODEL} --cpu-moe"))["memory"]
    );
}

#[test]
fn cpu_moe_is_refused_where_it_means_nothing() {
    for (args, why) in [
        ("gpt-oss-120b --engine vllm --gpu h100-sxm --cpu-moe", "--cpu-moe is a llama.cpp option"),
        ("llama-2-7b --engine llama.cpp --weights q4_0 --gpu rtx-4090 --n-cpu-moe 4", "no routed experts"),
        ("gpt-oss-20b --mode lora --gpu h100-sxm --cpu-moe", "--cpu-moe"),
    ] {
        let out = headroom().arg("plan").args(args.split_whitespace()).output().unwrap();
        assert!(!out.status.success(), "{args}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(why), "{args}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}

/// `headroom max` gives the fewest layers whose experts must stay in host RAM: the plan fits
/// with that many and not with one fewer.
#[test]
fn max_finds_the_fewest_cpu_moe_layers_that_fit() {
    let out = headroom()
        .args(["max", "gpt-oss-120b", "--engine", "llama.cpp", "--weights", "mxfp4_moe", "--gpu", "rtx-4090"])
        .args(["--context", "32768", "--format", "json"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let n = u(&v, "/min_cpu_moe");
    assert!(n > 0 && n < 36, "{n}");
    let fits = |n: u64| {
        let args = format!(
            "gpt-oss-120b --engine llama.cpp --weights mxfp4_moe --gpu rtx-4090 --context 32768 --n-cpu-moe {n}"
        );
        support::cli::fits(&plan_json(&args))
    };
    assert!(fits(n) && !fits(n - 1));
    // Dense models and other engines have no such row.
    let dense = headroom()
        .args(["max", "llama-2-7b", "--engine", "llama.cpp", "--gpu", "rtx-4090", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&dense.stdout).unwrap();
    assert!(v["min_cpu_moe"].is_null());
}

/// Over two GPUs by layers, the first GPU holds the copy; each GPU's weights shrink by the
/// experts of its own layers below N. With --n-gpu-layers too, layers already on the host are
/// counted there once.
#[test]
fn layer_split_and_host_layers() {
    let two = "gpt-oss-120b --engine llama.cpp --weights mxfp4_moe --gpu rtx-4090:2 --context 8192";
    let layer = expert_bytes() / 36;
    let base = plan_json(two);
    let split = plan_json(&format!("{two} --n-cpu-moe 24"));
    // llama.cpp splits the 37 units (36 layers, then the output layer) by free memory: GPU 0
    // runs layers 0–18, GPU 1 layers 19–35 and the output layer.
    assert_eq!(per_gpu(&base, 0, "weights_bytes") - per_gpu(&split, 0, "weights_bytes"), 19 * layer);
    assert_eq!(per_gpu(&base, 1, "weights_bytes") - per_gpu(&split, 1, "weights_bytes"), 5 * layer);
    let peak = per_gpu(&base, 0, "activations_bytes");
    assert_eq!(
        per_gpu(&split, 0, "workspace_bytes") - per_gpu(&base, 0, "workspace_bytes"),
        layer.saturating_sub(peak)
    );
    assert_eq!(per_gpu(&split, 1, "workspace_bytes"), per_gpu(&base, 1, "workspace_bytes"));
    // Layers 0–9 wholly on the host (-ngl 27: the output layer and the last 26): their experts
    // count once, with the layers.
    let ngl = plan_json(&format!("{two} --n-gpu-layers 27"));
    let both = plan_json(&format!("{two} --n-gpu-layers 27 --n-cpu-moe 24"));
    assert_eq!(u(&both, "/host/weights_bytes") - u(&ngl, "/host/weights_bytes"), 14 * layer);
}

/// `-sm row` (`--split tensor`): the matrices are shared by rows; the KV cache, norms and the
/// routed experts stay on the main GPU.
#[test]
fn row_split_divides_only_the_matrices() {
    let one = plan_json("llama-2-70b --engine llama.cpp --weights q4_k_m --gpu h100-sxm --context 16384");
    let two =
        plan_json("llama-2-70b --engine llama.cpp --weights q4_k_m --gpu h100-sxm:2 --split tensor --context 16384");
    assert_eq!(per_gpu(&two, 0, "kv_cache_bytes"), u(&one, "/memory/kv_cache_bytes"));
    assert_eq!(per_gpu(&two, 1, "kv_cache_bytes"), 0);
    assert_eq!(per_gpu(&two, 0, "weights_bytes") + per_gpu(&two, 1, "weights_bytes"), u(&one, "/memory/weights_bytes"));
    // A mixture of experts keeps every routed expert on the main GPU.
    let moe = "gpt-oss-120b --engine llama.cpp --weights mxfp4_moe --gpu h100-sxm:2 --split tensor --context 8192";
    let v = plan_json(moe);
    assert!(per_gpu(&v, 0, "weights_bytes") - per_gpu(&v, 1, "weights_bytes") >= expert_bytes());
}

/// Only layers with routed experts hop to the CPU: DeepSeek-V2-Lite's first layer is dense, so
/// `--n-cpu-moe 16` makes 15 such layers, 30 hops a token.
#[test]
fn dense_layers_among_the_cpu_moe_ones_do_not_hop() {
    let v = plan_json("deepseek-v2-lite --weights q4_k_m --engine llama.cpp --gpu rtx-4090 --n-cpu-moe 16");
    let hops = v["basis"].as_array().unwrap().iter().find(|b| b["name"] == "GPU↔CPU hand-offs per decode step");
    assert!(hops.unwrap()["value"].as_str().unwrap().starts_with("30 × "), "{hops:?}");
}

/// `headroom max --cpu-moe` searches --n-gpu-layers with the experts still on the host: every
/// other layer of gpt-oss-120b then fits a 24 GB card.
#[test]
fn max_keeps_cpu_moe_for_the_gpu_layers_search() {
    let out = headroom()
        .args([
            "max",
            "gpt-oss-120b",
            "--engine",
            "llama.cpp",
            "--weights",
            "mxfp4_moe",
            "--gpu",
            "rtx-4090",
            "--cpu-moe",
        ])
        .args(["--context", "8192", "--format", "json"])
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["max_gpu_layers"], 37, "{v}");
    assert!(v["max_gpu_layers_decode_tokens_per_s"].as_f64().unwrap() > 0.0);
}

/// llama.cpp's routed-expert GEMMs at `n / (n + 72)` of the dense rate, n = ubatch · k / E:
/// gpt-oss-20b at the default ubatch gives each of 32 experts 64 tokens (0.47); a 2,048-token
/// ubatch lifts the MoE prompt rate, not a dense model's; vLLM has no such term. A 16-token
/// ubatch of Qwen3-30B-A3B touches 1 − (15/16)^16 = 64% of its experts, and only those pay.
#[test]
fn larger_ubatches_recover_the_moe_prompt_rate() {
    let base = "--engine llama.cpp --gpu rtx-4090 --context 4096";
    let moe = |ub: u32| plan_json(&format!("gpt-oss-20b --weights mxfp4_moe {base} --ubatch {ub}"));
    let dense = |ub: u32| plan_json(&format!("llama-3.1-8b --weights q4_0 {base} --ubatch {ub}"));
    let rate = |v: &serde_json::Value| {
        v["basis"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["name"] == "routed-expert GEMM rate in a prompt pass")
            .map(|b| b["value"].clone())
    };
    let touched = "72 tokens' work per touched expert per pass; 100% of experts touched";
    assert_eq!(rate(&moe(512)).unwrap(), format!("0.47 of dense ({touched})"));
    let qwen = plan_json(&format!("qwen3-30b-a3b --weights q4_0 {base} --ubatch 16"));
    assert!(rate(&qwen).unwrap().as_str().unwrap().ends_with("; 64% of experts touched)"), "{:?}", rate(&qwen));
    let pp = |v: &serde_json::Value| f(v, "/throughput/prefill_tokens_per_s");
    assert!(pp(&moe(2048)) > 1.4 * pp(&moe(512)), "{} {}", pp(&moe(2048)), pp(&moe(512)));
    assert!(pp(&dense(2048)) < 1.05 * pp(&dense(512)));
    let vllm = plan_json("gpt-oss-20b --engine vllm --gpu h100-sxm --context 4096");
    assert!(rate(&vllm).is_none());
}

/// `--tensor-split` (llama.cpp's `-ts`) shares the units (layers, then the output layer) by the
/// given proportions: 3,1 over Llama-2-70B's 81 units gives 61 and 20, the output layer with
/// the second GPU's 19 layers. A share per GPU, on llama.cpp only, one-line errors otherwise.
#[test]
fn tensor_split_shares_the_units_by_proportion() {
    let v =
        plan_json("llama-2-70b --engine llama.cpp --weights q4_k_m --gpu rtx-4090:2 --context 4096 --tensor-split 3,1");
    assert_eq!((u(&v, "/per_gpu/0/layers/0"), u(&v, "/per_gpu/0/layers/1")), (0, 61));
    assert_eq!((u(&v, "/per_gpu/1/layers/0"), u(&v, "/per_gpu/1/layers/1")), (61, 80));
    let even = plan_json("llama-2-70b --engine llama.cpp --weights q4_k_m --gpu rtx-4090:2 --context 4096");
    assert!(per_gpu(&v, 0, "weights_bytes") > per_gpu(&even, 0, "weights_bytes"));
    for (args, needle) in [
        ("llama-2-70b --engine llama.cpp --weights q4_k_m --gpu rtx-4090:2 --tensor-split 1", "one per GPU"),
        ("llama-2-70b --engine llama.cpp --weights q4_k_m --gpu rtx-4090:2 --tensor-split 0,0", "not all 0"),
        ("llama-2-70b --weights gptq --gpu rtx-4090:2 --tensor-split 1,1", "--engine llama.cpp"),
    ] {
        let out = headroom().arg("plan").args(args.split_whitespace()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle) && err.trim_end().lines().count() == 1, "{args}: {err}");
    }
}
