//! `headroom formats`: weight and KV-cache formats with their exact bits per weight.

use crate::quant::{KvFormat, WeightFormat};
use crate::report::Listing;
use serde_json::json;

pub fn listing() -> Listing {
    let mut rows = Vec::new();
    let mut weights = Vec::new();
    for f in WeightFormat::all() {
        let bpw = f.nominal_bits_per_weight();
        rows.push(vec!["weights".into(), f.id().into(), format!("{bpw:.4}"), f.description().into()]);
        weights.push(json!({"id": f.id(), "bits_per_weight": bpw, "description": f.description()}));
    }
    let mut kv = Vec::new();
    for f in KvFormat::all() {
        let bpw = f.bits_per_element();
        rows.push(vec!["kv cache".into(), f.id().into(), format!("{bpw:.4}"), f.description().into()]);
        kv.push(json!({"id": f.id(), "bits_per_value": bpw, "description": f.description()}));
    }
    Listing {
        title: "formats (bits per weight include scales and zeros)".into(),
        headers: vec!["kind", "id", "bits/weight", "description"],
        rows,
        json: json!({"weights": weights, "kv_cache": kv}),
    }
}
