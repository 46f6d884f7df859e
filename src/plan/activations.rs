//! Transient memory of an inference forward pass: the largest set of tensors alive at once.
//!
//! Layers run one after another and free their intermediates, so the peak is the largest of
//! three moments within one layer or at the output, not a sum over layers:
//!
//! - attention: residual + normed input, Q/K/V (plus RoPE copies in transformers), the output,
//!   and, without flash attention, the `heads × q_len × kv_len` score matrix;
//! - MLP: residual + normed input and the intermediate tensors (gated: `gate`, `up` and their
//!   product, 3·T·i values; plain: 2·T·i);
//! - output: the logits, `T_out × vocab`, plus the engine's fp32 copies.
//!
//! Worked example, Llama-2-7B, transformers `generate` over a 4096-token prompt in bf16:
//! the stream is residual + normed input + the held `inputs_embeds` (3·4096·4096) plus the
//! rotary tables (2·4096·128); the MLP moment adds gate·up products 3·4096·11008, so
//! (50,331,648 + 1,048,576 + 135,266,304) · 2 B = 373,293,056 B (356 MiB). The attention moment
//! with SDPA is smaller (q, k, v, the RoPE copies and the output: 7·4096·4096 values on top of
//! the stream); logits of the last token only are 32000·(2+4) B. Measured on an H200: 390 MiB
//! over weights and KV, of which 32 MiB is the cuBLAS workspace.

use super::basis::BasisLog;
use super::engine::{Engine, EngineOptions};
use super::kv;
use super::mlx::{self, Chunk, PromptSchedule};
use crate::model::spec::{Family, LayerAttention, LayerMlp, LinearKind, MlpKind, ModelSpec};
use crate::units::Bytes;

/// The slice of a forward pass one GPU runs.
#[derive(Clone, Copy, Debug)]
pub struct ActivationRequest<'a> {
    pub spec: &'a ModelSpec,
    pub engine: Engine,
    pub options: &'a EngineOptions,
    /// Tokens per sequence (prompt + generated).
    pub context: u64,
    pub batch: u64,
    /// Tensor-parallel degree: heads and intermediate features are divided among GPUs.
    pub tp: u64,
    /// This GPU runs decoder layers.
    pub has_layers: bool,
    /// This GPU computes the logits.
    pub has_output: bool,
    /// vLLM profile-run tokens and sampler warm-up sequences.
    pub max_batched_tokens: u64,
    pub max_num_seqs: u64,
    /// mlx-lm: prompt chunks from this many tokens on attend over a quantized cache
    /// (`--kv-bits`), through the unfused `quantized_scaled_dot_product_attention`.
    pub mlx_quantized_from: Option<u64>,
    /// llama.cpp's CUDA flash attention over a quantized cache: the f16 copy of one layer's keys
    /// and values its prompt kernels read, the largest layer's (`kv::largest_layer_f16_bytes`;
    /// 0: none).
    pub f16_cache_copy: Bytes,
}

/// The peak and where it happens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ActivationPeak {
    pub bytes: Bytes,
    pub moment: &'static str,
}

/// Bytes per sequence and vocabulary entry live at the peak of vLLM's sampler warm-up
/// (`profile_run` → `_dummy_sampler_run` over `max_num_seqs` rows; vLLM 0.10/0.11 source,
/// `sampler.py` and the PyTorch-native `topk_topp_sampler.py`): the model-dtype logits (2) stay
/// referenced beside their fp32 copy (4) while `logits.sort()` runs, which over 1,024 or more
/// rows takes PyTorch's segmented sort: sorted values fp32 (4), indices int64 (8), its int64
/// iota of source positions (8) and CUB's alternate key and value buffers (4 + 8). Later moments
/// (top-k/top-p masks and softmax, 28; random sampling, 18) are lower. Checked against vLLM's
/// own breakdown: Qwen3-Next-80B-A3B, 1,024 × 151,936 × 38 B = 5.51 GiB plus the dummy run's
/// hidden states, against "5.58 GiB for peak activation" (0.10.2); Llama-3.1-8B 4.77 (with its
/// 16,384 hidden states) against 4.76 GiB (llm-d, 0.11).
const VLLM_SAMPLER_BYTES_PER_ENTRY: u64 = 2 + 4 + 4 + 8 + 8 + 12;

/// Tokens one forward pass processes (all sequences) and the tokens per sequence in that pass.
/// vLLM's profile run takes its whole token budget whatever the context; the others a prompt
/// pass (`EngineOptions::prompt_pass_tokens`): a llama.cpp ubatch counts as one sequence's.
fn pass_tokens(req: &ActivationRequest) -> (u64, u64) {
    let t = req.options.prompt_pass_tokens(req.engine, req.context, req.batch, req.max_batched_tokens);
    match req.engine {
        Engine::Vllm => (req.max_batched_tokens, req.max_batched_tokens.min(req.context)),
        Engine::LlamaCpp => (t, t),
        Engine::Exllama
        | Engine::Hf
        | Engine::Unsloth
        | Engine::Bare
        | Engine::Headroom
        | Engine::Litgpt
        | Engine::Mlx => (t, t / req.batch.max(1)),
    }
}

/// Bytes per activation element: llama.cpp computes in f32, the others in the 16-bit dtype.
fn act_bytes(engine: Engine) -> u64 {
    if engine == Engine::LlamaCpp {
        4
    } else {
        2
    }
}

/// The prefill peak on one GPU, with the moment it happens in.
pub fn prefill_peak(req: &ActivationRequest, basis: &mut BasisLog) -> ActivationPeak {
    let (t, t_seq) = pass_tokens(req);
    let mut candidates: Vec<(u64, &'static str)> = Vec::with_capacity(3);
    if req.has_layers {
        let inputs = layer_inputs(req, t);
        if req.spec.attention_layers() > 0 {
            candidates.push((inputs + attention_moment(req, t, t_seq), "attention"));
        }
        if req.spec.linear_layers() > 0 {
            let moment = if req.engine == Engine::Vllm {
                vllm_profile_linear_moment(req, t)
            } else {
                linear_attention_moment(req, t)
            };
            candidates.push((inputs + moment, "linear attention"));
        }
        candidates.push((inputs + mlp_moment(req, t), "mlp"));
    }
    if req.has_output {
        candidates.push((output_moment(req, t), "logits"));
    }
    let (bytes, moment) = candidates.into_iter().max_by_key(|c| c.0).unwrap_or((0, "none"));
    basis.add(
        "prefill tokens per forward pass",
        t,
        match req.engine {
            Engine::Vllm => "vLLM profile run: max_num_batched_tokens (vllm serve's default unless given)".into(),
            Engine::LlamaCpp => "llama.cpp: n_ubatch".into(),
            Engine::Exllama => "ExLlama: prompt chunks of max_input_len 2048".into(),
            Engine::Mlx => format!(
                "mlx-lm: prefill_step_size {} per prompt, at most 8 prompts at once (BatchGenerator)",
                req.options.prefill_step_size
            ),
            _ => "whole prompt × batch in one forward".to_string(),
        },
    );
    basis.add("activation peak moment", moment, "largest live set: attention, linear attention / Mamba, MLP or logits");
    ActivationPeak { bytes: Bytes(bytes), moment }
}

/// Values every layer moment carries: the residual stream and the normed input (2·T·h); in
/// transformers also the embedding output that `Model.forward` keeps referenced as
/// `inputs_embeds` for the whole pass (T·h) and the rotary cos/sin tables (2·T·head_dim).
fn stream_values(req: &ActivationRequest, t: u64) -> u64 {
    let spec = req.spec;
    let mut values = 2 * t * spec.hidden_size;
    if req.engine == Engine::Hf {
        values += t * spec.hidden_size + 2 * t * spec.head_dim;
    }
    values
}

/// Graph inputs that every layer reads, live through all the layer moments. llama.cpp builds one
/// KQ mask of `n_kv × n_ubatch` (`build_attn_inp_kv`) for every layer: f32 for soft_max
/// (Llama-3.1-8B at 4 × 2,048 cells and ubatch 512: 16 MiB of a 560 MiB compute buffer), and with
/// flash attention its f16 cast for the kernel (2 B a cell and token), the f32 one then staying
/// with the host's inputs: Llama-3-8B's CUDA compute buffer grows by 1.00 MiB per 1,024 cells
/// from 16,384 to 131,072 (124.01 to 236.01 MiB, f16 cache, ubatch 512; llama.cpp master
/// 36b101543, Abai/llama.cpp PR-BODY-fattn-dequant-cap.md). Models with sliding-window layers
/// get a second mask over the window's cells, too small to count.
fn layer_inputs(req: &ActivationRequest, t: u64) -> u64 {
    if req.engine != Engine::LlamaCpp || req.spec.attention_layers() == 0 {
        return 0;
    }
    let mask_bytes = if materialises_scores(req) { 4 } else { 2 };
    llama_cpp_kv_cells(req) * t * mask_bytes
}

/// The KV cells llama.cpp's worst-case graph attends over: the whole cache, every slot's context
/// in one, padded to 256.
fn llama_cpp_kv_cells(req: &ActivationRequest) -> u64 {
    (req.context * req.batch).next_multiple_of(256)
}

/// Whether attention materialises the `heads × q_len × kv_len` score matrix.
fn materialises_scores(req: &ActivationRequest) -> bool {
    match req.engine {
        Engine::Exllama => true,
        // transformers' Falcon attention peaks like eager attention even with SDPA: measured
        // ~9.3 B per score element for Falcon-7B at 2,048 tokens on an H200 (transformers 5.17,
        // data/measurements/device/2026-11-27-h200/infer2.json).
        Engine::Hf if req.spec.family == Family::Falcon => true,
        // Our prefill kernel is flash-style: scores stay in registers.
        Engine::Headroom => false,
        // MLX fuses prefill attention (`sdpa_full_supported_head_dim` in
        // scaled_dot_product_attention.cpp) for equal query and value head dims of 64, 80 or 128
        // only; other models take the unfused path, one matmul writing every score. A quantized
        // cache always does (mlx-lm's `quantized_scaled_dot_product_attention`: quantized_matmul
        // for Q·Kᵀ, the causal mask by `where`, softmax, quantized_matmul by V).
        Engine::Mlx => req.mlx_quantized_from.is_some() || !mlx::fuses_prefill_attention(req.spec),
        _ => !req.options.flash_attention,
    }
}

/// The attention moment of the model's widest attention layer (a Gemma 4 full layer's heads of
/// `global_head_dim` over other layers' narrower ones).
fn attention_moment(req: &ActivationRequest, t: u64, t_seq: u64) -> u64 {
    let kinds = req.spec.attention_kinds().into_iter();
    kinds.map(|kind| layer_attention_moment(req, kind, t, t_seq)).max().unwrap_or(0)
}

fn layer_attention_moment(req: &ActivationRequest, kind: LayerAttention, t: u64, t_seq: u64) -> u64 {
    let spec = req.spec;
    let a = act_bytes(req.engine);
    let heads = (spec.num_heads / req.tp).max(1);
    let (kv_total, head_dim) = spec.kv_shape(kind);
    let kv_heads = (kv_total / req.tp).max(1);
    let q_w = spec.kind_qkv_widths(kind).0 / req.tp.min(spec.num_heads);
    let (k_w, v_w) = match spec.mla {
        Some(m) => (heads * (m.qk_nope_head_dim + m.qk_rope_head_dim), heads * m.v_head_dim),
        None => (kv_heads * head_dim, kv_heads * head_dim),
    };
    let mut values = stream_values(req, t) + t * (q_w + k_w + v_w) + t * q_w;
    if spec.attn_output_gate {
        // The gate half of q_proj's output, alive until it multiplies the attention output.
        values += t * q_w;
    }
    if matches!(req.engine, Engine::Hf | Engine::Litgpt) {
        // apply_rotary_pos_emb (transformers) and apply_rope (LitGPT) return new q and k tensors.
        values += t * (q_w + k_w);
    }
    if req.engine == Engine::Litgpt && heads > kv_heads {
        // LitGPT expands K and V to every query head before SDPA (`k.expand(...).reshape`).
        values += 2 * t * (heads - kv_heads) * head_dim;
    }
    if req.engine == Engine::Headroom {
        // The prefill kernel reads q head-major: a copy of q besides the head-major output.
        values += t * q_w;
    }
    // llama.cpp's CUDA flash attention converts a quantized layer's whole cache to f16 for its
    // prompt kernels (the FA op's extra allocation, one layer at a time).
    let mut bytes = values * a + req.f16_cache_copy.0;
    if materialises_scores(req) {
        let kv_len = match req.engine {
            Engine::LlamaCpp => llama_cpp_kv_cells(req),
            _ => req.context,
        };
        let seqs = if req.engine == Engine::LlamaCpp { 1 } else { req.batch };
        let scores = seqs * heads * t_seq * kv_len;
        bytes += match req.engine {
            // transformers eager_attention_forward: the scaled bf16 scores (2 B), softmax with
            // dtype=float32 first casts them to an fp32 copy (4 B) and writes an fp32 result
            // (4 B): 10 B per element at the peak (measured 9.9 B on an H200, Llama-2-7B at
            // 4,064 tokens); plus the bf16 4-D causal mask and, for GQA, repeat_kv's copies of
            // K and V for every query head.
            Engine::Hf => {
                let repeat = if heads > kv_heads { 2 * seqs * heads * kv_len * head_dim * a } else { 0 };
                scores * 10 + seqs * t_seq * kv_len * 2 + repeat
            }
            Engine::Mlx => mlx_held_scores(req, heads, t_seq),
            // ggml: f32 KQ; its soft_max reuses KQ's memory (ggml-alloc runs ops that can work
            // in place there once their input has no other consumer). Seven llama.cpp logs
            // without flash attention: 4 B per score, not 8 (e.g. Llama-3.1-8B Q4_K_M, 4 × 2,048
            // slots: 548 MiB planned against a 560 MiB compute buffer).
            Engine::LlamaCpp => scores * 4,
            // ExLlama: fp16 attention weights, softmax in place.
            _ => scores * 2,
        };
    }
    bytes
}

/// MLX's unfused attention: the 16-bit scores of the largest chunk that attends unfused, which
/// the mask's `where` and softmax overwrite (MLX donates an input buffer no other array holds).
/// Metal keeps an op's inputs until the command buffer that ran it completes (the completion
/// handler of metal::eval) while the CPU encodes ahead, so where consecutive layers attend the
/// next layer's scores are written with the previous layer's still held: the peak is the largest
/// sum of two adjacent attention layers' scores, each against the keys its cache keeps.
/// Qwen3-4B (36 attention layers) over a 4-bit cache, 8,192 to 32,768 tokens (unsloth-zoo PR
/// #1151): 1.85 to 1.95 score buffers above the ~1.1 GiB that every row of that table shows
/// beyond the plan. Qwen3.6-27B, three DeltaNet layers between attention layers, at 131,072
/// tokens: 2,048-token chunks peak 13.3 GB above 256-token ones (mlx-lm PR #1781), against
/// 1,792 × 131,072 × 24 × 2 B = 11.3 GB of scores, one buffer. Batches (BatchGenerator) are
/// sized at their pass against the whole context.
fn mlx_held_scores(req: &ActivationRequest, heads: u64, t_seq: u64) -> u64 {
    let spec = req.spec;
    let from = if mlx::fuses_prefill_attention(spec) { req.mlx_quantized_from.unwrap_or(0) } else { 0 };
    let chunk = if req.batch == 1 {
        PromptSchedule::new(req.context, req.options.prefill_step_size).largest_from(from)
    } else {
        Chunk { queries: t_seq, end: req.context }
    };
    let mut previous = 0;
    let mut peak = 0;
    for a in &spec.layer_attention {
        let scores = if a.attends() {
            req.batch * heads * chunk.queries * chunk.keys(kv::mlx_window(spec.family, *a)) * 2
        } else {
            0
        };
        if scores > 0 {
            peak = peak.max(previous + scores);
        }
        previous = scores;
    }
    peak
}

/// A recurrent layer's live set during prefill.
///
/// Gated DeltaNet (flash-linear-attention's chunked kernels, which vLLM and transformers' fast
/// path run): beside the stream, `in_proj_qkvz` and `in_proj_ba` outputs, the convolved q, k, v,
/// the kernel's fp32 within-chunk matrix (`t · n_v · 64`) and its per-chunk states
/// (`t/64 · n_v · d_k · d_v`, 16-bit), the core output and the gated norm's output.
/// Qwen3-Next-80B-A3B over 16,384 tokens at tensor parallel 2, per token: the stream 2·2,048,
/// projections 2·1,024 + 2·2,048 + 2·16, convolved 2·1,024 + 2,048 and outputs 2·2,048, 18,464
/// values in 16-bit, and 16·64 in fp32: 16,384 · 41,024 B, plus 256 chunk states of
/// 16·128·128·2 B: 806,354,944 B, below its MoE moment.
///
/// Mamba-2 (mamba_ssm's `mamba_chunk_scan_combined`): `in_proj`'s output, the convolved x, B
/// and C, the scan's fp32 chunk states (`t/chunk · heads · head_dim · d_state`), its fp32
/// within-chunk `C·Bᵀ` (`t · groups · chunk`) and per-head `dt` and cumulative decay, the output
/// and the gated norm's output.
fn linear_attention_moment(req: &ActivationRequest, t: u64) -> u64 {
    let Some(la) = req.spec.linear_attention else { return 0 };
    let a = act_bytes(req.engine);
    let (k, v, heads) = la.per_rank(req.tp);
    let stream = stream_values(req, t);
    match la.kind {
        LinearKind::GatedDeltaNet => {
            const CHUNK: u64 = 64;
            let projections = t * la.input_rows_per_rank(req.tp);
            let convolved = t * (2 * k + v);
            let outputs = 2 * t * v;
            let within_chunk = t * heads * CHUNK * 4;
            let chunk_states = t.div_ceil(CHUNK) * heads * la.key_head_dim * la.value_head_dim * a;
            (stream + projections + convolved + outputs) * a + within_chunk + chunk_states
        }
        LinearKind::Mamba2 => {
            let chunk = la.chunk_size;
            let projections = t * la.input_rows_per_rank(req.tp);
            let convolved = t * (2 * k + v);
            let outputs = 2 * t * v;
            let scan = t.div_ceil(chunk) * heads * la.key_head_dim * la.value_head_dim * 4
                + t * (k / la.key_head_dim) * chunk * 4
                + 2 * t * heads * 4;
            (stream + projections + convolved + outputs) * a + scan
        }
        // Mamba-1's selective scan (mamba_ssm's kernel): in_proj's x and z, the convolved x, dt
        // widened to every channel, each token's dt, B and C (`x_proj`), the output, and an fp32
        // state per channel for each 2,048-token chunk.
        LinearKind::Mamba1 => {
            let projections = t * la.input_rows_per_rank(req.tp);
            let convolved = t * v;
            let dt_b_c = t * (la.dt_rank + 2 * la.key_head_dim) + t * v;
            let outputs = 2 * t * v;
            let scan = t.div_ceil(2048) * heads * la.key_head_dim * 4;
            (stream + projections + convolved + dt_b_c + outputs) * a + scan
        }
    }
}

/// What vLLM's profile run holds in a recurrent layer: it runs without attention metadata, so
/// DeltaNet returns before any projection and Mamba (1 and 2) right after `in_proj`, whose output
/// is all it holds.
fn vllm_profile_linear_moment(req: &ActivationRequest, t: u64) -> u64 {
    match req.spec.linear_attention {
        Some(la) if matches!(la.kind, LinearKind::Mamba2 | LinearKind::Mamba1) => {
            (stream_values(req, t) + t * la.input_rows_per_rank(req.tp)) * act_bytes(req.engine)
        }
        _ => 0,
    }
}

fn mlp_moment(req: &ActivationRequest, t: u64) -> u64 {
    let spec = req.spec;
    let a = act_bytes(req.engine);
    let tp = req.tp;
    // gate, up and their product; headroom's engine writes the product over gate.
    let dense_units = match (spec.mlp, req.engine) {
        (MlpKind::Gated, Engine::Headroom) => 2,
        (MlpKind::Gated, _) => 3,
        _ => 2,
    };
    let base = stream_values(req, t);
    let dense = base + dense_units * t * (spec.widest_intermediate() / tp);
    let Some(moe) = spec.moe else { return dense * a };
    let k = moe.experts_per_token;
    // Gated experts hold gate, up and their product; squared-ReLU ones (Nemotron-H) up and its
    // activation.
    let units = if spec.mlp == MlpKind::Gated { 3 } else { 2 };
    let shared = units * t * (moe.shared_intermediate_size / tp);
    let experts = match req.engine {
        // transformers loops over experts: one expert's tokens at a time, plus the fp32 router
        // probabilities and the output accumulator.
        Engine::Hf => {
            (t * k).div_ceil(moe.num_experts) * units * moe.expert_intermediate_size
                + t * spec.hidden_size
                + 2 * t * moe.num_experts
        }
        // fused MoE kernels: every (token, expert) pair's intermediate at once.
        _ => t * k * (units * moe.expert_intermediate_size / tp + spec.hidden_size),
    };
    let moe_layer = base + shared + experts;
    let dense_present = spec.layer_mlp.contains(&LayerMlp::Dense);
    (if dense_present { dense.max(moe_layer) } else { moe_layer }) * a
}

fn output_moment(req: &ActivationRequest, t: u64) -> u64 {
    let v = req.spec.vocab_size;
    let h = req.spec.hidden_size;
    match req.engine {
        // A plain forward returns every position's logits in the model dtype (transformers 5
        // upcasts to fp32 only inside the loss; measured bf16 logits on an H200).
        // Gemma 2 soft-caps the logits (divide, tanh, multiply): each op writes a new tensor
        // while its input is alive, so two copies exist at once (measured 3.97 GiB over weights
        // for Gemma-2-9B at 4,096 tokens on an H200, two 2.1 GB logits tensors).
        Engine::Hf | Engine::Unsloth if req.options.logits_all_positions => {
            t * h * 2 + t * v * 2 * (1 + req.spec.logit_softcap as u64)
        }
        Engine::Hf | Engine::Unsloth => t * h * 2 + req.batch * v * (2 + 4),
        // LitGPT's GPT.forward returns every position's logits (bf16); generate samples from
        // the last one's fp32 probabilities.
        Engine::Litgpt => t * h * 2 + t * v * 2 + req.batch * v * 4,
        // The dummy forward's output hidden states stay alive through the sampler run.
        Engine::Vllm => req.max_num_seqs * v * VLLM_SAMPLER_BYTES_PER_ENTRY + t * h * 2,
        // llama-server reserves its compute graph for one output row per sequence (PR #23861,
        // June 2026): the ubatch's final hidden states and `n_seq` rows of f32 logits. With
        // --logits-all, as llama-cli, llama-bench, llama-perplexity and older builds do, every
        // ubatch token outputs logits.
        Engine::LlamaCpp if req.options.logits_all_positions => t * (h + v) * 4,
        Engine::LlamaCpp => t * h * 4 + req.batch.min(t) * v * 4,
        Engine::Exllama => t * h * 2 + req.batch * v * 4,
        Engine::Bare => req.batch * v * 2,
        // mlx-lm applies lm_head to each sequence's last prompt token only (PR #406, 2025) and
        // takes log-probabilities beside the logits, both in the model's dtype.
        Engine::Mlx => t * h * 2 + req.batch * v * 2 * 2,
        // The logits buffer is part of the workspace; the final norm writes into the arena.
        Engine::Headroom => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::llama_2_7b;

    /// One GPU running every layer and the output, batch 1, 8,192 profile tokens, 256 sequences.
    fn request<'a>(
        spec: &'a ModelSpec,
        engine: Engine,
        options: &'a EngineOptions,
        context: u64,
    ) -> ActivationRequest<'a> {
        ActivationRequest {
            spec,
            engine,
            options,
            context,
            batch: 1,
            tp: 1,
            has_layers: true,
            has_output: true,
            max_batched_tokens: 8192,
            max_num_seqs: 256,
            mlx_quantized_from: None,
            f16_cache_copy: Bytes::ZERO,
        }
    }

    fn peak(spec: &ModelSpec, engine: Engine, options: &EngineOptions, context: u64) -> ActivationPeak {
        prefill_peak(&request(spec, engine, options, context), &mut BasisLog::default())
    }

    /// The module doc's worked example.
    #[test]
    fn llama_2_7b_generate_peaks_in_the_mlp() {
        let p = peak(&llama_2_7b(), Engine::Hf, &EngineOptions::default(), 4096);
        assert_eq!(p, ActivationPeak { bytes: Bytes(373_293_056), moment: "mlp" });
    }

    /// Eager attention: 10 B per score element, 32 heads × 4096² at 4096 tokens.
    #[test]
    fn eager_attention_peaks_on_the_score_matrix() {
        let eager = EngineOptions { flash_attention: false, ..EngineOptions::default() };
        let p = peak(&llama_2_7b(), Engine::Hf, &eager, 4096);
        assert_eq!(p.moment, "attention");
        assert!(p.bytes.0 > 32 * 4096 * 4096 * 10);
    }

    /// mlx-lm over a quantized cache: the prompt's 2,047-token remainder writes its 16-bit scores
    /// against the whole context, 32 heads × 2,047 × 32,767 × 2 B = 4 GiB for Llama-2-7B, beside
    /// the previous layer's; the fused kernel over the 16-bit cache keeps none.
    #[test]
    fn mlx_quantized_cache_writes_the_scores() {
        let o = EngineOptions::default();
        let spec = llama_2_7b();
        let fused = peak(&spec, Engine::Mlx, &o, 32_768);
        let quantized = prefill_peak(
            &ActivationRequest { mlx_quantized_from: Some(6144), ..request(&spec, Engine::Mlx, &o, 32_768) },
            &mut BasisLog::default(),
        );
        assert_eq!(quantized.moment, "attention");
        // The previous layer's scores are still held: two buffers.
        assert!(quantized.bytes.0 >= 2 * 32 * 2047 * 32_767 * 2);
        assert!(fused.bytes.0 < 1 << 30);
    }

    /// MLX's unfused attention holds the previous layer's scores too, sized by that layer's keys:
    /// in a Gemma 3 layout a full layer's neighbour is a sliding one (window 1,024), whose
    /// 2,047-token chunk keeps 1,024 + 2,047 − 1 keys; nothing is held across a layer that does
    /// not attend.
    #[test]
    fn mlx_holds_the_neighbouring_layers_scores() {
        use crate::model::spec::LayerAttention::{self, Full, Linear, Sliding};
        let o = EngineOptions::default();
        let with = |family, layers: &dyn Fn(usize) -> LayerAttention| {
            let mut spec = llama_2_7b();
            // Outside MLX's fused head dims, so every chunk attends unfused.
            spec.head_dim = 256;
            spec.family = family;
            spec.layer_attention = (0..32).map(layers).collect();
            mlx_held_scores(&request(&spec, Engine::Mlx, &o, 32_768), 32, 2048)
        };
        let scores = |keys: u64| 32 * 2047 * keys * 2;
        assert_eq!(with(Family::Llama, &|_| Full), 2 * scores(32_767));
        let gemma3 = |l| if l % 6 == 5 { Full } else { Sliding { window: 1024 } };
        assert_eq!(with(Family::Gemma3, &gemma3), scores(32_767) + scores(1024 + 2047 - 1));
        assert_eq!(with(Family::Qwen3Next, &|l| if l % 4 == 3 { Full } else { Linear }), scores(32_767));
    }

    /// All positions' logits with a Llama-3-sized vocabulary: 4096 × 128256 × 2 B on top of the
    /// hidden states, more than the MLP moment.
    #[test]
    fn logits_of_every_position_can_be_the_peak() {
        let all = EngineOptions { logits_all_positions: true, ..EngineOptions::default() };
        let big_vocab = ModelSpec { vocab_size: 128_256, ..llama_2_7b() };
        let p = peak(&big_vocab, Engine::Hf, &all, 4096);
        assert_eq!(p, ActivationPeak { bytes: Bytes(4096 * 4096 * 2 + 4096 * 128_256 * 2), moment: "logits" });
    }

    /// The DeltaNet moment's worked example (Qwen3-Next-80B-A3B, vLLM, tensor parallel 2).
    #[test]
    fn qwen3_next_deltanet_moment() {
        let config = include_str!("../../data/models/qwen3-next-80b-a3b.json");
        let spec = crate::model::config::parse_config(config, "q", "q").unwrap().spec;
        let options = EngineOptions::default();
        let req = ActivationRequest {
            tp: 2,
            has_output: false,
            max_batched_tokens: 16_384,
            ..request(&spec, Engine::Vllm, &options, 16_384)
        };
        assert_eq!(linear_attention_moment(&req, 16_384), 16_384 * 41_024 + 256 * 16 * 128 * 128 * 2);
        assert_eq!(linear_attention_moment(&req, 16_384), 806_354_944);
    }

    /// The Mamba-2 moment (Nemotron-Nano-9B-v2 in transformers, 4,096 tokens): per token the
    /// stream, in_proj's 2·10,240 + 2·1,024 + 128 = 22,656 outputs, the convolved 12,288 and the
    /// output and gated norm 2·10,240, in bf16; the scan's fp32 chunk states 32·128·80·128·4 B,
    /// within-chunk C·Bᵀ 4,096·8·128·4 B and dt and decay 2·4,096·128·4 B. vLLM's profile run
    /// holds the stream and in_proj's output only.
    #[test]
    fn mamba2_moment() {
        let config = include_str!("../../data/models/nemotron-nano-9b-v2.json");
        let spec = crate::model::config::parse_config(config, "n", "n").unwrap().spec;
        let options = EngineOptions::default();
        let req = ActivationRequest { has_output: false, ..request(&spec, Engine::Hf, &options, 4096) };
        let stream = stream_values(&req, 4096);
        let scan = 32 * 128 * 80 * 128 * 4 + 4096 * 8 * 128 * 4 + 2 * 4096 * 128 * 4;
        assert_eq!(linear_attention_moment(&req, 4096), (stream + 4096 * (22_656 + 12_288 + 20_480)) * 2 + scan);
        let vllm = ActivationRequest { engine: Engine::Vllm, ..req };
        assert_eq!(vllm_profile_linear_moment(&vllm, 4096), (stream_values(&vllm, 4096) + 4096 * 22_656) * 2);
    }

    /// vLLM's sampler warm-up: 38 B per sequence and vocabulary entry at the sort, beside the
    /// dummy run's hidden states. Llama-3.1-8B's vocabulary over 1,024 sequences and 16,384
    /// profile tokens: 4.65 + 0.125 = 4.77 GiB (llm-d measured 4.76 GiB on vLLM 0.11).
    #[test]
    fn vllm_sampler_warm_up_peak() {
        let spec = ModelSpec { vocab_size: 128_256, ..llama_2_7b() };
        let options = EngineOptions::default();
        let req = ActivationRequest {
            has_layers: false,
            max_batched_tokens: 16_384,
            max_num_seqs: 1024,
            ..request(&spec, Engine::Vllm, &options, 4096)
        };
        let p = prefill_peak(&req, &mut BasisLog::default());
        assert_eq!(p.bytes.0, 1024 * 128_256 * 38 + 16_384 * 4096 * 2);
        assert!((p.bytes.0 as f64 / (1u64 << 30) as f64 - 4.77).abs() < 0.01);
    }

    /// vLLM's peak does not grow with the context: the profile run has a fixed token budget.
    #[test]
    fn vllm_peak_is_independent_of_context() {
        let s = llama_2_7b();
        let o = EngineOptions::default();
        assert_eq!(peak(&s, Engine::Vllm, &o, 2048), peak(&s, Engine::Vllm, &o, 32768));
    }

    /// llama-server reserves one logits row per sequence; --logits-all (llama-cli, llama-bench,
    /// older builds) every ubatch token's: Llama-2-7B, 512 tokens, 512 × (4,096 + 32,000) × 4 B.
    #[test]
    fn llama_cpp_logits_reservation() {
        let spec = llama_2_7b();
        let server = EngineOptions::default();
        let all = EngineOptions { logits_all_positions: true, ..EngineOptions::default() };
        assert_eq!(output_moment(&request(&spec, Engine::LlamaCpp, &server, 512), 512), 512 * 4096 * 4 + 32_000 * 4);
        assert_eq!(output_moment(&request(&spec, Engine::LlamaCpp, &all, 512), 512), 512 * (4096 + 32_000) * 4);
    }

    /// The doc's figure: llama.cpp without flash attention reads one f32 KQ mask of 8,192 cells ×
    /// 512 tokens in every layer (16 MiB, in every layer moment), with flash attention its f16
    /// cast (8 MiB); other engines count none.
    #[test]
    fn llama_cpp_kq_mask_is_a_layer_input() {
        let spec = llama_2_7b();
        let eager = EngineOptions { flash_attention: false, ..EngineOptions::default() };
        let slots = ActivationRequest { batch: 4, ..request(&spec, Engine::LlamaCpp, &eager, 2048) };
        assert_eq!(layer_inputs(&slots, 512), 16 << 20);
        let flash = EngineOptions::default();
        assert_eq!(
            layer_inputs(&ActivationRequest { batch: 4, ..request(&spec, Engine::LlamaCpp, &flash, 2048) }, 512),
            8 << 20
        );
        assert_eq!(layer_inputs(&request(&spec, Engine::Hf, &eager, 2048), 512), 0);
        let with = peak(&spec, Engine::LlamaCpp, &eager, 2048).bytes.0;
        assert_eq!(with, attention_moment(&request(&spec, Engine::LlamaCpp, &eager, 2048), 512, 512) + (4 << 20));
    }
}
