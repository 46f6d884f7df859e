//! The built-in model catalog: `data/models/index.toml` lists each model with the provenance of
//! its Hugging Face `config.json`, stored beside it and embedded in the binary (see `build.rs`).

use crate::catalog::suggest::{closest, did_you_mean, loose_key, unique};
use crate::model::config::{parse_config, ParsedConfig};
use crate::model::spec::ModelSpec;
use serde::Deserialize;
use std::sync::OnceLock;
use thiserror::Error;

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/models.rs"));
}

/// One catalog entry as written in `index.toml`.
#[derive(Clone, Debug, Deserialize)]
pub struct ModelEntry {
    pub id: String,
    pub name: String,
    pub hf_repo: String,
    pub config: String,
    pub config_source: String,
    /// Exact parameter count where a source states one.
    pub published_parameters: Option<u64>,
    pub published_parameters_note: Option<String>,
}

/// An entry with its parsed architecture.
#[derive(Clone, Debug)]
pub struct CatalogModel {
    pub entry: ModelEntry,
    pub parsed: ParsedConfig,
}

impl CatalogModel {
    pub fn spec(&self) -> &ModelSpec {
        &self.parsed.spec
    }
}

#[derive(Debug, Error)]
#[error("unknown model '{id}'{}; pass a built-in id (headroom models lists them) or a path to a config.json, model directory, .safetensors or .gguf", did_you_mean(.suggestions))]
pub struct UnknownModel {
    pub id: String,
    pub suggestions: Vec<String>,
}

#[derive(Deserialize)]
struct Index {
    #[serde(default)]
    model: Vec<ModelEntry>,
}

/// All built-in models, parsed once.
pub struct ModelCatalog {
    models: Vec<CatalogModel>,
}

impl ModelCatalog {
    /// The embedded catalog. Its data is validated by tests, so a parse failure here is a build
    /// defect, not user input.
    pub fn builtin() -> &'static ModelCatalog {
        static CATALOG: OnceLock<ModelCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            Self::load(include_str!("../../data/models/index.toml"), embedded::CONFIGS)
                .unwrap_or_else(|e| panic!("built-in model catalog is invalid: {e}"))
        })
    }

    /// Parses an index and its configs (used by `builtin` and by the catalog tests).
    pub fn load(index: &str, configs: &[(&str, &str)]) -> Result<ModelCatalog, String> {
        let index: Index = toml::from_str(index).map_err(|e| format!("index.toml: {e}"))?;
        let mut models = Vec::with_capacity(index.model.len());
        for entry in index.model {
            let text = configs
                .iter()
                .find(|(name, _)| *name == entry.config)
                .map(|(_, text)| *text)
                .ok_or_else(|| format!("{}: config file {} is not embedded", entry.id, entry.config))?;
            let parsed = parse_config(text, &entry.id, &entry.config).map_err(|e| e.to_string())?;
            models.push(CatalogModel { entry, parsed });
        }
        Ok(ModelCatalog { models })
    }

    pub fn iter(&self) -> impl Iterator<Item = &CatalogModel> {
        self.models.iter()
    }

    /// The entry published under a Hugging Face repo id (`meta-llama/Llama-2-7b-hf`), in any case.
    pub fn by_hf_repo(&self, repo: &str) -> Option<&CatalogModel> {
        self.models.iter().find(|m| m.entry.hf_repo.eq_ignore_ascii_case(repo))
    }

    /// The entry of this id in any case, or else the one entry whose id matches with separators
    /// left out (`llama2-7b`, `Llama 2 7B`; see [`loose_key`]).
    pub fn get(&self, id: &str) -> Result<&CatalogModel, UnknownModel> {
        let id = id.trim();
        let id_lc = id.to_ascii_lowercase();
        let key = loose_key(id);
        let exact = self.models.iter().find(|m| m.entry.id == id_lc);
        exact.or_else(|| unique(self.models.iter().filter(|m| loose_key(&m.entry.id) == key))).ok_or_else(|| {
            UnknownModel {
                id: id.to_string(),
                suggestions: closest(id, self.models.iter().map(|m| m.entry.id.as_str())),
            }
        })
    }
}
