//! Property tests: no input makes the header readers panic. Arbitrary bytes, and valid files with
//! bytes overwritten or cut short, must come back as `Ok` or as a `LocalFileError`; whatever
//! parses must also survive `gguf_to_spec`.

mod support;

use headroom::model::gguf::{gguf_to_spec, parse_gguf_bytes};
use headroom::model::safetensors::parse_header_bytes;
use proptest::prelude::*;
use std::sync::LazyLock;
use support::*;

static SAFETENSORS: LazyLock<Vec<u8>> = LazyLock::new(|| safetensors_owned(&llama_tensors(0..1, true, true)));
static GGUF: LazyLock<Vec<u8>> = LazyLock::new(|| llama_gguf(false).build());
/// A header with every structural element and little else, so random edits hit structure.
static COMPACT_GGUF: LazyLock<Vec<u8>> = LazyLock::new(|| {
    use headroom::quant::ggml::GgmlType::*;
    Gguf::default()
        .str("general.architecture", "deepseek2")
        .u32("deepseek2.block_count", 2)
        .u32("deepseek2.embedding_length", 256)
        .u32("deepseek2.attention.head_count", 2)
        .u32("deepseek2.feed_forward_length", 512)
        .u32("deepseek2.context_length", 512)
        .u32("deepseek2.attention.kv_lora_rank", 64)
        .u32("deepseek2.rope.dimension_count", 16)
        .u32("deepseek2.attention.key_length", 48)
        .u32("deepseek2.attention.value_length", 32)
        .u32("deepseek2.expert_count", 4)
        .u32("deepseek2.expert_used_count", 2)
        .i32s("general.list", &[1, 2, 3])
        .strs("tokenizer.ggml.merges", &["a b".to_string(), "c d".to_string()])
        .bool("general.flag", 1)
        .tensor("token_embd.weight", &[256, 8], Q8_0)
        .tensor("blk.0.exp_probs_b.bias", &[4], F32)
        .tensor("blk.1.ffn_up_shexp.weight", &[256, 32], Q4_K)
        .build()
});
/// Bytes before the data section of `COMPACT_GGUF`.
static COMPACT_HEADER: LazyLock<usize> =
    LazyLock::new(|| parse_gguf_bytes(&COMPACT_GGUF).map(|f| f.data_offset as usize).unwrap_or(0));

/// `base` with some bytes overwritten and then cut to at most `keep` bytes.
fn mutate(base: &[u8], edits: &[(usize, u8)], keep: usize) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for &(at, byte) in edits {
        let i = at % bytes.len();
        bytes[i] = byte;
    }
    bytes.truncate(keep);
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8)>> {
    prop::collection::vec((any::<usize>(), any::<u8>()), 0..8)
}

fn check_gguf(bytes: &[u8]) {
    if let Ok(file) = parse_gguf_bytes(bytes) {
        let _ = gguf_to_spec(&file);
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_header_bytes(&bytes);
        check_gguf(&bytes);
        let mut gguf = b"GGUF\x03\0\0\0".to_vec();
        gguf.extend_from_slice(&bytes);
        check_gguf(&gguf);
    }

    #[test]
    fn mutated_safetensors_never_panic(edits in edits(), keep in 0usize..4096) {
        let _ = parse_header_bytes(&mutate(&SAFETENSORS, &edits, keep));
    }

    #[test]
    fn mutated_safetensors_headers_never_panic(edits in edits()) {
        // Edits confined to the JSON, the data left whole.
        let len = u64::from_le_bytes(SAFETENSORS[..8].try_into().unwrap()) as usize;
        let json: Vec<(usize, u8)> = edits.iter().map(|&(at, b)| (8 + at % len, b)).collect();
        let _ = parse_header_bytes(&mutate(&SAFETENSORS, &json, usize::MAX));
    }

    #[test]
    fn mutated_gguf_headers_never_panic(edits in edits(), keep in 0usize..usize::MAX) {
        let header: Vec<(usize, u8)> = edits.iter().map(|&(at, b)| (at % *COMPACT_HEADER, b)).collect();
        check_gguf(&mutate(&COMPACT_GGUF, &header, keep));
    }

    #[test]
    fn gguf_fields_set_to_extremes_never_panic(at in 0usize..4096, value in prop_oneof![
        Just(0u64), Just(1), Just(u32::MAX as u64), Just(u64::MAX), Just(1 << 63), any::<u64>()
    ]) {
        let mut bytes = COMPACT_GGUF.clone();
        let at = at % (*COMPACT_HEADER - 8);
        bytes[at..at + 8].copy_from_slice(&value.to_le_bytes());
        check_gguf(&bytes);
    }

    #[test]
    fn gguf_cut_anywhere_is_an_error(keep in 0usize..2048) {
        let cut = &GGUF[..keep.min(GGUF.len() - 1)];
        prop_assert!(parse_gguf_bytes(cut).is_err());
    }
}
