//! Which layers attend through a sliding window, and Falcon's KV heads.
//!
//! Sources: transformers `Qwen2Config` / `Qwen3Config` (`use_sliding_window`, then layers from
//! `max_window_layers` on slide), `Gemma2Config` (even layers slide), `Gemma3TextConfig` (layer i
//! is global when (i + 1) % `sliding_window_pattern` == 0, pattern 6: five sliding layers, then
//! one global), `GptOssConfig` (even layers slide, window 128). Newer configs write the pattern
//! out as `layer_types`, which wins when present (gpt-oss's official files do). `Olmo3Config` and
//! `Cohere2Config` slide three layers of four (window 4096); `SmolLM3Config`, with
//! `use_sliding_window`, its layers without RoPE.

use super::defaults::ClassDefaults;
use super::{ConfigError, Reader, MAX_DIM, MAX_LAYERS};
use crate::model::spec::{Family, LayerAttention, LinearAttention};
use serde_json::Value;

/// Falcon: `new_decoder_architecture` uses `num_kv_heads`; the older layout is multi-query
/// (one KV head) unless `multi_query` is false.
pub(super) fn falcon_kv_heads(r: &Reader, heads: u64) -> Result<u64, ConfigError> {
    if r.bool_or("new_decoder_architecture", false) {
        Ok(r.opt_u64(&["num_kv_heads", "n_head_kv"], MAX_DIM)?.unwrap_or(heads))
    } else if r.bool_or("multi_query", true) {
        Ok(1)
    } else {
        Ok(heads)
    }
}

/// The sliding window the family applies, if any (Qwen2, Qwen3 and SmolLM3 only with
/// `use_sliding_window`; Gemma 3, gpt-oss, Olmo 3 and Command R7B always, their class default
/// when the config leaves it out).
pub(super) fn sliding_window(r: &Reader, family: Family, d: &ClassDefaults) -> Result<Option<u64>, ConfigError> {
    let window = || r.opt_u64(&["sliding_window"], 1 << 26);
    match family {
        Family::Mistral | Family::Mixtral | Family::Phi3 | Family::Gemma2 | Family::Starcoder2 | Family::PhiMoe => {
            window()
        }
        Family::Gemma3 | Family::Gemma4 | Family::GptOss | Family::Olmo3 | Family::Cohere2 => {
            Ok(window()?.or(d.sliding_window))
        }
        Family::Qwen2 | Family::Qwen3 | Family::Qwen3Moe | Family::Qwen2Moe | Family::SmolLM3
            if r.bool_or("use_sliding_window", false) =>
        {
            window()
        }
        _ => Ok(None),
    }
}

/// Whether `layer` uses the sliding window: explicit `layer_types` first, else the family's
/// pattern (Gemma 2 and gpt-oss: even layers; Gemma 3: all but every
/// `sliding_window_pattern`-th; Qwen2 and Qwen3: layers from `max_window_layers` on; others: all).
pub(super) fn layer_slides(r: &Reader, family: Family, layer: u64) -> bool {
    if let Some(types) = r.json.get("layer_types").and_then(Value::as_array) {
        return types.get(layer as usize).and_then(Value::as_str) == Some("sliding_attention");
    }
    let field = |name: &str| r.json.get(name).and_then(Value::as_u64);
    // Gemma 4 saved by transformers 5.15 and later may list its full layers in `per_layer_config`
    // alone (E2B: "04", "09", ...), with their own head size.
    if let (Family::Gemma4, Some(Value::Object(entries))) = (family, r.json.get("per_layer_config")) {
        let head_dim = field("head_dim").unwrap_or(256);
        let full = entries.iter().any(|(key, entry)| {
            key.parse::<u64>() == Ok(layer)
                && entry.get("head_dim").and_then(Value::as_u64).is_some_and(|d| d != head_dim)
        });
        return !full;
    }
    match family {
        // `GptOssConfig`: layer i slides when (i + 1) % 2 != 0.
        Family::Gemma2 | Family::GptOss => layer % 2 == 0,
        Family::Gemma3 | Family::Gemma4 => {
            (layer + 1) % field("sliding_window_pattern").filter(|&p| p > 0).unwrap_or(6) != 0
        }
        // `Qwen2Config` and `Qwen3Config` default `max_window_layers` to 28.
        Family::Qwen2 | Family::Qwen3 | Family::Qwen3Moe | Family::Qwen2Moe => {
            layer >= field("max_window_layers").unwrap_or(28)
        }
        // `Olmo3Config` and `Cohere2Config`: three sliding layers, then a full one
        // (`sliding_window_pattern` 4, Cohere's older files `layer_switch`).
        Family::Olmo3 | Family::Cohere2 => {
            let pattern = field("sliding_window_pattern").or(field("layer_switch")).filter(|&p| p > 0).unwrap_or(4);
            (layer + 1) % pattern != 0
        }
        // `SmolLM3Config` slides only its layers without RoPE (`no_rope_layers` 0; every
        // `no_rope_layer_interval`-th by default).
        Family::SmolLM3 => match r.json.get("no_rope_layers").and_then(Value::as_array) {
            Some(flags) if !flags.is_empty() => flags.get(layer as usize).and_then(Value::as_u64) == Some(0),
            _ => (layer + 1) % field("no_rope_layer_interval").filter(|&p| p > 0).unwrap_or(4) == 0,
        },
        _ => true,
    }
}

/// The Gated DeltaNet shape of a hybrid family and its `full_attention_interval` (default 4);
/// `None` for families without linear attention. Qwen3-Next's fields default to
/// `Qwen3NextConfig`'s values (Qwen3-Next-80B-A3B's: 16 key heads and 32 value heads of 128, a
/// 4-tap convolution); Qwen3.5's files give every field.
pub(super) fn linear_attention(r: &Reader, family: Family) -> Result<Option<(LinearAttention, u64)>, ConfigError> {
    if family == Family::KimiLinear {
        return Ok(Some((kimi_delta_attention(r)?, 0)));
    }
    if !matches!(family, Family::Qwen3Next | Family::Qwen35 | Family::Qwen35Moe) {
        return Ok(None);
    }
    let next = family == Family::Qwen3Next;
    let field = |name: &'static str, default: u64| r.u64_or(&[name], next.then_some(default), family, MAX_DIM);
    let la = LinearAttention {
        split_projections: !next,
        state_fp32: r.str("mamba_ssm_dtype") == Some("float32"),
        ..LinearAttention::gated_delta_net(
            field("linear_num_key_heads", 16)?,
            field("linear_num_value_heads", 32)?,
            field("linear_key_head_dim", 128)?,
            field("linear_value_head_dim", 128)?,
            field("linear_conv_kernel_dim", 4)?,
        )
    };
    if la.num_value_heads % la.num_key_heads != 0 {
        return Err(r.bad("linear_num_value_heads", la.num_value_heads, "must be a multiple of linear_num_key_heads"));
    }
    let interval = r.opt_u64(&["full_attention_interval"], MAX_LAYERS)?.unwrap_or(4);
    if let Some(types) = r.json.get("layer_types").and_then(Value::as_array) {
        let layers = r.json.get("num_hidden_layers").and_then(Value::as_u64);
        if layers.is_some_and(|l| l != types.len() as u64) {
            return Err(r.bad("layer_types", types.len() as u64, "must list one type per layer (num_hidden_layers)"));
        }
    }
    Ok(Some((la, interval)))
}

/// Kimi Delta Attention's shape (`linear_attn_config`: `num_heads` heads of `head_dim` for
/// queries, keys and values alike, a `short_conv_kernel_size`-tap convolution), as a Gated
/// DeltaNet with split projections and gates of rank `head_dim` (vLLM's `KimiDeltaAttention`:
/// `f_a_proj`/`f_b_proj` and `g_a_proj`/`g_b_proj` of `head_dim` rank). Kimi-Linear-48B-A3B: 32
/// heads of 128, kernel 4: conv_dim 12,288, a state of 32·128·128 values per layer and sequence
/// (fp32 in vLLM: `MambaStateDtypeCalculator.kda_state_dtype`).
fn kimi_delta_attention(r: &Reader) -> Result<LinearAttention, ConfigError> {
    let family = Family::KimiLinear;
    let Some(la @ Value::Object(_)) = r.json.get("linear_attn_config") else {
        return Err(ConfigError::MissingField {
            source_name: r.source_name.to_string(),
            field: "linear_attn_config",
            family: family.model_type(),
        });
    };
    let inner = Reader { json: la, source_name: r.source_name };
    let heads = inner.req_u64(&["num_heads"], family, MAX_DIM)?;
    let head_dim = inner.req_u64(&["head_dim"], family, MAX_DIM)?;
    let kernel = inner.u64_or(&["short_conv_kernel_size"], Some(4), family, 64)?;
    // vLLM keeps the recurrent state in fp32 whatever the model's dtype (`kda_state_dtype`).
    Ok(LinearAttention {
        low_rank_gates: head_dim,
        state_fp32: true,
        ..LinearAttention::gated_delta_net(heads, heads, head_dim, head_dim, kernel)
    })
}

/// Kimi Linear's full-attention (MLA) layers, 0-based: `linear_attn_config.full_attn_layers`
/// is 1-based, and with `kda_layers` must name every layer once.
pub(super) fn kimi_full_layers(r: &Reader, layers: u64) -> Result<Vec<u64>, ConfigError> {
    let list = |key: &'static str| -> Result<Vec<u64>, ConfigError> {
        let values = r.json.get("linear_attn_config").and_then(|c| c.get(key)).and_then(Value::as_array);
        let Some(values) = values else {
            return Err(ConfigError::MissingField {
                source_name: r.source_name.to_string(),
                field: key,
                family: Family::KimiLinear.model_type(),
            });
        };
        values
            .iter()
            .map(|v| match v.as_u64() {
                Some(n) if (1..=layers).contains(&n) => Ok(n - 1),
                _ => {
                    Err(r.bad(key, v.as_u64().unwrap_or(0), "must list 1-based layer numbers up to num_hidden_layers"))
                }
            })
            .collect()
    };
    let (full, kda) = (list("full_attn_layers")?, list("kda_layers")?);
    let mut all: Vec<u64> = full.iter().chain(&kda).copied().collect();
    all.sort_unstable();
    all.dedup();
    if all.len() as u64 != layers || full.len() + kda.len() != all.len() {
        return Err(r.bad(
            "kda_layers",
            kda.len() as u64,
            "full_attn_layers and kda_layers must name every layer exactly once",
        ));
    }
    Ok(full)
}

/// Layer `layer` of a hybrid model: explicit `layer_types` first (`"linear_attention"`), else
/// every `interval`-th layer full attention (`LayerAttention::hybrid`).
pub(super) fn hybrid_layer(r: &Reader, layer: u64, interval: u64) -> LayerAttention {
    match r.json.get("layer_types").and_then(Value::as_array) {
        Some(types) if types.get(layer as usize).and_then(Value::as_str) == Some("linear_attention") => {
            LayerAttention::Linear
        }
        Some(_) => LayerAttention::Full,
        None => LayerAttention::hybrid(layer, interval),
    }
}

/// Llama 4's chunk length (`attention_chunk_size`, 8192 when absent); `None` when the file sets
/// it to null, which makes every layer full attention.
pub(super) fn llama4_chunk(r: &Reader) -> Result<Option<u64>, ConfigError> {
    match r.json.get("attention_chunk_size") {
        None => Ok(Some(8192)),
        Some(Value::Null) => Ok(None),
        Some(_) => r.opt_u64(&["attention_chunk_size"], 1 << 26),
    }
}

/// Llama 4's layer `layer` (`Llama4TextConfig`): `layer_types` when the file lists them
/// (`"chunked_attention"`), else chunked where `no_rope_layers[layer]` is 1 (a non-empty list),
/// else on every layer but each `no_rope_layer_interval`-th (4), with chunks of `chunk` tokens
/// (`llama4_chunk`; none makes every layer full attention).
pub(super) fn llama4_layer(r: &Reader, layer: u64, chunk: Option<u64>) -> LayerAttention {
    let Some(chunk) = chunk else { return LayerAttention::Full };
    let field = |name: &str| r.json.get(name).and_then(Value::as_array).filter(|a| !a.is_empty());
    let chunked = match (field("layer_types"), field("no_rope_layers")) {
        (Some(types), _) => types.get(layer as usize).and_then(Value::as_str) == Some("chunked_attention"),
        (None, Some(rope)) => rope.get(layer as usize).and_then(Value::as_u64) == Some(1),
        (None, None) => {
            let interval = r.json.get("no_rope_layer_interval").and_then(Value::as_u64).filter(|&i| i > 0).unwrap_or(4);
            (layer + 1) % interval != 0
        }
    };
    if chunked {
        LayerAttention::Chunked { chunk }
    } else {
        LayerAttention::Full
    }
}
