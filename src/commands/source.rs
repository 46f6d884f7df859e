//! Resolves the MODEL argument: a built-in id, or a local config.json, model directory,
//! safetensors file, sharded index or GGUF file.

use super::hub_cache::{self, RepoId};
use crate::catalog::models::ModelCatalog;
use crate::catalog::suggest::{closest, did_you_mean};
use crate::model::config::{parse_config, NativeFormat};
use crate::model::gguf::gguf_to_spec;
use crate::model::local::{LocalFileError, LocalFormat, LocalModel};
use crate::model::spec::ModelSpec;
use crate::model::tensors::{inventory, param_counts, ParamCounts, TensorDesc};
use crate::plan::WeightLayout;
use crate::quant::WeightFormat;
use crate::units::Bytes;
use anyhow::{bail, Context};
use std::path::Path;

/// No real model comes near this many parameters: beyond it a config is corrupt or a typo.
const MAX_PARAMETERS: u64 = 1_000_000_000_000_000;

/// A model ready to plan.
pub struct ResolvedModel {
    pub spec: ModelSpec,
    pub tensors: Vec<TensorDesc>,
    pub counts: ParamCounts,
    /// The format when `--weights` is absent: the checkpoint's own (bf16 for most), or the
    /// nearest one headroom models when `stated_format` is set.
    native: WeightFormat,
    /// What the config states when headroom plans it as a near format (`MLX affine 5-bit g32`).
    stated_format: Option<String>,
    /// Exact stored bytes when the input had tensor headers (safetensors or GGUF).
    pub file: Option<FileWeights>,
}

/// What the local files hold, from their headers.
pub struct FileWeights {
    pub model: LocalModel,
    pub layout: WeightLayout,
    /// e.g. `file: Q4_K_M` or `file: BF16`.
    pub label: String,
}

impl ResolvedModel {
    fn from_spec(spec: ModelSpec, native: Option<&NativeFormat>, file: Option<LocalModel>) -> anyhow::Result<Self> {
        let tensors = inventory(&spec);
        let counts = param_counts(&spec, &tensors);
        if counts.total > MAX_PARAMETERS {
            bail!(
                "{}: the architecture describes {} parameters, beyond any real model; check the config's sizes",
                spec.id,
                counts.total
            );
        }
        let stated_format = native.and_then(|n| n.approximates.clone());
        let file = file.map(|model| FileWeights {
            layout: file_layout(&spec, &model),
            label: file_label(&model, native),
            model,
        });
        let native = WeightFormat::parse(native.map_or("bf16", |n| n.id.as_str()))?;
        Ok(ResolvedModel { spec, tensors, counts, native, stated_format, file })
    }

    /// The format to plan in when `--weights` is absent. A stated format headroom only
    /// approximates needs the file's headers for its bytes.
    pub fn default_format(&self) -> anyhow::Result<WeightFormat> {
        match &self.stated_format {
            Some(stated) if self.file.is_none() => bail!(
                "{}: the config states {stated}, which headroom has no exact layout for; plan the checkpoint's directory (its safetensors headers give the exact bytes) or choose a format with --weights (headroom formats lists them)",
                self.spec.id
            ),
            _ => Ok(self.native),
        }
    }
}

/// Looks `input` up as a path first (when it exists), then as a Hugging Face repo id (its
/// snapshot in the local Hub cache, else the built-in model of that repo), else in the catalog.
pub fn resolve(input: &str) -> anyhow::Result<ResolvedModel> {
    let path = Path::new(input);
    if path.exists() {
        return resolve_path(path);
    }
    if let Some(repo) = RepoId::parse(input) {
        return resolve_repo(&repo);
    }
    if input.contains(['/', '\\']) || [".json", ".gguf", ".safetensors"].iter().any(|e| input.ends_with(e)) {
        bail!(
            "model path '{input}' does not exist; check the path, or pass a built-in id (headroom models lists them)"
        );
    }
    let model = ModelCatalog::builtin().get(input)?;
    ResolvedModel::from_spec(model.spec().clone(), model.parsed.native_format.as_ref(), None)
}

/// A repo id: the downloaded snapshot, planned as its directory and named after the repo; else
/// the catalog entry published under it.
fn resolve_repo(repo: &RepoId) -> anyhow::Result<ResolvedModel> {
    let cache = hub_cache::cache_dir(|key| std::env::var(key).ok());
    if let Some(snapshot) = cache.as_deref().map(|c| hub_cache::find_snapshot(c, repo)).transpose()?.flatten() {
        let mut model =
            resolve_path(&snapshot).with_context(|| format!("{} in the Hugging Face cache", repo.repo()))?;
        model.spec.id = repo.name.to_string();
        return Ok(model);
    }
    let catalog = ModelCatalog::builtin();
    let cache_name = cache.as_ref().map_or("unset: no HOME".into(), |c| c.display().to_string());
    match (catalog.by_hf_repo(&repo.repo()), repo.revision) {
        (Some(model), None) => {
            return ResolvedModel::from_spec(model.spec().clone(), model.parsed.native_format.as_ref(), None)
        }
        (Some(model), Some(rev)) => bail!(
            "{}@{rev} is not in the Hugging Face cache ({cache_name}); download it (hf download {} --revision {rev} config.json), or drop @{rev} to plan the built-in {}",
            repo.repo(),
            repo.repo(),
            model.entry.id
        ),
        (None, _) => {}
    }
    let suggestions = closest(repo.name, catalog.iter().map(|m| m.entry.id.as_str()));
    bail!(
        "'{}' is neither in the Hugging Face cache ({}) nor a built-in model's repo; headroom reads no network: download its config (hf download {} config.json) and plan it again, or pass a built-in id{}",
        repo.repo(),
        cache_name,
        repo.repo(),
        did_you_mean(&suggestions)
    )
}

fn resolve_path(path: &Path) -> anyhow::Result<ResolvedModel> {
    let is_index = path.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".index.json"));
    if path.extension().is_some_and(|e| e == "json") && !is_index {
        return from_config(path, None);
    }
    let local = match LocalModel::open(path) {
        Ok(local) => local,
        // A directory with a config.json but no weights is planned from the config alone.
        Err(LocalFileError::NoModelFiles { .. }) if path.join("config.json").is_file() => {
            return from_config(&path.join("config.json"), None);
        }
        Err(e) => return Err(e.into()),
    };
    if local.format == LocalFormat::Gguf {
        let gguf = local.gguf.as_ref().context("GGUF model without its header")?;
        let spec = gguf_to_spec(gguf)?;
        return ResolvedModel::from_spec(spec, None, Some(local));
    }
    let Some(config) = local.config_path.clone().or_else(|| sibling_config(path)) else {
        bail!(
            "{}: no config.json beside the safetensors; headroom needs it for the architecture (put the model's config.json in the same directory)",
            path.display()
        );
    };
    from_config(&config, Some(local))
}

fn sibling_config(path: &Path) -> Option<std::path::PathBuf> {
    let config = path.parent()?.join("config.json");
    config.is_file().then_some(config)
}

fn from_config(config: &Path, local: Option<LocalModel>) -> anyhow::Result<ResolvedModel> {
    let text = std::fs::read_to_string(config).with_context(|| format!("cannot read {}", config.display()))?;
    let dir_name = config.parent().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned());
    let stem = config.file_stem().map_or("local".into(), |s| s.to_string_lossy().into_owned());
    let id = if stem == "config" { dir_name.unwrap_or(stem) } else { stem };
    let parsed = parse_config(&text, &id, &config.display().to_string())?;
    ResolvedModel::from_spec(parsed.spec, parsed.native_format.as_ref(), local)
}

/// Stored bytes by position in the model, from the file headers.
fn file_layout(spec: &ModelSpec, model: &LocalModel) -> WeightLayout {
    let mut layout = WeightLayout::new(spec.num_layers);
    // Engines load a multi-token-prediction block only for speculative decoding: Qwen's `mtp.*`,
    // and the layers past `num_hidden_layers` (DeepSeek-V3's `model.layers.61`); and GPT-2's
    // stored causal masks not at all.
    let drafter = |t: &&crate::model::local::LocalTensor| {
        crate::model::local::is_speculative_head(&t.name)
            || crate::model::local::is_runtime_buffer(&t.name)
            || t.layer.is_some_and(|l| l as u64 >= spec.num_layers)
    };
    for t in model.tensors.iter().filter(|t| !drafter(t)) {
        layout.place(t.layer, t.role, Bytes(t.bytes));
    }
    layout
}

/// The file's format as users know it: GGUF file type, the format its config states, else the
/// dominant dtype.
fn file_label(model: &LocalModel, native: Option<&NativeFormat>) -> String {
    if let Some(name) = model.gguf.as_ref().and_then(|g| g.file_type_name()) {
        return format!("file: {name}");
    }
    if let Some(n) = native {
        return format!("file: {}", n.approximates.as_deref().unwrap_or(&n.id));
    }
    let dominant = model.bytes_by_dtype().into_iter().max_by_key(|(_, b)| *b).map(|(d, _)| d);
    format!("file: {}", dominant.unwrap_or_else(|| "empty".into()))
}
