//! Unsloth's LoRA and QLoRA training step (`--engine unsloth`): what its own autograd functions,
//! Triton kernels, offloaded checkpointing and chunked fused loss keep on the GPU.
//!
//! Sources (code read in unslothai/unsloth and unslothai/unsloth-zoo, 2025–2026):
//! - `unsloth/kernels/fast_lora.py`: with LoRA on every projection of a group and no dropout,
//!   `LoRA_QKV` saves only its input X (the normed hidden state), `LoRA_W` (o_proj) its input
//!   (the attention output), `LoRA_MLP` its input and the gate and up outputs e and g (the SwiGLU
//!   product is recomputed). Their backwards write the input gradient into the saved X in place,
//!   and `swiglu_DWf_DW_dfg_kernel` reuses DW, e and g for h, df and de: one new i-wide buffer
//!   (DW) per token.
//! - `unsloth/kernels/rms_layernorm.py`: `Fast_RMS_Layernorm` saves its 16-bit input as is and an
//!   fp32 inverse RMS per row (4 B per token); the Llama-style backward writes dX into dY.
//! - `unsloth/kernels/rope_embedding.py`: RoPE runs in place and saves only its cos/sin tables.
//! - attention (`unsloth/utils/attention_dispatch.py`): flash-attn 2 when installed, else
//!   xFormers, else SDPA; flash-attn and SDPA (`enable_gqa`) save q, k, v at their own widths,
//!   the output and an fp32 log-sum-exp per head; xFormers (`--attention xformers`, what its
//!   Colab and Kaggle notebooks install) saves k and v copied to every query head instead.
//! - `unsloth/kernels/utils.py` `fast_dequantize`: every forward projection dequantizes its 4-bit
//!   weight into one global 16-bit buffer (and an fp32 absmax buffer) that grows to the largest
//!   matrix and is never freed; the backwards dequantize into fresh buffers, one matrix at a time.
//! - unsloth-zoo `gradient_checkpointing.py` (`use_gradient_checkpointing="unsloth"`, the default
//!   of `get_peft_model`): a decoder layer's input goes to pinned host RAM on a second stream when
//!   it has more than 1,048,576 elements (2 MiB in bf16); two persistent GPU staging buffers,
//!   sized to the largest input, bring each back for its layer's recomputation; from the second
//!   step on the last layer's input stays on the GPU. Below 512 tokens of `max_seq_length`
//!   Unsloth checkpoints without offloading.
//! - unsloth-zoo `fused_losses/cross_entropy_loss.py` (`unsloth_fused_ce_loss`): lm_head and the
//!   loss run chunk by chunk in the forward pass, each chunk's gradient going into one T×h buffer
//!   kept for the backward pass; no logits outlive their chunk. Chunks are sized so that 16 B
//!   per logit fit min(4 GiB, half the free memory) less that buffer (`get_chunk_size`); a chunk
//!   really holds 14 B per logit (bf16 logits, fp32 upcast, saved log-softmax, gradient: the
//!   zoo's own B200 measurement, unsloth-zoo#946).
//!
//! Worked example, Llama-3.1-8B (h 4,096, q 4,096, k and v 1,024, i 14,336, 32 heads), QLoRA on
//! all seven projections, per layer and token: the layer input 2h = 8,192 (saved by the first
//! norm), two fp32 inverse RMS 8, the normed attention input 8,192, q, k, v and the output
//! 2·(4,096 + 1,024 + 1,024 + 4,096) = 20,480, the log-sum-exp 128, the mid-layer residual 8,192,
//! the normed MLP input 8,192, e and g 57,344: 110,728 B. In the recomputation the input is the
//! staging buffer (−8,192), the backward adds the layer output, the incoming gradient and DW
//! (4h + 2i = 45,056), and the GPU holds two staging buffers and the last layer's input
//! (3 × 8,192): 172,168 B per token at the last layer's backward, plus the global dequantization
//! buffers (2 × 14,336 × 4,096 + 4 × 14,336 × 4,096 / 64 = 121,110,528 B) and a fresh copy of the
//! same size in the MLP backward.
//!
//! Not modelled: Unsloth's speed (its kernels' timings are not measured here), the RoPE tables,
//! the small T×r LoRA temporaries and the adapters' 16-bit casts.

use super::activations::{sum, Term};
use super::phases::Profile;
use super::{Checkpointing, Method, Mode, ModelInput, Precision, TrainingError, TrainingRequest};
use crate::model::spec::{Family, LayerAttention, MlpKind, ModelSpec, NormKind};
use crate::model::tensors::Role;
use crate::plan::basis::BasisLog;
use crate::quant::{QuantScheme, WeightFormat};
use crate::units::GIB;

/// Bytes of the 16-bit compute dtype.
const A: u64 = 2;

/// Layer inputs of this many elements or fewer stay on the GPU (`MINIMUM_SIZE` in bf16).
const OFFLOAD_MIN_ELEMENTS: u64 = 1 << 20;

/// Below this `max_seq_length` Unsloth checkpoints without offloading ("not worth it").
const OFFLOAD_MIN_SEQ: u64 = 512;

/// The fused loss's cap on a chunk's budget (`_CE_CAP_MIN_GB`).
const CE_TARGET_CAP: u64 = 4 * GIB;

/// Bytes per logit `get_chunk_size` budgets (`_CE_BYTES_PER_LOGIT`) and a chunk really holds.
const CE_BUDGETED_BYTES_PER_LOGIT: u64 = 16;
const CE_BYTES_PER_LOGIT: u64 = 14;

/// bitsandbytes' 4-bit block: one fp32 absmax per 64 weights once dequantized.
const NF4_BLOCK: u64 = 64;

/// The LoRA groups Unsloth fuses: each runs its fast path only with every projection adapted.
const FUSED_GROUPS: [&[Role]; 3] =
    [&[Role::AttnQ, Role::AttnK, Role::AttnV], &[Role::AttnOutput], &[Role::FfnGate, Role::FfnUp, Role::FfnDown]];

/// What `--engine unsloth` models: LoRA or QLoRA of a dense Llama-style decoder (Llama, Mistral,
/// Qwen2, Qwen3) on Unsloth's fast path, one model per GPU (data parallel at most).
pub(super) fn check(req: &TrainingRequest) -> Result<(), TrainingError> {
    let refuse = |why: String| Err(TrainingError::EngineLimit(format!("--engine unsloth: {why}")));
    let m = &req.models[0];
    let (Mode::Lora | Mode::Qlora, Method::Lora { targets, .. }) = (req.mode, &m.method) else {
        return refuse(format!("--mode {} is not modelled; use lora or qlora (or --engine hf)", req.mode.id()));
    };
    if let Some(why) = unsupported_architecture(m.spec) {
        return refuse(format!("{} {why}; plan it with --engine hf", m.spec.id));
    }
    if !FUSED_GROUPS.iter().all(|g| g.iter().all(|&r| targets.covers_role(r))) {
        return refuse(
            "its fused LoRA kernels need adapters on q, k, v, o, gate, up and down (other targets run peft's layers, not modelled): use --lora-targets all-linear, or --engine hf".into(),
        );
    }
    if req.lora_dropout > 0.0 {
        return refuse(format!(
            "--lora-dropout {}: its fused LoRA kernels run without dropout; use --lora-dropout 0, or --engine hf",
            req.lora_dropout
        ));
    }
    let p = &req.parallel;
    let sharded = [
        ("--tp", p.tp > 1),
        ("--pp", p.pp > 1),
        ("--zero", p.zero > 0),
        ("--offload", p.offload != super::Offload::None),
    ];
    if let Some((flag, _)) = sharded.iter().find(|f| f.1) {
        return refuse(format!(
            "{flag}: Unsloth trains a whole model on each GPU (data parallel at most); drop {flag}"
        ));
    }
    let own_ways = [
        (
            "--precision amp",
            req.precision == Precision::Amp,
            "Unsloth trains 16-bit weights; use --precision mixed (fp32 adapters) or bf16",
        ),
        ("--loss-chunk", req.loss_chunk.is_some(), "Unsloth chunks its loss itself; drop it"),
        ("--optimizer-in-backward", req.optimizer_in_backward, "Unsloth steps after the backward pass; drop it"),
        ("--attention eager", !req.flash_attention, "Unsloth runs flash-attn, xFormers or SDPA; use flash or xformers"),
        (
            "--checkpointing selective",
            req.checkpointing == Checkpointing::Selective,
            "Unsloth offers offload (\"unsloth\", the default), full (True) or none",
        ),
    ];
    if let Some((flag, _, fix)) = own_ways.iter().find(|w| w.1) {
        return refuse(format!("{flag}: {fix}"));
    }
    Ok(())
}

/// Why Unsloth's fast Llama path (what this module models) does not run `spec`, if it does not.
fn unsupported_architecture(spec: &ModelSpec) -> Option<&'static str> {
    if !matches!(spec.family, Family::Llama | Family::Mistral | Family::Qwen2 | Family::Qwen3) {
        return Some("is not a Llama, Mistral, Qwen2 or Qwen3 dense model, whose fast path this engine models");
    }
    let dense_llama = spec.moe.is_none()
        && spec.mla.is_none()
        && spec.linear_attention.is_none()
        && spec.mlp == MlpKind::Gated
        && spec.norm == NormKind::RmsNorm
        && spec.norms_per_layer == 2
        && !spec.fused_qkv
        && !spec.fused_gate_up
        && !spec.attn_output_gate
        && spec.global_attention.is_none()
        && spec.vision.is_none()
        && spec.layer_attention.iter().all(|a| matches!(a, LayerAttention::Full | LayerAttention::Sliding { .. }));
    if !dense_llama {
        return Some("departs from the dense Llama layout Unsloth's fast path runs");
    }
    // Biased q/k/v (Qwen2) run peft's layers inside the fast path (`layer_terms`); other biases
    // keep whole blocks off it.
    if spec.biases.attn_out || spec.biases.mlp || (spec.biases.qkv && spec.family != Family::Qwen2) {
        return Some("has projection biases, which send Unsloth to peft's layers");
    }
    None
}

/// How Unsloth runs a layer, as far as its saved tensors care.
#[derive(Clone, Copy, Debug, Default)]
pub struct Layout {
    /// xFormers attention (`--attention xformers`).
    pub xformers: bool,
    /// A bitsandbytes 4-bit base (QLoRA).
    pub four_bit: bool,
    /// LoRA rank.
    pub rank: u64,
}

/// Saved bytes per token of decoder layer `layer` (the worked example's 110,728 for
/// Llama-3.1-8B). The first term is the layer input, which a recomputed layer reads from its
/// staging buffer instead. Under xFormers, grouped-query K and V are saved as copies widened to
/// every query head (`reshape` of an `expand`): 2·(2q − k − v) B more, 12,288 for Llama-3.1-8B.
///
/// Biased q/k/v (Qwen2) keep `apply_qkv` on peft's LoRA layers, under the trainer's autocast
/// with fp32 adapters: on a 4-bit base, bitsandbytes' matmul saves the normed input and peft
/// skips its fp32 cast, so the adapters share it; on a 16-bit base the frozen matmul saves
/// nothing and each adapter its own bf16 copy (peft's fp32 cast, cast back by autocast); and
/// each `lora_B` saves its input, `lora_A`'s r-wide output. Qwen2.5-7B LoRA r16: 3·2·3,584 +
/// 3·2·16 B against the fused path's 2·3,584.
pub fn layer_terms(spec: &ModelSpec, layer: u64, layout: Layout) -> Vec<Term> {
    let h = spec.hidden_size;
    let (q, k, v) = spec.layer_qkv_widths(layer);
    let i = spec.layer_intermediate(layer);
    let mut terms = vec![(LAYER_INPUT, A * h), ("RMSNorm: fp32 inverse RMS per token (two norms)", 2 * 4)];
    if !spec.biases.qkv {
        terms.push(("normed attention input (LoRA_QKV's X)", A * h));
    } else if layout.four_bit {
        terms.push(("normed attention input (the 4-bit q/k/v matmuls'; peft's adapters share it)", A * h));
        terms.push(("q/k/v lora_A outputs (peft's lora_B saves them)", 3 * A * layout.rank));
    } else {
        terms.push(("q/k/v adapters' own bf16 copies of the normed input (peft under autocast)", 3 * A * h));
        terms.push(("q/k/v lora_A outputs (peft's lora_B saves them)", 3 * A * layout.rank));
    }
    if spec.qk_norm.present() {
        // `fast_rms_layernorm` on the per-head q and k: their 16-bit inputs and a row's fp32 RMS.
        terms.push((
            "q/k norm inputs and fp32 inverse RMS per head",
            A * (q + k) + 4 * (spec.num_heads + spec.num_kv_heads),
        ));
    }
    let attention = if layout.xformers {
        ("q, k and v widened to every query head, and the attention output (xFormers)", A * 4 * q)
    } else {
        ("q, k, v after in-place RoPE and the attention output (flash-attn / SDPA)", A * (2 * q + k + v))
    };
    terms.extend([
        attention,
        ("softmax log-sum-exp, fp32 per head", 4 * spec.num_heads),
        ("mid-layer residual (the MLP norm's input)", A * h),
        ("normed MLP input (LoRA_MLP's X)", A * h),
        ("gate and up outputs e, g (LoRA_MLP; the SwiGLU product is recomputed)", 2 * A * i),
    ]);
    terms
}

/// The name of `layer_terms`' first term.
pub const LAYER_INPUT: &str = "layer input (the first RMSNorm keeps it as is)";

/// Transient bytes per token in a layer's backward beside its saved tensors, all 16-bit: the
/// recomputed output and the incoming gradient (h elements each) and the down projection's input
/// gradient DW (i).
/// The no-grad forward of a checkpointed layer holds the MLP's e, g and product and the residual,
/// its input, the normed input and the output at once (3i + 4h, 16-bit); without checkpointing
/// the saved terms hold most of that, and the transient is the product, output and sum (i + 2h).
pub fn layer_transients(spec: &ModelSpec, recomputes: bool) -> (u64, u64) {
    let (h, i) = (spec.hidden_size, spec.widest_intermediate());
    let forward = if recomputes { A * (3 * i + 4 * h) } else { A * (i + 2 * h) };
    (forward, A * (i + 2 * h))
}

/// Saved bytes per token after the last layer: the final norm's input and inverse RMS, and the
/// fused loss's input gradient (T×h, filled chunk by chunk in the forward pass).
pub fn output_terms(spec: &ModelSpec) -> Vec<Term> {
    vec![
        ("final norm input and fp32 inverse RMS", A * spec.hidden_size + 4),
        ("fused loss: the hidden states' gradient, computed in the forward pass", A * spec.hidden_size),
    ]
}

/// Where a step keeps its layer inputs, in layer inputs (`Checkpointing::Offload` as Unsloth runs
/// it): (on the GPU, in host RAM).
pub fn offloaded_inputs(req: &TrainingRequest, layers: u64, tokens: u64) -> (u64, u64) {
    let small = tokens * req.models[0].spec.hidden_size <= OFFLOAD_MIN_ELEMENTS;
    if req.seq < OFFLOAD_MIN_SEQ || small {
        return (layers, 0);
    }
    // Two staging buffers, and the last layer's input from the second step on.
    (3, layers.saturating_sub(1))
}

/// The 4-bit base's dequantization buffers: the persistent global pair (the largest matrix in
/// 16-bit and its fp32 absmax), and one backward copy of the same size. 0 for a 16-bit base
/// (`Engine::loads` admits nothing else).
pub fn dequantization_bytes(m: &ModelInput) -> u64 {
    if !matches!(m.format, WeightFormat::Quantized(QuantScheme::Nf4 | QuantScheme::Nf4Double)) {
        return 0;
    }
    let n = super::phases::largest_block_matrix(m.tensors, &(0..m.spec.num_layers));
    A * n + 4 * n.div_ceil(NF4_BLOCK)
}

/// The fused loss's chunking for `tokens` tokens: the chunks `get_chunk_size` picks, given the
/// free memory where known (else the 4 GiB cap), and the bytes of one chunk's transient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FusedLoss {
    pub tokens: u64,
    pub vocab: u64,
    pub hidden: u64,
}

impl FusedLoss {
    /// `get_chunk_size`: the budget is min(4 GiB, half of `free`) less the unchunkable input
    /// gradient (T×h, 16-bit) when that is smaller; chunks come in multiples of four. Unsloth
    /// reads the free memory after allocating that gradient and still subtracts it, as here.
    pub fn chunks(&self, free: Option<u64>) -> u64 {
        let mut target = free.map_or(CE_TARGET_CAP, |f| (f / 2).min(CE_TARGET_CAP));
        let fixed = A * self.tokens * self.hidden;
        if fixed > 0 && fixed < target {
            target -= fixed;
        }
        if target == 0 {
            // No memory left (Unsloth raises here): the smallest chunks, so the plan's
            // shortfall is not inflated by a whole-sequence chunk.
            return self.tokens.max(1);
        }
        let need = self.tokens as u128 * self.vocab as u128 * CE_BUDGETED_BYTES_PER_LOGIT as u128;
        if need <= target as u128 {
            return 1;
        }
        let chunks = (need.div_ceil(target as u128)).div_ceil(4) * 4;
        chunks.min(self.tokens as u128) as u64
    }

    /// One chunk's transient: its `ceil(T / chunks)` tokens' logits at 14 B each.
    pub fn chunk_bytes(&self, free: Option<u64>) -> u64 {
        self.tokens.div_ceil(self.chunks(free)) * self.vocab * CE_BYTES_PER_LOGIT
    }
}

/// The saved-activation profile of Unsloth's step for the policy on one GPU.
pub(super) fn profile(req: &TrainingRequest, tokens: u64, log: &mut BasisLog) -> Profile {
    let m = &req.models[0];
    let spec = m.spec;
    let h = spec.hidden_size;
    let rank = match m.method {
        Method::Lora { rank, .. } => rank,
        _ => 0,
    };
    // The backward's fresh dequantization of one matrix (the global buffer is in the workspace).
    let dequantized = dequantization_bytes(m);
    let layout = Layout { xformers: req.xformers, four_bit: dequantized > 0, rank };
    let per_layer: Vec<u64> = (0..spec.num_layers).map(|l| sum(&layer_terms(spec, l, layout))).collect();
    let largest = per_layer.iter().copied().max().unwrap_or(0);
    let recomputes = req.checkpointing.recomputes();
    let (layer_fwd, layer_bwd) = layer_transients(spec, recomputes);
    let (inputs_on_gpu, inputs_on_host) = match req.checkpointing {
        Checkpointing::Offload => offloaded_inputs(req, spec.num_layers, tokens),
        Checkpointing::Full => (spec.num_layers, 0),
        _ => (0, 0),
    };
    let saved = if recomputes { inputs_on_gpu * A * h } else { per_layer.iter().sum() };
    // A recomputed layer reads its input from the checkpoint (or staging buffer).
    let recomputed = if recomputes { largest.saturating_sub(A * h) } else { 0 };
    let out = output_terms(spec);
    let loss = FusedLoss { tokens, vocab: spec.vocab_size, hidden: h };
    let prof = Profile {
        layers: tokens * saved,
        copies: 0,
        output: tokens * sum(&out),
        // The final norm's output feeds the chunks; train_phases adds a chunk's logits.
        loss_fwd: tokens * A * h,
        loss_bwd: 0,
        layer_fwd: tokens * layer_fwd,
        layer_bwd: tokens * (recomputed + layer_bwd) + dequantized,
        in_flight: req.parallel.in_flight(0, req.grad_accum),
        offloaded: tokens * inputs_on_host * A * h,
        fused_loss: Some(loss),
        // The global pair, allocated by the first forward pass and never freed.
        buffers: dequantized,
    };
    if dequantized > 0 {
        log.add(
            "Unsloth dequantization buffers (global, persistent; a fresh copy in the backward)",
            dequantized,
            "fast_dequantize: the largest matrix in 16-bit and its fp32 absmax (one per 64 weights)",
        );
    }
    if prof.offloaded > 0 {
        log.add(
            "activations offloaded to host RAM (per GPU)",
            prof.in_flight * prof.offloaded,
            "Unsloth's offloaded checkpointing: every layer input but the last in pinned host RAM; two staging buffers and the last input on the GPU",
        );
    }
    log.add(
        "fused loss chunks without a GPU (4 GiB cap; with --gpu half the free memory may cap them lower)",
        format!("{} × {} tokens", loss.chunks(None), tokens.div_ceil(loss.chunks(None))),
        "unsloth_fused_ce_loss: 16 B per logit budgeted in min(4 GiB, half the free memory) less the T×h gradient; 14 B held",
    );
    log.add(
        "training speed",
        "not modelled",
        "Unsloth's fused kernels are not timed here; --engine hf gives transformers' speed for the same run",
    );
    let sources = ("plan/training/unsloth.rs (Unsloth's kernels)", "plan/training/unsloth.rs");
    super::phases::log_saved(log, &prof, layer_terms(spec, 0, layout), out, tokens, sources);
    prof
}

#[cfg(test)]
mod tests {
    use super::*;

    fn llama_3_1_8b() -> ModelSpec {
        let text = include_str!("../../../data/models/llama-3.1-8b.json");
        crate::model::config::parse_config(text, "llama-3.1-8b", "test").unwrap().spec
    }

    /// The module doc's worked example.
    #[test]
    fn llama_3_1_8b_layer_saves_110728_bytes_per_token() {
        let spec = llama_3_1_8b();
        let terms = layer_terms(&spec, 0, Layout::default());
        assert_eq!(terms.iter().map(|t| t.1).sum::<u64>(), 110_728);
        assert_eq!(sum(&layer_terms(&spec, 0, Layout { xformers: true, ..Layout::default() })), 110_728 + 12_288);
        assert_eq!(terms[0], (LAYER_INPUT, 8_192));
        let (_, backward) = layer_transients(&spec, true);
        assert_eq!(3 * 8_192 + 110_728 - 8_192 + backward, 172_168);
    }

    /// unsloth-zoo's own tests of `get_chunk_size`: a 2 GiB footprint stays one chunk with a
    /// roomy card; 32,768 tokens of a 65,536 vocabulary (32 GiB at 16 B) chunk to ≤ 4 GiB each.
    #[test]
    fn fused_loss_chunks_as_get_chunk_size() {
        let roomy = Some(180 * GIB);
        let small = FusedLoss { tokens: 2_048, vocab: 65_536, hidden: 0 };
        assert_eq!(small.chunks(roomy), 1);
        let big = FusedLoss { tokens: 32_768, vocab: 65_536, hidden: 0 };
        let n = big.chunks(roomy);
        assert!(n > 1 && n % 4 == 0);
        assert!(32_768 * 65_536 * 16 / n <= 4 * GIB);
        // Llama-3.1-8B at 16,384 tokens: the T×h gradient (128 MiB) comes off the 4 GiB budget,
        // 16,384 × 128,256 × 16 B over 3.875 GiB is 8.08, so 12 chunks of 1,366 tokens.
        let llama = FusedLoss { tokens: 16_384, vocab: 128_256, hidden: 4_096 };
        assert_eq!(llama.chunks(None), 12);
        assert_eq!(llama.chunk_bytes(None), 1_366 * 128_256 * 14);
        // Little free memory shrinks the chunks: 2 GiB free leaves 1 GiB less the 128 MiB
        // gradient, 33,622,065,152 B / 939,524,096 B = 35.8, so 36 chunks; none at all gives one
        // token per chunk.
        assert_eq!(llama.chunks(Some(2 * GIB)), 36);
        assert_eq!(llama.chunks(Some(0)), 16_384);
    }

    #[test]
    fn dequantization_buffers_hold_the_largest_matrix() {
        let spec = llama_3_1_8b();
        let tensors = crate::model::tensors::inventory(&spec);
        let with = |format| {
            let m = super::super::ModelInput {
                role: super::super::ModelRole::Policy,
                spec: &spec,
                tensors: &tensors,
                format,
                method: Method::Frozen,
                quantized_lm_head: false,
            };
            dequantization_bytes(&m)
        };
        assert_eq!(with(WeightFormat::Quantized(QuantScheme::Nf4Double)), 121_110_528);
        assert_eq!(with(WeightFormat::Float(crate::quant::FloatType::Bf16)), 0);
    }
}
