//! The work of one prefill and one decode step: FLOPs and bytes, before any hardware.

use super::super::kv::{self, KvRequest};
use super::super::mlx;
use super::super::{Engine, EngineOptions, InferenceRequest};
use crate::model::spec::{LayerAttention, LinearKind, MlpKind, ModelSpec, NormKind};
use std::ops::Range;

/// Parameter counts the arithmetic needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Params {
    /// Every parameter (all experts).
    pub total: u64,
    /// Parameters one token passes through (routed experts counted `experts_per_token` times),
    /// embeddings included.
    pub active: u64,
}

/// Parameters of the matmuls one decoded token runs: the active parameters without the
/// embedding lookups (an untied token table is a gather, not a matmul; a tied one is the
/// lm_head; a learned position table, Gemma 4's per-layer token table and an embedding norm are
/// never matmuls).
///
/// Llama-2-7B: 6,738,415,616 − 32,000·4,096 = 6,607,343,616, so 2·that = 13.2 GFLOP per token.
/// GPT-2 (tied): 124,439,808 − 1,024·768 positions = 123,653,376.
pub fn matmul_params(spec: &ModelSpec, p: Params) -> u64 {
    let h = spec.hidden_size;
    let norm = match (spec.embedding_norm, spec.norm) {
        (false, _) => 0,
        (true, NormKind::LayerNorm) => 2 * h,
        (true, _) => h,
    };
    // (Gemma 4's per-layer token table is gathered a row at a time too.)
    let per_layer_table = spec.per_layer_input.map_or(0, |p| p.vocab * spec.num_layers * p.width);
    let lookups = spec.position_table * h + norm + per_layer_table;
    let token_table = if spec.tie_word_embeddings { 0 } else { spec.vocab_size * h };
    p.active.saturating_sub(lookups + token_table)
}

/// Causal attention FLOPs per (query, key) pair in one layer of kind `attention`:
/// `2·n_heads·(d_qk + d_v)` (QKᵀ and PV, a multiply-add each). Llama-2-7B: 2·32·(128+128) =
/// 16,384 = 4·h. A Gemma 4 full layer's heads are `global_head_dim` wide (31B: 2·32·1024).
pub fn attention_flops_per_pair(spec: &ModelSpec, attention: LayerAttention) -> u64 {
    let (d_qk, d_v) = match spec.mla {
        Some(m) => (m.qk_nope_head_dim + m.qk_rope_head_dim, m.v_head_dim),
        None => {
            let head_dim = spec.kv_shape(attention).1;
            (head_dim, head_dim)
        }
    };
    2 * spec.num_heads * (d_qk + d_v)
}

/// Attention FLOPs of one sequence's decode step over the cached keys of `layers` at `context`
/// (`cached_keys`, each layer's at its own per-pair cost).
pub fn cached_attention_flops(spec: &ModelSpec, layers: Range<u64>, context: u64) -> f64 {
    layers
        .map(|l| {
            let a = spec.layer_attention[l as usize];
            crate::model::tensors::cached_tokens(a, context) as f64 * attention_flops_per_pair(spec, a) as f64
        })
        .sum()
}

/// (query, key) pairs a causal prefill of `t` tokens computes in a layer: `t²/2`, or with a
/// window `w < t`: `w²/2 + (t − w)·w`, or in chunks of `c`: `c²/2` per whole chunk and `r²/2`
/// for the `r` tokens left; none in a linear-attention layer or a block without attention.
pub fn causal_pairs(attention: LayerAttention, t: u64) -> f64 {
    let tokens = t;
    let t = t as f64;
    match attention {
        LayerAttention::Sliding { window } if (window as f64) < t => {
            let w = window as f64;
            w * w / 2.0 + (t - w) * w
        }
        LayerAttention::Chunked { chunk } if chunk > 0 => {
            let (whole, rest) = ((tokens / chunk) as f64, (tokens % chunk) as f64);
            whole * (chunk as f64).powi(2) / 2.0 + rest * rest / 2.0
        }
        LayerAttention::Linear | LayerAttention::Absent => 0.0,
        _ => t * t / 2.0,
    }
}

/// Gated DeltaNet FLOPs per token in one layer, beyond its projections: per value head the
/// state is read against the key (`S·k`), updated by a decayed rank-one write
/// (`S ← α·S + β·(v − S·k)·kᵀ`) and read against the query (`S·q`), three `d_k × d_v`
/// multiply-adds, `6·n_v·d_k·d_v`; plus the depthwise convolution, `2·conv_dim·kernel`. The
/// chunked prefill kernels (flash-linear-attention) reorder, not reduce, this work.
/// Qwen3-Next-80B-A3B: 6·32·128·128 + 2·8192·4 = 3,211,264 per token and layer.
/// Mamba-2 decays the state by one scalar per head, adds the rank-one `dt·x·Bᵀ` and reads it
/// against `C`: a multiply, a multiply-add and a multiply-add per state value, `5·heads·head_dim·d_state`.
/// Nemotron-Nano-9B-v2: 5·128·80·128 + 2·12,288·4 = 6,651,904. Mamba-1 keeps a state per
/// channel: 8 operations per state value.
pub fn linear_attention_flops_per_token(spec: &ModelSpec) -> u64 {
    spec.linear_attention.map_or(0, |la| {
        let per_state_value = match la.kind {
            LinearKind::GatedDeltaNet => 6,
            LinearKind::Mamba2 => 5,
            // exp(dt·A), dt·B·x, the decayed update and the read against C, per channel and state.
            LinearKind::Mamba1 => 8,
        };
        per_state_value * la.state_values() + 2 * la.conv_dim() * la.conv_kernel
    })
}

/// Token-mixing FLOPs of a causal pass of `t` tokens through every layer (one sequence): softmax
/// attention's pairs, linear attention's per-token state work.
pub fn mixing_flops(spec: &ModelSpec, t: u64) -> f64 {
    let per_token = linear_attention_flops_per_token(spec) as f64;
    spec.layer_attention
        .iter()
        .map(|&a| match a {
            LayerAttention::Linear => t as f64 * per_token,
            a => causal_pairs(a, t) * attention_flops_per_pair(spec, a) as f64,
        })
        .sum()
}

/// Prefill FLOPs for `batch` prompts of `t` tokens: `2·B·t·(P_mm − V·h) + 2·B·V·h` (lm_head on the
/// last position only, as `generate` does) plus causal attention `Σ_layers pairs·2·n_h·(d_qk+d_v)`.
///
/// Llama-2-7B, 4,064 tokens: 2·4,064·6,476,271,616 = 5.264e13 + lm_head 2.6e8 + attention
/// 32·4,064²/2·16,384 = 4.33e12, so 5.70e13 FLOPs; at 0.50 of 989 TFLOPS that is 115 ms (H200
/// measured 122.6 ms, infer.json).
pub fn prefill_flops(spec: &ModelSpec, p: Params, t: u64, batch: u64, options: &EngineOptions) -> f64 {
    let lm = (spec.vocab_size * spec.hidden_size) as f64;
    let mm = matmul_params(spec, p) as f64;
    let (b, tf) = (batch as f64, t as f64);
    let linear = if options.logits_all_positions { 2.0 * b * tf * mm } else { 2.0 * b * (tf * (mm - lm) + lm) };
    linear + b * mixing_flops(spec, t)
}

/// Bytes mlx-lm's unfused prefill attention moves through its score matrices: every prompt chunk
/// that attends unfused (all of them when MLX's fused kernel lacks the head dims; with a
/// quantized cache those after the conversion) writes `heads × queries × keys` 16-bit scores with
/// Q·Kᵀ, reads and writes them in the causal `where` and in softmax, and reads them in P·V: six
/// passes of 2 B. Qwen3-4B (36 layers of 32 heads) over a 32,768-token prompt with mlx-4bit: the
/// chunks from 6,144 on (`mlx::PromptSchedule`), Σ queries·end = 2,048·(12·6,144 +
/// 2,048·12·13/2) plus 2,047·32,767 and 32,768 = 5.45e8 pairs per head, so 36·32·5.45e8·12 B =
/// 7.5 TB beside the fused kernels' work.
pub fn mlx_unfused_score_bytes(req: &InferenceRequest) -> f64 {
    let spec = req.spec;
    if req.engine != Engine::Mlx {
        return 0.0;
    }
    let from = match (mlx::fuses_prefill_attention(spec), req.mlx_quantized_from()) {
        (false, _) => 0,
        (true, Some(from)) => from,
        (true, None) => return 0.0,
    };
    let schedule = req.mlx_schedule();
    let pairs: f64 = spec
        .layer_attention
        .iter()
        .filter(|a| a.attends())
        .map(|&a| schedule.key_pairs_from(from, kv::mlx_window(spec.family, a)))
        .sum();
    pairs * (spec.num_heads * req.batch) as f64 * 6.0 * 2.0
}

/// Parameters of the routed experts one token passes through, all MoE layers together:
/// `experts_per_token` experts of two or three `hidden × expert_intermediate` matrices each.
/// gpt-oss-20b: 24 layers · 4 · 3 · 2,880 · 2,880 = 2,388,787,200.
pub fn routed_params_per_token(spec: &ModelSpec) -> u64 {
    let Some(m) = spec.moe else { return 0 };
    let matrices = if spec.mlp == MlpKind::Gated { 3 } else { 2 };
    let moe_layers = (0..spec.num_layers).filter(|&l| spec.is_moe_layer(l)).count() as u64;
    moe_layers * m.experts_per_token * matrices * spec.hidden_size * m.expert_intermediate_size
}

/// Keys one sequence's decode step attends over in `layers`: each attention layer's cached tokens
/// at `context` (a sliding-window layer's at most its window; linear-attention layers none).
pub fn cached_keys(spec: &ModelSpec, layers: Range<u64>, context: u64) -> u64 {
    layers.map(|l| crate::model::tensors::cached_tokens(spec.layer_attention[l as usize], context)).sum()
}

/// Decode FLOPs of one step: `2·B·P_mm` plus attention over every cached key and the
/// linear-attention layers' state work.
pub fn decode_flops(spec: &ModelSpec, p: Params, context: u64, batch: u64) -> (f64, f64) {
    let linear = 2.0 * batch as f64 * matmul_params(spec, p) as f64;
    let attention = cached_attention_flops(spec, 0..spec.num_layers, context);
    let states = spec.linear_layers() * linear_attention_flops_per_token(spec);
    (linear, batch as f64 * (attention + states as f64))
}

/// Weight bytes one decode step reads, all GPUs together: every layer weight except the
/// routed experts, the experts the batch touches, and the lm_head (the token table when tied;
/// of a position table a step gathers one row, too little to count). A batch of B touches
/// `E·(1 − (1 − k/E)^B)` of E experts per layer in expectation (uniform routing).
///
/// Mixtral-8x7B at batch 1 reads 2 of 8 experts: 1 − 6/8 = 0.25 of the expert bytes.
pub fn decode_weight_bytes(req: &InferenceRequest, batch: u64) -> f64 {
    layer_weight_bytes(req, batch) + lm_head_bytes(req)
}

/// Decoder-layer bytes a forward pass of `tokens` tokens reads: every dense weight, and the
/// routed experts at least one token picks (all of them, for a prompt-sized pass).
pub fn layer_weight_bytes(req: &InferenceRequest, tokens: u64) -> f64 {
    let (dense, experts) = layer_reads(req, 0..req.spec.num_layers, tokens);
    dense + experts
}

/// Of the decoder layers in `layers`, the bytes a forward pass of `tokens` tokens reads: (dense
/// weights, routed experts at least one token picks). A pass of B tokens touches
/// `E·(1 − (1 − k/E)^B)` of a layer's E experts in expectation (uniform routing).
pub fn layer_reads(req: &InferenceRequest, layers: Range<u64>, tokens: u64) -> (f64, f64) {
    let w = req.weights;
    let (all, experts) = (w.layers_in(layers.clone()).0, w.experts_in(layers).0);
    (all.saturating_sub(experts) as f64, experts as f64 * touched_expert_fraction(req.spec, tokens))
}

/// The share of a MoE layer's E experts that at least one of `tokens` tokens picks, each token
/// `k` of them: `1 − (1 − k/E)^tokens` in expectation (uniform routing); 1 for a dense model.
/// Qwen3-30B-A3B (k = 8 of 128), a 16-token pass: 1 − (15/16)^16 = 0.644.
pub fn touched_expert_fraction(spec: &ModelSpec, tokens: u64) -> f64 {
    spec.moe.map_or(1.0, |m| {
        let miss = 1.0 - m.experts_per_token as f64 / m.num_experts.max(1) as f64;
        1.0 - miss.powf(tokens as f64)
    })
}

/// Expected tiles of `tile` tokens that one expert's share of a `tokens`-token pass fills:
/// `E[⌈X / tile⌉]` with `X ~ Binomial(tokens, k/E)` (uniform routing), summed exactly over the
/// binomial's probabilities (computed in logs, so large passes do not underflow) until the upper
/// tail is negligible. A share spread over many tiles (σ above four tiles) fills
/// `μ/tile + (tile − 1)/(2·tile)`: the last tile's fill is then uniform over its token counts. A kernel that runs whole tiles computes
/// `tile · E[⌈X/tile⌉]` tokens' work per expert. gpt-oss-120b (k = 4 of 128) in a 512-token
/// pass: X has mean 16, so one 32-token tile almost always, 1.00; gpt-oss-20b (4 of 32): mean
/// 64, 2.47 tiles. Zero for a dense model or a tile under one token.
pub fn expected_expert_tiles(spec: &ModelSpec, tokens: u64, tile: f64) -> f64 {
    let Some(m) = spec.moe.filter(|_| tile >= 1.0) else { return 0.0 };
    let q = m.experts_per_token as f64 / m.num_experts.max(1) as f64;
    let tiles = |x: u64| (x as f64 / tile).ceil();
    if q >= 1.0 {
        return tiles(tokens);
    }
    let n = tokens as f64;
    let (mean, sd) = (n * q, (n * q * (1.0 - q)).sqrt());
    if sd > 4.0 * tile {
        return mean / tile + (tile - 1.0) / (2.0 * tile);
    }
    let odds = (q / (1.0 - q)).ln();
    // ln P(X = 0), then P(X = x) = P(X = x − 1) · (n − x + 1)/x · q/(1 − q).
    let mut ln_p = n * (-q).ln_1p();
    let mut expected = 0.0;
    for x in 1..=tokens {
        ln_p += ((n - x as f64 + 1.0) / x as f64).ln() + odds;
        expected += ln_p.exp() * tiles(x);
        if x as f64 > mean && ln_p < -50.0 {
            break;
        }
    }
    expected
}

/// The output layer's bytes: lm_head and the final norm (the token table when tied, unless the
/// engine built a separate lm_head, which `output` then holds).
pub fn lm_head_bytes(req: &InferenceRequest) -> f64 {
    let w = req.weights;
    let tied = req.spec.tie_word_embeddings && !req.engine.unties_embeddings();
    (w.output.0 + if tied { w.token_table.0 } else { 0 }) as f64
}

/// KV bytes one decode step moves for the whole batch: each layer's attended tokens in the
/// cache format ([`kv::read_bytes`]), and each linear-attention layer's state, read and written
/// back. Llama-2-7B bf16 at 4,096 tokens: 2 GiB per sequence; Qwen3-Next-80B-A3B (bf16
/// states): 2 · 36 · 1,097,728 B = 75.4 MiB per sequence besides its attention layers' KV.
pub fn decode_kv_bytes(req: &InferenceRequest, context: u64, batch: u64) -> f64 {
    decode_kv_bytes_in(req, 0..req.spec.num_layers, context, batch)
}

/// [`decode_kv_bytes`] of the decoder layers in `layers` only.
pub fn decode_kv_bytes_in(req: &InferenceRequest, layers: Range<u64>, context: u64, batch: u64) -> f64 {
    let kv = KvRequest {
        spec: req.spec,
        format: req.cache_format(),
        context,
        batch,
        engine: req.engine,
        options: &req.options,
        tp: 1,
        max_batched_tokens: 0,
    };
    let write_back = req.spec.recurrent_layers_in(layers.clone()) * batch * kv::state_bytes_per_layer(&kv);
    (kv::read_bytes(&kv, layers.clone()).0 + write_back + mlx_quantized_decode_scores(req, layers, context, batch))
        as f64
}

/// mlx-lm decodes over a quantized cache unfused too (`quantized_scaled_dot_product_attention`):
/// quantized_matmul writes the step's 16-bit scores (heads × keys), softmax reads and writes them
/// and the second quantized_matmul reads them, four passes of 2 B. Qwen3-4B at 32,768 tokens:
/// 36 · 32 · 32,768 · 8 B = 302 MB a token, beside 1.36 GB of 4-bit cache.
fn mlx_quantized_decode_scores(req: &InferenceRequest, layers: Range<u64>, context: u64, batch: u64) -> u64 {
    if req.engine != Engine::Mlx || req.cache_format().mlx_bits().is_none() {
        return 0;
    }
    let spec = req.spec;
    cached_keys(spec, layers, context) * batch * spec.num_heads * 4 * 2
}

/// Linear layers per attention decoder layer (separate kernels when their dequantization is not
/// fused): q, k, v, o (one qkv when fused) and the MLP's two or three (gate+up fused counts one).
pub fn linears_per_layer(spec: &ModelSpec) -> u64 {
    attention_linears(spec) + mlp_linears(spec)
}

fn attention_linears(spec: &ModelSpec) -> u64 {
    if spec.fused_qkv {
        2
    } else {
        4
    }
}

fn mlp_linears(spec: &ModelSpec) -> u64 {
    match spec.mlp {
        MlpKind::Gated if spec.fused_gate_up => 2,
        MlpKind::Gated => 3,
        MlpKind::Plain => 2,
    }
}

/// Quantized linear layers one decode step runs, each a separate dequantizing kernel. A Gated
/// DeltaNet layer has its input projections (two fused, or Qwen3.5's four) and out_proj instead
/// of q, k, v, o; a Mamba-2 layer in_proj and out_proj; a Nemotron-H block only its own mixer's.
/// LitGPT fuses q, k and v into one `attn` linear in every model, keeps the MLP's linears
/// separate, and quantizes lm_head too: Llama-2-7B 32 × (2 + 3) + 1 = 161, against
/// transformers' 32 × 7 = 224.
pub fn quantized_linears_per_token(spec: &ModelSpec, engine: Engine) -> u64 {
    if engine == Engine::Litgpt {
        let mlp = if spec.mlp == MlpKind::Gated { 3 } else { 2 };
        return spec.num_layers * (2 + mlp) + 1;
    }
    let linear = spec.linear_attention.map_or(0, |la| match la.kind {
        LinearKind::Mamba2 => 2,
        // in_proj, x_proj, dt_proj and out_proj.
        LinearKind::Mamba1 => 4,
        LinearKind::GatedDeltaNet if la.split_projections => 5,
        LinearKind::GatedDeltaNet => 3,
    });
    let mlp_layers = spec.mlp_layers();
    // Gemma 4: each layer's per-layer-input gate and projection; no v_proj in full layers whose
    // values are their keys.
    let per_layer_input = spec.per_layer_input.map_or(0, |_| 2 * spec.num_layers);
    let full = spec.layer_attention.iter().filter(|a| **a == LayerAttention::Full).count() as u64;
    let values_from_keys = spec.global_attention.filter(|g| g.k_eq_v).map_or(0, |_| full);
    mlp_layers * mlp_linears(spec)
        + spec.attention_layers() * attention_linears(spec)
        + spec.linear_layers() * linear
        + per_layer_input
        - values_from_keys
}

#[cfg(test)]
mod tests {
    use super::*;
    pub(crate) use crate::model::testing::llama_2_7b;

    const P7B: Params = Params { total: 6_738_415_616, active: 6_738_415_616 };

    /// Nemotron-Nano-9B-v2: 5·128·80·128 + 2·12,288·4 state and conv flops per Mamba-2 layer and
    /// token; quantized linears: 27 Mamba-2 layers × (in_proj, out_proj), 4 attention layers ×
    /// (q, k, v, o), 25 MLP blocks × (up, down) = 120; no attention pairs outside its 4 layers.
    #[test]
    fn nemotron_h_recurrent_flops_and_linears() {
        let config = include_str!("../../../data/models/nemotron-nano-9b-v2.json");
        let s = crate::model::config::parse_config(config, "n", "n.json").unwrap().spec;
        assert_eq!(linear_attention_flops_per_token(&s), 6_651_904);
        assert_eq!(quantized_linears_per_token(&s, Engine::Hf), 27 * 2 + 4 * 4 + 25 * 2);
        let pairs = mixing_flops(&s, 100) - 27.0 * 100.0 * 6_651_904.0;
        assert_eq!(
            pairs,
            4.0 * causal_pairs(LayerAttention::Full, 100) * attention_flops_per_pair(&s, LayerAttention::Full) as f64
        );
        assert_eq!(s.sublayers(), 56);
    }

    /// The doc's gpt-oss-20b figure; DeepSeek-V2-Lite's first layer is dense, so 26 of its 27
    /// layers route 6 of 64 experts of 3 · 2,048 · 1,408; a dense model routes none.
    #[test]
    fn routed_params_count_moe_layers_only() {
        let parse = |text: &str| crate::model::config::parse_config(text, "m", "m.json").unwrap().spec;
        let gpt_oss = parse(include_str!("../../../data/models/gpt-oss-20b.json"));
        assert_eq!(routed_params_per_token(&gpt_oss), 2_388_787_200);
        let lite = parse(include_str!("../../../data/models/deepseek-v2-lite.json"));
        assert_eq!(routed_params_per_token(&lite), 26 * 6 * 3 * 2048 * 1408);
        assert_eq!(routed_params_per_token(&llama_2_7b()), 0);
    }

    /// The doc's Qwen3-30B-A3B figure; a pass of one token touches k of E; a dense model is
    /// always touched whole.
    #[test]
    fn touched_experts_follow_uniform_routing() {
        let config = include_str!("../../../data/models/qwen3-30b-a3b.json");
        let qwen = crate::model::config::parse_config(config, "q", "q.json").unwrap().spec;
        assert!((touched_expert_fraction(&qwen, 16) - (1.0 - (15.0f64 / 16.0).powi(16))).abs() < 1e-12);
        assert!((touched_expert_fraction(&qwen, 16) - 0.644).abs() < 0.001);
        assert_eq!(touched_expert_fraction(&qwen, 1), 8.0 / 128.0);
        assert_eq!(touched_expert_fraction(&llama_2_7b(), 1), 1.0);
    }

    /// The doc's gpt-oss figures at 512 tokens: 120b's experts get 16 tokens each (one tile),
    /// 20b's 64 (2.47 tiles on average, not 2); one-token tiles count the mean share exactly;
    /// a large pass neither underflows nor drifts; a dense model routes nothing.
    #[test]
    fn expert_tiles_are_whole_tiles_of_binomial_shares() {
        let parse = |text: &str| crate::model::config::parse_config(text, "m", "m.json").unwrap().spec;
        let big = parse(include_str!("../../../data/models/gpt-oss-120b.json"));
        let small = parse(include_str!("../../../data/models/gpt-oss-20b.json"));
        assert!((expected_expert_tiles(&big, 512, 32.0) - 1.0).abs() < 0.001);
        assert!((expected_expert_tiles(&small, 512, 32.0) - 2.47).abs() < 0.005);
        assert!((expected_expert_tiles(&small, 512, 1.0) - 64.0).abs() < 1e-6);
        let large = expected_expert_tiles(&small, 16_384, 32.0);
        assert!((64.0..=65.0).contains(&large), "{large}");
        // Past four tiles of spread, the uniform-fill form: 4,194,304 tokens, 524,288 an expert.
        assert_eq!(expected_expert_tiles(&small, 1 << 22, 32.0), 16_384.0 + 31.0 / 64.0);
        assert_eq!(expected_expert_tiles(&small, 512, 0.0), 0.0);
        assert_eq!(expected_expert_tiles(&llama_2_7b(), 512, 32.0), 0.0);
    }

    proptest::proptest! {
        /// Whole tiles cover the mean share and at most one tile more (`X/T ≤ ⌈X/T⌉ < X/T + 1`),
        /// and at least every touched expert's one tile (`⌈X/T⌉ ≥ 1` when `X > 0`), at any pass
        /// length and tile width.
        #[test]
        fn expert_tiles_lie_between_the_mean_share_and_one_more(
            tokens in 1u64..6_000, tile in proptest::sample::select(vec![1.0, 8.0, 32.0, 64.0, 128.0]),
        ) {
            let config = include_str!("../../../data/models/qwen3-30b-a3b.json");
            let qwen = crate::model::config::parse_config(config, "q", "q.json").unwrap().spec;
            let tiles = expected_expert_tiles(&qwen, tokens, tile);
            let mean = tokens as f64 * 8.0 / 128.0 / tile;
            proptest::prop_assert!(tiles >= mean - 1e-9 && tiles <= mean + 1.0 + 1e-9, "{tiles} vs {mean}");
            proptest::prop_assert!(tiles >= touched_expert_fraction(&qwen, tokens) - 1e-9);
        }
    }

    #[test]
    fn llama2_7b_matmul_params_and_pair_flops() {
        let s = llama_2_7b();
        assert_eq!(matmul_params(&s, P7B), 6_607_343_616);
        assert_eq!(attention_flops_per_pair(&s, LayerAttention::Full), 4 * 4096);
        assert_eq!(linears_per_layer(&s), 7);
        assert_eq!(quantized_linears_per_token(&s, Engine::Hf), 224);
        assert_eq!(quantized_linears_per_token(&s, Engine::Litgpt), 161);
    }

    /// GPT-2 drops its 1,024 learned positions; BLOOM the LayerNorm after its embedding (both
    /// tied, so the token table stays: it is the lm_head).
    #[test]
    fn embedding_lookups_are_not_matmuls() {
        let parse = |text: &str| crate::model::config::parse_config(text, "m", "m").unwrap().spec;
        let gpt2 = &parse(include_str!("../../../data/models/gpt2.json"));
        let p = Params { total: 124_439_808, active: 124_439_808 };
        assert_eq!(matmul_params(gpt2, p), 123_653_376);
        let bloom = &parse(include_str!("../../../data/models/bloom-7b1.json"));
        let p = Params { total: 7_069_016_064, active: 7_069_016_064 };
        assert_eq!(matmul_params(bloom, p), 7_069_016_064 - 2 * 4096);
    }

    /// The doc's arithmetic: 5.70e13 FLOPs for a 4,064-token prefill.
    #[test]
    fn llama2_7b_prefill_flops() {
        let s = llama_2_7b();
        let f = prefill_flops(&s, P7B, 4064, 1, &EngineOptions::default());
        let expected = 2.0 * 4064.0 * 6_476_271_616.0 + 2.0 * 131_072_000.0 + 32.0 * 4064.0 * 4064.0 / 2.0 * 16384.0;
        assert!((f - expected).abs() / expected < 1e-12);
        assert!((f / 5.70e13 - 1.0).abs() < 0.01, "{f}");
    }

    #[test]
    fn windows_cap_attention_pairs() {
        assert_eq!(causal_pairs(LayerAttention::Full, 10), 50.0);
        assert_eq!(causal_pairs(LayerAttention::Sliding { window: 4 }, 10), 8.0 + 24.0);
        assert_eq!(causal_pairs(LayerAttention::Sliding { window: 40 }, 10), 50.0);
        assert_eq!(causal_pairs(LayerAttention::Chunked { chunk: 4 }, 10), 2.0 * 8.0 + 2.0);
    }
}
