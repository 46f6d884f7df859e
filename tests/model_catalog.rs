//! The built-in model catalog: every entry parses, ids are unique, and parameter counts come out
//! exactly where a source states them.

mod support;

use headroom::catalog::models::ModelCatalog;
use headroom::model::spec::LayerAttention;
use headroom::model::tensors::{inventory, mtp_inventory};
use std::collections::HashSet;
use support::catalog::{counts, elements, spec};

#[test]
fn every_entry_parses_with_unique_ids() {
    let catalog = ModelCatalog::builtin();
    let mut seen = HashSet::new();
    for m in catalog.iter() {
        assert!(seen.insert(m.entry.id.clone()), "duplicate id {}", m.entry.id);
        assert!(!m.entry.config_source.is_empty(), "{} has no source", m.entry.id);
        assert_eq!(m.entry.id, m.entry.id.to_ascii_lowercase());
    }
    assert!(seen.len() >= 15);
}

#[test]
fn required_ids_exist() {
    for id in [
        "llama-2-7b",
        "llama-2-13b",
        "llama-2-70b",
        "llama-3.1-8b",
        "llama-3.1-70b",
        "llama-3.1-405b",
        "mistral-7b",
        "mixtral-8x7b",
        "qwen2.5-7b",
        "qwen2.5-72b",
        "gemma-2-9b",
        "gemma-2-27b",
        "phi-3-mini",
        "deepseek-v3",
        "falcon-40b",
        "phi-1.5",
        "phi-2",
        "stablelm-base-alpha-3b",
        "stablelm-base-alpha-7b",
        "qwen3-0.6b",
        "qwen3-8b",
        "qwen3-32b",
        "qwen3-30b-a3b",
        "gemma-3-1b",
        "gemma-3-27b",
        "gpt-oss-20b",
        "gpt-oss-120b",
        "qwen3-next-80b-a3b",
        "qwen3.5-9b",
        "qwen3.5-35b-a3b",
        "qwen3.6-27b",
        "nemotron-h-8b",
        "nemotron-nano-9b-v2",
        "nemotron-3-nano-30b-a3b",
        "granite-4.0-h-micro",
        "granite-4.0-h-tiny",
        "granite-4.0-h-small",
    ] {
        assert!(ModelCatalog::builtin().get(id).is_ok(), "{id} missing");
    }
}

#[test]
fn published_exact_counts_come_out_exactly() {
    for m in ModelCatalog::builtin().iter() {
        if let Some(published) = m.entry.published_parameters {
            assert_eq!(counts(&m.entry.id).0, published, "{}", m.entry.id);
        }
    }
    assert_eq!(counts("llama-2-7b").0, 6_738_415_616);
    assert_eq!(counts("llama-2-13b").0, 13_015_864_320);
    assert_eq!(counts("llama-2-70b").0, 68_976_648_192);
    assert_eq!(counts("phi-1.5").0, 1_418_270_720);
    assert_eq!(counts("phi-2").0, 2_779_683_840);
    // keras-hub's presets (qwen3_presets.py, qwen3_moe_presets.py, gemma3_presets.py).
    assert_eq!(counts("qwen3-0.6b").0, 596_049_920);
    assert_eq!(counts("qwen3-8b").0, 8_190_735_360);
    assert_eq!(counts("qwen3-32b").0, 32_762_123_264);
    assert_eq!(counts("qwen3-30b-a3b").0, 30_532_122_624);
    assert_eq!(counts("gemma-3-1b").0, 999_885_952);
}

/// Qwen3-30B-A3B: "30.5B total, 3.3B activated" (model card). Per layer, attention 18,874,368,
/// router 128·2048, norms 2·2048 + 2·128, and 8 of the 128 experts of 3·2048·768 = 4,718,592;
/// embeddings and lm_head 2·151,936·2048: 3,353,032,704 active.
#[test]
fn qwen3_moe_active_parameters() {
    assert_eq!(counts("qwen3-30b-a3b").1, 3_353_032_704);
    assert_eq!(counts("qwen3-8b").1, counts("qwen3-8b").0);
}

/// Gemma 3 27B: the language model at the vocabulary its embedding really has (262,208 rows:
/// `text_config` leaves vocab_size to the class default) is the active count; keras-hub
/// publishes 27,009,002,240 for the text-only model with 262,144 rows, exactly 64·5376 fewer.
/// The total adds the SigLIP tower (416,866,032) and the projector (1152·5376 + 1152): keras-hub's
/// 27,432,406,640 for MedGemma 27B.
#[test]
fn gemma3_27b_counts_and_window_pattern() {
    let (total, language) = counts("gemma-3-27b");
    assert_eq!(language, 27_009_346_304);
    assert_eq!(language - 64 * 5376, 27_009_002_240);
    assert_eq!(total, language + 416_866_032 + 1152 * 5376 + 1152);
    assert_eq!(total, 27_432_406_640);
    let spec = spec("gemma-3-27b");
    assert_eq!((spec.vocab_size, spec.max_context, spec.head_dim), (262_208, 131_072, 128));
    let global: Vec<usize> = (0..62).filter(|&l| spec.layer_attention[l] == LayerAttention::Full).collect();
    assert_eq!(global, (0..10).map(|k| 6 * k + 5).collect::<Vec<_>>());
    assert!(spec
        .layer_attention
        .iter()
        .all(|a| matches!(a, LayerAttention::Full | LayerAttention::Sliding { window: 1024 })));
}

/// Qwen3.5: the Hub's totals less the multi-token-prediction layer engines skip (an `fc` of
/// H × 2H, one gated full-attention layer with its MLP or MoE block, and five norms: the two
/// `pre_fc` norms, the layer's two and the final one), and the vision model (ViT and merger)
/// outside the active count.
#[test]
fn qwen3_5_counts() {
    let h = 4096u64;
    // q_proj (queries and gate) 2·16·256 × h, k and v 2·4·256 × h, o_proj h × 16·256, q/k norms.
    let attention = 2 * 16 * 256 * h + 2 * 4 * 256 * h + h * 16 * 256 + 2 * 256;
    let mtp_9b = 2 * h * h + attention + 3 * 12288 * h + 5 * h;
    assert_eq!(mtp_9b, 243_290_624);
    let (total, active) = counts("qwen3.5-9b");
    assert_eq!(total + mtp_9b, 9_653_104_368);
    assert_eq!((total, total - active), (9_409_813_744, 456_010_480));
    // 35B-A3B: 34,660,610,688 of language model, 446,571,248 of vision, 844,640,768 of MTP.
    let (total, active) = counts("qwen3.5-35b-a3b");
    assert_eq!(total + 844_640_768, 35_951_822_704);
    assert_eq!(total, 34_660_610_688 + 446_571_248);
    // 8 of 256 experts of 3·2048·512 in each of 40 layers are active: "3B activated".
    assert_eq!(active, 34_660_610_688 - 40 * 248 * 3 * 2048 * 512);
    // Qwen3.6-27B (Qwen3.5-27B's shapes): 26,895,998,464 + 460,730,096 + MTP 424,699,392.
    let (total, active) = counts("qwen3.6-27b");
    assert_eq!((total, total - active), (26_895_998_464 + 460_730_096, 460_730_096));
    assert_eq!(total + 424_699_392, 27_781_427_952);
    // Qwen3.8-27B keeps the architecture, and so the same 27,781,427,952 on the Hub.
    assert_eq!(counts("qwen3.8-27b"), (total, active));
    // The multi-token-prediction drafters, as `--mtp` loads them, are exactly the Hub's rest.
    let mtp = |id: &str| elements(&mtp_inventory(&spec(id)));
    assert_eq!((mtp("qwen3.5-9b"), mtp("qwen3.5-35b-a3b"), mtp("qwen3.6-27b")), (mtp_9b, 844_640_768, 424_699_392));
    let spec = spec("qwen3.5-35b-a3b");
    let la = spec.linear_attention.unwrap();
    assert!(la.split_projections && la.state_fp32 && spec.attn_output_gate && !spec.fused_gate_up);
    assert_eq!(spec.attention_layers(), 10);
}

/// Every other catalog model's total and active counts, as they were before multimodal
/// checkpoints gained their vision tower: only `gemma3` and `qwen3_5` wrappers have one.
#[test]
fn text_only_models_keep_their_counts() {
    let before: [(&str, u64, u64); 98] = [
        ("llama-2-7b", 6_738_415_616, 6_738_415_616),
        ("llama-2-13b", 13_015_864_320, 13_015_864_320),
        ("llama-2-70b", 68_976_648_192, 68_976_648_192),
        ("llama-3.1-8b", 8_030_261_248, 8_030_261_248),
        ("llama-3.1-70b", 70_553_706_496, 70_553_706_496),
        ("llama-3.1-405b", 405_853_388_800, 405_853_388_800),
        ("llama-3.2-1b", 1_235_814_400, 1_235_814_400),
        ("llama-3.2-3b", 3_212_749_824, 3_212_749_824),
        ("llama-3.3-70b", 70_553_706_496, 70_553_706_496),
        ("llama-7b", 6_738_415_616, 6_738_415_616),
        ("llama-13b", 13_015_864_320, 13_015_864_320),
        ("llama-30b", 32_528_943_616, 32_528_943_616),
        ("llama-65b", 65_285_660_672, 65_285_660_672),
        ("codellama-34b", 33_743_970_304, 33_743_970_304),
        ("tinyllama-1.1b", 1_100_048_384, 1_100_048_384),
        ("mistral-7b", 7_241_732_096, 7_241_732_096),
        ("mixtral-8x7b", 46_702_792_704, 12_879_925_248),
        ("mixtral-8x22b", 140_620_634_112, 39_152_031_744),
        ("mistral-nemo-12b", 12_247_782_400, 12_247_782_400),
        ("qwen2.5-0.5b", 494_032_768, 494_032_768),
        ("qwen2.5-7b", 7_615_616_512, 7_615_616_512),
        ("qwen2.5-14b", 14_770_033_664, 14_770_033_664),
        ("qwen2.5-32b", 32_763_876_352, 32_763_876_352),
        ("qwen2.5-72b", 72_706_203_648, 72_706_203_648),
        ("qwen3-0.6b", 596_049_920, 596_049_920),
        ("qwen3-8b", 8_190_735_360, 8_190_735_360),
        ("qwen3-32b", 32_762_123_264, 32_762_123_264),
        ("qwen3-30b-a3b", 30_532_122_624, 3_353_032_704),
        ("gemma-7b", 8_537_680_896, 8_537_680_896),
        ("gemma-2-2b", 2_614_341_888, 2_614_341_888),
        ("gemma-2-9b", 9_241_705_984, 9_241_705_984),
        ("gemma-2-27b", 27_227_128_320, 27_227_128_320),
        ("gemma-3-1b", 999_885_952, 999_885_952),
        ("phi-3-mini", 3_821_079_552, 3_821_079_552),
        ("phi-3-medium", 13_960_238_080, 13_960_238_080),
        ("phi-1.5", 1_418_270_720, 1_418_270_720),
        ("phi-2", 2_779_683_840, 2_779_683_840),
        ("deepseek-v3", 671_026_419_200, 37_552_297_472),
        ("deepseek-v2", 235_741_434_880, 21_375_800_320),
        ("deepseek-v2-lite", 15_706_484_224, 2_661_150_208),
        // The model card's 20.91B / 116.83B; active here counts the embedding (tests/gpt_oss.rs).
        ("gpt-oss-20b", 20_914_757_184, 4_187_440_704),
        ("gpt-oss-120b", 116_829_156_672, 5_711_982_912),
        ("falcon-40b", 41_303_293_952, 41_303_293_952),
        ("falcon-7b", 6_921_720_704, 6_921_720_704),
        ("gpt-neox-20b", 20_554_567_680, 20_554_567_680),
        ("pythia-1b", 1_011_781_632, 1_011_781_632),
        ("stablelm-base-alpha-3b", 3_637_321_728, 3_637_321_728),
        ("stablelm-base-alpha-7b", 7_868_755_968, 7_868_755_968),
        ("qwen3-next-80b-a3b", 79_674_391_296, 3_874_929_408),
        ("nemotron-h-8b", 8_100_852_736, 8_100_852_736),
        ("nemotron-nano-9b-v2", 8_888_227_328, 8_888_227_328),
        ("nemotron-3-nano-30b-a3b", 31_577_940_288, 3_580_076_352),
        ("granite-4.0-h-micro", 3_191_396_096, 3_191_396_096),
        ("granite-4.0-h-tiny", 6_939_037_248, 1_465_470_528),
        ("granite-4.0-h-small", 32_207_337_984, 8_803_121_664),
        ("glm-4-9b-0414", 9_400_279_040, 9_400_279_040),
        ("glm-4-32b-0414", 32_566_487_552, 32_566_487_552),
        ("glm-4.5-air", 106_852_251_264, 13_424_129_664),
        ("glm-4.5", 352_797_829_024, 33_632_266_144),
        ("glm-4.6", 352_797_829_024, 33_632_266_144),
        ("olmo-2-7b", 7_298_617_344, 7_298_617_344),
        ("olmo-2-32b", 32_234_279_936, 32_234_279_936),
        ("olmo-3-7b", 7_298_011_136, 7_298_011_136),
        ("command-r", 34_980_831_232, 34_980_831_232),
        ("command-r-plus", 103_810_674_688, 103_810_674_688),
        ("command-r7b", 8_028_033_024, 8_028_033_024),
        ("command-a", 111_057_580_032, 111_057_580_032),
        ("granite-3.3-8b", 8_170_864_640, 8_170_864_640),
        ("granite-3.3-2b", 2_533_539_840, 2_533_539_840),
        ("smollm3-3b", 3_075_098_624, 3_075_098_624),
        ("kimi-k2", 1_026_408_232_448, 32_861_500_928),
        ("kimi-k2-thinking", 1_026_408_232_448, 32_861_500_928),
        ("kimi-linear-48b-a3b", 49_122_681_728, 3_484_459_904),
        ("minimax-m2.7", 228_689_764_864, 11_030_553_088),
        ("qwen1.5-moe-a2.7b", 14_315_784_192, 2_689_173_504),
        ("qwen2-57b-a14b", 57_408_658_944, 14_249_270_784),
        ("starcoder2-3b", 3_030_371_328, 3_030_371_328),
        ("starcoder2-7b", 7_173_923_840, 7_173_923_840),
        ("starcoder2-15b", 15_957_889_024, 15_957_889_024),
        ("phi-3.5-moe", 41_873_153_344, 6_640_999_744),
        ("olmoe-1b-7b", 6_919_161_856, 1_282_017_280),
        ("internlm2.5-7b", 7_737_708_544, 7_737_708_544),
        ("deepseek-v3.2", 671_877_944_064, 38_403_822_336),
        ("gpt2", 124_439_808, 124_439_808),
        ("gpt2-xl", 1_557_611_200, 1_557_611_200),
        ("opt-1.3b", 1_315_758_080, 1_315_758_080),
        ("opt-6.7b", 6_658_473_984, 6_658_473_984),
        ("opt-66b", 65_719_701_504, 65_719_701_504),
        ("bloom-7b1", 7_069_016_064, 7_069_016_064),
        ("bloom-176b", 176_247_271_424, 176_247_271_424),
        ("gpt-j-6b", 6_050_882_784, 6_050_882_784),
        ("starcoder", 15_517_456_384, 15_517_456_384),
        ("mpt-7b", 6_649_286_656, 6_649_286_656),
        ("mamba-2.8b", 2_768_345_600, 2_768_345_600),
        ("falcon-mamba-7b", 7_272_665_088, 7_272_665_088),
        ("mamba-codestral-7b", 7_285_403_648, 7_285_403_648),
        ("jamba-1.5-mini", 51_570_323_328, 12_110_311_296),
        ("falcon-h1-7b", 7_585_513_568, 7_585_513_568),
    ];
    for (id, total, active) in before {
        assert_eq!(counts(id), (total, active), "{id}");
        assert!(ModelCatalog::builtin().get(id).unwrap().spec().vision.is_none(), "{id}");
    }
    // Besides these: Gemma 3 27B, the three Qwen3.5-architecture models, Llama 4's two and the
    // four vision-language wrappers (tests/catalog_vision_language.rs); Gemma 3 4B and 12B; six
    // text-only models added later, each checked against its published count by
    // `published_exact_counts_come_out_exactly` (DeepSeek-R1 has V3's architecture and counts);
    // Gemma 4's 31B, 26B-A4B, E4B and E2B (tests/catalog_gemma4.rs); Qwen3.8-27B, which is
    // Qwen3.6-27B's architecture (`qwen3_5_counts` above); Kimi K2.5, Devstral 2 and Devstral
    // Small 2 (tests/catalog_vision_language.rs); GLM-4.7 and GLM-4.7-Flash (tests/catalog_glm.rs);
    // Seed-OSS-36B (tests/catalog_dense_families.rs); ERNIE 4.5 0.3B and 21B-A3B
    // (tests/catalog_moe_families.rs); Ministral 3 8B (tests/catalog_vision_language.rs).
    assert_eq!(before.len() + 32, ModelCatalog::builtin().iter().count());
}

/// StableLM-Alpha: the HF checkpoint's module holds 3,637,321,728 (GH dfalbel/gptneox); the
/// StableLM README's 3,638,525,952 and 7,869,358,080 are within 0.05%.
#[test]
fn stablelm_alpha_counts() {
    assert_eq!(counts("stablelm-base-alpha-3b").0, 3_637_321_728);
    assert_eq!(counts("stablelm-base-alpha-7b").0, 7_868_755_968);
    for (id, readme) in [("stablelm-base-alpha-3b", 3_638_525_952u64), ("stablelm-base-alpha-7b", 7_869_358_080)] {
        assert!((counts(id).0 as f64 / readme as f64 - 1.0).abs() < 5e-4, "{id}");
    }
}

/// Published rounded figures: Mixtral 46.7 B total / 12.9 B active (Mistral AI), DeepSeek-V3
/// 671 B / 37 B (model card; MTP module excluded), Llama 3.1 8B 8.03 B, 70B 70.6 B, Qwen2.5-7B
/// 7.61 B (model card), Phi-3-mini 3.8 B.
#[test]
fn rounded_published_counts_match() {
    let near = |id: &str, total: f64, active: f64| {
        let (t, a) = counts(id);
        assert!((t as f64 / 1e9 - total).abs() / total < 0.005, "{id} total {t}");
        // Active counts are published rounded to two figures ("37B"): 2%.
        assert!((a as f64 / 1e9 - active).abs() / active < 0.02, "{id} active {a}");
    };
    near("mixtral-8x7b", 46.7, 12.9);
    near("deepseek-v3", 671.0, 37.0);
    near("llama-3.1-8b", 8.03, 8.03);
    near("llama-3.1-70b", 70.6, 70.6);
    near("qwen2.5-7b", 7.61, 7.61);
    near("phi-3-mini", 3.82, 3.82);
    // Mamba-2 hybrids: NVIDIA's 31.6 B / 3.6 B (active with embeddings) and the Hub's 8.89 B;
    // IBM's 32.2 B total for Granite 4.0 H Small.
    near("nemotron-3-nano-30b-a3b", 31.6, 3.6);
    near("nemotron-nano-9b-v2", 8.89, 8.89);
    let (small, _) = counts("granite-4.0-h-small");
    assert!((small as f64 / 1e9 - 32.2).abs() < 0.05, "{small}");
}

/// Mamba-2 hybrids: Nemotron-H's blocks hold one mixer each (a Mamba-2 layer or attention
/// without an MLP, an MLP or experts without a mixer), Granite 4.0's layers a mixer and an MLP.
/// Nemotron-H-8B: 24 Mamba-2 layers, each in_proj 4096 → 2·8192 + 2·8·128 + 128 = 18,560 rows,
/// conv 10,240 × 4 + 10,240, 3 × 128, norm 8,192, out_proj 4096 × 8192: 109,635,968; 4 attention layers of 4096·(4096 + 2·1024) + 4096·4096 = 41,943,040; 24 MLPs of
/// 2·4096·21,504; 52 norms, the final norm, embeddings and lm_head of 131,072 × 4096.
#[test]
fn mamba2_hybrid_counts_and_layouts() {
    let h = 4096u64;
    let mamba = h * 18_560 + 10_240 * 5 + 3 * 128 + 8192 + 8192 * h;
    assert_eq!(mamba, 109_635_968);
    let attention = h * (4096 + 2 * 1024) + 4096 * h;
    let total = 24 * mamba + 4 * attention + 24 * 2 * h * 21_504 + 53 * h + 2 * 131_072 * h;
    assert_eq!(counts("nemotron-h-8b"), (total, total));
    assert_eq!(total, 8_100_852_736);
    let nemotron = spec("nemotron-3-nano-30b-a3b");
    assert_eq!((nemotron.linear_layers(), nemotron.attention_layers(), nemotron.num_layers), (23, 6, 52));
    assert_eq!((0..52).filter(|&l| nemotron.is_moe_layer(l)).count(), 23);
    let la = nemotron.linear_attention.unwrap();
    assert_eq!((la.conv_dim(), la.fused_in_rows(), la.state_values()), (6144, 10_304, 64 * 64 * 128));
    assert!(la.state_fp32 && la.conv_bias && !la.proj_bias);
    let granite = spec("granite-4.0-h-tiny");
    assert_eq!((granite.linear_layers(), granite.attention_layers()), (36, 4));
    assert!(granite.layer_attention[5] == LayerAttention::Full && (0..40).all(|l| granite.is_moe_layer(l)));
    assert!(!granite.linear_attention.unwrap().state_fp32);
}

#[test]
fn unknown_model_suggests_close_ids() {
    let err = ModelCatalog::builtin().get("llama-2-7").unwrap_err().to_string();
    assert!(err.contains("did you mean") && err.contains("llama-2-7b"), "{err}");
}

/// DeepSeek-V3's multi-token-prediction module as vLLM loads it (`deepseek_mtp.py`): `eh_proj`
/// (7,168 × 14,336), `enorm`, `hnorm`, `shared_head.norm`, and one decoder layer shaped like
/// the model's MoE layers (MLA attention, 256 routed experts, the shared expert); the embedding
/// and lm_head the checkpoint repeats are the model's own, so they are not loaded again.
#[test]
fn deepseek_v3_mtp_drafter() {
    let spec = spec("deepseek-v3");
    assert_eq!(spec.mtp_layers, 1);
    let layer = |l: u32| inventory(&spec).iter().filter(|t| t.layer == Some(l)).map(|t| t.elements()).sum::<u64>();
    let drafter = elements(&mtp_inventory(&spec));
    assert_eq!(drafter, 2 * 7168 * 7168 + 3 * 7168 + layer(3));
}

#[test]
fn model_ids_are_found_without_separators() {
    let cat = ModelCatalog::builtin();
    assert_eq!(cat.get("llama2-7b").unwrap().entry.id, "llama-2-7b");
    assert_eq!(cat.get(" Llama 2 70B ").unwrap().entry.id, "llama-2-70b");
    assert!(cat.get("llama27").is_err());
    // Numbers stay apart: Qwen2-57B is not Qwen2.5-7B.
    assert!(cat.get("qwen2-57b").is_err());
}
