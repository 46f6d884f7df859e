//! KV cache size: what each engine actually allocates for `batch` sequences of `context` tokens.
//!
//! Per layer and token, standard attention caches K and V for every KV head:
//! `2 · n_kv · head_dim` values (Korthikanti-style GQA accounting; vLLM `FullAttentionSpec`).
//! Llama-2-7B in bf16: 2 · 32 · 128 · 2 B = 16 KiB per layer, × 32 layers = 512 KiB per token,
//! so 4096 tokens take exactly 2 GiB. Llama-2-70B (GQA, 8 KV heads, 80 layers):
//! 2 · 8 · 128 · 2 · 80 = 320 KiB per token, 1.25 GiB at 4096.
//!
//! Multi-head latent attention (DeepSeek-V2/V3) caches one compressed latent of
//! `kv_lora_rank + qk_rope_head_dim` values per layer (vLLM `MLAAttentionSpec`, llama.cpp, and
//! transformers 5: measured 1,152 B per token and layer for DeepSeek-V2-Lite on an H200,
//! data/measurements/device/2026-11-27-h200/infer2.json).
//! Sliding-window layers hold at most their window (engine-specific rounding below).

use super::basis::BasisLog;
use super::engine::{Engine, EngineOptions};
use crate::model::spec::{LayerAttention, ModelSpec};
use crate::quant::KvFormat;
use crate::units::Bytes;

/// The KV request: what to cache and for how many tokens.
#[derive(Clone, Copy, Debug)]
pub struct KvRequest<'a> {
    pub spec: &'a ModelSpec,
    pub format: KvFormat,
    pub context: u64,
    pub batch: u64,
    pub engine: Engine,
    pub options: &'a EngineOptions,
    /// Tensor-parallel degree: KV heads are divided among GPUs.
    pub tp: u64,
    /// vLLM's profile-run token budget (sliding-window layers keep window + this).
    pub max_batched_tokens: u64,
}

/// Values cached per token in one layer, on one tensor-parallel rank.
pub fn values_per_token_layer(req: &KvRequest) -> u64 {
    let spec = req.spec;
    match spec.mla {
        // The latent is shared by all heads, so every tensor-parallel rank keeps all of it.
        Some(m) => m.kv_lora_rank + m.qk_rope_head_dim,
        None => 2 * (spec.num_kv_heads / req.tp).max(1) * spec.head_dim,
    }
}

/// Cells (token slots) one layer holds for the whole batch.
pub fn cells_per_layer(req: &KvRequest, attention: LayerAttention) -> u64 {
    let (ctx, batch) = (req.context, req.batch);
    let window = match attention {
        LayerAttention::Full => None,
        LayerAttention::Sliding { window } => Some(window),
    };
    match req.engine {
        // vllm/v1/kv_cache_interface.py: full layers take ceil(len/block) blocks; sliding layers
        // keep min(window − 1 + max_num_batched_tokens, len) tokens plus one block.
        Engine::Vllm => {
            let bs = req.options.block_size;
            let blocks = match window {
                None => ctx.div_ceil(bs),
                Some(w) => (w - 1 + req.max_batched_tokens).min(ctx).div_ceil(bs) + 1,
            };
            blocks * bs * batch
        }
        // llama.cpp: one unified cache of n_ctx = batch·context cells padded to 256; SWA layers
        // keep min(n_ctx, pad(window·n_seq + n_ubatch, 256)) (llama-kv-cache-iswa).
        Engine::LlamaCpp => {
            let n_ctx = (ctx * batch).next_multiple_of(256);
            match window {
                None => n_ctx,
                Some(w) => n_ctx.min((w * batch + req.options.n_ubatch).next_multiple_of(256)),
            }
        }
        // ExLlama preallocates max_seq_len for every layer and has no sliding-window cache.
        Engine::Exllama => ctx * batch,
        // transformers' sliding-window cache layers keep only the window after decoding starts,
        // but the prefill's full-prompt K/V stay alive until then: the peak holds every token
        // (Phi-3-mini, window 2,047, 4,064-token prompt: 1.5 GiB at the peak, 0.75 GiB after;
        // H200, transformers 5.17, data/measurements/device/2026-11-27-h200/infer2.json).
        Engine::Hf => ctx * batch,
        // LitGPT: `set_kv_cache(max_seq_length)` for every sequence, no sliding-window cache; its
        // cache holds the model's KV heads (litgpt 2024+; its 2023 releases cached K and V
        // expanded to every query head).
        Engine::Litgpt => ctx * batch,
        Engine::Bare => window.map_or(ctx, |w| ctx.min(w)) * batch,
        // One cache for the whole context per sequence (validate runs full-attention models).
        Engine::Headroom => ctx * batch,
    }
}

/// KV bytes on one tensor-parallel rank for the layers `layers` (a layer-split slice or all).
pub fn kv_bytes(req: &KvRequest, layers: std::ops::Range<u64>) -> Bytes {
    let per_cell = values_per_token_layer(req);
    layers.map(|l| req.format.bytes(per_cell, cells_per_layer(req, req.spec.layer_attention[l as usize]))).sum()
}

/// Records the per-token arithmetic in the basis.
pub fn explain(req: &KvRequest, basis: &mut BasisLog) {
    let spec = req.spec;
    let per_cell = values_per_token_layer(req);
    let per_token = req.format.bytes(per_cell, spec.num_layers).0;
    let formula = match spec.mla {
        Some(m) => {
            format!(
                "L·(kv_lora_rank+rope)·b = {}·({}+{})·b (MLA latent)",
                spec.num_layers, m.kv_lora_rank, m.qk_rope_head_dim
            )
        }
        None => format!(
            "2·L·n_kv·head_dim·b = 2·{}·{}·{}·b{}",
            spec.num_layers,
            (spec.num_kv_heads / req.tp).max(1),
            spec.head_dim,
            if req.tp > 1 { " per TP rank" } else { "" }
        ),
    };
    basis.add("kv bytes per token (all layers, no window)", per_token, formula);
    let sliding = spec.layer_attention.iter().filter(|a| matches!(a, LayerAttention::Sliding { .. })).count();
    if sliding > 0 {
        basis.add(
            "sliding-window layers",
            format!("{sliding} of {}", spec.num_layers),
            "config.json sliding_window / layer pattern",
        );
    }
    let rounding = match req.engine {
        Engine::Vllm => format!("paged blocks of {} tokens (vLLM)", req.options.block_size),
        Engine::LlamaCpp => "n_ctx = batch·context padded to 256 cells (llama.cpp)".to_string(),
        Engine::Exllama => "preallocated for the full context (ExLlama)".to_string(),
        _ => "exact tokens".to_string(),
    };
    basis.add("kv cache allocation", rounding, "engine KV layout");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::config::parse_config;

    fn spec(extra: &str) -> ModelSpec {
        let text = format!(
            r#"{{"model_type": "llama", "hidden_size": 4096, "intermediate_size": 11008, "num_hidden_layers": 32,
            "num_attention_heads": 32, "vocab_size": 32000 {extra}}}"#
        );
        parse_config(&text, "t", "t").unwrap().spec
    }

    fn kv(spec: &ModelSpec, engine: Engine, context: u64, batch: u64, format: KvFormat) -> u64 {
        let options = EngineOptions::default();
        let req =
            KvRequest { spec, format, context, batch, engine, options: &options, tp: 1, max_batched_tokens: 8192 };
        kv_bytes(&req, 0..spec.num_layers).0
    }

    /// The module doc's arithmetic: Llama-2-7B, 512 KiB per token, 2 GiB at 4096 tokens.
    #[test]
    fn llama_2_7b_is_two_gib_at_4096_in_every_engine() {
        let s = spec("");
        for engine in Engine::ALL {
            assert_eq!(kv(&s, engine, 4096, 1, KvFormat::Bf16), 2 << 30, "{engine:?}");
        }
        assert_eq!(kv(&s, Engine::Hf, 4096, 1, KvFormat::Fp8), 1 << 30);
        // q8_0: 34 bytes per 32 values.
        assert_eq!(kv(&s, Engine::LlamaCpp, 4096, 1, KvFormat::Q8_0), (1u64 << 30) / 32 * 34);
    }

    #[test]
    fn engines_round_differently() {
        let s = spec("");
        let per_token = 512 * 1024;
        // vLLM: 100 tokens take 7 blocks of 16.
        assert_eq!(kv(&s, Engine::Vllm, 100, 1, KvFormat::Bf16), 112 * per_token);
        // llama.cpp: 2 × 100 cells padded to 256.
        assert_eq!(kv(&s, Engine::LlamaCpp, 100, 2, KvFormat::Bf16), 256 * per_token);
        assert_eq!(kv(&s, Engine::Hf, 100, 2, KvFormat::Bf16), 200 * per_token);
    }

    #[test]
    fn sliding_windows_cap_what_engines_keep() {
        let s = spec(r#", "model_type": "mistral", "num_key_value_heads": 8, "sliding_window": 1024"#);
        let per_token_layer = 2 * 8 * 128 * 2;
        assert_eq!(kv(&s, Engine::Bare, 8192, 1, KvFormat::Bf16), 32 * 1024 * per_token_layer);
        // transformers holds the whole prompt at the prefill peak.
        assert_eq!(kv(&s, Engine::Hf, 8192, 1, KvFormat::Bf16), 32 * 8192 * per_token_layer);
        // vLLM: min(1024 − 1 + 8192, 8192) tokens → 512 blocks, plus one.
        assert_eq!(kv(&s, Engine::Vllm, 8192, 1, KvFormat::Bf16), 32 * 513 * 16 * per_token_layer);
    }
}
