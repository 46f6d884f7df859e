//! Local model files: the exact tensors of a safetensors checkpoint (one file or sharded) or a GGUF
//! file, read from headers only, with each tensor's role and layer.
//!
//! `LocalModel::open` accepts a model directory, a `.safetensors` file, a
//! `model.safetensors.index.json` or a `.gguf` file. The result answers what `headroom inspect`
//! shows and what the planner's exact weight bytes need: bytes in total, by dtype and by role, and
//! the parameter count. Nothing here reads tensor data, so a 700 GB checkpoint opens in
//! milliseconds.

mod classify;
mod error;
mod params;

pub use classify::{classify, is_runtime_buffer, is_speculative_head};
pub use error::LocalFileError;

use super::gguf::{read_gguf, GgufFile, GgufTensor};
use super::safetensors::{read_header, read_index, SafetensorsHeader, SafetensorsTensor};
use super::tensors::Role;
use crate::quant::ggml::GgmlType;
use serde::Serialize;
use std::collections::HashSet;
use std::fs;
use std::path::{Path, PathBuf};

/// One tensor of a local checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalTensor {
    pub name: String,
    /// The stored type as its format names it: safetensors `BF16`, `I32`, `F8_E4M3`; GGUF (as
    /// llama.cpp prints it) `q4_K`, `q6_K`, `f16`.
    pub dtype: String,
    /// Dimensions, outermost first (PyTorch order; GGUF's ggml order is reversed to match).
    pub shape: Vec<u64>,
    /// Exact bytes of the stored data.
    pub bytes: u64,
    pub role: Option<Role>,
    pub layer: Option<u32>,
}

impl LocalTensor {
    /// Stored elements: the product of `shape` (packed containers count as stored, not logical).
    pub fn elements(&self) -> u64 {
        self.shape.iter().fold(1u64, |acc, &d| acc.saturating_mul(d))
    }

    fn from_safetensors(t: &SafetensorsTensor) -> Self {
        let (role, layer) = classify(&t.name);
        LocalTensor {
            name: t.name.clone(),
            dtype: t.dtype.name().to_string(),
            shape: t.shape.clone(),
            bytes: t.bytes,
            role,
            layer,
        }
    }

    fn from_gguf(t: &GgufTensor) -> Self {
        let (role, layer) = classify(&t.name);
        let shape = t.dims.iter().rev().copied().collect();
        LocalTensor { name: t.name.clone(), dtype: ggml_label(t.ggml_type), shape, bytes: t.bytes, role, layer }
    }
}

/// A ggml type as llama.cpp prints it: k-quants end in an upper-case `K` (`q4_K`).
fn ggml_label(t: GgmlType) -> String {
    match t.name().strip_suffix("_k") {
        Some(base) => format!("{base}_K"),
        None => t.name().to_string(),
    }
}

/// How the checkpoint is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LocalFormat {
    Safetensors,
    /// Several safetensors files, through `model.safetensors.index.json` or all in one directory.
    ShardedSafetensors,
    Gguf,
}

/// A local checkpoint, as far as its headers describe it.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalModel {
    /// The path given to `open`.
    pub source: PathBuf,
    pub format: LocalFormat,
    /// The files whose headers were read.
    pub files: Vec<PathBuf>,
    /// Every tensor of every file, in file order.
    pub tensors: Vec<LocalTensor>,
    /// `metadata.total_size` of a shard index, bytes: what the index claims, for comparison
    /// with `total_bytes`.
    pub declared_total_bytes: Option<u64>,
    /// The GGUF header (metadata and tensor infos) of a GGUF checkpoint; `gguf_to_spec` reads it.
    pub gguf: Option<GgufFile>,
    /// `config.json` beside the checkpoint, when there is one.
    pub config_path: Option<PathBuf>,
}

impl LocalModel {
    /// Opens a model directory, `.safetensors` file, `*.safetensors.index.json` or `.gguf` file.
    ///
    /// A directory is read through its `model.safetensors.index.json` (or its only
    /// `*.safetensors.index.json`) if present, else all its `*.safetensors` files, else its single
    /// `.gguf` file.
    pub fn open(path: &Path) -> Result<LocalModel, LocalFileError> {
        let meta = fs::metadata(path).map_err(|e| LocalFileError::io(path, e))?;
        if meta.is_dir() {
            return open_dir(path);
        }
        let name = file_name(path);
        if name.ends_with(".safetensors.index.json") {
            open_index(path, path)
        } else if name.ends_with(".safetensors") {
            open_safetensors(path, LocalFormat::Safetensors, vec![path.to_path_buf()])
        } else if name.ends_with(".gguf") {
            open_gguf(path, path)
        } else {
            Err(LocalFileError::UnsupportedFile { path: path.to_path_buf() })
        }
    }

    /// Bytes of all tensors.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// Bytes per stored dtype, largest first.
    pub fn bytes_by_dtype(&self) -> Vec<(String, u64)> {
        let mut out = sum_by(&self.tensors, |t| t.dtype.clone());
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        out
    }

    /// Bytes per role, largest first; `None` gathers the tensors `classify` does not know.
    pub fn bytes_by_role(&self) -> Vec<(Option<Role>, u64)> {
        let mut out = sum_by(&self.tensors, |t| t.role);
        let key = |r: &Option<Role>| r.map_or("~", Role::gguf_name);
        out.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| key(&a.0).cmp(key(&b.0))));
        out
    }

    /// Parameters (logical weights) of the checkpoint.
    ///
    /// Rule: every tensor counts its elements, except
    /// - quantizer bookkeeping, which counts 0: GPTQ/AWQ `qzeros`, `scales`, `g_idx`; bitsandbytes
    ///   `absmax`, `quant_map`, `nested_*`, `quant_state.*`, `SCB`; FP8 `weight_scale(_inv)`,
    ///   `input_scale`; compressed-tensors zero points, global scales and shapes; `BOOL` tensors
    ///   and the `inv_freq` buffers and GPT-2/GPT-J causal masks (`attn.bias`, `attn.masked_bias`);
    /// - GPTQ/AWQ `qweight` (int32 words of packed 4-bit weights): GPTQ stores `[in·bits/32, out]`
    ///   beside a `g_idx` of `in` entries, so it counts `in × out` exactly; without `g_idx`
    ///   (AWQ `[in, out/8]`) it counts 32/4 = 8 weights per int32, the 4-bit default;
    /// - compressed-tensors `weight_packed` counts 2 weights per byte of its container (4-bit);
    /// - gpt-oss's MXFP4 `*_blocks` (U8) count 2 weights per byte and their `*_scales` 0;
    /// - a bitsandbytes 4-bit `weight` (one with a `weight.absmax` or `weight.quant_state.*`
    ///   beside it) counts 2 weights per stored byte.
    ///
    /// GGUF shapes are logical already, so every GGUF tensor counts its elements.
    pub fn parameter_count(&self) -> u64 {
        params::parameter_count(&self.tensors)
    }
}

fn sum_by<K: PartialEq>(tensors: &[LocalTensor], key: impl Fn(&LocalTensor) -> K) -> Vec<(K, u64)> {
    let mut out: Vec<(K, u64)> = Vec::new();
    for t in tensors {
        let k = key(t);
        match out.iter_mut().find(|(existing, _)| *existing == k) {
            Some((_, bytes)) => *bytes += t.bytes,
            None => out.push((k, t.bytes)),
        }
    }
    out
}

fn file_name(path: &Path) -> &str {
    path.file_name().and_then(|n| n.to_str()).unwrap_or("")
}

/// `config.json` in `dir`, if it exists.
fn config_in(dir: &Path) -> Option<PathBuf> {
    Some(dir.join("config.json")).filter(|p| p.is_file())
}

/// The directory holding `path` (`.` for a bare file name).
fn parent_dir(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

fn open_dir(dir: &Path) -> Result<LocalModel, LocalFileError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| LocalFileError::io(dir, e))? {
        let path = entry.map_err(|e| LocalFileError::io(dir, e))?.path();
        if path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    let named = |suffix: &str| files.iter().filter(|p| file_name(p).ends_with(suffix)).cloned().collect::<Vec<_>>();
    let indexes = named(".safetensors.index.json");
    let standard = dir.join("model.safetensors.index.json");
    if indexes.contains(&standard) {
        return open_index(dir, &standard);
    }
    if let [index] = indexes.as_slice() {
        return open_index(dir, index);
    }
    let shards = named(".safetensors");
    match shards.len() {
        0 => {}
        1 => return open_safetensors(dir, LocalFormat::Safetensors, shards),
        _ => return open_safetensors(dir, LocalFormat::ShardedSafetensors, shards),
    }
    match named(".gguf").as_slice() {
        [] => Err(LocalFileError::NoModelFiles { path: dir.to_path_buf() }),
        [gguf] => open_gguf(dir, gguf),
        several => {
            let files = several.iter().map(|p| file_name(p)).collect::<Vec<_>>().join(", ");
            Err(LocalFileError::AmbiguousGguf { path: dir.to_path_buf(), files })
        }
    }
}

fn open_index(source: &Path, index: &Path) -> Result<LocalModel, LocalFileError> {
    let sharded = read_index(index)?;
    let dir = parent_dir(index);
    let files = sharded.shards.iter().map(|s| s.path.clone()).collect();
    let mut model = from_headers(source, LocalFormat::ShardedSafetensors, files, &sharded.shards, config_in(dir));
    model.declared_total_bytes = sharded.declared_total_size;
    Ok(model)
}

/// Safetensors files without an index: every file's header, no tensor in two files.
fn open_safetensors(source: &Path, format: LocalFormat, files: Vec<PathBuf>) -> Result<LocalModel, LocalFileError> {
    let headers = files.iter().map(|f| read_header(f)).collect::<Result<Vec<_>, _>>()?;
    let mut seen = HashSet::new();
    for t in headers.iter().flat_map(|h| &h.tensors) {
        if !seen.insert(t.name.as_str()) {
            let reason = format!("tensor '{}' is in more than one .safetensors file", t.name);
            return Err(LocalFileError::malformed(source, reason));
        }
    }
    let dir = if source.is_dir() { source } else { parent_dir(source) };
    Ok(from_headers(source, format, files, &headers, config_in(dir)))
}

fn from_headers(
    source: &Path,
    format: LocalFormat,
    files: Vec<PathBuf>,
    headers: &[SafetensorsHeader],
    config_path: Option<PathBuf>,
) -> LocalModel {
    LocalModel {
        source: source.to_path_buf(),
        format,
        files,
        tensors: headers.iter().flat_map(|h| &h.tensors).map(LocalTensor::from_safetensors).collect(),
        declared_total_bytes: None,
        gguf: None,
        config_path,
    }
}

fn open_gguf(source: &Path, path: &Path) -> Result<LocalModel, LocalFileError> {
    let gguf = read_gguf(path)?;
    Ok(LocalModel {
        source: source.to_path_buf(),
        format: LocalFormat::Gguf,
        files: vec![path.to_path_buf()],
        tensors: gguf.tensors().iter().map(LocalTensor::from_gguf).collect(),
        declared_total_bytes: None,
        gguf: Some(gguf),
        config_path: config_in(parent_dir(path)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ggml_labels_match_llama_cpp() {
        assert_eq!(ggml_label(GgmlType::Q4_K), "q4_K");
        assert_eq!(ggml_label(GgmlType::Q8_0), "q8_0");
        assert_eq!(ggml_label(GgmlType::BF16), "bf16");
        assert_eq!(ggml_label(GgmlType::IQ4_XS), "iq4_xs");
    }
}
