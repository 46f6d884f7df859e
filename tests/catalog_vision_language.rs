//! Vision-language wrappers: Mistral Small 3.1 and Devstral Small 2 (Pixtral), Qwen2.5-VL (its text fields at the
//! top level), Qwen3-VL (deepstack mergers) and Kimi K2.5 (MoonViT): each catalog entry equals
//! its published total, the language model its text-only sibling's count.

mod support;

use headroom::model::config::parse_config;
use headroom::model::spec::Family;
use headroom::model::tensors::{inventory, param_counts};
use headroom::model::vision::VisionKind;
use support::catalog::{counts, spec};

#[test]
fn published_totals_and_text_shares() {
    // Mistral Small 3.1: vision 403,305,472 + projector 35,652,608 beside 23,572,403,200.
    assert_eq!(counts("mistral-small-3.1-24b"), (24_011_361_280, 23_572_403_200));
    // Qwen2.5-VL-7B: Qwen2.5-7B's 7,615,616,512 beside a 676,550,144 tower.
    assert_eq!(counts("qwen2.5-vl-7b"), (8_292_166_656, 7_615_616_512));
    assert_eq!(counts("qwen2.5-vl-7b").1, counts("qwen2.5-7b").0);
    // Qwen3-VL: Qwen3-8B's and Qwen3-30B-A3B's language models exactly.
    assert_eq!(counts("qwen3-vl-8b"), (8_767_123_696, counts("qwen3-8b").0));
    assert_eq!(counts("qwen3-vl-30b-a3b").0, 31_070_754_032);
    assert_eq!(counts("qwen3-vl-30b-a3b").1, counts("qwen3-30b-a3b").1);
    let kinds: Vec<(Family, VisionKind)> = ["mistral-small-3.1-24b", "qwen2.5-vl-7b", "qwen3-vl-8b"]
        .iter()
        .map(|id| (spec(id).family, spec(id).vision.unwrap().kind))
        .collect();
    assert_eq!(
        kinds,
        [
            (Family::Mistral, VisionKind::Pixtral),
            (Family::Qwen2, VisionKind::Qwen25Vit),
            (Family::Qwen3, VisionKind::QwenVit)
        ]
    );
    assert_eq!(spec("qwen3-vl-8b").vision.unwrap().deepstack_mergers, 3);
}

/// Qwen2.5-VL re-saved by newer transformers nests its text fields in `text_config`; both
/// layouts read the same; a `mistral3` file without `text_config` is refused by name.
#[test]
fn qwen25_vl_nested_or_flat() {
    let flat = include_str!("../data/models/qwen2.5-vl-7b.json");
    let mut nested: serde_json::Value = serde_json::from_str(flat).unwrap();
    let top = nested.as_object_mut().unwrap();
    let text: serde_json::Map<String, serde_json::Value> = [
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "num_key_value_heads",
        "vocab_size",
    ]
    .iter()
    .map(|k| (k.to_string(), top.remove(*k).unwrap()))
    .collect();
    top.insert("text_config".into(), serde_json::Value::Object(text));
    let a = parse_config(flat, "q", "flat").unwrap().spec;
    let b = parse_config(&nested.to_string(), "q", "nested").unwrap().spec;
    assert_eq!(param_counts(&a, &inventory(&a)), param_counts(&b, &inventory(&b)));
    let err = parse_config(r#"{"model_type": "mistral3", "vision_config": {}}"#, "m", "cfg.json").unwrap_err();
    assert!(err.to_string().contains("text_config"), "{err}");
}

/// Kimi K2.5: Kimi K2's language model beside MoonViT (416,866,032) and its patch merger
/// (54,277,888), the tensors of a listing of the real download: in w4a16-g32 the 554.27 GiB it
/// sums to. Layouts vLLM builds differently are refused by name.
#[test]
fn kimi_k25_moonvit() {
    use headroom::quant::weights::WeightFormat;
    let s = spec("kimi-k2.5");
    assert_eq!(s.vision.map(|v| (v.kind, v.positions, v.spatial_merge_size)), Some((VisionKind::MoonVit, 4096, 2)));
    let (total, active) = counts("kimi-k2.5");
    assert_eq!((total, active), (counts("kimi-k2").0 + 416_866_032 + 54_277_888, counts("kimi-k2").1));
    let bytes = WeightFormat::parse("w4a16-g32").unwrap().weight_bytes(&s, &inventory(&s)).0;
    assert_eq!(bytes, 595_148_146_656);
    assert_eq!(format!("{:.2}", bytes as f64 / (1u64 << 30) as f64), "554.27");

    let config = include_str!("../data/models/kimi-k2.5.json");
    let with = |field: &str, value: serde_json::Value| {
        let mut json: serde_json::Value = serde_json::from_str(config).unwrap();
        json["vision_config"][field] = value;
        parse_config(&json.to_string(), "k", "cfg.json").map(|p| p.spec)
    };
    let err = with("mm_projector_type", "patchmergerv2".into()).unwrap_err().to_string();
    assert!(err.contains("mm_projector_type") && err.contains("patchmergerv2"), "{err}");
    let err = with("merge_kernel_size", serde_json::json!([2, 3])).unwrap_err().to_string();
    assert!(err.contains("merge_kernel_size"), "{err}");
    let err = with("mm_hidden_size", 4096.into()).unwrap_err().to_string();
    assert!(err.contains("mm_hidden_size"), "{err}");
    // The plain names KimiK25VisionConfig also reads.
    let mut json: serde_json::Value = serde_json::from_str(config).unwrap();
    let vision = json["vision_config"].as_object_mut().unwrap();
    let hidden = vision.remove("vt_hidden_size").unwrap();
    vision.insert("hidden_size".into(), hidden);
    let plain = parse_config(&json.to_string(), "k", "cfg.json").unwrap().spec;
    assert_eq!(param_counts(&plain, &inventory(&plain)).total, total);
}

/// Mistral's third generation (`ministral3`) is read as Mistral: Devstral Small 2 keeps Mistral
/// Small 3.1's count, Devstral 2's 88 layers of 12288 (q, o 2·12288·96·128; k, v 2·12288·8·128;
/// MLP 3·12288·28,672; two norms) beside an untied 131,072-token vocabulary. All ship FP8 with a
/// weight scale and a static input scale per tensor (`weight_block_size: null`), not DeepSeek's
/// 128 × 128 blocks.
#[test]
fn ministral3_text_models_read_as_mistral() {
    assert_eq!(counts("devstral-small-2-24b"), counts("mistral-small-3.1-24b"));
    let h = 12_288u64;
    let layer = 2 * h * 96 * 128 + 2 * h * 8 * 128 + 3 * h * 28_672 + 2 * h;
    assert_eq!(counts("devstral-2-123b").0, 88 * layer + h + 2 * 131_072 * h);
    assert_eq!(counts("devstral-2-123b").0, 125_025_988_608);
    // Ministral 3 8B: 34 layers of 4096 (q, o 2·4096·4096; k, v 2·4096·1024; SwiGLU 3·4096·14,336;
    // two norms), an untied 131,072-token vocabulary, and Mistral Small 3.1's Pixtral beside it.
    let h = 4096u64;
    let layer = 2 * h * 4096 + 2 * h * 1024 + 3 * h * 14_336 + 2 * h;
    assert_eq!(counts("ministral-3-8b").1, 34 * layer + h + 2 * 131_072 * h);
    let catalog = headroom::catalog::models::ModelCatalog::builtin();
    for id in ["devstral-2-123b", "devstral-small-2-24b", "ministral-3-8b"] {
        let m = catalog.get(id).unwrap();
        assert_eq!(m.spec().family, Family::Mistral);
        assert_eq!(m.parsed.native_format.as_ref().map(|f| f.id.as_str()), Some("fp8-tensor"), "{id}");
    }
}
