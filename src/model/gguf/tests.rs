//! The tensor index: `GgufFile::tensor` finds every tensor by name through the index built at
//! parse time, and a file that repeats a tensor name is refused.

use super::{parse_gguf_bytes, GgufFile, DEFAULT_ALIGNMENT};

/// A GGUF v3 file with no metadata and one 4-weight F32 tensor per name, each at its own
/// aligned offset in the data section.
fn gguf_with_tensors(names: &[&str]) -> Vec<u8> {
    let mut b = b"GGUF".to_vec();
    b.extend(3u32.to_le_bytes());
    b.extend((names.len() as u64).to_le_bytes());
    b.extend(0u64.to_le_bytes());
    for (i, name) in names.iter().enumerate() {
        b.extend((name.len() as u64).to_le_bytes());
        b.extend(name.as_bytes());
        b.extend(1u32.to_le_bytes()); // n_dims
        b.extend(4u64.to_le_bytes()); // dims[0]
        b.extend(0u32.to_le_bytes()); // F32
        b.extend((i as u64 * DEFAULT_ALIGNMENT).to_le_bytes());
    }
    b.resize(b.len().next_multiple_of(DEFAULT_ALIGNMENT as usize), 0);
    b.resize(b.len() + names.len() * DEFAULT_ALIGNMENT as usize, 0);
    b
}

fn parse(names: &[&str]) -> GgufFile {
    parse_gguf_bytes(&gguf_with_tensors(names)).expect("the fixture parses")
}

#[test]
fn tensor_finds_every_name_through_the_index() {
    let names = ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.ssm_in.weight", "output_norm.weight"];
    let file = parse(&names);
    for (i, name) in names.iter().enumerate() {
        let t = file.tensor(name).unwrap_or_else(|| panic!("{name} is found"));
        assert_eq!((t.name.as_str(), t.offset, t.bytes), (*name, i as u64 * DEFAULT_ALIGNMENT, 16));
    }
    assert!(file.tensor("output.weight").is_none());
    assert!(file.tensor("blk.0.attn_q").is_none(), "a prefix is not a name");
}

#[test]
fn a_stale_index_misses_rather_than_answering_with_another_tensor() {
    let mut file = parse(&["a.weight", "b.weight"]);
    file.tensors.swap(0, 1);
    assert!(file.tensor("a.weight").is_none() && file.tensor("b.weight").is_none());
}

#[test]
fn a_repeated_tensor_name_is_refused_naming_file_and_tensor() {
    let err = parse_gguf_bytes(&gguf_with_tensors(&["a.weight", "blk.0.ffn_up.weight", "blk.0.ffn_up.weight"]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("<memory>") && err.contains("tensor 'blk.0.ffn_up.weight' appears twice"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}
