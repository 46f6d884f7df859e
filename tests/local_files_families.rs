//! GGUF files of the newer dense and MoE families in llama.cpp's layouts: GLM-4's fused
//! `ffn_up` and four norms, GLM-4.5's NextN layer (counted among the blocks, not loaded), OLMo
//! 2's post-norms and whole-projection q/k norms, Olmo 3's per-layer window flags, Command
//! R+'s per-head q/k norms, ERNIE 4.5's interleaved experts and Ministral 3's `mistral3`.

mod support;

use headroom::model::gguf::gguf_to_spec;
use headroom::model::local::LocalModel;
use headroom::model::spec::{Family, LayerAttention, QkNorm};
use headroom::model::tensors::{inventory, param_counts};
use headroom::quant::ggml::GgmlType::{F32, Q8_0};
use support::gguf::{attention, attn_projections, experts, gated_mlp, gguf_spec, open_gguf, qk_norms};
use support::*;

const H: u64 = 64;

/// Attention with q/k/v biases: 4 heads of 32 (128 wide, not the 64 hidden) and 2 KV heads.
fn biased_attention(g: Gguf, l: u32) -> Gguf {
    let t = |n: &str| format!("blk.{l}.{n}");
    g.tensor(&t("attn_norm.weight"), &[H], F32)
        .tensor(&t("attn_q.weight"), &[H, 128], Q8_0)
        .tensor(&t("attn_q.bias"), &[128], F32)
        .tensor(&t("attn_k.weight"), &[H, 64], Q8_0)
        .tensor(&t("attn_k.bias"), &[64], F32)
        .tensor(&t("attn_v.weight"), &[H, 64], Q8_0)
        .tensor(&t("attn_v.bias"), &[64], F32)
        .tensor(&t("attn_output.weight"), &[128, H], Q8_0)
}

fn metadata(arch: &str, blocks: u32) -> Gguf {
    let key = |k: &str| format!("{arch}.{k}");
    Gguf::default()
        .str("general.architecture", arch)
        .u32(&key("block_count"), blocks)
        .u32(&key("context_length"), 32768)
        .u32(&key("embedding_length"), H as u32)
        .u32(&key("feed_forward_length"), 96)
        .u32(&key("attention.head_count"), 4)
        .u32(&key("attention.head_count_kv"), 2)
        .u32(&key("attention.key_length"), 32)
        .u32(&key("attention.value_length"), 32)
        .tensor("token_embd.weight", &[H, 1000], Q8_0)
}

/// `metadata` of a mixture of experts: `dense` leading dense blocks, then `experts` experts of
/// `ffn` features, `used` per token.
fn moe_metadata(arch: &str, blocks: u32, dense: u32, experts: u32, used: u32, ffn: u32) -> Gguf {
    let key = |k: &str| format!("{arch}.{k}");
    metadata(arch, blocks)
        .u32(&key("leading_dense_block_count"), dense)
        .u32(&key("expert_count"), experts)
        .u32(&key("expert_used_count"), used)
        .u32(&key("expert_feed_forward_length"), ffn)
}

fn stored(model: &LocalModel, below_layer: u32) -> u64 {
    let kept = model.tensors.iter().filter(|t| t.layer.is_none_or(|l| l < below_layer));
    kept.map(|t| t.shape.iter().product::<u64>()).sum()
}

/// `glm4`: attn_norm, post_attention_norm, ffn_norm and post_ffw_norm, and gate+up in one
/// `ffn_up` of 2 × feed_forward_length rows.
#[test]
fn glm4_gguf_has_four_norms_and_a_fused_up() {
    let mut g = metadata("glm4", 2);
    for l in 0..2 {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        g = biased_attention(g, l)
            .tensor(&t("post_attention_norm"), &[H], F32)
            .tensor(&t("ffn_norm"), &[H], F32)
            .tensor(&t("ffn_up"), &[H, 192], Q8_0)
            .tensor(&t("ffn_down"), &[96, H], Q8_0)
            .tensor(&t("post_ffw_norm"), &[H], F32);
    }
    g = g.tensor("output_norm.weight", &[H], F32).tensor("output.weight", &[H, 1000], Q8_0);
    let (_dir, model) = open_gguf(&g, "GLM-4-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!(spec.family, Family::Glm4);
    assert_eq!((spec.norms_per_layer, spec.head_dim, spec.intermediate_size), (4, 32, 96));
    assert!(spec.fused_gate_up && spec.biases.qkv && !spec.biases.attn_out && !spec.tie_word_embeddings);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored(&model, 2));
    assert!(model.tensors.iter().all(|t| t.role.is_some()));
}

/// `glm4moe`: block_count 3 = 2 layers + 1 NextN layer (`nextn_predict_layers`); layer 0 dense,
/// layer 1 experts with a score-correction bias and a shared expert, per-head q/k norms; block 2
/// the drafter, which llama.cpp skips at load and the plan leaves out.
#[test]
fn glm4moe_gguf_leaves_its_nextn_layer_out() {
    let mut g = moe_metadata("glm4moe", 3, 1, 4, 2, 32)
        .u32("glm4moe.nextn_predict_layers", 1)
        .u32("glm4moe.expert_shared_count", 1);
    for l in 0..3 {
        let t = |n: &str| format!("blk.{l}.{n}");
        g = qk_norms(biased_attention(g, l), l, &[32], &[32]).tensor(&t("post_attention_norm.weight"), &[H], F32);
        g = if l == 0 {
            gated_mlp(g, l, H, 96, Q8_0)
        } else {
            experts(g, l, H, 4, 32, 32).tensor(&t("exp_probs_b.bias"), &[4], F32)
        };
    }
    g = g
        .tensor("blk.2.nextn.eh_proj.weight", &[2 * H, H], Q8_0)
        .tensor("blk.2.nextn.enorm.weight", &[H], F32)
        .tensor("blk.2.nextn.hnorm.weight", &[H], F32)
        .tensor("blk.2.nextn.shared_head_norm.weight", &[H], F32)
        .tensor("output_norm.weight", &[H], F32)
        .tensor("output.weight", &[H, 1000], Q8_0);
    let (_dir, model) = open_gguf(&g, "GLM-4.5-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!(spec.family, Family::Glm4Moe);
    assert_eq!((spec.num_layers, spec.mtp_layers, spec.qk_norm), (2, 0, QkNorm::PerHead));
    assert!(!spec.is_moe_layer(0) && spec.is_moe_layer(1));
    let moe = spec.moe.unwrap();
    assert_eq!((moe.shared_intermediate_size, moe.router_bias), (32, true));
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored(&model, 2));
    // The plan's weights are the two layers, the embedding and the head: not the NextN block.
    let kept_bytes: u64 = model.tensors.iter().filter(|t| t.layer.is_none_or(|l| l < 2)).map(|t| t.bytes).sum();
    let path = model.source.display().to_string();
    let out = assert_cmd::Command::cargo_bin("headroom").unwrap().args(["plan", &path, "--format", "json"]).output();
    let json: serde_json::Value = serde_json::from_slice(&out.unwrap().stdout).unwrap();
    let gpu = json["memory"]["weights_bytes"].as_u64().unwrap();
    let host = json["host"]["weights_bytes"].as_u64().unwrap();
    assert_eq!(gpu + host, kept_bytes, "{json}");
}

/// `ernie4_5-moe`: experts from `leading_dense_block_count` on, every
/// `interleave_moe_layer_step`-th layer (here 2 of 4: layers 1 and 3), each with a shared
/// expert and a correction bias; the tensors say which layers hold them. `mistral3` reads as
/// Mistral.
#[test]
fn ernie_moe_gguf_interleaves_its_experts() {
    let mut g = moe_metadata("ernie4_5-moe", 4, 1, 4, 2, 32).u32("ernie4_5-moe.interleave_moe_layer_step", 2);
    for l in 0..4 {
        let t = |n: &str| format!("blk.{l}.{n}");
        g = attention(g, l, H, 128, 64).tensor(&t("ffn_norm.weight"), &[H], F32);
        g = if l % 2 == 0 {
            gated_mlp(g, l, H, 96, Q8_0)
        } else {
            experts(g, l, H, 4, 32, 64).tensor(&t("exp_probs_b.bias"), &[4], F32)
        };
    }
    g = g.tensor("output_norm.weight", &[H], F32);
    let (_dir, model) = open_gguf(&g, "ERNIE-4.5-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!(spec.family, Family::Ernie45Moe);
    let moe: Vec<u64> = (0..4).filter(|&l| spec.is_moe_layer(l)).collect();
    assert_eq!(moe, [1, 3]);
    let m = spec.moe.unwrap();
    assert_eq!((m.shared_intermediate_size, m.router_bias), (64, true));
    assert!(spec.tie_word_embeddings);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored(&model, 4));
    assert!(model.tensors.iter().all(|t| t.role.is_some()));

    let mut g = metadata("mistral3", 1);
    g = gated_mlp(attention(g, 0, H, 128, 64).tensor("blk.0.ffn_norm.weight", &[H], F32), 0, H, 96, Q8_0);
    let (_dir, model) = open_gguf(&g.tensor("output_norm.weight", &[H], F32), "Ministral-3-tiny-Q8_0.gguf");
    assert_eq!(gguf_spec(&model).family, Family::Mistral);
}

/// A NextN count that leaves no layer is a malformed file, not a panic.
#[test]
fn glm4moe_gguf_with_only_nextn_blocks_is_refused() {
    let g = metadata("glm4moe", 1).u32("glm4moe.nextn_predict_layers", 1);
    let (_dir, model) = open_gguf(&g, "bad.gguf");
    let err = gguf_to_spec(model.gguf.as_ref().unwrap()).unwrap_err().to_string();
    assert!(err.contains("nextn_predict_layers 1 leaves none of the 1 blocks"), "{err}");
}

/// Only GLM-4.5's converter keeps its NextN blocks: elsewhere a stray `nextn_predict_layers`
/// with no NextN tensors leaves every block a layer.
#[test]
fn nextn_count_only_drops_blocks_that_hold_nextn_tensors() {
    let g = metadata("llama", 2).u32("llama.nextn_predict_layers", 1);
    let (_dir, model) = open_gguf(&g, "llama.gguf");
    assert_eq!(gguf_spec(&model).num_layers, 2);
}

/// `olmo2` with a window is Olmo 3: `post_attention_norm` and `post_ffw_norm` only, q/k norms
/// over 128 and 64 channels (4 heads and 2 KV heads of 32), and the converter's per-layer
/// `sliding_window_pattern` flags.
#[test]
fn olmo_gguf_post_norms_and_window_flags() {
    let layers = 4u32;
    let mut g = metadata("olmo2", layers)
        .u32("olmo2.attention.sliding_window", 4096)
        .i32s("olmo2.attention.sliding_window_pattern", &[1, 1, 1, 0]);
    for l in 0..layers {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        g = qk_norms(attn_projections(g, l, H, 128, 64), l, &[128], &[64]).tensor(&t("post_attention_norm"), &[H], F32);
        g = gated_mlp(g, l, H, 96, Q8_0).tensor(&t("post_ffw_norm"), &[H], F32);
    }
    g = g.tensor("output_norm.weight", &[H], F32).tensor("output.weight", &[H, 1000], Q8_0);
    let (_dir, model) = open_gguf(&g, "Olmo-3-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!((spec.family, spec.qk_norm), (Family::Olmo3, QkNorm::Full));
    let window = LayerAttention::Sliding { window: 4096 };
    assert_eq!(spec.layer_attention, [window, window, window, LayerAttention::Full]);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored(&model, layers));
    assert!(model.tensors.iter().all(|t| t.role.is_some()));
}

/// `command-r` with 64 or more layers carries q/k norms of {head_dim, heads}: a row per head.
#[test]
fn command_r_gguf_per_head_norm_rows() {
    let mut g = metadata("command-r", 1);
    g = qk_norms(attention(g, 0, H, 128, 64), 0, &[32, 4], &[32, 2]);
    g = gated_mlp(g, 0, H, 96, Q8_0).tensor("output_norm.weight", &[H], F32);
    let (_dir, model) = open_gguf(&g, "c4ai-command-r-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!((spec.family, spec.qk_norm, spec.norms_per_layer), (Family::Cohere, QkNorm::Full, 1));
    assert!(spec.tie_word_embeddings);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored(&model, 1));
}
