//! A multimodal wrapper's `vision_config`: the SigLIP encoder beside Gemma 3's language model,
//! the Qwen ViTs beside Qwen3.5's, Qwen3-VL's and Qwen2.5-VL's (`parse_qwen_vit`), Llama 4's
//! encoder and adapter (`parse_llama4_vision`), or Mistral 3's Pixtral (`parse_pixtral`).
//!
//! transformers builds it as `SiglipVisionConfig(**vision_config)` (`Gemma3Config.__init__`), so
//! an absent field takes that class's default: hidden_size 768, intermediate_size 3072, 12
//! layers, 12 heads, 3 channels, 224-pixel images, 16-pixel patches. Gemma 3's files give every
//! field but `num_channels` (3). `SiglipVisionTransformer` adds an attention-pooling head unless
//! `vision_use_head` is false, which every Gemma 3 file says; a head is refused, not guessed.

use super::{ConfigError, Reader, Wrapper, MAX_DIM, MAX_LAYERS};
use crate::model::spec::Family;
use crate::model::vision::{AudioTower, VisionKind, VisionTower};
use serde_json::Value;

/// The `model_type` of a SigLIP vision config.
const SIGLIP: &str = "siglip_vision_model";

/// Reads the wrapper's vision config as its kind of tower, projecting into a language model of
/// width `text_hidden`.
pub(super) fn parse_vision(
    json: &Value,
    wrapper: &Wrapper,
    source_name: &str,
    text_hidden: u64,
) -> Result<VisionTower, ConfigError> {
    let key = wrapper.vision;
    let Some(fields @ Value::Object(_)) = json.get(key) else {
        return Err(ConfigError::MissingField {
            source_name: source_name.to_string(),
            field: key,
            family: wrapper.model_type,
        });
    };
    let name = format!("{source_name} ({key})");
    let r = Reader { json: fields, source_name: &name };
    let tower = match wrapper.tower {
        VisionKind::Siglip => parse_siglip(&r, text_hidden)?,
        VisionKind::QwenVit | VisionKind::Qwen25Vit => parse_qwen_vit(&r, wrapper)?,
        VisionKind::Llama4 => parse_llama4_vision(&r, wrapper.family, text_hidden)?,
        VisionKind::Pixtral => parse_pixtral(&r, json, wrapper.family, text_hidden)?,
        VisionKind::Gemma4 => parse_gemma4_vision(&r, text_hidden)?,
        VisionKind::MoonVit => parse_moonvit(&r, text_hidden)?,
    };
    if tower.hidden_size % tower.num_heads != 0 {
        let field = if matches!(tower.kind, VisionKind::QwenVit | VisionKind::Qwen25Vit) {
            "num_heads"
        } else {
            "num_attention_heads"
        };
        return Err(r.bad(field, tower.num_heads, "must divide hidden_size"));
    }
    Ok(tower)
}

/// Kimi K2.5's `vision_config` (`KimiK25VisionConfig`: the checkpoint's `vt_*` names or the plain
/// ones; hidden 1152, MLP 4304, 27 layers, 16 heads, 14-pixel patches, a 64 × 64 position table
/// and 2 × 2 merging by default). The projector maps into `mm_hidden_size`, which the wrapper
/// sets to the language model's width when it is absent or equals the tower's. Layouts vLLM
/// builds differently are refused: `patchmergerv2` (bias-free, RMSNorm after), position
/// embeddings other than `divided_fixed`, and bias-free or RMSNorm blocks.
fn parse_moonvit(r: &Reader, text_hidden: u64) -> Result<VisionTower, ConfigError> {
    let family = Family::DeepseekV3;
    let dim = |names: &[&'static str], default| r.u64_or(names, Some(default), family, MAX_DIM);
    let hidden = dim(&["vt_hidden_size", "hidden_size"], 1152)?;
    for (field, modelled, reason) in [
        ("mm_projector_type", "patchmerger", "only the patchmerger projector is modelled"),
        ("pos_emb_type", "divided_fixed", "only divided_fixed position embeddings are modelled"),
        ("norm_type", "layernorm", "only LayerNorm blocks (the released tower) are modelled"),
    ] {
        if let Some(value) = r.str(field).filter(|v| *v != modelled) {
            return Err(r.bad_text(field, value, reason));
        }
    }
    for field in ["attn_bias", "linear_bias"] {
        if !r.bool_or(field, true) {
            return Err(r.bad_text(field, "false", "only biased blocks (the released tower) are modelled"));
        }
    }
    let merge = match r
        .json
        .get("merge_kernel_size")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(Value::as_u64).collect::<Vec<_>>())
    {
        None => 2,
        Some(sides) => match sides[..] {
            [Some(h), Some(w)] if h == w && (1..=16).contains(&h) => h,
            _ => return Err(r.bad("merge_kernel_size", 0, "must be two equal sides from 1 to 16")),
        },
    };
    let projected = r.opt_u64(&["mm_hidden_size"], MAX_DIM)?.filter(|&w| w != hidden).unwrap_or(text_hidden);
    if projected != text_hidden {
        return Err(r.bad("mm_hidden_size", projected, "must equal the language model's hidden_size"));
    }
    // A position table of at most 4096 × 4096 patches (64 × 64 in the release).
    let height = r.u64_or(&["init_pos_emb_height"], Some(64), family, 4096)?;
    let width = r.u64_or(&["init_pos_emb_width"], Some(64), family, 4096)?;
    Ok(VisionTower {
        hidden_size: hidden,
        intermediate_size: dim(&["vt_intermediate_size", "intermediate_size"], 4304)?,
        num_layers: r.u64_or(&["vt_num_hidden_layers", "num_hidden_layers"], Some(27), family, MAX_LAYERS)?,
        num_heads: dim(&["vt_num_attention_heads", "num_attention_heads"], 16)?,
        patch_size: dim(&["patch_size"], 14)?,
        positions: height * width,
        spatial_merge_size: merge,
        ..VisionTower::base(VisionKind::MoonVit, text_hidden)
    })
}

/// Gemma 4's `vision_config` (`Gemma4VisionConfig`: hidden 768, MLP 3072, 16 layers, 12 heads,
/// 16-pixel patches, 10,240 positions per axis by default; 31B's and 26B-A4B's file: 1152, 4304,
/// 27, 16, `standardize` true; E2B's and E4B's: the defaults with `use_clipped_linears`).
fn parse_gemma4_vision(r: &Reader, text_hidden: u64) -> Result<VisionTower, ConfigError> {
    let family = Family::Gemma4;
    let dim = |name: &'static str, default| r.u64_or(&[name], Some(default), family, MAX_DIM);
    Ok(VisionTower {
        hidden_size: dim("hidden_size", 768)?,
        intermediate_size: dim("intermediate_size", 3072)?,
        num_layers: r.u64_or(&["num_hidden_layers"], Some(16), family, MAX_LAYERS)?,
        num_heads: dim("num_attention_heads", 12)?,
        patch_size: dim("patch_size", 16)?,
        positions: dim("position_embedding_size", 10_240)?,
        standardize: r.bool_or("standardize", false),
        clipped_linears: r.bool_or("use_clipped_linears", false),
        ..VisionTower::base(VisionKind::Gemma4, text_hidden)
    })
}

/// Mistral 3's `vision_config` (`PixtralVisionConfig`: hidden 1024, MLP 4096, 24 layers, 16
/// heads, 16-pixel patches by default; Mistral Small 3.1's file gives every field) and the
/// wrapper's own `spatial_merge_size` (2) and `multimodal_projector_bias` (false). A list of
/// `vision_feature_layer`s (several layers concatenated into the projector) is refused.
fn parse_pixtral(r: &Reader, top: &Value, family: Family, text_hidden: u64) -> Result<VisionTower, ConfigError> {
    let dim = |name: &'static str, default| r.u64_or(&[name], Some(default), family, MAX_DIM);
    if top.get("vision_feature_layer").is_some_and(Value::is_array) {
        return Err(r.bad("vision_feature_layer", 0, "several feature layers into the projector are not modelled"));
    }
    let merge = top.get("spatial_merge_size").and_then(Value::as_u64).filter(|&m| (1..=16).contains(&m)).unwrap_or(2);
    Ok(VisionTower {
        hidden_size: dim("hidden_size", 1024)?,
        intermediate_size: dim("intermediate_size", 4096)?,
        num_layers: r.u64_or(&["num_hidden_layers"], Some(24), family, MAX_LAYERS)?,
        num_heads: dim("num_attention_heads", 16)?,
        patch_size: dim("patch_size", 16)?,
        num_channels: dim("num_channels", 3)?,
        spatial_merge_size: merge,
        projector_bias: top.get("multimodal_projector_bias").and_then(Value::as_bool).unwrap_or(false),
        ..VisionTower::base(VisionKind::Pixtral, text_hidden)
    })
}

/// Llama 4's `vision_config` (`Llama4VisionConfig`). Absent fields take the class's defaults,
/// which are not the released tower's (hidden 768, 448-pixel images, vision_output_dim 7680):
/// the Hub files give hidden 1408, 336-pixel images and 4096 throughout, and the adapter and
/// projector widths must agree for the shapes to chain.
fn parse_llama4_vision(r: &Reader, family: Family, text_hidden: u64) -> Result<VisionTower, ConfigError> {
    let dim = |name: &'static str, default| r.u64_or(&[name], Some(default), family, MAX_DIM);
    let patch_size = dim("patch_size", 14)?;
    let image_size = dim("image_size", 448)?;
    let adapter_width = dim("projector_input_dim", 4096)?;
    for (field, default) in [("projector_output_dim", 4096), ("vision_output_dim", 7680)] {
        let width = dim(field, default)?;
        if width != adapter_width {
            return Err(r.bad(field, width, "must equal projector_input_dim (4096 in every Llama 4 release)"));
        }
    }
    if patch_size > image_size {
        return Err(r.bad("patch_size", patch_size, "must not exceed image_size"));
    }
    Ok(VisionTower {
        hidden_size: dim("hidden_size", 768)?,
        intermediate_size: dim("intermediate_size", 5632)?,
        num_layers: r.u64_or(&["num_hidden_layers"], Some(34), family, MAX_LAYERS)?,
        num_heads: dim("num_attention_heads", 16)?,
        patch_size,
        // One position per patch and one for the class token.
        positions: (image_size / patch_size).pow(2) + 1,
        num_channels: dim("num_channels", 3)?,
        adapter_width,
        ..VisionTower::base(VisionKind::Llama4, text_hidden)
    })
}

/// Qwen's `vision_config`: Qwen3.5's and Qwen3-VL's (`Qwen3VLVisionConfig`; every released
/// file gives depth, widths, heads, `out_hidden_size`, patch, temporal patch, merge size and
/// position count, so they are required), with Qwen3-VL's `deepstack_visual_indexes` as extra
/// mergers; Qwen2.5-VL's (no position table; `in_chans` in its Hub files).
fn parse_qwen_vit(r: &Reader, wrapper: &Wrapper) -> Result<VisionTower, ConfigError> {
    let family = wrapper.family;
    let dim = |name: &'static str| r.req_u64(&[name], family, MAX_DIM);
    let deepstack = r.json.get("deepstack_visual_indexes").and_then(Value::as_array).map_or(0, Vec::len);
    if deepstack > 64 {
        return Err(r.bad("deepstack_visual_indexes", deepstack as u64, "implausibly many deepstack mergers"));
    }
    let positions = match wrapper.tower {
        VisionKind::Qwen25Vit => 0,
        _ => dim("num_position_embeddings")?,
    };
    Ok(VisionTower {
        hidden_size: dim("hidden_size")?,
        intermediate_size: dim("intermediate_size")?,
        num_layers: r.req_u64(&["depth"], family, MAX_LAYERS)?,
        num_heads: dim("num_heads")?,
        patch_size: dim("patch_size")?,
        positions,
        num_channels: r.u64_or(&["in_channels", "in_chans"], Some(3), family, MAX_DIM)?,
        temporal_patch_size: dim("temporal_patch_size")?,
        spatial_merge_size: dim("spatial_merge_size")?,
        deepstack_mergers: deepstack as u64,
        ..VisionTower::base(wrapper.tower, dim("out_hidden_size")?)
    })
}

fn parse_siglip(r: &Reader, text_hidden: u64) -> Result<VisionTower, ConfigError> {
    let fields = r.json;
    let name = r.source_name;
    let bad = |field: &'static str, value: String, reason: &'static str| ConfigError::BadValue {
        source_name: name.to_string(),
        field,
        value,
        reason,
    };
    if let Some(model_type) = r.str("model_type").filter(|t| *t != SIGLIP) {
        return Err(bad(
            "model_type",
            model_type.to_string(),
            "only SigLIP vision towers (siglip_vision_model) are modelled",
        ));
    }
    if fields.get("vision_use_head") != Some(&Value::Bool(false)) {
        let value = fields.get("vision_use_head").map_or("(absent)".to_string(), Value::to_string);
        return Err(bad(
            "vision_use_head",
            value,
            "SigLIP's attention-pooling head is not modelled; Gemma 3 checkpoints set it to false",
        ));
    }
    let dim = |names: &[&'static str], default| r.u64_or(names, Some(default), Family::Gemma3, MAX_DIM);
    let patch_size = dim(&["patch_size"], 16)?;
    let image_size = dim(&["image_size"], 224)?;
    if patch_size > image_size {
        return Err(r.bad("patch_size", patch_size, "must not exceed image_size"));
    }
    Ok(VisionTower {
        hidden_size: dim(&["hidden_size"], 768)?,
        intermediate_size: dim(&["intermediate_size"], 3072)?,
        num_layers: r.u64_or(&["num_hidden_layers"], Some(12), Family::Gemma3, MAX_LAYERS)?,
        num_heads: dim(&["num_attention_heads"], 12)?,
        patch_size,
        positions: (image_size / patch_size).pow(2),
        num_channels: dim(&["num_channels"], 3)?,
        ..VisionTower::base(VisionKind::Siglip, text_hidden)
    })
}

/// Gemma 4 E2B's and E4B's `audio_config` (`Gemma4AudioConfig`: hidden 1024, 12 layers, 8 heads,
/// kernel 5, subsampling channels [128, 32], output 1536, clipped linears, every release's
/// values); `None` where the wrapper has none (31B, 26B-A4B: `"audio_config": null`).
pub(super) fn parse_gemma4_audio(
    json: &Value,
    source_name: &str,
    text_hidden: u64,
) -> Result<Option<AudioTower>, ConfigError> {
    let fields = match json.get("audio_config") {
        None | Some(Value::Null) => return Ok(None),
        Some(fields @ Value::Object(_)) => fields,
        Some(other) => {
            return Err(ConfigError::BadValue {
                source_name: source_name.to_string(),
                field: "audio_config",
                value: other.to_string(),
                reason: "expected an object (Gemma4AudioConfig) or null",
            })
        }
    };
    let name = format!("{source_name} (audio_config)");
    let r = Reader { json: fields, source_name: &name };
    let family = Family::Gemma4;
    let dim = |name: &'static str, default| r.u64_or(&[name], Some(default), family, MAX_DIM);
    let channels = match fields.get("subsampling_conv_channels") {
        None | Some(Value::Null) => (128, 32),
        Some(v) => {
            let pair = v.as_array().map(Vec::as_slice).and_then(|items| match items {
                [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                _ => None,
            });
            // (The first convolution's channels shrink by 4 into the input projection.)
            match pair {
                Some((a, b)) if (4..=MAX_DIM).contains(&a) && (1..=MAX_DIM).contains(&b) => (a, b),
                _ => {
                    return Err(ConfigError::BadValue {
                        source_name: name.clone(),
                        field: "subsampling_conv_channels",
                        value: v.to_string(),
                        reason: "expected two channel counts, the first at least 4",
                    })
                }
            }
        }
    };
    let tower = AudioTower {
        hidden_size: dim("hidden_size", 1024)?,
        num_layers: r.u64_or(&["num_hidden_layers"], Some(12), family, MAX_LAYERS)?,
        num_heads: dim("num_attention_heads", 8)?,
        conv_kernel: dim("conv_kernel_size", 5)?,
        subsampling_channels: channels,
        output_dims: dim("output_proj_dims", 1536)?,
        clipped_linears: r.bool_or("use_clipped_linears", true),
        text_hidden_size: text_hidden,
    };
    Ok(Some(tower))
}
