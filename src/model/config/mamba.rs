//! State-space layers: Nemotron-H's and Granite 4.0's Mamba-2 hybrids, Jamba's Mamba-1 hybrid
//! and the pure Mamba, Falcon-Mamba and Mamba-2 models, and Falcon-H1's Mamba-2 beside
//! attention in every layer: their layer layouts and Mamba shapes.
//!
//! Nemotron-H (transformers `NemotronHConfig`, NVIDIA's remote-code config): one mixer per block,
//! laid out by `hybrid_override_pattern`, one character per block — `M` Mamba-2, `*` attention,
//! `-` MLP, `E` mixture of experts — or, in transformers 5's form, `layers_block_type` naming them
//! (`mamba`/`linear_attention`, `attention`/`full_attention`, `mlp`, `moe`). The Mamba-2 width is
//! `mamba_num_heads · mamba_head_dim` (Nemotron-Nano-9B-v2: 128 · 80 = 10,240, not
//! `expand · hidden` = 8,960); attention's head size is `head_dim`, or `attention_head_dim` in
//! older files (Nemotron-H-8B), never hidden / heads.
//!
//! Granite 4.0 (`GraniteMoeHybridConfig`): `layer_types` of `mamba` and `attention`; every layer
//! also has the shared MLP and, with `num_local_experts` > 0, the experts. The Mamba-2 width is
//! `mamba_expand · hidden`, split into `mamba_n_heads` heads of `mamba_d_head` ("auto": the
//! width / heads).

use super::{ConfigError, Reader, MAX_DIM, MAX_LAYERS};
use crate::model::spec::{Family, LayerAttention, LayerMlp, LinearAttention, LinearKind};
use serde_json::Value;

/// A hybrid's per-layer mixers and MLPs and its Mamba-2 shape (`None` when no layer is Mamba-2,
/// as in Granite 4.0's dense checkpoints).
pub(super) struct MambaLayout {
    pub mixers: Vec<LayerAttention>,
    pub mlps: Vec<LayerMlp>,
    pub mamba: Option<LinearAttention>,
}

/// The layout of a Nemotron-H or Granite 4.0 config; `None` for other families.
pub(super) fn mamba_layout(r: &Reader, family: Family) -> Result<Option<MambaLayout>, ConfigError> {
    let (mixers, mlps) = match family {
        Family::NemotronH => nemotron_pattern(r)?,
        Family::GraniteMoeHybrid => granite_layers(r)?,
        // Pure state-space models: one Mamba block per layer, no MLP.
        Family::Mamba | Family::FalconMamba | Family::Mamba2 => {
            let layers = r.req_u64(&["num_hidden_layers", "n_layer"], family, MAX_LAYERS)? as usize;
            (vec![LayerAttention::Linear; layers], vec![LayerMlp::Absent; layers])
        }
        Family::Jamba => jamba_layers(r)?,
        // Falcon-H1: every layer attention (and, in parallel, Mamba-2) and a SwiGLU MLP.
        Family::FalconH1 => {
            let layers = r.req_u64(&["num_hidden_layers"], family, MAX_LAYERS)? as usize;
            (vec![LayerAttention::Full; layers], vec![LayerMlp::Dense; layers])
        }
        _ => return Ok(None),
    };
    let mamba = match family {
        Family::FalconH1 => Some(mamba2(r, family)?),
        _ if !mixers.contains(&LayerAttention::Linear) => None,
        Family::Mamba | Family::FalconMamba | Family::Jamba => Some(mamba1(r, family)?),
        _ => Some(mamba2(r, family)?),
    };
    Ok(Some(MambaLayout { mixers, mlps, mamba }))
}

/// Jamba's layers (`JambaConfig.layers_block_type`, `layers_num_experts`): attention where
/// i % `attn_layer_period` == `attn_layer_offset` (8 and 4: layers 4, 12, 20, 28), Mamba-1
/// elsewhere; experts where i % `expert_layer_period` == `expert_layer_offset` (2 and 1: the odd
/// layers), a dense MLP elsewhere.
fn jamba_layers(r: &Reader) -> Result<(Vec<LayerAttention>, Vec<LayerMlp>), ConfigError> {
    let family = Family::Jamba;
    let layers = r.req_u64(&["num_hidden_layers"], family, MAX_LAYERS)?;
    let every = |period: &'static str, offset: &'static str, p: u64, o: u64| -> Result<(u64, u64), ConfigError> {
        let period_value = r.u64_or(&[period], Some(p), family, MAX_LAYERS)?;
        let offset_value = r.json.get(offset).and_then(Value::as_u64).unwrap_or(o);
        if offset_value >= period_value {
            return Err(r.bad(offset, offset_value, "must be below its period"));
        }
        Ok((period_value, offset_value))
    };
    let (attn_period, attn_offset) = every("attn_layer_period", "attn_layer_offset", 8, 4)?;
    let (expert_period, expert_offset) = every("expert_layer_period", "expert_layer_offset", 2, 1)?;
    let experts = r.json.get("num_experts").and_then(Value::as_u64).unwrap_or(16);
    let mixers = (0..layers)
        .map(|l| if l % attn_period == attn_offset { LayerAttention::Full } else { LayerAttention::Linear })
        .collect();
    let mlps = (0..layers)
        .map(|l| if experts > 1 && l % expert_period == expert_offset { LayerMlp::Moe } else { LayerMlp::Dense })
        .collect();
    Ok((mixers, mlps))
}

/// The Mamba-1 shape (`MambaConfig`, `FalconMambaConfig`, `JambaConfig`): d_inner is the file's
/// `intermediate_size` (Falcon-Mamba-7B writes `expand` 16 beside the 8,192 its weights have),
/// else `expand · hidden`; Jamba's is `mamba_expand · hidden`. `time_step_rank` "auto" is
/// ⌈hidden / 16⌉. Jamba names its keys `mamba_d_state`, `mamba_d_conv`, `mamba_dt_rank`; the
/// others `state_size`, `conv_kernel`, `time_step_rank`. Either spelling is read, the family's
/// own first.
fn mamba1(r: &Reader, family: Family) -> Result<LinearAttention, ConfigError> {
    let hidden = r.req_u64(&["hidden_size", "d_model"], family, MAX_DIM)?;
    let jamba = family == Family::Jamba;
    let field = |names: &[&'static str], default: u64| r.u64_or(names, Some(default), family, MAX_DIM);
    // One flag biases in_proj and out_proj.
    let bias = r.bool_or(if jamba { "mamba_proj_bias" } else { "use_bias" }, false);
    let d_inner = match jamba {
        true => field(&["mamba_expand"], 2)? * hidden,
        false => match r.opt_u64(&["intermediate_size", "d_inner"], MAX_DIM)? {
            Some(d) => d,
            None => field(&["expand"], 2)? * hidden,
        },
    };
    let (state_keys, conv_keys, dt_key) = match jamba {
        true => (["mamba_d_state", "state_size"], ["mamba_d_conv", "conv_kernel"], "mamba_dt_rank"),
        false => (["state_size", "mamba_d_state"], ["conv_kernel", "mamba_d_conv"], "time_step_rank"),
    };
    let dt_rank = match r.json.get(dt_key) {
        Some(Value::Number(_)) => field(&[dt_key], 1)?,
        _ => hidden.div_ceil(16),
    };
    Ok(LinearAttention {
        kind: LinearKind::Mamba1,
        num_key_heads: 0,
        key_head_dim: field(&state_keys, 16)?,
        num_value_heads: d_inner,
        value_head_dim: 1,
        conv_kernel: conv_kernel(r, family, &conv_keys)?,
        split_projections: false,
        state_fp32: r.str("mamba_ssm_cache_dtype") == Some("float32"),
        conv_bias: r.bool_or(if jamba { "mamba_conv_bias" } else { "use_conv_bias" }, true),
        proj_bias: bias,
        chunk_size: 256,
        dt_rank,
        inner_norms: jamba,
        gated_norm: true,
        out_bias: bias,
        low_rank_gates: 0,
    })
}

/// The causal convolution's taps from the first of `names` the config sets, else the class
/// default of 4 (every Mamba config class has it); fewer than 2 is an error naming the key read.
fn conv_kernel(r: &Reader, family: Family, names: &[&'static str]) -> Result<u64, ConfigError> {
    let taps = r.u64_or(names, Some(4), family, MAX_DIM)?;
    if taps < 2 {
        return Err(r.bad(
            r.first_set(names).map_or(names[0], |(key, _)| key),
            taps,
            "a causal convolution needs at least 2 taps",
        ));
    }
    Ok(taps)
}

/// Nemotron-H's blocks, each one mixer: `M` Mamba-2, `*` attention, `-` MLP, `E` experts.
fn nemotron_pattern(r: &Reader) -> Result<(Vec<LayerAttention>, Vec<LayerMlp>), ConfigError> {
    // Errors name the key the blocks came from, and that form's block names.
    let (field, kinds_are, kinds): (_, _, Vec<String>) =
        match (r.str("hybrid_override_pattern"), r.json.get("layers_block_type")) {
            (Some(p), _) => (
                "hybrid_override_pattern",
                "blocks are M (Mamba-2), * (attention), - (MLP) or E (MoE)",
                p.chars().map(|c| c.to_string()).collect(),
            ),
            (None, Some(Value::Array(list))) => (
                "layers_block_type",
                "blocks are mamba (or linear_attention), attention (or full_attention), mlp or moe",
                list.iter().map(|v| v.as_str().unwrap_or("?").to_string()).collect(),
            ),
            _ => {
                return Err(ConfigError::MissingField {
                    source_name: r.source_name.to_string(),
                    field: "hybrid_override_pattern",
                    family: Family::NemotronH.model_type(),
                })
            }
        };
    let bad =
        |value: String, reason| ConfigError::BadValue { source_name: r.source_name.to_string(), field, value, reason };
    if kinds.is_empty() || kinds.len() as u64 > MAX_LAYERS {
        return Err(bad(kinds.len().to_string(), "must name between 1 and 10,000 blocks"));
    }
    if let Some(n) = r.json.get("num_hidden_layers").and_then(Value::as_u64) {
        if n != kinds.len() as u64 {
            return Err(bad(kinds.len().to_string(), "must have one block per layer (num_hidden_layers)"));
        }
    }
    let mut mixers = Vec::with_capacity(kinds.len());
    let mut mlps = Vec::with_capacity(kinds.len());
    for kind in &kinds {
        let (mixer, mlp) = match kind.as_str() {
            "M" | "mamba" | "linear_attention" => (LayerAttention::Linear, LayerMlp::Absent),
            "*" | "attention" | "full_attention" => (LayerAttention::Full, LayerMlp::Absent),
            "-" | "mlp" => (LayerAttention::Absent, LayerMlp::Dense),
            "E" | "moe" => (LayerAttention::Absent, LayerMlp::Moe),
            other => return Err(bad(format!("'{other}'"), kinds_are)),
        };
        mixers.push(mixer);
        mlps.push(mlp);
    }
    Ok((mixers, mlps))
}

/// Granite 4.0's layers: `layer_types` of `mamba` and `attention` (all Mamba-2 when absent, as
/// `GraniteMoeHybridConfig` defaults), each with the shared MLP and maybe the experts.
fn granite_layers(r: &Reader) -> Result<(Vec<LayerAttention>, Vec<LayerMlp>), ConfigError> {
    let family = Family::GraniteMoeHybrid;
    let layers = r.req_u64(&["num_hidden_layers"], family, MAX_LAYERS)?;
    let mixers = match r.json.get("layer_types") {
        None | Some(Value::Null) => vec![LayerAttention::Linear; layers as usize],
        Some(Value::Array(types)) => {
            let bad = |value: String, reason| ConfigError::BadValue {
                source_name: r.source_name.to_string(),
                field: "layer_types",
                value,
                reason,
            };
            if types.len() as u64 != layers {
                return Err(bad(types.len().to_string(), "must list one type per layer (num_hidden_layers)"));
            }
            types
                .iter()
                .map(|t| match t.as_str() {
                    Some("mamba") => Ok(LayerAttention::Linear),
                    Some("attention") => Ok(LayerAttention::Full),
                    _ => Err(bad(t.to_string(), "layer types are \"mamba\" or \"attention\"")),
                })
                .collect::<Result<_, _>>()?
        }
        Some(other) => {
            return Err(ConfigError::BadValue {
                source_name: r.source_name.to_string(),
                field: "layer_types",
                value: other.to_string(),
                reason: "expected a list of \"mamba\" and \"attention\"",
            })
        }
    };
    let mlp = if granite_experts(r) > 0 { LayerMlp::Moe } else { LayerMlp::Dense };
    Ok((mixers, vec![mlp; layers as usize]))
}

/// Granite 4.0's routed experts per layer: `num_local_experts`, 0 in the dense checkpoints, 8
/// when absent (`GraniteMoeHybridConfig`'s default).
pub(super) fn granite_experts(r: &Reader) -> u64 {
    r.json.get("num_local_experts").and_then(Value::as_u64).unwrap_or(8)
}

/// The Mamba-2 shape, with each family's field names and class defaults.
fn mamba2(r: &Reader, family: Family) -> Result<LinearAttention, ConfigError> {
    let hidden = r.req_u64(&["hidden_size"], family, MAX_DIM)?;
    let field = |names: &[&'static str], default: u64| r.u64_or(names, Some(default), family, MAX_DIM);
    // (`Mamba2Config`'s and `NemotronHConfig`'s one flag for in_proj's and out_proj's biases.)
    let bias = r.bool_or("use_bias", false);
    Ok(match family {
        // `Mamba2Config` (Mamba-Codestral-7B: 128 heads of 64, 8 groups, state 128).
        Family::Mamba2 => LinearAttention {
            kind: LinearKind::Mamba2,
            num_key_heads: field(&["n_groups"], 8)?,
            key_head_dim: field(&["state_size"], 128)?,
            num_value_heads: field(&["num_heads"], 128)?,
            value_head_dim: field(&["head_dim"], 64)?,
            conv_kernel: conv_kernel(r, family, &["conv_kernel"])?,
            split_projections: false,
            state_fp32: r.str("mamba_ssm_cache_dtype") == Some("float32"),
            conv_bias: r.bool_or("use_conv_bias", true),
            proj_bias: bias,
            chunk_size: field(&["chunk_size"], 256)?,
            dt_rank: 0,
            inner_norms: false,
            gated_norm: true,
            out_bias: bias,
            low_rank_gates: 0,
        },
        Family::NemotronH => LinearAttention {
            kind: LinearKind::Mamba2,
            num_key_heads: field(&["n_groups", "mamba_n_groups"], 8)?,
            key_head_dim: field(&["ssm_state_size"], 128)?,
            num_value_heads: field(&["mamba_num_heads"], 128)?,
            value_head_dim: field(&["mamba_head_dim"], 64)?,
            conv_kernel: conv_kernel(r, family, &["conv_kernel", "mamba_d_conv"])?,
            split_projections: false,
            // vLLM reads `mamba_ssm_cache_dtype`, else float32 (`NemotronHForCausalLMConfig`).
            state_fp32: r.str("mamba_ssm_cache_dtype").is_none_or(|d| d == "float32"),
            conv_bias: r.bool_or("use_conv_bias", r.bool_or("mamba_conv_bias", true)),
            proj_bias: bias,
            chunk_size: field(&["chunk_size", "mamba_chunk_size"], 128)?,
            dt_rank: 0,
            inner_norms: false,
            gated_norm: true,
            out_bias: bias,
            low_rank_gates: 0,
        },
        // Granite 4.0 (`GraniteMoeHybridConfig`: `mamba_expand · hidden` wide) and Falcon-H1
        // (`FalconH1Config`: `mamba_d_ssm`, 1024 by default, `mamba_expand · hidden` when null;
        // the gated norm only with `mamba_rms_norm`; `out_proj`'s bias is `projectors_bias`), in
        // `mamba_n_heads` heads of `mamba_d_head` ("auto": the width / heads).
        _ => {
            let falcon = family == Family::FalconH1;
            let width = match r.json.get("mamba_d_ssm") {
                Some(Value::Number(_)) if falcon => field(&["mamba_d_ssm"], 1024)?,
                None if falcon => 1024,
                _ => field(&["mamba_expand"], 2)? * hidden,
            };
            let heads = field(&["mamba_n_heads"], 128)?;
            let head_dim = match r.json.get("mamba_d_head") {
                Some(Value::Number(_)) => field(&["mamba_d_head"], 0)?,
                _ => width / heads,
            };
            if heads * head_dim != width {
                return Err(r.bad("mamba_n_heads", heads, "mamba_n_heads · mamba_d_head must equal the Mamba width"));
            }
            LinearAttention {
                kind: LinearKind::Mamba2,
                num_key_heads: field(&["mamba_n_groups"], 1)?,
                key_head_dim: field(&["mamba_d_state"], 256)?,
                num_value_heads: heads,
                value_head_dim: head_dim,
                conv_kernel: conv_kernel(r, family, &["mamba_d_conv"])?,
                split_projections: false,
                // No vLLM override: the state takes the model dtype.
                state_fp32: r.str("mamba_ssm_cache_dtype") == Some("float32"),
                conv_bias: r.bool_or("mamba_conv_bias", true),
                proj_bias: r.bool_or("mamba_proj_bias", false),
                chunk_size: field(&["mamba_chunk_size"], 256)?,
                dt_rank: 0,
                inner_norms: false,
                gated_norm: !falcon || r.bool_or("mamba_rms_norm", false),
                out_bias: r.bool_or(if falcon { "projectors_bias" } else { "mamba_proj_bias" }, false),
                low_rank_gates: 0,
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::model::config::parse_config;

    /// The error for `extra` added to a minimal config of `model_type`.
    fn err(model_type: &str, extra: &str) -> String {
        let text = format!(r#"{{"model_type": "{model_type}", "hidden_size": 64, "num_hidden_layers": 8{extra}}}"#);
        parse_config(&text, "m", "config.json").unwrap_err().to_string()
    }

    /// A one-tap convolution is refused, naming the key the config spelled it with: Mamba2Config
    /// says `conv_kernel` (once reported as `mamba_d_conv`), Jamba `mamba_d_conv` (once
    /// `conv_kernel`), and Nemotron-H reads either (its `mamba_d_conv` once reported as
    /// `conv_kernel`).
    #[test]
    fn a_one_tap_convolution_names_the_key_read() {
        let cases = [
            ("mamba2", r#", "conv_kernel": 1"#, "conv_kernel"),
            ("jamba", r#", "mamba_d_conv": 1"#, "mamba_d_conv"),
            ("nemotron_h", r#", "hybrid_override_pattern": "MMMMMMMM", "conv_kernel": 1"#, "conv_kernel"),
            ("nemotron_h", r#", "hybrid_override_pattern": "MMMMMMMM", "mamba_d_conv": 1"#, "mamba_d_conv"),
            ("mamba", r#", "conv_kernel": 1"#, "conv_kernel"),
            ("falcon_mamba", r#", "conv_kernel": 1"#, "conv_kernel"),
            ("falcon_h1", r#", "mamba_d_conv": 1"#, "mamba_d_conv"),
            ("granitemoehybrid", r#", "mamba_d_conv": 1"#, "mamba_d_conv"),
        ];
        for (family, extra, key) in cases {
            let e = err(family, extra);
            assert!(e.contains(&format!("field '{key}' = 1")) && e.contains("at least 2 taps"), "{family}: {e}");
        }
    }

    /// Mamba-1's state size and dt rank are read from the family's own key first, so a bad one
    /// is reported under it, not under the other family's spelling that the config also holds.
    #[test]
    fn mamba1_state_and_dt_rank_errors_name_the_family_key() {
        let e = err("mamba", r#", "time_step_rank": 0, "mamba_dt_rank": 0"#);
        assert!(e.contains("field 'time_step_rank' = 0"), "{e}");
        let e = err("jamba", r#", "mamba_dt_rank": 0"#);
        assert!(e.contains("field 'mamba_dt_rank' = 0"), "{e}");
        let e = err("mamba", r#", "state_size": 0, "mamba_d_state": 16"#);
        assert!(e.contains("field 'state_size' = 0"), "{e}");
        let e = err("jamba", r#", "mamba_d_state": 0, "state_size": 16"#);
        assert!(e.contains("field 'mamba_d_state' = 0"), "{e}");
    }

    /// Nemotron-H's transformers-5 `layers_block_type` is named in its own errors (once reported
    /// as `hybrid_override_pattern`), with that form's block names.
    #[test]
    fn nemotron_layers_block_type_errors_name_that_key() {
        let e = err(
            "nemotron_h",
            r#", "layers_block_type": ["mamba", "mlp", "mamba", "mlp", "mamba", "mlp", "mamba", "ssm"]"#,
        );
        assert!(e.contains("field 'layers_block_type'") && e.contains("mlp or moe"), "{e}");
        let e = err("nemotron_h", r#", "layers_block_type": ["mamba", "mlp"]"#);
        assert!(e.contains("field 'layers_block_type'") && e.contains("one block per layer"), "{e}");
        let e = err("nemotron_h", r#", "hybrid_override_pattern": "M-M-M-M?""#);
        assert!(e.contains("field 'hybrid_override_pattern'") && e.contains("E (MoE)"), "{e}");
    }
}
