//! `headroom formats`: weight and KV-cache formats with their exact bits per weight.

use crate::catalog::models::ModelCatalog;
use crate::model::tensors::{inventory, param_counts};
use crate::quant::{KvFormat, WeightFormat};
use crate::report::Listing;
use serde_json::json;

/// The model whose whole-file average shows what a format costs with its unquantized tensors
/// (embeddings, norms, lm_head) and per-tensor promotions (GGUF mixes) included.
const REFERENCE_MODEL: &str = "llama-2-7b";

pub fn listing() -> Listing {
    let reference = ModelCatalog::builtin().get(REFERENCE_MODEL).ok().map(|m| {
        let tensors = inventory(m.spec());
        let params = param_counts(m.spec(), &tensors).total as f64;
        (m.spec().clone(), tensors, params)
    });
    let mut rows = Vec::new();
    let mut weights = Vec::new();
    for f in WeightFormat::all() {
        let bpw = f.nominal_bits_per_weight();
        let average =
            reference.as_ref().map(|(spec, tensors, params)| f.weight_bytes(spec, tensors).0 as f64 * 8.0 / params);
        let avg_text = average.map_or(String::new(), |a| format!("{a:.3}"));
        rows.push(vec!["weights".into(), f.id().into(), format!("{bpw:.4}"), avg_text, f.description().into()]);
        weights.push(json!({"id": f.id(), "bits_per_weight": bpw, "llama_2_7b_average_bits_per_weight": average, "description": f.description()}));
    }
    let mut kv = Vec::new();
    for f in KvFormat::all() {
        let bpw = f.bits_per_element();
        rows.push(vec!["kv cache".into(), f.id().into(), format!("{bpw:.4}"), String::new(), f.description().into()]);
        kv.push(json!({"id": f.id(), "bits_per_value": bpw, "description": f.description()}));
    }
    Listing {
        title: "formats: bits per weight of quantized tensors (scales and zeros included), and the whole-model average on llama-2-7b".into(),
        headers: vec!["kind", "id", "bits/weight", "llama-2-7b avg", "description"],
        rows,
        json: json!({"weights": weights, "kv_cache": kv}),
    }
}
