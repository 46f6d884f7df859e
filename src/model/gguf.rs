//! GGUF headers: metadata and tensor infos, with every tensor's exact bytes, read without touching
//! the tensor data.
//!
//! Layout (ggml `docs/gguf.md`, versions 2 and 3, little-endian): magic `GGUF`, `u32` version,
//! `u64` tensor count, `u64` metadata count; the metadata key/value pairs (key: `u64` length +
//! bytes; value: `u32` type + value, arrays as `u32` item type + `u64` count + items); the tensor
//! infos (name, `u32` n_dims, `u64` dims, `u32` ggml type, `u64` offset); padding to
//! `general.alignment` (default 32); then the data, where each tensor's offset points.
//!
//! The file is read through a `BufReader` with hard bounds, so a corrupt or hostile header yields
//! an error, never a panic or a huge allocation: the whole header at most `MAX_HEADER_BYTES`,
//! strings `MAX_STRING_BYTES`, arrays `MAX_ARRAY_ITEMS` items (the `tokenizer.*` arrays only by
//! the byte budget), at most `MAX_TENSORS` tensors of at most 4 dimensions. A tensor's bytes come
//! from its ggml block layout (`GgmlType::tensor_bytes`), and must lie inside the file.

mod reader;
mod spec;
#[cfg(test)]
mod tests;
mod value;

pub use spec::{gguf_to_spec, SUPPORTED_ARCHITECTURES};
pub use value::{GgufArray, GgufValue, GgufValueType};

use super::local::LocalFileError;
use crate::quant::ggml::GgmlType;
use crate::units::MIB;
use reader::Reader;
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

/// Most bytes of header (metadata and tensor infos) read before giving up.
pub const MAX_HEADER_BYTES: u64 = 256 * MIB;
/// Longest string accepted, in bytes.
pub const MAX_STRING_BYTES: u64 = 16 * MIB;
/// Most items in a metadata array other than `tokenizer.*`.
pub const MAX_ARRAY_ITEMS: u64 = 1 << 24;
/// Most tensors in one file.
pub const MAX_TENSORS: u64 = 1 << 20;
/// Most metadata pairs in one file.
pub const MAX_METADATA_PAIRS: u64 = 1 << 20;
/// Most dimensions of one tensor (ggml's `GGML_MAX_DIMS`).
pub const MAX_DIMS: u32 = 4;
/// Arrays up to this length keep their items; longer ones are summarised.
pub const KEPT_ARRAY_ITEMS: u64 = 1024;
/// Deepest nesting of arrays in arrays.
const MAX_ARRAY_DEPTH: u32 = 4;
/// Alignment of the data section when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;

/// One tensor info.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct GgufTensor {
    pub name: String,
    pub ggml_type: GgmlType,
    /// Dimensions in ggml order: `dims[0]` is the contiguous row length (`ne[0]`), so a linear
    /// layer `in -> out` is `[in, out]`, the reverse of its PyTorch shape.
    pub dims: Vec<u64>,
    /// Weights: the product of `dims`.
    pub elements: u64,
    /// Where the data starts, in bytes from the start of the data section.
    pub offset: u64,
    /// Exact bytes of the data: `elements / block_size · type_size`.
    pub bytes: u64,
}

/// The header of one GGUF file.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GgufFile {
    /// The file it came from (`<memory>` for `parse_gguf_bytes`).
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    /// Tensors in file order (private, so `by_name` stays their index; read with `tensors`).
    /// Names are unique: the parser rejects a file that repeats one, as the GGUF spec forbids it.
    tensors: Vec<GgufTensor>,
    /// Alignment of tensor data, bytes.
    pub alignment: u64,
    /// Start of the data section, bytes from the start of the file.
    pub data_offset: u64,
    /// Index of each tensor in `tensors` by name, built once at parse time for `tensor`.
    #[serde(skip)]
    by_name: HashMap<String, usize>,
}

impl GgufFile {
    pub fn get(&self, key: &str) -> Option<&GgufValue> {
        self.metadata.get(key)
    }

    /// `general.architecture`: `llama`, `qwen2`, `deepseek2` ...
    pub fn architecture(&self) -> Option<&str> {
        self.get("general.architecture")?.as_str()
    }

    /// `general.file_type`: llama.cpp's `llama_ftype` number (15 = Q4_K_M).
    pub fn file_type(&self) -> Option<u64> {
        self.get("general.file_type")?.as_u64()
    }

    /// The name of `file_type` where llama.cpp defines it: `Q4_K_M`, `Q8_0`, `BF16`.
    pub fn file_type_name(&self) -> Option<&'static str> {
        ftype_name(self.file_type()?)
    }

    /// Tensors in file order.
    pub fn tensors(&self) -> &[GgufTensor] {
        &self.tensors
    }

    /// The tensor called `name`, found through the index built at parse time. The name check
    /// guards against the tensors having been reordered since (this module's tests do): a stale
    /// index misses, it never answers with another tensor.
    pub fn tensor(&self, name: &str) -> Option<&GgufTensor> {
        let &i = self.by_name.get(name)?;
        self.tensors.get(i).filter(|t| t.name == name)
    }

    /// Bytes of all tensors together.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }
}

/// llama.cpp's `enum llama_ftype` (llama.h): the name of each `general.file_type` number.
/// Numbers 5, 6 and 33-35 were removed from llama.cpp and have no name.
const FTYPES: [(u64, &str); 34] = [
    (0, "F32"),
    (1, "F16"),
    (2, "Q4_0"),
    (3, "Q4_1"),
    (4, "Q4_1_SOME_F16"),
    (7, "Q8_0"),
    (8, "Q5_0"),
    (9, "Q5_1"),
    (10, "Q2_K"),
    (11, "Q3_K_S"),
    (12, "Q3_K_M"),
    (13, "Q3_K_L"),
    (14, "Q4_K_S"),
    (15, "Q4_K_M"),
    (16, "Q5_K_S"),
    (17, "Q5_K_M"),
    (18, "Q6_K"),
    (19, "IQ2_XXS"),
    (20, "IQ2_XS"),
    (21, "Q2_K_S"),
    (22, "IQ3_XS"),
    (23, "IQ3_XXS"),
    (24, "IQ1_S"),
    (25, "IQ4_NL"),
    (26, "IQ3_S"),
    (27, "IQ3_M"),
    (28, "IQ2_S"),
    (29, "IQ2_M"),
    (30, "IQ4_XS"),
    (31, "IQ1_M"),
    (32, "BF16"),
    (36, "TQ1_0"),
    (37, "TQ2_0"),
    (38, "MXFP4_MOE"),
];

/// The llama.cpp name of file type `ftype`, if it has one.
pub fn ftype_name(ftype: u64) -> Option<&'static str> {
    FTYPES.iter().find(|row| row.0 == ftype).map(|row| row.1)
}

/// Reads the header of the GGUF file at `path`.
pub fn read_gguf(path: &Path) -> Result<GgufFile, LocalFileError> {
    let file = File::open(path).map_err(|e| LocalFileError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| LocalFileError::io(path, e))?.len();
    parse(BufReader::new(file), path, file_len)
}

/// Parses a whole GGUF file held in memory (header and data), for tests and fuzzing.
pub fn parse_gguf_bytes(bytes: &[u8]) -> Result<GgufFile, LocalFileError> {
    parse(bytes, Path::new("<memory>"), bytes.len() as u64)
}

fn parse<R: Read>(input: R, path: &Path, file_len: u64) -> Result<GgufFile, LocalFileError> {
    let mut r = Reader::new(input, path);
    let magic: [u8; 4] = r.bytes("4-byte magic")?;
    if &magic != b"GGUF" {
        return Err(LocalFileError::BadMagic { path: path.to_path_buf(), found: magic.escape_ascii().to_string() });
    }
    let version = r.u32("version")?;
    if !(2..=3).contains(&version) {
        return Err(LocalFileError::UnsupportedVersion { path: path.to_path_buf(), version });
    }
    let tensor_count = bounded_count(&mut r, "tensor count", MAX_TENSORS)?;
    let pair_count = bounded_count(&mut r, "metadata count", MAX_METADATA_PAIRS)?;
    let metadata = read_metadata(&mut r, pair_count)?;
    let alignment = alignment(path, &metadata)?;
    let (tensors, by_name) = read_tensor_infos(&mut r, tensor_count, alignment)?;
    let data_offset = r
        .pos()
        .checked_next_multiple_of(alignment)
        .ok_or_else(|| LocalFileError::malformed(path, "the data section starts past 2^64 bytes"))?;
    check_data_in_file(path, &tensors, data_offset, file_len)?;
    Ok(GgufFile { path: path.to_path_buf(), version, metadata, tensors, alignment, data_offset, by_name })
}

fn bounded_count<R: Read>(r: &mut Reader<'_, R>, what: &str, limit: u64) -> Result<u64, LocalFileError> {
    let count = r.u64(what)?;
    if count > limit {
        return Err(LocalFileError::malformed(r.path(), format!("{what} is {count}, over the limit of {limit}")));
    }
    Ok(count)
}

fn read_metadata<R: Read>(r: &mut Reader<'_, R>, count: u64) -> Result<BTreeMap<String, GgufValue>, LocalFileError> {
    let mut metadata = BTreeMap::new();
    for _ in 0..count {
        let key = r.string("metadata keys")?;
        let what = format!("metadata value '{key}'");
        let id = r.u32(&what)?;
        let ty = GgufValueType::from_id(id)
            .ok_or_else(|| LocalFileError::malformed(r.path(), format!("'{key}' has unknown value type {id}")))?;
        let value = value::read_value(r, ty, &key, &what, 0)?;
        if metadata.contains_key(&key) {
            return Err(LocalFileError::malformed(r.path(), format!("metadata key '{key}' appears twice")));
        }
        metadata.insert(key, value);
    }
    Ok(metadata)
}

/// `general.alignment`, which must be a power of two; 32 when absent.
fn alignment(path: &Path, metadata: &BTreeMap<String, GgufValue>) -> Result<u64, LocalFileError> {
    match metadata.get("general.alignment") {
        None => Ok(DEFAULT_ALIGNMENT),
        Some(v) => v
            .as_u64()
            .filter(|a| a.is_power_of_two())
            .ok_or_else(|| LocalFileError::malformed(path, format!("general.alignment {v:?} is not a power of two"))),
    }
}

/// The tensor infos in file order, and each one's index by name. A repeated name is an error
/// (GGUF forbids it), so every name maps to exactly one tensor.
fn read_tensor_infos<R: Read>(
    r: &mut Reader<'_, R>,
    count: u64,
    alignment: u64,
) -> Result<(Vec<GgufTensor>, HashMap<String, usize>), LocalFileError> {
    const WHAT: &str = "tensor infos";
    let mut tensors = Vec::new();
    let mut by_name = HashMap::new();
    for _ in 0..count {
        let name = r.string(WHAT)?;
        let n_dims = r.u32(WHAT)?;
        if n_dims > MAX_DIMS {
            let reason = format!("tensor '{name}' has {n_dims} dimensions; ggml allows at most {MAX_DIMS}");
            return Err(LocalFileError::malformed(r.path(), reason));
        }
        let dims = (0..n_dims).map(|_| r.u64(WHAT)).collect::<Result<Vec<_>, _>>()?;
        let type_id = r.u32(WHAT)?;
        let offset = r.u64(WHAT)?;
        let tensor = tensor_info(r.path(), name, dims, type_id, offset, alignment)?;
        if by_name.insert(tensor.name.clone(), tensors.len()).is_some() {
            return Err(LocalFileError::malformed(r.path(), format!("tensor '{}' appears twice", tensor.name)));
        }
        tensors.push(tensor);
    }
    Ok((tensors, by_name))
}

/// Checks one tensor info and computes its exact bytes.
fn tensor_info(
    path: &Path,
    name: String,
    dims: Vec<u64>,
    type_id: u32,
    offset: u64,
    alignment: u64,
) -> Result<GgufTensor, LocalFileError> {
    let bad = |reason: String| LocalFileError::malformed(path, format!("tensor '{name}': {reason}"));
    let Some(ggml_type) = GgmlType::from_id(type_id) else {
        return Err(LocalFileError::UnknownGgmlType { path: path.to_path_buf(), tensor: name, id: type_id });
    };
    // ggml keeps element counts in int64_t; the product times the block bytes must not overflow.
    let elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .filter(|&e| e <= i64::MAX as u64 && e.checked_mul(ggml_type.type_size()).is_some())
        .ok_or_else(|| bad(format!("dims {dims:?} hold more than 2^63 elements")))?;
    let row = dims.first().copied().unwrap_or(1);
    let bytes = ggml_type.tensor_bytes(elements, row).ok_or_else(|| {
        bad(format!(
            "rows of {row} weights are not a multiple of the {}-weight block of {}",
            ggml_type.block_size(),
            ggml_type.name()
        ))
    })?;
    if offset % alignment != 0 {
        return Err(bad(format!("data offset {offset} is not a multiple of the alignment {alignment}")));
    }
    Ok(GgufTensor { name, ggml_type, dims, elements, offset, bytes })
}

/// Every tensor's data must lie inside the file.
fn check_data_in_file(
    path: &Path,
    tensors: &[GgufTensor],
    data_offset: u64,
    file_len: u64,
) -> Result<(), LocalFileError> {
    for t in tensors {
        let end = data_offset.checked_add(t.offset).and_then(|start| start.checked_add(t.bytes));
        match end {
            Some(end) if end <= file_len => {}
            Some(end) => {
                let what = format!("data of tensor '{}' (it ends at byte {end} of a {file_len}-byte file)", t.name);
                return Err(LocalFileError::truncated(path, what));
            }
            None => return Err(LocalFileError::malformed(path, format!("tensor '{}' ends past 2^64 bytes", t.name))),
        }
    }
    Ok(())
}
