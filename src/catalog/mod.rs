//! Built-in catalogs: GPUs (`data/gpus.toml`) and models (`data/models/`), embedded in the binary.

pub mod gpus;
pub mod models;
pub mod suggest;
