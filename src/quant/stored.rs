//! How one tensor is stored (`StoredType`), and the exact byte layouts of the weight-only
//! quantization schemes of Hugging Face-style checkpoints (`QuantScheme`).
//!
//! Shapes follow `TensorDesc`: `rows` = output features (N), `cols` = input features (K), the
//! contiguous dimension along which groups and blocks run. Worked example, Llama-2-7B's `q_proj`
//! (N = K = 4096, 16,777,216 weights; bf16: 33,554,432 B):
//!
//! | scheme | layout | bytes |
//! |---|---|---|
//! | fp8 | 16,777,216 (e4m3) + 4096·4 (fp32 per row) | 16,793,600 |
//! | fp8-block | 16,777,216 + 32·32·4 (fp32 per 128×128 block) | 16,781,312 |
//! | int8 | 16,777,216 (int8) + 4096·4 (`SCB`, fp32 per row) | 16,793,600 |
//! | nf4 | 8,388,608 (packed) + 262,144·4 (fp32 absmax per 64) + 64 (code) | 9,437,248 |
//! | nf4-dq | 8,388,608 + 262,144 (u8 absmax) + 1024·4 (fp32 per 256 blocks) + 4 + 64 | 8,654,916 |
//! | gptq | 8,388,608 + 32·4096·2 (scales) + 32·512·4 (qzeros) + 4096·4 (g_idx) | 8,732,672 |
//! | awq | 8,388,608 + 32·4096·2 + 32·512·4 | 8,716,288 |
//! | mxfp4 | 4096·128 blocks · (16 + 1 e8m0) | 8,912,896 |
//! | nvfp4 | 8,388,608 + 4096·256 (e4m3 per 16) + 2·4 (fp32 per tensor) | 9,437,192 |
//! | w4a16 | 8,388,608 (int32-packed) + 4096·32·2 (bf16 per 128) + 2·4 (shape) | 8,650,760 |
//! | w4a16-g32 | 8,388,608 + 4096·128·2 (bf16 per 32) + 2·4 | 9,437,192 |

use super::ggml::GgmlType;
use crate::model::tensors::TensorDesc;
use serde::{Serialize, Serializer};

/// A plain floating-point storage type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FloatType {
    F32,
    F16,
    Bf16,
}

impl FloatType {
    pub fn bytes(self) -> u64 {
        match self {
            FloatType::F32 => 4,
            FloatType::F16 | FloatType::Bf16 => 2,
        }
    }

    /// Display name, which is also the weight-format id of a checkpoint stored wholly in it.
    pub fn name(self) -> &'static str {
        match self {
            FloatType::F32 => "fp32",
            FloatType::F16 => "fp16",
            FloatType::Bf16 => "bf16",
        }
    }
}

/// Weight-only quantization of a checkpoint's linear layers, as stored in its safetensors and
/// held in GPU memory by the engines that load it (transformers, vLLM).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QuantScheme {
    /// FP8 E4M3 weights with one fp32 scale per output channel (llm-compressor `FP8_DYNAMIC`,
    /// `weight_scale` of shape [N, 1]; activations are scaled at run time, so no `input_scale`).
    /// Per-channel is the common layout of published FP8 checkpoints; a per-tensor scale would
    /// differ by 4·(N − 1) bytes, a rounding error.
    Fp8Channel,
    /// FP8 E4M3 weights with one fp32 `weight_scale` and one fp32 static `input_scale` per tensor
    /// (Mistral's FP8 releases, `"weight_block_size": null, "activation_scheme": "static"`:
    /// Ministral 3, Devstral 2).
    Fp8Tensor,
    /// FP8 E4M3 weights with one fp32 `weight_scale_inv` per 128×128 block (DeepSeek-V3).
    Fp8Block,
    /// bitsandbytes LLM.int8(): int8 weights (`CB`) and one fp32 absmax scale per row (`SCB`).
    Int8Row,
    /// bitsandbytes NF4: 4-bit codes, two per byte, over the flattened tensor; one fp32 absmax
    /// per 64 weights; the 16-entry fp32 NF4 code table kept with each tensor's quant state.
    Nf4,
    /// bitsandbytes NF4 with double quantization (QLoRA): absmax stored as u8 codes, blockwise
    /// quantized again with one fp32 scale per 256 absmax values, plus an fp32 offset and the
    /// NF4 code table per tensor. The 256-entry dynamic map of the second level is one cached
    /// tensor per device, shared by all layers, and not counted.
    Nf4Double,
    /// GPTQ 4-bit, group 128 (AutoGPTQ / GPTQModel layout): `qweight` int32 [K/8, N], `qzeros`
    /// int32 [K/g, N/8], `scales` fp16 [K/g, N], `g_idx` int32 [K] (always saved).
    GptqG128,
    /// GPTQ 4-bit, group 32: the same tensors with four times the groups.
    GptqG32,
    /// GPTQ 8-bit, group 128: `qweight` int32 [K/4, N], `qzeros` int32 [K/g, N/4], `scales`, `g_idx`.
    Gptq8G128,
    /// AWQ 4-bit, group 128 (AutoAWQ GEMM layout): `qweight` int32 [K, N/8], `qzeros` int32
    /// [K/g, N/8], `scales` fp16 [K/g, N]; no `g_idx`.
    AwqG128,
    /// OCP MXFP4: blocks of 32 FP4 (E2M1) weights along K, 16 bytes, plus one E8M0 scale byte.
    Mxfp4,
    /// NVIDIA NVFP4 (ModelOpt layout): FP4 weights [N, K/2], one E4M3 scale per 16 along K, and two
    /// fp32 scalars per tensor (`weight_scale_2`, the global weight scale, and `input_scale`).
    Nvfp4,
    /// compressed-tensors `pack-quantized` INT4, symmetric, group 128 (llm-compressor's `W4A16`
    /// preset, RedHatAI's `*-quantized.w4a16` checkpoints): `weight_packed` int32 [N, K/8] (eight
    /// codes a word along K), `weight_scale` [N, K/128] in the model's 16-bit dtype, and
    /// `weight_shape` int32 [2]; no zero point (symmetric), no `g_idx` (no activation order).
    W4a16G128,
    /// The same layout with a group of 32: Kimi K2 Thinking's, K2.5's and K2.6's native INT4
    /// (quantization-aware training), on the routed experts only.
    W4a16G32,
    /// MLX affine quantization as `mlx_lm.convert -q` writes it (`mx.quantize`, mode "affine",
    /// group 64): the codes packed low to high bits into uint32 `weight` [N, K·bits/32], and one
    /// `scales` and one `biases` entry per 64 weights along K, in the model's 16-bit dtype.
    Mlx3,
    Mlx4,
    Mlx6,
    Mlx8,
    /// MLX's gpt-oss checkpoints (mlx-community `*-MXFP4-Q8`): the routed experts as released in
    /// MXFP4 (`mode="mxfp4"`, group 32), every other quantizable module MLX affine 8-bit. A
    /// format, not one tensor's layout: each tensor takes `Mxfp4` or `Mlx8`.
    Mxfp4Mlx8,
}

/// MLX's affine group along K (`mlx_lm.convert`'s default `--q-group-size`).
pub const MLX_GROUP: u64 = 64;

/// Bytes of `groups × cols` entries packed `per_word` to an int32 word along `cols`.
fn packed_words(groups: u64, cols: u64, per_word: u64) -> u64 {
    groups * cols.div_ceil(per_word) * 4
}

/// compressed-tensors `pack-quantized` symmetric INT4 tensors of one N×K matrix in groups of
/// `group` along K: packed codes, one 16-bit scale a group, and the int32 [2] `weight_shape`.
fn pack_quantized_int4_bytes(group: u64, n: u64, k: u64) -> u64 {
    packed_words(n, k, 8) + n * k.div_ceil(group) * 2 + 2 * 4
}

/// GPTQ / AWQ tensors of one N×K matrix with `bits`-bit weights in groups of `group` along K.
fn gptq_bytes(bits: u64, group: u64, n: u64, k: u64, g_idx: bool) -> u64 {
    let per_word = 32 / bits;
    let groups = k.div_ceil(group);
    let qweight = packed_words(n, k, per_word);
    let qzeros = packed_words(groups, n, per_word);
    let scales = groups * n * 2;
    qweight + qzeros + scales + if g_idx { k * 4 } else { 0 }
}

impl QuantScheme {
    /// Name for display (`gptq-4bit-g128`).
    pub fn name(self) -> &'static str {
        match self {
            QuantScheme::Fp8Channel => "fp8-e4m3-channel",
            QuantScheme::Fp8Tensor => "fp8-e4m3-tensor",
            QuantScheme::Fp8Block => "fp8-e4m3-block128",
            QuantScheme::Int8Row => "int8-llm.int8",
            QuantScheme::Nf4 => "nf4",
            QuantScheme::Nf4Double => "nf4-double-quant",
            QuantScheme::GptqG128 => "gptq-4bit-g128",
            QuantScheme::GptqG32 => "gptq-4bit-g32",
            QuantScheme::Gptq8G128 => "gptq-8bit-g128",
            QuantScheme::AwqG128 => "awq-4bit-g128",
            QuantScheme::Mxfp4 => "mxfp4",
            QuantScheme::Nvfp4 => "nvfp4",
            QuantScheme::W4a16G128 => "int4-sym-g128-packed",
            QuantScheme::W4a16G32 => "int4-sym-g32-packed",
            QuantScheme::Mlx3 => "mlx-affine-3bit-g64",
            QuantScheme::Mlx4 => "mlx-affine-4bit-g64",
            QuantScheme::Mlx6 => "mlx-affine-6bit-g64",
            QuantScheme::Mlx8 => "mlx-affine-8bit-g64",
            QuantScheme::Mxfp4Mlx8 => "mxfp4-experts-mlx-affine-8bit",
        }
    }

    /// Whether mlx-lm writes this scheme (and only it loads it).
    pub fn is_mlx(self) -> bool {
        self.mlx_bits().is_some() || self == QuantScheme::Mxfp4Mlx8
    }

    /// Bits per code of an MLX affine scheme; `None` for the others.
    pub fn mlx_bits(self) -> Option<u64> {
        match self {
            QuantScheme::Mlx3 => Some(3),
            QuantScheme::Mlx4 => Some(4),
            QuantScheme::Mlx6 => Some(6),
            QuantScheme::Mlx8 => Some(8),
            _ => None,
        }
    }

    /// Exact bytes of one N×K matrix (`rows` × `cols`): weights, scales, zeros, indices and
    /// per-tensor constants. Partial groups and blocks at the end of a row are padded, as the
    /// packers do.
    pub fn matrix_bytes(self, rows: u64, cols: u64) -> u64 {
        let (n, k) = (rows, cols);
        let numel = n * k;
        match self {
            QuantScheme::Fp8Channel | QuantScheme::Int8Row => numel + n * 4,
            QuantScheme::Fp8Tensor => numel + 2 * 4,
            QuantScheme::Fp8Block => numel + n.div_ceil(128) * k.div_ceil(128) * 4,
            QuantScheme::Nf4 => numel.div_ceil(2) + numel.div_ceil(64) * 4 + 16 * 4,
            QuantScheme::Nf4Double => {
                let blocks = numel.div_ceil(64);
                numel.div_ceil(2) + blocks + blocks.div_ceil(256) * 4 + 4 + 16 * 4
            }
            QuantScheme::GptqG128 => gptq_bytes(4, 128, n, k, true),
            QuantScheme::GptqG32 => gptq_bytes(4, 32, n, k, true),
            QuantScheme::Gptq8G128 => gptq_bytes(8, 128, n, k, true),
            QuantScheme::AwqG128 => gptq_bytes(4, 128, n, k, false),
            QuantScheme::Mxfp4 => n * k.div_ceil(32) * 17,
            QuantScheme::Nvfp4 => n * k.div_ceil(16) * 9 + 2 * 4,
            QuantScheme::W4a16G128 => pack_quantized_int4_bytes(128, n, k),
            QuantScheme::W4a16G32 => pack_quantized_int4_bytes(32, n, k),
            QuantScheme::Mlx3 | QuantScheme::Mlx4 | QuantScheme::Mlx6 | QuantScheme::Mlx8 | QuantScheme::Mxfp4Mlx8 => {
                let bits = self.mlx_bits().unwrap_or(8);
                n * (k * bits).div_ceil(32) * 4 + n * k.div_ceil(MLX_GROUP) * 2 * 2
            }
        }
    }

    /// Bits per weight on a large matrix, counting the overheads that grow with the weights
    /// (group scales and zeros) but not per-row or per-tensor ones (`g_idx`, per-channel scales,
    /// code tables), which `matrix_bytes` adds exactly.
    pub fn nominal_bits_per_weight(self) -> f64 {
        match self {
            QuantScheme::Fp8Channel | QuantScheme::Fp8Tensor | QuantScheme::Int8Row => 8.0,
            QuantScheme::Fp8Block => 8.0 + 32.0 / (128.0 * 128.0),
            QuantScheme::Nf4 => 4.0 + 32.0 / 64.0,
            QuantScheme::Nf4Double => 4.0 + 8.0 / 64.0 + 32.0 / (64.0 * 256.0),
            QuantScheme::GptqG128 | QuantScheme::AwqG128 => 4.0 + 16.0 / 128.0 + 4.0 / 128.0,
            QuantScheme::GptqG32 => 4.0 + 16.0 / 32.0 + 4.0 / 32.0,
            QuantScheme::Gptq8G128 => 8.0 + 16.0 / 128.0 + 8.0 / 128.0,
            QuantScheme::Mxfp4 => 4.0 + 8.0 / 32.0,
            QuantScheme::Nvfp4 => 4.0 + 8.0 / 16.0,
            QuantScheme::W4a16G128 => 4.0 + 16.0 / 128.0,
            QuantScheme::W4a16G32 => 4.0 + 16.0 / 32.0,
            QuantScheme::Mlx3 | QuantScheme::Mlx4 | QuantScheme::Mlx6 | QuantScheme::Mlx8 => {
                self.mlx_bits().unwrap_or(8) as f64 + 32.0 / MLX_GROUP as f64
            }
            // The routed experts, most of a gpt-oss checkpoint's weights.
            QuantScheme::Mxfp4Mlx8 => QuantScheme::Mxfp4.nominal_bits_per_weight(),
        }
    }
}

/// How one tensor is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum StoredType {
    /// Plain floating point.
    Float(FloatType),
    /// A GGML block type (GGUF files).
    Ggml(GgmlType),
    /// A weight-only quantization scheme of a safetensors checkpoint.
    Quantized(QuantScheme),
}

impl StoredType {
    /// Name for display and JSON: `bf16`, `q6_k`, `gptq-4bit-g128`.
    pub fn name(self) -> &'static str {
        match self {
            StoredType::Float(f) => f.name(),
            StoredType::Ggml(g) => g.name(),
            StoredType::Quantized(q) => q.name(),
        }
    }

    /// Exact bytes of `t` (all its copies) stored in this type. A GGML type whose block does not
    /// divide the row length is padded to whole blocks per row (ggml itself refuses such a
    /// tensor; the GGUF rules never pick one).
    pub fn tensor_bytes(self, t: &TensorDesc) -> u64 {
        match self {
            StoredType::Float(f) => t.elements() * f.bytes(),
            StoredType::Ggml(g) => t.rows * t.copies * t.cols.div_ceil(g.block_size()) * g.type_size(),
            StoredType::Quantized(q) => t.copies * q.matrix_bytes(t.rows, t.cols),
        }
    }
}

impl Serialize for StoredType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const Q_PROJ: (u64, u64) = (4096, 4096);

    #[test]
    fn q_proj_layouts_match_the_module_table() {
        let b = |q: QuantScheme| q.matrix_bytes(Q_PROJ.0, Q_PROJ.1);
        assert_eq!(b(QuantScheme::Fp8Channel), 16_793_600);
        assert_eq!(b(QuantScheme::Fp8Tensor), 16_777_224);
        assert_eq!(b(QuantScheme::Fp8Block), 16_781_312);
        assert_eq!(b(QuantScheme::Int8Row), 16_793_600);
        assert_eq!(b(QuantScheme::Nf4), 9_437_248);
        assert_eq!(b(QuantScheme::Nf4Double), 8_654_916);
        assert_eq!(b(QuantScheme::GptqG128), 8_732_672);
        assert_eq!(b(QuantScheme::AwqG128), 8_716_288);
        assert_eq!(b(QuantScheme::Mxfp4), 8_912_896);
        assert_eq!(b(QuantScheme::Nvfp4), 9_437_192);
        assert_eq!(b(QuantScheme::W4a16G128), 8_650_760);
        assert_eq!(b(QuantScheme::W4a16G32), 9_437_192);
        // 4096 × 4096 / 8 codes per word × 4 B, plus 4096 × 64 groups × (scale + bias) × 2 B.
        assert_eq!(b(QuantScheme::Mlx4), 8_388_608 + 1_048_576);
        assert_eq!(b(QuantScheme::Mlx3), 6_291_456 + 1_048_576);
    }

    #[test]
    fn gptq_g128_is_the_sum_of_its_four_tensors() {
        let (n, k) = Q_PROJ;
        let expected = k * n / 2 + (k / 128) * n * 2 + (k / 128) * (n / 8) * 4 + k * 4;
        assert_eq!(QuantScheme::GptqG128.matrix_bytes(n, k), expected);
    }

    #[test]
    fn nominal_bits_match_large_matrices() {
        for q in [
            QuantScheme::Nf4,
            QuantScheme::Nf4Double,
            QuantScheme::Mxfp4,
            QuantScheme::Nvfp4,
            QuantScheme::W4a16G128,
            QuantScheme::W4a16G32,
        ] {
            let (n, k) = (16_384, 16_384);
            let bpw = 8.0 * q.matrix_bytes(n, k) as f64 / (n * k) as f64;
            assert!((bpw - q.nominal_bits_per_weight()).abs() < 1e-3, "{}: {bpw}", q.name());
        }
        assert!((QuantScheme::Nf4Double.nominal_bits_per_weight() - 4.127).abs() < 5e-4);
    }

    #[test]
    fn partial_groups_are_padded() {
        // K = 100, N = 8: qweight 13 int32 words per column, one (partial) group of zeros and scales.
        assert_eq!(gptq_bytes(4, 128, 8, 100, false), 13 * 8 * 4 + 4 + 8 * 2);
        assert_eq!(QuantScheme::Mxfp4.matrix_bytes(1, 33), 2 * 17);
    }
}
