//! Local model files: synthetic safetensors (single and sharded) and GGUF files in temporary
//! directories, read back header-only; exact bytes, roles, specs, and the error for each kind of
//! damage.

mod support;

use headroom::model::gguf::{gguf_to_spec, parse_gguf_bytes, read_gguf};
use headroom::model::local::{LocalFileError, LocalFormat, LocalModel};
use headroom::model::safetensors::{parse_header_bytes, read_header};
use headroom::model::spec::{Family, LayerAttention, ModelSpec, QkNorm};
use headroom::model::tensors::{inventory, param_counts, Role};
use headroom::quant::ggml::GgmlType;
use std::fs;
use std::path::Path;
use support::gguf::{attn_projections, gated_mlp, gguf_spec, open_gguf, stored_elements};
use support::*;
use tempfile::TempDir;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    fs::write(&path, bytes).unwrap();
    path
}

fn llama_spec(hidden: u64, heads: u64, kv_heads: u64, ffn: u64, vocab: u64, tied: bool) -> ModelSpec {
    support::llama_spec(2, hidden, heads, kv_heads, ffn, vocab, tied)
}

// ---------------------------------------------------------------- safetensors

#[test]
fn llama_safetensors_has_exact_bytes_roles_and_layers() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "model.safetensors", &safetensors_owned(&llama_tensors(0..2, true, true)));
    write(dir.path(), "config.json", b"{}");
    let model = LocalModel::open(dir.path()).unwrap();
    assert_eq!(model.format, LocalFormat::Safetensors);
    assert_eq!(model.config_path, Some(dir.path().join("config.json")));

    let spec = llama_spec(64, 4, 2, 128, 100, false);
    let params = param_counts(&spec, &inventory(&spec)).total;
    assert_eq!(model.parameter_count(), params);
    assert_eq!(model.total_bytes(), 2 * params);
    assert_eq!(model.bytes_by_dtype(), vec![("BF16".to_string(), 2 * params)]);

    let roles = model.bytes_by_role();
    let bytes_of = |role| roles.iter().find(|(r, _)| *r == Some(role)).map(|(_, b)| *b);
    assert_eq!(bytes_of(Role::AttnK), Some(2 * 32 * 64 * 2));
    assert_eq!(bytes_of(Role::FfnDown), Some(2 * 64 * 128 * 2));
    assert_eq!(bytes_of(Role::Output), Some(100 * 64 * 2));
    assert_eq!(bytes_of(Role::FfnNorm), Some(2 * 64 * 2));
    assert!(roles.iter().all(|(r, _)| r.is_some()));

    let q1 = model.tensors.iter().find(|t| t.name == "model.layers.1.self_attn.q_proj.weight").unwrap();
    assert_eq!((q1.role, q1.layer, q1.shape.as_slice(), q1.bytes), (Some(Role::AttnQ), Some(1), &[64, 64][..], 8192));
    assert_eq!(LocalModel::open(&dir.path().join("model.safetensors")).unwrap().tensors, model.tensors);
}

#[test]
fn sharded_safetensors_read_every_shard_once() {
    let dir = TempDir::new().unwrap();
    let first = llama_tensors(0..1, true, false);
    let second = llama_tensors(1..2, false, true);
    write(dir.path(), "model-00001-of-00002.safetensors", &safetensors_owned(&first));
    write(dir.path(), "model-00002-of-00002.safetensors", &safetensors_owned(&second));
    let map: serde_json::Map<String, serde_json::Value> = first
        .iter()
        .map(|t| (t.0.clone(), "model-00001-of-00002.safetensors".into()))
        .chain(second.iter().map(|t| (t.0.clone(), "model-00002-of-00002.safetensors".into())))
        .collect();
    let index = serde_json::json!({"metadata": {"total_size": 12345}, "weight_map": map}).to_string();
    let index_path = write(dir.path(), "model.safetensors.index.json", index.as_bytes());

    let model = LocalModel::open(dir.path()).unwrap();
    assert_eq!(model.format, LocalFormat::ShardedSafetensors);
    assert_eq!(model.files.len(), 2);
    assert_eq!(model.declared_total_bytes, Some(12345));
    let spec = llama_spec(64, 4, 2, 128, 100, false);
    assert_eq!(model.parameter_count(), param_counts(&spec, &inventory(&spec)).total);
    assert_eq!(LocalModel::open(&index_path).unwrap().total_bytes(), model.total_bytes());

    // A missing shard is named; a tensor the index misplaces is caught.
    fs::remove_file(dir.path().join("model-00002-of-00002.safetensors")).unwrap();
    let err = LocalModel::open(dir.path()).unwrap_err();
    assert!(matches!(&err, LocalFileError::MissingShard { shard, .. } if shard == "model-00002-of-00002.safetensors"));
    assert!(err.to_string().contains("download it"), "{err}");
    write(dir.path(), "model-00002-of-00002.safetensors", &safetensors_owned(&second[1..]));
    let err = LocalModel::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("model.layers.1.input_layernorm.weight"), "{err}");
}

#[test]
fn shards_without_an_index_are_all_read() {
    let dir = TempDir::new().unwrap();
    write(dir.path(), "a.safetensors", &safetensors_owned(&llama_tensors(0..1, true, false)));
    write(dir.path(), "b.safetensors", &safetensors_owned(&llama_tensors(1..2, false, true)));
    let model = LocalModel::open(dir.path()).unwrap();
    assert_eq!(model.format, LocalFormat::ShardedSafetensors);
    assert_eq!(model.tensors.len(), 2 + 2 * 9 + 1);
    write(dir.path(), "c.safetensors", &safetensors_owned(&llama_tensors(1..2, false, false)));
    let err = LocalModel::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("more than one"), "{err}");
}

#[test]
fn damaged_safetensors_give_the_right_error() {
    let good = safetensors(&[("w", "BF16", &[4, 4])]);
    assert!(parse_header_bytes(&good).is_ok());
    let dir = TempDir::new().unwrap();

    let cut = write(dir.path(), "cut.safetensors", &good[..20]);
    assert!(matches!(read_header(&cut), Err(LocalFileError::Truncated { .. })));
    let short = write(dir.path(), "short.safetensors", &good[..5]);
    assert!(matches!(read_header(&short), Err(LocalFileError::Truncated { .. })));
    let no_data = write(dir.path(), "nodata.safetensors", &good[..good.len() - 1]);
    let err = read_header(&no_data).unwrap_err();
    assert!(matches!(&err, LocalFileError::Truncated { what, .. } if what.contains("'w'")), "{err}");

    let mut huge = good.clone();
    huge[..8].copy_from_slice(&(200u64 << 20).to_le_bytes());
    let err = parse_header_bytes(&huge).unwrap_err();
    assert!(matches!(err, LocalFileError::HeaderTooLarge { len, .. } if len == 200 << 20));

    let bad_json = safetensors_from_json("{\"w\": [1, 2", 0);
    assert!(matches!(parse_header_bytes(&bad_json), Err(LocalFileError::Malformed { .. })));
    let unknown = safetensors_from_json(r#"{"w":{"dtype":"Q4","shape":[2],"data_offsets":[0,1]}}"#, 1);
    let err = parse_header_bytes(&unknown).unwrap_err();
    assert!(matches!(&err, LocalFileError::UnknownDtype { tensor, dtype, .. } if tensor == "w" && dtype == "Q4"));
    assert!(err.to_string().contains("BF16"), "{err}");
    let wrong_size = safetensors_from_json(r#"{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}}"#, 4);
    assert!(matches!(parse_header_bytes(&wrong_size), Err(LocalFileError::Malformed { .. })));
}

#[test]
fn open_explains_what_it_cannot_use() {
    let dir = TempDir::new().unwrap();
    let err = LocalModel::open(&dir.path().join("nope")).unwrap_err();
    assert!(matches!(err, LocalFileError::NotFound { .. }));
    assert!(err.to_string().contains("check the path"));
    assert!(matches!(LocalModel::open(dir.path()), Err(LocalFileError::NoModelFiles { .. })));
    let config = write(dir.path(), "config.json", b"{}");
    assert!(matches!(LocalModel::open(&config), Err(LocalFileError::UnsupportedFile { .. })));
    write(dir.path(), "a.gguf", &llama_gguf(false).build());
    write(dir.path(), "b.gguf", &llama_gguf(true).build());
    let err = LocalModel::open(dir.path()).unwrap_err();
    assert!(err.to_string().contains("a.gguf, b.gguf"), "{err}");
}

// ---------------------------------------------------------------- GGUF

#[test]
fn gguf_tensors_have_exact_block_bytes() {
    let dir = TempDir::new().unwrap();
    let path = write(dir.path(), "tiny-Q4_K_M.gguf", &llama_gguf(false).build());
    let model = LocalModel::open(&path).unwrap();
    assert_eq!(model.format, LocalFormat::Gguf);
    let gguf = model.gguf.as_ref().unwrap();
    assert_eq!((gguf.version, gguf.alignment), (3, 32));
    assert_eq!(gguf.architecture(), Some("llama"));
    assert_eq!(gguf.file_type_name(), Some("Q4_K_M"));
    assert_eq!(gguf.get("tokenizer.ggml.tokens").and_then(|v| v.array_len()), Some(300));

    // q4_K: 144 bytes per 256 weights; q6_K: 210; f32: 4 per weight.
    let q4 = |n: u64| n / 256 * 144;
    let q6 = |n: u64| n / 256 * 210;
    let embd = &model.tensors[0];
    assert_eq!((embd.dtype.as_str(), embd.shape.as_slice(), embd.bytes), ("q4_K", &[300, 256][..], q4(300 * 256)));
    let layer = q4(256 * 256) * 2 + q4(256 * 128) + q6(256 * 128) + q4(256 * 512) * 2 + q6(512 * 256) + 2 * 256 * 4;
    let total = q4(300 * 256) + 2 * layer + 256 * 4 + q6(300 * 256);
    assert_eq!(model.total_bytes(), total);
    let dtypes = model.bytes_by_dtype();
    assert_eq!(dtypes.iter().map(|d| d.0.as_str()).collect::<Vec<_>>(), ["q4_K", "q6_K", "f32"]);

    let spec = gguf_to_spec(gguf).unwrap();
    assert_eq!(model.parameter_count(), param_counts(&spec, &inventory(&spec)).total);
    let down = model.tensors.iter().find(|t| t.name == "blk.1.ffn_down.weight").unwrap();
    assert_eq!((down.role, down.layer, down.dtype.as_str()), (Some(Role::FfnDown), Some(1), "q6_K"));
}

#[test]
fn gguf_spec_matches_the_metadata() {
    let spec = gguf_to_spec(&parse_gguf_bytes(&llama_gguf(false).build()).unwrap()).unwrap();
    let mut expected = llama_spec(256, 4, 2, 512, 300, false);
    expected.id = "Tiny Llama".into();
    assert_eq!(spec, expected);
    let tied = gguf_to_spec(&parse_gguf_bytes(&llama_gguf(true).build()).unwrap()).unwrap();
    assert!(tied.tie_word_embeddings);
}

#[test]
fn gguf_alignment_and_versions() {
    let mut g = llama_gguf(false).alignment(64);
    g.version = 2;
    let file = parse_gguf_bytes(&g.build()).unwrap();
    assert_eq!((file.version, file.alignment, file.data_offset % 64), (2, 64, 0));
    g.version = 1;
    assert!(matches!(parse_gguf_bytes(&g.build()), Err(LocalFileError::UnsupportedVersion { version: 1, .. })));
    let odd = llama_metadata().u32("general.alignment", 48).build();
    assert!(matches!(parse_gguf_bytes(&odd), Err(LocalFileError::Malformed { .. })));
}

#[test]
fn gemma2_slides_on_even_layers() {
    use GgmlType::*;
    let g = Gguf::default()
        .str("general.architecture", "gemma2")
        .u32("gemma2.block_count", 2)
        .u32("gemma2.context_length", 8192)
        .u32("gemma2.embedding_length", 256)
        .u32("gemma2.feed_forward_length", 512)
        .u32("gemma2.attention.head_count", 2)
        .u32("gemma2.attention.head_count_kv", 1)
        .u32("gemma2.attention.key_length", 256)
        .u32("gemma2.attention.sliding_window", 4096)
        .tensor("token_embd.weight", &[256, 1000], Q8_0);
    let spec = gguf_to_spec(&parse_gguf_bytes(&g.build()).unwrap()).unwrap();
    assert_eq!(spec.family, Family::Gemma2);
    assert_eq!((spec.head_dim, spec.vocab_size, spec.norms_per_layer), (256, 1000, 4));
    assert!(spec.tie_word_embeddings);
    let window = LayerAttention::Sliding { window: 4096 };
    assert_eq!(spec.layer_attention, vec![window, LayerAttention::Full]);
}

/// llama.cpp's phi2 layout (`llama_model_phi2::load_arch_tensors`): LayerNorm weights and biases,
/// a fused `attn_qkv` with bias (older converters; newer ones write attn_q/k/v), biased
/// attn_output, ffn_up and ffn_down, and an `output.bias` on the lm_head.
#[test]
fn phi2_counts_every_bias_and_the_lm_head_bias() {
    use GgmlType::*;
    let mut g = Gguf::default()
        .str("general.architecture", "phi2")
        .u32("phi2.block_count", 2)
        .u32("phi2.context_length", 2048)
        .u32("phi2.embedding_length", 256)
        .u32("phi2.feed_forward_length", 1024)
        .u32("phi2.attention.head_count", 4)
        .u32("phi2.attention.head_count_kv", 4)
        .tensor("token_embd.weight", &[256, 512], Q8_0);
    for l in 0..2 {
        let t = |n: &str, part: &str| format!("blk.{l}.{n}.{part}");
        g = g
            .tensor(&t("attn_norm", "weight"), &[256], F32)
            .tensor(&t("attn_norm", "bias"), &[256], F32)
            .tensor(&t("attn_qkv", "weight"), &[256, 768], Q8_0)
            .tensor(&t("attn_qkv", "bias"), &[768], F32)
            .tensor(&t("attn_output", "weight"), &[256, 256], Q8_0)
            .tensor(&t("attn_output", "bias"), &[256], F32)
            .tensor(&t("ffn_up", "weight"), &[256, 1024], Q8_0)
            .tensor(&t("ffn_up", "bias"), &[1024], F32)
            .tensor(&t("ffn_down", "weight"), &[1024, 256], Q8_0)
            .tensor(&t("ffn_down", "bias"), &[256], F32);
    }
    g = g
        .tensor("output_norm.weight", &[256], F32)
        .tensor("output_norm.bias", &[256], F32)
        .tensor("output.weight", &[256, 512], Q8_0)
        .tensor("output.bias", &[512], F32);
    let (_dir, model) = open_gguf(&g, "phi-2.Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!(spec.family, Family::Phi);
    assert_eq!((spec.norms_per_layer, spec.fused_qkv, spec.tie_word_embeddings), (1, true, false));
    assert!(spec.biases.qkv && spec.biases.attn_out && spec.biases.mlp && spec.biases.lm_head);
    assert_eq!(model.parameter_count(), param_counts(&spec, &inventory(&spec)).total);
    let lm_bias = model.tensors.iter().find(|t| t.name == "output.bias").unwrap();
    assert_eq!((lm_bias.role, lm_bias.layer), (Some(Role::Output), None));
}

#[test]
fn deepseek2_gives_mla_and_moe() {
    use GgmlType::*;
    let mut g = Gguf::default()
        .str("general.architecture", "deepseek2")
        .u32("deepseek2.block_count", 3)
        .u32("deepseek2.context_length", 163840)
        .u32("deepseek2.embedding_length", 256)
        .u32("deepseek2.feed_forward_length", 1024)
        .u32("deepseek2.attention.head_count", 4)
        .u32("deepseek2.attention.head_count_kv", 1)
        .u32("deepseek2.attention.key_length", 512 + 64)
        .u32("deepseek2.attention.key_length_mla", 192)
        .u32("deepseek2.attention.value_length_mla", 128)
        .u32("deepseek2.attention.q_lora_rank", 384)
        .u32("deepseek2.attention.kv_lora_rank", 512)
        .u32("deepseek2.rope.dimension_count", 64)
        .u32("deepseek2.expert_count", 8)
        .u32("deepseek2.expert_used_count", 2)
        .u32("deepseek2.expert_feed_forward_length", 256)
        .u32("deepseek2.expert_shared_count", 1)
        .u32("deepseek2.leading_dense_block_count", 1)
        .tensor("token_embd.weight", &[256, 512], Q8_0)
        .tensor("output.weight", &[256, 512], Q8_0);
    for l in 1..3 {
        g = g.tensor(&format!("blk.{l}.exp_probs_b.bias"), &[8], F32).tensor(
            &format!("blk.{l}.ffn_up_shexp.weight"),
            &[256, 256],
            Q8_0,
        );
    }
    let spec = gguf_to_spec(&parse_gguf_bytes(&g.build()).unwrap()).unwrap();
    assert_eq!(spec.family, Family::DeepseekV3);
    let mla = spec.mla.unwrap();
    assert_eq!((mla.q_lora_rank, mla.kv_lora_rank), (Some(384), 512));
    assert_eq!((mla.qk_nope_head_dim, mla.qk_rope_head_dim, mla.v_head_dim), (128, 64, 128));
    assert_eq!((spec.head_dim, spec.num_kv_heads), (192, 4));
    let moe = spec.moe.unwrap();
    assert_eq!((moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size), (8, 2, 256));
    assert_eq!((moe.shared_intermediate_size, moe.first_dense_layers, moe.router_bias), (256, 1, true));
}

#[test]
fn gguf_spec_errors_name_the_key() {
    let no_layers = Gguf::default().str("general.architecture", "llama").u32("llama.embedding_length", 64);
    let err = gguf_to_spec(&parse_gguf_bytes(&no_layers.build()).unwrap()).unwrap_err();
    assert!(matches!(&err, LocalFileError::MissingKey { key, .. } if key == "llama.block_count"), "{err}");
    let mamba = Gguf::default().str("general.architecture", "rwkv6");
    let err = gguf_to_spec(&parse_gguf_bytes(&mamba.build()).unwrap()).unwrap_err();
    assert!(err.to_string().contains("'rwkv6' is not supported"), "{err}");
    let per_layer = Gguf::default()
        .str("general.architecture", "llama")
        .u32("llama.block_count", 2)
        .u32("llama.embedding_length", 64)
        .u32("llama.attention.head_count", 4)
        .u32("llama.feed_forward_length", 128)
        .i32s("llama.attention.head_count_kv", &[2, 2]);
    let err = gguf_to_spec(&parse_gguf_bytes(&per_layer.build()).unwrap()).unwrap_err();
    assert!(err.to_string().contains("holds an array of 2 I32 items, not a count"), "{err}");
    let twice = llama_metadata().u32("llama.block_count", 3);
    let err = parse_gguf_bytes(&twice.build()).unwrap_err();
    assert!(err.to_string().contains("appears twice"), "{err}");
}

#[test]
fn damaged_gguf_gives_the_right_error() {
    let good = llama_gguf(false).build();
    let dir = TempDir::new().unwrap();
    let mut bad_magic = good.clone();
    bad_magic[..4].copy_from_slice(b"GGML");
    let err = parse_gguf_bytes(&bad_magic).unwrap_err();
    assert!(matches!(&err, LocalFileError::BadMagic { found, .. } if found == "GGML"), "{err}");

    let cut = write(dir.path(), "cut.gguf", &good[..200]);
    let err = read_gguf(&cut).unwrap_err();
    assert!(matches!(&err, LocalFileError::Truncated { what, .. } if what.contains("metadata")), "{err}");
    let no_data = write(dir.path(), "nodata.gguf", &good[..good.len() - 10]);
    let err = read_gguf(&no_data).unwrap_err();
    assert!(matches!(&err, LocalFileError::Truncated { what, .. } if what.contains("output.weight")), "{err}");

    let unknown = llama_metadata().tensor_raw("blk.0.attn_q.weight", &[256, 256], 4, 0);
    let err = parse_gguf_bytes(&unknown.build()).unwrap_err();
    assert!(matches!(&err, LocalFileError::UnknownGgmlType { id: 4, tensor, .. } if tensor == "blk.0.attn_q.weight"));
    assert!(err.to_string().contains("id 4"), "{err}");

    let five_dims = llama_metadata().tensor_raw("x", &[1, 1, 1, 1, 1], 0, 4);
    assert!(parse_gguf_bytes(&five_dims.build()).unwrap_err().to_string().contains("5 dimensions"));
    let ragged = llama_metadata().tensor_raw("x", &[100, 2], GgmlType::Q4_K.id(), 0);
    assert!(parse_gguf_bytes(&ragged.build()).unwrap_err().to_string().contains("not a multiple"));
    let bad_bool = llama_metadata().bool("general.flag", 2);
    assert!(parse_gguf_bytes(&bad_bool.build()).unwrap_err().to_string().contains("not a bool"));

    let mut long_string = Gguf::default().str("general.architecture", "llama").build();
    let len_at = 4 + 4 + 8 + 8 + 8 + "general.architecture".len() + 4;
    long_string[len_at..len_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(parse_gguf_bytes(&long_string).unwrap_err().to_string().contains("over the"));
}

/// A Mamba-2 layer `l` as llama.cpp writes it: 8 heads of 16 (inner 128), `groups` groups of a
/// 16-wide state, a 4-tap convolution with its bias, the grouped norm.
fn with_mamba2_layer(g: Gguf, l: u32, h: u64, groups: u64) -> Gguf {
    use GgmlType::*;
    let t = |n: &str| format!("blk.{l}.{n}");
    let conv = 128 + 2 * groups * 16;
    g.tensor(&t("ssm_in.weight"), &[h, 128 + conv + 8], Q8_0)
        .tensor(&t("ssm_conv1d.weight"), &[4, conv], F32)
        .tensor(&t("ssm_conv1d.bias"), &[conv], F32)
        .tensor(&t("ssm_dt.bias"), &[8], F32)
        .tensor(&t("ssm_a"), &[1, 8], F32)
        .tensor(&t("ssm_d"), &[1, 8], F32)
        .tensor(&t("ssm_norm.weight"), &[128 / groups, groups], F32)
        .tensor(&t("ssm_out.weight"), &[128, h], Q8_0)
}

/// llama.cpp's nemotron_h layout: one mixer per block — `ssm_*` (Mamba-2), `attn_*`, `ffn_up`
/// and `ffn_down` (squared ReLU), or experts with a score-correction bias and a shared expert —
/// with per-layer `head_count_kv` and `feed_forward_length` arrays (0 where a block has none).
#[test]
fn nemotron_h_gguf_blocks_hold_one_mixer_each() {
    use GgmlType::*;
    let h = 64u64;
    let mut g = Gguf::default()
        .str("general.architecture", "nemotron_h_moe")
        .u32("nemotron_h_moe.block_count", 4)
        .u32("nemotron_h_moe.context_length", 8192)
        .u32("nemotron_h_moe.embedding_length", h as u32)
        .i32s("nemotron_h_moe.feed_forward_length", &[0, 96, 0, 32])
        .u32("nemotron_h_moe.attention.head_count", 4)
        .i32s("nemotron_h_moe.attention.head_count_kv", &[0, 0, 2, 0])
        .u32("nemotron_h_moe.attention.key_length", 32)
        .u32("nemotron_h_moe.ssm.conv_kernel", 4)
        .u32("nemotron_h_moe.ssm.state_size", 16)
        .u32("nemotron_h_moe.ssm.group_count", 2)
        .u32("nemotron_h_moe.ssm.time_step_rank", 8)
        .u32("nemotron_h_moe.ssm.inner_size", 128)
        .u32("nemotron_h_moe.expert_count", 4)
        .u32("nemotron_h_moe.expert_used_count", 2)
        .u32("nemotron_h_moe.expert_feed_forward_length", 32)
        .tensor("token_embd.weight", &[h, 1000], Q8_0);
    let t = |l: u32, n: &str| format!("blk.{l}.{n}");
    for l in 0..4 {
        g = g.tensor(&t(l, "attn_norm.weight"), &[h], F32);
    }
    // Block 0: Mamba-2 (in_proj 2·128 + 2·2·16 + 8 = 328 rows, conv over 192 channels).
    g = with_mamba2_layer(g, 0, h, 2);
    // Block 1: MLP. Block 2: attention, heads of 32 (not 64 / 4). Block 3: experts.
    g = g.tensor(&t(1, "ffn_up.weight"), &[h, 96], Q8_0).tensor(&t(1, "ffn_down.weight"), &[96, h], Q8_0);
    g = attn_projections(g, 2, h, 128, 64);
    g = g
        .tensor(&t(3, "ffn_gate_inp.weight"), &[h, 4], F32)
        .tensor(&t(3, "exp_probs_b.bias"), &[4], F32)
        .tensor(&t(3, "ffn_up_exps.weight"), &[h, 32, 4], Q8_0)
        .tensor(&t(3, "ffn_down_exps.weight"), &[32, h, 4], Q8_0)
        .tensor(&t(3, "ffn_up_shexp.weight"), &[h, 64], Q8_0)
        .tensor(&t(3, "ffn_down_shexp.weight"), &[64, h], Q8_0);
    g = g.tensor("output_norm.weight", &[h], F32).tensor("output.weight", &[h, 1000], Q8_0);
    let (_dir, model) = open_gguf(&g, "Nemotron-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    use headroom::model::spec::{LayerAttention as A, LayerMlp as M};
    assert_eq!(spec.family, Family::NemotronH);
    assert_eq!(spec.layer_attention, [A::Linear, A::Absent, A::Full, A::Absent]);
    assert_eq!(spec.layer_mlp, [M::Absent, M::Dense, M::Absent, M::Moe]);
    assert_eq!((spec.head_dim, spec.num_kv_heads, spec.intermediate_size), (32, 2, 96));
    let la = spec.linear_attention.unwrap();
    assert_eq!((la.num_key_heads, la.num_value_heads, la.key_head_dim, la.value_head_dim), (2, 8, 16, 16));
    assert!(la.conv_bias && !la.proj_bias);
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored);
    assert!(model.tensors.iter().all(|t| t.role.is_some()), "{:?}", model.tensors.iter().find(|t| t.role.is_none()));
}

/// llama.cpp's granitehybrid layout (a dense Granite 4.0 H): every layer a norm, a Mamba-2 or
/// attention mixer (`head_count_kv` 0 in the Mamba layers), a norm and a SwiGLU MLP.
#[test]
fn granite_hybrid_gguf_layers_hold_a_mixer_and_an_mlp() {
    use GgmlType::*;
    let h = 64u64;
    let mut g = Gguf::default()
        .str("general.architecture", "granitehybrid")
        .u32("granitehybrid.block_count", 2)
        .u32("granitehybrid.context_length", 8192)
        .u32("granitehybrid.embedding_length", h as u32)
        .u32("granitehybrid.feed_forward_length", 128)
        .u32("granitehybrid.attention.head_count", 4)
        .i32s("granitehybrid.attention.head_count_kv", &[0, 2])
        .u32("granitehybrid.ssm.conv_kernel", 4)
        .u32("granitehybrid.ssm.state_size", 16)
        .u32("granitehybrid.ssm.group_count", 1)
        .u32("granitehybrid.ssm.time_step_rank", 8)
        .u32("granitehybrid.ssm.inner_size", 128)
        .tensor("token_embd.weight", &[h, 1000], Q8_0);
    let t = |l: u32, n: &str| format!("blk.{l}.{n}");
    // Layer 0: Mamba-2, one group (in_proj 2·128 + 2·16 + 8 = 296 rows, conv over 160 channels).
    g = with_mamba2_layer(g, 0, h, 1);
    g = attn_projections(g, 1, h, 64, 32);
    for l in 0..2 {
        g = g.tensor(&t(l, "attn_norm.weight"), &[h], F32).tensor(&t(l, "ffn_norm.weight"), &[h], F32);
        g = gated_mlp(g, l, h, 128, Q8_0);
    }
    g = g.tensor("output_norm.weight", &[h], F32);
    let (_dir, model) = open_gguf(&g, "granite-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    use headroom::model::spec::{LayerAttention as A, LayerMlp as M};
    assert_eq!(spec.family, Family::GraniteMoeHybrid);
    assert_eq!(
        (spec.layer_attention.as_slice(), spec.layer_mlp.as_slice()),
        ([A::Linear, A::Full].as_slice(), [M::Dense, M::Dense].as_slice())
    );
    assert_eq!((spec.num_kv_heads, spec.head_dim, spec.norms_per_layer), (2, 16, 2));
    let la = spec.linear_attention.unwrap();
    assert_eq!((la.num_key_heads, la.conv_dim(), la.state_fp32), (1, 160, false));
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored);
    assert!(model.tensors.iter().all(|t| t.role.is_some()), "{:?}", model.tensors.iter().find(|t| t.role.is_none()));
}

/// llama.cpp's qwen35 layout (a Qwen3.5 GGUF, text only): DeltaNet layers with `attn_qkv`,
/// `attn_gate`, `ssm_beta`, `ssm_alpha`, `ssm_conv1d`, `ssm_dt`, `ssm_a`, `ssm_norm`, `ssm_out`,
/// and every 4th layer a gated attention whose `attn_q` holds queries and gate. The DeltaNet
/// shape comes from the Mamba keys the converter reuses.
#[test]
fn qwen35_gguf_is_a_deltanet_hybrid() {
    use GgmlType::*;
    let (h, layers) = (256u64, 4u32);
    let mut g = Gguf::default()
        .str("general.architecture", "qwen35")
        .u32("qwen35.block_count", layers)
        .u32("qwen35.context_length", 262_144)
        .u32("qwen35.embedding_length", h as u32)
        .u32("qwen35.feed_forward_length", 512)
        .u32("qwen35.attention.head_count", 2)
        .u32("qwen35.attention.head_count_kv", 1)
        .u32("qwen35.attention.key_length", 256)
        .u32("qwen35.full_attention_interval", 4)
        .u32("qwen35.ssm.conv_kernel", 4)
        .u32("qwen35.ssm.state_size", 128)
        .u32("qwen35.ssm.group_count", 2)
        .u32("qwen35.ssm.time_step_rank", 4)
        .u32("qwen35.ssm.inner_size", 512)
        .tensor("token_embd.weight", &[h, 1024], Q8_0);
    for l in 0..layers {
        let t = |n: &str| format!("blk.{l}.{n}");
        g = g.tensor(&t("attn_norm.weight"), &[h], F32).tensor(&t("post_attention_norm.weight"), &[h], F32);
        if l == 3 {
            g = g
                .tensor(&t("attn_q.weight"), &[h, 2 * 2 * 256], Q8_0)
                .tensor(&t("attn_k.weight"), &[h, 256], Q8_0)
                .tensor(&t("attn_v.weight"), &[h, 256], Q8_0)
                .tensor(&t("attn_output.weight"), &[512, h], Q8_0)
                .tensor(&t("attn_q_norm.weight"), &[256], F32)
                .tensor(&t("attn_k_norm.weight"), &[256], F32);
        } else {
            g = g
                .tensor(&t("attn_qkv.weight"), &[h, 2 * 256 + 512], Q8_0)
                .tensor(&t("attn_gate.weight"), &[h, 512], Q8_0)
                .tensor(&t("ssm_beta.weight"), &[h, 4], F32)
                .tensor(&t("ssm_alpha.weight"), &[h, 4], F32)
                .tensor(&t("ssm_conv1d.weight"), &[4, 1024], F32)
                .tensor(&t("ssm_dt.bias"), &[4], F32)
                .tensor(&t("ssm_a"), &[4], F32)
                .tensor(&t("ssm_norm.weight"), &[128], F32)
                .tensor(&t("ssm_out.weight"), &[512, h], Q8_0);
        }
        g = gated_mlp(g, l, h, 512, Q8_0);
    }
    g = g.tensor("output_norm.weight", &[h], F32).tensor("output.weight", &[h, 1024], Q8_0);
    let (_dir, model) = open_gguf(&g, "Qwen3.5-tiny-Q8_0.gguf");
    let spec = gguf_spec(&model);
    assert_eq!(spec.family, Family::Qwen35);
    let kinds: Vec<bool> = (0..4).map(|l| spec.is_linear_layer(l)).collect();
    assert_eq!(kinds, [true, true, true, false]);
    let la = spec.linear_attention.unwrap();
    assert_eq!((la.num_key_heads, la.num_value_heads, la.key_head_dim, la.value_head_dim), (2, 4, 128, 128));
    assert!(la.split_projections && spec.attn_output_gate && spec.qk_norm == QkNorm::PerHead && !spec.fused_qkv);
    // The architecture's inventory has the file's parameter count.
    let stored = stored_elements(&model);
    assert_eq!(param_counts(&spec, &inventory(&spec)).total, stored);
    // Every DeltaNet tensor has a role in its layer.
    assert!(model.tensors.iter().all(|t| t.role.is_some()), "{:?}", model.tensors.iter().find(|t| t.role.is_none()));
    assert_eq!(model.tensors.iter().find(|t| t.name == "blk.0.ssm_dt.bias").unwrap().role, Some(Role::SsmDt));

    // A zero interval is refused, not divided by.
    let mut bad = Gguf::default().str("general.architecture", "qwen35");
    for (key, value) in [
        ("block_count", 4),
        ("context_length", 4096),
        ("embedding_length", 256),
        ("feed_forward_length", 512),
        ("attention.head_count", 2),
        ("ssm.conv_kernel", 4),
        ("ssm.state_size", 128),
        ("ssm.group_count", 2),
        ("ssm.time_step_rank", 4),
        ("ssm.inner_size", 512),
        ("full_attention_interval", 0),
    ] {
        bad = bad.u32(&format!("qwen35.{key}"), value);
    }
    let bad = bad.tensor("token_embd.weight", &[256, 1024], Q8_0).build();
    let err = gguf_to_spec(&parse_gguf_bytes(&bad).unwrap()).map(|_| ()).unwrap_err().to_string();
    assert!(err.contains("full_attention_interval"), "{err}");
}
