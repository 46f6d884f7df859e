//! Resolves the MODEL argument: a built-in id, or a local config.json / model directory /
//! safetensors / GGUF file.

use crate::catalog::models::ModelCatalog;
use crate::model::config::parse_config;
use crate::model::spec::ModelSpec;
use crate::model::tensors::{inventory, param_counts, ParamCounts, TensorDesc};
use crate::quant::WeightFormat;
use anyhow::{bail, Context};
use std::path::Path;

/// A model ready to plan.
pub struct ResolvedModel {
    pub spec: ModelSpec,
    pub tensors: Vec<TensorDesc>,
    pub counts: ParamCounts,
    /// The format when `--weights` is absent: the checkpoint's own (bf16 for most).
    pub default_format: WeightFormat,
}

impl ResolvedModel {
    fn from_spec(spec: ModelSpec, native: Option<&str>) -> anyhow::Result<Self> {
        let tensors = inventory(&spec);
        let counts = param_counts(&spec, &tensors);
        let default_format = WeightFormat::parse(native.unwrap_or("bf16"))?;
        Ok(ResolvedModel { spec, tensors, counts, default_format })
    }
}

/// Looks `input` up as a path first (when it exists or looks like one), else in the catalog.
pub fn resolve(input: &str) -> anyhow::Result<ResolvedModel> {
    let path = Path::new(input);
    if path.exists() {
        return resolve_path(path);
    }
    if input.contains(['/', '\\'])
        || input.ends_with(".json")
        || input.ends_with(".gguf")
        || input.ends_with(".safetensors")
    {
        bail!(
            "model path '{input}' does not exist; check the path, or pass a built-in id (headroom models lists them)"
        );
    }
    let model = ModelCatalog::builtin().get(input)?;
    ResolvedModel::from_spec(model.spec().clone(), model.parsed.native_format.as_deref())
}

fn resolve_path(path: &Path) -> anyhow::Result<ResolvedModel> {
    let config = if path.is_dir() { path.join("config.json") } else { path.to_path_buf() };
    if config.file_name().is_some_and(|n| n == "config.json") || config.extension().is_some_and(|e| e == "json") {
        let text = std::fs::read_to_string(&config).with_context(|| format!("cannot read {}", config.display()))?;
        let id = path.file_stem().map_or("local".into(), |s| s.to_string_lossy().into_owned());
        let id = if id == "config" {
            config.parent().and_then(|p| p.file_name()).map_or(id.clone(), |n| n.to_string_lossy().into_owned())
        } else {
            id
        };
        let parsed = parse_config(&text, &id, &config.display().to_string())?;
        return ResolvedModel::from_spec(parsed.spec, parsed.native_format.as_deref());
    }
    bail!("{}: not a config.json or model directory; pass a Hugging Face config.json, a directory holding one, a .safetensors or a .gguf", path.display())
}
