//! OLMo 2 and 3, Cohere's Command models, Granite 3, SmolLM3, StarCoder2, InternLM2,
//! StableLM and Seed-OSS: counts rebuilt by hand from their configs, and the layer layouts their
//! configuration classes imply.

mod support;

use headroom::model::config::parse_config;
use headroom::model::spec::{LayerAttention, MlpKind, ModelSpec, NormKind, QkNorm};
use headroom::model::tensors::{inventory, param_counts, Role};
use support::catalog::{spec, total};

fn sliding(s: &ModelSpec) -> Vec<u64> {
    (0..s.num_layers).filter(|&l| matches!(s.layer_attention[l as usize], LayerAttention::Sliding { .. })).collect()
}

/// OLMo-2-1124-7B: per layer q, k, v, o 4·4096², the MLP 3·4096·11,008, two post-norms 2·4096
/// and q/k norms over all 4096 channels each; embeddings and the untied head 2·100,352·4096.
/// The Hub's safetensors total is 7,298,617,344.
#[test]
fn olmo_2_norms_span_the_projections() {
    let h = 4096u64;
    let layer = 4 * h * h + 3 * h * 11_008 + 2 * h + 2 * h;
    assert_eq!(total("olmo-2-7b"), 32 * layer + h + 2 * 100_352 * h);
    assert_eq!(total("olmo-2-7b"), 7_298_617_344);
    // The 32B's GQA: k_norm spans 8 KV heads of 128.
    let s = spec("olmo-2-32b");
    assert_eq!(s.qk_norm, QkNorm::Full);
    let k_norm = inventory(&s).into_iter().find(|t| t.role == Role::AttnKNorm).unwrap();
    assert_eq!(k_norm.cols, 1024);
    // Olmo 3: the same layer, a 4096-token window on every layer but each fourth.
    let o3 = spec("olmo-3-7b");
    assert_eq!(sliding(&o3).len(), 24);
    assert!(o3.layer_attention[3] == LayerAttention::Full && o3.layer_attention[31] == LayerAttention::Full);
    assert_eq!(total("olmo-3-7b"), 32 * layer + h + 2 * 100_278 * h);
}

/// Command R: one bias-free LayerNorm per layer (parallel attention and MLP), tied embeddings
/// of 256,000 × 8192. Command R+ adds a LayerNorm per head for q and k ([96, 128], [8, 128]).
/// Command R7B slides three layers of four over 4096 tokens.
#[test]
fn cohere_layers_are_parallel_with_one_norm() {
    let h = 8192u64;
    let layer = 4 * h * h + 3 * h * 22_528 + h;
    assert_eq!(total("command-r"), 40 * layer + h + 256_000 * h);
    let plus = spec("command-r-plus");
    let (h, kv) = (12_288u64, 1024u64);
    let layer = 2 * h * h + 2 * h * kv + 3 * h * 33_792 + h + 96 * 128 + 8 * 128;
    assert_eq!(total("command-r-plus"), 64 * layer + h + 256_000 * h);
    assert!(plus.tie_word_embeddings && plus.norms_per_layer == 1 && plus.qk_norm == QkNorm::Full);
    assert!(!inventory(&plus).iter().any(|t| t.role == Role::Output || t.part == headroom::model::tensors::Part::Bias));
    let r7b = spec("command-r7b");
    assert_eq!(sliding(&r7b), (0..32).filter(|l| (l + 1) % 4 != 0).collect::<Vec<_>>());
    assert_eq!(r7b.layer_attention[0], LayerAttention::Sliding { window: 4096 });
    assert_eq!(total("command-r7b"), 8_028_033_024);
}

/// Granite 3.3 8B: Llama's layer (GQA 32/8), tied embeddings of 49,159 × 4096. SmolLM3 3B: tied,
/// every layer full attention (its RoPE-less layers still cache every token).
#[test]
fn granite_and_smollm3_are_llama_shaped() {
    let h = 4096u64;
    let layer = 2 * h * h + 2 * h * 1024 + 3 * h * 12_800 + 2 * h;
    assert_eq!(total("granite-3.3-8b"), 40 * layer + h + 49_159 * h);
    let smol = spec("smollm3-3b");
    assert!(smol.tie_word_embeddings && sliding(&smol).is_empty() && smol.num_kv_heads == 4);
    assert_eq!(total("smollm3-3b"), 3_075_098_624);
}

/// StarCoder2 3B: LayerNorms (weight and bias), q/k/v/o and c_fc/c_proj with biases, tied
/// embeddings (no key in the file), a 4096-token window on every layer.
#[test]
fn starcoder2_biases_and_tied_embeddings() {
    let s = spec("starcoder2-3b");
    assert!(s.tie_word_embeddings && s.mlp == MlpKind::Plain && s.norm == NormKind::LayerNorm);
    assert!(s.layer_attention.iter().all(|a| *a == LayerAttention::Sliding { window: 4096 }));
    let (h, kv, i) = (3072u64, 256u64, 12_288u64);
    let layer = (h * h + h) + 2 * (h * kv + kv) + (h * h + h) + (h * i + i) + (i * h + h) + 4 * h;
    assert_eq!(total("starcoder2-3b"), 30 * layer + 2 * h + 49_152 * h);
    assert!(!spec("starcoder2-15b").tie_word_embeddings);
}

/// InternLM2.5 7B: one fused wqkv of (32 + 2·8)·128 rows and no biases (`bias` false).
#[test]
fn internlm2_fuses_qkv() {
    let s = spec("internlm2.5-7b");
    assert!(s.fused_qkv && !s.biases.qkv);
    let qkv = inventory(&s).into_iter().find(|t| t.role == Role::AttnQkv).unwrap();
    assert_eq!((qkv.rows, qkv.cols), (48 * 128, 4096));
    assert_eq!(total("internlm2.5-7b"), 7_737_708_544);
}

/// StableLM 2 12B's layer: one LayerNorm (parallel residual), no biases, and per-head q/k
/// LayerNorms of weights only ([32, 160] and [8, 160]); StableLM 2 1.6B's q/k/v biases.
#[test]
fn stablelm_parallel_residual_and_per_head_norms() {
    let twelve = r#"{"model_type": "stablelm", "hidden_size": 5120, "intermediate_size": 13824, "num_hidden_layers": 40,
        "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 100352, "qk_layernorm": true,
        "use_parallel_residual": true, "use_qkv_bias": false}"#;
    let s = parse_config(twelve, "s", "test").unwrap().spec;
    assert_eq!((s.norms_per_layer, s.qk_norm, s.norm), (1, QkNorm::Full, NormKind::LayerNorm));
    let h = 5120u64;
    let layer = 2 * h * h + 2 * h * 1280 + 3 * h * 13_824 + 2 * h + (32 + 8) * 160;
    assert_eq!(param_counts(&s, &inventory(&s)).total, 40 * layer + 2 * h + 2 * 100_352 * h);
    let small = twelve
        .replace("\"qk_layernorm\": true", "\"qk_layernorm\": false")
        .replace("\"use_qkv_bias\": false", "\"use_qkv_bias\": true");
    let s = parse_config(&small, "s", "test").unwrap().spec;
    assert!(s.biases.qkv && !s.biases.attn_out && s.qk_norm == QkNorm::None);
}

/// Seed-OSS-36B: 64 layers of q 5120·10,240 with its bias, k and v 5120·1024 with theirs, o
/// 10,240·5120 without, the SwiGLU 3·5120·27,648 and two norms, beside an untied 155,136-token
/// vocabulary: 36,151,104,512. A config that leaves the bias flags out gets `SeedOssConfig`'s.
#[test]
fn seed_oss_biases_q_k_v_but_not_o() {
    let h = 5120u64;
    let layer = h * 10_240 + 10_240 + 2 * (h * 1024 + 1024) + 10_240 * h + 3 * h * 27_648 + 2 * h;
    assert_eq!(total("seed-oss-36b"), 64 * layer + h + 2 * 155_136 * h);
    assert_eq!(total("seed-oss-36b"), 36_151_104_512);
    let bare = r#"{"model_type": "seed_oss", "hidden_size": 512, "intermediate_size": 1024,
        "num_hidden_layers": 2, "vocab_size": 1000}"#;
    let s = parse_config(bare, "t", "t").unwrap().spec;
    assert!(s.biases.qkv && !s.biases.attn_out && !s.biases.mlp);
    assert_eq!((s.num_heads, s.num_kv_heads, s.head_dim), (80, 8, 128));
}
