//! `KvFormat`: how the KV cache stores keys and values (`--kv-cache`), and their exact bytes.
//!
//! A cache row is one token's keys (or values) in one layer: `n_kv_heads · head_dim` elements.
//! Block formats quantize along that row, as llama.cpp does for its K and V tensors of
//! `n_embd_k_gqa` elements per token, so a row holds `ceil(row / 32)` blocks.
//!
//! Worked example, Llama-2-7B (32 layers, 32 KV heads × 128): a row is 4096 elements; per token,
//! K and V in all layers are 2·32 rows = 524,288 B in bf16, 262,144 B in fp8, 278,528 B in q8_0
//! (128 blocks of 34 B per row) and 147,456 B in q4_0 (128 blocks of 18 B).
//!
//! mlx-lm's quantized cache (`--kv-bits`, `QuantizedKVCache`) is `mx.quantize` along each head's
//! `head_dim`: per group of 64 elements (`--kv-group-size`'s default), packed codes plus a scale
//! and a bias in the keys' 16-bit dtype. Llama-2-7B in mlx-4bit: 4096 · 4 / 8 + 64 · 2 · 2 =
//! 2,304 B per row, 147,456 B per token, as q4_0.

use super::ggml::GgmlType;
use crate::catalog::suggest::{closest, did_you_mean};
use crate::units::Bytes;
use serde::{Serialize, Serializer};

/// A KV-cache element format. Serializes as its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KvFormat {
    Bf16,
    Fp16,
    /// FP8 E4M3, 1 byte per element (per-tensor scales live outside the cache).
    Fp8,
    /// llama.cpp Q8_0: blocks of 32 int8 values with an f16 scale, 34 B.
    Q8_0,
    /// llama.cpp Q4_0: blocks of 32 4-bit values with an f16 scale, 18 B.
    Q4_0,
    /// mlx-lm `--kv-bits 4`: groups of 64 4-bit codes with a 16-bit scale and bias, 36 B.
    Mlx4,
    /// mlx-lm `--kv-bits 8`: groups of 64 8-bit codes with a 16-bit scale and bias, 68 B.
    Mlx8,
}

/// mlx-lm's `--kv-group-size` default: elements sharing one scale and bias.
pub const MLX_KV_GROUP: u64 = 64;

/// An id that names no KV-cache format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown KV-cache format '{input}'{} (headroom formats lists all)", did_you_mean(.suggestions))]
pub struct UnknownKvFormat {
    pub input: String,
    /// The closest ids, best first (at most three).
    pub suggestions: Vec<String>,
}

const ALL: [(KvFormat, &str, &str); 7] = [
    (KvFormat::Bf16, "bf16", "bfloat16, 2 bytes per element"),
    (KvFormat::Fp16, "fp16", "float16, 2 bytes per element"),
    (KvFormat::Fp8, "fp8", "FP8 E4M3, 1 byte per element (vLLM --kv-cache-dtype fp8)"),
    (KvFormat::Q8_0, "q8_0", "llama.cpp q8_0: 34 bytes per 32 elements (8.5 bits)"),
    (KvFormat::Q4_0, "q4_0", "llama.cpp q4_0: 18 bytes per 32 elements (4.5 bits)"),
    (KvFormat::Mlx4, "mlx-4bit", "mlx-lm --kv-bits 4: 36 bytes per 64 elements (4.5 bits)"),
    (KvFormat::Mlx8, "mlx-8bit", "mlx-lm --kv-bits 8: 68 bytes per 64 elements (8.5 bits)"),
];

impl KvFormat {
    /// Every KV format.
    pub fn all() -> impl Iterator<Item = KvFormat> {
        ALL.iter().map(|r| r.0)
    }

    fn row(self) -> &'static (KvFormat, &'static str, &'static str) {
        &ALL[self as usize]
    }

    /// The format with id `input` (case-insensitive; `f16` is accepted for fp16).
    pub fn parse(input: &str) -> Result<KvFormat, UnknownKvFormat> {
        let normal = |s: &str| s.trim().to_ascii_lowercase().replace('-', "_");
        let wanted = normal(input);
        if wanted == "f16" {
            return Ok(KvFormat::Fp16);
        }
        ALL.iter().find(|r| normal(r.1) == wanted).map(|r| r.0).ok_or_else(|| UnknownKvFormat {
            input: input.to_string(),
            suggestions: closest(input, ALL.iter().map(|r| r.1)),
        })
    }

    pub fn id(self) -> &'static str {
        self.row().1
    }

    pub fn description(self) -> &'static str {
        self.row().2
    }

    /// The GGML block type of the block formats.
    pub fn ggml_type(self) -> Option<GgmlType> {
        match self {
            KvFormat::Q8_0 => Some(GgmlType::Q8_0),
            KvFormat::Q4_0 => Some(GgmlType::Q4_0),
            _ => None,
        }
    }

    /// The code width of mlx-lm's quantized caches (`--kv-bits`).
    pub fn mlx_bits(self) -> Option<u64> {
        match self {
            KvFormat::Mlx4 => Some(4),
            KvFormat::Mlx8 => Some(8),
            _ => None,
        }
    }

    /// Bits per element, block scales included (8.5 for q8_0).
    pub fn bits_per_element(self) -> f64 {
        match self {
            KvFormat::Bf16 | KvFormat::Fp16 => 16.0,
            KvFormat::Fp8 => 8.0,
            KvFormat::Q8_0 | KvFormat::Q4_0 => self.ggml_type().map_or(0.0, GgmlType::bits_per_weight),
            KvFormat::Mlx4 | KvFormat::Mlx8 => self.bytes(MLX_KV_GROUP, 1).0 as f64 * 8.0 / MLX_KV_GROUP as f64,
        }
    }

    /// Exact bytes of `rows` cache rows of `elements_per_row` elements each; block formats
    /// quantize along the row, padding its last block.
    pub fn bytes(self, elements_per_row: u64, rows: u64) -> Bytes {
        let per_row = match self {
            KvFormat::Bf16 | KvFormat::Fp16 => 2 * elements_per_row,
            KvFormat::Fp8 => elements_per_row,
            KvFormat::Q8_0 | KvFormat::Q4_0 => {
                let g = self.ggml_type().expect("block formats have a ggml type");
                elements_per_row.div_ceil(g.block_size()) * g.type_size()
            }
            // Groups lie within a head (`mx.quantize` over the last axis, head_dim, which mlx-lm
            // needs to be a multiple of the group), so a row of whole heads has whole groups.
            KvFormat::Mlx4 | KvFormat::Mlx8 => {
                let bits = self.mlx_bits().unwrap_or(16);
                elements_per_row * bits / 8 + elements_per_row.div_ceil(MLX_KV_GROUP) * 2 * 2
            }
        };
        Bytes(per_row * rows)
    }

    /// Exact bytes of one token's keys and values in one layer: a K row of `k_width` elements
    /// and a V row of `v_width` (`n_kv_heads · head_dim` each for GQA).
    pub fn bytes_per_token_layer(self, k_width: u64, v_width: u64) -> Bytes {
        self.bytes(k_width, 1) + self.bytes(v_width, 1)
    }
}

impl Serialize for KvFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl std::fmt::Display for KvFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for KvFormat {
    type Err = UnknownKvFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        KvFormat::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_2_7b_bytes_per_token() {
        let per_token = |f: KvFormat| f.bytes_per_token_layer(4096, 4096).0 * 32;
        assert_eq!(per_token(KvFormat::Bf16), 524_288);
        assert_eq!(per_token(KvFormat::Fp8), 262_144);
        assert_eq!(per_token(KvFormat::Q8_0), 278_528);
        assert_eq!(per_token(KvFormat::Q4_0), 147_456);
        assert_eq!(per_token(KvFormat::Mlx4), 147_456);
        assert_eq!(per_token(KvFormat::Mlx8), 278_528);
    }

    #[test]
    fn ids_round_trip_case_insensitively() {
        for (i, f) in KvFormat::all().enumerate() {
            assert_eq!(f as usize, i);
            assert_eq!(KvFormat::parse(&f.id().to_uppercase()), Ok(f));
        }
        assert_eq!(KvFormat::parse("F16"), Ok(KvFormat::Fp16));
        assert_eq!(KvFormat::Q8_0.bits_per_element(), 8.5);
        assert_eq!(KvFormat::parse("MLX_4BIT"), Ok(KvFormat::Mlx4));
        assert_eq!(KvFormat::Mlx4.bits_per_element(), 4.5);
    }

    #[test]
    fn block_formats_pad_partial_blocks() {
        assert_eq!(KvFormat::Q4_0.bytes(40, 3), Bytes(2 * 18 * 3));
        assert_eq!(KvFormat::Fp16.bytes(40, 3), Bytes(240));
    }

    #[test]
    fn unknown_ids_suggest() {
        let err = KvFormat::parse("q8").unwrap_err();
        assert_eq!(err.to_string(), "unknown KV-cache format 'q8'; did you mean q8_0? (headroom formats lists all)");
    }
}
