//! mlx-lm's prompt schedule and the attention path each prompt chunk takes.
//!
//! `generate_step` (mlx_lm/generate.py) feeds the first P − 1 prompt tokens in chunks of
//! `prefill_step_size` and the last token alone, with the first sampling step. After each chunk
//! and step `maybe_quantize_kv_cache` converts every layer's KVCache to `--kv-bits` codes once
//! it holds `--quantized-kv-start` tokens. MLX fuses prefill attention only for some head dims and
//! never over a quantized cache; the unfused path writes every score of the chunk (its queries ×
//! the keys it attends) in 16 bits. Qwen3-4B over a 32,768-token prompt with the defaults: chunks
//! end at 2,048, 4,096, 6,144 (the cache is converted here, 6,144 ≥ 5,000), …, 30,720, then
//! 32,767 (a 2,047-token remainder) and the last token at 32,768. The largest unfused chunk is
//! the remainder: 2,047 × 32,767 = 67.1 M query-key pairs per head, against 2,048 × 30,720 =
//! 62.9 M for the last whole chunk.

use crate::model::spec::ModelSpec;

/// The chunks mlx-lm prefills one prompt in.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PromptSchedule {
    /// Prompt tokens, P.
    pub context: u64,
    /// `prefill_step_size`.
    pub step: u64,
}

/// One forward pass of the prompt: its queries and the context it ends at (the keys it attends
/// to before any window).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Chunk {
    pub queries: u64,
    pub end: u64,
}

impl Chunk {
    /// Keys the chunk attends in a layer; a RotatingKVCache of `window` keeps at most
    /// `window + queries − 1` of them while a chunk runs.
    pub fn keys(&self, window: Option<u64>) -> u64 {
        window.map_or(self.end, |w| self.end.min(w + self.queries - 1))
    }
}

impl PromptSchedule {
    pub fn new(context: u64, step: u64) -> Self {
        PromptSchedule { context, step: step.max(1) }
    }

    /// Tokens before the last one, which `generate_step` feeds in chunks.
    fn prefix(&self) -> u64 {
        self.context.saturating_sub(1)
    }

    /// The end of the last whole chunk of the prefix.
    fn last_whole_end(&self) -> u64 {
        self.prefix() / self.step * self.step
    }

    /// The first chunk end at or past `start` tokens: when a cache converted at `start` tokens
    /// is converted. Chunks end at multiples of the step up to P − 1, then at P − 1 and P.
    pub fn first_end_from(&self, start: u64) -> u64 {
        let whole = start.max(1).next_multiple_of(self.step);
        if whole <= self.prefix() {
            whole
        } else if self.prefix() >= start {
            self.prefix()
        } else {
            self.context
        }
    }

    /// The chunks that begin at or after `from` (a chunk end, or 0): how many whole chunks, the
    /// prefix's remainder and the last token.
    fn chunks_from(&self, from: u64) -> (u64, Option<Chunk>, Chunk) {
        let whole = self.last_whole_end().saturating_sub(from) / self.step;
        let rest = self.prefix() - self.last_whole_end();
        let remainder =
            (rest > 0 && self.last_whole_end() >= from).then_some(Chunk { queries: rest, end: self.prefix() });
        (whole, remainder, Chunk { queries: 1, end: self.context })
    }

    /// The chunk beginning at or after `from` with the most query-key pairs: the last whole
    /// chunk, the remainder or the last token.
    pub fn largest_from(&self, from: u64) -> Chunk {
        let (whole, remainder, last) = self.chunks_from(from);
        let last_whole = (whole > 0).then_some(Chunk { queries: self.step, end: self.last_whole_end() });
        [last_whole, remainder, Some(last)].into_iter().flatten().max_by_key(|c| c.queries * c.end).unwrap_or(last)
    }

    /// Σ over the chunks beginning at or after `from` of queries × the keys they attend
    /// (`window`: a RotatingKVCache's). Whole chunks end at `from + j·step`, j = 1..=whole; with
    /// a window they attend at most `cap = window + step − 1` keys, which the first `uncapped`
    /// stay within: Σ step·(from + j·step) over those, step·cap over the others.
    pub fn key_pairs_from(&self, from: u64, window: Option<u64>) -> f64 {
        let (whole, remainder, last) = self.chunks_from(from);
        let cap = window.map(|w| w + self.step - 1);
        let uncapped = cap.map_or(whole, |cap| (cap.saturating_sub(from) / self.step).min(whole));
        let (s, f, u) = (self.step as f64, from as f64, uncapped as f64);
        let growing = s * (u * f + s * u * (u + 1.0) / 2.0);
        let capped = cap.map_or(0.0, |cap| s * cap as f64 * (whole - uncapped) as f64);
        let tail: u64 = [remainder, Some(last)].into_iter().flatten().map(|c| c.queries * c.keys(window)).sum();
        growing + capped + tail as f64
    }
}

/// Whether MLX's fused prefill attention kernel takes the model's head dims: equal query and
/// value head dims of 64, 80 or 128 (`sdpa_full_supported_head_dim` in MLX's Metal
/// scaled_dot_product_attention.cpp); other models take the unfused path.
pub fn fuses_prefill_attention(spec: &ModelSpec) -> bool {
    let (q, v) =
        spec.mla.map_or((spec.head_dim, spec.head_dim), |m| (m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim));
    q == v && matches!(q, 64 | 80 | 128)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every chunk `generate_step` runs, by walking the prompt.
    fn walk(context: u64, step: u64) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        let mut done = 0;
        while context - done > 1 {
            let queries = step.min(context - done - 1);
            done += queries;
            chunks.push(Chunk { queries, end: done });
        }
        chunks.push(Chunk { queries: 1, end: context });
        chunks
    }

    const CASES: &[(u64, u64)] =
        &[(1, 2048), (2, 2048), (2049, 2048), (6145, 2048), (6146, 2048), (32_768, 2048), (9_999, 512), (131_072, 256)];

    /// The closed forms against the walk: conversion points, largest chunks and key-pair sums,
    /// with and without a window.
    #[test]
    fn closed_forms_match_a_walk() {
        for &(context, step) in CASES {
            let schedule = PromptSchedule::new(context, step);
            let chunks = walk(context, step);
            for start in [1, 2048, 5000, 6144, 6145, context] {
                if start > context {
                    continue;
                }
                let expect = chunks.iter().find(|c| c.end >= start).unwrap().end;
                assert_eq!(schedule.first_end_from(start), expect, "P={context} step={step} start={start}");
                let from = expect;
                let after: Vec<&Chunk> = chunks.iter().filter(|c| c.end - c.queries >= from).collect();
                if after.is_empty() {
                    continue;
                }
                let largest = after.iter().map(|c| c.queries * c.end).max().unwrap();
                let got = schedule.largest_from(from);
                assert_eq!(got.queries * got.end, largest, "P={context} step={step} from={from}");
                for window in [None, Some(1024), Some(4096)] {
                    let sum: u64 = after.iter().map(|c| c.queries * c.keys(window)).sum();
                    assert_eq!(schedule.key_pairs_from(from, window), sum as f64, "P={context} from={from} {window:?}");
                }
            }
            let all: u64 = chunks.iter().map(|c| c.queries * c.end).sum();
            assert_eq!(schedule.key_pairs_from(0, None), all as f64);
        }
    }

    /// One more prompt token past a chunk end adds a one-token chunk, not a whole chunk's scores.
    #[test]
    fn a_token_past_the_conversion_is_a_one_token_chunk() {
        let at = |context| {
            let s = PromptSchedule::new(context, 2048);
            s.largest_from(s.first_end_from(5000))
        };
        assert_eq!(at(6145), Chunk { queries: 1, end: 6145 });
        assert_eq!(at(6146), Chunk { queries: 1, end: 6146 });
        assert_eq!(at(32_768), Chunk { queries: 2047, end: 32_767 });
    }
}
