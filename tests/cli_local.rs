//! `plan` and `inspect` on local files: stored bytes win over formulas; broken files fail
//! cleanly.

mod support;

use serde_json::{json, Value};
use std::fs;
use support::cli::headroom;

/// config.json of the support module's Llama-shaped safetensors model.
fn tiny_llama_config() -> String {
    json!({
        "model_type": "llama", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
        "max_position_embeddings": 512, "torch_dtype": "bfloat16"
    })
    .to_string()
}

/// A directory with the tiny Llama's config.json (2 layers) and a safetensors file holding
/// `layers` of them.
fn tiny_llama_dir(layers: u32) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("config.json"), tiny_llama_config()).unwrap();
    let tensors = support::llama_tensors(0..layers, true, true);
    fs::write(dir.path().join("model.safetensors"), support::safetensors_owned(&tensors)).unwrap();
    dir
}

fn json_of(args: &[&str]) -> Value {
    let out = headroom().args(args).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn safetensors_directory_is_planned_from_its_bytes() {
    let dir = tiny_llama_dir(2);
    let path = dir.path().to_str().unwrap();

    // 2 layers × (64 + 64·64 + 2·32·64 + 64·64 + 64 + 3·64·128) + 2·100·64 + 64 elements, bf16.
    let params = 2 * (64 + 4096 + 4096 + 4096 + 64 + 3 * 8192) + 2 * 6400 + 64;
    let plan = json_of(&["plan", path, "--context", "128"]);
    assert_eq!(plan["model"]["parameters"], params);
    assert_eq!(plan["memory"]["weights_bytes"], 2 * params);
    assert_eq!(plan["request"]["weights"], "file: BF16");
    // KV: 2 layers · 2 · 2 KV heads · 16 · 2 B · 128 tokens.
    assert_eq!(plan["memory"]["kv_cache_bytes"], 2 * 2 * 2 * 16 * 2 * 128);

    let inspect = json_of(&["inspect", path]);
    assert_eq!(inspect["total_bytes"], 2 * params);
    // --weights overrides the file: the architecture in another format.
    let q = json_of(&["plan", path, "--weights", "fp32", "--context", "128"]);
    assert_eq!(q["memory"]["weights_bytes"], 4 * params);
}

#[test]
fn gguf_file_defaults_to_llama_cpp_and_its_stored_types() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tiny.gguf");
    fs::write(&file, support::llama_gguf(false).build()).unwrap();
    let plan = json_of(&["plan", file.to_str().unwrap(), "--context", "256"]);
    assert_eq!(plan["request"]["engine"], "llama.cpp");
    assert_eq!(plan["request"]["weights"], "file: Q4_K_M");
    let inspect = json_of(&["inspect", file.to_str().unwrap()]);
    let types: Vec<&str> =
        inspect["groups"].as_array().unwrap().iter().map(|g| g["stored_as"].as_str().unwrap()).collect();
    assert!(types.contains(&"q4_K") && types.contains(&"q6_K") && types.contains(&"f32"), "{types:?}");
}

#[test]
fn broken_files_fail_with_one_line_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, Vec<u8>); 4] = [
        ("truncated.gguf", support::llama_gguf(false).build()[..100].to_vec()),
        ("garbage.safetensors", b"not a safetensors file at all".to_vec()),
        ("config.json", b"{\"model_type\": \"llama\", \"hidden_size\": 0}".to_vec()),
        ("weird.json", b"{ not json".to_vec()),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        fs::write(&path, bytes).unwrap();
        for cmd in ["plan", "inspect"] {
            let out = headroom().args([cmd, path.to_str().unwrap()]).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{name}: {err}");
            assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
            assert!(err.contains(name) || err.contains("config"), "{name}: {err}");
        }
    }
}

#[test]
fn unsupported_architecture_names_the_supported_ones() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.json");
    fs::write(&path, r#"{"model_type": "rwkv", "hidden_size": 64}"#).unwrap();
    let out = headroom().args(["plan", path.to_str().unwrap()]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rwkv") && err.contains("llama"), "{err}");
}

/// Layers past `num_hidden_layers` in a checkpoint are a multi-token-prediction block (DeepSeek-V3's
/// `model.layers.61`), which engines load only for speculative decoding: the plan leaves them out.
#[test]
fn layers_past_the_config_are_left_out_as_a_drafter() {
    let dir = tiny_llama_dir(3);
    let params = 2 * (64 + 4096 + 4096 + 4096 + 64 + 3 * 8192) + 2 * 6400 + 64;
    let plan = json_of(&["plan", dir.path().to_str().unwrap(), "--context", "128"]);
    assert_eq!(plan["memory"]["weights_bytes"], 2 * params);
}

/// The tiny Llama as `mlx_lm.convert -q --q-group-size GROUP` writes it: every Linear and the
/// embedding as uint32-packed 4-bit codes with a bf16 scale and bias per group, norms in bf16.
fn tiny_llama_mlx_dir(group: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut config: Value = serde_json::from_str(&tiny_llama_config()).unwrap();
    config["quantization"] = json!({"group_size": group, "bits": 4});
    config["quantization_config"] = config["quantization"].clone();
    fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let mut tensors = Vec::new();
    for (name, dtype, shape) in support::llama_tensors(0..2, true, true) {
        let Some(module) = name.strip_suffix(".weight").filter(|_| shape.len() == 2) else {
            tensors.push((name, dtype, shape));
            continue;
        };
        let (n, k) = (shape[0], shape[1]);
        tensors.push((name.clone(), "U32", vec![n, k * 4 / 32]));
        tensors.push((format!("{module}.scales"), "BF16", vec![n, k / group]));
        tensors.push((format!("{module}.biases"), "BF16", vec![n, k / group]));
    }
    fs::write(dir.path().join("model.safetensors"), support::safetensors_owned(&tensors)).unwrap();
    dir
}

/// The tiny Llama as llm-compressor's W4A16 writes it with a group of `group` (compressed-tensors
/// `pack-quantized`): each decoder Linear as int32-packed codes, a bf16 scale per group and an
/// int32 [2] shape; embeddings, lm_head and norms in bf16.
fn tiny_llama_compressed_tensors_dir(group: u64) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut config: Value = serde_json::from_str(&tiny_llama_config()).unwrap();
    config["quantization_config"] = json!({"quant_method": "compressed-tensors", "format": "pack-quantized",
        "ignore": ["lm_head"], "config_groups": {"group_0": {"targets": ["Linear"],
            "weights": {"num_bits": 4, "type": "int", "strategy": "group", "group_size": group, "symmetric": true}}}});
    fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let mut tensors = Vec::new();
    for (name, dtype, shape) in support::llama_tensors(0..2, true, true) {
        let linear = name.contains(".layers.") && shape.len() == 2;
        let Some(module) = name.strip_suffix(".weight").filter(|_| linear) else {
            tensors.push((name, dtype, shape));
            continue;
        };
        let (n, k) = (shape[0], shape[1]);
        tensors.push((format!("{module}.weight_packed"), "I32", vec![n, k / 8]));
        tensors.push((format!("{module}.weight_scale"), "BF16", vec![n, k.div_ceil(group)]));
        tensors.push((format!("{module}.weight_shape"), "I32", vec![2]));
    }
    fs::write(dir.path().join("model.safetensors"), support::safetensors_owned(&tensors)).unwrap();
    dir
}

/// A compressed-tensors W4A16 checkpoint: its config alone plans the bytes its files hold, for
/// groups of 128 (`w4a16`) and 32 (`w4a16-g32`).
#[test]
fn compressed_tensors_config_matches_its_files() {
    for (group, format) in [(128u64, "w4a16"), (32, "w4a16-g32")] {
        let dir = tiny_llama_compressed_tensors_dir(group);
        let from_files = json_of(&["plan", dir.path().to_str().unwrap(), "--context", "128"]);
        let config = dir.path().join("config.json");
        let from_config = json_of(&["plan", config.to_str().unwrap(), "--context", "128"]);
        assert_eq!(from_config["request"]["weights"], format);
        // 2 layers × 7 Linears (rows × cols: q 64×64, k and v 32×64, o 64×64, gate and up
        // 128×64, down 64×128), each packed codes, a scale per row and group (a partial group
        // padded) and 8 B of shape; the embedding, lm_head and 5 norms bf16.
        let shapes = [(64u64, 64u64), (32, 64), (32, 64), (64, 64), (128, 64), (128, 64), (64, 128)];
        let codes: u64 = 2 * shapes.iter().map(|(n, k)| n * k / 2).sum::<u64>();
        let scales: u64 = 2 * shapes.iter().map(|(n, k)| n * k.div_ceil(group) * 2).sum::<u64>();
        let bytes = codes + scales + 14 * 8 + (2 * 6400 + 5 * 64) * 2;
        assert_eq!(from_files["memory"]["weights_bytes"], bytes, "group {group}");
        assert_eq!(from_config["memory"]["weights_bytes"], bytes, "group {group}");
    }
}

/// An mlx-community checkpoint plans in mlx-lm on a Mac, from its bytes; its config alone gives
/// the same bytes for the 64-wide groups headroom models, and is refused for others.
#[test]
fn mlx_checkpoints_plan_in_mlx_lm_from_their_bytes() {
    let dir = tiny_llama_mlx_dir(64);
    let path = dir.path().to_str().unwrap();
    // Linears and tables: 2 layers × (64·64 + 2·32·64 + 64·64 + 3·128·64) + 2·100·64 weights, at
    // 4 bits plus 2 × 16 bits per 64; norms 5 × 64 in bf16.
    let weights: u64 = 2 * (4096 + 4096 + 4096 + 3 * 8192) + 2 * 6400;
    let bytes = weights / 2 + weights / 64 * 4 + 5 * 64 * 2;
    let args = ["plan", path, "--gpu", "m3-max", "--context", "128"];
    let plan = json_of(&args);
    assert_eq!(plan["request"]["engine"], "mlx");
    assert_eq!(plan["request"]["weights"], "file: mlx-4bit");
    assert_eq!(plan["memory"]["weights_bytes"], bytes);
    let config = dir.path().join("config.json");
    let from_config = json_of(&["plan", config.to_str().unwrap(), "--gpu", "m3-max", "--context", "128"]);
    assert_eq!(from_config["memory"]["weights_bytes"], bytes);
    // Every scale and bias keeps its module's role: nothing is left over as "other".
    let inspect = json_of(&["inspect", path]);
    let groups = inspect["groups"].as_array().unwrap();
    assert!(groups.iter().all(|g| g["group"] != "other"), "{groups:?}");

    let g32 = tiny_llama_mlx_dir(32);
    let plan = json_of(&["plan", g32.path().to_str().unwrap(), "--gpu", "m3-max"]);
    assert_eq!(
        (plan["request"]["engine"].as_str(), plan["request"]["weights"].as_str()),
        (Some("mlx"), Some("file: MLX affine 4-bit g32"))
    );
    let config = g32.path().join("config.json");
    for (args, needle) in [
        (vec!["plan", config.to_str().unwrap()], "has no exact layout"),
        (vec!["plan", path, "--gpu", "h100-sxm"], "on Apple silicon only"),
        (vec!["plan", path, "--mode", "lora"], "mlx_lm.lora"),
    ] {
        let out = headroom().args(&args).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.code() == Some(1) && err.contains(needle) && err.lines().count() == 1, "{args:?}: {err}");
    }
}

/// A Hugging Face repo id plans the snapshot `hf download` left in the Hub cache: files that are
/// links into `blobs/`, the commit `refs/main` names.
#[cfg(unix)]
#[test]
fn repo_id_plans_its_snapshot_in_the_hugging_face_cache() {
    let cache = tempfile::tempdir().unwrap();
    let repo = cache.path().join("models--org--Tiny-Llama");
    fs::create_dir_all(repo.join("blobs")).unwrap();
    fs::create_dir_all(repo.join("refs")).unwrap();
    fs::write(repo.join("refs/main"), "c0ffee").unwrap();
    fs::write(repo.join("blobs/1"), tiny_llama_config()).unwrap();
    fs::write(repo.join("blobs/2"), support::safetensors_owned(&support::llama_tensors(0..2, true, true))).unwrap();
    // An older snapshot holding the config alone, which `main` no longer names.
    for (commit, files) in [("c0ffee", &["config.json", "model.safetensors"][..]), ("01d", &["config.json"])] {
        let snapshot = repo.join("snapshots").join(commit);
        fs::create_dir_all(&snapshot).unwrap();
        for (file, blob) in files.iter().zip(["../../blobs/1", "../../blobs/2"]) {
            std::os::unix::fs::symlink(blob, snapshot.join(file)).unwrap();
        }
    }
    let plan = |input: &str| {
        let out = headroom()
            .env("HF_HUB_CACHE", cache.path())
            .args(["plan", input, "--context", "128", "--format", "json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{input}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let params = 2 * (64 + 4096 + 4096 + 4096 + 64 + 3 * 8192) + 2 * 6400 + 64;
    let main = plan("org/Tiny-Llama");
    assert_eq!(main["model"]["id"], "Tiny-Llama");
    assert_eq!(main["request"]["weights"], "file: BF16");
    assert_eq!(main["memory"]["weights_bytes"], 2 * params);
    // The older revision has no weights: its config alone, planned in its own bf16.
    let old = plan("org/Tiny-Llama@01d");
    assert_eq!(old["request"]["weights"], "bf16");
    assert_eq!(old["memory"]["weights_bytes"], 2 * params);
}

/// A repo id not downloaded falls back to the built-in model published under it, and otherwise
/// says how to get its config.
#[test]
fn repo_id_without_a_download_uses_the_catalog_or_says_how_to_get_it() {
    let empty = tempfile::tempdir().unwrap();
    let run = |input: &str| {
        headroom().env("HF_HUB_CACHE", empty.path()).args(["plan", input, "--format", "json"]).output().unwrap()
    };
    let catalog = run("meta-llama/llama-2-7b-HF");
    assert!(catalog.status.success(), "{}", String::from_utf8_lossy(&catalog.stderr));
    let plan: Value = serde_json::from_slice(&catalog.stdout).unwrap();
    assert_eq!(plan["model"]["id"], "llama-2-7b");

    let unknown = run("someone/Llama-2-7b-chat-finetune");
    assert_eq!(unknown.status.code(), Some(1));
    let err = String::from_utf8_lossy(&unknown.stderr);
    assert!(err.contains("hf download someone/Llama-2-7b-chat-finetune config.json"), "{err}");
    assert!(err.contains("did you mean llama-2-7b"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
