//! Kimi K2 (DeepSeek-V3's architecture under `model_type: kimi_k2`), DeepSeek-V3.2's indexer, MiniMax M2, Qwen2-MoE,
//! Phi-3.5-MoE, OLMoE and ERNIE 4.5: counts rebuilt by hand from their configs (Kimi's and MiniMax's equal
//! the element totals of listings of the real checkpoints, less the fp8 block scales stored
//! beside the weights).

mod support;

use headroom::model::config::parse_config;
use headroom::model::spec::{Family, LayerMlp, NormKind, QkNorm};
use headroom::model::tensors::Role;
use headroom::model::tensors::{inventory, mtp_inventory, param_counts};
use support::catalog::{elements, spec};

/// Kimi K2 (hidden 7168, 64 MLA heads): attention 7168·1536 + 1536 + 1536·64·192 + 7168·576 +
/// 512 + 512·64·256 + 64·128·7168 = 101,124,096; a MoE layer 384·3·7168·2048 + 3·7168·2048 +
/// 384·7168 + 384 beside it; layer 0 dense 3·7168·18,432. The checkpoint listing's
/// 1,026,470,731,056 adds 62,495,192 fp32 block scales and 61 rotary buffers of 56.
#[test]
fn kimi_k2_is_deepseek_v3_shaped() {
    let s = spec("kimi-k2");
    assert_eq!((s.family, s.mtp_layers, s.num_heads), (Family::DeepseekV3, 0, 64));
    let h = 7168u64;
    let attention = 101_124_096u64;
    let moe = 384 * 3 * h * 2048 + 3 * h * 2048 + 384 * h + 384;
    let model = 61 * (attention + 2 * h) + 3 * h * 18_432 + 60 * moe + h + 2 * 163_840 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, model);
    assert_eq!(model + 62_495_192 + 61 * 56, 1_026_470_731_056);
}

/// Kimi K2 Thinking: Kimi K2's shapes with its routed experts in compressed-tensors INT4 (group
/// 32, bf16 scales, an int32 [2] shape each) and everything else bf16. One expert matrix of
/// 2048 × 7168 (either way round) is 7,340,032 B of codes, 917,504 B of scales and 8 B of shape;
/// 60 × 384 × 3 of them, and 11,722,208,768 other parameters of 2 B: 594,205,858,816 B, the
/// "~594 GB" of the download. At tensor parallel 8 each GPU holds an eighth of the sharded
/// tensors and the replicated ones whole: per layer MLA's q_a (7168 × 1536) and kv_a
/// (7168 × 576) projections, their two norms and the layer's two, plus each MoE layer's router
/// and score-correction bias.
#[test]
fn kimi_k2_thinking_int4_experts() {
    use headroom::plan::inference::WeightLayout;
    use headroom::quant::weights::WeightFormat;
    use headroom::units::Bytes;
    let s = spec("kimi-k2-thinking");
    let format = headroom::catalog::models::ModelCatalog::builtin()
        .get("kimi-k2-thinking")
        .unwrap()
        .parsed
        .native_format
        .clone();
    assert_eq!(format.map(|f| (f.id, f.approximates)), Some(("w4a16-g32".to_string(), None)));
    assert_eq!(s.max_context, 262_144);
    let w4 = WeightFormat::parse("w4a16-g32").unwrap();
    let tensors = inventory(&s);
    let expert_matrix = 2048 * 7168 / 2 + 2048 * 7168 / 32 * 2 + 8;
    assert_eq!(expert_matrix, 8_257_544);
    let experts = 60 * 384 * 3 * expert_matrix;
    let others = 1_026_408_232_448 - 60 * 384 * 3 * 2048 * 7168;
    assert_eq!(others, 11_722_208_768);
    assert_eq!(w4.weight_bytes(&s, &tensors), Bytes(experts + 2 * others));
    assert_eq!(experts + 2 * others, 594_205_858_816);

    let w = WeightLayout::from_inventory(s.num_layers, &tensors, |t| w4.tensor_bytes(t, &s));
    let h = 7168;
    let replicated = 61 * (h * 1536 + h * 576 + 1536 + 512 + 2 * h) + 60 * (384 * h + 384);
    assert_eq!(w.layers.iter().map(|l| l.replicated).sum::<Bytes>(), Bytes(2 * replicated));
    let layers = w.layers_in(0..61);
    let share = w.tensor_parallel_share(&s, 0..61, 8);
    assert_eq!(share, Bytes((layers.0 - 2 * replicated) / 8 + 2 * replicated));
    let per_gpu = (w.total().0 - layers.0) / 8 + share.0;
    assert_eq!(per_gpu, 76_182_604_032);
}

/// MiniMax M2.7 (hidden 3072; 48 heads and 8 KV heads of 128): attention 2·3072·6144 +
/// 2·3072·1024 and q/k norms of 6144 and 1024; 256 experts of 1536 and the router with its
/// bias; two norms. The listing's 228,703,644,928 adds 13,880,064 block scales.
#[test]
fn minimax_m2_counts_and_norms() {
    let s = spec("minimax-m2.7");
    assert_eq!(s.qk_norm, QkNorm::Full);
    let h = 3072u64;
    let layer = 2 * h * 6144 + 2 * h * 1024 + 6144 + 1024 + 256 * 3 * 1536 * h + 256 * h + 256 + 2 * h;
    let model = 62 * layer + h + 2 * 200_064 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, model);
    assert_eq!(model + 13_880_064, 228_703_644_928);
    assert!(s.moe.unwrap().router_bias && s.moe.unwrap().shared_intermediate_size == 0);
}

/// Qwen1.5-MoE-A2.7B (hidden 2048, 16 heads, vocab 151,936): attention with q/k/v biases
/// 3·(2048² + 2048) + 2048², the router 60·2048, experts 60·3·2048·1408, the shared expert
/// 3·2048·5632 and its 1 × 2048 gate, two norms; 24 layers, untied.
#[test]
fn qwen2_moe_shared_expert_and_gate() {
    let s = spec("qwen1.5-moe-a2.7b");
    let h = 2048u64;
    let layer = 3 * (h * h + h) + h * h + 60 * h + 60 * 3 * h * 1408 + 3 * h * 5632 + h + 2 * h;
    assert_eq!(layer, 570_560_512);
    assert_eq!(param_counts(&s, &inventory(&s)).total, 24 * layer + h + 2 * 151_936 * h);
    assert!(s.moe.unwrap().shared_expert_gate && s.layer_mlp.iter().all(|m| *m == LayerMlp::Moe));
}

/// Phi-3.5-MoE: LayerNorms with biases, q/k/v/o biases, 16 experts of 6400, and the lm_head's
/// 32,064-long bias: 41,873,153,344 (a bias-free count would be 41,872,527,360).
#[test]
fn phimoe_biases_everywhere() {
    let s = spec("phi-3.5-moe");
    assert_eq!(s.norm, NormKind::LayerNorm);
    assert!(s.biases.qkv && s.biases.attn_out && s.biases.lm_head && !s.biases.mlp);
    let biases: u64 =
        inventory(&s).iter().filter(|t| t.part == headroom::model::tensors::Part::Bias).map(|t| t.elements()).sum();
    assert_eq!(biases, 625_984);
    assert_eq!(param_counts(&s, &inventory(&s)).total, 41_873_153_344);
}

/// OLMoE: q_norm over 2048 and k_norm over 2048 (16 KV heads of 128) in each of 16 layers.
#[test]
fn olmoe_norms_span_the_projection() {
    let s = spec("olmoe-1b-7b");
    let widths: Vec<u64> =
        inventory(&s).iter().filter(|t| t.role == Role::AttnQNorm && t.layer == Some(0)).map(|t| t.cols).collect();
    assert_eq!(widths, [2048]);
    assert_eq!((s.moe.unwrap().expert_intermediate_size, s.moe.unwrap().experts_per_token), (1024, 8));
}

/// DeepSeek-V3.2: DeepSeek-V3's 671,026,419,200 and 61 indexers of 13,959,424 (1536·8192 +
/// 7168·128 + 2·128 + 7168·64); its MTP drafter one more. With the drafter's own embedding and
/// head copies (2·129,280·7168) and 41,591,584 fp8 block scales that is the checkpoint listing's
/// 685,396,921,376. vLLM caches 1,152 B of bf16 latent (or 656 B of fp8_ds_mla) and 132 B of
/// indexer keys per token and layer, in 64-token blocks.
#[test]
fn deepseek_v32_indexer_weights_and_cache() {
    let s = spec("deepseek-v3.2");
    let indexer = 1536 * 8192 + 7168 * 128 + 2 * 128 + 7168 * 64;
    assert_eq!(indexer, 13_959_424u64);
    let model = param_counts(&s, &inventory(&s)).total;
    assert_eq!(model, param_counts(&spec("deepseek-v3"), &inventory(&spec("deepseek-v3"))).total + 61 * indexer);
    let drafter = elements(&mtp_inventory(&s));
    assert_eq!(drafter, 11_624_027_648);
    assert_eq!(model + drafter + 2 * 129_280 * 7168 + 41_591_584, 685_396_921_376);
    for (kv, per_token) in [("bf16", 78_324u64), ("fp8", 48_068)] {
        let out = assert_cmd::Command::cargo_bin("headroom")
            .unwrap()
            .args([
                "plan",
                "deepseek-v3.2",
                "--engine",
                "vllm",
                "--gpu",
                "h200:8",
                "--context",
                "8192",
                "--kv-cache",
                kv,
            ])
            .args(["--format", "json"])
            .output()
            .unwrap();
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // One sequence of 8,192 tokens: 128 blocks of 64 in each layer (MLA is not divided among ranks).
        assert_eq!(json["per_gpu"][0]["memory"]["kv_cache_bytes"].as_u64(), Some(8192 * per_token), "{kv}");
    }
}

/// ERNIE-4.5-21B-A3B (hidden 2560, GQA 20/4 of 128): attention 2·2560·2560 + 2·2560·512 =
/// 15,728,640 a layer; layer 0's dense SwiGLU 3·2560·12,288; layers 1-27 each 64 experts of
/// 1536, one shared MLP of 2·1536, the router 64·2560 and its correction bias 64; tied
/// embeddings of 103,424 tokens: 21,825,437,888. ERNIE-4.5-0.3B: 18 layers whose 16 heads of
/// 128 are twice its 1024 hidden.
#[test]
fn ernie_4_5_experts_follow_the_layer_range() {
    let s = spec("ernie-4.5-21b-a3b");
    let h = 2560u64;
    let attention = 2 * h * 2560 + 2 * h * 512;
    let moe = 64 * 3 * h * 1536 + 3 * h * 3072 + 64 * h + 64;
    let total = 28 * attention + 3 * h * 12_288 + 27 * moe + 28 * 2 * h + h + 103_424 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, total);
    assert_eq!(total, 21_825_437_888);
    assert_eq!(s.layer_mlp.iter().filter(|m| **m == LayerMlp::Moe).count(), 27);
    assert!(s.tie_word_embeddings);
    let small = spec("ernie-4.5-0.3b");
    let layer = 2 * 1024 * 2048 + 2 * 1024 * 256 + 3 * 1024 * 3072 + 2 * 1024;
    assert_eq!(param_counts(&small, &inventory(&small)).total, 18 * layer + 1024 + 103_424 * 1024);
    // The 300B's layout: experts from layer 3 to `moe_layer_end_index`, here every second one.
    let cfg = r#"{"model_type": "ernie4_5_moe", "hidden_size": 256, "intermediate_size": 512,
        "num_hidden_layers": 8, "num_attention_heads": 4, "moe_layer_start_index": 2, "moe_layer_end_index": 6,
        "moe_layer_interval": 2, "moe_num_shared_experts": 0, "moe_use_aux_free": false}"#;
    let s = parse_config(cfg, "t", "t").unwrap().spec;
    let moe: Vec<usize> = (0..8).filter(|&l| s.layer_mlp[l] == LayerMlp::Moe).collect();
    assert_eq!(moe, [3, 5]);
    let m = s.moe.unwrap();
    assert_eq!((m.shared_intermediate_size, m.router_bias, m.num_experts, m.experts_per_token), (0, false, 64, 6));
    let zero = cfg.replace(r#""moe_layer_interval": 2"#, r#""moe_layer_interval": 0"#);
    let err = parse_config(&zero, "t", "config.json").unwrap_err().to_string();
    assert!(err.contains("moe_layer_interval"), "{err}");
    // -1 is the last layer; ERNIE-VL's per-modality list and other values are refused by name.
    let last = cfg.replace(r#""moe_layer_end_index": 6"#, r#""moe_layer_end_index": -1"#);
    assert_eq!(parse_config(&last, "t", "t").unwrap().spec.layer_mlp[7], LayerMlp::Moe);
    for bad in ["[27, 27]", "-2"] {
        let list = cfg.replace(r#""moe_layer_end_index": 6"#, &format!(r#""moe_layer_end_index": {bad}"#));
        let err = parse_config(&list, "t", "config.json").unwrap_err().to_string();
        assert!(err.contains("moe_layer_end_index"), "{err}");
    }
}
