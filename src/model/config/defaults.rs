//! What a family's transformers configuration class fills in when `config.json` leaves a field
//! out. Only the fields whose class default a released checkpoint relies on are listed; for the
//! others a missing field is an error that names it.
//!
//! `Gemma3TextConfig` (transformers `configuration_gemma3.py`): vocab_size 262,208,
//! num_attention_heads 8, num_key_value_heads 4, head_dim 256, max_position_embeddings 131,072,
//! sliding_window 4096, tie_word_embeddings true. Gemma 3 4B/12B/27B's `text_config` omits the
//! vocabulary (so their embeddings have 262,208 rows: 262,144 text tokens and 64 image tokens),
//! the context and, for 4B, the heads. `Qwen3Config`: head_dim 128, max_position_embeddings
//! 32,768; `Qwen3NextConfig`: head_dim 256, 2 KV heads, max_position_embeddings 32,768;
//! `Qwen3MoeConfig` derives head_dim from hidden / heads like Llama. Qwen3.5: head_dim 256 and a
//! 262,144-token context, the values of every released checkpoint (some copies of their
//! `text_config` leave the context out). `GptOssConfig`:
//! max_position_embeddings 131,072, sliding_window 128 (its other defaults are gpt-oss-120b's
//! shape, which the official files spell out). `NemotronHConfig`: vocab_size 131,072, head_dim
//! 128, 8 KV heads. `Glm4Config` (`configuration_glm4.py`): vocab_size 151,552, 32 heads, 2 KV
//! heads, head_dim 128, max_position_embeddings 131,072; `Glm4MoeConfig`: vocab_size 151,552, 96
//! heads, 8 KV heads, max_position_embeddings 131,072. `CohereConfig` and `Cohere2Config` tie
//! the embeddings (8,192 positions); `Olmo3Config` a 4096-token window; `SmolLM3Config` ties the
//! embeddings, 4 KV heads, 32,768 positions. `Llama4TextConfig`: vocab_size 202,048, 40 heads,
//! 8 KV heads, head_dim 128, 131,072 positions. `MiniMaxM2Config`: vocab_size 200,064, 48 heads,
//! 8 KV heads, head_dim 128, 196,608 positions. `Starcoder2Config` ties the embeddings (its 3B
//! and 7B files rely on it); `PhiMoEConfig` has 8 KV heads; `Qwen2MoeConfig`, `OlmoeConfig` and
//! `StableLmConfig` their released vocabularies.

use crate::model::spec::Family;

/// Class defaults of one family; `None` means the field is required (or derived).
pub(super) struct ClassDefaults {
    pub vocab_size: Option<u64>,
    pub num_attention_heads: Option<u64>,
    /// `None`: as many KV heads as query heads.
    pub num_key_value_heads: Option<u64>,
    /// `None`: hidden_size / num_attention_heads.
    pub head_dim: Option<u64>,
    /// Tokens.
    pub max_context: u64,
    pub tie_word_embeddings: bool,
    /// Tokens; `None`: no window unless the config gives one.
    pub sliding_window: Option<u64>,
}

impl ClassDefaults {
    pub fn of(family: Family) -> ClassDefaults {
        let base = ClassDefaults {
            vocab_size: None,
            num_attention_heads: None,
            num_key_value_heads: None,
            head_dim: None,
            max_context: 2048,
            tie_word_embeddings: matches!(
                family,
                Family::Gemma
                    | Family::Gemma2
                    | Family::Falcon
                    | Family::Cohere
                    | Family::Cohere2
                    | Family::SmolLM3
                    | Family::Ernie45
                    | Family::Ernie45Moe
                    | Family::Starcoder2
                    | Family::Gpt2
                    | Family::GptBigCode
                    | Family::Opt
                    | Family::Bloom
                    | Family::Mpt
                    | Family::Mamba
                    | Family::FalconMamba
            ),
            sliding_window: None,
        };
        match family {
            // `Gemma4TextConfig`: E2B's shape (8 heads of 256 over 4 KV heads), window 512.
            Family::Gemma4 => ClassDefaults {
                vocab_size: Some(262_144),
                num_attention_heads: Some(8),
                num_key_value_heads: Some(4),
                head_dim: Some(256),
                max_context: 131_072,
                tie_word_embeddings: true,
                sliding_window: Some(512),
            },
            Family::Gemma3 => ClassDefaults {
                vocab_size: Some(262_208),
                num_attention_heads: Some(8),
                num_key_value_heads: Some(4),
                head_dim: Some(256),
                max_context: 131_072,
                tie_word_embeddings: true,
                sliding_window: Some(4096),
            },
            Family::Qwen3 => ClassDefaults { head_dim: Some(128), max_context: 32_768, ..base },
            Family::Qwen3Moe => ClassDefaults { max_context: 32_768, ..base },
            // `Qwen3NextConfig`: head_dim 256 (not hidden / heads), 2 KV heads.
            Family::Qwen35 | Family::Qwen35Moe => ClassDefaults { head_dim: Some(256), max_context: 262_144, ..base },
            Family::Qwen3Next => {
                ClassDefaults { head_dim: Some(256), num_key_value_heads: Some(2), max_context: 32_768, ..base }
            }
            Family::GptOss => ClassDefaults { max_context: 131_072, sliding_window: Some(128), ..base },
            // `NemotronHConfig`: heads of 128 whatever hidden / heads is, 8 KV heads.
            Family::NemotronH => {
                ClassDefaults { vocab_size: Some(131_072), num_key_value_heads: Some(8), head_dim: Some(128), ..base }
            }
            // `Glm4Config`: GLM-4-9B-0414's shape (2 KV heads of 128).
            Family::Glm4 => ClassDefaults {
                vocab_size: Some(151_552),
                num_attention_heads: Some(32),
                num_key_value_heads: Some(2),
                head_dim: Some(128),
                max_context: 131_072,
                ..base
            },
            // `Glm4MoeConfig` has no head_dim (the modeling code falls back to hidden / heads);
            // every release writes its 128.
            Family::Glm4Moe => ClassDefaults {
                vocab_size: Some(151_552),
                num_attention_heads: Some(96),
                num_key_value_heads: Some(8),
                max_context: 131_072,
                ..base
            },
            Family::Cohere => ClassDefaults { max_context: 8192, ..base },
            // `Cohere2Config`: a 4096-token window.
            Family::Cohere2 => ClassDefaults { max_context: 8192, sliding_window: Some(4096), ..base },
            // Pure state-space models have no attention: one nominal head, no KV anywhere.
            Family::Mamba | Family::FalconMamba | Family::Mamba2 => {
                ClassDefaults { num_attention_heads: Some(1), max_context: 1 << 20, ..base }
            }
            Family::Jamba => ClassDefaults { vocab_size: Some(65_536), max_context: 262_144, ..base },
            Family::Qwen2Moe => ClassDefaults { vocab_size: Some(151_936), max_context: 32_768, ..base },
            Family::Olmoe => ClassDefaults { vocab_size: Some(50_304), max_context: 4096, ..base },
            Family::PhiMoe => {
                ClassDefaults { vocab_size: Some(32_064), num_key_value_heads: Some(8), max_context: 131_072, ..base }
            }
            Family::StableLm => ClassDefaults { vocab_size: Some(50_304), max_context: 4096, ..base },
            // `MiniMaxM2Config`: the released shape (48 heads, 8 KV heads of 128).
            Family::MiniMaxM2 => ClassDefaults {
                vocab_size: Some(200_064),
                num_attention_heads: Some(48),
                num_key_value_heads: Some(8),
                head_dim: Some(128),
                max_context: 196_608,
                ..base
            },
            // `Llama4TextConfig`: Scout's and Maverick's shared shape.
            Family::Llama4 => ClassDefaults {
                vocab_size: Some(202_048),
                num_attention_heads: Some(40),
                num_key_value_heads: Some(8),
                head_dim: Some(128),
                max_context: 131_072,
                ..base
            },
            Family::Olmo3 => ClassDefaults { sliding_window: Some(4096), ..base },
            // `SmolLM3Config`: 4 KV heads, 32,768 positions.
            Family::SmolLM3 => ClassDefaults { num_key_value_heads: Some(4), max_context: 32_768, ..base },
            // `Ernie4_5Config` (the 0.3B: 16 heads, 2 KV heads of 128 over 1024) and
            // `Ernie4_5_MoeConfig` (the 21B-A3B: 20 heads, 4 KV heads over 2560), both 103,424
            // tokens and 131,072 positions.
            Family::Ernie45 => ClassDefaults {
                vocab_size: Some(103_424),
                num_attention_heads: Some(16),
                num_key_value_heads: Some(2),
                head_dim: Some(128),
                max_context: 131_072,
                ..base
            },
            Family::Ernie45Moe => ClassDefaults {
                vocab_size: Some(103_424),
                num_attention_heads: Some(20),
                num_key_value_heads: Some(4),
                max_context: 131_072,
                ..base
            },
            // `SeedOssConfig`: Seed-OSS-36B's 80 heads and 8 KV heads of 128, 155,136 tokens and
            // 524,288 positions (its hidden size and RoPE base are not the 36B's).
            Family::SeedOss => ClassDefaults {
                vocab_size: Some(155_136),
                num_attention_heads: Some(80),
                num_key_value_heads: Some(8),
                head_dim: Some(128),
                max_context: 524_288,
                ..base
            },
            _ => base,
        }
    }
}
