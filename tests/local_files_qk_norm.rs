//! Local files of the families with per-head q/k norms (Qwen3, Qwen3-MoE, Gemma 3): GGUF files
//! in llama.cpp's layouts and a Gemma 3 multimodal safetensors checkpoint, each counted exactly
//! against the spec's inventory.

mod support;

use headroom::model::config::parse_config;
use headroom::model::local::LocalModel;
use headroom::model::spec::{Family, LayerAttention, QkNorm};
use headroom::model::tensors::{inventory, param_counts, Role};
use headroom::quant::ggml::GgmlType::{F32, Q8_0};
use std::fs;
use support::gguf::{attention, gated_mlp, gguf_spec, open_gguf, qk_norms};
use support::*;
use tempfile::TempDir;

/// One layer's attention in llama.cpp names, with q/k norms of `head_dim`.
fn attention_with_norms(g: Gguf, l: u32, h: u64, q: u64, kv: u64, head_dim: u64) -> Gguf {
    qk_norms(attention(g, l, h, q, kv), l, &[head_dim], &[head_dim])
}

fn metadata(arch: &str, layers: u32, h: u32, heads: u32, kv: u32, head_dim: u32, ffn: u32) -> Gguf {
    let k = |name: &str| format!("{arch}.{name}");
    Gguf::default()
        .str("general.architecture", arch)
        .u32(&k("block_count"), layers)
        .u32(&k("context_length"), 40960)
        .u32(&k("embedding_length"), h)
        .u32(&k("feed_forward_length"), ffn)
        .u32(&k("attention.head_count"), heads)
        .u32(&k("attention.head_count_kv"), kv)
        .u32(&k("attention.key_length"), head_dim)
        .u32(&k("attention.value_length"), head_dim)
}

/// The file's parameters equal the inventory's, tensor for tensor.
fn assert_exact(g: &Gguf, name: &str) -> headroom::model::spec::ModelSpec {
    let (_dir, model) = open_gguf(g, name);
    let spec = gguf_spec(&model);
    assert_eq!(model.parameter_count(), param_counts(&spec, &inventory(&spec)).total, "{name}");
    assert!(model.tensors.iter().all(|t| t.role.is_some()), "{name}: every tensor has a role");
    let q_norm = model.tensors.iter().find(|t| t.name == "blk.1.attn_q_norm.weight").unwrap();
    assert_eq!((q_norm.role, q_norm.layer), (Some(Role::AttnQNorm), Some(1)));
    spec
}

/// llama.cpp's `qwen3`: Llama's tensors plus `attn_q_norm` / `attn_k_norm`; head_dim 128 with
/// hidden 256 and 4 heads (q is 512 wide), tied embeddings (no `output.weight`).
#[test]
fn qwen3_gguf_has_q_and_k_norms() {
    let mut g = metadata("qwen3", 2, 256, 4, 2, 128, 512).tensor("token_embd.weight", &[256, 1000], Q8_0);
    for l in 0..2 {
        g = gated_mlp(attention_with_norms(g, l, 256, 512, 256, 128), l, 256, 512, Q8_0).tensor(
            &format!("blk.{l}.ffn_norm.weight"),
            &[256],
            F32,
        );
    }
    let spec = assert_exact(&g.tensor("output_norm.weight", &[256], F32), "Qwen3-tiny-Q8_0.gguf");
    assert_eq!(spec.family, Family::Qwen3);
    assert_eq!((spec.head_dim, spec.q_width(), spec.norms_per_layer), (128, 512, 2));
    assert!(spec.qk_norm == QkNorm::PerHead && spec.tie_word_embeddings && spec.moe.is_none());
}

/// llama.cpp's `qwen3moe`: a router `ffn_gate_inp` and stacked `ffn_*_exps` in every layer, no
/// shared expert.
#[test]
fn qwen3moe_gguf_is_sparse_in_every_layer() {
    let mut g = metadata("qwen3moe", 2, 256, 4, 2, 128, 768)
        .u32("qwen3moe.expert_count", 8)
        .u32("qwen3moe.expert_used_count", 2)
        .u32("qwen3moe.expert_feed_forward_length", 128)
        .tensor("token_embd.weight", &[256, 1000], Q8_0)
        .tensor("output.weight", &[256, 1000], Q8_0);
    for l in 0..2 {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        g = attention_with_norms(g, l, 256, 512, 256, 128)
            .tensor(&t("ffn_norm"), &[256], F32)
            .tensor(&t("ffn_gate_inp"), &[256, 8], F32)
            .tensor(&t("ffn_gate_exps"), &[256, 128, 8], Q8_0)
            .tensor(&t("ffn_up_exps"), &[256, 128, 8], Q8_0)
            .tensor(&t("ffn_down_exps"), &[128, 256, 8], Q8_0);
    }
    let spec = assert_exact(&g.tensor("output_norm.weight", &[256], F32), "Qwen3-30B-A3B-tiny.gguf");
    assert_eq!(spec.family, Family::Qwen3Moe);
    let moe = spec.moe.unwrap();
    assert_eq!((moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size), (8, 2, 128));
    assert_eq!((moe.shared_intermediate_size, moe.first_dense_layers, moe.router_bias), (0, 0, false));
    assert!(spec.qk_norm == QkNorm::PerHead && !spec.tie_word_embeddings);
}

/// llama.cpp's `gemma3`: four norms per layer (attn_norm, post_attention_norm, ffn_norm,
/// post_ffw_norm), q/k norms, tied embeddings, and the window on five layers of six.
#[test]
fn gemma3_gguf_slides_on_five_layers_of_six() {
    let mut g = metadata("gemma3", 7, 256, 2, 1, 128, 512).u32("gemma3.attention.sliding_window", 512).tensor(
        "token_embd.weight",
        &[256, 1000],
        Q8_0,
    );
    for l in 0..7 {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        g = gated_mlp(attention_with_norms(g, l, 256, 256, 128, 128), l, 256, 512, Q8_0)
            .tensor(&t("post_attention_norm"), &[256], F32)
            .tensor(&t("ffn_norm"), &[256], F32)
            .tensor(&t("post_ffw_norm"), &[256], F32);
    }
    let spec = assert_exact(&g.tensor("output_norm.weight", &[256], F32), "gemma-3-tiny-Q8_0.gguf");
    assert_eq!(spec.family, Family::Gemma3);
    assert_eq!(spec.norms_per_layer, 4);
    assert!(spec.qk_norm == QkNorm::PerHead && spec.tie_word_embeddings && !spec.logit_softcap);
    let sliding = LayerAttention::Sliding { window: 512 };
    let expected: Vec<_> = (0..7).map(|l| if l == 5 { LayerAttention::Full } else { sliding }).collect();
    assert_eq!(spec.layer_attention, expected);
}

/// A `Gemma3ForConditionalGeneration` checkpoint (transformers 4.50's on-disk names), with a tiny
/// SigLIP tower (16 wide, 32 MLP, one layer, 4-pixel patches of 8: 4 positions) and projector:
/// the language model's tensors match the spec read from `text_config` exactly, the tower's and
/// projector's match its `vision_config` exactly, and none of them is in a decoder layer.
#[test]
fn gemma3_multimodal_safetensors_separate_the_vision_tower() {
    let mut tensors: Vec<(String, &str, Vec<u64>)> = vec![
        ("language_model.model.embed_tokens.weight".into(), "BF16", vec![100, 64]),
        ("language_model.model.norm.weight".into(), "BF16", vec![64]),
        ("multi_modal_projector.mm_input_projection_weight".into(), "BF16", vec![16, 64]),
        ("multi_modal_projector.mm_soft_emb_norm.weight".into(), "BF16", vec![16]),
    ];
    let v = |n: &str| format!("vision_tower.vision_model.{n}");
    for (name, shape) in [
        ("embeddings.patch_embedding.weight", vec![16, 3, 4, 4]),
        ("embeddings.patch_embedding.bias", vec![16]),
        ("embeddings.position_embedding.weight", vec![4, 16]),
        ("encoder.layers.0.layer_norm1.weight", vec![16]),
        ("encoder.layers.0.layer_norm1.bias", vec![16]),
        ("encoder.layers.0.self_attn.q_proj.weight", vec![16, 16]),
        ("encoder.layers.0.self_attn.q_proj.bias", vec![16]),
        ("encoder.layers.0.self_attn.k_proj.weight", vec![16, 16]),
        ("encoder.layers.0.self_attn.k_proj.bias", vec![16]),
        ("encoder.layers.0.self_attn.v_proj.weight", vec![16, 16]),
        ("encoder.layers.0.self_attn.v_proj.bias", vec![16]),
        ("encoder.layers.0.self_attn.out_proj.weight", vec![16, 16]),
        ("encoder.layers.0.self_attn.out_proj.bias", vec![16]),
        ("encoder.layers.0.layer_norm2.weight", vec![16]),
        ("encoder.layers.0.layer_norm2.bias", vec![16]),
        ("encoder.layers.0.mlp.fc1.weight", vec![32, 16]),
        ("encoder.layers.0.mlp.fc1.bias", vec![32]),
        ("encoder.layers.0.mlp.fc2.weight", vec![16, 32]),
        ("encoder.layers.0.mlp.fc2.bias", vec![16]),
        ("post_layernorm.weight", vec![16]),
        ("post_layernorm.bias", vec![16]),
    ] {
        tensors.push((v(name), "BF16", shape));
    }
    for l in 0..2 {
        let p = |n: &str| format!("language_model.model.layers.{l}.{n}.weight");
        for (name, shape) in [
            ("input_layernorm", vec![64]),
            ("self_attn.q_proj", vec![64, 64]),
            ("self_attn.k_proj", vec![32, 64]),
            ("self_attn.v_proj", vec![32, 64]),
            ("self_attn.o_proj", vec![64, 64]),
            ("self_attn.q_norm", vec![32]),
            ("self_attn.k_norm", vec![32]),
            ("post_attention_layernorm", vec![64]),
            ("pre_feedforward_layernorm", vec![64]),
            ("post_feedforward_layernorm", vec![64]),
            ("mlp.gate_proj", vec![128, 64]),
            ("mlp.up_proj", vec![128, 64]),
            ("mlp.down_proj", vec![64, 128]),
        ] {
            tensors.push((p(name), "BF16", shape));
        }
    }
    let config = r#"{"model_type": "gemma3", "torch_dtype": "bfloat16",
        "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 16, "intermediate_size": 32,
        "num_hidden_layers": 1, "num_attention_heads": 2, "patch_size": 4, "image_size": 8,
        "vision_use_head": false},
        "text_config": {"model_type": "gemma3_text", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 32,
        "vocab_size": 100, "sliding_window": 16}}"#;
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("model.safetensors"), safetensors_owned(&tensors)).unwrap();
    fs::write(dir.path().join("config.json"), config).unwrap();
    let model = LocalModel::open(dir.path()).unwrap();
    let spec = parse_config(config, "gemma3-tiny", "config.json").unwrap().spec;
    let counts = param_counts(&spec, &inventory(&spec));
    assert!(model.tensors.iter().all(|t| t.role.is_some()));
    assert_eq!(model.parameter_count(), counts.total);
    let vision = |is: bool| -> u64 {
        model.tensors.iter().filter(|t| t.role.is_some_and(Role::is_vision) == is).map(|t| t.elements()).sum()
    };
    assert_eq!(vision(false), counts.active);
    // 16·48 + 16 + 4·16 + 4·(16·16 + 16) + 32·16 + 32 + 16·32 + 16 + 3·2·16; 16·64 + 16.
    assert_eq!(vision(true), 3_104 + 1_040);
    assert_eq!(vision(true), spec.vision.unwrap().parameters());
    let outside = model.tensors.iter().filter(|t| !t.name.starts_with("language_model"));
    assert!(outside.clone().all(|t| t.layer.is_none() && t.role.is_some_and(Role::is_vision)));
    assert_eq!(outside.count(), 23);
    let k_norm = model.tensors.iter().find(|t| t.name.ends_with("layers.1.self_attn.k_norm.weight")).unwrap();
    assert_eq!((k_norm.role, k_norm.layer), (Some(Role::AttnKNorm), Some(1)));
}
