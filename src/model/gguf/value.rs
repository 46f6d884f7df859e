//! GGUF metadata values: the thirteen value types of the spec (ggml `docs/gguf.md`,
//! `gguf_metadata_value_type`), read with bounds.
//!
//! Arrays are kept item by item when short. Long arrays, and every `tokenizer.*` array (vocabulary,
//! scores, merges: hundreds of thousands of items), are summarised: their item type and length
//! are kept and the items skipped, so reading a header costs kilobytes of memory, not megabytes.

use super::reader::Reader;
use super::{KEPT_ARRAY_ITEMS, MAX_ARRAY_DEPTH, MAX_ARRAY_ITEMS};
use crate::model::local::LocalFileError;
use serde::Serialize;
use std::io::Read;

/// The type tag of a metadata value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GgufValueType {
    U8,
    I8,
    U16,
    I16,
    U32,
    I32,
    F32,
    Bool,
    String,
    Array,
    U64,
    I64,
    F64,
}

impl GgufValueType {
    /// The type with id `id` in the file (0 = u8 ... 12 = f64).
    pub fn from_id(id: u32) -> Option<GgufValueType> {
        use GgufValueType::*;
        [U8, I8, U16, I16, U32, I32, F32, Bool, String, Array, U64, I64, F64].get(id as usize).copied()
    }

    /// Bytes of one value, for the fixed-size types.
    fn fixed_size(self) -> Option<u64> {
        use GgufValueType::*;
        match self {
            U8 | I8 | Bool => Some(1),
            U16 | I16 => Some(2),
            U32 | I32 | F32 => Some(4),
            U64 | I64 | F64 => Some(8),
            String | Array => None,
        }
    }
}

/// One metadata value.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(GgufArray),
}

/// An array value.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GgufArray {
    pub item_type: GgufValueType,
    /// Items in the file.
    pub len: u64,
    /// The items, or `None` where the array was summarised (long, or a `tokenizer.*` array).
    pub items: Option<Vec<GgufValue>>,
}

impl GgufValue {
    /// The value as a non-negative integer, whatever its integer type.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v.into()),
            GgufValue::U16(v) => Some(v.into()),
            GgufValue::U32(v) => Some(v.into()),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// Items of an array value (summarised or not).
    pub fn array_len(&self) -> Option<u64> {
        match self {
            GgufValue::Array(a) => Some(a.len),
            _ => None,
        }
    }

    pub fn value_type(&self) -> GgufValueType {
        match self {
            GgufValue::U8(_) => GgufValueType::U8,
            GgufValue::I8(_) => GgufValueType::I8,
            GgufValue::U16(_) => GgufValueType::U16,
            GgufValue::I16(_) => GgufValueType::I16,
            GgufValue::U32(_) => GgufValueType::U32,
            GgufValue::I32(_) => GgufValueType::I32,
            GgufValue::U64(_) => GgufValueType::U64,
            GgufValue::I64(_) => GgufValueType::I64,
            GgufValue::F32(_) => GgufValueType::F32,
            GgufValue::F64(_) => GgufValueType::F64,
            GgufValue::Bool(_) => GgufValueType::Bool,
            GgufValue::String(_) => GgufValueType::String,
            GgufValue::Array(_) => GgufValueType::Array,
        }
    }
}

/// Reads a value of type `ty` for metadata key `key`; `what` names it in errors.
pub(super) fn read_value<R: Read>(
    r: &mut Reader<'_, R>,
    ty: GgufValueType,
    key: &str,
    what: &str,
    depth: u32,
) -> Result<GgufValue, LocalFileError> {
    use GgufValue as V;
    Ok(match ty {
        GgufValueType::U8 => V::U8(r.u8(what)?),
        GgufValueType::I8 => V::I8(i8::from_le_bytes(r.bytes(what)?)),
        GgufValueType::U16 => V::U16(u16::from_le_bytes(r.bytes(what)?)),
        GgufValueType::I16 => V::I16(i16::from_le_bytes(r.bytes(what)?)),
        GgufValueType::U32 => V::U32(r.u32(what)?),
        GgufValueType::I32 => V::I32(i32::from_le_bytes(r.bytes(what)?)),
        GgufValueType::F32 => V::F32(f32::from_le_bytes(r.bytes(what)?)),
        GgufValueType::U64 => V::U64(r.u64(what)?),
        GgufValueType::I64 => V::I64(i64::from_le_bytes(r.bytes(what)?)),
        GgufValueType::F64 => V::F64(f64::from_le_bytes(r.bytes(what)?)),
        GgufValueType::Bool => match r.u8(what)? {
            0 => V::Bool(false),
            1 => V::Bool(true),
            b => return Err(LocalFileError::malformed(r.path(), format!("'{key}' holds {b}, not a bool (0 or 1)"))),
        },
        GgufValueType::String => V::String(r.string(what)?),
        GgufValueType::Array => V::Array(read_array(r, key, what, depth)?),
    })
}

fn read_array<R: Read>(r: &mut Reader<'_, R>, key: &str, what: &str, depth: u32) -> Result<GgufArray, LocalFileError> {
    if depth >= MAX_ARRAY_DEPTH {
        let reason = format!("'{key}' nests arrays deeper than {MAX_ARRAY_DEPTH} levels");
        return Err(LocalFileError::malformed(r.path(), reason));
    }
    let id = r.u32(what)?;
    let item_type = GgufValueType::from_id(id)
        .ok_or_else(|| LocalFileError::malformed(r.path(), format!("'{key}' has unknown array item type {id}")))?;
    let len = r.u64(what)?;
    let tokenizer = key.starts_with("tokenizer.");
    if !tokenizer && len > MAX_ARRAY_ITEMS {
        let reason = format!("'{key}' is an array of {len} items, over the {MAX_ARRAY_ITEMS}-item limit");
        return Err(LocalFileError::malformed(r.path(), reason));
    }
    if tokenizer || len > KEPT_ARRAY_ITEMS {
        skip_items(r, item_type, len, key, what, depth)?;
        return Ok(GgufArray { item_type, len, items: None });
    }
    let items = (0..len).map(|_| read_value(r, item_type, key, what, depth + 1)).collect::<Result<Vec<_>, _>>()?;
    Ok(GgufArray { item_type, len, items: Some(items) })
}

/// Reads past `len` items; the header budget bounds the work, since every item costs bytes.
fn skip_items<R: Read>(
    r: &mut Reader<'_, R>,
    item_type: GgufValueType,
    len: u64,
    key: &str,
    what: &str,
    depth: u32,
) -> Result<(), LocalFileError> {
    if let Some(size) = item_type.fixed_size() {
        return r.skip(len.saturating_mul(size), what);
    }
    for _ in 0..len {
        match item_type {
            GgufValueType::String => r.skip_string(what)?,
            _ => drop(read_array(r, key, what, depth + 1)?),
        }
    }
    Ok(())
}
