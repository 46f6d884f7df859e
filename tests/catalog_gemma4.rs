//! Gemma 4: counts rebuilt from the configs (full layers with their own head size and KV heads,
//! no `v_proj` under `attention_k_eq_v`, 26B-A4B's experts beside a dense MLP, the vision tower),
//! and the KV cache each engine keeps for two widths of layer.

mod support;

use headroom::model::config::parse_config;
use headroom::model::spec::{Family, GlobalAttention, LayerAttention};
use headroom::model::tensors::{inventory, param_counts, Role};
use support::catalog::spec;
use support::cli::plan_json;

/// 31B (hidden 5376; 32 heads; sliding layers 16 KV heads of 256, full ones 4 of 512 without
/// v_proj; MLP 21,504): a sliding layer 2·5376·8192 + 2·5376·4096 + 2·256 + 3·5376·21,504 +
/// 4·5376 + 1 = 478,959,105; a full one 2·5376·16,384 + 5376·2048 + 2·512 + the same MLP, norms
/// and scalar = 534,009,857; with the tied embedding and the final norm 30,697,345,340, and the
/// vision tower 575,743,536: the 31,273,088,876 the checkpoint holds.
#[test]
fn gemma4_31b_counts_from_its_config() {
    let s = spec("gemma-4-31b");
    assert_eq!(s.family, Family::Gemma4);
    assert_eq!(s.global_attention, Some(GlobalAttention { head_dim: 512, num_kv_heads: 4, k_eq_v: true }));
    let text = 50 * 478_959_105u64 + 10 * 534_009_857 + 262_144 * 5376 + 5376;
    assert_eq!(text, 30_697_345_340);
    let counts = param_counts(&s, &inventory(&s));
    assert_eq!((counts.total, counts.active), (31_273_088_876, text));
    // Layer 5 (full): q 16,384 rows, k 2,048, no v; layer 0 (sliding): v 4,096.
    let tensors = inventory(&s);
    let rows = |layer: u32, role: Role| {
        tensors.iter().filter(|t| t.layer == Some(layer) && t.role == role).map(|t| t.rows).collect::<Vec<_>>()
    };
    assert_eq!((rows(5, Role::AttnQ), rows(5, Role::AttnK), rows(5, Role::AttnV)), (vec![16_384], vec![2048], vec![]));
    assert_eq!(rows(0, Role::AttnV), vec![4096]);
    assert_eq!(s.layer_attention[5], LayerAttention::Full);
    assert_eq!(s.layer_attention[0], LayerAttention::Sliding { window: 1024 });
}

/// 26B-A4B (hidden 2816): per layer 128 experts of 3·2816·704, a dense MLP of 3·2816·2112 that
/// every token runs, the router (128·2816 + 2816 + 128) and seven norms; 8 experts a token.
#[test]
fn gemma4_26b_a4b_runs_experts_beside_a_dense_mlp() {
    let s = spec("gemma-4-26b-a4b");
    let moe = s.moe.unwrap();
    assert_eq!((moe.num_experts, moe.experts_per_token, moe.expert_intermediate_size), (128, 8, 704));
    assert_eq!(moe.shared_intermediate_size, 2112);
    assert_eq!(s.norms_per_layer, 7);
    let h = 2816u64;
    let attention_sliding = 2 * h * 16 * 256 + 2 * h * 8 * 256 + 2 * 256;
    let attention_full = 2 * h * 16 * 512 + h * 2 * 512 + 2 * 512;
    let ffn = 128 * 3 * h * 704 + 3 * h * 2112 + (128 * h + h + 128) + 7 * h + 1;
    let text = 25 * attention_sliding + 5 * attention_full + 30 * ffn + 262_144 * h + h;
    let tower = 575_743_536 - 5376 * 1152 + 2816 * 1152;
    let counts = param_counts(&s, &inventory(&s));
    assert_eq!(counts.total, text + tower);
    assert_eq!(counts.total, 25_805_936_206);
    assert_eq!(counts.active, text - 30 * 120 * 3 * h * 704);
    assert_eq!(counts.active, 3_822_530_590);
}

/// transformers 5.15 writes the full layers' shape into `per_layer_config`; it reads the same as
/// the top-level fields. A global KV-head count that cannot share the heads is refused.
#[test]
fn gemma4_reads_both_config_layouts() {
    let base = r#"{"model_type": "gemma4_text", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 2,
        "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100,
        "layer_types": ["sliding_attention", "full_attention"], "attention_k_eq_v": true EXTRA}"#;
    let parse = |extra: &str| parse_config(&base.replace("EXTRA", extra), "g", "cfg.json");
    let top = parse(r#", "global_head_dim": 32, "num_global_key_value_heads": 1"#).unwrap().spec;
    let nested = parse(r#", "per_layer_config": {"1": {"head_dim": 32, "num_key_value_heads": 1}}"#).unwrap().spec;
    assert_eq!(top.global_attention, Some(GlobalAttention { head_dim: 32, num_kv_heads: 1, k_eq_v: true }));
    assert_eq!(top.global_attention, nested.global_attention);
    assert_eq!(top.layer_attention, [LayerAttention::Sliding { window: 512 }, LayerAttention::Full]);
    // Without attention_k_eq_v the full layers keep the sliding layers' KV heads (E2B, E4B).
    let plain =
        parse_config(&base.replace("\"attention_k_eq_v\": true EXTRA", r#""num_global_key_value_heads": 1"#), "g", "c")
            .unwrap()
            .spec;
    assert_eq!(plain.global_attention, Some(GlobalAttention { head_dim: 512, num_kv_heads: 2, k_eq_v: false }));
    let err = parse(r#", "num_global_key_value_heads": 3"#).unwrap_err().to_string();
    assert!(err.contains("num_global_key_value_heads") && err.contains("must divide"), "{err}");
    // transformers 5.15's save of E2B: no layer_types, the full layers keyed in per_layer_config.
    let saved = r#"{"model_type": "gemma4_text", "hidden_size": 64, "intermediate_size": 96, "num_hidden_layers": 6,
        "num_attention_heads": 4, "num_key_value_heads": 1, "head_dim": 16, "vocab_size": 100,
        "per_layer_config": {"02": {"head_dim": 32}, "05": {"head_dim": 32}}}"#;
    let s = parse_config(saved, "g", "cfg.json").unwrap().spec;
    let full: Vec<usize> = (0..6).filter(|&l| s.layer_attention[l] == LayerAttention::Full).collect();
    assert_eq!(full, [2, 5]);
    assert_eq!(s.global_attention, Some(GlobalAttention { head_dim: 32, num_kv_heads: 1, k_eq_v: false }));
    for (bad, says) in [
        (r#", "per_layer_config": {"1": "x"}"#, "per_layer_config"),
        (r#", "per_layer_config": {"1": {"head_dim": 32}, "3": {"head_dim": 64}}"#, "two different shapes"),
        (r#", "num_kv_shared_layers": 2"#, "num_kv_shared_layers"),
    ] {
        let err = parse(bad).unwrap_err().to_string();
        assert!(err.contains(says), "{bad}: {err}");
    }
}

/// KV per token: 50 sliding layers × 2·16·256 and 10 full × 2·4·512, in bf16 901,120 B:
/// 880 KiB. transformers holds every prompt token in every layer at the peak; llama.cpp's SWA
/// layers keep pad(1024 + 512, 256) = 1,536 cells; vLLM unifies the pages (sliding 16 KiB a token
/// in 16-token blocks, full 8 KiB in 32-token ones), 6 groups of 10 layers: at 32,768 tokens and
/// 8,192 batched tokens ⌈32,768/32⌉ + 5·(⌈(1023 + 8192)/16⌉ + 1) = 3,909 blocks of 10 · 256 KiB.
#[test]
fn gemma4_kv_cache_per_engine() {
    let per_token = 50 * 2 * 16 * 256 * 2 + 10 * 2 * 4 * 512 * 2;
    assert_eq!(per_token, 901_120);
    let kv = |engine: &str| {
        let plan = plan_json(&format!("gemma-4-31b --engine {engine} --context 32768 --gpu h100-sxm"));
        plan["memory"]["kv_cache_bytes"].as_u64().unwrap()
    };
    assert_eq!(kv("hf"), per_token * 32_768);
    assert_eq!(kv("llama.cpp"), 10 * 8192 * 32_768 + 50 * 16_384 * 1536);
    assert_eq!(kv("vllm"), 3909 * 10 * 256 * 1024);
    // mlx-lm's gemma4_text: a RotatingKVCache of the window on sliding layers, which hold the
    // window and a 2,048-token prompt chunk but one while a prompt goes in.
    let mlx = plan_json("gemma-4-31b --engine mlx --weights mlx-4bit --context 32768 --gpu m3-ultra");
    assert_eq!(mlx["memory"]["kv_cache_bytes"].as_u64().unwrap(), 10 * 8192 * 32_768 + 50 * 16_384 * (1024 + 2047));
    // Tensor parallel 2: each rank half the KV heads, so both kinds halve and the pages keep
    // their 2:1 ratio (full layers in 32-token blocks).
    let tp2 = plan_json("gemma-4-31b --engine vllm --context 32768 --gpu h100-sxm:2");
    assert_eq!(tp2["per_gpu"][0]["memory"]["kv_cache_bytes"].as_u64().unwrap(), 3909 * 10 * 128 * 1024);
}

/// llama.cpp's CUDA flash attention converts one layer's q8_0 cache to f16 for the prompt: the
/// largest layer's, a full one (262,144 cells · 2·4·512 · 2 B = 2 GiB), not the sliding layers'
/// width over every cell (4 GiB).
#[test]
fn gemma4_llama_cpp_converts_its_largest_layer() {
    let activations = |kv: &str| {
        let plan = plan_json(&format!(
            "gemma-4-31b --weights q4_k_m --engine llama.cpp --gpu h200 --context 262144 --kv-cache {kv}"
        ));
        plan["memory"]["activations_bytes"].as_u64().unwrap()
    };
    let copy = activations("q8_0") - activations("fp16");
    assert!((1_u64 << 31) - (64 << 20) < copy && copy <= 1 << 31, "{copy}");
}

/// A `gemma4` GGUF (llama.cpp's keys): head sizes from `key_length_swa` and `key_length`, KV
/// heads and MLP widths per layer, layer types as flags, the shared-KV count and the per-layer
/// input table; the full layer without `attn_v` takes its values from its keys.
#[test]
fn gemma4_gguf_layers() {
    use headroom::quant::ggml::GgmlType::{F32, Q8_0};
    use support::gguf::{gguf_spec, open_gguf};
    let h = 64u64;
    let mut g = support::Gguf::default()
        .str("general.architecture", "gemma4")
        .u32("gemma4.block_count", 3)
        .u32("gemma4.context_length", 8192)
        .u32("gemma4.embedding_length", h as u32)
        .i32s("gemma4.feed_forward_length", &[96, 96, 192])
        .u32("gemma4.attention.head_count", 4)
        .i32s("gemma4.attention.head_count_kv", &[2, 2, 1])
        .u32("gemma4.attention.key_length", 32)
        .u32("gemma4.attention.key_length_swa", 16)
        .u32("gemma4.attention.sliding_window", 512)
        .i32s("gemma4.attention.sliding_window_pattern", &[1, 1, 0])
        .u32("gemma4.attention.shared_kv_layers", 1)
        .u32("gemma4.embedding_length_per_layer_input", 8)
        .f32("gemma4.final_logit_softcapping", 30.0)
        .tensor("token_embd.weight", &[h, 100], Q8_0)
        .tensor("per_layer_token_embd.weight", &[3 * 8, 100], F32)
        .tensor("per_layer_model_proj.weight", &[h, 3 * 8], F32)
        .tensor("per_layer_proj_norm.weight", &[8], F32)
        .tensor("output_norm.weight", &[h], F32);
    for l in 0..3u32 {
        let (q, kv, ffn) = if l == 2 { (4 * 32, 32, 192) } else { (4 * 16, 2 * 16, 96) };
        let w = |name: &str| format!("blk.{l}.{name}.weight");
        g = g.tensor(&w("attn_norm"), &[h], F32).tensor(&w("attn_q"), &[h, q], Q8_0).tensor(
            &w("attn_k"),
            &[h, kv],
            Q8_0,
        );
        if l < 2 {
            g = g.tensor(&w("attn_v"), &[h, kv], Q8_0);
        }
        g = g
            .tensor(&w("attn_output"), &[q, h], Q8_0)
            .tensor(&w("attn_q_norm"), &[q / 4], F32)
            .tensor(&w("attn_k_norm"), &[q / 4], F32)
            .tensor(&w("post_attention_norm"), &[h], F32)
            .tensor(&w("ffn_norm"), &[h], F32)
            .tensor(&w("ffn_gate"), &[h, ffn], Q8_0)
            .tensor(&w("ffn_up"), &[h, ffn], Q8_0)
            .tensor(&w("ffn_down"), &[ffn, h], Q8_0)
            .tensor(&w("post_ffw_norm"), &[h], F32)
            .tensor(&w("inp_gate"), &[h, 8], F32)
            .tensor(&w("proj"), &[8, h], F32)
            .tensor(&w("post_norm"), &[h], F32)
            .tensor(&w("layer_output_scale"), &[1], F32);
    }
    let (_dir, model) = open_gguf(&g, "gemma4.gguf");
    let s = gguf_spec(&model);
    assert_eq!(s.family, Family::Gemma4);
    assert_eq!((s.head_dim, s.num_kv_heads, s.intermediate_size), (16, 2, 96));
    assert_eq!(s.global_attention, Some(GlobalAttention { head_dim: 32, num_kv_heads: 1, k_eq_v: true }));
    assert_eq!(s.layer_attention[1], LayerAttention::Sliding { window: 512 });
    assert_eq!(s.layer_attention[2], LayerAttention::Full);
    assert_eq!((s.kv_shared_layers, s.double_wide_mlp, s.layer_intermediate(2)), (1, true, 192));
    assert_eq!(s.per_layer_input.map(|p| (p.width, p.vocab)), Some((8, 100)));
    assert!(s.logit_softcap);
    // The architecture's inventory holds the file's tensors.
    let counts = param_counts(&s, &inventory(&s));
    let stored: u64 = model.tensors.iter().map(|t| t.shape.iter().product::<u64>()).sum();
    assert_eq!(counts.total, stored);
}

/// E2B and E4B: per-layer inputs, KV-shared layers (E2B's twice as wide), and the audio tower
/// beside the vision tower, to the checkpoints' exact totals. Their shared layers cache nothing:
/// E2B keeps 12 sliding layers of 1 KV head of 256 and 3 full layers of 1 of 512, 18 KiB a token.
#[test]
fn gemma4_e2b_and_e4b_counts_and_shared_caches() {
    for (id, total) in [("gemma-4-e2b", 5_123_178_979u64), ("gemma-4-e4b", 7_996_157_418)] {
        let s = spec(id);
        assert_eq!(param_counts(&s, &inventory(&s)).total, total, "{id}");
        assert_eq!(s.per_layer_input.map(|p| p.width), Some(256), "{id}");
        assert!(s.audio.is_some(), "{id}");
    }
    let e2b = spec("gemma-4-e2b");
    assert_eq!((e2b.kv_shared_layers, e2b.layer_intermediate(14), e2b.layer_intermediate(15)), (20, 6144, 12_288));
    assert!(e2b.caches_kv(14) && !e2b.caches_kv(15));
    let per_token = 12 * 2 * 256 * 2 + 3 * 2 * 512 * 2;
    assert_eq!(per_token, 18_432);
    let plan = plan_json("gemma-4-e2b --engine hf --context 8192");
    assert_eq!(plan["memory"]["kv_cache_bytes"].as_u64().unwrap(), per_token * 8192);
    // vLLM: here the sliding kind is the narrower (1 KiB a token against 2), so its blocks grow
    // to 32 tokens; 15 caching layers make groups of 3 (4 sliding, 1 full): at 32,768 tokens and
    // 2,048 batched tokens ⌈32,768/16⌉ + 4·(⌈(511 + 2048)/32⌉ + 1) = 2,372 blocks of 3 · 32 KiB.
    let vllm = plan_json("gemma-4-e2b --engine vllm --context 32768 --gpu l4 --max-num-batched-tokens 2048");
    assert_eq!(vllm["memory"]["kv_cache_bytes"].as_u64().unwrap(), 2372 * 3 * 32 * 1024);
    // --text-only leaves both encoders out.
    let text = plan_json("gemma-4-e2b --engine hf --context 8192 --text-only");
    let towers = 167_365_056 + 1536 * 768 + 304_825_088 + 1536 * 1536;
    let bf16 = |p: &serde_json::Value| p["memory"]["weights_bytes"].as_u64().unwrap();
    assert_eq!(bf16(&plan) - bf16(&text), 2 * towers);
}

/// mlx-community/gemma-4-26b-a4b-it-4bit holds 15,340,981,404 tensor bytes (its source contract,
/// a public validator pinning the repo's shard headers). mlx-lm loads the language model: 4-bit
/// affine groups of 64 everywhere but the routers, which its Gemma 4 module keeps in 8 bits. The
/// rest of the file is mlx-vlm's: the vision tower in bf16 and its projector in 4 bits
/// (2816 × 1152 at 4.5 bits).
#[test]
fn gemma4_26b_mlx_4bit_is_the_published_file() {
    let plan = plan_json("gemma-4-26b-a4b --weights mlx-4bit --engine mlx");
    let language_model = plan["memory"]["weights_bytes"].as_u64().unwrap();
    let projector = 2816 * 1152;
    let tower = 2 * (572_794_416 - projector) + projector * 9 / 16;
    assert_eq!(language_model + tower, 15_340_981_404);
}

/// Tensor parallel over more GPUs than a layer has KV heads copies its key (and value)
/// projections: at TP 4 a 26B-A4B sliding layer (8 KV heads) splits them four ways, a full
/// layer (2 KV heads) two ways, as vLLM's `QKVParallelLinear` replicates heads.
#[test]
fn tensor_parallel_copies_kv_projections_per_layer_kind() {
    use headroom::plan::inference::WeightLayout;
    use headroom::quant::weights::WeightFormat;
    use headroom::units::Bytes;
    let s = spec("gemma-4-26b-a4b");
    let bf16 = WeightFormat::parse("bf16").unwrap();
    let w = WeightLayout::from_inventory(s.num_layers, &inventory(&s), |t| bf16.tensor_bytes(t, &s));
    let share = |l: usize, kv_ways: u64| {
        let (all, whole, kv) = (w.layers[l].total, w.layers[l].replicated, w.layers[l].kv_projections);
        Bytes((all - whole - kv).0 / 4) + whole + Bytes(kv.0 / kv_ways)
    };
    let full = s.layer_attention.iter().position(|a| *a == LayerAttention::Full).unwrap();
    let sliding = s.layer_attention.iter().position(|a| *a != LayerAttention::Full).unwrap();
    assert!(w.layers[full].kv_projections > Bytes::ZERO && w.layers[sliding].kv_projections > Bytes::ZERO);
    let range = |l: usize| l as u64..l as u64 + 1;
    assert_eq!(w.tensor_parallel_share(&s, range(full), 4), share(full, 2));
    assert_eq!(w.tensor_parallel_share(&s, range(sliding), 4), share(sliding, 4));
}
