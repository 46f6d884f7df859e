//! Llama 4: counts rebuilt from the configs, the chunked and MoE layer layouts, vLLM's chunked
//! KV groups, and llama.cpp's `llama4` GGUF.

mod support;

use headroom::model::config::parse_config;
use headroom::model::spec::{Family, LayerAttention, LayerMlp};
use headroom::model::tensors::{inventory, param_counts};
use headroom::quant::ggml::GgmlType::{F32, Q8_0};
use support::catalog::spec;
use support::gguf::{attention, experts, gated_mlp, gguf_spec, open_gguf, stored_elements};
use support::*;

/// Scout (hidden 5120; 40 heads and 8 KV heads of 128; vocab 202,048; 16 experts of 8192 and a
/// shared expert of 8192 in all 48 layers): attention 2·5120² + 2·5120·1024 = 62,914,560 and an
/// MoE block 16·3·5120·8192 + 3·5120·8192 + 16·5120 = 2,139,176,960 per layer, two norms, the
/// embedding and the untied head; then the vision encoder, adapter and projector (871,932,416).
/// Meta's "109B total, 17B active".
#[test]
fn scout_counts_from_its_config() {
    let s = spec("llama-4-scout");
    let h = 5120u64;
    let layer = 62_914_560 + 2_139_176_960 + 2 * h;
    let text = 48 * layer + h + 2 * 202_048 * h;
    assert_eq!(text, 107_769_861_120);
    let counts = param_counts(&s, &inventory(&s));
    assert_eq!(counts.total, text + 871_932_416);
    assert_eq!(counts.total, 108_641_793_536);
    // One routed expert and the shared one per token, the embedding and head: 17.2B.
    assert_eq!(counts.active, text - 48 * 15 * 3 * h * 8192);
    assert_eq!(counts.active, 17_172_894_720);
    // 36 chunked layers with RoPE, 12 full (3, 7, ... 47) without.
    let chunked: Vec<u64> =
        (0..48).filter(|&l| s.layer_attention[l as usize] == LayerAttention::Chunked { chunk: 8192 }).collect();
    assert_eq!(chunked.len(), 36);
    assert!((0..48).filter(|l| (l + 1) % 4 == 0).all(|l| s.layer_attention[l as usize] == LayerAttention::Full));
    assert!(s.layer_mlp.iter().all(|m| *m == LayerMlp::Moe));
}

/// Maverick: odd layers hold 128 experts, even layers a dense MLP of 16,384 (3·5120·16,384 =
/// 251,658,240); 401,583,781,376 in all (Meta's "400B").
#[test]
fn maverick_interleaves_dense_and_moe_layers() {
    let s = spec("llama-4-maverick");
    assert_eq!(s.layer_mlp[0], LayerMlp::Dense);
    assert_eq!(s.layer_mlp[1], LayerMlp::Moe);
    assert_eq!(s.layer_mlp.iter().filter(|m| **m == LayerMlp::Moe).count(), 24);
    assert_eq!(s.intermediate_size, 16_384);
    let counts = param_counts(&s, &inventory(&s));
    assert_eq!((counts.total, counts.active), (401_583_781_376, 17_184_691_200));
}

/// A text-only `llama4_text` config reads the same layers; `attention_chunk_size: null` turns
/// chunking off; explicit `moe_layers` and `no_rope_layers` win over the defaults.
#[test]
fn llama4_text_config_layouts() {
    let base = r#"{"model_type": "llama4_text", "hidden_size": 64, "intermediate_size": 32,
        "intermediate_size_mlp": 96, "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "num_local_experts": 4, "vocab_size": 100 EXTRA}"#;
    let parse = |extra: &str| parse_config(&base.replace("EXTRA", extra), "l", "test").unwrap().spec;
    let s = parse("");
    assert_eq!(s.family, Family::Llama4);
    assert_eq!(s.layer_attention[0], LayerAttention::Chunked { chunk: 8192 });
    assert_eq!(s.layer_attention[3], LayerAttention::Full);
    assert!(s.vision.is_none() && s.moe.unwrap().shared_intermediate_size == 32);
    let s = parse(r#", "attention_chunk_size": null, "moe_layers": [2]"#);
    assert!(s.layer_attention.iter().all(|a| *a == LayerAttention::Full));
    assert_eq!(s.layer_mlp, [LayerMlp::Dense, LayerMlp::Dense, LayerMlp::Moe, LayerMlp::Dense]);
    let s = parse(r#", "attention_chunk_size": 1024, "no_rope_layers": [0, 1, 1, 1]"#);
    assert_eq!(s.layer_attention[0], LayerAttention::Full);
    assert_eq!(s.layer_attention[3], LayerAttention::Chunked { chunk: 1024 });
    let err = parse_config(&base.replace("EXTRA", r#", "moe_layers": "odd""#), "l", "cfg.json").unwrap_err();
    assert!(err.to_string().contains("moe_layers"), "{err}");
    let huge = base.replace("EXTRA", r#", "attention_chunk_size": 18446744073709551615"#);
    let err = parse_config(&huge, "l", "cfg.json").unwrap_err();
    assert!(err.to_string().contains("attention_chunk_size"), "{err}");
}

/// vLLM holds ⌈min(chunk + max_num_batched_tokens, len) / 16⌉ blocks per chunked layer: Scout
/// on 4 H100s at 131,072 tokens (`vllm serve`'s 8,192 batched tokens) needs 8,192 blocks in its
/// full group and 3·1,024 in its chunked groups of 12 layers, so the plan's KV for one sequence
/// is 11,264 blocks × 12 layers × 16 tokens × 2 × 2 KV heads × 128 × 2 B.
#[test]
fn vllm_caps_chunked_layers() {
    let out = assert_cmd::Command::cargo_bin("headroom")
        .unwrap()
        .args(["plan", "llama-4-scout", "--gpu", "h100-sxm:4", "--engine", "vllm", "--context", "131072"])
        .args(["--format", "json"])
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kv = json["per_gpu"][0]["memory"]["kv_cache_bytes"].as_u64().unwrap();
    assert_eq!(kv, 11_264 * 12 * 16 * 2 * 2 * 128 * 2, "{json}");
}

/// With vLLM's hybrid KV cache manager off (the chunked-attention default of vLLM ~0.10.1 until
/// PR #29627) all 48 layers cache the whole context: 8,192 blocks × 48 layers. The option is
/// refused where vLLM refuses it (recurrent layers) or does not run.
#[test]
fn vllm_without_hybrid_manager_caches_every_layer_fully() {
    let run = |extra: &[&str]| {
        assert_cmd::Command::cargo_bin("headroom")
            .unwrap()
            .args(["plan", "--context", "131072", "--format", "json", "--disable-hybrid-kv-cache-manager"])
            .args(extra)
            .output()
            .unwrap()
    };
    let out = run(&["llama-4-scout", "--gpu", "h100-sxm:4", "--engine", "vllm"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kv = json["per_gpu"][0]["memory"]["kv_cache_bytes"].as_u64().unwrap();
    assert_eq!(kv, 8192 * 48 * 16 * 2 * 2 * 128 * 2, "{json}");
    for (extra, says) in [
        (&["llama-4-scout", "--engine", "hf"][..], "add --engine vllm"),
        (&["qwen3-next-80b-a3b", "--engine", "vllm"][..], "recurrent layers"),
    ] {
        let out = run(extra);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(says), "{err}");
    }
    // A model of recurrent layers alone is uniform: vLLM runs it with the manager off.
    assert!(run(&["mamba-2.8b", "--engine", "vllm"]).status.success());
}

/// llama.cpp's `llama4`: feed_forward_length is the dense width, expert_feed_forward_length the
/// experts'; experts every `interleave_moe_layer_step`-th layer; chunks of 8192 on three layers
/// of four (hard-coded in llama.cpp, no key).
#[test]
fn llama4_gguf_layers() {
    let h = 64u64;
    let mut g = Gguf::default()
        .str("general.architecture", "llama4")
        .u32("llama4.block_count", 4)
        .u32("llama4.context_length", 8192)
        .u32("llama4.embedding_length", h as u32)
        .u32("llama4.feed_forward_length", 96)
        .u32("llama4.expert_feed_forward_length", 32)
        .u32("llama4.interleave_moe_layer_step", 2)
        .u32("llama4.attention.head_count", 4)
        .u32("llama4.attention.head_count_kv", 2)
        .u32("llama4.expert_count", 4)
        .u32("llama4.expert_used_count", 1)
        .tensor("token_embd.weight", &[h, 100], Q8_0);
    for l in 0..4u32 {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        g = attention(g, l, h, h, 32).tensor(&t("ffn_norm"), &[h], F32);
        g = if l % 2 == 1 { experts(g, l, h, 4, 32, 32) } else { gated_mlp(g, l, h, 96, Q8_0) };
    }
    g = g.tensor("output_norm.weight", &[h], F32).tensor("output.weight", &[h, 100], Q8_0);
    let (_dir, model) = open_gguf(&g, "Llama-4-tiny-Q8_0.gguf");
    let s = gguf_spec(&model);
    assert_eq!(s.family, Family::Llama4);
    assert_eq!(s.layer_mlp, [LayerMlp::Dense, LayerMlp::Moe, LayerMlp::Dense, LayerMlp::Moe]);
    let chunk = LayerAttention::Chunked { chunk: 8192 };
    assert_eq!(s.layer_attention, [chunk, chunk, chunk, LayerAttention::Full]);
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&s, &inventory(&s)).total, stored);
}
