//! Test fixtures shared by unit tests across the crate: real architectures built through the
//! same `config.json` parser users go through.

use super::config::parse_config;
use super::spec::ModelSpec;

/// Llama-2-7B's architecture fields, as in its Hugging Face config.json.
pub const LLAMA_2_7B_CONFIG: &str = r#"{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008,
    "num_hidden_layers": 32, "num_attention_heads": 32, "vocab_size": 32000,
    "max_position_embeddings": 4096, "torch_dtype": "float16"}"#;

/// Llama-2-7B: 6,738,415,616 parameters, MHA, 32 layers.
pub fn llama_2_7b() -> ModelSpec {
    parse_config(LLAMA_2_7B_CONFIG, "llama-2-7b", "llama-2-7b").expect("the fixture parses").spec
}
