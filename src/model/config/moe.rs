//! Mixture-of-experts fields: Mixtral, DeepSeek-V2/V3, Qwen3-MoE, Qwen3-Next, gpt-oss,
//! Nemotron-H, Granite 4.0, GLM-4.5, Llama 4, MiniMax M2, Qwen2-MoE, PhiMoE and OLMoE.
//!
//! Qwen3-MoE (transformers `Qwen3MoeDecoderLayer`): layer i has a sparse block when i is not in
//! `mlp_only_layers` and (i + 1) % `decoder_sparse_step` == 0; the others a dense MLP of
//! `intermediate_size`. The sparse block is a router `gate` (num_experts × hidden, no bias) and
//! `num_experts` SwiGLU experts of `moe_intermediate_size`, with no shared expert. Every released
//! checkpoint (30B-A3B, 235B-A22B) has step 1 and no dense layers; dense layers are representable
//! only as a leading run (`mlp_only_layers` = [0, 1, ..., k-1]), so other layouts are rejected.
//!
//! Qwen3-Next (transformers `Qwen3NextSparseMoeBlock`): Qwen3-MoE's layer rule, router and
//! experts, plus an always-on shared expert of `shared_expert_intermediate_size` whose output is
//! scaled by `sigmoid(shared_expert_gate(x))`, a `1 × hidden` linear. 80B-A3B: 512 experts of 512,
//! 10 per token, a shared expert of 512.
//!
//! Qwen3.5-MoE (`Qwen3_5MoeSparseMoeBlock`): the same block in every layer (no dense layers,
//! no `intermediate_size`), its experts stored fused (`experts.gate_up_proj`).
//!
//! gpt-oss (transformers `GptOssMLP`): every layer is sparse. `GptOssTopKRouter` is a weight
//! [num_local_experts, hidden] with a bias [num_local_experts]; `GptOssExperts` holds each
//! expert's fused `gate_up_proj` (hidden → 2·intermediate_size, gate and up interleaved) with a
//! bias of 2·intermediate_size and `down_proj` (intermediate_size → hidden) with a bias of
//! hidden. No shared expert.

use super::{ConfigError, Reader, MAX_DIM, MAX_EXPERTS, MAX_LAYERS};
use crate::model::spec::{Family, LayerMlp, Moe};
use serde_json::Value;

pub(super) fn parse_moe(r: &Reader, family: Family, intermediate: u64) -> Result<Option<Moe>, ConfigError> {
    match family {
        // Kimi Linear (`KimiSparseMoeBlock`) holds DeepSeek-V3's experts and shared experts under
        // its own names (`num_experts`, `num_experts_per_token`, `num_shared_experts`) and marks
        // its score-corrected router by its sigmoid rather than `topk_method`.
        Family::DeepseekV2 | Family::DeepseekV3 | Family::DeepseekV32 | Family::KimiLinear => {
            let Some(experts) = r.opt_u64(&["n_routed_experts", "num_experts"], MAX_EXPERTS)? else {
                return Ok(None);
            };
            let expert_size = r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?;
            let shared = r.opt_u64(&["n_shared_experts", "num_shared_experts"], MAX_EXPERTS)?.unwrap_or(0);
            let per_token = ["num_experts_per_tok", "num_experts_per_token"];
            Ok(Some(Moe {
                num_experts: experts,
                experts_per_token: r.req_u64(&per_token, family, MAX_EXPERTS)?,
                expert_intermediate_size: expert_size,
                shared_intermediate_size: shared * expert_size,
                first_dense_layers: r.opt_u64(&["first_k_dense_replace"], MAX_LAYERS)?.unwrap_or(0),
                shared_expert_gate: false,
                router_bias: r.str("topk_method") == Some("noaux_tc")
                    || r.str("moe_router_activation_func") == Some("sigmoid"),
                expert_biases: false,
            }))
        }
        // Mixtral's block (`w1`, `w3`, `w2` experts of `intermediate_size`, a bias-free router),
        // `PhiMoESparseMoeBlock` (the same) and `OlmoeSparseMoeBlock` (`gate_proj`/`up_proj`/
        // `down_proj` experts); their classes' defaults: 8 experts, 2 per token (Mixtral), 16
        // and 2 (Phi-3.5-MoE), 64 and 8 (OLMoE).
        // (Jamba's `JambaSparseMoeBlock` is the same: 16 experts, 2 per token.)
        Family::Mixtral | Family::PhiMoe | Family::Olmoe | Family::Jamba => {
            let (experts, per_token) = match family {
                Family::Olmoe => (64, 8),
                Family::PhiMoe | Family::Jamba => (16, 2),
                _ => (8, 2),
            };
            Ok(Some(Moe {
                num_experts: r.u64_or(&["num_local_experts", "num_experts"], Some(experts), family, MAX_EXPERTS)?,
                experts_per_token: r.u64_or(&["num_experts_per_tok"], Some(per_token), family, MAX_EXPERTS)?,
                expert_intermediate_size: intermediate,
                shared_intermediate_size: 0,
                first_dense_layers: 0,
                shared_expert_gate: false,
                router_bias: false,
                expert_biases: false,
            }))
        }
        Family::Qwen3Moe => Ok(Some(Moe {
            num_experts: r.req_u64(&["num_experts"], family, MAX_EXPERTS)?,
            experts_per_token: r.req_u64(&["num_experts_per_tok"], family, MAX_EXPERTS)?,
            expert_intermediate_size: r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?,
            shared_intermediate_size: 0,
            first_dense_layers: qwen3_dense_prefix(r)?,
            shared_expert_gate: false,
            router_bias: false,
            expert_biases: false,
        })),
        Family::Qwen35Moe => Ok(Some(Moe {
            num_experts: r.req_u64(&["num_experts"], family, MAX_EXPERTS)?,
            experts_per_token: r.req_u64(&["num_experts_per_tok"], family, MAX_EXPERTS)?,
            expert_intermediate_size: r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?,
            shared_intermediate_size: r.req_u64(&["shared_expert_intermediate_size"], family, MAX_DIM)?,
            first_dense_layers: 0,
            shared_expert_gate: true,
            router_bias: false,
            expert_biases: false,
        })),
        // Qwen3-Next's block and `Qwen2MoeSparseMoeBlock`: a shared expert scaled by its sigmoid
        // gate, under Qwen3-MoE's layer rule; the classes' defaults are Qwen3-Next-80B-A3B's (512
        // experts of 512, 10 per token, a shared expert of 512) and Qwen1.5-MoE-A2.7B's (60 of
        // 1408, 4 per token, 5632).
        Family::Qwen3Next | Family::Qwen2Moe => {
            let (experts, per_token, size, shared) =
                if family == Family::Qwen3Next { (512, 10, 512, 512) } else { (60, 4, 1408, 5632) };
            Ok(Some(Moe {
                num_experts: r.u64_or(&["num_experts"], Some(experts), family, MAX_EXPERTS)?,
                experts_per_token: r.u64_or(&["num_experts_per_tok"], Some(per_token), family, MAX_EXPERTS)?,
                expert_intermediate_size: r.u64_or(&["moe_intermediate_size"], Some(size), family, MAX_DIM)?,
                shared_intermediate_size: r.u64_or(
                    &["shared_expert_intermediate_size"],
                    Some(shared),
                    family,
                    MAX_DIM,
                )?,
                first_dense_layers: qwen3_dense_prefix(r)?,
                shared_expert_gate: true,
                router_bias: false,
                expert_biases: false,
            }))
        }
        // `Gemma4TextDecoderLayer` with `enable_moe_block`: 128 experts of `moe_intermediate_size`
        // (their gate and up fused, `experts.gate_up_proj`), 8 per token, beside the layer's dense
        // MLP of `intermediate_size`, which runs for every token as a shared expert does (26B-A4B:
        // 704 and 2112). The router adds a scale per channel and per expert (`router.scale`,
        // `router.per_expert_scale`).
        Family::Gemma4 if r.bool_or("enable_moe_block", false) => Ok(Some(Moe {
            num_experts: r.req_u64(&["num_experts"], family, MAX_EXPERTS)?,
            experts_per_token: r.req_u64(&["top_k_experts"], family, MAX_EXPERTS)?,
            expert_intermediate_size: r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?,
            shared_intermediate_size: intermediate,
            first_dense_layers: 0,
            shared_expert_gate: false,
            router_bias: false,
            expert_biases: false,
        })),
        // `GptOssConfig` names the expert count `num_local_experts` (alias `num_experts`).
        Family::GptOss => Ok(Some(Moe {
            num_experts: r.req_u64(&["num_local_experts", "num_experts"], family, MAX_EXPERTS)?,
            experts_per_token: r.req_u64(&["num_experts_per_tok", "experts_per_token"], family, MAX_EXPERTS)?,
            expert_intermediate_size: intermediate,
            shared_intermediate_size: 0,
            first_dense_layers: 0,
            shared_expert_gate: false,
            router_bias: false,
            expert_biases: true,
        })),
        // `NemotronHMoE`: a router [experts, hidden] with DeepSeek-V3's fp32 score-correction
        // bias, squared-ReLU experts (up and down), and one shared MLP of
        // `moe_shared_expert_intermediate_size`. Only the blocks marked `E` hold it.
        Family::NemotronH => {
            let Some(experts) = r.opt_u64(&["n_routed_experts"], MAX_EXPERTS)? else { return Ok(None) };
            if r.json.get("moe_latent_size").is_some_and(|v| !v.is_null()) {
                return Err(ConfigError::BadValue {
                    source_name: r.source_name.to_string(),
                    field: "moe_latent_size",
                    value: r.json["moe_latent_size"].to_string(),
                    reason: "latent expert projections are not modelled yet; plan a Nemotron-H without them",
                });
            }
            Ok(Some(Moe {
                num_experts: experts,
                experts_per_token: r.req_u64(&["num_experts_per_tok"], family, MAX_EXPERTS)?,
                expert_intermediate_size: r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?,
                shared_intermediate_size: match r.json.get("n_shared_experts").and_then(Value::as_u64) {
                    Some(0) => 0,
                    _ => r.req_u64(&["moe_shared_expert_intermediate_size"], family, MAX_DIM)?,
                },
                first_dense_layers: 0,
                shared_expert_gate: false,
                router_bias: true,
                expert_biases: false,
            }))
        }
        // `GraniteMoeHybridMoE`: a router `router.layer` [experts, hidden] without bias and SwiGLU
        // experts of `intermediate_size` (gate and up fused in `input_linear`), beside the shared
        // MLP of `shared_intermediate_size` that every layer has.
        Family::GraniteMoeHybrid if super::mamba::granite_experts(r) > 0 => Ok(Some(Moe {
            num_experts: r.u64_or(&["num_local_experts"], Some(8), family, MAX_EXPERTS)?,
            experts_per_token: r.u64_or(&["num_experts_per_tok"], Some(2), family, MAX_EXPERTS)?,
            expert_intermediate_size: intermediate,
            shared_intermediate_size: r.u64_or(&["shared_intermediate_size"], Some(1024), family, MAX_DIM)?,
            first_dense_layers: 0,
            shared_expert_gate: false,
            router_bias: false,
            expert_biases: false,
        })),
        // `Glm4MoeMoE` (transformers `modeling_glm4_moe.py`): DeepSeek-V3's block. The router
        // `gate` [experts, hidden] always carries an fp32 `e_score_correction_bias`; one shared MLP
        // of `n_shared_experts · moe_intermediate_size`; dense layers before
        // `first_k_dense_replace`. Defaults are `Glm4MoeConfig`'s (GLM-4.5-Air's shape).
        Family::Glm4Moe => {
            let expert_size = r.u64_or(&["moe_intermediate_size"], Some(1408), family, MAX_DIM)?;
            let shared = r.json.get("n_shared_experts").map_or(Some(1), Value::as_u64).unwrap_or(0);
            Ok(Some(Moe {
                num_experts: r.u64_or(&["n_routed_experts", "num_local_experts"], Some(128), family, MAX_EXPERTS)?,
                experts_per_token: r.u64_or(&["num_experts_per_tok"], Some(8), family, MAX_EXPERTS)?,
                expert_intermediate_size: expert_size,
                shared_intermediate_size: shared.min(MAX_EXPERTS) * expert_size,
                first_dense_layers: r.json.get("first_k_dense_replace").map_or(Some(1), Value::as_u64).unwrap_or(0),
                shared_expert_gate: false,
                router_bias: true,
                expert_biases: false,
            }))
        }
        // `Ernie4_5_MoeSparseMoeBlock`: a bias-free router [experts, hidden] kept in fp32 (counted
        // at the checkpoint's 16 bits) and its `moe_statics.e_score_correction_bias` [1, experts];
        // the `moe_num_shared_experts` shared experts are one MLP of their summed width (21B-A3B:
        // 2 × 1536); `Ernie4_5_MoeConfig`'s defaults are the 21B-A3B's (64 experts, 6 per
        // token). Which layers hold experts: `ernie_moe_layers`.
        Family::Ernie45Moe => {
            let expert_size = r.u64_or(&["moe_intermediate_size"], Some(1536), family, MAX_DIM)?;
            // (0 in the 300B-A47B.)
            let shared = r.json.get("moe_num_shared_experts").map_or(Some(2), Value::as_u64).unwrap_or(0);
            Ok(Some(Moe {
                num_experts: r.u64_or(&["moe_num_experts"], Some(64), family, MAX_EXPERTS)?,
                experts_per_token: r.u64_or(&["moe_k"], Some(6), family, MAX_EXPERTS)?,
                expert_intermediate_size: expert_size,
                shared_intermediate_size: shared.min(MAX_EXPERTS) * expert_size,
                first_dense_layers: ernie_moe_start(r)?,
                shared_expert_gate: false,
                // (vLLM loads the bias only under `moe_use_aux_free`, which the releases set.)
                router_bias: r.bool_or("moe_use_aux_free", true),
                expert_biases: false,
            }))
        }
        // `Llama4TextMoe`: a bias-free router [experts, hidden] (sigmoid of the top-k logits), the
        // experts' gate and up stored fused (`experts.gate_up_proj`, counted here as two
        // matrices, as llama.cpp splits them) and a shared expert, all `intermediate_size` wide.
        Family::Llama4 => {
            let expert_size = r.u64_or(&["intermediate_size"], Some(8192), family, MAX_DIM)?;
            Ok(Some(Moe {
                num_experts: r.u64_or(&["num_local_experts"], Some(16), family, MAX_EXPERTS)?,
                experts_per_token: r.u64_or(&["num_experts_per_tok"], Some(1), family, MAX_EXPERTS)?,
                expert_intermediate_size: expert_size,
                shared_intermediate_size: expert_size,
                first_dense_layers: 0,
                shared_expert_gate: false,
                router_bias: false,
                expert_biases: false,
            }))
        }
        // `MiniMaxM2SparseMoeBlock`: an fp32 router `gate` [experts, hidden] and, with
        // `use_routing_bias`, an fp32 `e_score_correction_bias` beside it; SwiGLU experts
        // (`w1`, `w3`, `w2`) of `intermediate_size`; no shared expert in any release
        // (`shared_intermediate_size` 0).
        Family::MiniMaxM2 => {
            let shared = r.json.get("shared_intermediate_size").and_then(Value::as_u64).unwrap_or(0);
            if shared > 0 {
                return Err(r.bad("shared_intermediate_size", shared, "MiniMax shared experts are not modelled"));
            }
            Ok(Some(Moe {
                num_experts: r.u64_or(&["num_local_experts", "num_experts"], Some(256), family, MAX_EXPERTS)?,
                experts_per_token: r.u64_or(&["num_experts_per_tok"], Some(8), family, MAX_EXPERTS)?,
                expert_intermediate_size: intermediate,
                shared_intermediate_size: 0,
                first_dense_layers: 0,
                shared_expert_gate: false,
                router_bias: r.bool_or("use_routing_bias", true),
                expert_biases: false,
            }))
        }
        _ => Ok(None),
    }
}

/// Llama 4's MoE layers: `moe_layers` when the file lists them, else every
/// `interleave_moe_layer_step`-th layer, (i + 1) % step == 0 (Scout: all; Maverick: the odd
/// ones); the others dense.
pub(super) fn llama4_moe_layers(r: &Reader, layers: u64) -> Result<Vec<LayerMlp>, ConfigError> {
    let step = r.opt_u64(&["interleave_moe_layer_step"], MAX_LAYERS)?.unwrap_or(1);
    let listed: Option<Vec<u64>> = match r.json.get("moe_layers") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(Value::as_u64)
                .collect::<Option<_>>()
                .ok_or_else(|| r.bad("moe_layers", items.len() as u64, "expected a list of layer indices"))?,
        ),
        Some(_) => return Err(r.bad("moe_layers", 0, "expected a list of layer indices")),
    };
    Ok((0..layers)
        .map(|l| {
            let moe = listed.as_ref().map_or((l + 1) % step == 0, |list| list.contains(&l));
            if moe {
                LayerMlp::Moe
            } else {
                LayerMlp::Dense
            }
        })
        .collect())
}

/// ERNIE 4.5's expert layers: layer `l` holds experts when `(l + 1) % moe_layer_interval == 0`
/// and `moe_layer_start_index <= l <= moe_layer_end_index` (−1 or absent: the last layer); the
/// others a dense MLP of `intermediate_size`. 21B-A3B: layers 1-27 of 28; 300B-A47B: 3-53 of 54.
pub(super) fn ernie_moe_layers(r: &Reader, layers: u64) -> Result<Vec<LayerMlp>, ConfigError> {
    let start = ernie_moe_start(r)?;
    let interval = r.u64_or(&["moe_layer_interval"], Some(1), Family::Ernie45Moe, MAX_LAYERS)?;
    let end = match r.json.get("moe_layer_end_index") {
        None | Some(Value::Null) => layers.saturating_sub(1),
        Some(v) if v.as_i64() == Some(-1) => layers.saturating_sub(1),
        Some(v) => v.as_u64().ok_or_else(|| {
            let reason = "expected a layer index or -1 (a multimodal ERNIE's list is not modelled)";
            r.bad_text("moe_layer_end_index", &v.to_string(), reason)
        })?,
    };
    Ok((0..layers)
        .map(|l| if (l + 1) % interval == 0 && (start..=end).contains(&l) { LayerMlp::Moe } else { LayerMlp::Dense })
        .collect())
}

/// ERNIE 4.5's first expert layer, `moe_layer_start_index` (1 by default; 0 is valid).
fn ernie_moe_start(r: &Reader) -> Result<u64, ConfigError> {
    match r.json.get("moe_layer_start_index") {
        None | Some(Value::Null) => Ok(1),
        Some(v) => v
            .as_u64()
            .map(|start| start.min(MAX_LAYERS))
            .ok_or_else(|| r.bad_text("moe_layer_start_index", &v.to_string(), "expected a layer index (0 or more)")),
    }
}

/// The leading dense layers of a Qwen3-MoE or Qwen3-Next config, or an error naming the field whose layout a
/// spec cannot hold.
fn qwen3_dense_prefix(r: &Reader) -> Result<u64, ConfigError> {
    let bad = |field: &'static str, value: String, reason: &'static str| ConfigError::BadValue {
        source_name: r.source_name.to_string(),
        field,
        value,
        reason,
    };
    let step = r.opt_u64(&["decoder_sparse_step"], MAX_LAYERS)?.unwrap_or(1);
    if step > 1 {
        let reason = "only decoder_sparse_step 1 (every layer sparse) is modelled, as in every released Qwen3-MoE";
        return Err(bad("decoder_sparse_step", step.to_string(), reason));
    }
    let dense = match r.json.get("mlp_only_layers") {
        None | Some(Value::Null) => return Ok(0),
        Some(Value::Array(layers)) => layers.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>().map(|mut l| {
            l.sort_unstable();
            l.dedup();
            l
        }),
        Some(_) => None,
    };
    let value = || r.json.get("mlp_only_layers").map_or(String::new(), Value::to_string);
    match dense {
        Some(layers) if layers.iter().enumerate().all(|(i, &l)| l == i as u64) => Ok(layers.len() as u64),
        Some(_) => {
            Err(bad("mlp_only_layers", value(), "only a leading run of dense layers [0, 1, ..., k-1] is modelled"))
        }
        None => Err(bad("mlp_only_layers", value(), "expected a list of layer indices")),
    }
}
