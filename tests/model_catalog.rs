//! The built-in model catalog: every entry parses, ids are unique, and parameter counts come out
//! exactly where a source states them.

use headroom::catalog::models::ModelCatalog;
use headroom::model::tensors::{inventory, param_counts};
use std::collections::HashSet;

fn counts(id: &str) -> (u64, u64) {
    let m = ModelCatalog::builtin().get(id).unwrap();
    let c = param_counts(m.spec(), &inventory(m.spec()));
    (c.total, c.active)
}

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
}

#[test]
fn unknown_model_suggests_close_ids() {
    let err = ModelCatalog::builtin().get("llama-2-7").unwrap_err().to_string();
    assert!(err.contains("did you mean") && err.contains("llama-2-7b"), "{err}");
}
