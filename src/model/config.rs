//! Reads a Hugging Face `config.json` into a `ModelSpec`.
//!
//! Each family's defaults are those of its transformers configuration class (e.g. `Gemma2Config`
//! ties the embeddings and alternates sliding-window and global layers; `FalconConfig` uses a
//! 4·h MLP and LayerNorm with biases; `PhiConfig` keeps separate embeddings and puts biases on
//! every linear layer, lm_head included; `Gemma3TextConfig` fills in the vocabulary, heads,
//! head_dim and window that Gemma 3's official files leave out, see `defaults.rs`; `GptOssConfig`
//! puts biases on q, k, v and o and alternates a 128-token window with full attention). Fields that
//! the class would derive (such as `head_dim = hidden_size / num_attention_heads`) are derived the
//! same way; an explicit `head_dim` wins.
//!
//! A multimodal wrapper whose language model is a supported family (`gemma3`:
//! `Gemma3ForConditionalGeneration`; `qwen3_5`, `qwen3_5_moe`) is read from its `text_config`,
//! and its vision tower and projector from `vision_config` (see `WRAPPERS` and `vision.rs`).

mod attention;
mod defaults;
mod legacy;
mod mamba;
mod moe;
mod quantization;
mod vision;

use super::spec::{
    Biases, Family, GlobalAttention, Indexer, LayerAttention, LayerMlp, Mla, MlpKind, ModelSpec, NormKind,
    PerLayerInput, QkNorm,
};
use super::vision::VisionKind;
use attention::{
    falcon_kv_heads, hybrid_layer, layer_slides, linear_attention, llama4_chunk, llama4_layer, sliding_window,
};
use defaults::ClassDefaults;
use quantization::native_format;
pub use quantization::NativeFormat;
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
    let families = Family::ALL.iter().map(|f| f.model_type());
    let aliases = ALIASES.iter().map(|(model_type, _)| *model_type);
    families.chain(aliases).chain(WRAPPERS.iter().map(|w| w.model_type)).collect::<Vec<_>>().join(", ")
}

/// `model_type`s that name a supported family's architecture under another name: Kimi K2's
/// files say `kimi_k2` beside `DeepseekV3ForCausalLM` (its remote config class, vLLM and
/// llama.cpp all read it as DeepSeek-V3).
/// StableLM 3B-4E1T's first files say `stablelm_epoch` (its remote-code class).
/// Mistral's third generation (Ministral 3, Devstral 2) says `ministral3`: Mistral's dense GQA
/// decoder, whose Llama-4 query temperature (`llama_4_scaling_beta`) adds no tensor and no cache
/// (vLLM maps `Ministral3ForCausalLM` to `MistralForCausalLM`).
/// GLM-4.7-Flash says `glm4_moe_lite`: DeepSeek-V3's latent attention and sigmoid-routed experts
/// under DeepSeek's field names (vLLM caches it as MLA, 512 + 64 a token and layer).
const ALIASES: [(&str, Family); 4] = [
    ("kimi_k2", Family::DeepseekV3),
    ("stablelm_epoch", Family::StableLm),
    ("ministral3", Family::Mistral),
    ("glm4_moe_lite", Family::DeepseekV3),
];

/// A multimodal `model_type` whose language model is a supported family, nested under `key`,
/// with its vision encoder under `vision`.
struct Wrapper {
    model_type: &'static str,
    family: Family,
    key: &'static str,
    vision: &'static str,
    tower: VisionKind,
    /// The language model's fields may sit at the top level beside `vision` instead of under
    /// `key` (Qwen2.5-VL's Hub files; later transformers nest them).
    text_at_top: bool,
}

/// `Gemma3ForConditionalGeneration`: the Gemma 3 language model in `text_config`, beside a SigLIP
/// vision tower and a projector in `vision_config` (27B: 416,866,032 + 6,194,304 parameters).
/// `Llama4ForConditionalGeneration`: Llama 4's language model in `text_config` beside its vision
/// encoder, adapter and projector (850,960,896 + 20,971,520 in Scout and Maverick).
/// `Mistral3ForConditionalGeneration` (Mistral Small 3.1/3.2): a Mistral language model beside
/// Pixtral and its projector (403,305,472 + 35,652,608). `Qwen3VLForConditionalGeneration` and
/// the MoE one: Qwen3 or Qwen3-MoE beside Qwen3.5's ViT with three deepstack mergers (8B:
/// 576,388,336). `Qwen2_5_VLForConditionalGeneration`: Qwen2 beside its RMSNorm ViT (7B:
/// 676,550,144), the text fields at the top level in its Hub files.
/// `Qwen3_5ForConditionalGeneration` and `Qwen3_5MoeForConditionalGeneration`: the Qwen3.5
/// language model in `text_config`, beside its ViT and patch merger in `vision_config`.
/// `Gemma4ForConditionalGeneration`: Gemma 4's language model beside its vision encoder and
/// `embed_vision` projector (31B: 575,743,536). `KimiK25ForConditionalGeneration` (Kimi K2.5,
/// K2.6): Kimi K2's DeepSeek-V3 language model beside MoonViT and its patch merger
/// (416,866,032 + 54,277,888).
const WRAPPERS: [Wrapper; 10] = [
    Wrapper::nested("gemma3", Family::Gemma3, VisionKind::Siglip),
    Wrapper::nested("gemma4", Family::Gemma4, VisionKind::Gemma4),
    Wrapper::nested("qwen3_5", Family::Qwen35, VisionKind::QwenVit),
    Wrapper::nested("qwen3_5_moe", Family::Qwen35Moe, VisionKind::QwenVit),
    Wrapper::nested("llama4", Family::Llama4, VisionKind::Llama4),
    Wrapper::nested("mistral3", Family::Mistral, VisionKind::Pixtral),
    Wrapper::nested("qwen3_vl", Family::Qwen3, VisionKind::QwenVit),
    Wrapper::nested("qwen3_vl_moe", Family::Qwen3Moe, VisionKind::QwenVit),
    Wrapper { text_at_top: true, ..Wrapper::nested("qwen2_5_vl", Family::Qwen2, VisionKind::Qwen25Vit) },
    Wrapper::nested("kimi_k25", Family::DeepseekV3, VisionKind::MoonVit),
];

impl Wrapper {
    /// A wrapper with its language model under `text_config` and its tower under `vision_config`.
    const fn nested(model_type: &'static str, family: Family, tower: VisionKind) -> Wrapper {
        Wrapper { model_type, family, key: "text_config", vision: "vision_config", tower, text_at_top: false }
    }
}

/// A parsed config: the spec plus what the checkpoint says about its own weight format.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedConfig {
    pub spec: ModelSpec,
    /// The checkpoint's stored format when its config states one (e.g. DeepSeek-V3's fp8
    /// block-128 weights: `fp8-block`; an mlx-community 4-bit file: `mlx-4bit`).
    pub native_format: Option<NativeFormat>,
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
    let model_type = json.get("model_type").and_then(Value::as_str).unwrap_or("");
    let nested;
    let wrapper = WRAPPERS.iter().find(|w| w.model_type == model_type);
    let (family, fields) = match wrapper {
        Some(wrapper) => {
            nested = language_model(&json, wrapper, source_name)?;
            (wrapper.family, &nested)
        }
        None => {
            let alias = ALIASES.iter().find(|(name, _)| *name == model_type).map(|(_, family)| *family);
            let family = Family::ALL.into_iter().find(|f| f.model_type() == model_type).or(alias).ok_or_else(|| {
                ConfigError::UnsupportedFamily {
                    source_name: source_name.to_string(),
                    model_type: if model_type.is_empty() { "(absent)".into() } else { model_type.into() },
                }
            })?;
            (family, &json)
        }
    };
    let mut spec = build_spec(&Reader { json: fields, source_name }, family, id)?;
    if let Some(w) = wrapper {
        spec.vision = Some(vision::parse_vision(&json, w, source_name, spec.hidden_size)?);
        if w.family == Family::Gemma4 {
            spec.audio = vision::parse_gemma4_audio(&json, source_name, spec.hidden_size)?;
        }
    }
    let native_format = native_format(&json, spec.moe.is_some());
    Ok(ParsedConfig { spec, native_format })
}

/// The wrapper's nested language-model config, with the top level's dtype and embedding tying
/// where it has none (Gemma 3's `torch_dtype` sits beside `text_config`; Qwen3.5 ties at the
/// top level).
fn language_model(json: &Value, wrapper: &Wrapper, source_name: &str) -> Result<Value, ConfigError> {
    let inner = match (json.get(wrapper.key), json) {
        (Some(Value::Object(inner)), _) => inner,
        (None, Value::Object(top)) if wrapper.text_at_top => top,
        _ => {
            return Err(ConfigError::MissingField {
                source_name: source_name.to_string(),
                field: wrapper.key,
                family: wrapper.model_type,
            })
        }
    };
    let mut inner = inner.clone();
    for key in ["torch_dtype", "dtype", "tie_word_embeddings"] {
        if let (None, Some(v)) = (inner.get(key), json.get(key)) {
            inner.insert(key.to_string(), v.clone());
        }
    }
    Ok(Value::Object(inner))
}

/// Typed access to config fields with the errors above.
struct Reader<'a> {
    json: &'a Value,
    source_name: &'a str,
}

impl Reader<'_> {
    /// The first field among `names` the config sets (present, not null), with its value.
    fn first_set(&self, names: &[&'static str]) -> Option<(&'static str, &Value)> {
        names.iter().find_map(|&name| self.json.get(name).filter(|v| !v.is_null()).map(|v| (name, v)))
    }

    /// The first present, non-null field among `names`, as a positive integer.
    fn opt_u64(&self, names: &[&'static str], max: u64) -> Result<Option<u64>, ConfigError> {
        let Some((name, v)) = self.first_set(names) else { return Ok(None) };
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
        Ok(Some(n))
    }

    fn req_u64(&self, names: &[&'static str], family: Family, max: u64) -> Result<u64, ConfigError> {
        self.u64_or(names, None, family, max)
    }

    /// The field, else the class default, else a missing-field error.
    fn u64_or(
        &self,
        names: &[&'static str],
        default: Option<u64>,
        family: Family,
        max: u64,
    ) -> Result<u64, ConfigError> {
        self.opt_u64(names, max)?.or(default).ok_or_else(|| ConfigError::MissingField {
            source_name: self.source_name.to_string(),
            field: names[0],
            family: family.model_type(),
        })
    }

    /// A count that may be 0, else `default` (out-of-range values count as 0).
    fn count_or(&self, name: &str, default: u64) -> u64 {
        self.json.get(name).map_or(default, |v| v.as_u64().filter(|&n| n <= MAX_LAYERS).unwrap_or(0))
    }

    fn bool_or(&self, name: &str, default: bool) -> bool {
        self.json.get(name).and_then(Value::as_bool).unwrap_or(default)
    }

    fn str(&self, name: &str) -> Option<&str> {
        self.json.get(name).and_then(Value::as_str)
    }

    fn bad(&self, field: &'static str, value: u64, reason: &'static str) -> ConfigError {
        self.bad_text(field, &value.to_string(), reason)
    }

    fn bad_text(&self, field: &'static str, value: &str, reason: &'static str) -> ConfigError {
        ConfigError::BadValue { source_name: self.source_name.to_string(), field, value: value.to_string(), reason }
    }
}

fn build_spec(r: &Reader, family: Family, id: &str) -> Result<ModelSpec, ConfigError> {
    use Family::*;
    let d = ClassDefaults::of(family);
    // (BLOOM's oldest files say `n_embed`; MPT's `d_model`, `n_layers`, `n_heads`.)
    let hidden = r.req_u64(&["hidden_size", "n_embd", "d_model", "n_embed"], family, MAX_DIM)?;
    let hybrid = mamba::mamba_layout(r, family)?;
    let layers = match &hybrid {
        Some(h) => h.mixers.len() as u64,
        None => r.req_u64(&["num_hidden_layers", "n_layer", "num_layers", "n_layers"], family, MAX_LAYERS)?,
    };
    let heads = r.u64_or(&["num_attention_heads", "n_head", "n_heads"], d.num_attention_heads, family, MAX_DIM)?;
    let vocab = r.u64_or(&["vocab_size"], d.vocab_size, family, MAX_VOCAB)?;
    legacy::refuse_unmodelled(r, family, hidden)?;
    let kv_heads = match family {
        Falcon => falcon_kv_heads(r, heads)?,
        _ => legacy::kv_heads(r, family, heads)?
            .or(r.opt_u64(&["num_key_value_heads"], MAX_DIM)?)
            .or(d.num_key_value_heads)
            .unwrap_or(heads),
    };
    if heads % kv_heads != 0 {
        return Err(r.bad("num_key_value_heads", kv_heads, "must divide num_attention_heads"));
    }
    // Nemotron-H's older files name it `attention_head_dim`; `Cohere2Config` overwrites any
    // head_dim with hidden / heads.
    let explicit_head_dim = match family {
        Cohere2 => None,
        _ => r.opt_u64(&["head_dim", "attention_head_dim"], MAX_DIM)?.or(d.head_dim),
    };
    let head_dim = match explicit_head_dim {
        Some(d) => d,
        None if hidden % heads == 0 => hidden / heads,
        // Latent attention sizes its heads by qk_nope + qk_rope (below), whatever hidden / heads
        // is: GLM-4.7-Flash's 20 heads over 2048.
        None if matches!(family, DeepseekV2 | DeepseekV3 | DeepseekV32 | KimiLinear)
            && r.opt_u64(&["kv_lora_rank"], MAX_DIM)?.is_some() =>
        {
            0
        }
        None => return Err(r.bad("num_attention_heads", heads, "must divide hidden_size when head_dim is absent")),
    };
    let legacy_intermediate = legacy::intermediate(r, family, hidden)?;
    let intermediate = match legacy_intermediate {
        Some(width) => width,
        None => match family {
            Falcon => r.opt_u64(&["ffn_hidden_size"], MAX_DIM)?.unwrap_or(4 * hidden),
            // Every Qwen3.5-MoE layer is sparse; its config has no dense intermediate size.
            Qwen35Moe => r.req_u64(&["moe_intermediate_size"], family, MAX_DIM)?,
            // OLMoE's experts are `intermediate_size` wide, 2048 by `OlmoeConfig`'s default.
            Olmoe => r.u64_or(&["intermediate_size"], Some(2048), family, MAX_DIM)?,
            // Pure state-space models have no MLP; their `intermediate_size` is the mixer's width
            // (`expand · hidden` when absent), kept for display.
            Mamba | FalconMamba | Mamba2 => r.opt_u64(&["intermediate_size"], MAX_DIM)?.unwrap_or(2 * hidden),
            // Llama 4's dense layers are `intermediate_size_mlp` wide; `intermediate_size` sizes
            // its experts and shared expert.
            Llama4 => r.u64_or(&["intermediate_size_mlp"], Some(16_384), family, MAX_DIM)?,
            // Granite 4.0's dense checkpoints: the shared MLP is the MLP (`intermediate_size` then
            // sizes experts that do not exist).
            GraniteMoeHybrid if mamba::granite_experts(r) == 0 => {
                r.req_u64(&["shared_intermediate_size"], family, MAX_DIM)?
            }
            _ => r.req_u64(&["intermediate_size"], family, MAX_DIM)?,
        },
    };
    // (Kimi Linear's file gives only `model_max_length`, 1,048,576.)
    let max_context = r
        .opt_u64(&["max_position_embeddings", "max_seq_len", "n_positions", "model_max_length"], 1 << 26)?
        .unwrap_or(d.max_context);
    let falcon_bias = r.bool_or("bias", false);
    let biases = match family {
        Qwen2 => Biases { qkv: true, ..Biases::default() },
        GptNeox => Biases { qkv: true, attn_out: true, mlp: true, lm_head: false },
        Phi => Biases { qkv: true, attn_out: true, mlp: true, lm_head: true },
        // `NemotronHAttention` builds q, k, v and o without biases whatever `attention_bias` says.
        NemotronH => Biases { mlp: r.bool_or("mlp_bias", false), ..Biases::default() },
        Falcon => Biases { qkv: falcon_bias, attn_out: falcon_bias, mlp: falcon_bias, lm_head: false },
        DeepseekV2 | DeepseekV3 | DeepseekV32 => {
            Biases { attn_out: r.bool_or("attention_bias", false), ..Biases::default() }
        }
        // `Glm4Attention` and `Glm4MoeAttention`: q, k and v biased by `attention_bias` (true in
        // every release; `Glm4Config`'s default), `o_proj` never.
        Glm4 | Glm4Moe => Biases { qkv: r.bool_or("attention_bias", family == Glm4), ..Biases::default() },
        // `GptOssConfig.attention_bias` defaults to true; its MLP is all experts, whose biases
        // are the `Moe`'s.
        GptOss => {
            let attn = r.bool_or("attention_bias", true);
            Biases { qkv: attn, attn_out: attn, ..Biases::default() }
        }
        // `Qwen2MoeAttention`: q, k and v biased by `qkv_bias` (default true), o never.
        Qwen2Moe => Biases { qkv: r.bool_or("qkv_bias", true), ..Biases::default() },
        // `use_bias` (default true) on every projection and on c_fc and c_proj.
        Starcoder2 => {
            let bias = r.bool_or("use_bias", true);
            Biases { qkv: bias, attn_out: bias, mlp: bias, lm_head: false }
        }
        PhiMoe => {
            let attn = r.bool_or("attention_bias", false);
            Biases { qkv: attn, attn_out: attn, mlp: false, lm_head: r.bool_or("lm_head_bias", false) }
        }
        // GPT-2, StarCoder and BLOOM bias every linear; OPT unless `enable_bias` is false; MPT
        // none unless `no_bias` is false; GPT-J its MLP and lm_head, not its attention.
        Gpt2 | GptBigCode | Bloom => Biases { qkv: true, attn_out: true, mlp: true, lm_head: false },
        Opt | Mpt => {
            let bias = if family == Opt { r.bool_or("enable_bias", true) } else { !r.bool_or("no_bias", true) };
            Biases { qkv: bias, attn_out: bias, mlp: bias, lm_head: false }
        }
        GptJ => Biases { qkv: false, attn_out: false, mlp: true, lm_head: true },
        // StableLM's o_proj never has a bias; `use_qkv_bias` (StableLM 2 1.6B) biases the rest.
        StableLm => Biases { qkv: r.bool_or("use_qkv_bias", false), ..Biases::default() },
        // `SeedOssAttention`: q, k and v by `attention_bias`, o by `attention_out_bias`
        // (`SeedOssConfig`: true and false, as Seed-OSS-36B writes them).
        SeedOss => Biases {
            qkv: r.bool_or("attention_bias", true),
            attn_out: r.bool_or("attention_out_bias", false),
            mlp: r.bool_or("mlp_bias", false),
            lm_head: false,
        },
        // `Ernie4_5Attention`, `Ernie4_5MLP` and the lm_head are biased by `use_bias` (false in
        // every release; the experts' biases it would add are not modelled).
        Ernie45 | Ernie45Moe => {
            let bias = r.bool_or("use_bias", false);
            Biases { qkv: bias, attn_out: bias, mlp: bias, lm_head: bias }
        }
        // InternLM2's remote config defaults `bias` to true; every release writes false.
        InternLm2 => {
            let bias = r.bool_or("bias", true);
            Biases { qkv: bias, attn_out: bias, ..Biases::default() }
        }
        _ => {
            let attn = r.bool_or("attention_bias", false);
            Biases { qkv: attn, attn_out: attn, mlp: r.bool_or("mlp_bias", false), lm_head: false }
        }
    };
    // MiniMax-Text-01's lightning (linear) attention layers are 0s in `attn_type_list`.
    let lightning =
        r.json.get("attn_type_list").and_then(Value::as_array).is_some_and(|l| l.iter().any(|t| t.as_u64() == Some(0)));
    if family == MiniMaxM2 && lightning {
        return Err(ConfigError::BadValue {
            source_name: r.source_name.to_string(),
            field: "attn_type_list",
            value: "(has 0s)".into(),
            reason: "MiniMax's lightning-attention layers are not modelled; M2 models attend fully in every layer",
        });
    }
    if family == Phi && r.bool_or("qk_layernorm", false) {
        return Err(ConfigError::BadValue {
            source_name: r.source_name.to_string(),
            field: "qk_layernorm",
            value: "true".into(),
            reason: "per-head q/k LayerNorms are not modelled (no released phi checkpoint uses them)",
        });
    }
    let norms_per_layer = match family {
        // GLM-4's `post_self_attn_layernorm` and `post_mlp_layernorm` beside the usual two.
        Gemma2 | Gemma3 | Glm4 => 4,
        // Gemma 4's MoE layers add `pre_feedforward_layernorm_2`, `post_feedforward_layernorm_1`
        // and `_2` around the experts.
        Gemma4 => 4 + 3 * r.bool_or("enable_moe_block", false) as u64,
        Falcon if !r.bool_or("new_decoder_architecture", false) && r.bool_or("parallel_attn", true) => 1,
        // One input_layernorm feeds attention and MLP in parallel.
        Phi => 1,
        // One norm before each block's single mixer; Cohere's one LayerNorm feeds attention
        // and the MLP in parallel, as StableLM's does with `use_parallel_residual`.
        // (Mamba's blocks hold a norm and their mixer, no MLP.)
        NemotronH | Cohere | Cohere2 | GptJ | Mamba | FalconMamba | Mamba2 => 1,
        StableLm if r.bool_or("use_parallel_residual", false) => 1,
        _ => 2,
    };
    let mla = match family {
        DeepseekV2 | DeepseekV3 | DeepseekV32 | KimiLinear => Some(Mla {
            q_lora_rank: r.opt_u64(&["q_lora_rank"], MAX_DIM)?,
            kv_lora_rank: r.req_u64(&["kv_lora_rank"], family, MAX_DIM)?,
            qk_nope_head_dim: r.req_u64(&["qk_nope_head_dim"], family, MAX_DIM)?,
            qk_rope_head_dim: r.req_u64(&["qk_rope_head_dim"], family, MAX_DIM)?,
            v_head_dim: r.req_u64(&["v_head_dim"], family, MAX_DIM)?,
            indexer: match family {
                DeepseekV32 => Some(Indexer {
                    heads: r.u64_or(&["index_n_heads"], Some(64), family, MAX_DIM)?,
                    head_dim: r.u64_or(&["index_head_dim"], Some(128), family, MAX_DIM)?,
                }),
                _ => None,
            },
        }),
        _ => None,
    };
    let moe = moe::parse_moe(r, family, intermediate)?;
    let window = sliding_window(r, family, &d)?;
    let linear = linear_attention(r, family)?;
    let (layer_attention, layer_mlp, linear_attention) = match hybrid {
        Some(h) => (h.mixers, h.mlps, h.mamba),
        None => {
            let chunk = if family == Llama4 { llama4_chunk(r)? } else { None };
            let kimi_full = if family == KimiLinear { Some(attention::kimi_full_layers(r, layers)?) } else { None };
            let mixers = (0..layers)
                .map(|layer| match (linear, window) {
                    _ if family == Llama4 => llama4_layer(r, layer, chunk),
                    _ if kimi_full.as_ref().is_some_and(|full| full.contains(&layer)) => LayerAttention::Full,
                    _ if kimi_full.is_some() => LayerAttention::Linear,
                    (Some((_, interval)), _) => hybrid_layer(r, layer, interval),
                    (None, Some(w)) if layer_slides(r, family, layer) => LayerAttention::Sliding { window: w },
                    _ => LayerAttention::Full,
                })
                .collect();
            let mlps = match family {
                Llama4 => moe::llama4_moe_layers(r, layers)?,
                Ernie45Moe => moe::ernie_moe_layers(r, layers)?,
                _ => LayerMlp::standard(layers, moe.as_ref()),
            };
            (mixers, mlps, linear.map(|(la, _)| la))
        }
    };
    if layer_mlp.contains(&LayerMlp::Moe) && moe.is_none() {
        return Err(r.bad("n_routed_experts", 0, "the layer pattern has expert layers (E) but the config no experts"));
    }
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
        tie_word_embeddings: r.bool_or("tie_word_embeddings", d.tie_word_embeddings),
        // Nemotron-H's MLPs and experts are up and down only, with a squared ReLU between.
        mlp: if matches!(family, Falcon | GptNeox | Phi | NemotronH | Starcoder2) || legacy_intermediate.is_some() {
            MlpKind::Plain
        } else {
            MlpKind::Gated
        },
        // (PhiMoE's norms are LayerNorms although its config calls their epsilon rms_norm_eps;
        // MPT's are LayerNorms without biases under `no_bias`: a weight alone, as an RMSNorm's.)
        norm: match family {
            Mpt if r.bool_or("no_bias", true) => NormKind::RmsNorm,
            Falcon | GptNeox | Phi | Starcoder2 | PhiMoe | StableLm => NormKind::LayerNorm,
            _ if legacy_intermediate.is_some() => NormKind::LayerNorm,
            _ => NormKind::RmsNorm,
        },
        norms_per_layer,
        biases,
        fused_qkv: matches!(family, Phi3 | Falcon | GptNeox | InternLm2 | Gpt2 | GptBigCode | Bloom | Mpt),
        // (Qwen3.5-MoE's checkpoints fuse each layer's routed experts into one `gate_up_proj`,
        // as transformers 5 holds every MoE's experts; its shared expert keeps gate and up apart.)
        // (Granite 4.0's `input_linear` holds gate and up, in the shared MLP and in the experts.)
        // (GLM-4's dense MLP is Phi-3's: one `gate_up_proj`.)
        // (Gemma 4's experts are fused, its dense MLP not: `push_layer` keeps that one apart.)
        fused_gate_up: matches!(family, Phi3 | GptOss | GraniteMoeHybrid | Glm4)
            || (family == Gemma4 && r.bool_or("enable_moe_block", false)),
        qk_norm: match family {
            Qwen3 | Qwen3Moe | Gemma3 | Gemma4 | Qwen3Next | Qwen35 | Qwen35Moe => QkNorm::PerHead,
            // GLM-4.5 norms q and k per head; GLM-4.5-Air does not.
            Glm4Moe if r.bool_or("use_qk_norm", false) => QkNorm::PerHead,
            Olmo2 | Olmo3 | Olmoe => QkNorm::Full,
            // StableLM 2 12B: a LayerNorm per head (`q_layernorm.norms.N`), each its own weight.
            StableLm if r.bool_or("qk_layernorm", false) => QkNorm::Full,
            // MiniMax M2's "per_layer" norms span the projection; "per_head" ones a head.
            MiniMaxM2 if r.bool_or("use_qk_norm", true) => match r.str("qk_norm_type") {
                Some("per_head") => QkNorm::PerHead,
                _ => QkNorm::Full,
            },
            // Command R+: a LayerNorm per head, each with its own `head_dim` weights.
            Cohere if r.bool_or("use_qk_norm", false) => QkNorm::Full,
            _ => QkNorm::None,
        },
        attn_sinks: family == GptOss,
        attn_output_gate: family == Qwen3Next
            || (matches!(family, Qwen35 | Qwen35Moe) && r.bool_or("attn_output_gate", true)),
        layer_attention,
        layer_mlp,
        mla,
        linear_attention,
        // Qwen3.5's `mtp_num_hidden_layers`, Qwen3-Next's, DeepSeek-V3's and GLM-4.5's
        // `num_nextn_predict_layers` (vLLM's default 1 where Qwen3-Next's file leaves it out).
        mtp_layers: match family {
            Qwen35 | Qwen35Moe => r.count_or("mtp_num_hidden_layers", 0),
            Qwen3Next => r.count_or("num_nextn_predict_layers", 1),
            DeepseekV3 | DeepseekV32 | Glm4Moe => r.count_or("num_nextn_predict_layers", 0),
            _ => 0,
        },
        moe,
        logit_softcap: r.json.get("final_logit_softcapping").is_some_and(|v| v.as_f64().is_some_and(|c| c > 0.0)),
        native_dtype_bytes: match r.str("torch_dtype").or(r.str("dtype")) {
            Some("float32") => 4,
            _ => 2,
        },
        vision: None,
        position_table: legacy::position_table(r, family)?,
        embedding_norm: family == Bloom,
        parallel_ssm: family == FalconH1,
        global_attention: if family == Gemma4 {
            Some(gemma4_global_attention(r, heads, kv_heads, head_dim)?)
        } else {
            None
        },
        kv_shared_layers: if family == Gemma4 { gemma4_kv_shared_layers(r, layers)? } else { 0 },
        per_layer_input: if family == Gemma4 { gemma4_per_layer_input(r, vocab)? } else { None },
        double_wide_mlp: family == Gemma4 && r.bool_or("use_double_wide_mlp", false),
        audio: None,
    })
}

/// Gemma 4's per-layer inputs (`hidden_size_per_layer_input`, 0 or absent for none as in 31B's
/// and 26B-A4B's files; the table `vocab_size_per_layer_input` rows deep, the vocabulary's by
/// default).
fn gemma4_per_layer_input(r: &Reader, vocab: u64) -> Result<Option<PerLayerInput>, ConfigError> {
    if r.json.get("hidden_size_per_layer_input").and_then(Value::as_u64) == Some(0) {
        return Ok(None);
    }
    let Some(width) = r.opt_u64(&["hidden_size_per_layer_input"], MAX_DIM)? else { return Ok(None) };
    let vocab = r.u64_or(&["vocab_size_per_layer_input"], Some(vocab), Family::Gemma4, MAX_VOCAB)?;
    Ok(Some(PerLayerInput { width, vocab }))
}

/// Gemma 4's `num_kv_shared_layers`: the last layers that read earlier layers' caches; some layer
/// must keep its own before them.
fn gemma4_kv_shared_layers(r: &Reader, layers: u64) -> Result<u64, ConfigError> {
    let shared = match r.json.get("num_kv_shared_layers") {
        None | Some(Value::Null) => return Ok(0),
        Some(v) => v.as_u64().ok_or_else(|| ConfigError::BadValue {
            source_name: r.source_name.to_string(),
            field: "num_kv_shared_layers",
            value: v.to_string(),
            reason: "expected a layer count",
        })?,
    };
    if shared >= layers {
        return Err(r.bad("num_kv_shared_layers", shared, "must leave layers that keep their own cache"));
    }
    Ok(shared)
}

/// Gemma 4's full-attention layers (`Gemma4TextConfig.__post_init__`): heads of `global_head_dim`
/// (default 512) over `num_global_key_value_heads` when `attention_k_eq_v` (else the sliding
/// layers' KV heads). transformers 5.15 and later save them as `per_layer_config` instead,
/// `{layer: {head_dim, num_key_value_heads}}` for the full layers (entries with the sliding
/// layers' own shape say nothing); its entries must agree.
fn gemma4_global_attention(
    r: &Reader,
    heads: u64,
    kv_heads: u64,
    head_dim: u64,
) -> Result<GlobalAttention, ConfigError> {
    let k_eq_v = r.bool_or("attention_k_eq_v", false);
    let (global_dim, global_kv) = match r.json.get("per_layer_config") {
        None | Some(Value::Null) => {
            let kv = r.opt_u64(&["num_global_key_value_heads"], MAX_DIM)?.filter(|_| k_eq_v);
            (r.opt_u64(&["global_head_dim"], MAX_DIM)?.unwrap_or(512), kv.unwrap_or(kv_heads))
        }
        Some(Value::Object(entries)) => {
            let mut global = None;
            for (layer, entry) in entries {
                let name = format!("{} (per_layer_config.{layer})", r.source_name);
                let bad = |reason| ConfigError::BadValue {
                    source_name: name.clone(),
                    field: "per_layer_config",
                    value: entry.to_string(),
                    reason,
                };
                if !entry.is_object() {
                    return Err(bad("expected {\"head_dim\": N, \"num_key_value_heads\": N} for a full layer"));
                }
                let inner = Reader { json: entry, source_name: &name };
                let shape = (
                    inner.opt_u64(&["head_dim"], MAX_DIM)?.unwrap_or(head_dim),
                    inner.opt_u64(&["num_key_value_heads"], MAX_DIM)?.unwrap_or(kv_heads),
                );
                match global {
                    _ if shape == (head_dim, kv_heads) => {}
                    Some(g) if g != shape => return Err(bad("full layers of two different shapes are not modelled")),
                    _ => global = Some(shape),
                }
            }
            global.unwrap_or((head_dim, kv_heads))
        }
        Some(other) => {
            return Err(ConfigError::BadValue {
                source_name: r.source_name.to_string(),
                field: "per_layer_config",
                value: other.to_string(),
                reason: "expected an object of {layer: {head_dim, num_key_value_heads}}",
            })
        }
    };
    if heads % global_kv != 0 {
        return Err(r.bad("num_global_key_value_heads", global_kv, "must divide num_attention_heads"));
    }
    Ok(GlobalAttention { head_dim: global_dim, num_kv_heads: global_kv, k_eq_v })
}

#[cfg(test)]
mod tests;
