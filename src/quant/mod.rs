//! Weight and KV-cache formats and their exact sizes.
//!
//! - `weights`: `WeightFormat` (`--weights`), the bytes of every tensor in a format;
//! - `stored`: how one tensor is stored (`StoredType`) and the layouts of GPTQ, AWQ, bitsandbytes,
//!   FP8, MXFP4 and NVFP4 checkpoints;
//! - `gguf`, `gguf_rules`: llama.cpp file types and the type its quantizer gives each tensor;
//! - `ggml`: GGML block types with their exact block sizes;
//! - `kv`: `KvFormat` (`--kv-cache`).

pub mod ggml;
pub mod gguf;
mod gguf_rules;
pub mod kv;
pub mod stored;
pub mod weights;

pub use gguf::GgufFileType;
pub use kv::{KvFormat, UnknownKvFormat};
pub use stored::{FloatType, QuantScheme, StoredType};
pub use weights::{UnknownFormat, WeightFormat};
