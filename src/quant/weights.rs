//! `WeightFormat`: how a model's weights are stored (`--weights`), and their exact bytes.
//!
//! Three families:
//! - plain checkpoints (`fp32`, `fp16`, `bf16`): every tensor in that type;
//! - weight-only quantized checkpoints (`fp8`, `fp8-block`, `int8`, `nf4`, `nf4-dq`, `gptq`,
//!   `gptq-g32`, `gptq-8bit`, `awq`, `mxfp4`, `nvfp4`, `w4a16`, `w4a16-g32`): only the linear
//!   layers inside decoder blocks (`Role::is_block_linear`) are quantized, with the layouts of
//!   `stored.rs`; embeddings, lm_head and MoE routers stay 16-bit, norms and biases keep the
//!   checkpoint's own dtype.
//!   MLX's formats (`mlx-3bit` … `mlx-8bit`, gpt-oss's `mxfp4-q8`) quantize what `mlx_lm.convert`
//!   does: every Linear (lm_head and routers too) and the embeddings whose input dimension the
//!   64-wide group divides.
//!   `mxfp4` on a mixture-of-experts model quantizes the routed experts only, as the checkpoints
//!   that ship it do (gpt-oss: `quantization_config.quant_method = "mxfp4"` with attention,
//!   router, embeddings and lm_head in `modules_to_not_convert`) and as the loaders of that
//!   `quant_method` can (transformers' `Mxfp4HfQuantizer` replaces only the experts module;
//!   vLLM's `Mxfp4Config` gives fused-MoE layers the MXFP4 method and keeps linear layers
//!   unquantized). `w4a16-g32` on a mixture-of-experts model is Kimi K2 Thinking's native INT4
//!   and covers the routed experts only too: its compressed-tensors `ignore` list names
//!   `self_attn`, `shared_experts`, the dense layers' `mlp.*_proj` and `lm_head`;
//! - GGUF file types (`q4_k_m`, `q8_0`, `iq4_xs` ...): every tensor gets the type llama.cpp's
//!   quantizer would give it (`gguf_rules.rs`).
//!
//! A multimodal checkpoint's vision encoder and projector (`Role::is_vision`) stay in the
//! checkpoint's 16-bit dtype under every quantized format, as the quantizers that walk the
//! decoder blocks (GPTQ, AWQ) leave them; llama.cpp reads them from a separate mmproj file,
//! published in f16, so GGUF formats count them as F16 whatever the text file type. transformers'
//! on-the-fly bitsandbytes also quantizes SigLIP's linears unless `llm_int8_skip_modules` names
//! the tower; the 16-bit count is then an upper bound (by ~0.6 GB for Gemma 3 27B in NF4).
//!
//! Worked example, Llama-2-7B (6,738,415,616 parameters): `bf16` is 2 bytes each,
//! 13,476,831,232 B; `gptq` stores each `q_proj` (4096×4096) in 8,732,672 B instead of
//! 33,554,432; `q4_k_m` totals 4,080,263,168 B.

use super::gguf::GgufFileType;
use super::stored::{FloatType, QuantScheme, StoredType};
use crate::catalog::suggest::{closest, did_you_mean};
use crate::model::spec::ModelSpec;
use crate::model::tensors::{Part, Role, TensorDesc};
use crate::units::Bytes;
use serde::{Serialize, Serializer};

/// A weight format. Serializes as its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WeightFormat {
    /// A checkpoint stored wholly in one float type.
    Float(FloatType),
    /// A checkpoint whose block linear layers are quantized with this scheme.
    Quantized(QuantScheme),
    /// A GGUF file of this llama.cpp file type.
    Gguf(GgufFileType),
}

/// An id that names no weight format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown weight format '{input}'{} (headroom formats lists all)", did_you_mean(.suggestions))]
pub struct UnknownFormat {
    pub input: String,
    /// The closest ids, best first (at most three).
    pub suggestions: Vec<String>,
}

use QuantScheme as Q;

/// (scheme, id, description) of the quantized-checkpoint formats.
#[rustfmt::skip]
const QUANTIZED: [(QuantScheme, &str, &str); 19] = [
    (Q::Fp8Channel, "fp8", "FP8 E4M3 linear layers, one fp32 scale per output channel"),
    (Q::Fp8Tensor, "fp8-tensor", "FP8 E4M3 linear layers, one fp32 weight and static input scale per tensor (Mistral 3)"),
    (Q::Fp8Block, "fp8-block", "FP8 E4M3 linear layers, fp32 scale per 128x128 block (DeepSeek-V3)"),
    (Q::Int8Row, "int8", "bitsandbytes LLM.int8(): int8 linear layers, fp32 scale per row"),
    (Q::Nf4, "nf4", "bitsandbytes NF4: 4-bit, fp32 absmax per 64 weights"),
    (Q::Nf4Double, "nf4-dq", "bitsandbytes NF4 with double quantization (QLoRA)"),
    (Q::GptqG128, "gptq", "GPTQ 4-bit, group 128, zeros, int32 g_idx per input feature"),
    (Q::GptqG32, "gptq-g32", "GPTQ 4-bit, group 32, zeros, int32 g_idx per input feature"),
    (Q::Gptq8G128, "gptq-8bit", "GPTQ 8-bit, group 128, zeros, int32 g_idx per input feature"),
    (Q::AwqG128, "awq", "AWQ 4-bit, group 128, with zeros"),
    (Q::Mxfp4, "mxfp4", "OCP MXFP4: FP4 with an E8M0 scale per 32 weights"),
    (Q::Nvfp4, "nvfp4", "NVIDIA NVFP4: FP4 with an FP8 scale per 16 weights, fp32 per tensor"),
    (Q::W4a16G128, "w4a16", "compressed-tensors W4A16: INT4 symmetric, 16-bit scale per 128 weights (llm-compressor)"),
    (Q::W4a16G32, "w4a16-g32", "compressed-tensors INT4, scale per 32; MoE: routed experts only (Kimi K2 Thinking, K2.5)"),
    (Q::Mlx3, "mlx-3bit", "MLX affine 3-bit, 16-bit scale and bias per 64 weights (mlx-community 3bit)"),
    (Q::Mlx4, "mlx-4bit", "MLX affine 4-bit, 16-bit scale and bias per 64 weights (mlx-community 4bit)"),
    (Q::Mlx6, "mlx-6bit", "MLX affine 6-bit, 16-bit scale and bias per 64 weights (mlx-community 6bit)"),
    (Q::Mlx8, "mlx-8bit", "MLX affine 8-bit, 16-bit scale and bias per 64 weights (mlx-community 8bit)"),
    (Q::Mxfp4Mlx8, "mxfp4-q8", "MLX gpt-oss: MXFP4 routed experts, every other Linear and embedding MLX 8-bit"),
];

const FLOATS: [(FloatType, &str); 3] = [
    (FloatType::F32, "32-bit float checkpoint"),
    (FloatType::F16, "16-bit float (fp16) checkpoint"),
    (FloatType::Bf16, "bfloat16 checkpoint"),
];

const COUNT: usize = FLOATS.len() + QUANTIZED.len() + GgufFileType::ALL.len();

/// Every format, in the order `headroom formats` lists them.
static ALL: [WeightFormat; COUNT] = {
    let mut all = [WeightFormat::Float(FloatType::F32); COUNT];
    let mut i = 0;
    while i < FLOATS.len() {
        all[i] = WeightFormat::Float(FLOATS[i].0);
        i += 1;
    }
    let mut j = 0;
    while j < QUANTIZED.len() {
        all[i + j] = WeightFormat::Quantized(QUANTIZED[j].0);
        j += 1;
    }
    let mut k = 0;
    while k < GgufFileType::ALL.len() {
        all[i + j + k] = WeightFormat::Gguf(GgufFileType::ALL[k]);
        k += 1;
    }
    all
};

fn quantized_row(q: QuantScheme) -> &'static (QuantScheme, &'static str, &'static str) {
    QUANTIZED.iter().find(|r| r.0 == q).expect("every scheme has a row")
}

/// Lower case, with `-` and `_` alike, so `Q4-K-M` and `nf4_dq` find their formats.
fn normalize(id: &str) -> String {
    id.trim().to_ascii_lowercase().replace('-', "_")
}

impl WeightFormat {
    /// Every format.
    pub fn all() -> &'static [WeightFormat] {
        &ALL
    }

    /// The format with id `input`: case-insensitive, `-` and `_` interchangeable.
    pub fn parse(input: &str) -> Result<WeightFormat, UnknownFormat> {
        let wanted = normalize(input);
        ALL.iter().copied().find(|f| normalize(f.id()) == wanted).ok_or_else(|| UnknownFormat {
            input: input.to_string(),
            suggestions: closest(input, ALL.iter().map(|f| f.id())),
        })
    }

    /// The id users type: `bf16`, `nf4-dq`, `q4_k_m`.
    pub fn id(self) -> &'static str {
        match self {
            WeightFormat::Float(f) => f.name(),
            WeightFormat::Quantized(q) => quantized_row(q).1,
            WeightFormat::Gguf(g) => g.id(),
        }
    }

    /// One line for `headroom formats`.
    pub fn description(self) -> &'static str {
        match self {
            WeightFormat::Float(f) => FLOATS.iter().find(|r| r.0 == f).map_or("", |r| r.1),
            WeightFormat::Quantized(q) => quantized_row(q).2,
            WeightFormat::Gguf(g) => g.description(),
        }
    }

    /// Bits per weight of the format's quantized linear tensors, scales and zeros included
    /// (GPTQ 4.156, NF4 double-quant 4.127). Per-row and per-tensor extras (GPTQ's `g_idx`,
    /// per-channel scales) are left out here and counted exactly by `tensor_bytes`. For GGUF
    /// mixes this is the base type: Q4_K_M says 4.5, and its promoted tensors raise the average.
    pub fn nominal_bits_per_weight(self) -> f64 {
        match self {
            WeightFormat::Float(f) => 8.0 * f.bytes() as f64,
            WeightFormat::Quantized(q) => q.nominal_bits_per_weight(),
            WeightFormat::Gguf(g) => g.default_type().bits_per_weight(),
        }
    }

    /// Whether weights are stored in fewer bits than the compute dtype's.
    pub fn is_quantized(self) -> bool {
        match self {
            WeightFormat::Float(_) => false,
            WeightFormat::Quantized(_) => true,
            WeightFormat::Gguf(g) => g.is_quantized(),
        }
    }

    /// Bytes per element of the dtype matmuls run in: 4 for fp32 models, 2 (bf16 / fp16) for
    /// everything else, quantized formats included (their kernels dequantize to 16-bit).
    pub fn compute_dtype_bytes(self) -> u64 {
        match self {
            WeightFormat::Float(FloatType::F32) | WeightFormat::Gguf(GgufFileType::F32) => 4,
            _ => 2,
        }
    }

    /// How tensor `t` of `spec` is stored in this format.
    pub fn tensor_type(self, t: &TensorDesc, spec: &ModelSpec) -> StoredType {
        match self {
            WeightFormat::Float(f) => StoredType::Float(f),
            WeightFormat::Gguf(g) => StoredType::Ggml(g.tensor_type(t, spec)),
            WeightFormat::Quantized(q) => {
                let vector = t.is_vector() || t.part == Part::Bias || t.role.is_norm();
                if vector || t.role.is_vision() {
                    StoredType::Float(native_float(spec))
                } else if quantizes(q, t, spec) {
                    StoredType::Quantized(match q {
                        Q::Mxfp4Mlx8 if t.role.is_routed_expert() => Q::Mxfp4,
                        Q::Mxfp4Mlx8 => Q::Mlx8,
                        Q::Mlx3 | Q::Mlx4 | Q::Mlx6 if mlx_router_in_8_bits(t, spec) => Q::Mlx8,
                        _ => q,
                    })
                } else {
                    StoredType::Float(half_for(q))
                }
            }
        }
    }

    /// Exact bytes of tensor `t` (all its copies) in this format: weights, scales, zeros,
    /// `g_idx` and per-tensor constants.
    pub fn tensor_bytes(self, t: &TensorDesc, spec: &ModelSpec) -> Bytes {
        match self {
            WeightFormat::Gguf(g) => Bytes(g.tensor_bytes(t, spec)),
            _ => Bytes(self.tensor_type(t, spec).tensor_bytes(t)),
        }
    }

    /// Exact bytes of tensor `t`, where `quantized_lm_head` says the quantizer covers lm_head
    /// like every other linear layer (LitGPT's bitsandbytes plugin replaces every `nn.Linear`);
    /// other tensors as `tensor_bytes`. Llama-2-7B's lm_head in NF4: 131,072,000 weights ×
    /// 4.5 bits = 73.7 MB instead of 262 MB in bf16.
    pub fn tensor_bytes_with_head(self, t: &TensorDesc, spec: &ModelSpec, quantized_lm_head: bool) -> Bytes {
        match self {
            WeightFormat::Quantized(q)
                if quantized_lm_head && t.role == Role::Output && !t.is_vector() && t.part != Part::Bias =>
            {
                Bytes(StoredType::Quantized(q).tensor_bytes(t))
            }
            _ => self.tensor_bytes(t, spec),
        }
    }

    /// Exact bytes of all `tensors` (the model's `inventory`) in this format.
    pub fn weight_bytes(self, spec: &ModelSpec, tensors: &[TensorDesc]) -> Bytes {
        Bytes(tensors.iter().map(|t| self.tensor_bytes(t, spec).0).sum())
    }
}

/// Whether scheme `q` quantizes weight matrix `t`: every linear layer inside the decoder blocks,
/// except that MXFP4 and `w4a16-g32` on a mixture-of-experts model cover the routed experts only
/// (gpt-oss-120b: 36 × 128 experts of 5760 × 2880 and 2880 × 2880 in 60,914,073,600 B, the other
/// 2,167,371,072 parameters in bf16; Kimi K2 Thinking: 60 × 384 × 3 experts' matrices of
/// 2048 × 7168 at 4.5 bits with their shapes, 570,761,441,280 B, the other 11,722,208,768
/// parameters in bf16).
///
/// MLX's `nn.quantize` takes every module with `to_quantized`: each `Linear` (lm_head and the
/// routers too) and `Embedding` (the token and position tables), whose input dimension the
/// group divides (`mlx_lm.utils.quantize_model`); norms stay in the model's dtype.
fn quantizes(q: QuantScheme, t: &TensorDesc, spec: &ModelSpec) -> bool {
    match q {
        Q::Mxfp4 | Q::W4a16G32 if spec.moe.is_some() => t.role.is_routed_expert(),
        Q::Mlx3 | Q::Mlx4 | Q::Mlx6 | Q::Mlx8 | Q::Mxfp4Mlx8 => {
            let module = t.role.is_block_linear()
                || matches!(
                    t.role,
                    Role::TokenEmbd
                        | Role::PosEmbd
                        | Role::PerLayerEmbd
                        | Role::PerLayerModelProj
                        | Role::Output
                        | Role::FfnGateInp
                        | Role::FfnGateInpShexp
                );
            module && t.cols % super::stored::MLX_GROUP == 0
        }
        _ => t.role.is_block_linear(),
    }
}

/// mlx-lm keeps some MoE models' routers in 8 bits whatever the bits asked (the model module's
/// `quant_predicate`: `mlp.gate` and `shared_expert_gate` of its qwen3_next and qwen3_5 modules,
/// `{"group_size": 64, "bits": 8}`; Gemma 4's `router.proj`, Q8 in mlx-community's 26B-A4B 4-bit
/// file). Gemma 4 26B-A4B: 30 routers of 128 × 2816 at 8.5 bits instead of 4.5, 5,406,720 B more.
fn mlx_router_in_8_bits(t: &TensorDesc, spec: &ModelSpec) -> bool {
    use crate::model::spec::Family;
    matches!(t.role, Role::FfnGateInp | Role::FfnGateInpShexp)
        && matches!(spec.family, Family::Qwen3Next | Family::Qwen35Moe | Family::Gemma4)
}

/// The checkpoint's own dtype, for norms, biases and the vision tower (a 2-byte dtype is shown
/// as bf16).
fn native_float(spec: &ModelSpec) -> FloatType {
    if spec.native_dtype_bytes >= 4 {
        FloatType::F32
    } else {
        FloatType::Bf16
    }
}

/// The 16-bit type a quantized checkpoint keeps embeddings, lm_head and routers in: fp16 for
/// GPTQ and AWQ (their kernels run in fp16), bf16 otherwise. Both are 2 bytes.
fn half_for(q: QuantScheme) -> FloatType {
    match q {
        Q::GptqG128 | Q::GptqG32 | Q::Gptq8G128 | Q::AwqG128 => FloatType::F16,
        _ => FloatType::Bf16,
    }
}

impl Serialize for WeightFormat {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl std::fmt::Display for WeightFormat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

impl std::str::FromStr for WeightFormat {
    type Err = UnknownFormat;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        WeightFormat::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ids_are_unique_and_round_trip() {
        let mut seen = HashSet::new();
        for &f in WeightFormat::all() {
            assert!(seen.insert(normalize(f.id())), "duplicate id {}", f.id());
            assert_eq!(WeightFormat::parse(f.id()), Ok(f));
            assert_eq!(WeightFormat::parse(&f.id().to_uppercase()), Ok(f));
            assert!(!f.description().is_empty(), "{} has no description", f.id());
        }
        assert_eq!(seen.len(), COUNT);
    }

    #[test]
    fn parsing_is_case_and_separator_insensitive() {
        assert_eq!(WeightFormat::parse("Q4_K_M"), Ok(WeightFormat::Gguf(GgufFileType::Q4_K_M)));
        assert_eq!(WeightFormat::parse("q4-k-m"), Ok(WeightFormat::Gguf(GgufFileType::Q4_K_M)));
        assert_eq!(WeightFormat::parse("NF4_DQ"), Ok(WeightFormat::Quantized(Q::Nf4Double)));
        assert_eq!(WeightFormat::parse(" bf16 "), Ok(WeightFormat::Float(FloatType::Bf16)));
    }

    #[test]
    fn unknown_ids_suggest_the_closest() {
        let err = WeightFormat::parse("q4km").unwrap_err();
        assert_eq!(err.suggestions, ["q4_k_m"]);
        assert_eq!(err.to_string(), "unknown weight format 'q4km'; did you mean q4_k_m? (headroom formats lists all)");
        let err = WeightFormat::parse("zzzzzz").unwrap_err();
        assert_eq!(err.to_string(), "unknown weight format 'zzzzzz' (headroom formats lists all)");
    }

    #[test]
    fn serializes_as_its_id() {
        let json = serde_json::to_string(&WeightFormat::Quantized(Q::Nf4Double)).unwrap();
        assert_eq!(json, "\"nf4-dq\"");
    }
}
