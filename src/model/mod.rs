//! Model architecture: the spec (`spec`), its exact tensor inventory (`tensors`; a multimodal
//! checkpoint's vision encoder and projector in `vision`), and the readers
//! that build them from Hugging Face `config.json` files; the header readers for local checkpoints
//! (`safetensors`, `gguf`, and `local`, which opens either and classifies their tensors).

pub mod config;
pub mod gguf;
pub mod local;
pub mod safetensors;
pub mod spec;
pub mod tensors;
#[cfg(test)]
pub(crate) mod testing;
pub mod vision;
