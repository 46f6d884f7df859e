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
//!
//! Linear-attention layers (Gated DeltaNet, Qwen3-Next) cache no tokens: each sequence keeps a
//! recurrent state of `value_heads · d_k · d_v` values and the last `kernel − 1` inputs of the
//! convolution, whatever the context (vLLM `MambaStateShapeCalculator.gated_delta_net_state_shape`,
//! llama.cpp `n_embd_r`/`n_embd_s`). Qwen3-Next-80B-A3B in bf16 (vLLM's default for it):
//! 32·128·128·2 + 8192·3·2 = 1,097,728 B per layer and sequence, 36 layers: 37.7 MiB per
//! sequence; its 12 attention layers cache 2·2·256·2 = 2 KiB per token each. Mamba-2 layers
//! (Nemotron-H, Granite 4.0 H) keep `heads · head_dim · d_state` values and the convolution over
//! x, B and C (`mamba2_state_shape`): Nemotron-Nano-9B-v2, fp32 state in vLLM,
//! 128·80·128·4 + 3·12,288·2 = 5,316,608 B per layer and sequence.

use super::basis::BasisLog;
use super::engine::{Engine, EngineOptions, MLX_KV_STEP};
use crate::model::spec::{Family, LayerAttention, LinearAttention, LinearKind, ModelSpec};
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

/// Values cached per token in one layer of kind `attention`, on one tensor-parallel rank (a
/// Gemma 4 full layer has its own KV heads and head size: `ModelSpec::kv_shape`).
pub fn values_per_token_layer(req: &KvRequest, attention: LayerAttention) -> u64 {
    let spec = req.spec;
    match spec.mla {
        // mlx-lm's deepseek_v2 module does not absorb MLA: it caches every head's key (the
        // no-rope part and the shared rope part) and value (deepseek_v3's caches the latent).
        Some(m) if mla_heads_cached(req.engine, spec) => {
            (spec.num_heads / req.tp).max(1) * (m.qk_nope_head_dim + m.qk_rope_head_dim + m.v_head_dim)
        }
        // The latent is shared by all heads, so every tensor-parallel rank keeps all of it.
        Some(m) => m.kv_lora_rank + m.qk_rope_head_dim,
        None => {
            let (kv_heads, head_dim) = spec.kv_shape(attention);
            2 * (kv_heads / req.tp).max(1) * head_dim
        }
    }
}

/// The largest one layer's whole cache as f16 values (2 B each), over the layer kinds: what
/// llama.cpp's CUDA flash attention converts a quantized layer's cache into for its prompt
/// kernels. Llama-3.1-8B at 131,072 cells: 131,072 · 2·8·128 · 2 B = 512 MiB; Gemma 4 31B at
/// 262,144: a full layer's 262,144 · 2·4·512 · 2 B = 2 GiB (a sliding layer's 1,536 cells far
/// less).
pub fn largest_layer_f16_bytes(req: &KvRequest) -> Bytes {
    let layer = |a: LayerAttention| cells_per_layer(req, a) * values_per_token_layer(req, a) * 2;
    Bytes(req.spec.attention_kinds().into_iter().map(layer).max().unwrap_or(0))
}

/// Whether the engine caches an MLA model's per-head keys and values rather than its latent.
pub fn mla_heads_cached(engine: Engine, spec: &ModelSpec) -> bool {
    engine == Engine::Mlx && spec.family == Family::DeepseekV2
}

/// Bytes of one sequence's linear-attention state in one layer on one tensor-parallel rank, as
/// the engine stores it (before vLLM's page padding, `state_page_bytes`):
/// - vLLM: conv state `(kernel − 1) × conv_dim/tp` and recurrent state `(value_heads/tp) × d_v × d_k`,
///   both in the model dtype (`mamba_cache_dtype` and `mamba_ssm_cache_dtype` "auto"; Qwen3-Next
///   has no override in `MODELS_CONFIG_MAP`, confirmed by its logged 1.49% page padding), but the
///   recurrent state in fp32 where the checkpoint's `mamba_ssm_dtype` asks (Qwen3.5, which vLLM
///   registers; Qwen3.5-9B at tensor parallel 2: 16·128·128·4 + 4096·3·2 = 1,073,152 B, a
///   528-token block and 0.76% padding, as vLLM logs);
/// - llama.cpp: the same shapes in F32 (`llama_model::create_memory` hard-codes both types);
/// - transformers: the conv state keeps all `kernel` columns (`F.pad(mixed_qkv, (kernel − len, 0))`,
///   model dtype) and the recurrent state is the fp32 tensor the chunked delta-rule kernels
///   return (flash-linear-attention's `final_state`, and transformers' torch fallback).
pub fn state_bytes_per_layer(req: &KvRequest) -> u64 {
    let Some(la) = req.spec.linear_attention else { return 0 };
    let s = state_storage(req);
    let (channels, state) = state_values_per_rank(&la, req.tp);
    channels * s.conv_columns * s.conv_bytes + state * s.state_bytes
}

/// How an engine stores a linear-attention layer's state (see `state_bytes_per_layer`).
struct StateStorage {
    /// Past inputs kept per conv channel.
    conv_columns: u64,
    conv_bytes: u64,
    state_bytes: u64,
    how: &'static str,
}

fn state_storage(req: &KvRequest) -> StateStorage {
    // The plan assumes a 16-bit compute dtype in every engine: vLLM casts a float32 checkpoint
    // (Mamba's `-hf` ones are) to 16 bits; transformers keeps float32 unless a dtype is passed,
    // which would double these conv states.
    let model = 2;
    let kernel = req.spec.linear_attention.map_or(1, |la| la.conv_kernel);
    let fp32 = req.spec.linear_attention.is_some_and(|la| la.state_fp32);
    match req.engine {
        Engine::LlamaCpp => {
            StateStorage { conv_columns: kernel - 1, conv_bytes: 4, state_bytes: 4, how: "both F32 (llama.cpp)" }
        }
        Engine::Hf => StateStorage {
            conv_columns: kernel,
            conv_bytes: model,
            state_bytes: 4,
            how: "fp32 recurrent state, every kernel column of conv state (transformers)",
        },
        engine => StateStorage {
            // Speculative decoding keeps one more input per draft token (`num_spec`).
            conv_columns: kernel - 1 + req.options.mtp_tokens,
            conv_bytes: model,
            state_bytes: if fp32 { 4 } else { model },
            how: match (engine, fp32, hybrid(req.spec)) {
                (Engine::Vllm, true, true) => {
                    "fp32 recurrent state as the checkpoint asks (mamba_ssm_dtype, mamba_ssm_cache_dtype), page padded to one attention block (vLLM)"
                }
                (Engine::Vllm, false, true) => "model dtype, page padded to one attention block (vLLM)",
                (Engine::Vllm, true, false) => "fp32 recurrent state as the checkpoint asks (vLLM)",
                (Engine::Vllm, false, false) => "model dtype (vLLM)",
                _ => "as the checkpoint asks",
            },
        },
    }
}

/// Conv channels and recurrent-state values of one sequence and layer on one of `tp` ranks
/// (`LinearAttention::per_rank`: Granite 4.0 H Small at TP 2 keeps 4,096 + 2·128 channels).
fn state_values_per_rank(la: &LinearAttention, tp: u64) -> (u64, u64) {
    let (k, v, heads) = la.per_rank(tp);
    (2 * k + v, heads * la.key_head_dim * la.value_head_dim)
}

/// What one sequence's state takes in one linear-attention layer. vLLM stores it in a page of
/// the shared KV pool, padded to exactly one attention block's page (`mamba_page_size_padded`).
pub fn state_page_bytes(req: &KvRequest) -> u64 {
    match req.engine {
        Engine::Vllm if hybrid(req.spec) => vllm_page_bytes(req),
        _ => state_bytes_per_layer(req),
    }
}

/// One vLLM KV block of one attention layer: `block_size` tokens' keys and values; with layers
/// of different widths (Gemma 4), the widest kind's (`unify_kv_cache_spec_page_size` raises the
/// narrower kinds' block size until their pages match: `vllm_kind_block_size`).
fn vllm_page_bytes(req: &KvRequest) -> u64 {
    vllm_block_size(req) * attention_bytes_per_token_layer(req)
}

/// The block size, in tokens, of vLLM's layers of kind `kind`: the model's block, times the
/// widest kind's bytes per token over this kind's (Gemma 4 31B: sliding layers 16 KiB a token,
/// full ones 8 KiB, so full layers get 32-token blocks of the same 256 KiB page).
fn vllm_kind_block_size(req: &KvRequest, kind: LayerAttention) -> u64 {
    let bs = vllm_block_size(req);
    match kind {
        k if k.attends() => {
            let own = layer_token_bytes(req, k, 1).0.max(1);
            bs * (attention_bytes_per_token_layer(req) / own).max(1)
        }
        _ => bs,
    }
}

/// How vLLM keeps a hybrid's recurrent states (`mamba_cache_mode`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum StateCache {
    /// One state per request (prefix caching off; every other engine).
    One,
    /// "align": the state being written beside the last complete one (Gated DeltaNet with
    /// prefix caching).
    Align,
    /// "all": a state per block of context, so any block boundary can be resumed (Mamba-2 models,
    /// which implement `SupportsMambaPrefixCaching`, with prefix caching; vLLM PR #25752).
    PerBlock,
}

fn state_cache(req: &KvRequest) -> StateCache {
    match req.spec.linear_attention {
        Some(la) if req.engine == Engine::Vllm && req.options.prefix_caching => match la.kind {
            // (Blocks come from the attention layers; a model without them is not modelled so.)
            LinearKind::Mamba2 if hybrid(req.spec) => StateCache::PerBlock,
            LinearKind::Mamba2 => StateCache::One,
            LinearKind::GatedDeltaNet => StateCache::Align,
            // (Mamba-1 models do not implement vLLM's Mamba prefix caching.)
            LinearKind::Mamba1 => StateCache::One,
        },
        _ => StateCache::One,
    }
}

/// State pages one sequence holds in each linear-attention layer, as vLLM budgets them
/// (`MambaSpec.max_memory_usage_bytes`): one, two in "align" mode, and ⌈context / block⌉ in
/// "all" mode, and one more per speculative draft token (`num_speculative_blocks`).
fn state_slots(req: &KvRequest) -> u64 {
    let speculative = req.options.mtp_tokens;
    speculative
        + match state_cache(req) {
            StateCache::One => 1,
            StateCache::Align => 2,
            StateCache::PerBlock => req.context.div_ceil(vllm_block_size(req)),
        }
}

/// Both linear-attention and attention layers: vLLM aligns their pages and groups them.
pub fn hybrid(spec: &ModelSpec) -> bool {
    spec.linear_layers() > 0 && spec.attention_layers() > 0
}

/// Bytes one token takes in one attention layer on one rank (the widest kind's, where layers
/// differ).
fn attention_bytes_per_token_layer(req: &KvRequest) -> u64 {
    req.spec.attention_kinds().into_iter().map(|a| layer_token_bytes(req, a, 1).0).max().unwrap_or(0).max(1)
}

/// Bytes `cells` tokens take in one attention layer on one rank: their keys and values (or MLA
/// latent) in the cache format, and DeepSeek-V3.2's indexer keys. vLLM keeps V3.2's fp8 latent
/// as `fp8_ds_mla`: 512 fp8 values, four fp32 tile scales and the 64 rope values in bf16, 656 B
/// (`MLAAttentionSpec.real_page_size_bytes`), and its indexer keys as 128 fp8 values and an fp32
/// scale, 132 B, whatever the cache dtype (`DeepseekV32IndexerCache`); llama.cpp keeps the
/// indexer keys in the cache's type (`llama_kv_cache_dsa`). DeepSeek-V3.2 under vLLM with an fp8
/// cache: (656 + 132)·61 = 48,068 B per token; bf16: (1,152 + 132)·61 = 78,324 B.
fn layer_token_bytes(req: &KvRequest, attention: LayerAttention, cells: u64) -> Bytes {
    let indexer = req.spec.mla.and_then(|m| m.indexer);
    let latent = match (indexer, req.engine, req.format) {
        (Some(_), Engine::Vllm, KvFormat::Fp8) => Bytes(656 * cells),
        _ => req.format.bytes(values_per_token_layer(req, attention), cells),
    };
    let keys = match (indexer, req.engine) {
        (None, _) => Bytes::ZERO,
        (Some(ix), Engine::Vllm) => Bytes((ix.head_dim + ix.head_dim / 128 * 4) * cells),
        (Some(ix), _) => req.format.bytes(ix.head_dim, cells),
    };
    latent + keys
}

/// vLLM's attention block size. For a hybrid model it is raised until one block's page holds a
/// linear layer's state: `16 · ⌈state / (16 · attention bytes per token)⌉`
/// (`HybridAttentionMambaModelConfig.verify_and_update_config`; since vLLM PR #37467
/// `Platform._align_hybrid_block_size`). Qwen3-Next-80B-A3B, bf16: 16·⌈1,097,728 / 32,768⌉ = 544
/// tokens, the page padded by 1.49% (both as vLLM logs them). In "all" mode the block is a
/// multiple of the Mamba-2 scan's chunk instead, `lcm(chunk, 16)·⌈⌈state / bytes per token⌉ /
/// lcm(chunk, 16)⌉`: Nemotron-Nano-9B-v2 (fp32 states of 5,316,608 B, 4,096 B per token): 1,408.
pub fn vllm_block_size(req: &KvRequest) -> u64 {
    let configured = req.options.block_size;
    // DeepSeek-V3.2's sparse MLA kernels (FlashMLA sparse) take 64-token blocks; vLLM forces them
    // (`platforms/cuda.py`, `use_sparse`).
    if req.spec.mla.is_some_and(|m| m.indexer.is_some()) {
        return 64;
    }
    if !hybrid(req.spec) {
        return configured;
    }
    let per_token = attention_bytes_per_token_layer(req);
    let state = state_bytes_per_layer(req);
    let align = match (state_cache(req), req.spec.linear_attention) {
        (StateCache::PerBlock, Some(la)) => lcm(la.chunk_size, 16),
        _ => 16,
    };
    configured.max(align * state.div_ceil(per_token).div_ceil(align))
}

fn lcm(a: u64, b: u64) -> u64 {
    let gcd = |mut x: u64, mut y: u64| {
        while y != 0 {
            (x, y) = (y, x % y);
        }
        x
    };
    a / gcd(a, b).max(1) * b
}

/// Whether llama.cpp's graph for the family uses a sliding-window (or chunked) cache: Gemma 2,
/// 3 and 4 (`gemma4-iswa`), gpt-oss, Command R7B, Olmo 3 and Llama 4. Its `llama` architecture
/// (Mistral 7B v0.1), `starcoder2` and `qwen2` never read a window, and Phi-3's is turned off
/// (llama.cpp PR #13676): those layers cache the whole context.
pub fn llama_cpp_slides(family: Family) -> bool {
    matches!(
        family,
        Family::Gemma2
            | Family::Gemma3
            | Family::Gemma4
            | Family::GptOss
            | Family::Cohere2
            | Family::Olmo3
            | Family::Llama4
    )
}

/// Whether llama.cpp caches the whole context in layers the config gives a sliding window.
pub fn llama_cpp_ignores_window(spec: &ModelSpec) -> bool {
    windowed(spec) && !llama_cpp_slides(spec.family)
}

fn windowed(spec: &ModelSpec) -> bool {
    spec.layer_attention.iter().any(|a| matches!(a, LayerAttention::Sliding { .. }))
}

/// Whether mlx-lm's module for the family builds a RotatingKVCache for its sliding (or chunked)
/// layers (`make_cache`): Gemma 3 and 4 (`gemma4_text`: `RotatingKVCache(max_size=
/// sliding_window)`), gpt-oss, Command R7B, Olmo 3 and Llama 4. Its llama module (Mistral 7B
/// v0.1), gemma2 and starcoder2 give every layer a whole-context KVCache.
pub fn mlx_slides(family: Family) -> bool {
    matches!(
        family,
        Family::Gemma3 | Family::Gemma4 | Family::GptOss | Family::Cohere2 | Family::Olmo3 | Family::Llama4
    )
}

/// The window mlx-lm's RotatingKVCache keeps in a layer: the layer's own where the family's
/// module slides it (`mlx_slides`), none where it caches the whole context.
pub fn mlx_window(family: Family, attention: LayerAttention) -> Option<u64> {
    attention.token_cap().filter(|_| mlx_slides(family))
}

/// Whether the engine caches the whole context in layers the config gives a window.
pub fn ignores_window(engine: Engine, spec: &ModelSpec) -> bool {
    match engine {
        Engine::LlamaCpp => llama_cpp_ignores_window(spec),
        Engine::Mlx => windowed(spec) && !mlx_slides(spec.family),
        _ => false,
    }
}

/// Cells (token slots) one layer holds for the whole batch.
pub fn cells_per_layer(req: &KvRequest, attention: LayerAttention) -> u64 {
    let (ctx, batch) = (req.context, req.batch);
    if !attention.attends() {
        return 0;
    }
    let window = attention.token_cap();
    match req.engine {
        Engine::Vllm => vllm_layer_blocks(req, attention) * vllm_kind_block_size(req, attention) * batch,
        // llama.cpp: one unified cache of n_ctx = batch·context cells padded to 256; SWA layers
        // (Llama 4's chunked ones too, `LLAMA_SWA_TYPE_CHUNKED`) keep
        // min(n_ctx, pad(window·n_seq + n_ubatch, 256)) (llama-kv-cache-iswa).
        Engine::LlamaCpp => {
            let n_ctx = (ctx * batch).next_multiple_of(256);
            match window.filter(|_| !llama_cpp_ignores_window(req.spec)) {
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
        Engine::Hf | Engine::Unsloth => ctx * batch,
        // LitGPT: `set_kv_cache(max_seq_length)` for every sequence, no sliding-window cache; its
        // cache holds the model's KV heads (litgpt 2024+; its 2023 releases cached K and V
        // expanded to every query head).
        Engine::Litgpt => ctx * batch,
        Engine::Bare => window.map_or(ctx, |w| ctx.min(w)) * batch,
        // One cache for the whole context per sequence (validate runs full-attention models).
        Engine::Headroom => ctx * batch,
        // mlx-lm: each sequence's KVCache grows in steps of 256 tokens; a sliding-window layer's
        // RotatingKVCache (`mlx_slides`) holds the window, and while a prompt chunk goes in, the
        // window and the chunk but one (`max_size + S − 1`, cache.py).
        Engine::Mlx => {
            let grown = ctx.next_multiple_of(MLX_KV_STEP);
            let chunk = req.options.prefill_step_size.min(ctx);
            window.filter(|_| mlx_slides(req.spec.family)).map_or(grown, |w| grown.min(w + chunk - 1)) * batch
        }
    }
}

/// Blocks one sequence holds in one attention layer under vLLM (`vllm/v1/kv_cache_interface.py`,
/// `max_memory_usage_bytes`): a full layer ⌈len / block⌉; a sliding one
/// ⌈min(window − 1 + max_num_batched_tokens, len) / block⌉ + 1; a chunked one
/// ⌈min(chunk + max_num_batched_tokens, len) / block⌉ (`ChunkedLocalAttentionSpec`).
fn vllm_layer_blocks(req: &KvRequest, attention: LayerAttention) -> u64 {
    let (ctx, bs, mbt) = (req.context, vllm_kind_block_size(req, attention), req.max_batched_tokens);
    match vllm_kind(req, attention) {
        LayerAttention::Full => ctx.div_ceil(bs),
        LayerAttention::Sliding { window } => (window - 1 + mbt).min(ctx).div_ceil(bs) + 1,
        LayerAttention::Chunked { chunk } => (chunk + mbt).min(ctx).div_ceil(bs),
        LayerAttention::Linear => state_slots(req),
        LayerAttention::Absent => 0,
    }
}

/// The kind vLLM caches a layer as: with the hybrid KV cache manager off, a model with full
/// attention beside sliding or chunked layers has those unified into full attention
/// (`unify_hybrid_kv_cache_specs`); a model of one kind keeps it. The caller refuses recurrent
/// layers beside attention, which cannot be unified.
fn vllm_kind(req: &KvRequest, attention: LayerAttention) -> LayerAttention {
    match attention {
        LayerAttention::Sliding { .. } | LayerAttention::Chunked { .. }
            if !req.options.hybrid_kv_cache_manager && req.spec.layer_attention.contains(&LayerAttention::Full) =>
        {
            LayerAttention::Full
        }
        a => a,
    }
}

/// KV bytes on one tensor-parallel rank for the layers `layers` (a layer-split slice or all),
/// linear-attention states included (one per sequence and layer). vLLM's pool of a model with
/// layers of several kinds counts the groups' padding layers too (`vllm_groups`: a request's
/// blocks in every group, a page in each of a group's layers).
pub fn kv_bytes(req: &KvRequest, layers: std::ops::Range<u64>) -> Bytes {
    if req.engine == Engine::Vllm && layers == (0..req.spec.num_layers) {
        let groups = vllm_groups(req);
        if groups.kinds.len() > 1 {
            let page = vllm_page_bytes(req);
            return Bytes(req.batch * groups.request_blocks(req) * groups.size * page);
        }
    }
    let state = Bytes(req.batch * state_slots(req) * state_page_bytes(req));
    layers
        .map(|l| match req.spec.layer_attention[l as usize] {
            // (Gemma 4's KV-shared layers read an earlier layer's cache.)
            _ if !req.spec.caches_kv(l) => Bytes::ZERO,
            LayerAttention::Linear => state,
            // Falcon-H1's attention layers hold a recurrent state too.
            a if req.spec.parallel_ssm && a.attends() => layer_token_bytes(req, a, cells_per_layer(req, a)) + state,
            a => layer_token_bytes(req, a, cells_per_layer(req, a)),
        })
        .sum()
}

/// Bytes one decode step reads from the cache of `layers` for the whole batch: each attention
/// layer's attended tokens (its window caps them, unless the engine caches and reads the whole
/// context, as llama.cpp and mlx-lm do for Mistral 7B and StarCoder2) in the engine's layout
/// (mlx-lm's per-head DeepSeek-V2 keys, vLLM's `fp8_ds_mla`), and each recurrent layer's state as
/// the engine stores it (the write-back is the caller's). Tokens attended, not cells allocated:
/// no block or step rounding. Llama-2-7B bf16 at 4,096 tokens: 32 · 4,096 · 16 KiB = 2 GiB.
pub fn read_bytes(req: &KvRequest, layers: std::ops::Range<u64>) -> Bytes {
    let state = Bytes(req.batch * state_bytes_per_layer(req));
    let whole_context = ignores_window(req.engine, req.spec);
    let attended = |a: LayerAttention| {
        let tokens = a.token_cap().filter(|_| !whole_context).map_or(req.context, |w| req.context.min(w));
        layer_token_bytes(req, a, tokens * req.batch)
    };
    layers
        .map(|l| match req.spec.layer_attention[l as usize] {
            LayerAttention::Linear => state,
            a if req.spec.parallel_ssm && a.attends() => attended(a) + state,
            a if a.attends() => attended(a),
            _ => Bytes::ZERO,
        })
        .sum()
}

/// What vLLM's KV pool of `pool` bytes holds: tokens of context, and how many requests of
/// `req.context` tokens fit at once (`_report_kv_cache_config`,
/// `get_max_concurrency_for_kv_cache_config`): ⌊blocks / groups⌋ blocks of tokens, and the
/// pool's blocks over the blocks one request holds in all groups (`vllm_groups`).
///
/// Qwen3-Next-80B-A3B at tensor parallel 2 on H200s (vLLM 0.10.2, prefix caching off for
/// hybrids): 12 attention and 36 DeltaNet layers make 4 groups of 12; a 44.59 GiB pool of
/// 544·1,024 B pages is ⌊44.59 GiB / 557,056 / 12⌋ = 7,162 blocks, ⌊7,162 / 4⌋·544 = 973,760
/// tokens and 7,162 / (482 + 3) = 14.77 requests of 262,144 tokens: the numbers vLLM logged.
/// Gemma 3 27B (52 sliding and 10 full layers): 7 groups of 10 (8 padding layers), so its tokens
/// are the pool over 70 layers' pages, and a 131,072-token request holds 8,192 blocks of the
/// full group and 6·(⌈(1023 + 8192) / 16⌉ + 1) of the sliding ones.
pub fn vllm_pool_capacity(req: &KvRequest, pool: Bytes) -> (u64, f64) {
    let spec = req.spec;
    let bs = vllm_block_size(req);
    let (attention, linear) = (spec.attention_layers(), spec.linear_layers());
    if attention == 0 {
        // Only recurrent layers: one state per layer and sequence, whatever its length.
        let sequences = pool.0 / (state_slots(req) * state_bytes_per_layer(req) * linear).max(1);
        return (sequences * req.context, sequences as f64);
    }
    let groups = vllm_groups(req);
    let blocks = groups.pool_blocks(req, pool);
    let count: u64 = groups.kinds.iter().map(|(_, n)| n).sum();
    let tokens = blocks / count.max(1) * bs;
    (tokens, blocks as f64 / groups.request_blocks(req).max(1) as f64)
}

/// vLLM's KV cache groups: its layers' kinds (full attention, each sliding window, each chunk
/// size, recurrent state) and how many groups of `size` layers each fills.
struct VllmGroups {
    size: u64,
    kinds: Vec<(LayerAttention, u64)>,
}

impl VllmGroups {
    /// Blocks one request of `req.context` tokens holds in the pool: its blocks of each kind of
    /// layer (`vllm_layer_blocks`) in each group of that kind.
    fn request_blocks(&self, req: &KvRequest) -> u64 {
        self.kinds.iter().map(|&(kind, groups)| groups * vllm_layer_blocks(req, kind)).sum()
    }

    /// Blocks in vLLM's pool of `pool` bytes: each a page in every layer of a group.
    fn pool_blocks(&self, req: &KvRequest, pool: Bytes) -> u64 {
        let page = vllm_page_bytes(req);
        pool.0 / page.max(1) / self.size
    }
}

/// `_get_kv_cache_groups_uniform_page_size`: layers of one kind share a spec; every group has
/// the same number of layers, the smallest kind's count, or the largest's when that is under
/// 1.5× the smallest (current vLLM; 0.10 used 1.25×, which groups every catalog model the same
/// but not a kind ratio in [1.25, 1.5)); a kind's last group is padded. One kind makes one
/// group of every layer. gpt-oss-20b (12 sliding, 12 full): 2 groups of 12; Gemma 3 27B (52
/// sliding, 10 full): 1 + 6 groups of 10; Llama 4 Scout (36 chunked, 12 full): 3 + 1 of 12.
fn vllm_groups(req: &KvRequest) -> VllmGroups {
    let spec = req.spec;
    let mut counts: Vec<(LayerAttention, u64)> = Vec::new();
    // (Falcon-H1 registers a Mamba layer beside each attention layer.)
    let parallel = std::iter::repeat_n(LayerAttention::Linear, spec.parallel_ssm_layers() as usize);
    let own =
        |(l, a): (usize, &LayerAttention)| (*a != LayerAttention::Absent && spec.caches_kv(l as u64)).then_some(*a);
    let layers = spec.layer_attention.iter().enumerate().filter_map(own).chain(parallel);
    for kind in layers.map(|a| vllm_kind(req, a)) {
        match counts.iter_mut().find(|(k, _)| *k == kind) {
            Some((_, n)) => *n += 1,
            None => counts.push((kind, 1)),
        }
    }
    let small = counts.iter().map(|(_, n)| *n).min().unwrap_or(1);
    let large = counts.iter().map(|(_, n)| *n).max().unwrap_or(1);
    let size = if 2 * large < 3 * small { large } else { small }.max(1);
    VllmGroups { size, kinds: counts.into_iter().map(|(k, n)| (k, n.div_ceil(size))).collect() }
}

/// Blocks in a hybrid model's pool of `pool` bytes, `None` for a model that is not a hybrid.
/// Every running request holds at least one of them for its recurrent state, so vLLM (0.20 on)
/// refuses to start when `max_num_seqs` exceeds them ("max_num_seqs exceeds available Mamba
/// cache blocks", raised before CUDA-graph capture).
pub fn vllm_hybrid_blocks(req: &KvRequest, pool: Bytes) -> Option<u64> {
    hybrid(req.spec).then(|| vllm_groups(req).pool_blocks(req, pool))
}

/// Records the per-token arithmetic in the basis.
pub fn explain(req: &KvRequest, basis: &mut BasisLog) {
    let spec = req.spec;
    let caching = || (0..spec.num_layers).filter(|&l| spec.caches_kv(l)).map(|l| spec.layer_attention[l as usize]);
    let layers = caching().filter(|a| a.attends()).count() as u64;
    let per_token: u64 = caching().filter(|a| a.attends()).map(|a| layer_token_bytes(req, a, 1).0).sum();
    let rank = if req.tp > 1 { " per TP rank" } else { "" };
    let formula = match (spec.mla, spec.global_attention) {
        (Some(m), _) if m.indexer.is_some() => format!(
            "L·(latent + indexer key) = {layers}·{} B (MLA latent {}+{} in the cache format, fp8_ds_mla 656 B under vLLM's fp8; indexer keys 132 B under vLLM, the cache format elsewhere)",
            per_token / layers.max(1),
            m.kv_lora_rank,
            m.qk_rope_head_dim
        ),
        (Some(m), _) => {
            format!("L·(kv_lora_rank+rope)·b = {layers}·({}+{})·b (MLA latent)", m.kv_lora_rank, m.qk_rope_head_dim)
        }
        (None, Some(g)) => {
            let full = caching().filter(|a| *a == LayerAttention::Full).count() as u64;
            let shared = match spec.kv_shared_layers {
                0 => String::new(),
                n => format!("; the last {n} layers reuse earlier layers' caches"),
            };
            format!(
                "2·(L_other·n_kv·head_dim + L_full·n_kv_full·head_dim_full)·b = 2·({}·{}·{} + {full}·{}·{})·b{rank} (full layers: global_head_dim, num_global_key_value_heads; values cached apart even where k_eq_v{shared})",
                layers - full,
                (spec.num_kv_heads / req.tp).max(1),
                spec.head_dim,
                (g.num_kv_heads / req.tp).max(1),
                g.head_dim
            )
        }
        (None, None) => format!(
            "2·L·n_kv·head_dim·b = 2·{layers}·{}·{}·b{rank}",
            (spec.num_kv_heads / req.tp).max(1),
            spec.head_dim
        ),
    };
    basis.add("kv bytes per token (attention layers, no window)", per_token, formula);
    if let Some(la) = spec.linear_attention.filter(|_| spec.linear_layers() > 0) {
        let (layers_from, state_formula) = match la.kind {
            LinearKind::GatedDeltaNet if la.low_rank_gates > 0 => {
                ("config.json linear_attn_config (Kimi Delta Attention)", "heads·d_k·d_v")
            }
            LinearKind::GatedDeltaNet => ("config.json layer_types / full_attention_interval", "value_heads·d_k·d_v"),
            LinearKind::Mamba2 => {
                ("config.json hybrid_override_pattern / layer_types (Mamba-2)", "heads·head_dim·d_state")
            }
            LinearKind::Mamba1 => ("config.json layers (Mamba-1; Jamba's attn_layer_period)", "d_inner·d_state"),
        };
        basis.add(
            "linear-attention layers (no KV cache)",
            format!("{} of {}", spec.linear_layers(), spec.num_layers),
            layers_from,
        );
        let (channels, state) = state_values_per_rank(&la, req.tp);
        let s = state_storage(req);
        basis.add(
            "linear-attention state per sequence and layer",
            state_page_bytes(req),
            format!(
                "recurrent {state_formula} = {state} values × {} B + conv {} columns × {channels} channels × {} B{}; {}",
                s.state_bytes,
                s.conv_columns,
                s.conv_bytes,
                if req.tp > 1 { " per TP rank" } else { "" },
                s.how
            ),
        );
    }
    if spec.linear_layers() > 0 {
        let draft = match req.options.mtp_tokens {
            0 => String::new(),
            k => format!(", and {k} for the draft tokens"),
        };
        basis.add(
            "linear-attention state pages per sequence and layer",
            state_slots(req),
            format!(
                "{}{draft}",
                match state_cache(req) {
                    StateCache::One => "one state per sequence",
                    StateCache::Align =>
                        "vLLM prefix caching ('align'): the state being written and the last complete one",
                    StateCache::PerBlock => {
                        "vLLM prefix caching ('all', Mamba-2): a state per block of context, as vLLM budgets a request \
                     (MambaSpec.max_memory_usage_bytes); --no-prefix-caching keeps one"
                    }
                }
            ),
        );
    }
    let sliding = spec.layer_attention.iter().filter(|a| matches!(a, LayerAttention::Sliding { .. })).count();
    let chunked = spec.layer_attention.iter().filter(|a| matches!(a, LayerAttention::Chunked { .. })).count();
    let chunks = "config.json attention_chunk_size / no_rope_layers (a token attends within its chunk)";
    for (name, source, n) in [
        ("sliding-window layers", "config.json sliding_window / layer pattern", sliding),
        ("chunked local-attention layers", chunks, chunked),
    ] {
        if n > 0 {
            basis.add(name, format!("{n} of {}", spec.num_layers), source);
        }
    }
    let windowed = spec.layer_attention.iter().any(|a| a.token_cap().is_some());
    if req.engine == Engine::Vllm && windowed && spec.layer_attention.contains(&LayerAttention::Full) {
        let groups = vllm_groups(req);
        let total: u64 = groups.kinds.iter().map(|(_, n)| n).sum();
        let value = if req.options.hybrid_kv_cache_manager {
            format!("{total} groups of {} layers, windowed kinds apart", groups.size)
        } else {
            "every layer caches the whole context (hybrid KV cache manager off)".to_string()
        };
        basis.add(
            "vllm kv cache groups",
            value,
            "vLLM's hybrid KV cache manager, on by default; for chunked attention (Llama 4) vLLM ~0.10.1 until \
             PR #29627 turned it off unless VLLM_ALLOW_CHUNKED_LOCAL_ATTN_WITH_HYBRID_KV_CACHE=1, as EAGLE drafting \
             does; KV connectors or events without support turn it off for any model: then pass \
             --disable-hybrid-kv-cache-manager",
        );
    }
    let rounding = match req.engine {
        Engine::Vllm => format!("paged blocks of {} tokens (vLLM)", vllm_block_size(req)),
        Engine::LlamaCpp => "n_ctx = batch·context padded to 256 cells (llama.cpp)".to_string(),
        Engine::Exllama => "preallocated for the full context (ExLlama)".to_string(),
        Engine::Mlx => "each sequence's cache grown in steps of 256 tokens (mlx-lm KVCache)".to_string(),
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

    /// The doc's examples of `largest_layer_f16_bytes`.
    #[test]
    fn the_largest_layer_is_converted_to_f16() {
        let options = EngineOptions::default();
        let at = |spec: &ModelSpec, context| {
            let format = KvFormat::Q8_0;
            let req = KvRequest {
                spec,
                format,
                context,
                batch: 1,
                engine: Engine::LlamaCpp,
                options: &options,
                tp: 1,
                max_batched_tokens: 512,
            };
            largest_layer_f16_bytes(&req).0
        };
        assert_eq!(at(&spec(r#", "num_key_value_heads": 8"#), 131_072), 512 << 20);
        let gemma = parse_config(include_str!("../../data/models/gemma-4-31b.json"), "g", "g").unwrap().spec;
        assert_eq!(at(&gemma, 262_144), 2 << 30);
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
        // mlx-lm: each of 2 sequences grows to 256 slots.
        assert_eq!(kv(&s, Engine::Mlx, 100, 2, KvFormat::Bf16), 512 * per_token);
    }

    fn qwen3_next() -> ModelSpec {
        let config = include_str!("../../data/models/qwen3-next-80b-a3b.json");
        parse_config(config, "qwen3-next-80b-a3b", "qwen3-next-80b-a3b.json").unwrap().spec
    }

    fn request<'a>(spec: &'a ModelSpec, engine: Engine, options: &'a EngineOptions, tp: u64) -> KvRequest<'a> {
        KvRequest {
            spec,
            format: KvFormat::Bf16,
            context: 262_144,
            batch: 1,
            engine,
            options,
            tp,
            max_batched_tokens: 8192,
        }
    }

    /// The module doc's arithmetic, per engine: vLLM bf16 states, llama.cpp F32, transformers an
    /// fp32 recurrent state beside a bf16 conv state of all four kernel columns.
    #[test]
    fn qwen3_next_state_per_sequence_and_layer() {
        let s = qwen3_next();
        let o = EngineOptions::default();
        let state = 32 * 128 * 128;
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Vllm, &o, 1)), state * 2 + 8192 * 3 * 2);
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Vllm, &o, 1)), 1_097_728);
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::LlamaCpp, &o, 1)), state * 4 + 8192 * 3 * 4);
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Hf, &o, 1)), state * 4 + 8192 * 4 * 2);
        // Tensor parallel 2 halves heads and channels.
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Vllm, &o, 2)), 1_097_728 / 2);
        // llama.cpp: 36 layers × 2,195,456 B = 75.375 MiB per sequence; 12 attention layers of
        // 2·2·256 f16 values per token.
        let llama = KvRequest { context: 4096, format: KvFormat::Fp16, ..request(&s, Engine::LlamaCpp, &o, 1) };
        assert_eq!(kv_bytes(&llama, 0..48).0, 36 * 2_195_456 + 12 * 4096 * 2048);
    }

    /// vLLM raises the block size to 544 tokens so that one attention page (544 · 2 KiB) holds a
    /// DeltaNet layer's 1,097,728 B state, and pads the state to that page (1.49%), as vLLM 0.10.2
    /// logs for this model; with an fp8 cache an attention token is half as large: 16·⌈1,097,728 / 16,384⌉ = 1,072.
    #[test]
    fn vllm_aligns_blocks_to_the_state_page() {
        let s = qwen3_next();
        let o = EngineOptions::default();
        let req = request(&s, Engine::Vllm, &o, 1);
        assert_eq!(vllm_block_size(&req), 544);
        assert_eq!(state_page_bytes(&req), 544 * 2048);
        let padding = state_page_bytes(&req) as f64 / state_bytes_per_layer(&req) as f64 - 1.0;
        assert!((padding - 0.0149).abs() < 0.0001, "{padding}");
        assert_eq!(vllm_block_size(&KvRequest { format: KvFormat::Fp8, ..req }), 1072);
        // A plain model keeps the configured block.
        let llama = spec("");
        assert_eq!(vllm_block_size(&request(&llama, Engine::Vllm, &o, 1)), 16);
    }

    /// Prefix caching on ("align" mode, vLLM's current default): two state pages per
    /// DeltaNet group and request. Qwen3.6-35B-A3B (Qwen3.5-35B-A3B's architecture) on an RTX
    /// 5090, vLLM 0.24, fp8 KV cache: "Available KV cache memory: 5.98 GiB", "Maximum
    /// concurrency for 131,072 tokens per request: 4.33x" (GH noonghunna/club-3090 issue 612).
    /// An attention token is 2·2·256·1 B, a state 3·8192·2 + 32·128·128·4 = 2,146,304 B: blocks
    /// of 16·⌈2,146,304 / 16,384⌉ = 2,096 tokens with no padding; 10 layers per group, 299
    /// blocks; a request takes ⌈131,072 / 2,096⌉ = 63 attention blocks and 2 in each of three
    /// DeltaNet groups: 299 / 69 = 4.33.
    #[test]
    fn vllm_prefix_caching_holds_two_state_pages() {
        let config = include_str!("../../data/models/qwen3.5-35b-a3b.json");
        let s = parse_config(config, "q", "q").unwrap().spec;
        let o = EngineOptions::default();
        let req = KvRequest { format: KvFormat::Fp8, context: 131_072, ..request(&s, Engine::Vllm, &o, 1) };
        assert_eq!(vllm_block_size(&req), 2096);
        let (_, concurrency) = vllm_pool_capacity(&req, Bytes((5.98 * (1u64 << 30) as f64) as u64));
        assert!((concurrency - 4.33).abs() < 0.005, "{concurrency}");
        let off = EngineOptions { prefix_caching: false, ..o.clone() };
        let one = KvRequest { options: &off, ..req };
        assert_eq!(kv_bytes(&req, 0..40).0 - kv_bytes(&one, 0..40).0, 30 * 2096 * 1024);
    }

    /// Qwen3.5-9B at tensor parallel 2 (fp32 recurrent state): "Setting attention block size to
    /// 528 tokens", "Padding mamba page size by 0.76%" (vLLM PR #37467's log).
    #[test]
    fn qwen3_5_state_is_fp32_in_vllm() {
        let config = include_str!("../../data/models/qwen3.5-9b.json");
        let s = parse_config(config, "qwen3.5-9b", "qwen3.5-9b.json").unwrap().spec;
        let o = EngineOptions::default();
        let req = request(&s, Engine::Vllm, &o, 2);
        assert_eq!(state_bytes_per_layer(&req), 16 * 128 * 128 * 4 + 4096 * 3 * 2);
        assert_eq!(vllm_block_size(&req), 528);
        let padding = state_page_bytes(&req) as f64 / state_bytes_per_layer(&req) as f64 - 1.0;
        assert!((padding - 0.0076).abs() < 0.0001, "{padding}");
    }

    /// vLLM 0.20 on an RTX 5090 with Qwen3.5-9B (prefix caching off): "Available KV cache
    /// memory: 6.56 GiB", "GPU KV cache size: 53,328 tokens", "Maximum concurrency for 4,096
    /// tokens per request: 36.91x". 528-token blocks of 2,162,688 B pages, groups of 8 (one
    /// attention, three DeltaNet): 6.56 GiB holds 406 or 407 blocks (the log rounds the GiB),
    /// ⌊/ 4⌋·528 = 53,328 tokens either way; a request takes 8 + 3 blocks: 36.9 to 37.0.
    #[test]
    fn vllm_qwen3_5_pool_on_an_rtx_5090() {
        let s = catalog_spec(include_str!("../../data/models/qwen3.5-9b.json"));
        let o = EngineOptions { prefix_caching: false, ..EngineOptions::default() };
        let req = KvRequest { context: 4096, ..request(&s, Engine::Vllm, &o, 1) };
        let (tokens, concurrency) = vllm_pool_capacity(&req, Bytes((6.56 * (1u64 << 30) as f64) as u64));
        assert_eq!(tokens, 53_328);
        assert!((concurrency / 36.91 - 1.0).abs() < 0.003, "{concurrency}");
    }

    /// The vLLM 0.10.2 log of Qwen3-Next-80B-A3B-Instruct at tensor parallel 2 on H200s (prefix
    /// caching disabled for hybrid models in that version): "Available KV cache memory: 44.59
    /// GiB", "GPU KV cache size: 973,760 tokens", "Maximum concurrency for 262,144 tokens per
    /// request: 14.77x".
    #[test]
    fn vllm_hybrid_pool_reproduces_the_logged_capacity() {
        let s = qwen3_next();
        let o = EngineOptions { prefix_caching: false, ..EngineOptions::default() };
        let req = request(&s, Engine::Vllm, &o, 2);
        let pool = Bytes((44.59 * (1u64 << 30) as f64) as u64);
        let (tokens, concurrency) = vllm_pool_capacity(&req, pool);
        assert_eq!(tokens, 973_760);
        assert!((concurrency - 14.77).abs() < 0.005, "{concurrency}");
        // One sequence holds 482 attention blocks in its group and one state block in each of
        // the three DeltaNet groups: 485 blocks of 12 pages of 557,056 B.
        assert_eq!(kv_bytes(&req, 0..48).0, (482 + 3) * 12 * 557_056);
    }

    /// vLLM 0.20 with an MTP drafter (one token) on Qwen3.6-27B (Qwen3.5-27B's architecture;
    /// fp8 cache, prefix caching on): "Setting attention block size to 1584 tokens", "Padding
    /// mamba page size by 0.51%", "Available KV cache memory: 4.8 GiB", "Add 3 padding layers",
    /// "GPU KV cache size: 36,432 tokens", "Maximum concurrency for 65,536 tokens per request:
    /// 1.82x". The draft token widens the conv state to 4 columns: (3 + 1)·10,240·2 +
    /// 48·128·128·4 = 3,227,648 B, 16·⌈1,576 / 16⌉ = 1,584 tokens of 2,048 B; the drafter's attention
    /// layer joins the 16 (groups of 17: one attention, three DeltaNet with 3 padding layers);
    /// 93 blocks, 23·1,584 tokens, a request 42 attention blocks and 2 + 1 state pages in each
    /// DeltaNet group: 93 / 51 = 1.82.
    #[test]
    fn vllm_mtp_drafter_joins_the_cache() {
        let s = catalog_spec(include_str!("../../data/models/qwen3.6-27b.json"));
        let drafter = s.with_mtp_layers(s.mtp_layers);
        let o = EngineOptions { mtp_tokens: 1, ..EngineOptions::default() };
        let req = KvRequest { format: KvFormat::Fp8, context: 65_536, ..request(&drafter, Engine::Vllm, &o, 1) };
        assert_eq!(state_bytes_per_layer(&req), 3_227_648);
        assert_eq!(vllm_block_size(&req), 1584);
        let padding = state_page_bytes(&req) as f64 / state_bytes_per_layer(&req) as f64 - 1.0;
        assert!((padding - 0.0051).abs() < 0.0001, "{padding}");
        let (tokens, concurrency) = vllm_pool_capacity(&req, Bytes((4.8 * (1u64 << 30) as f64) as u64));
        assert_eq!(tokens, 36_432);
        assert!((concurrency - 1.82).abs() < 0.005, "{concurrency}");
    }

    /// Qwen3-Next's file leaves `num_nextn_predict_layers` out: one MTP layer, as vLLM assumes.
    /// Two draft tokens keep 3 + 2 conv columns (32·128·128·2 + 5·8192·2 = 1,130,496 B) and
    /// 2 + 2 state pages per DeltaNet group with prefix caching.
    #[test]
    fn mtp_widens_qwen3_next_states() {
        let s = qwen3_next();
        assert_eq!(s.mtp_layers, 1);
        let drafter = s.with_mtp_layers(1);
        let o = EngineOptions { mtp_tokens: 2, ..EngineOptions::default() };
        let req = request(&drafter, Engine::Vllm, &o, 1);
        assert_eq!(state_bytes_per_layer(&req), 1_130_496);
        assert_eq!((state_slots(&req), drafter.attention_layers()), (4, 13));
    }

    fn catalog_spec(config: &str) -> ModelSpec {
        parse_config(config, "m", "m.json").unwrap().spec
    }

    /// Nemotron-Nano-9B-v2 (128 heads of 80, 8 groups of 128, kernel 4; 8 KV heads of 128): a
    /// Mamba-2 layer's state is 3·12,288 conv values and 128·80·128 recurrent values per sequence,
    /// the recurrent part fp32 in vLLM (Nemotron-H's default) and transformers, everything F32 in
    /// llama.cpp. Without prefix caching vLLM's block is 16·⌈5,316,608 / (16·4,096)⌉ = 1,312
    /// tokens (1.08% padding); with it ("all" mode) a multiple of the 128-token scan chunk,
    /// 128·⌈1,298 / 128⌉ = 1,408, and a request budgets ⌈context / 1,408⌉ state pages per layer.
    #[test]
    fn mamba2_state_per_engine_and_vllm_modes() {
        let s = catalog_spec(include_str!("../../data/models/nemotron-nano-9b-v2.json"));
        let off = EngineOptions { prefix_caching: false, ..EngineOptions::default() };
        let on = EngineOptions::default();
        let (conv, state) = (3 * 12_288, 128 * 80 * 128);
        let req = KvRequest { context: 131_072, ..request(&s, Engine::Vllm, &off, 1) };
        assert_eq!(state_bytes_per_layer(&req), conv * 2 + state * 4);
        assert_eq!(state_bytes_per_layer(&req), 5_316_608);
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::LlamaCpp, &off, 1)), (conv + state) * 4);
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Hf, &off, 1)), 4 * 12_288 * 2 + state * 4);
        assert_eq!(vllm_block_size(&req), 1312);
        let padding = state_page_bytes(&req) as f64 / state_bytes_per_layer(&req) as f64 - 1.0;
        assert!((padding - 0.0108).abs() < 0.0001, "{padding}");
        assert_eq!(state_slots(&req), 1);
        let all = KvRequest { options: &on, ..req };
        assert_eq!(vllm_block_size(&all), 1408);
        assert_eq!(state_slots(&all), 131_072_u64.div_ceil(1408));
        // 94 pages in each of the 28 slots of seven Mamba-2 groups of 4 (one a padding layer,
        // as vLLM pads groups) and 94 blocks in the 4 attention layers.
        assert_eq!(kv_bytes(&all, 0..56).0, (28 + 4) * 94 * 1408 * 4096);
    }

    /// Granite 4.0 H's single group is replicated on every tensor-parallel rank (vLLM pads the
    /// groups to the ranks): at TP 2 a rank holds half of x's 8,192 channels and all of B and C,
    /// 4,096 + 2·128 = 4,352 conv channels, and half of the 128 heads' states, in bf16 (no vLLM
    /// override for Granite).
    #[test]
    fn mamba2_single_group_is_replicated_across_ranks() {
        let s = catalog_spec(include_str!("../../data/models/granite-4.0-h-small.json"));
        let o = EngineOptions::default();
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Vllm, &o, 1)), 3 * (8192 + 256) * 2 + 8192 * 128 * 2);
        assert_eq!(state_bytes_per_layer(&request(&s, Engine::Vllm, &o, 2)), 3 * 4352 * 2 + 4096 * 128 * 2);
        assert!(s.splits_heads(2) && s.splits_heads(8));
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
        // mlx-lm's llama module (Mistral 7B) keeps the whole context in every layer; Gemma 3's
        // RotatingKVCache the window and a 2,048-token prompt chunk but one.
        assert_eq!(kv(&s, Engine::Mlx, 8192, 1, KvFormat::Bf16), 32 * 8192 * per_token_layer);
        let g = ModelSpec { family: Family::Gemma3, ..s.clone() };
        assert_eq!(kv(&g, Engine::Mlx, 8192, 1, KvFormat::Bf16), 32 * (1024 + 2047) * per_token_layer);
        assert_eq!(kv(&g, Engine::Mlx, 1000, 1, KvFormat::Bf16), 32 * 1024 * per_token_layer);
        // A decode step reads the attended tokens: the window, unless the engine keeps the whole
        // context (llama.cpp and mlx-lm for Mistral 7B); never the allocation's extra cells.
        let o = EngineOptions::default();
        let read = |spec: &ModelSpec, engine| {
            read_bytes(&KvRequest { context: 8192, batch: 2, ..request(spec, engine, &o, 1) }, 0..32).0
        };
        assert_eq!(read(&s, Engine::Vllm), 2 * 32 * 1024 * per_token_layer);
        assert_eq!(read(&s, Engine::LlamaCpp), 2 * 32 * 8192 * per_token_layer);
        assert_eq!(read(&s, Engine::Mlx), 2 * 32 * 8192 * per_token_layer);
        assert_eq!(read(&g, Engine::Mlx), 2 * 32 * 1024 * per_token_layer);
    }

    /// vLLM's groups for attention of several kinds: Gemma 3 27B (52 sliding, 10 full layers)
    /// makes 7 groups of 10, so a pool of 1,000 blocks reports ⌊1,000 / 7⌋·16 tokens, and a
    /// 131,072-token request holds 8,192 full blocks and 6·(⌈(1023 + 8192) / 16⌉ + 1) sliding
    /// ones; its batch KV counts the 8 padding layers. gpt-oss-20b: 2 groups of 12, no padding.
    #[test]
    fn vllm_groups_layers_by_kind() {
        let config = include_str!("../../data/models/gemma-3-27b.json");
        let gemma = parse_config(config, "g", "g").unwrap().spec;
        let o = EngineOptions::default();
        let req = KvRequest { context: 131_072, ..request(&gemma, Engine::Vllm, &o, 1) };
        let groups = vllm_groups(&req);
        assert_eq!(groups.size, 10);
        assert_eq!(groups.kinds, [(LayerAttention::Sliding { window: 1024 }, 6), (LayerAttention::Full, 1)]);
        let request_blocks = 8192 + 6 * ((1023u64 + 8192).div_ceil(16) + 1);
        assert_eq!(groups.request_blocks(&req), request_blocks);
        let page = 16 * attention_bytes_per_token_layer(&req);
        let (tokens, concurrency) = vllm_pool_capacity(&req, Bytes(1000 * 10 * page));
        assert_eq!((tokens, concurrency), (1000 / 7 * 16, 1000.0 / request_blocks as f64));
        assert_eq!(kv_bytes(&req, 0..62).0, request_blocks * 10 * page);
        let config = include_str!("../../data/models/gpt-oss-20b.json");
        let oss = parse_config(config, "o", "o").unwrap().spec;
        let groups = vllm_groups(&request(&oss, Engine::Vllm, &o, 1));
        assert_eq!((groups.size, groups.kinds.len()), (12, 2));
        // A model of one kind is one group of every layer: the plain pool.
        let dense = spec("");
        assert_eq!(vllm_groups(&request(&dense, Engine::Vllm, &o, 1)).kinds, [(LayerAttention::Full, 1)]);
        // With the hybrid manager off, Gemma's sliding layers cache the whole context: one group
        // of all 62 layers, 8,192 blocks a request; a model of one kind keeps its window.
        let off = EngineOptions { hybrid_kv_cache_manager: false, ..o };
        let req = KvRequest { context: 131_072, ..request(&gemma, Engine::Vllm, &off, 1) };
        assert_eq!(vllm_groups(&req).kinds, [(LayerAttention::Full, 1)]);
        assert_eq!(kv_bytes(&req, 0..62).0, 62 * 8192 * page);
        let mistral = spec(r#", "model_type": "mistral", "sliding_window": 1024"#);
        let req = KvRequest { context: 8192, ..request(&mistral, Engine::Vllm, &off, 1) };
        assert_eq!(vllm_layer_blocks(&req, mistral.layer_attention[0]), 513);
    }
}
