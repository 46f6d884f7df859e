//! `headroom inspect PATH`: exact parameters and bytes of a model, tensor group by group. From
//! file headers when the input has tensors (their stored bytes), else from the architecture in
//! the checkpoint's own format.

use super::render_listing;
use super::source::resolve;
use crate::cli::InspectArgs;
use crate::model::tensors::Role;
use crate::report::Listing;
use serde_json::json;
use std::collections::BTreeMap;

pub fn run(args: &InspectArgs) -> anyhow::Result<String> {
    let model = resolve(&args.path.to_string_lossy())?;
    let spec = &model.spec;
    // (group, dtype) -> (elements, bytes)
    let mut groups: BTreeMap<(&'static str, String), (u64, u64)> = BTreeMap::new();
    let source = match &model.file {
        Some(file) => {
            for t in &file.model.tensors {
                let group = t.role.map_or("other", group_of);
                let entry = groups.entry((group, t.dtype.clone())).or_default();
                entry.0 += t.elements();
                entry.1 += t.bytes;
            }
            file.label.clone()
        }
        None => {
            let format = model.default_format()?;
            for t in &model.tensors {
                let stored = format.tensor_type(t, spec).name().to_string();
                let entry = groups.entry((group_of(t.role), stored)).or_default();
                entry.0 += t.elements();
                entry.1 += format.tensor_bytes(t, spec).0;
            }
            format!("architecture in {}", format.id())
        }
    };
    let total_bytes: u64 = groups.values().map(|(_, b)| b).sum();
    let gib = |b: u64| format!("{:.3}", b as f64 / (1u64 << 30) as f64);
    let mut rows: Vec<Vec<String>> = groups
        .iter()
        .map(|((g, dtype), (n, b))| vec![g.to_string(), dtype.clone(), n.to_string(), b.to_string(), gib(*b)])
        .collect();
    rows.push(vec![
        "total".into(),
        String::new(),
        model.counts.total.to_string(),
        total_bytes.to_string(),
        gib(total_bytes),
    ]);
    let listing = Listing {
        title: format!(
            "{} · {} · {} parameters ({} active) from the architecture",
            spec.id, source, model.counts.total, model.counts.active
        ),
        headers: vec!["group", "stored as", "elements", "bytes", "GiB"],
        rows,
        json: json!({
            "model": spec.id, "source": source,
            "parameters": model.counts.total, "active_parameters": model.counts.active,
            "total_bytes": total_bytes,
            "groups": groups.iter().map(|((g, d), (n, b))| json!({"group": g, "stored_as": d, "elements": n, "bytes": b})).collect::<Vec<_>>(),
            "spec": spec,
        }),
    };
    Ok(render_listing(&listing, args.format))
}

/// Coarse grouping of tensor roles for the breakdown.
fn group_of(role: Role) -> &'static str {
    use Role::*;
    match role {
        TokenEmbd | PosEmbd => "embeddings",
        TokenEmbdNorm => "norms",
        Output => "lm_head",
        OutputNorm | AttnNorm | FfnNorm | AttnQNorm | AttnKNorm | AttnQANorm | AttnKvANorm => "norms",
        SsmIn | SsmBa | SsmInQkv | SsmInZ | SsmBeta | SsmAlpha | SsmConv1d | SsmDt | SsmA | SsmD | SsmX
        | SsmInnerNorm | SsmNorm | SsmOut => "linear attention / Mamba",
        AttnQ | AttnK | AttnV | AttnQkv | AttnOutput | AttnQA | AttnQB | AttnKvAMqa | AttnKvB | AttnSinks => {
            "attention"
        }
        IndexerQB | IndexerK | IndexerKNorm | IndexerProj => "sparse-attention indexer",
        FfnGate | FfnUp | FfnGateUp | FfnDown => "mlp",
        FfnGateInp | ExpProbsB => "router",
        FfnGateExps | FfnUpExps | FfnGateUpExps | FfnDownExps => "routed experts",
        FfnGateShexp | FfnUpShexp | FfnDownShexp | FfnGateInpShexp => "shared experts",
        VisionPatchEmbd | VisionPosEmbd | VisionNorm | VisionAttnQ | VisionAttnK | VisionAttnV | VisionAttnOutput
        | VisionAttnQkv | VisionAttnProj | VisionMlpFc1 | VisionMlpFc2 | VisionFfnUp | VisionFfnDown => {
            "vision / audio tower"
        }
        MmSoftEmbNorm | MmInputProjection | MmMergerUp | MmMergerDown => "projector",
        MtpProj | MtpNorm => "multi-token prediction",
        PerLayerEmbd | PerLayerModelProj | PerLayerProjNorm | PerLayerInpGate | PerLayerProj => "per-layer inputs",
    }
}
