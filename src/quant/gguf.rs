//! GGUF file types (llama.cpp's `llama_ftype`, what `llama-quantize` is asked for): their ids as
//! users type them, and the GGML type each quantizes ordinary weights to. Which type every
//! tensor actually gets is decided per tensor in `gguf_rules.rs`.

use super::ggml::GgmlType;

/// A llama.cpp file type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[allow(non_camel_case_types)]
pub enum GgufFileType {
    F32,
    F16,
    Bf16,
    Q8_0,
    Q6_K,
    Q5_K_M,
    Q5_K_S,
    Q5_1,
    Q5_0,
    Q4_K_M,
    Q4_K_S,
    Q4_1,
    Q4_0,
    IQ4_XS,
    IQ4_NL,
    Q3_K_L,
    Q3_K_M,
    Q3_K_S,
    IQ3_M,
    IQ3_S,
    IQ3_XS,
    IQ3_XXS,
    Q2_K,
    Q2_K_S,
    IQ2_M,
    IQ2_S,
    IQ2_XS,
    IQ2_XXS,
    IQ1_M,
    IQ1_S,
    TQ2_0,
    TQ1_0,
    Mxfp4Moe,
}

use GgufFileType as F;

/// (file type, id, default tensor type, description), the default type as in llama.cpp's
/// `llama_ftype_get_default_type` (src/llama-quant.cpp).
#[rustfmt::skip]
const TABLE: [(GgufFileType, &str, GgmlType, &str); 33] = [
    (F::F32, "f32", GgmlType::F32, "GGUF, every tensor F32"),
    (F::F16, "f16", GgmlType::F16, "GGUF F16; norms, biases and MoE routers F32"),
    (F::Bf16, "gguf-bf16", GgmlType::BF16, "GGUF BF16; norms, biases and MoE routers F32"),
    (F::Q8_0, "q8_0", GgmlType::Q8_0, "GGUF Q8_0: 8-bit blocks of 32 with an f16 scale, output too"),
    (F::Q6_K, "q6_k", GgmlType::Q6_K, "GGUF Q6_K: 6-bit super-blocks of 256"),
    (F::Q5_K_M, "q5_k_m", GgmlType::Q5_K, "GGUF Q5_K_M: Q5_K; attn_v and ffn_down Q6_K in half the layers"),
    (F::Q5_K_S, "q5_k_s", GgmlType::Q5_K, "GGUF Q5_K_S: Q5_K throughout; output Q6_K"),
    (F::Q5_1, "q5_1", GgmlType::Q5_1, "GGUF Q5_1: legacy 5-bit blocks of 32 with scale and minimum"),
    (F::Q5_0, "q5_0", GgmlType::Q5_0, "GGUF Q5_0: legacy 5-bit blocks of 32 with a scale"),
    (F::Q4_K_M, "q4_k_m", GgmlType::Q4_K, "GGUF Q4_K_M: Q4_K; attn_v and ffn_down Q6_K in half the layers"),
    (F::Q4_K_S, "q4_k_s", GgmlType::Q4_K, "GGUF Q4_K_S: Q4_K; first attn_v and ffn_down layers Q5_K"),
    (F::Q4_1, "q4_1", GgmlType::Q4_1, "GGUF Q4_1: legacy 4-bit blocks of 32 with scale and minimum"),
    (F::Q4_0, "q4_0", GgmlType::Q4_0, "GGUF Q4_0: legacy 4-bit blocks of 32 with a scale; output Q6_K"),
    (F::IQ4_XS, "iq4_xs", GgmlType::IQ4_XS, "GGUF IQ4_XS: non-linear 4-bit super-blocks, 4.25 bpw"),
    (F::IQ4_NL, "iq4_nl", GgmlType::IQ4_NL, "GGUF IQ4_NL: non-linear 4-bit blocks of 32, 4.5 bpw"),
    (F::Q3_K_L, "q3_k_l", GgmlType::Q3_K, "GGUF Q3_K_L: Q3_K; attn_v, attn_output, ffn_down Q5_K"),
    (F::Q3_K_M, "q3_k_m", GgmlType::Q3_K, "GGUF Q3_K_M: Q3_K; attn_v, attn_output, ffn_down Q4_K/Q5_K"),
    (F::Q3_K_S, "q3_k_s", GgmlType::Q3_K, "GGUF Q3_K_S: Q3_K throughout; output Q6_K"),
    (F::IQ3_M, "iq3_m", GgmlType::IQ3_S, "GGUF IQ3_M: IQ3_S; attn_v, attn_output and first ffn_down Q4_K"),
    (F::IQ3_S, "iq3_s", GgmlType::IQ3_S, "GGUF IQ3_S: 3.44 bpw"),
    (F::IQ3_XS, "iq3_xs", GgmlType::IQ3_S, "GGUF IQ3_XS: IQ3_S with IQ3_XXS for attn_q, attn_k and middle FFNs"),
    (F::IQ3_XXS, "iq3_xxs", GgmlType::IQ3_XXS, "GGUF IQ3_XXS: 3.06 bpw (needs an importance matrix)"),
    (F::Q2_K, "q2_k", GgmlType::Q2_K, "GGUF Q2_K: Q2_K; attn_output, ffn_down Q3_K; attn_v Q3_K (Q4_K with GQA)"),
    (F::Q2_K_S, "q2_k_s", GgmlType::Q2_K, "GGUF Q2_K_S: Q2_K (needs an importance matrix)"),
    (F::IQ2_M, "iq2_m", GgmlType::IQ2_S, "GGUF IQ2_M: IQ2_S (2.56 bpw), IQ3_S for attn_v and attn_output (needs an imatrix)"),
    (F::IQ2_S, "iq2_s", GgmlType::IQ2_XS, "GGUF IQ2_S: IQ2_XS (2.31 bpw), IQ3_S for attn_v and attn_output (needs an imatrix)"),
    (F::IQ2_XS, "iq2_xs", GgmlType::IQ2_XS, "GGUF IQ2_XS: 2.31 bpw (needs an importance matrix)"),
    (F::IQ2_XXS, "iq2_xxs", GgmlType::IQ2_XXS, "GGUF IQ2_XXS: 2.06 bpw (needs an importance matrix)"),
    (F::IQ1_M, "iq1_m", GgmlType::IQ1_M, "GGUF IQ1_M: 1.75 bpw (needs an importance matrix)"),
    (F::IQ1_S, "iq1_s", GgmlType::IQ1_S, "GGUF IQ1_S: 1.56 bpw (needs an importance matrix)"),
    (F::TQ2_0, "tq2_0", GgmlType::TQ2_0, "GGUF TQ2_0: ternary, 2.06 bpw (for ternary-trained models)"),
    (F::TQ1_0, "tq1_0", GgmlType::TQ1_0, "GGUF TQ1_0: ternary, 1.69 bpw (for ternary-trained models)"),
    (F::Mxfp4Moe, "mxfp4_moe", GgmlType::MXFP4, "GGUF MXFP4_MOE: routed experts MXFP4, all else Q8_0"),
];

impl GgufFileType {
    /// Every file type, in the order `headroom formats` lists them.
    pub const ALL: [GgufFileType; 33] = {
        let mut all = [F::F32; 33];
        let mut i = 0;
        while i < TABLE.len() {
            all[i] = TABLE[i].0;
            i += 1;
        }
        all
    };

    fn row(self) -> &'static (GgufFileType, &'static str, GgmlType, &'static str) {
        // TABLE lists the variants in declaration order (a test checks it).
        &TABLE[self as usize]
    }

    /// The id users type (`q4_k_m`).
    pub fn id(self) -> &'static str {
        self.row().1
    }

    pub fn description(self) -> &'static str {
        self.row().3
    }

    /// The type ordinary 2-D weights get before the per-tensor rules.
    pub fn default_type(self) -> GgmlType {
        self.row().2
    }

    /// Whether the file type quantizes (rather than only converts) weights.
    pub fn is_quantized(self) -> bool {
        self.default_type().block_size() > 1
    }

    /// Whether llama.cpp refuses to make this file type without an importance matrix (some of
    /// its tensors get IQ1/IQ2/IQ3_XXS or Q2_K-in-Q2_K_S types). The per-tensor rules assume one
    /// is given for these and none for the rest, which changes IQ3_XXS's attn_v and ffn_down
    /// (and would change Q4_0 / Q5_0 / IQ4 ffn_down, made here without one).
    pub fn needs_imatrix(self) -> bool {
        matches!(
            self,
            F::IQ3_XS | F::IQ3_XXS | F::Q2_K_S | F::IQ2_M | F::IQ2_S | F::IQ2_XS | F::IQ2_XXS | F::IQ1_M | F::IQ1_S
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_rows_are_in_variant_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.0 as usize, i, "{} is out of place", row.1);
            assert_eq!(GgufFileType::ALL[i], row.0);
        }
    }

    #[test]
    fn k_quant_mixes_start_from_their_base_type() {
        assert_eq!(GgufFileType::Q4_K_M.default_type(), GgmlType::Q4_K);
        assert_eq!(GgufFileType::IQ2_S.default_type(), GgmlType::IQ2_XS);
        assert!(!GgufFileType::Bf16.is_quantized());
        assert!(GgufFileType::Q8_0.is_quantized());
    }
}
