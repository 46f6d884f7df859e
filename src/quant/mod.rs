//! Weight and KV-cache formats and their exact sizes.

pub mod ggml;
