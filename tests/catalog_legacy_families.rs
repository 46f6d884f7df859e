//! The GPT-2-era families: GPT-2, StarCoder, OPT, BLOOM, GPT-J and MPT. Counts rebuilt by hand
//! from their configs (learned position tables, BLOOM's embedding norm, GPT-J's biased head,
//! StarCoder's multi-query c_attn, MPT's bias-free layers), OPT-350m's unmodelled projections
//! refused, GPT-2's stored causal masks left out of a local checkpoint's weights, and llama.cpp's
//! `gpt2` GGUF with its `position_embd`.

mod support;

use headroom::model::config::parse_config;
use headroom::model::local::LocalModel;
use headroom::model::spec::{Family, NormKind};
use headroom::model::tensors::{inventory, param_counts, Role};
use headroom::quant::ggml::GgmlType::{F32, Q8_0};
use support::catalog::{spec, total};
use support::cli::{plan_json, u};
use support::gguf::{gguf_spec, open_gguf, stored_elements};
use support::*;

/// GPT-2: per layer 12h² + 13h (c_attn 3h·h + 3h, c_proj, c_fc, c_proj and two LayerNorms), the
/// embedding 50,257·768, 1024 learned positions and the final LayerNorm; tied.
#[test]
fn gpt2_opt_bloom_counts() {
    let h = 768u64;
    assert_eq!(total("gpt2"), 12 * (12 * h * h + 13 * h) + 50_257 * h + 1024 * h + 2 * h);
    // OPT: separate q/k/v/out and fc1/fc2 with biases, two LayerNorms, 2048 + 2 positions.
    let (h, f) = (2048u64, 8192u64);
    let layer = 4 * (h * h + h) + 2 * h * f + f + h + 4 * h;
    assert_eq!(total("opt-1.3b"), 24 * layer + 50_272 * h + 2050 * h + 2 * h);
    // BLOOM: GPT-2's layer with a 4h MLP, no positions, a LayerNorm after the embedding.
    let h = 4096u64;
    assert_eq!(total("bloom-7b1"), 30 * (12 * h * h + 13 * h) + 250_880 * h + 2 * h + 2 * h);
    let bloom = spec("bloom-176b");
    assert!(bloom.embedding_norm && bloom.position_table == 0 && bloom.hidden_size == 14_336);
}

/// GPT-J: one LayerNorm, bias-free q/k/v/out, fc_in/fc_out with biases, an untied head with a
/// 50,400-long bias. StarCoder: c_attn of h + 2·128 rows (one K and one V head). MPT-7B: no
/// biases, weight-only LayerNorms, no position table under ALiBi.
#[test]
fn gptj_starcoder_mpt_shapes() {
    let h = 4096u64;
    let layer = 4 * h * h + 2 * h * 4 * h + 4 * h + h + 2 * h;
    assert_eq!(total("gpt-j-6b"), 28 * layer + 2 * h + 2 * 50_400 * h + 50_400);
    let starcoder = spec("starcoder");
    let qkv = inventory(&starcoder).into_iter().find(|t| t.role == Role::AttnQkv).unwrap();
    assert_eq!((qkv.rows, starcoder.num_kv_heads, starcoder.position_table), (6144 + 256, 1, 8192));
    let mpt = spec("mpt-7b");
    assert_eq!((mpt.norm, mpt.position_table), (NormKind::RmsNorm, 0));
    assert!(!inventory(&mpt).iter().any(|t| t.part == headroom::model::tensors::Part::Bias));
    assert_eq!(total("mpt-7b"), 32 * (12 * h * h + 2 * h) + h + 50_432 * h);
}

/// OPT-350m's narrower embedding and post-norm layers are refused by name; an MPT without
/// ALiBi keeps its learned table.
#[test]
fn legacy_refusals_and_tables() {
    let opt350 = r#"{"model_type": "opt", "hidden_size": 1024, "ffn_dim": 4096, "num_hidden_layers": 24,
        "num_attention_heads": 16, "vocab_size": 50272, "word_embed_proj_dim": 512, "do_layer_norm_before": false}"#;
    let err = parse_config(opt350, "o", "config.json").unwrap_err().to_string();
    assert!(err.contains("word_embed_proj_dim") && err.contains("OPT-350m"), "{err}");
    let mpt = r#"{"model_type": "mpt", "d_model": 256, "n_layers": 2, "n_heads": 4, "max_seq_len": 512,
        "vocab_size": 1000, "attn_config": {"alibi": false}}"#;
    let s = parse_config(mpt, "m", "test").unwrap().spec;
    assert_eq!((s.family, s.position_table, s.intermediate_size), (Family::Mpt, 512, 1024));
    // MPT's key/value heads follow `attn_type`: llm-foundry writes `kv_n_heads: 1` even for
    // multi-head attention, which ignores it.
    let with_attn = |attn: &str| mpt.replace(r#"{"alibi": false}"#, attn);
    let kv = |attn: &str| parse_config(&with_attn(attn), "m", "test").map(|c| c.spec.num_kv_heads);
    assert_eq!(kv(r#"{"attn_type": "multihead_attention", "kv_n_heads": 1}"#).unwrap(), 4);
    assert_eq!(kv(r#"{"attn_type": "multiquery_attention"}"#).unwrap(), 1);
    assert_eq!(kv(r#"{"attn_type": "grouped_query_attention", "kv_n_heads": 2}"#).unwrap(), 2);
    let err = kv(r#"{"attn_type": "grouped_query_attention", "kv_n_heads": 3}"#).unwrap_err().to_string();
    assert!(err.contains("kv_n_heads"), "{err}");
    let err = kv(r#"{"attn_type": "grouped_query_attention"}"#).unwrap_err().to_string();
    assert!(err.contains("kv_n_heads") && err.contains("missing"), "{err}");
}

/// A GPT-2 safetensors checkpoint stores each layer's causal mask (`h.N.attn.bias`,
/// [1, 1, 1024, 1024]); the plan's weights are the real parameters only.
#[test]
fn gpt2_masks_are_not_weights() {
    let dir = tempfile::TempDir::new().unwrap();
    let config = include_str!("../data/models/gpt2.json").replace("\"n_layer\": 12", "\"n_layer\": 1");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let h = 768u64;
    let tensors: Vec<(String, &str, Vec<u64>)> = vec![
        ("wte.weight".into(), "F32", vec![50_257, h]),
        ("wpe.weight".into(), "F32", vec![1024, h]),
        ("h.0.ln_1.weight".into(), "F32", vec![h]),
        ("h.0.ln_1.bias".into(), "F32", vec![h]),
        ("h.0.attn.bias".into(), "F32", vec![1, 1, 1024, 1024]),
        ("h.0.attn.c_attn.weight".into(), "F32", vec![h, 3 * h]),
        ("h.0.attn.c_attn.bias".into(), "F32", vec![3 * h]),
        ("h.0.attn.c_proj.weight".into(), "F32", vec![h, h]),
        ("h.0.attn.c_proj.bias".into(), "F32", vec![h]),
        ("h.0.ln_2.weight".into(), "F32", vec![h]),
        ("h.0.ln_2.bias".into(), "F32", vec![h]),
        ("h.0.mlp.c_fc.weight".into(), "F32", vec![h, 4 * h]),
        ("h.0.mlp.c_fc.bias".into(), "F32", vec![4 * h]),
        ("h.0.mlp.c_proj.weight".into(), "F32", vec![4 * h, h]),
        ("h.0.mlp.c_proj.bias".into(), "F32", vec![h]),
        ("ln_f.weight".into(), "F32", vec![h]),
        ("ln_f.bias".into(), "F32", vec![h]),
    ];
    std::fs::write(dir.path().join("model.safetensors"), safetensors_owned(&tensors)).unwrap();
    let plan = plan_json(&format!("{} --engine hf", dir.path().display()));
    let weights = u(&plan, "/memory/weights_bytes");
    assert_eq!(weights, 4 * (12 * h * h + 13 * h + 50_257 * h + 1024 * h + 2 * h));
    let model = LocalModel::open(dir.path()).unwrap();
    assert!(model.tensors.iter().any(|t| t.name == "h.0.attn.bias"));
    assert_eq!(model.parameter_count(), 12 * h * h + 13 * h + 50_257 * h + 1024 * h + 2 * h);
}

/// llama.cpp's `gpt2`: token_embd, position_embd and biased fused layers.
#[test]
fn gpt2_gguf_reads_its_position_table() {
    let h = 64u64;
    let mut g = Gguf::default()
        .str("general.architecture", "gpt2")
        .u32("gpt2.block_count", 1)
        .u32("gpt2.context_length", 128)
        .u32("gpt2.embedding_length", h as u32)
        .u32("gpt2.feed_forward_length", 256)
        .u32("gpt2.attention.head_count", 4)
        .tensor("token_embd.weight", &[h, 100], Q8_0)
        .tensor("position_embd.weight", &[h, 128], F32);
    for (name, dims) in [
        ("attn_norm", vec![h]),
        ("attn_qkv", vec![h, 3 * h]),
        ("attn_output", vec![h, h]),
        ("ffn_norm", vec![h]),
        ("ffn_up", vec![h, 256]),
        ("ffn_down", vec![256, h]),
    ] {
        let ty = if dims.len() == 1 { F32 } else { Q8_0 };
        g = g.tensor(&format!("blk.0.{name}.weight"), &dims, ty).tensor(
            &format!("blk.0.{name}.bias"),
            &[dims[dims.len() - 1]],
            F32,
        );
    }
    g = g.tensor("output_norm.weight", &[h], F32).tensor("output_norm.bias", &[h], F32);
    let (_dir, model) = open_gguf(&g, "gpt2-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!((spec.family, spec.position_table, spec.norm), (Family::Gpt2, 128, NormKind::LayerNorm));
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored);
}
