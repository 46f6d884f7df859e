//! Safetensors headers: every tensor's name, dtype, shape and exact byte size, read without
//! touching the tensor data.
//!
//! The format (huggingface/safetensors, README "Format"): an 8-byte little-endian `u64` `N`, then
//! `N` bytes of UTF-8 JSON, then the data. The JSON maps each tensor name to
//! `{"dtype": "BF16", "shape": [4096, 4096], "data_offsets": [begin, end]}`, offsets counted from
//! the first byte after the header; an optional `"__metadata__"` maps strings to strings. Only the
//! first `8 + N` bytes are read, and every number in them is checked before use: `N` against a
//! 100 MiB limit and the file size, each shape's element count for overflow, each byte range
//! against its dtype and shape and against the data actually present, and ranges against each other.
//!
//! Sharded checkpoints (`index.rs`) add `model.safetensors.index.json`, which maps each tensor to
//! the shard file holding it.

mod index;

pub use index::{read_index, SafetensorsIndex};

use super::local::LocalFileError;
use crate::units::MIB;
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The largest JSON header accepted, in bytes (the safetensors reference reader's own limit).
pub const MAX_HEADER_BYTES: u64 = 100 * MIB;

/// The name used in errors for bytes parsed from memory rather than a file.
const IN_MEMORY: &str = "<memory>";

/// A safetensors element type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[allow(non_camel_case_types)]
pub enum SafeDtype {
    BOOL,
    U8,
    I8,
    F8_E5M2,
    F8_E4M3,
    F8_E8M0,
    I16,
    U16,
    F16,
    BF16,
    I32,
    U32,
    F32,
    F64,
    I64,
    U64,
    C64,
    F4,
    F6_E2M3,
    F6_E3M2,
}

/// (dtype, name in the header, bits per element), from the reference reader's `Dtype::bitsize`.
const DTYPES: [(SafeDtype, &str, u64); 20] = [
    (SafeDtype::BOOL, "BOOL", 8),
    (SafeDtype::U8, "U8", 8),
    (SafeDtype::I8, "I8", 8),
    (SafeDtype::F8_E5M2, "F8_E5M2", 8),
    (SafeDtype::F8_E4M3, "F8_E4M3", 8),
    (SafeDtype::F8_E8M0, "F8_E8M0", 8),
    (SafeDtype::I16, "I16", 16),
    (SafeDtype::U16, "U16", 16),
    (SafeDtype::F16, "F16", 16),
    (SafeDtype::BF16, "BF16", 16),
    (SafeDtype::I32, "I32", 32),
    (SafeDtype::U32, "U32", 32),
    (SafeDtype::F32, "F32", 32),
    (SafeDtype::F64, "F64", 64),
    (SafeDtype::I64, "I64", 64),
    (SafeDtype::U64, "U64", 64),
    (SafeDtype::C64, "C64", 64),
    (SafeDtype::F4, "F4", 4),
    (SafeDtype::F6_E2M3, "F6_E2M3", 6),
    (SafeDtype::F6_E3M2, "F6_E3M2", 6),
];

impl SafeDtype {
    /// The dtype spelled `name` in a header (exact, upper case).
    pub fn from_name(name: &str) -> Option<SafeDtype> {
        DTYPES.iter().find(|row| row.1 == name).map(|row| row.0)
    }

    /// The name written in headers: `BF16`, `F8_E4M3`.
    pub fn name(self) -> &'static str {
        DTYPES.iter().find(|row| row.0 == self).map_or("?", |row| row.1)
    }

    /// Bits per element: 4 for `F4`, 6 for the `F6` types, 8 to 64 for the rest.
    pub fn bits(self) -> u64 {
        DTYPES.iter().find(|row| row.0 == self).map_or(8, |row| row.2)
    }

    /// Every dtype name, comma-separated, for error messages.
    pub fn known_names() -> String {
        DTYPES.iter().map(|row| row.1).collect::<Vec<_>>().join(", ")
    }
}

/// One tensor of a safetensors header.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SafetensorsTensor {
    pub name: String,
    pub dtype: SafeDtype,
    /// Dimensions, outermost first (PyTorch order: `[out_features, in_features]` for a linear).
    pub shape: Vec<u64>,
    /// Elements: the product of `shape` (1 for a scalar).
    pub elements: u64,
    /// `[begin, end)` in bytes, counted from the first byte after the header.
    pub data_offsets: [u64; 2],
    /// Exact bytes of the tensor's data: `elements · bits / 8`.
    pub bytes: u64,
}

/// The parsed header of one `.safetensors` file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SafetensorsHeader {
    /// The file it came from (`<memory>` for `parse_header_bytes`).
    pub path: PathBuf,
    /// Bytes of JSON header (`N`), not counting the 8-byte length.
    pub header_len: u64,
    /// Bytes after the header: the data section.
    pub data_len: u64,
    /// The optional `__metadata__` map (`{"format": "pt"}` for most checkpoints).
    pub metadata: BTreeMap<String, String>,
    /// Tensors in data order (by `data_offsets`).
    pub tensors: Vec<SafetensorsTensor>,
}

impl SafetensorsHeader {
    /// Bytes of all tensors together.
    pub fn total_bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }
}

/// Reads the header of the `.safetensors` file at `path`: only its first `8 + N` bytes.
pub fn read_header(path: &Path) -> Result<SafetensorsHeader, LocalFileError> {
    let mut file = File::open(path).map_err(|e| LocalFileError::io(path, e))?;
    let file_len = file.metadata().map_err(|e| LocalFileError::io(path, e))?.len();
    let mut len_bytes = [0u8; 8];
    file.read_exact(&mut len_bytes).map_err(|e| LocalFileError::reading(path, "8-byte header length", e))?;
    let header_len = checked_header_len(path, u64::from_le_bytes(len_bytes), file_len)?;
    let mut json = Vec::new();
    (&mut file).take(header_len).read_to_end(&mut json).map_err(|e| LocalFileError::io(path, e))?;
    if json.len() as u64 != header_len {
        return Err(LocalFileError::truncated(path, "JSON header"));
    }
    parse_json(path, &json, file_len.saturating_sub(8).saturating_sub(header_len))
}

/// Parses a whole safetensors file held in memory (header and data), for tests and fuzzing.
pub fn parse_header_bytes(bytes: &[u8]) -> Result<SafetensorsHeader, LocalFileError> {
    let path = Path::new(IN_MEMORY);
    let (len_bytes, rest) =
        bytes.split_first_chunk::<8>().ok_or_else(|| LocalFileError::truncated(path, "8-byte header length"))?;
    let header_len = checked_header_len(path, u64::from_le_bytes(*len_bytes), bytes.len() as u64)?;
    // `checked_header_len` guarantees the header fits in `rest`.
    let (json, data) = rest.split_at(header_len as usize);
    parse_json(path, json, data.len() as u64)
}

/// The declared header length `len`, once it is known to fit the limit and the file.
fn checked_header_len(path: &Path, len: u64, file_len: u64) -> Result<u64, LocalFileError> {
    if len > MAX_HEADER_BYTES {
        return Err(LocalFileError::HeaderTooLarge { path: path.to_path_buf(), len, limit: MAX_HEADER_BYTES });
    }
    let available = file_len.saturating_sub(8);
    if len > available {
        let what = format!("JSON header ({len} bytes declared, {available} present)");
        return Err(LocalFileError::truncated(path, what));
    }
    Ok(len)
}

/// Parses and checks the JSON header of a file whose data section holds `data_len` bytes.
fn parse_json(path: &Path, json: &[u8], data_len: u64) -> Result<SafetensorsHeader, LocalFileError> {
    let value: Value = serde_json::from_slice(json)
        .map_err(|e| LocalFileError::malformed(path, format!("header is not valid JSON ({e})")))?;
    let Value::Object(entries) = value else {
        return Err(LocalFileError::malformed(path, "header is not a JSON object"));
    };
    let mut metadata = BTreeMap::new();
    let mut tensors = Vec::with_capacity(entries.len());
    for (name, entry) in &entries {
        if name == "__metadata__" {
            metadata = parse_metadata(path, entry)?;
        } else {
            tensors.push(parse_tensor(path, name, entry, data_len)?);
        }
    }
    tensors.sort_by(|a, b| a.data_offsets.cmp(&b.data_offsets).then_with(|| a.name.cmp(&b.name)));
    check_disjoint(path, &tensors)?;
    Ok(SafetensorsHeader { path: path.to_path_buf(), header_len: json.len() as u64, data_len, metadata, tensors })
}

fn parse_metadata(path: &Path, entry: &Value) -> Result<BTreeMap<String, String>, LocalFileError> {
    let Value::Object(map) = entry else {
        return Err(LocalFileError::malformed(path, "__metadata__ is not a JSON object"));
    };
    map.iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            _ => Err(LocalFileError::malformed(path, format!("__metadata__ value '{key}' is not a string"))),
        })
        .collect()
}

fn parse_tensor(path: &Path, name: &str, entry: &Value, data_len: u64) -> Result<SafetensorsTensor, LocalFileError> {
    let bad = |what: &str| LocalFileError::malformed(path, format!("tensor '{name}': {what}"));
    let Value::Object(fields) = entry else {
        return Err(bad("entry is not a JSON object"));
    };
    let dtype_name = fields.get("dtype").and_then(Value::as_str).ok_or_else(|| bad("no string 'dtype'"))?;
    let dtype = SafeDtype::from_name(dtype_name).ok_or_else(|| LocalFileError::UnknownDtype {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        dtype: dtype_name.to_string(),
    })?;
    let shape = u64_array(fields, "shape").ok_or_else(|| bad("'shape' is not an array of non-negative integers"))?;
    let offsets = u64_array(fields, "data_offsets");
    let Some(&[begin, end]) = offsets.as_deref() else {
        return Err(bad("'data_offsets' is not a pair of non-negative integers"));
    };
    let elements = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| bad(&format!("shape {shape:?} has more than 2^64 elements")))?;
    let bits = elements
        .checked_mul(dtype.bits())
        .ok_or_else(|| bad(&format!("shape {shape:?} of {dtype_name} is over 2^64 bits")))?;
    if bits % 8 != 0 {
        return Err(bad(&format!("{elements} elements of {dtype_name} do not fill whole bytes")));
    }
    let bytes = bits / 8;
    if end < begin || end - begin != bytes {
        let reason = format!("data_offsets [{begin}, {end}] do not hold the {bytes} bytes of {dtype_name} {shape:?}");
        return Err(bad(&reason));
    }
    if end > data_len {
        let what = format!("data of tensor '{name}' (it ends at byte {end} of a {data_len}-byte data section)");
        return Err(LocalFileError::truncated(path, what));
    }
    Ok(SafetensorsTensor { name: name.to_string(), dtype, shape, elements, data_offsets: [begin, end], bytes })
}

/// `fields[key]` as an array of `u64`, or `None` when it is missing or holds anything else.
fn u64_array(fields: &Map<String, Value>, key: &str) -> Option<Vec<u64>> {
    fields.get(key)?.as_array()?.iter().map(Value::as_u64).collect()
}

/// Rejects overlapping byte ranges; `tensors` must be sorted by offset. Empty tensors own no bytes.
fn check_disjoint(path: &Path, tensors: &[SafetensorsTensor]) -> Result<(), LocalFileError> {
    let mut previous: Option<&SafetensorsTensor> = None;
    for t in tensors.iter().filter(|t| t.bytes > 0) {
        if let Some(p) = previous {
            if t.data_offsets[0] < p.data_offsets[1] {
                let reason = format!("tensors '{}' and '{}' overlap in the data section", p.name, t.name);
                return Err(LocalFileError::malformed(path, reason));
            }
        }
        previous = Some(t);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(json: &str, data_len: usize) -> Vec<u8> {
        let mut out = (json.len() as u64).to_le_bytes().to_vec();
        out.extend_from_slice(json.as_bytes());
        out.resize(out.len() + data_len, 0);
        out
    }

    #[test]
    fn sizes_follow_dtype_bits() {
        let json = r#"{"__metadata__":{"format":"pt"},
            "b":{"dtype":"F4","shape":[2,3],"data_offsets":[8,11]},
            "a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}"#;
        let header = parse_header_bytes(&file(json, 11)).unwrap();
        assert_eq!(header.metadata.get("format").map(String::as_str), Some("pt"));
        let names: Vec<_> = header.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(header.tensors[1].bytes, 3);
        assert_eq!(header.total_bytes(), 11);
        assert_eq!(header.data_len, 11);
    }

    #[test]
    fn sub_byte_tensors_must_fill_whole_bytes() {
        let json = r#"{"x":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#;
        let err = parse_header_bytes(&file(json, 2)).unwrap_err();
        assert!(err.to_string().contains("do not fill whole bytes"), "{err}");
    }

    #[test]
    fn overlapping_ranges_are_rejected() {
        let json = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},
                       "b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}"#;
        let err = parse_header_bytes(&file(json, 6)).unwrap_err();
        assert!(err.to_string().contains("overlap"), "{err}");
    }

    #[test]
    fn shape_overflow_is_an_error_not_a_panic() {
        let json = r#"{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}"#;
        assert!(matches!(parse_header_bytes(&file(json, 0)), Err(LocalFileError::Malformed { .. })));
        let json = r#"{"a":{"dtype":"F64","shape":[4294967295,4294967295],"data_offsets":[0,0]}}"#;
        assert!(matches!(parse_header_bytes(&file(json, 0)), Err(LocalFileError::Malformed { .. })));
    }

    #[test]
    fn dtype_names_round_trip() {
        for (dtype, name, _) in DTYPES {
            assert_eq!(SafeDtype::from_name(name), Some(dtype));
            assert_eq!(dtype.name(), name);
        }
        assert_eq!(SafeDtype::from_name("bf16"), None);
    }
}
