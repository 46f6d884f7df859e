//! Tests of the config.json reader: class defaults, each family's layout, exact counts.

use super::*;
use crate::model::tensors::{inventory, param_counts};

use crate::model::testing::LLAMA_2_7B_CONFIG as LLAMA_2_7B;

#[test]
fn llama_defaults_are_the_transformers_class_defaults() {
    let spec = parse_config(LLAMA_2_7B, "llama-2-7b", "test").unwrap().spec;
    assert_eq!((spec.num_kv_heads, spec.head_dim), (32, 128));
    assert!(!spec.tie_word_embeddings);
    assert_eq!(spec.biases, Biases::default());
    assert!(spec.layer_attention.iter().all(|a| *a == LayerAttention::Full));
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, 6_738_415_616);
}

#[test]
fn gemma2_alternates_sliding_and_global_layers_and_ties_embeddings() {
    let text = r#"{"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
        "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
        "head_dim": 256, "vocab_size": 256000, "sliding_window": 4096}"#;
    let spec = parse_config(text, "g", "test").unwrap().spec;
    assert!(spec.tie_word_embeddings);
    assert_eq!(spec.norms_per_layer, 4);
    assert_eq!(spec.layer_attention[0], LayerAttention::Sliding { window: 4096 });
    assert_eq!(spec.layer_attention[1], LayerAttention::Full);
}

#[test]
fn qwen2_slides_only_when_asked() {
    let text = r#"{"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
        "vocab_size": 100, "sliding_window": 32, "use_sliding_window": false}"#;
    let spec = parse_config(text, "q", "test").unwrap().spec;
    assert!(spec.layer_attention.iter().all(|a| *a == LayerAttention::Full));
    assert!(spec.biases.qkv && !spec.biases.attn_out);
}

/// Published counts: phi-1.5 1,418,270,720 and phi-2 2,779,683,840 (Hugging Face Hub
/// safetensors metadata). Per layer 4·(h²+h) + 2·h·i + i + h + 2·h, plus an untied lm_head
/// with a vocab-long bias: phi-2 = 2·131,072,000 + 51,200 + 32·78,671,360 + 5,120.
#[test]
fn phi_has_biases_everywhere_one_layernorm_and_an_lm_head_bias() {
    let phi = |h: u64, i: u64, layers: u64, rotary: f64| {
        let text = serde_json::json!({"model_type": "phi", "hidden_size": h, "intermediate_size": i,
            "num_hidden_layers": layers, "num_attention_heads": 32, "vocab_size": 51200,
            "partial_rotary_factor": rotary, "tie_word_embeddings": false, "qk_layernorm": false});
        parse_config(&text.to_string(), "phi", "test").unwrap().spec
    };
    let phi_1_5 = phi(2048, 8192, 24, 0.5);
    assert_eq!((phi_1_5.num_kv_heads, phi_1_5.norms_per_layer, phi_1_5.mlp), (32, 1, MlpKind::Plain));
    assert_eq!(phi_1_5.biases, Biases { qkv: true, attn_out: true, mlp: true, lm_head: true });
    assert!(!phi_1_5.fused_qkv && !phi_1_5.tie_word_embeddings && phi_1_5.norm == NormKind::LayerNorm);
    assert_eq!(param_counts(&phi_1_5, &inventory(&phi_1_5)).total, 1_418_270_720);
    let phi_2 = phi(2560, 10240, 32, 0.4);
    assert_eq!(param_counts(&phi_2, &inventory(&phi_2)).total, 2_779_683_840);
    let qk_norm = r#"{"model_type": "phi", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 100, "qk_layernorm": true}"#;
    let err = parse_config(qk_norm, "p", "cfg.json").unwrap_err().to_string();
    assert!(err.contains("'qk_layernorm' = true"), "{err}");
}

/// Gemma 3 1B's fields: 26 layers, window 512 on five of every six (layers 5, 11, 17 and 23 are
/// global), q/k norms, four norms per layer, tied embeddings, no logit soft-capping. Published
/// count 999,885,952 (keras-hub): embeddings 262,144·1152 = 301,989,888; per layer q and o
/// 2·1152·1024, k and v 2·1152·256, GeGLU 3·1152·6912, norms 4·1152 + 2·256 = 26,842,112;
/// 301,989,888 + 26·26,842,112 + 1152 (final norm).
const GEMMA_3_1B: &str = r#"{"model_type": "gemma3_text", "hidden_size": 1152, "intermediate_size": 6912,
    "num_hidden_layers": 26, "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 256,
    "vocab_size": 262144, "sliding_window": 512, "sliding_window_pattern": 6,
    "final_logit_softcapping": null, "max_position_embeddings": 32768}"#;

#[test]
fn gemma3_slides_on_five_layers_of_six() {
    let spec = parse_config(GEMMA_3_1B, "g", "test").unwrap().spec;
    let global: Vec<usize> = (0..26).filter(|&l| spec.layer_attention[l] == LayerAttention::Full).collect();
    assert_eq!(global, [5, 11, 17, 23]);
    assert_eq!(spec.layer_attention[0], LayerAttention::Sliding { window: 512 });
    assert!(spec.qk_norm == QkNorm::PerHead && spec.tie_word_embeddings && !spec.logit_softcap);
    assert_eq!((spec.norms_per_layer, spec.mlp, spec.norm), (4, MlpKind::Gated, NormKind::RmsNorm));
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, 999_885_952);
    // Newer configs write the pattern out; `layer_types` wins over `sliding_window_pattern`.
    let types: Vec<&str> = (0..26).map(|l| if l % 2 == 0 { "sliding_attention" } else { "full_attention" }).collect();
    let explicit = GEMMA_3_1B.replace("\"sliding_window_pattern\": 6", &format!("\"layer_types\": {types:?}"));
    let spec = parse_config(&explicit, "g", "test").unwrap().spec;
    assert_eq!(spec.layer_attention[1], LayerAttention::Full);
    assert_eq!(spec.layer_attention[4], LayerAttention::Sliding { window: 512 });
}

/// Gemma 3 4B/12B/27B's `vision_config`, as the official files write it.
const GEMMA_3_VISION: &str = r#"{"hidden_size": 1152, "image_size": 896, "intermediate_size": 4304,
    "model_type": "siglip_vision_model", "num_attention_heads": 16, "num_hidden_layers": 27,
    "patch_size": 14, "vision_use_head": false}"#;

/// `Gemma3ForConditionalGeneration` keeps the language model in `text_config`, which the
/// official 4B file leaves nearly empty: Gemma3TextConfig's defaults fill it (vocab 262,208,
/// 8 heads, 4 KV heads, head_dim 256, window 4096, pattern 6, context 131,072, tied) and the
/// dtype comes from the top level.
#[test]
fn gemma3_wrapper_reads_text_config_with_class_defaults() {
    let text = format!(
        r#"{{"model_type": "gemma3", "torch_dtype": "float32", "vision_config": {GEMMA_3_VISION},
        "text_config": {{"model_type": "gemma3_text", "hidden_size": 2560, "intermediate_size": 10240,
        "num_hidden_layers": 34}}}}"#
    );
    let spec = parse_config(&text, "g", "test").unwrap().spec;
    assert_eq!(spec.family, Family::Gemma3);
    assert_eq!((spec.vocab_size, spec.num_heads, spec.num_kv_heads, spec.head_dim), (262_208, 8, 4, 256));
    assert_eq!((spec.max_context, spec.native_dtype_bytes), (131_072, 4));
    assert_eq!(spec.layer_attention[0], LayerAttention::Sliding { window: 4096 });
    assert_eq!(spec.layer_attention[5], LayerAttention::Full);
    assert!(spec.tie_word_embeddings);
    let err = parse_config(r#"{"model_type": "gemma3"}"#, "g", "cfg.json").unwrap_err().to_string();
    assert!(err.contains("missing field 'text_config' (required for gemma3 models)"), "{err}");
}

/// The wrapper's SigLIP tower comes from `vision_config` (absent fields take
/// SiglipVisionConfig's defaults, `num_channels` 3 among them) and projects into the text
/// width: Gemma 3 4B's 2560 gives 1152·2560 + 1152 for the projector. Text-only configs have no
/// tower; a tower transformers would build differently is refused by field name.
#[test]
fn gemma3_wrapper_reads_the_vision_tower() {
    let config = |vision: &str| {
        format!(
            r#"{{"model_type": "gemma3", "vision_config": {vision}, "text_config": {{"hidden_size": 2560,
            "intermediate_size": 10240, "num_hidden_layers": 34}}}}"#
        )
    };
    let spec = parse_config(&config(GEMMA_3_VISION), "g", "test").unwrap().spec;
    let v = spec.vision.unwrap();
    assert_eq!((v.hidden_size, v.intermediate_size, v.num_layers, v.num_heads), (1152, 4304, 27, 16));
    // 896-pixel images in 14-pixel patches: 64² position embeddings.
    assert_eq!((v.patch_size, v.positions, v.num_channels, v.text_hidden_size), (14, 4096, 3, 2560));
    assert_eq!(v.parameters(), 416_866_032 + 1152 * 2560 + 1152);
    assert!(parse_config(GEMMA_3_1B, "g", "test").unwrap().spec.vision.is_none());
    let defaults = parse_config(&config(r#"{"vision_use_head": false}"#), "g", "t").unwrap().spec.vision.unwrap();
    assert_eq!(
        (defaults.hidden_size, defaults.num_layers, defaults.positions, defaults.patch_size),
        (768, 12, 14 * 14, 16)
    );
    let err = |vision: &str| parse_config(&config(vision), "g", "cfg.json").unwrap_err().to_string();
    let head = err(r#"{"hidden_size": 1152}"#);
    assert!(head.contains("cfg.json (vision_config): field 'vision_use_head' = (absent)"), "{head}");
    assert!(err(r#"{"vision_use_head": true}"#).contains("'vision_use_head' = true"));
    let clip = err(r#"{"model_type": "clip_vision_model", "vision_use_head": false}"#);
    assert!(clip.contains("'model_type' = clip_vision_model"), "{clip}");
    let heads = err(r#"{"hidden_size": 1152, "num_attention_heads": 7, "vision_use_head": false}"#);
    assert!(heads.contains("'num_attention_heads' = 7"), "{heads}");
    let missing = parse_config(
        r#"{"model_type": "gemma3", "text_config": {"hidden_size": 64,
        "intermediate_size": 128, "num_hidden_layers": 2}}"#,
        "g",
        "cfg.json",
    )
    .unwrap_err()
    .to_string();
    assert!(missing.contains("missing field 'vision_config' (required for gemma3 models)"), "{missing}");
}

/// Qwen3: `head_dim` defaults to 128 (not hidden / heads), q/k norms, no qkv bias, and a window
/// only with `use_sliding_window`, from layer `max_window_layers` (default 28) on.
#[test]
fn qwen3_has_qk_norms_and_slides_only_when_asked() {
    let base = r#"{"model_type": "qwen3", "hidden_size": 1024, "intermediate_size": 3072,
        "num_hidden_layers": 30, "num_attention_heads": 16, "num_key_value_heads": 8,
        "vocab_size": 151936, "tie_word_embeddings": true, "sliding_window": null, "use_sliding_window": false}"#;
    let spec = parse_config(base, "q", "test").unwrap().spec;
    assert_eq!((spec.head_dim, spec.q_width()), (128, 2048));
    assert!(spec.qk_norm == QkNorm::PerHead && spec.biases == Biases::default());
    assert!(spec.layer_attention.iter().all(|a| *a == LayerAttention::Full));
    // Qwen3-0.6B's layer (15,730,944 with 2·128 of q/k norms), tied embeddings.
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, 151_936 * 1024 + 30 * 15_730_944 + 1024);
    let sliding = base.replace(
        "\"sliding_window\": null, \"use_sliding_window\": false",
        "\"sliding_window\": 4096, \"use_sliding_window\": true",
    );
    let spec = parse_config(&sliding, "q", "test").unwrap().spec;
    assert_eq!(spec.layer_attention[27], LayerAttention::Full);
    assert_eq!(spec.layer_attention[28], LayerAttention::Sliding { window: 4096 });
}

/// Qwen3-MoE: routed experts in every layer, router without bias, no shared expert; a leading
/// run of `mlp_only_layers` is dense; layouts a spec cannot hold are refused by field name.
#[test]
fn qwen3_moe_experts_and_refused_layouts() {
    let moe = |extra: &str| {
        format!(
            r#"{{"model_type": "qwen3_moe", "hidden_size": 2048, "intermediate_size": 6144,
            "num_hidden_layers": 4, "num_attention_heads": 32, "num_key_value_heads": 4, "head_dim": 128,
            "vocab_size": 151936, "num_experts": 128, "num_experts_per_tok": 8,
            "moe_intermediate_size": 768{extra}}}"#
        )
    };
    let spec = parse_config(&moe(r#", "decoder_sparse_step": 1, "mlp_only_layers": []"#), "m", "t").unwrap().spec;
    let m = spec.moe.unwrap();
    assert_eq!((m.num_experts, m.experts_per_token, m.expert_intermediate_size), (128, 8, 768));
    assert_eq!((m.shared_intermediate_size, m.first_dense_layers, m.router_bias), (0, 0, false));
    assert!(spec.qk_norm == QkNorm::PerHead && (0..4).all(|l| spec.is_moe_layer(l)));
    let dense = parse_config(&moe(r#", "mlp_only_layers": [1, 0]"#), "m", "t").unwrap().spec;
    assert_eq!(dense.moe.unwrap().first_dense_layers, 2);
    let err = |extra: &str| parse_config(&moe(extra), "m", "cfg.json").unwrap_err().to_string();
    assert!(err(r#", "decoder_sparse_step": 2"#).contains("'decoder_sparse_step' = 2"));
    assert!(err(r#", "mlp_only_layers": [3]"#).contains("'mlp_only_layers' = [3]"));
    assert!(err(r#", "mlp_only_layers": "all""#).contains("expected a list of layer indices"));
}

/// gpt-oss (`GptOssConfig`): q/k/v/o biases and a 128-token window on even layers by default,
/// per-head sinks, and every layer a biased router with biased experts whose gate and up are one
/// matrix; `layer_types` overrides the pattern and `quant_method: mxfp4` names the format.
/// `Qwen3NextConfig`: full attention every `full_attention_interval`-th layer (3, 7, ... for 4),
/// Gated DeltaNet elsewhere; an explicit `layer_types` wins; the class defaults fill the
/// DeltaNet shape, head_dim 256 and 2 KV heads.
#[test]
fn qwen3_next_layer_pattern_and_defaults() {
    let text = r#"{"model_type": "qwen3_next", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 8, "num_attention_heads": 4, "vocab_size": 100,
        "num_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64,
        "shared_expert_intermediate_size": 64}"#;
    let spec = parse_config(text, "n", "test").unwrap().spec;
    let linear: Vec<bool> = (0..8).map(|l| spec.is_linear_layer(l)).collect();
    assert_eq!(linear, [true, true, true, false, true, true, true, false]);
    assert_eq!(spec.attention_layers(), 2);
    assert_eq!((spec.head_dim, spec.num_kv_heads, spec.q_proj_rows()), (256, 2, 2 * 4 * 256));
    let la = spec.linear_attention.unwrap();
    assert_eq!((la.key_dim(), la.value_dim(), la.conv_dim(), la.conv_kernel), (2048, 4096, 8192, 4));
    assert!(spec.moe.unwrap().shared_expert_gate && spec.qk_norm == QkNorm::PerHead && spec.attn_output_gate);

    let interval = text.replace("\"vocab_size\"", "\"full_attention_interval\": 2, \"vocab_size\"");
    let spec = parse_config(&interval, "n", "test").unwrap().spec;
    assert_eq!(spec.attention_layers(), 4);
    let types = r#""layer_types": ["full_attention", "linear_attention", "full_attention", "linear_attention",
        "linear_attention", "linear_attention", "linear_attention", "linear_attention"], "vocab_size""#;
    let spec = parse_config(&text.replace("\"vocab_size\"", types), "n", "test").unwrap().spec;
    assert!(!spec.is_linear_layer(0) && spec.is_linear_layer(1) && !spec.is_linear_layer(2));
    assert_eq!(spec.attention_layers(), 2);

    let bad = text.replace("\"vocab_size\"", "\"linear_num_value_heads\": 24, \"vocab_size\"");
    let e = parse_config(&bad, "n", "cfg").unwrap_err().to_string();
    assert!(e.contains("linear_num_value_heads") && e.contains("multiple of linear_num_key_heads"), "{e}");
    let zero = text.replace("\"vocab_size\"", "\"full_attention_interval\": 0, \"vocab_size\"");
    assert!(parse_config(&zero, "n", "cfg").unwrap_err().to_string().contains("full_attention_interval"));
    let short = text.replace("\"vocab_size\"", "\"layer_types\": [\"linear_attention\"], \"vocab_size\"");
    assert!(parse_config(&short, "n", "cfg").unwrap_err().to_string().contains("one type per layer"));

    // Tensor parallelism must also split the DeltaNet heads: 2 key heads cannot go over 4 ranks
    // although the 4 query heads and 2 KV heads can.
    let few = text.replace(
        "\"vocab_size\"",
        "\"linear_num_key_heads\": 2, \"linear_num_value_heads\": 4, \"num_key_value_heads\": 2, \"vocab_size\"",
    );
    let spec = parse_config(&few, "n", "test").unwrap().spec;
    assert!(spec.splits_heads(2) && !spec.splits_heads(4));
}

#[test]
fn gpt_oss_defaults_sinks_and_affine_experts() {
    let text = r#"{"model_type": "gpt_oss", "hidden_size": 64, "intermediate_size": 32,
        "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16,
        "vocab_size": 100, "num_local_experts": 8, "num_experts_per_tok": 2,
        "quantization_config": {"quant_method": "mxfp4"}}"#;
    let parsed = parse_config(text, "g", "t").unwrap();
    let spec = parsed.spec;
    assert_eq!(parsed.native_format.as_ref().map(|n| n.id.as_str()), Some("mxfp4"));
    assert_eq!((spec.biases.qkv, spec.biases.attn_out, spec.biases.mlp), (true, true, false));
    assert!(spec.attn_sinks && spec.fused_gate_up && !spec.tie_word_embeddings && spec.qk_norm == QkNorm::None);
    assert_eq!(spec.max_context, 131_072);
    let sliding = LayerAttention::Sliding { window: 128 };
    assert_eq!(spec.layer_attention, [sliding, LayerAttention::Full, sliding, LayerAttention::Full]);
    let m = spec.moe.unwrap();
    assert_eq!((m.num_experts, m.experts_per_token, m.expert_intermediate_size), (8, 2, 32));
    assert!(m.expert_biases && !m.router_bias && m.first_dense_layers == 0);
    // Per layer: q, o 64·64 + 64 each; k, v 32·64 + 32 each; 4 sinks; 2 norms of 64; router
    // 8·64 + 8; 8 experts of gate_up 64·64 + 64 and down 64·32 + 64.
    let layer = 2 * (4096 + 64) + 2 * (2048 + 32) + 4 + 128 + 520 + 8 * (4096 + 64 + 2048 + 64);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, 4 * layer + 2 * 6400 + 64);
    let types = text.replace(
        r#""vocab_size""#,
        r#""layer_types": ["full_attention", "sliding_attention", "full_attention", "full_attention"],
        "sliding_window": 64, "attention_bias": false, "vocab_size""#,
    );
    let spec = parse_config(&types, "g", "t").unwrap().spec;
    let sliding = LayerAttention::Sliding { window: 64 };
    assert_eq!(spec.layer_attention, [LayerAttention::Full, sliding, LayerAttention::Full, LayerAttention::Full]);
    assert_eq!(spec.biases, Biases::default());
}

#[test]
fn quantization_config_names_the_native_format() {
    let text = LLAMA_2_7B.replace(
        "\"torch_dtype\"",
        r#""quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}, "torch_dtype""#,
    );
    assert_eq!(parse_config(&text, "x", "t").unwrap().native_format.as_ref().map(|n| n.id.as_str()), Some("gptq"));
}

/// Nemotron-H's pattern: one mixer per block; transformers 5's `layers_block_type` names the
/// same layout; an older file's `attention_head_dim` sizes the heads (never hidden / heads).
#[test]
fn nemotron_h_blocks_follow_the_pattern() {
    let base = r#""model_type": "nemotron_h", "hidden_size": 64, "intermediate_size": 128,
        "num_attention_heads": 4, "num_key_value_heads": 2, "attention_head_dim": 32, "vocab_size": 100,
        "mamba_num_heads": 8, "mamba_head_dim": 16, "n_groups": 2, "ssm_state_size": 16"#;
    let spec = parse_config(&format!(r#"{{{base}, "hybrid_override_pattern": "M-*-"}}"#), "n", "t").unwrap().spec;
    use LayerAttention::{Absent, Full, Linear};
    assert_eq!(spec.layer_attention, vec![Linear, Absent, Full, Absent]);
    assert_eq!(spec.layer_mlp, vec![LayerMlp::Absent, LayerMlp::Dense, LayerMlp::Absent, LayerMlp::Dense]);
    assert_eq!((spec.head_dim, spec.q_width(), spec.norms_per_layer, spec.mlp), (32, 128, 1, MlpKind::Plain));
    let la = spec.linear_attention.unwrap();
    assert_eq!((la.value_dim(), la.conv_dim(), la.fused_in_rows()), (128, 128 + 64, 128 + 192 + 8));
    // One norm per block: 4 norms and the final one.
    let norms =
        inventory(&spec).iter().filter(|t| t.role.is_norm() && t.role != crate::model::tensors::Role::SsmNorm).count();
    assert_eq!(norms, 5);
    let listed = r#", "layers_block_type": ["mamba", "mlp", "attention", "mlp"]"#;
    let same = parse_config(&format!("{{{base}{listed}}}"), "n", "t").unwrap().spec;
    assert_eq!(same.layer_attention, spec.layer_attention);
    let err = |extra: &str| parse_config(&format!("{{{base}{extra}}}"), "n", "cfg.json").unwrap_err().to_string();
    assert!(err(r#", "hybrid_override_pattern": "M-X""#).contains("'X'"));
    assert!(err(r#", "hybrid_override_pattern": "M-", "num_hidden_layers": 3"#).contains("one block per layer"));
    assert!(err(r#", "hybrid_override_pattern": "ME""#).contains("no experts"));
    assert!(err("").contains("missing field 'hybrid_override_pattern'"));
    let latent = r#", "hybrid_override_pattern": "ME", "n_routed_experts": 4, "num_experts_per_tok": 2,
        "moe_intermediate_size": 32, "moe_shared_expert_intermediate_size": 64, "moe_latent_size": 16"#;
    assert!(err(latent).contains("moe_latent_size"));
}

/// Granite 4.0: `mamba_d_head` "auto" is the Mamba width over the heads, and an explicit one
/// must agree with it; `num_local_experts` 0 makes the shared MLP the dense MLP.
#[test]
fn granite_hybrid_heads_and_dense_layers() {
    let base = r#""model_type": "granitemoehybrid", "hidden_size": 64, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100, "intermediate_size": 16,
        "shared_intermediate_size": 96, "layer_types": ["mamba", "attention"], "mamba_n_heads": 8"#;
    let dense =
        parse_config(&format!(r#"{{{base}, "num_local_experts": 0, "mamba_d_head": "auto"}}"#), "g", "t").unwrap().spec;
    assert_eq!((dense.linear_attention.unwrap().value_head_dim, dense.intermediate_size), (16, 96));
    assert!(dense.moe.is_none() && dense.fused_gate_up && dense.layer_mlp == vec![LayerMlp::Dense; 2]);
    let moe = parse_config(&format!(r#"{{{base}, "num_local_experts": 4}}"#), "g", "t").unwrap().spec;
    let m = moe.moe.unwrap();
    assert_eq!(
        (m.num_experts, m.experts_per_token, m.expert_intermediate_size, m.shared_intermediate_size),
        (4, 2, 16, 96)
    );
    let err = parse_config(&format!(r#"{{{base}, "mamba_d_head": 24}}"#), "g", "cfg.json").unwrap_err();
    assert!(err.to_string().contains("must equal the Mamba width"), "{err}");
}

#[test]
fn bad_configs_name_the_field() {
    let err = |text: &str| parse_config(text, "x", "cfg.json").unwrap_err().to_string();
    assert!(err("{").contains("not valid JSON"));
    assert!(err(r#"{"model_type": "rwkv"}"#).contains("'rwkv' is not supported"));
    assert!(err(r#"{"model_type": "mamba"}"#).contains("missing field 'hidden_size'"));
    assert!(err(r#"{"model_type": "llama"}"#).contains("missing field 'hidden_size'"));
    let zero = LLAMA_2_7B.replace("\"hidden_size\": 4096", "\"hidden_size\": 0");
    assert!(err(&zero).contains("'hidden_size' = 0"));
    let gqa = LLAMA_2_7B.replace("\"vocab_size\"", "\"num_key_value_heads\": 5, \"vocab_size\"");
    assert!(err(&gqa).contains("must divide num_attention_heads"));
    let huge = LLAMA_2_7B.replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": 99999999");
    assert!(err(&huge).contains("implausibly large"));
}

proptest::proptest! {
    /// Arbitrary Nemotron-H patterns and Mamba-2 sizes never panic: a spec comes out or an
    /// error names the field.
    #[test]
    fn nemotron_patterns_never_panic(
        pattern in "[M*E\\-x]{0,12}", heads in 0u64..40, groups in 0u64..10, state in 0u64..300,
        layers in proptest::option::of(0u64..14), experts in proptest::option::of(0u64..6),
    ) {
        let mut json = serde_json::json!({
            "model_type": "nemotron_h", "hidden_size": 64, "intermediate_size": 96,
            "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 100,
            "hybrid_override_pattern": pattern, "mamba_num_heads": heads, "mamba_head_dim": 8,
            "n_groups": groups, "ssm_state_size": state, "num_experts_per_tok": 2,
            "moe_intermediate_size": 16, "moe_shared_expert_intermediate_size": 32,
        });
        if let Some(n) = layers { json["num_hidden_layers"] = n.into(); }
        if let Some(e) = experts { json["n_routed_experts"] = e.into(); }
        if let Ok(parsed) = parse_config(&json.to_string(), "p", "prop") {
            let spec = parsed.spec;
            let _ = param_counts(&spec, &inventory(&spec));
            proptest::prop_assert_eq!(spec.layer_attention.len() as u64, spec.num_layers);
            proptest::prop_assert_eq!(spec.layer_mlp.len() as u64, spec.num_layers);
        }
    }

    /// Arbitrary JSON objects with llama-ish fields of arbitrary values never panic.
    #[test]
    fn arbitrary_values_never_panic(
        hidden in proptest::num::i64::ANY, layers in proptest::num::i64::ANY,
        heads in 0i64..100, kv in 0i64..100, family in 0usize..Family::ALL.len(), text in ".{0,40}",
    ) {
        let json = serde_json::json!({
            "model_type": Family::ALL[family].model_type(), "hidden_size": hidden,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
            "vocab_size": 1000, "intermediate_size": 64, "n_routed_experts": 8,
            "moe_intermediate_size": 16, "num_experts_per_tok": 2, "num_local_experts": 4,
            "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
            "sliding_window": text.len(), "layer_types": [text.clone()],
        });
        let _ = parse_config(&json.to_string(), "p", "prop");
        let _ = parse_config(&text, "p", "prop");
    }

    /// Kimi K2.5's vision fields and compressed-tensors schemes of arbitrary values never panic:
    /// a spec (whose counts sum) or an error.
    #[test]
    fn kimi_k25_vision_and_quantization_never_panic(
        width in proptest::num::i64::ANY, side in 0u64..100_000, merge in proptest::collection::vec(0i64..40, 0..4),
        mm in proptest::option::of(0u64..1 << 22), bits in 0i64..40, group in -2i64..300, kind in "[a-z]{0,6}",
        strategy in proptest::prop_oneof!["group", "channel", "block", "tensor", "tensor_group", "[a-z]{0,5}"],
        ignore in proptest::collection::vec("[a-z_.*:]{0,16}", 0..4),
    ) {
        let mut vision = serde_json::json!({
            "vt_hidden_size": width, "vt_num_attention_heads": 16, "init_pos_emb_height": side,
            "init_pos_emb_width": side, "merge_kernel_size": merge,
        });
        if let Some(mm) = mm { vision["mm_hidden_size"] = mm.into(); }
        let json = serde_json::json!({
            "model_type": "kimi_k25", "vision_config": vision,
            "quantization_config": {"quant_method": "compressed-tensors", "ignore": ignore,
                "config_groups": {"group_0": {"weights": {"num_bits": bits, "group_size": group,
                    "type": kind, "strategy": strategy, "symmetric": true}}}},
            "text_config": {"model_type": "deepseek_v3", "hidden_size": 256, "intermediate_size": 512,
                "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 1000, "kv_lora_rank": 64,
                "q_lora_rank": 96, "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32,
                "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 64},
        });
        if let Ok(parsed) = parse_config(&json.to_string(), "p", "prop") {
            let spec = parsed.spec;
            let _ = param_counts(&spec, &inventory(&spec));
        }
    }
}

/// Class defaults the newer families' files rely on: `Cohere2Config` overwrites head_dim with
/// hidden / heads and slides three layers of four (`layer_switch` in older files);
/// `CohereConfig` and `SmolLM3Config` tie the embeddings; SmolLM3 slides only its RoPE-less
/// layers, and only with `use_sliding_window`; GLM-4.5's missing `n_shared_experts` is one.
#[test]
fn newer_family_class_defaults() {
    let cohere2 = r#"{"model_type": "cohere2", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 6, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 128,
        "vocab_size": 1000, "layer_switch": 3}"#;
    let spec = parse_config(cohere2, "c", "test").unwrap().spec;
    assert_eq!((spec.head_dim, spec.norms_per_layer), (64, 1));
    assert!(spec.tie_word_embeddings);
    let slides: Vec<bool> = spec.layer_attention.iter().map(|a| *a != LayerAttention::Full).collect();
    assert_eq!(slides, [true, true, false, true, true, false]);
    let smol = r#"{"model_type": "smollm3", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 8, "num_attention_heads": 4, "vocab_size": 1000}"#;
    let spec = parse_config(smol, "s", "test").unwrap().spec;
    assert!(spec.tie_word_embeddings && spec.num_kv_heads == 4);
    assert!(spec.layer_attention.iter().all(|a| *a == LayerAttention::Full));
    let windowed =
        smol.replace("\"vocab_size\"", "\"use_sliding_window\": true, \"sliding_window\": 512, \"vocab_size\"");
    let spec = parse_config(&windowed, "s", "test").unwrap().spec;
    assert_eq!(spec.layer_attention[3], LayerAttention::Sliding { window: 512 });
    assert_eq!(spec.layer_attention[2], LayerAttention::Full);
    let glm = r#"{"model_type": "glm4_moe", "hidden_size": 256, "intermediate_size": 512, "head_dim": 32,
        "num_hidden_layers": 3, "moe_intermediate_size": 64, "n_routed_experts": 4, "num_experts_per_tok": 2}"#;
    let spec = parse_config(glm, "g", "test").unwrap().spec;
    let moe = spec.moe.unwrap();
    assert_eq!((moe.shared_intermediate_size, moe.first_dense_layers, spec.num_heads), (64, 1, 96));
    assert!(moe.router_bias && !spec.biases.qkv && spec.qk_norm == QkNorm::None);
}

/// Kimi K2's `model_type` reads as DeepSeek-V3; MiniMax's lightning-attention layers are refused
/// by name, not planned as full attention.
#[test]
fn aliases_and_refusals() {
    let k2 = r#"{"model_type": "kimi_k2", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 2,
        "num_attention_heads": 4, "vocab_size": 1000, "kv_lora_rank": 64, "q_lora_rank": 96,
        "qk_nope_head_dim": 32, "qk_rope_head_dim": 16, "v_head_dim": 32}"#;
    assert_eq!(parse_config(k2, "k", "test").unwrap().spec.family, Family::DeepseekV3);
    let minimax = r#"{"model_type": "minimax_m2", "hidden_size": 256, "intermediate_size": 64, "num_hidden_layers": 2,
        "attn_type_list": [0, 1], "num_local_experts": 4, "num_experts_per_tok": 2}"#;
    let err = parse_config(minimax, "m", "cfg.json").unwrap_err().to_string();
    assert!(err.contains("attn_type_list") && err.contains("lightning"), "{err}");
    let unknown = parse_config(r#"{"model_type": "rwkv7"}"#, "r", "cfg.json").unwrap_err().to_string();
    assert!(unknown.contains("kimi_k2") && unknown.contains("minimax_m2"), "{unknown}");
}
