//! Model architecture: the spec (`spec`), its exact tensor inventory (`tensors`), and the readers
//! that build them from Hugging Face `config.json` files.

pub mod config;
pub mod spec;
pub mod tensors;
