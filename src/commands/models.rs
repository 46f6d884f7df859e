//! `headroom models`: the built-in catalog with exact parameter counts.

use crate::catalog::models::ModelCatalog;
use crate::model::tensors::{inventory, param_counts};
use crate::report::Listing;
use serde_json::json;

pub fn listing() -> Listing {
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for m in ModelCatalog::builtin().iter() {
        let spec = m.spec();
        let counts = param_counts(spec, &inventory(spec));
        let mut attention = match (spec.mla, spec.num_kv_heads) {
            (Some(_), _) => "MLA".to_string(),
            (None, kv) if kv == spec.num_heads => format!("MHA {kv}"),
            (None, 1) => "MQA".to_string(),
            (None, kv) => format!("GQA {}/{kv}", spec.num_heads),
        };
        if let Some(g) = spec.global_attention {
            attention = format!("{attention} (full: {}×{})", g.num_kv_heads, g.head_dim);
        }
        let linear = spec.linear_layers();
        if let Some(la) = spec.linear_attention.filter(|_| linear > 0) {
            let kind = match la.kind {
                crate::model::spec::LinearKind::GatedDeltaNet => "DeltaNet",
                crate::model::spec::LinearKind::Mamba2 => "Mamba-2",
                crate::model::spec::LinearKind::Mamba1 => "Mamba-1",
            };
            attention = format!("{attention} + {kind} ×{linear}");
        }
        rows.push(vec![
            m.entry.id.clone(),
            spec.family.model_type().to_string(),
            format!("{:.2} B", counts.total as f64 / 1e9),
            format!("{:.2} B", counts.active as f64 / 1e9),
            spec.num_layers.to_string(),
            attention,
            spec.max_context.to_string(),
        ]);
        items.push(json!({
            "id": m.entry.id, "name": m.entry.name, "hf_repo": m.entry.hf_repo,
            "family": spec.family.model_type(), "parameters": counts.total,
            "active_parameters": counts.active, "layers": spec.num_layers,
            "hidden_size": spec.hidden_size, "heads": spec.num_heads, "kv_heads": spec.num_kv_heads,
            "head_dim": spec.head_dim, "vocab_size": spec.vocab_size, "max_context": spec.max_context,
            "linear_attention_layers": linear,
            "linear_attention_kind": spec.linear_attention.filter(|_| linear > 0).map(|la| la.kind),
            "mtp_layers": spec.mtp_layers,
        }));
    }
    Listing {
        title: "built-in models".into(),
        headers: vec!["id", "family", "parameters", "active", "layers", "attention", "max context"],
        rows,
        json: json!(items),
    }
}
