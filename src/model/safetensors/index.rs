//! Sharded safetensors checkpoints: `model.safetensors.index.json` and the shards it names.
//!
//! The index (written by transformers' `save_pretrained`) is
//! `{"metadata": {"total_size": 13476839424}, "weight_map": {"lm_head.weight": "model-00002-of-00002.safetensors", ...}}`.
//! Each shard named in the weight map is read once, from the index's directory, header only; the
//! shards' own headers are the truth about dtypes and sizes, and every tensor the weight map
//! places in a shard must really be there.

use super::{read_header, SafetensorsHeader, SafetensorsTensor, MAX_HEADER_BYTES};
use crate::model::local::LocalFileError;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::File;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// A sharded checkpoint: the index and the headers of its shards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SafetensorsIndex {
    /// The index file.
    pub path: PathBuf,
    /// `metadata.total_size` in bytes, when the index states it. Writers do not all compute it the
    /// same way, so it is a cross-check for `total_bytes`, not a replacement.
    pub declared_total_size: Option<u64>,
    /// The header of every shard the weight map names, each read once, in file-name order.
    pub shards: Vec<SafetensorsHeader>,
}

impl SafetensorsIndex {
    /// Every tensor of every shard.
    pub fn tensors(&self) -> impl Iterator<Item = &SafetensorsTensor> {
        self.shards.iter().flat_map(|s| s.tensors.iter())
    }

    /// Bytes of all tensors in all shards.
    pub fn total_bytes(&self) -> u64 {
        self.shards.iter().map(SafetensorsHeader::total_bytes).sum()
    }
}

/// Reads `model.safetensors.index.json` at `path` and the header of every shard it references.
pub fn read_index(path: &Path) -> Result<SafetensorsIndex, LocalFileError> {
    let json = read_bounded(path)?;
    let (declared_total_size, weight_map) = parse_index(path, &json)?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let names: BTreeSet<&str> = weight_map.values().map(String::as_str).collect();
    let mut shards = Vec::with_capacity(names.len());
    for &shard in &names {
        check_shard_name(path, shard)?;
        let header = read_header(&dir.join(shard)).map_err(|e| match e {
            LocalFileError::NotFound { .. } => {
                LocalFileError::MissingShard { index: path.to_path_buf(), shard: shard.to_string() }
            }
            other => other,
        })?;
        shards.push(header);
    }
    let names: Vec<&str> = names.into_iter().collect();
    check_weight_map(path, &weight_map, &names, &shards)?;
    Ok(SafetensorsIndex { path: path.to_path_buf(), declared_total_size, shards })
}

/// The whole index file, refused above `MAX_HEADER_BYTES`.
fn read_bounded(path: &Path) -> Result<Vec<u8>, LocalFileError> {
    let file = File::open(path).map_err(|e| LocalFileError::io(path, e))?;
    let len = file.metadata().map_err(|e| LocalFileError::io(path, e))?.len();
    if len > MAX_HEADER_BYTES {
        return Err(LocalFileError::HeaderTooLarge { path: path.to_path_buf(), len, limit: MAX_HEADER_BYTES });
    }
    let mut bytes = Vec::new();
    file.take(MAX_HEADER_BYTES).read_to_end(&mut bytes).map_err(|e| LocalFileError::io(path, e))?;
    Ok(bytes)
}

/// `metadata.total_size` and the weight map (tensor name -> shard file name).
fn parse_index(path: &Path, json: &[u8]) -> Result<(Option<u64>, BTreeMap<String, String>), LocalFileError> {
    let bad = |reason: String| LocalFileError::malformed(path, reason);
    let value: Value = serde_json::from_slice(json).map_err(|e| bad(format!("index is not valid JSON ({e})")))?;
    let total_size = value.pointer("/metadata/total_size").and_then(Value::as_u64);
    let Some(Value::Object(map)) = value.get("weight_map") else {
        return Err(bad("index has no 'weight_map' object".to_string()));
    };
    let weight_map = map
        .iter()
        .map(|(tensor, shard)| match shard {
            Value::String(s) => Ok((tensor.clone(), s.clone())),
            _ => Err(bad(format!("weight_map entry '{tensor}' is not a file name"))),
        })
        .collect::<Result<BTreeMap<_, _>, _>>()?;
    if weight_map.is_empty() {
        return Err(bad("index has an empty 'weight_map'".to_string()));
    }
    Ok((total_size, weight_map))
}

/// Shards must live under the index's directory: no absolute paths, no `..`.
fn check_shard_name(path: &Path, shard: &str) -> Result<(), LocalFileError> {
    let plain = !shard.is_empty() && Path::new(shard).components().all(|c| matches!(c, Component::Normal(_)));
    if plain {
        Ok(())
    } else {
        Err(LocalFileError::malformed(path, format!("shard name '{shard}' leaves the index's directory")))
    }
}

/// Each tensor lives in exactly one shard, and where the weight map says it does.
fn check_weight_map(
    path: &Path,
    weight_map: &BTreeMap<String, String>,
    names: &[&str],
    shards: &[SafetensorsHeader],
) -> Result<(), LocalFileError> {
    let mut home: HashMap<&str, &str> = HashMap::new();
    for (&shard, header) in names.iter().zip(shards) {
        for t in &header.tensors {
            if let Some(other) = home.insert(t.name.as_str(), shard) {
                let reason = format!("tensor '{}' is in both '{other}' and '{shard}'", t.name);
                return Err(LocalFileError::malformed(path, reason));
            }
        }
    }
    for (tensor, shard) in weight_map {
        if home.get(tensor.as_str()) != Some(&shard.as_str()) {
            let reason = format!("the index puts tensor '{tensor}' in '{shard}', which does not hold it");
            return Err(LocalFileError::malformed(path, reason));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_json_is_checked() {
        let p = Path::new("x.json");
        let ok = br#"{"metadata":{"total_size":10},"weight_map":{"a":"s1.safetensors","b":"s1.safetensors"}}"#;
        let (total, map) = parse_index(p, ok).unwrap();
        assert_eq!(total, Some(10));
        assert_eq!(map.len(), 2);
        assert!(parse_index(p, br#"{"weight_map":{"a":1}}"#).is_err());
        assert!(parse_index(p, br#"{"metadata":{}}"#).is_err());
        assert!(parse_index(p, b"[1,2]").is_err());
    }

    #[test]
    fn shard_names_stay_in_the_directory() {
        let p = Path::new("x.json");
        assert!(check_shard_name(p, "model-00001-of-00002.safetensors").is_ok());
        assert!(check_shard_name(p, "../secret.safetensors").is_err());
        assert!(check_shard_name(p, "/etc/passwd").is_err());
        assert!(check_shard_name(p, "").is_err());
    }
}
