//! State-space models: Mamba-1 (Mamba, Falcon-Mamba), Mamba-2 alone (Mamba-Codestral),
//! Jamba's Mamba-1 + attention + MoE hybrid and Falcon-H1's attention and Mamba-2 side by side.
//! Counts rebuilt from their configs and GGUF files, and each engine's state per sequence.

mod support;

use headroom::model::config::parse_config;
use headroom::model::spec::{Family, LayerAttention, LayerMlp, LinearKind};
use headroom::model::tensors::{inventory, param_counts};
use headroom::quant::ggml::GgmlType::{F32, Q8_0};
use support::catalog::spec;
use support::cli::{plan_json, u};
use support::gguf::{attention, gated_mlp, gguf_spec, open_gguf, stored_elements};
use support::*;

/// Mamba-2.8B: per block 2·5120·2560 (in_proj) + 5120·4 + 5120 (conv) + 192·5120 (x_proj) +
/// 5120·160 + 5120 (dt_proj) + 5120·16 (A_log) + 5120 (D) + 2560·5120 (out_proj) + 2560 (norm);
/// tied embeddings of 50,280 × 2560. Falcon-Mamba-7B's d_inner is 8192, not expand 16 · 4096.
#[test]
fn mamba1_counts() {
    let (h, d) = (2560u64, 5120u64);
    let block = 2 * d * h + d * 4 + d + 192 * d + d * 160 + d + d * 16 + d + h * d + h;
    let s = spec("mamba-2.8b");
    assert_eq!(param_counts(&s, &inventory(&s)).total, 64 * block + h + 50_280 * h);
    assert!(s.layer_mlp.iter().all(|m| *m == LayerMlp::Absent) && s.tie_word_embeddings);
    let falcon = spec("falcon-mamba-7b");
    let la = falcon.linear_attention.unwrap();
    assert_eq!((la.kind, la.value_dim(), la.dt_rank), (LinearKind::Mamba1, 8192, 256));
    assert_eq!(param_counts(&falcon, &inventory(&falcon)).total, 7_272_665_088);
}

/// Jamba 1.5 Mini: attention on layers 4, 12, 20, 28, experts on the odd layers, Mamba-1 with
/// dt/B/C norm weights (256 + 2·16) elsewhere; 12,110,311,296 active (AI21's "12B").
#[test]
fn jamba_layout_and_counts() {
    let s = spec("jamba-1.5-mini");
    let attention: Vec<usize> = (0..32).filter(|&l| s.layer_attention[l] == LayerAttention::Full).collect();
    assert_eq!(attention, [4, 12, 20, 28]);
    assert_eq!((0..32).filter(|&l| s.is_moe_layer(l)).count(), 16);
    assert!(s.is_moe_layer(1) && !s.is_moe_layer(4));
    assert!(s.linear_attention.unwrap().inner_norms);
    let c = param_counts(&s, &inventory(&s));
    assert_eq!((c.total, c.active), (51_570_323_328, 12_110_311_296));
}

/// State per sequence: Mamba-Codestral under vLLM (bf16) 3·10,240 + 128·64·128 values per layer
/// = 2,158,592 B, × 64 layers; llama.cpp keeps them in F32, twice that. Jamba under vLLM: its 28
/// Mamba-1 layers' (3·8192 + 8192·16)·2 B pages, padded to an attention block, beside 4 layers of
/// KV.
#[test]
fn state_bytes_per_engine() {
    let vllm = plan_json("mamba-codestral-7b --engine vllm --gpu h100-sxm --context 4096");
    assert_eq!(u(&vllm, "/memory/kv_cache_bytes"), 64 * 2_158_592);
    let cpp = plan_json("mamba-codestral-7b --weights q8_0 --context 4096");
    assert_eq!(u(&cpp, "/memory/kv_cache_bytes") + u(&cpp, "/host/kv_cache_bytes"), 64 * 2 * 2_158_592);
    let mamba = plan_json("mamba-2.8b --engine vllm --gpu h100-sxm --context 4096");
    assert_eq!(u(&mamba, "/memory/kv_cache_bytes"), 64 * (3 * 5120 + 5120 * 16) * 2);
    let jamba = plan_json("jamba-1.5-mini --engine vllm --gpu h200:2 --context 4096");
    assert!(u(&jamba, "/memory/kv_cache_bytes") > 0);
}

/// Config traps: Falcon-Mamba's `intermediate_size` beats `expand`; Jamba's offsets must be
/// below their periods; a Mamba config without `time_step_rank` takes ⌈hidden / 16⌉.
#[test]
fn ssm_config_rules() {
    let jamba = r#"{"model_type": "jamba", "hidden_size": 256, "intermediate_size": 512, "num_hidden_layers": 4,
        "num_attention_heads": 4, "num_key_value_heads": 2, "attn_layer_period": 2, "attn_layer_offset": 2}"#;
    let err = parse_config(jamba, "j", "config.json").unwrap_err().to_string();
    assert!(err.contains("attn_layer_offset"), "{err}");
    let mamba = r#"{"model_type": "mamba", "hidden_size": 200, "num_hidden_layers": 2, "vocab_size": 100}"#;
    let s = parse_config(mamba, "m", "test").unwrap().spec;
    let la = s.linear_attention.unwrap();
    assert_eq!((s.family, la.dt_rank, la.value_dim(), la.key_head_dim), (Family::Mamba, 13, 400, 16));
}

/// llama.cpp's `mamba` GGUF: no attention heads, `time_step_rank` is dt's rank.
#[test]
fn mamba_gguf_reads_a_mamba1_layer() {
    let (h, d, n, r) = (64u64, 128u64, 16u64, 8u64);
    let mut g = Gguf::default()
        .str("general.architecture", "mamba")
        .u32("mamba.block_count", 1)
        .u32("mamba.context_length", 1_048_576)
        .u32("mamba.embedding_length", h as u32)
        .u32("mamba.ssm.conv_kernel", 4)
        .u32("mamba.ssm.inner_size", d as u32)
        .u32("mamba.ssm.state_size", n as u32)
        .u32("mamba.ssm.time_step_rank", r as u32)
        .tensor("token_embd.weight", &[h, 100], Q8_0);
    g = g
        .tensor("blk.0.attn_norm.weight", &[h], F32)
        .tensor("blk.0.ssm_in.weight", &[h, 2 * d], Q8_0)
        .tensor("blk.0.ssm_conv1d.weight", &[4, d], F32)
        .tensor("blk.0.ssm_conv1d.bias", &[d], F32)
        .tensor("blk.0.ssm_x.weight", &[d, r + 2 * n], F32)
        .tensor("blk.0.ssm_dt.weight", &[r, d], F32)
        .tensor("blk.0.ssm_dt.bias", &[d], F32)
        .tensor("blk.0.ssm_a", &[n, d], F32)
        .tensor("blk.0.ssm_d", &[d], F32)
        .tensor("blk.0.ssm_out.weight", &[d, h], Q8_0)
        .tensor("output_norm.weight", &[h], F32);
    let (_dir, model) = open_gguf(&g, "mamba-tiny-Q8_0.gguf");
    let s = gguf_spec(&model);
    assert_eq!((s.family, s.linear_layers(), s.attention_layers()), (Family::Mamba, 1, 0));
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&s, &inventory(&s)).total, stored);
}

/// Falcon-H1-7B: per layer attention 3072·1536·2 + 3072·256·2, a Mamba-2 mixer (in_proj of
/// 3072 + 3584 + 24 rows, the biased convolution over 3584 channels, 3·24, no gated-norm
/// weights, out_proj), a SwiGLU of 12,288 and two norms; under llama.cpp every layer keeps both
/// its KV (2·2·128 values per token) and an F32 state of 3·3584 + 24·128·256 values.
#[test]
fn falcon_h1_runs_attention_and_mamba_side_by_side() {
    let s = spec("falcon-h1-7b");
    assert!(s.parallel_ssm && s.attention_layers() == 44 && s.linear_layers() == 44);
    let h = 3072u64;
    let attention = h * 1536 * 2 + h * 256 * 2;
    let mamba = h * (3072 + 3584 + 24) + 3584 * 4 + 3584 + 3 * 24 + 3072 * h;
    let layer = attention + mamba + 3 * h * 12_288 + 2 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, 44 * layer + h + 2 * 130_048 * h);
    let cpp = plan_json("falcon-h1-7b --weights q8_0 --context 4096");
    let kv = u(&cpp, "/memory/kv_cache_bytes") + u(&cpp, "/host/kv_cache_bytes");
    assert_eq!(kv, 44 * (4096 * 2 * 2 * 128 * 2 + (3 * 3584 + 24 * 128 * 256) * 4));
}

/// llama.cpp's `falcon-h1`: every block holds attention (`key_length` heads), a Mamba-2 mixer
/// (`time_step_rank` heads over `inner_size`, `group_count` groups, no gated-norm weights unless
/// `ssm_norm` is stored) and a SwiGLU; both caches in every layer.
#[test]
fn falcon_h1_gguf_pairs_attention_and_mamba() {
    let (h, d, n, heads, layers) = (64u64, 128u64, 16u64, 8u64, 2u32);
    let conv = d + 2 * n;
    let mut g = Gguf::default()
        .str("general.architecture", "falcon-h1")
        .u32("falcon-h1.block_count", layers)
        .u32("falcon-h1.context_length", 16_384)
        .u32("falcon-h1.embedding_length", h as u32)
        .u32("falcon-h1.feed_forward_length", 96)
        .u32("falcon-h1.attention.head_count", 4)
        .u32("falcon-h1.attention.head_count_kv", 2)
        .u32("falcon-h1.attention.key_length", 32)
        .u32("falcon-h1.attention.value_length", 32)
        .u32("falcon-h1.ssm.conv_kernel", 4)
        .u32("falcon-h1.ssm.inner_size", d as u32)
        .u32("falcon-h1.ssm.state_size", n as u32)
        .u32("falcon-h1.ssm.time_step_rank", heads as u32)
        .u32("falcon-h1.ssm.group_count", 1)
        .tensor("token_embd.weight", &[h, 100], Q8_0)
        .tensor("output.weight", &[h, 100], Q8_0)
        .tensor("output_norm.weight", &[h], F32);
    for l in 0..layers {
        let t = |name: &str| format!("blk.{l}.{name}");
        g = attention(g, l, h, 128, 64)
            .tensor(&t("ssm_in.weight"), &[h, d + conv + heads], Q8_0)
            .tensor(&t("ssm_conv1d.weight"), &[4, conv], F32)
            .tensor(&t("ssm_conv1d.bias"), &[conv], F32)
            .tensor(&t("ssm_dt.bias"), &[heads], F32)
            .tensor(&t("ssm_a"), &[1, heads], F32)
            .tensor(&t("ssm_d"), &[1, heads], F32)
            .tensor(&t("ssm_out.weight"), &[d, h], Q8_0)
            .tensor(&t("ffn_norm.weight"), &[h], F32);
        g = gated_mlp(g, l, h, 96, Q8_0);
    }
    let (_dir, model) = open_gguf(&g, "falcon-h1-tiny-Q8_0.gguf");
    let s = gguf_spec(&model);
    assert_eq!((s.family, s.head_dim, s.attention_layers(), s.linear_layers()), (Family::FalconH1, 32, 2, 2));
    let la = s.linear_attention.unwrap();
    assert_eq!((la.num_value_heads, la.value_head_dim, la.key_head_dim), (heads, d / heads, n));
    assert!(s.parallel_ssm && !la.gated_norm && la.conv_bias && la.chunk_size == 128);
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&s, &inventory(&s)).total, stored);
    let plan = plan_json(&format!("{} --context 1024", model.source.display()));
    let kv = u(&plan, "/memory/kv_cache_bytes");
    assert_eq!(kv, 2 * (1024 * 2 * 2 * 32 * 2 + (3 * conv + heads * (d / heads) * n) * 4), "{plan}");
}

/// Kimi-Linear-48B-A3B: 20 Kimi Delta Attention layers (39,514,272 parameters each) and 7 MLA
/// layers where `linear_attn_config` puts them (1-based 4, 8, ..., 24, 27), the count of the
/// real checkpoint's listing; only the MLA layers cache, 7 × (512 + 64) × 2 B a token; a KDA
/// layer's state is Gated DeltaNet's shape, 32 heads of 128 × 128 and a 3-column convolution over
/// q, k and v. A listing that leaves a layer out of both lists is refused.
#[test]
fn kimi_linear_kda_and_mla() {
    let s = spec("kimi-linear-48b-a3b");
    assert_eq!(s.family, Family::KimiLinear);
    assert_eq!(param_counts(&s, &inventory(&s)).total, 49_122_681_728);
    let full: Vec<usize> =
        s.layer_attention.iter().enumerate().filter(|(_, a)| **a == LayerAttention::Full).map(|(i, _)| i).collect();
    assert_eq!(full, [3, 7, 11, 15, 19, 23, 26]);
    let la = s.linear_attention.unwrap();
    assert_eq!((la.low_rank_gates, la.conv_dim(), la.value_dim()), (128, 12_288, 4096));
    assert_eq!(s.mla.map(|m| (m.q_lora_rank, m.kv_lora_rank)), Some((None, 512)));
    let plan = plan_json("kimi-linear-48b-a3b --engine vllm --gpu h200 --context 131072");
    let basis = plan["basis"].as_array().unwrap();
    let line = |name: &str| basis.iter().find(|b| b["name"] == name).and_then(|b| b["value"].as_str()).unwrap();
    assert_eq!(line("kv bytes per token (attention layers, no window)"), (7 * 576 * 2).to_string());
    assert_eq!(line("linear-attention layers (no KV cache)"), "20 of 27");
    // vLLM's KDA state, 32·128·128 fp32 values and 3 conv columns of 12,288 bf16 channels
    // (2,170,880 B), padded to the page of one MLA layer's block of 1,888 tokens.
    assert_eq!(line("kv cache allocation"), "paged blocks of 1888 tokens (vLLM)");
    assert_eq!(line("linear-attention state per sequence and layer"), (1888 * 576 * 2).to_string());
    assert_eq!(u(&plan, "/memory/weights_bytes"), 98_245_363_456);

    let config: serde_json::Value =
        serde_json::from_str(include_str!("../data/models/kimi-linear-48b-a3b.json")).unwrap();
    let mut gap = config.clone();
    gap["linear_attn_config"]["kda_layers"].as_array_mut().unwrap().pop();
    let err = parse_config(&gap.to_string(), "k", "cfg.json").unwrap_err().to_string();
    assert!(err.contains("kda_layers") && err.contains("every layer exactly once"), "{err}");
    let mut beyond = config;
    beyond["linear_attn_config"]["full_attn_layers"][0] = 28.into();
    let err = parse_config(&beyond.to_string(), "k", "cfg.json").unwrap_err().to_string();
    assert!(err.contains("full_attn_layers"), "{err}");
}
