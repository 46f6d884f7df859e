//! gpt-oss: the catalog's two models counted exactly against OpenAI's model card, the checkpoint's
//! MXFP4 layout (experts only) byte for byte, llama.cpp's GGUF and a safetensors checkpoint in
//! the published names, and the 120b planned on one 80 GB H100.

mod support;

use headroom::catalog::models::ModelCatalog;
use headroom::model::local::LocalModel;
use headroom::model::spec::{Family, LayerAttention, ModelSpec};
use headroom::model::tensors::{inventory, param_counts, Part, Role};
use headroom::quant::ggml::GgmlType::{F32, Q8_0};
use headroom::quant::{FloatType, QuantScheme, StoredType, WeightFormat};
use std::fs;
use support::catalog::spec;
use support::cli::{fits, plan_json, u};
use support::gguf::{gguf_spec, open_gguf};
use support::*;
use tempfile::TempDir;

fn mxfp4() -> WeightFormat {
    WeightFormat::parse("mxfp4").unwrap()
}

/// Active parameters as the model card counts them: lm_head in, the embedding out.
fn card_active(spec: &ModelSpec) -> u64 {
    param_counts(spec, &inventory(spec)).active - spec.vocab_size * spec.hidden_size
}

/// Model card (arXiv 2508.10925) Table 1: 20b 20.91B total, 3.61B active, MLP 19.12B, attention
/// 0.64B, embed + unembed 1.16B; 120b 116.83B, 5.13B, 114.71B, 0.96B, 1.16B. Per layer the
/// attention is 26,550,144 (q, k, v, o with biases and 64 sinks) and each expert 24,891,840
/// (gate_up 5760·2880 + 5760, down 2880·2880 + 2880), with a router of experts·2881.
#[test]
fn counts_match_the_model_card() {
    for (id, total, active, experts, layers) in [
        ("gpt-oss-20b", 20_914_757_184, 3_608_307_264, 32, 24),
        ("gpt-oss-120b", 116_829_156_672, 5_132_849_472, 128, 36),
    ] {
        let s = spec(id);
        let tensors = inventory(&s);
        assert_eq!(param_counts(&s, &tensors).total, total, "{id}");
        assert_eq!(card_active(&s), active, "{id}");
        let sum =
            |f: &dyn Fn(Role) -> bool| -> u64 { tensors.iter().filter(|t| f(t.role)).map(|t| t.elements()).sum() };
        let attention =
            sum(&|r| matches!(r, Role::AttnQ | Role::AttnK | Role::AttnV | Role::AttnOutput | Role::AttnSinks));
        assert_eq!(attention, layers * 26_550_144, "{id}");
        let mlp = sum(&|r| r.is_routed_expert() || r == Role::FfnGateInp);
        assert_eq!(mlp, layers * experts * (24_891_840 + 2881), "{id}");
        assert_eq!(sum(&|r| matches!(r, Role::TokenEmbd | Role::Output)), 2 * 201_088 * 2880);
    }
    let rounded = |n: u64| (n as f64 / 1e7).round() / 100.0;
    assert_eq!((rounded(20_914_757_184), rounded(3_608_307_264)), (20.91, 3.61));
    assert_eq!((rounded(116_829_156_672), rounded(5_132_849_472)), (116.83, 5.13));
}

/// The checkpoints ship the experts in MXFP4 (FP4 blocks of 32 with an E8M0 scale: 17 B per 32
/// weights) and everything else in bf16: 12.8 GiB and 60.8 GiB (model card).
#[test]
fn default_format_is_mxfp4_on_the_experts_only() {
    for (id, bytes) in [("gpt-oss-20b", 13_761_264_768u64), ("gpt-oss-120b", 65_248_815_744)] {
        let m = ModelCatalog::builtin().get(id).unwrap();
        assert_eq!(m.parsed.native_format.as_ref().map(|n| n.id.as_str()), Some("mxfp4"));
        let s = m.spec();
        let tensors = inventory(s);
        for t in &tensors {
            let stored = mxfp4().tensor_type(t, s);
            let expected = if t.role.is_routed_expert() && t.part == Part::Weight {
                StoredType::Quantized(QuantScheme::Mxfp4)
            } else {
                StoredType::Float(FloatType::Bf16)
            };
            assert_eq!(stored, expected, "{id} {:?} {:?}", t.role, t.part);
        }
        assert_eq!(mxfp4().weight_bytes(s, &tensors).0, bytes, "{id}");
        assert!((bytes as f64 / (1u64 << 30) as f64 - if id == "gpt-oss-20b" { 12.8 } else { 60.8 }).abs() < 0.05);
    }
}

#[test]
fn layers_alternate_a_128_token_window_with_full_attention() {
    for (id, layers) in [("gpt-oss-20b", 24), ("gpt-oss-120b", 36)] {
        let s = spec(id);
        assert_eq!((s.family, s.num_layers, s.max_context), (Family::GptOss, layers, 131_072));
        for (l, a) in s.layer_attention.iter().enumerate() {
            let expected = if l % 2 == 0 { LayerAttention::Sliding { window: 128 } } else { LayerAttention::Full };
            assert_eq!(*a, expected, "{id} layer {l}");
        }
        assert!(s.attn_sinks && s.fused_gate_up && s.biases.qkv && s.biases.attn_out && !s.tie_word_embeddings);
    }
}

/// llama.cpp's `gpt-oss` GGUF: attention biases and sinks, a biased router, the experts' gate and
/// up split with a bias each, `post_attention_norm`, the window on even layers.
#[test]
fn gguf_gpt_oss_is_counted_exactly() {
    let k = |name: &str| format!("gpt-oss.{name}");
    let mut g = Gguf::default()
        .str("general.architecture", "gpt-oss")
        .u32(&k("block_count"), 2)
        .u32(&k("context_length"), 131_072)
        .u32(&k("embedding_length"), 64)
        .u32(&k("feed_forward_length"), 64)
        .u32(&k("attention.head_count"), 4)
        .u32(&k("attention.head_count_kv"), 2)
        .u32(&k("attention.key_length"), 32)
        .u32(&k("attention.value_length"), 32)
        .u32(&k("attention.sliding_window"), 128)
        .u32(&k("expert_count"), 4)
        .u32(&k("expert_used_count"), 2)
        .u32(&k("expert_feed_forward_length"), 64)
        .tensor("token_embd.weight", &[64, 100], Q8_0)
        .tensor("output.weight", &[64, 100], Q8_0)
        .tensor("output_norm.weight", &[64], F32);
    for l in 0..2 {
        let w = |n: &str| format!("blk.{l}.{n}.weight");
        let b = |n: &str| format!("blk.{l}.{n}.bias");
        g = g
            .tensor(&w("attn_norm"), &[64], F32)
            .tensor(&w("attn_q"), &[64, 128], Q8_0)
            .tensor(&b("attn_q"), &[128], F32)
            .tensor(&w("attn_k"), &[64, 64], Q8_0)
            .tensor(&b("attn_k"), &[64], F32)
            .tensor(&w("attn_v"), &[64, 64], Q8_0)
            .tensor(&b("attn_v"), &[64], F32)
            .tensor(&w("attn_output"), &[128, 64], Q8_0)
            .tensor(&b("attn_output"), &[64], F32)
            .tensor(&w("attn_sinks"), &[4], F32)
            .tensor(&w("post_attention_norm"), &[64], F32)
            .tensor(&w("ffn_gate_inp"), &[64, 4], F32)
            .tensor(&b("ffn_gate_inp"), &[4], F32)
            .tensor(&w("ffn_gate_exps"), &[64, 64, 4], Q8_0)
            .tensor(&b("ffn_gate_exps"), &[64, 4], F32)
            .tensor(&w("ffn_up_exps"), &[64, 64, 4], Q8_0)
            .tensor(&b("ffn_up_exps"), &[64, 4], F32)
            .tensor(&w("ffn_down_exps"), &[64, 64, 4], Q8_0)
            .tensor(&b("ffn_down_exps"), &[64, 4], F32);
    }
    let (_dir, model) = open_gguf(&g, "gpt-oss-tiny-Q8_0.gguf");
    let s = gguf_spec(&model);
    assert_eq!(s.family, Family::GptOss);
    assert!(s.attn_sinks && !s.fused_gate_up && s.moe.unwrap().expert_biases && !s.moe.unwrap().router_bias);
    assert_eq!(s.layer_attention, [LayerAttention::Sliding { window: 128 }, LayerAttention::Full]);
    assert_eq!(model.parameter_count(), param_counts(&s, &inventory(&s)).total);
    assert!(model.tensors.iter().all(|t| t.role.is_some()), "every tensor has a role");
}

/// The Hugging Face checkpoint's names and dtypes (openai/gpt-oss-120b's safetensors index):
/// bf16 attention with biases and sinks, a bf16 router with its bias, and the experts as U8
/// `*_blocks` [experts, rows, cols/32, 16] and `*_scales` [experts, rows, cols/32] beside bf16
/// `*_bias`. Parameters and bytes equal the inventory's in the mxfp4 format exactly.
#[test]
fn mxfp4_safetensors_match_the_inventory_byte_for_byte() {
    let (h, i, e, heads, kv, hd, vocab) = (64u64, 64u64, 4u64, 4u64, 2u64, 32u64, 100u64);
    let mut tensors: Vec<(String, &str, Vec<u64>)> = vec![
        ("model.embed_tokens.weight".into(), "BF16", vec![vocab, h]),
        ("model.norm.weight".into(), "BF16", vec![h]),
        ("lm_head.weight".into(), "BF16", vec![vocab, h]),
    ];
    for l in 0..2 {
        let p = |n: &str| format!("model.layers.{l}.{n}");
        for (name, dtype, shape) in [
            ("input_layernorm.weight", "BF16", vec![h]),
            ("post_attention_layernorm.weight", "BF16", vec![h]),
            ("self_attn.q_proj.weight", "BF16", vec![heads * hd, h]),
            ("self_attn.q_proj.bias", "BF16", vec![heads * hd]),
            ("self_attn.k_proj.weight", "BF16", vec![kv * hd, h]),
            ("self_attn.k_proj.bias", "BF16", vec![kv * hd]),
            ("self_attn.v_proj.weight", "BF16", vec![kv * hd, h]),
            ("self_attn.v_proj.bias", "BF16", vec![kv * hd]),
            ("self_attn.o_proj.weight", "BF16", vec![h, heads * hd]),
            ("self_attn.o_proj.bias", "BF16", vec![h]),
            ("self_attn.sinks", "BF16", vec![heads]),
            ("mlp.router.weight", "BF16", vec![e, h]),
            ("mlp.router.bias", "BF16", vec![e]),
            ("mlp.experts.gate_up_proj_blocks", "U8", vec![e, 2 * i, h / 32, 16]),
            ("mlp.experts.gate_up_proj_scales", "U8", vec![e, 2 * i, h / 32]),
            ("mlp.experts.gate_up_proj_bias", "BF16", vec![e, 2 * i]),
            ("mlp.experts.down_proj_blocks", "U8", vec![e, h, i / 32, 16]),
            ("mlp.experts.down_proj_scales", "U8", vec![e, h, i / 32]),
            ("mlp.experts.down_proj_bias", "BF16", vec![e, h]),
        ] {
            tensors.push((p(name), dtype, shape));
        }
    }
    let config = serde_json::json!({"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss",
        "hidden_size": h, "intermediate_size": i, "num_hidden_layers": 2, "num_attention_heads": heads,
        "num_key_value_heads": kv, "head_dim": hd, "vocab_size": vocab, "num_local_experts": e,
        "num_experts_per_tok": 2, "sliding_window": 128, "tie_word_embeddings": false,
        "layer_types": ["sliding_attention", "full_attention"],
        "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert":
            ["model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]}});
    let dir = TempDir::new().unwrap();
    fs::write(dir.path().join("model.safetensors"), safetensors_owned(&tensors)).unwrap();
    let config_text = config.to_string();
    fs::write(dir.path().join("config.json"), &config_text).unwrap();
    let model = LocalModel::open(dir.path()).unwrap();
    let s = headroom::model::config::parse_config(&config_text, "tiny", "config.json").unwrap().spec;
    let inv = inventory(&s);
    assert_eq!(model.parameter_count(), param_counts(&s, &inv).total);
    assert_eq!(model.total_bytes(), mxfp4().weight_bytes(&s, &inv).0);
    assert!(model.tensors.iter().all(|t| t.role.is_some() && t.layer.is_some() == t.name.contains("layers")));
    // Planned from the files, the weights are the headers' bytes.
    let v = plan_json(&format!("{} --gpu h100-sxm", dir.path().display()));
    assert!(v["request"]["weights"].as_str().unwrap().starts_with("file: "));
    assert_eq!(u(&v, "/memory/weights_bytes"), model.total_bytes());
}

/// OpenAI: "gpt-oss-120b runs on a single 80 GB GPU" with its MXFP4 experts. It does under
/// transformers. vLLM's Triton backend holds 3.53 GiB more once loaded (plan/vllm_moe.rs), so at
/// its default 90% memory utilization the weights and profile-run peak leave no KV pool, as users
/// found (vLLM issues #23278 and #33155: out of memory on one H100); at 95% it starts, as in
/// llm-d's H100 table.
#[test]
fn gpt_oss_120b_on_one_h100_fits_hf_and_needs_95_percent_under_vllm() {
    let v = plan_json("gpt-oss-120b --gpu h100-sxm --engine hf");
    assert_eq!(v["request"]["weights"], "mxfp4");
    assert_eq!(u(&v, "/memory/weights_bytes"), 65_248_815_744);
    assert_eq!(u(&v, "/model/parameters"), 116_829_156_672);
    assert!(fits(&v));
    let vllm = |extra: &str| plan_json(&format!("gpt-oss-120b --gpu h100-sxm --engine vllm {extra}"));
    let default = vllm("");
    assert_eq!(u(&default, "/memory/weights_bytes"), 69_044_333_184);
    assert!(!fits(&default));
    assert!(fits(&vllm("--gpu-memory-utilization 0.95")));
}
