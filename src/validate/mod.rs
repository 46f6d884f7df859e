//! `headroom validate`: builds the planned configuration for real, with random weights of the
//! exact shapes and format, runs a prefill and decode steps through our kernels, measures memory
//! with NVML at each phase and times both, and compares with the planner's `headroom` engine.

pub mod backend;
pub mod cpu;
pub mod engine;
pub mod layout;
pub mod probe;
pub mod report;
pub mod run;
pub mod train;
pub mod train_backend;
pub mod train_run;

/// The small model validate checks its GPU kernels with against [`cpu::CpuLayers`]: two layers,
/// GQA with two query heads per KV head, head_dim 128 (explicit, wider than hidden / heads).
pub const TINY_CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 128, "intermediate_size": 256,
    "num_hidden_layers": 2, "num_attention_heads": 2, "num_key_value_heads": 1, "head_dim": 128,
    "vocab_size": 256, "max_position_embeddings": 256, "torch_dtype": "bfloat16"}"#;
