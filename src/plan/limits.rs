//! Bounds that keep the planner's byte arithmetic inside 64 bits.
//!
//! The largest products the planner forms are a materialised score matrix (sequences × heads ×
//! query tokens × key tokens × 10 B), the logits of every token (tokens × vocabulary × 16 B) and
//! the activations saved across every layer for training (layers × tokens × (h + i) × 64 B).
//! A workload whose largest product reaches 2^60 B (1 EiB) is beyond any machine, so it is
//! refused with a clear error instead of overflowing.

use crate::model::spec::ModelSpec;

/// Bytes beyond which a workload is refused.
const LIMIT: u128 = 1 << 60;

/// Whether `sequences` sequences of `tokens_per_sequence` tokens can be planned for `spec`.
pub fn workload_fits_arithmetic(spec: &ModelSpec, sequences: u64, tokens_per_sequence: u64) -> bool {
    let (seqs, ctx) = (sequences as u128, tokens_per_sequence as u128);
    let tokens = seqs * ctx;
    let widest = (spec.hidden_size as u128).max(3 * spec.intermediate_size as u128).max(spec.vocab_size as u128);
    let scores = seqs * spec.num_heads as u128 * ctx * ctx * 16;
    let logits = tokens * widest * 16;
    let saved = spec.num_layers as u128 * tokens * (spec.hidden_size + spec.intermediate_size) as u128 * 64;
    scores.max(logits).max(saved) < LIMIT
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::llama_2_7b;

    #[test]
    fn real_workloads_pass_and_absurd_ones_do_not() {
        let spec = llama_2_7b();
        assert!(workload_fits_arithmetic(&spec, 1024, 131_072));
        assert!(!workload_fits_arithmetic(&spec, 1 << 20, 1 << 24));
    }
}
