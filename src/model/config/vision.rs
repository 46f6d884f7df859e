//! A multimodal wrapper's `vision_config`: the SigLIP encoder beside Gemma 3's language model.
//!
//! transformers builds it as `SiglipVisionConfig(**vision_config)` (`Gemma3Config.__init__`), so
//! an absent field takes that class's default: hidden_size 768, intermediate_size 3072, 12
//! layers, 12 heads, 3 channels, 224-pixel images, 16-pixel patches. Gemma 3's files give every
//! field but `num_channels` (3). `SiglipVisionTransformer` adds an attention-pooling head unless
//! `vision_use_head` is false, which every Gemma 3 file says; a head is refused, not guessed.

use super::{ConfigError, Reader, MAX_DIM, MAX_LAYERS};
use crate::model::spec::Family;
use crate::model::vision::VisionTower;
use serde_json::Value;

/// The `model_type` of a SigLIP vision config.
const SIGLIP: &str = "siglip_vision_model";

/// Reads `json[key]` as a SigLIP tower projecting into a language model of width `text_hidden`.
pub(super) fn parse_vision(
    json: &Value,
    key: &'static str,
    wrapper: &'static str,
    source_name: &str,
    text_hidden: u64,
) -> Result<VisionTower, ConfigError> {
    let Some(fields @ Value::Object(_)) = json.get(key) else {
        return Err(ConfigError::MissingField { source_name: source_name.to_string(), field: key, family: wrapper });
    };
    let name = format!("{source_name} ({key})");
    let r = Reader { json: fields, source_name: &name };
    let bad = |field: &'static str, value: String, reason: &'static str| ConfigError::BadValue {
        source_name: name.clone(),
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
    let tower = VisionTower {
        hidden_size: dim(&["hidden_size"], 768)?,
        intermediate_size: dim(&["intermediate_size"], 3072)?,
        num_layers: r.u64_or(&["num_hidden_layers"], Some(12), Family::Gemma3, MAX_LAYERS)?,
        num_heads: dim(&["num_attention_heads"], 12)?,
        patch_size: dim(&["patch_size"], 16)?,
        image_size: dim(&["image_size"], 224)?,
        num_channels: dim(&["num_channels"], 3)?,
        text_hidden_size: text_hidden,
    };
    if tower.hidden_size % tower.num_heads != 0 {
        return Err(r.bad("num_attention_heads", tower.num_heads, "must divide hidden_size"));
    }
    if tower.patch_size > tower.image_size {
        return Err(r.bad("patch_size", tower.patch_size, "must not exceed image_size"));
    }
    Ok(tower)
}
