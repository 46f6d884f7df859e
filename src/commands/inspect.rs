//! `headroom inspect PATH`: exact parameters and bytes of a local model, tensor group by group.

use super::render_listing;
use super::source::resolve;
use crate::cli::InspectArgs;
use crate::model::tensors::Role;
use crate::report::Listing;
use serde_json::json;
use std::collections::BTreeMap;

pub fn run(args: &InspectArgs) -> anyhow::Result<String> {
    let path = args.path.to_string_lossy();
    let model = resolve(&path)?;
    let spec = &model.spec;
    let mut groups: BTreeMap<&'static str, (u64, u64)> = BTreeMap::new();
    for t in &model.tensors {
        let entry = groups.entry(group_of(t.role)).or_default();
        entry.0 += t.elements();
        entry.1 += model.default_format.tensor_bytes(t, spec).0;
    }
    let rows = groups
        .iter()
        .map(|(g, (n, b))| {
            vec![g.to_string(), n.to_string(), b.to_string(), format!("{:.3}", *b as f64 / (1u64 << 30) as f64)]
        })
        .collect();
    let listing = Listing {
        title: format!("{} ({} parameters, {} active)", spec.id, model.counts.total, model.counts.active),
        headers: vec!["group", "parameters", "bytes", "GiB"],
        rows,
        json: json!({
            "model": spec.id, "parameters": model.counts.total, "active_parameters": model.counts.active,
            "format": model.default_format.id(),
            "groups": groups.iter().map(|(g, (n, b))| json!({"group": g, "parameters": n, "bytes": b})).collect::<Vec<_>>(),
            "spec": spec,
        }),
    };
    Ok(render_listing(&listing, args.format))
}

/// Coarse grouping of tensor roles for the breakdown.
pub(crate) fn group_of(role: Role) -> &'static str {
    use Role::*;
    match role {
        TokenEmbd => "embeddings",
        Output => "lm_head",
        OutputNorm | AttnNorm | FfnNorm | AttnQANorm | AttnKvANorm => "norms",
        AttnQ | AttnK | AttnV | AttnQkv | AttnOutput | AttnQA | AttnQB | AttnKvAMqa | AttnKvB => "attention",
        FfnGate | FfnUp | FfnGateUp | FfnDown => "mlp",
        FfnGateInp | ExpProbsB => "router",
        FfnGateExps | FfnUpExps | FfnDownExps => "routed experts",
        FfnGateShexp | FfnUpShexp | FfnDownShexp => "shared experts",
    }
}
