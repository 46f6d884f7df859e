//! Reads a Hugging Face `config.json` into a `ModelSpec`.
//!
//! Each family's defaults are those of its transformers configuration class (e.g. `Gemma2Config`
//! ties the embeddings and alternates sliding-window and global layers; `FalconConfig` uses a
//! 4·h MLP and LayerNorm with biases; `PhiConfig` keeps separate embeddings and puts biases on
//! every linear layer, lm_head included). Fields that the class would derive (such as `head_dim =
//! hidden_size / num_attention_heads`) are derived the same way; an explicit `head_dim` wins.

use super::spec::{Biases, Family, LayerAttention, Mla, MlpKind, ModelSpec, Moe, NormKind};
use serde_json::Value;
use thiserror::Error;

/// Why a `config.json` could not be turned into a model spec.
#[derive(Debug, Error, PartialEq)]
pub enum ConfigError {
    #[error("{source_name}: not valid JSON ({reason}); pass a Hugging Face config.json")]
    NotJson { source_name: String, reason: String },
    #[error("{source_name}: model_type '{model_type}' is not supported; supported: {}", supported_types())]
    UnsupportedFamily { source_name: String, model_type: String },
    #[error("{source_name}: missing field '{field}' (required for {family} models)")]
    MissingField { source_name: String, field: &'static str, family: &'static str },
    #[error("{source_name}: field '{field}' = {value} is invalid: {reason}")]
    BadValue { source_name: String, field: &'static str, value: String, reason: &'static str },
}

fn supported_types() -> String {
    Family::ALL.iter().map(|f| f.model_type()).collect::<Vec<_>>().join(", ")
}

/// A parsed config: the spec plus what the checkpoint says about its own weight format.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedConfig {
    pub spec: ModelSpec,
    /// The checkpoint's stored format when `quantization_config` names one (e.g. DeepSeek-V3's
    /// fp8 block-128 weights: `fp8-block`), as a weight-format id.
    pub native_format: Option<String>,
}

/// Upper bounds that no real model reaches; anything above is a typo or a corrupt file.
const MAX_DIM: u64 = 1 << 20;
const MAX_LAYERS: u64 = 10_000;
const MAX_VOCAB: u64 = 16 << 20;
const MAX_EXPERTS: u64 = 65_536;

/// Parses `config.json` text. `source_name` names the input in error messages.
pub fn parse_config(text: &str, id: &str, source_name: &str) -> Result<ParsedConfig, ConfigError> {
    let json: Value = serde_json::from_str(text)
        .map_err(|e| ConfigError::NotJson { source_name: source_name.to_string(), reason: e.to_string() })?;
    let reader = Reader { json: &json, source_name };
    let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or("");
    let family = Family::ALL.into_iter().find(|f| f.model_type() == model_type).ok_or_else(|| {
        ConfigError::UnsupportedFamily {
            source_name: source_name.to_string(),
            model_type: if model_type.is_empty() { "(absent)".into() } else { model_type.into() },
        }
    })?;
    let spec = build_spec(&reader, family, id)?;
    Ok(ParsedConfig { spec, native_format: native_format(&json) })
}

/// Typed access to config fields with the errors above.
struct Reader<'a> {
    json: &'a Value,
    source_name: &'a str,
}

impl Reader<'_> {
    /// The first present, non-null field among `names`, as a positive integer.
    fn opt_u64(&self, names: &[&'static str], max: u64) -> Result<Option<u64>, ConfigError> {
        for &name in names {
            match self.json.get(name) {
                None | Some(Value::Null) => continue,
                Some(v) => {
                    let bad = |reason| ConfigError::BadValue {
                        source_name: self.source_name.to_string(),
                        field: name,
                        value: v.to_string(),
                        reason,
                    };
                    let n = v.as_u64().ok_or_else(|| bad("expected a positive integer"))?;
                    if n == 0 {
                        return Err(bad("must be at least 1"));
                    }
                    if n > max {
                        return Err(bad("implausibly large for a transformer"));
                    }
                    return Ok(Some(n));
                }
            }
        }
        Ok(None)
    }

    fn req_u64(&self, names: &[&'static str], family: Family, max: u64) -> Result<u64, ConfigError> {
        self.opt_u64(names, max)?.ok_or_else(|| ConfigError::MissingField {
            source_name: self.source_name.to_string(),
            field: names[0],
            family: family.model_type(),
        })
    }

    fn bool_or(&self, name: &str, default: bool) -> bool {
        self.json.get(name).and_then(Value::as_bool).unwrap_or(default)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }

    fn bad(&self, field: &'static str, value: u64, reason: &'static str) -> ConfigError {
        ConfigError::BadValue { source_name: self.source_name.to_string(), field, value: value.to_string(), reason }
    }
}

fn build_spec(r: &Reader, family: Family, id: &str) -> Result<ModelSpec, ConfigError> {
    use Family::*;
    let hidden = r.req_u64(&["hidden_size", "n_embd", "d_model"], family, MAX_DIM)?;
    let layers = r.req_u64(&["num_hidden_layers", "n_layer", "num_layers"], family, MAX_LAYERS)?;
    let heads = r.req_u64(&["num_attention_heads", "n_head"], family, MAX_DIM)?;
    let vocab = r.req_u64(&["vocab_size"], family, MAX_VOCAB)?;
    let kv_heads = match family {
        Falcon => falcon_kv_heads(r, heads)?,
        _ => r.opt_u64(&["num_key_value_heads"], MAX_DIM)?.unwrap_or(heads),
    };
    if heads % kv_heads != 0 {
        return Err(r.bad("num_key_value_heads", kv_heads, "must divide num_attention_heads"));
    }
    let head_dim = match r.opt_u64(&["head_dim"], MAX_DIM)? {
        Some(d) => d,
        None if hidden % heads == 0 => hidden / heads,
        None => return Err(r.bad("num_attention_heads", heads, "must divide hidden_size when head_dim is absent")),
    };
    let intermediate = match family {
        Falcon => r.opt_u64(&["ffn_hidden_size"], MAX_DIM)?.unwrap_or(4 * hidden),
        _ => r.req_u64(&["intermediate_size"], family, MAX_DIM)?,
    };
    let max_context = r.opt_u64(&["max_position_embeddings", "max_seq_len"], 1 << 26)?.unwrap_or(2048);
    let tie_default = matches!(family, Gemma | Gemma2 | Falcon);
    let falcon_bias = r.bool_or("bias", false);
    let biases = match family {
        Qwen2 => Biases { qkv: true, ..Biases::default() },
        GptNeox => Biases { qkv: true, attn_out: true, mlp: true, lm_head: false },
        Phi => Biases { qkv: true, attn_out: true, mlp: true, lm_head: true },
        Falcon => Biases { qkv: falcon_bias, attn_out: falcon_bias, mlp: falcon_bias, lm_head: false },
        DeepseekV2 | DeepseekV3 => Biases { attn_out: r.bool_or("attention_bias", false), ..Biases::default() },
        _ => {
            let attn = r.bool_or("attention_bias", false);
            Biases { qkv: attn, attn_out: attn, mlp: r.bool_or("mlp_bias", false), lm_head: false }
        }
    };
    if family == Phi && r.bool_or("qk_layernorm", false) {
        return Err(ConfigError::BadValue {
            source_name: r.source_name.to_string(),
            field: "qk_layernorm",
            value: "true".into(),
            reason: "per-head q/k LayerNorms are not modelled (no released phi checkpoint uses them)",
        });
    }
    let norms_per_layer = match family {
        Gemma2 => 4,
        Falcon if !r.bool_or("new_decoder_architecture", false) && r.bool_or("parallel_attn", true) => 1,
        // One input_layernorm feeds attention and MLP in parallel.
        Phi => 1,
        _ => 2,
    };
    let mla = match family {
        DeepseekV2 | DeepseekV3 => Some(Mla {
            q_lora_rank: r.opt_u64(&["q_lora_rank"], MAX_DIM)?,
            kv_lora_rank: r.req_u64(&["kv_lora_rank"], family, MAX_DIM)?,
            qk_nope_head_dim: r.req_u64(&["qk_nope_head_dim"], family, MAX_DIM)?,
            qk_rope_head_dim: r.req_u64(&["qk_rope_head_dim"], family, MAX_DIM)?,
            v_head_dim: r.req_u64(&["v_head_dim"], family, MAX_DIM)?,
        }),
        _ => None,
    };
    let moe = parse_moe(r, family, intermediate)?;
    let window = sliding_window(r, family)?;
    let layer_attention = (0..layers)
        .map(|layer| match window {
            Some(w) if layer_slides(r, family, layer) => LayerAttention::Sliding { window: w },
            _ => LayerAttention::Full,
        })
        .collect();
    Ok(ModelSpec {
        id: id.to_string(),
        family,
        hidden_size: hidden,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: if mla.is_some() { heads } else { kv_heads },
        head_dim: mla.map_or(head_dim, |m| m.qk_nope_head_dim + m.qk_rope_head_dim),
        vocab_size: vocab,
        intermediate_size: intermediate,
        max_context,
        tie_word_embeddings: r.bool_or("tie_word_embeddings", tie_default),
        mlp: if matches!(family, Falcon | GptNeox | Phi) { MlpKind::Plain } else { MlpKind::Gated },
        norm: if matches!(family, Falcon | GptNeox | Phi) { NormKind::LayerNorm } else { NormKind::RmsNorm },
        norms_per_layer,
        biases,
        fused_qkv: matches!(family, Phi3 | Falcon | GptNeox),
        fused_gate_up: family == Phi3,
        layer_attention,
        mla,
        moe,
        logit_softcap: r.json.get("final_logit_softcapping").is_some_and(|v| v.as_f64().is_some_and(|c| c > 0.0)),
        native_dtype_bytes: match r.str("torch_dtype").or(r.str("dtype")) {
            Some("float32") => 4,
            _ => 2,
        },
    })
}

/// Falcon: `new_decoder_architecture` uses `num_kv_heads`; the older layout is multi-query
/// (one KV head) unless `multi_query` is false.
fn falcon_kv_heads(r: &Reader, heads: u64) -> Result<u64, ConfigError> {
    if r.bool_or("new_decoder_architecture", false) {
        Ok(r.opt_u64(&["num_kv_heads", "n_head_kv"], MAX_DIM)?.unwrap_or(heads))
    } else if r.bool_or("multi_query", true) {
        Ok(1)
    } else {
        Ok(heads)
    }
}

fn parse_moe(r: &Reader, family: Family, intermediate: u64) -> Result<Option<Moe>, ConfigError> {
    match family {
        Family::Mixtral => Ok(Some(Moe {
            num_experts: r.req_u64(&["num_local_experts"], family, MAX_EXPERTS)?,
            experts_per_token: r.req_u64(&["num_experts_per_tok"], family, MAX_EXPERTS)?,
            expert_intermediate_size: intermediate,
            shared_intermediate_size: 0,
            first_dense_layers: 0,
            router_bias: false,
        })),
        Family::DeepseekV2 | Family::DeepseekV3 => {
            let Some(experts) = r.opt_u64(&["n_routed_experts"], MAX_EXPERTS)? else {
                return Ok(None);
            };
            let expert_size = r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?;
            let shared = r.opt_u64(&["n_shared_experts"], MAX_EXPERTS)?.unwrap_or(0);
            Ok(Some(Moe {
                num_experts: experts,
                experts_per_token: r.req_u64(&["num_experts_per_tok"], family, MAX_EXPERTS)?,
                expert_intermediate_size: expert_size,
                shared_intermediate_size: shared * expert_size,
                first_dense_layers: r.opt_u64(&["first_k_dense_replace"], MAX_LAYERS)?.unwrap_or(0),
                router_bias: r.str("topk_method") == Some("noaux_tc"),
            }))
        }
        _ => Ok(None),
    }
}

/// The sliding window the family applies, if any (Qwen2 only with `use_sliding_window`).
fn sliding_window(r: &Reader, family: Family) -> Result<Option<u64>, ConfigError> {
    match family {
        Family::Mistral | Family::Mixtral | Family::Phi3 | Family::Gemma2 => r.opt_u64(&["sliding_window"], 1 << 26),
        Family::Qwen2 if r.bool_or("use_sliding_window", false) => r.opt_u64(&["sliding_window"], 1 << 26),
        _ => Ok(None),
    }
}

/// Whether `layer` uses the sliding window: explicit `layer_types` first, else the family's
/// pattern (Gemma 2: even layers; Qwen2: layers from `max_window_layers` on; others: all).
fn layer_slides(r: &Reader, family: Family, layer: u64) -> bool {
    if let Some(types) = r.json.get("layer_types").and_then(Value::as_array) {
        return types.get(layer as usize).and_then(Value::as_str) == Some("sliding_attention");
    }
    match family {
        Family::Gemma2 => layer % 2 == 0,
        Family::Qwen2 => layer >= r.json.get("max_window_layers").and_then(Value::as_u64).unwrap_or(0),
        _ => true,
    }
}

/// Weight-format id of a pre-quantized checkpoint, from its `quantization_config`.
fn native_format(json: &Value) -> Option<String> {
    let q = json.get("quantization_config")?;
    let method = q.get("quant_method").and_then(Value::as_str)?;
    let bits = q.get("bits").and_then(Value::as_u64);
    let group = q.get("group_size").and_then(Value::as_i64);
    let id = match method {
        "fp8" if q.get("weight_block_size").is_some() => "fp8-block".to_string(),
        "fp8" => "fp8".to_string(),
        "gptq" if bits == Some(4) && group == Some(32) => "gptq-g32".to_string(),
        "gptq" if bits == Some(4) => "gptq".to_string(),
        "awq" if bits == Some(4) => "awq".to_string(),
        "mxfp4" => "mxfp4".to_string(),
        "bitsandbytes" if q.get("load_in_4bit").and_then(Value::as_bool) == Some(true) => {
            if q.get("bnb_4bit_use_double_quant").and_then(Value::as_bool) == Some(true) {
                "nf4-dq".to_string()
            } else {
                "nf4".to_string()
            }
        }
        "bitsandbytes" => "int8".to_string(),
        _ => return None,
    };
    Some(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensors::{inventory, param_counts};

    use crate::model::testing::LLAMA_2_7B_CONFIG as LLAMA_2_7B;

    #[test]
    fn llama_defaults_are_the_transformers_class_defaults() {
        let spec = parse_config(LLAMA_2_7B, "llama-2-7b", "test").unwrap().spec;
        assert_eq!((spec.num_kv_heads, spec.head_dim), (32, 128));
        assert!(!spec.tie_word_embeddings);
        assert_eq!(spec.biases, Biases::default());
        assert!(spec.layer_attention.iter().all(|a| *a == LayerAttention::Full));
        assert_eq!(param_counts(&spec, &inventory(&spec)).total, 6_738_415_616);
    }

    #[test]
    fn gemma2_alternates_sliding_and_global_layers_and_ties_embeddings() {
        let text = r#"{"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
            "num_hidden_layers": 42, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 256, "vocab_size": 256000, "sliding_window": 4096}"#;
        let spec = parse_config(text, "g", "test").unwrap().spec;
        assert!(spec.tie_word_embeddings);
        assert_eq!(spec.norms_per_layer, 4);
        assert_eq!(spec.layer_attention[0], LayerAttention::Sliding { window: 4096 });
        assert_eq!(spec.layer_attention[1], LayerAttention::Full);
    }

    #[test]
    fn qwen2_slides_only_when_asked() {
        let text = r#"{"model_type": "qwen2", "hidden_size": 64, "intermediate_size": 128,
            "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
            "vocab_size": 100, "sliding_window": 32, "use_sliding_window": false}"#;
        let spec = parse_config(text, "q", "test").unwrap().spec;
        assert!(spec.layer_attention.iter().all(|a| *a == LayerAttention::Full));
        assert!(spec.biases.qkv && !spec.biases.attn_out);
    }

    /// Published counts: phi-1.5 1,418,270,720 and phi-2 2,779,683,840 (Hugging Face Hub
    /// safetensors metadata). Per layer 4·(h²+h) + 2·h·i + i + h + 2·h, plus an untied lm_head
    /// with a vocab-long bias: phi-2 = 2·131,072,000 + 51,200 + 32·78,671,360 + 5,120.
    #[test]
    fn phi_has_biases_everywhere_one_layernorm_and_an_lm_head_bias() {
        let phi = |h: u64, i: u64, layers: u64, rotary: f64| {
            let text = serde_json::json!({"model_type": "phi", "hidden_size": h, "intermediate_size": i,
                "num_hidden_layers": layers, "num_attention_heads": 32, "vocab_size": 51200,
                "partial_rotary_factor": rotary, "tie_word_embeddings": false, "qk_layernorm": false});
            parse_config(&text.to_string(), "phi", "test").unwrap().spec
        };
        let phi_1_5 = phi(2048, 8192, 24, 0.5);
        assert_eq!((phi_1_5.num_kv_heads, phi_1_5.norms_per_layer, phi_1_5.mlp), (32, 1, MlpKind::Plain));
        assert_eq!(phi_1_5.biases, Biases { qkv: true, attn_out: true, mlp: true, lm_head: true });
        assert!(!phi_1_5.fused_qkv && !phi_1_5.tie_word_embeddings && phi_1_5.norm == NormKind::LayerNorm);
        assert_eq!(param_counts(&phi_1_5, &inventory(&phi_1_5)).total, 1_418_270_720);
        let phi_2 = phi(2560, 10240, 32, 0.4);
        assert_eq!(param_counts(&phi_2, &inventory(&phi_2)).total, 2_779_683_840);
        let qk_norm = r#"{"model_type": "phi", "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "vocab_size": 100, "qk_layernorm": true}"#;
        let err = parse_config(qk_norm, "p", "cfg.json").unwrap_err().to_string();
        assert!(err.contains("'qk_layernorm' = true"), "{err}");
    }

    #[test]
    fn quantization_config_names_the_native_format() {
        let text = LLAMA_2_7B.replace(
            "\"torch_dtype\"",
            r#""quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}, "torch_dtype""#,
        );
        assert_eq!(parse_config(&text, "x", "t").unwrap().native_format.as_deref(), Some("gptq"));
    }

    #[test]
    fn bad_configs_name_the_field() {
        let err = |text: &str| parse_config(text, "x", "cfg.json").unwrap_err().to_string();
        assert!(err("{").contains("not valid JSON"));
        assert!(err(r#"{"model_type": "mamba"}"#).contains("'mamba' is not supported"));
        assert!(err(r#"{"model_type": "llama"}"#).contains("missing field 'hidden_size'"));
        let zero = LLAMA_2_7B.replace("\"hidden_size\": 4096", "\"hidden_size\": 0");
        assert!(err(&zero).contains("'hidden_size' = 0"));
        let gqa = LLAMA_2_7B.replace("\"vocab_size\"", "\"num_key_value_heads\": 5, \"vocab_size\"");
        assert!(err(&gqa).contains("must divide num_attention_heads"));
        let huge = LLAMA_2_7B.replace("\"num_hidden_layers\": 32", "\"num_hidden_layers\": 99999999");
        assert!(err(&huge).contains("implausibly large"));
    }

    proptest::proptest! {
        /// Arbitrary JSON objects with llama-ish fields of arbitrary values never panic.
        #[test]
        fn arbitrary_values_never_panic(
            hidden in proptest::num::i64::ANY, layers in proptest::num::i64::ANY,
            heads in 0i64..100, kv in 0i64..100, family in 0usize..Family::ALL.len(), text in ".{0,40}",
        ) {
            let json = serde_json::json!({
                "model_type": Family::ALL[family].model_type(), "hidden_size": hidden,
                "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
                "vocab_size": 1000, "intermediate_size": 64, "n_routed_experts": 8,
                "moe_intermediate_size": 16, "num_experts_per_tok": 2, "num_local_experts": 4,
                "kv_lora_rank": 16, "qk_nope_head_dim": 8, "qk_rope_head_dim": 8, "v_head_dim": 8,
                "sliding_window": text.len(), "layer_types": [text.clone()],
            });
            let _ = parse_config(&json.to_string(), "p", "prop");
            let _ = parse_config(&text, "p", "prop");
        }
    }
}
