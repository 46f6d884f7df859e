//! `LocalFileError`: everything that can go wrong reading a local model file's headers.
//!
//! One enum for the safetensors reader, the GGUF reader and `open`, so a caller matches one type.
//! Every message is one line that names the file and says what to do about it.

use std::io;
use std::path::{Path, PathBuf};

/// Why a local model file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LocalFileError {
    #[error("{}: no such file or directory; check the path", .path.display())]
    NotFound { path: PathBuf },

    #[error("{}: cannot read it ({source}); check that it is readable", .path.display())]
    Io { path: PathBuf, source: io::Error },

    #[error(
        "{}: the header claims {len} bytes, over the {limit}-byte limit; the file is corrupt or not \
         a model file",
        .path.display()
    )]
    HeaderTooLarge { path: PathBuf, len: u64, limit: u64 },

    #[error("{}: the file ends inside the {what}; it is incomplete, download it again", .path.display())]
    Truncated { path: PathBuf, what: String },

    #[error("{}: not a GGUF file (it starts with \"{found}\", not \"GGUF\"); pass a .gguf file", .path.display())]
    BadMagic { path: PathBuf, found: String },

    #[error(
        "{}: GGUF version {version} is not supported (headroom reads versions 2 and 3, little-endian); \
         convert the model again with a current llama.cpp",
        .path.display()
    )]
    UnsupportedVersion { path: PathBuf, version: u32 },

    #[error(
        "{}: tensor '{tensor}' has unknown dtype '{dtype}' (known: {known}); update headroom if this is \
         a new safetensors dtype",
        .path.display(),
        known = crate::model::safetensors::SafeDtype::known_names()
    )]
    UnknownDtype { path: PathBuf, tensor: String, dtype: String },

    #[error(
        "{}: tensor '{tensor}' has unknown ggml type id {id}; the file needs a newer headroom, or it \
         is corrupt",
        .path.display()
    )]
    UnknownGgmlType { path: PathBuf, tensor: String, id: u32 },

    #[error("{}: {reason}; the file is corrupt or was written by a broken tool", .path.display())]
    Malformed { path: PathBuf, reason: String },

    #[error(
        "{}: shard '{shard}' listed in the index is missing; download it into the same directory, or plan the directory's config.json alone (the architecture without the stored bytes)",
        .index.display()
    )]
    MissingShard { index: PathBuf, shard: String },

    #[error(
        "{}: no model files here (looked for *.safetensors.index.json, *.safetensors and *.gguf); \
         point at a model directory or file",
        .path.display()
    )]
    NoModelFiles { path: PathBuf },

    #[error("{}: several GGUF files ({files}); pass the one to plan for", .path.display())]
    AmbiguousGguf { path: PathBuf, files: String },

    #[error(
        "{}: not a model file; pass a directory, a .safetensors file, a model.safetensors.index.json \
         or a .gguf file",
        .path.display()
    )]
    UnsupportedFile { path: PathBuf },

    #[error(
        "{}: GGUF metadata has no '{key}'; the file is incomplete, or use the model's config.json instead",
        .path.display()
    )]
    MissingKey { path: PathBuf, key: String },

    #[error(
        "{}: GGUF architecture '{arch}' is not supported (supported: {supported}); use the model's \
         config.json instead",
        .path.display(),
        supported = crate::model::gguf::SUPPORTED_ARCHITECTURES.join(", ")
    )]
    UnsupportedArchitecture { path: PathBuf, arch: String },
}

impl LocalFileError {
    pub(crate) fn malformed(path: &Path, reason: impl Into<String>) -> Self {
        LocalFileError::Malformed { path: path.to_path_buf(), reason: reason.into() }
    }

    pub(crate) fn truncated(path: &Path, what: impl Into<String>) -> Self {
        LocalFileError::Truncated { path: path.to_path_buf(), what: what.into() }
    }

    /// An I/O error while opening or reading `path`; a missing file becomes `NotFound`.
    pub(crate) fn io(path: &Path, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::NotFound => LocalFileError::NotFound { path: path.to_path_buf() },
            _ => LocalFileError::Io { path: path.to_path_buf(), source },
        }
    }

    /// An I/O error while reading the part of the file named by `what`: running out of bytes
    /// becomes `Truncated`.
    pub(crate) fn reading(path: &Path, what: &str, source: io::Error) -> Self {
        match source.kind() {
            io::ErrorKind::UnexpectedEof => Self::truncated(path, what),
            _ => Self::io(path, source),
        }
    }
}
