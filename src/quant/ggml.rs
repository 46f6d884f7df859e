//! GGML tensor types: the block layouts GGUF files store weights in, with exact sizes.
//!
//! Each block type packs `block_size` weights into `type_size` bytes (quantized values plus their
//! scales), so bits per weight = 8 · type_size / block_size exactly. Sizes follow the block
//! structs of ggml (`ggml-common.h`): e.g. `block_q4_K` holds an fp16 `d` and `dmin`, 12 bytes of
//! 6-bit sub-block scales and 128 bytes of 4-bit values for 256 weights: 144 B, 4.5 bpw.
//! The numeric ids are those written in GGUF tensor infos (`enum ggml_type`).

use serde::Serialize;

/// A GGML tensor type.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[allow(non_camel_case_types)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q8_1,
    Q2_K,
    Q3_K,
    Q4_K,
    Q5_K,
    Q6_K,
    Q8_K,
    IQ2_XXS,
    IQ2_XS,
    IQ3_XXS,
    IQ1_S,
    IQ4_NL,
    IQ3_S,
    IQ2_S,
    IQ4_XS,
    I8,
    I16,
    I32,
    I64,
    F64,
    IQ1_M,
    BF16,
    TQ1_0,
    TQ2_0,
    MXFP4,
}

/// (type, GGUF id, name, weights per block, bytes per block)
const TABLE: [(GgmlType, u32, &str, u64, u64); 32] = [
    (GgmlType::F32, 0, "f32", 1, 4),
    (GgmlType::F16, 1, "f16", 1, 2),
    (GgmlType::Q4_0, 2, "q4_0", 32, 18),
    (GgmlType::Q4_1, 3, "q4_1", 32, 20),
    (GgmlType::Q5_0, 6, "q5_0", 32, 22),
    (GgmlType::Q5_1, 7, "q5_1", 32, 24),
    (GgmlType::Q8_0, 8, "q8_0", 32, 34),
    (GgmlType::Q8_1, 9, "q8_1", 32, 36),
    (GgmlType::Q2_K, 10, "q2_k", 256, 84),
    (GgmlType::Q3_K, 11, "q3_k", 256, 110),
    (GgmlType::Q4_K, 12, "q4_k", 256, 144),
    (GgmlType::Q5_K, 13, "q5_k", 256, 176),
    (GgmlType::Q6_K, 14, "q6_k", 256, 210),
    (GgmlType::Q8_K, 15, "q8_k", 256, 292),
    (GgmlType::IQ2_XXS, 16, "iq2_xxs", 256, 66),
    (GgmlType::IQ2_XS, 17, "iq2_xs", 256, 74),
    (GgmlType::IQ3_XXS, 18, "iq3_xxs", 256, 98),
    (GgmlType::IQ1_S, 19, "iq1_s", 256, 50),
    (GgmlType::IQ4_NL, 20, "iq4_nl", 32, 18),
    (GgmlType::IQ3_S, 21, "iq3_s", 256, 110),
    (GgmlType::IQ2_S, 22, "iq2_s", 256, 82),
    (GgmlType::IQ4_XS, 23, "iq4_xs", 256, 136),
    (GgmlType::I8, 24, "i8", 1, 1),
    (GgmlType::I16, 25, "i16", 1, 2),
    (GgmlType::I32, 26, "i32", 1, 4),
    (GgmlType::I64, 27, "i64", 1, 8),
    (GgmlType::F64, 28, "f64", 1, 8),
    (GgmlType::IQ1_M, 29, "iq1_m", 256, 56),
    (GgmlType::BF16, 30, "bf16", 1, 2),
    (GgmlType::TQ1_0, 34, "tq1_0", 256, 54),
    (GgmlType::TQ2_0, 35, "tq2_0", 256, 66),
    (GgmlType::MXFP4, 39, "mxfp4", 32, 17),
];

impl GgmlType {
    /// TABLE lists the variants in declaration order, so a variant indexes its own row (a test
    /// checks it); the weight-byte sums call this per tensor, so it must not search.
    fn row(self) -> &'static (GgmlType, u32, &'static str, u64, u64) {
        &TABLE[self as usize]
    }

    /// The type with GGUF id `id`, if ggml still defines it.
    pub fn from_id(id: u32) -> Option<GgmlType> {
        TABLE.iter().find(|r| r.1 == id).map(|r| r.0)
    }

    /// The type named `name` (case-insensitive, as llama.cpp prints it: `q4_K`, `Q6_K`, `f16`).
    pub fn from_name(name: &str) -> Option<GgmlType> {
        TABLE.iter().find(|r| r.2.eq_ignore_ascii_case(name)).map(|r| r.0)
    }

    pub fn id(self) -> u32 {
        self.row().1
    }

    pub fn name(self) -> &'static str {
        self.row().2
    }

    /// Weights per block (1 for plain types).
    pub fn block_size(self) -> u64 {
        self.row().3
    }

    /// Bytes per block, scales included.
    pub fn type_size(self) -> u64 {
        self.row().4
    }

    /// Exact bits per weight: 8 · type_size / block_size.
    pub fn bits_per_weight(self) -> f64 {
        8.0 * self.type_size() as f64 / self.block_size() as f64
    }

    /// Bytes of a tensor with `elements` weights and rows of `row_len` weights, or `None` when
    /// the row length is not a multiple of the block size (ggml cannot store it in this type).
    pub fn tensor_bytes(self, elements: u64, row_len: u64) -> Option<u64> {
        let block = self.block_size();
        (row_len % block == 0 && elements % block == 0).then(|| elements / block * self.type_size())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_per_weight_match_the_block_layouts() {
        let bpw = |t: GgmlType| t.bits_per_weight();
        assert_eq!(bpw(GgmlType::Q8_0), 8.5);
        assert_eq!(bpw(GgmlType::Q6_K), 6.5625);
        assert_eq!(bpw(GgmlType::Q5_K), 5.5);
        assert_eq!(bpw(GgmlType::Q4_K), 4.5);
        assert_eq!(bpw(GgmlType::Q3_K), 3.4375);
        assert_eq!(bpw(GgmlType::Q2_K), 2.625);
        assert_eq!(bpw(GgmlType::Q4_0), 4.5);
        assert_eq!(bpw(GgmlType::IQ4_XS), 4.25);
        assert_eq!(bpw(GgmlType::MXFP4), 4.25);
        assert_eq!(bpw(GgmlType::TQ1_0), 1.6875);
    }

    #[test]
    fn table_rows_are_in_variant_order() {
        for (i, row) in TABLE.iter().enumerate() {
            assert_eq!(row.0 as usize, i, "{} is out of place", row.2);
        }
    }

    #[test]
    fn ids_round_trip_and_unknown_ids_are_none() {
        for row in TABLE {
            assert_eq!(GgmlType::from_id(row.1), Some(row.0));
            assert_eq!(GgmlType::from_name(row.2), Some(row.0));
        }
        assert_eq!(GgmlType::from_id(4), None);
        assert_eq!(GgmlType::from_id(9999), None);
    }

    #[test]
    fn rows_not_a_multiple_of_the_block_are_rejected() {
        assert_eq!(GgmlType::Q4_K.tensor_bytes(4096 * 4096, 4096), Some(4096 * 4096 / 256 * 144));
        assert_eq!(GgmlType::Q4_K.tensor_bytes(100 * 200, 200), None);
    }
}
