//! Training activations: what the forward pass saves for the backward pass, per layer and token,
//! and the transient peaks around the loss.
//!
//! Start: Korthikanti et al. 2022 (arXiv 2205.05198) count `s·b·h·(34 + 5·a·s/h)` bytes per
//! layer for a GPT layer with 16-bit activations: attention 11·sbh + 5·as²b (QKV input 2, Q and
//! K 4, softmax output 2·as², dropout mask as², dropout output 2·as², V 2, projection input 2,
//! dropout mask 1), MLP 19·sbh (input 2, GELU input 8, GELU output 8, mask 1), LayerNorms 4·sbh.
//! What the architecture and the framework change, term by term (transformers + PyTorch autograd,
//! which saves a tensor only when the gradient that needs it is required):
//! - no dropout (every modern config has 0.0): the masks and dropout outputs disappear;
//! - flash / SDPA attention: no `as²` terms; it saves q, k, v, its output and an fp32
//!   log-sum-exp per head instead (with GQA, k and v at `n_kv·head_dim`). Eager attention saves
//!   the fp32 softmax and the bf16 probabilities (6 B per score) and repeat_kv's copies;
//! - RMSNorm upcasts to fp32 (`hidden.to(float32)`): it saves 4·h, not 2·h, plus the normalised
//!   value only when its weight is trained (2·h; 4·h for Gemma and LitGPT, which multiply in
//!   fp32); Qwen3's and Gemma 3's per-head q/k norms save fp32 copies of q and k the same way
//!   (`qk_norms`);
//! - a linear layer saves its input only when its weight is trained, or when a LoRA adapter (or
//!   bitsandbytes' 4-bit matmul, which keeps its input for the input gradient) reads it; inputs
//!   shared by several consumers in the same dtype are stored once;
//! - SwiGLU: gate output (SiLU input), SiLU output and up output (3·i) plus down's input (i)
//!   instead of GELU's 2·4h; a plain GELU MLP saves up output (i) and down's input (i);
//! - the loss: logits are upcast to fp32 and `log_softmax` keeps its fp32 output, 4·V per token,
//!   often the largest single term.
//!
//! LitGPT's model code differs in its attention and loss (`litgpt_attention_terms`,
//! `output_terms`); QLoRA's dequantized weights are transients (phases.rs).
//!
//! Worked example, Llama-2-7B, LoRA r8 on q_proj,v_proj, bf16, SDPA, per layer and token:
//! norm inputs 2·4·4096, the shared q/v input 2·4096, q, k, v and output 4·2·4096, log-sum-exp
//! 32·4, SwiGLU 3·2·11008: 139,904 B; × 32 layers × 1304 tokens = 5,837,914,112 B; plus the
//! final norm 4·4096 and the log-probabilities 4·32000 per token: 6,026,190,848 B. Measured on
//! an H200 (transformers 5.17): 6,070,623,744 B (−0.7%; the rest is allocator rounding).

use super::lora::LoraTargets;
use crate::model::spec::{Family, LayerAttention, LayerMlp, LinearAttention, LinearKind, MlpKind, ModelSpec, NormKind};
use crate::model::tensors::Role;

/// How a model is trained, as far as saved activations care.
#[derive(Clone, Copy, Debug)]
pub struct ActivationSetup<'a> {
    pub spec: &'a ModelSpec,
    /// Full fine-tuning: every weight is trained.
    pub base_trainable: bool,
    /// LoRA targets, with the adapters' dtype bytes.
    pub targets: Option<&'a LoraTargets>,
    pub adapter_bytes: u64,
    /// LoRA dropout is active (p > 0): each adapter saves its own dropped copy of the input
    /// (adapter dtype) and the dropout mask (1 B per element, PyTorch's bool mask) instead of
    /// sharing the layer input.
    pub lora_dropout: bool,
    /// Frozen 4-bit base (bitsandbytes `MatMul4Bit` saves its input).
    pub frozen_saves_input: bool,
    /// fp32 parameters under `torch.autocast(bfloat16)`: fp32 residual stream, per-op casts.
    pub autocast: bool,
    /// 16-bit weights with fp32 LoRA adapters under `torch.autocast(bfloat16)` (transformers'
    /// `Trainer` with `bf16=True`): peft casts a 16-bit base's input to fp32 for each adapter and
    /// autocast casts it back, so each adapter saves its own bf16 copy (2 B, not the 4 B of an
    /// fp32 copy without autocast); peft's bitsandbytes layers skip the cast under autocast and
    /// share the input.
    pub trainer_autocast: bool,
    /// No score matrix is saved (flash attention, or selective recomputation).
    pub flash: bool,
    /// Tokens per sequence (the eager score matrix grows with it).
    pub seq: u64,
    /// LitGPT's `GPT` instead of transformers (see `litgpt_attention_terms`, `output_terms`).
    pub litgpt: bool,
    /// LLaMA-Adapter (see `adapter_terms`).
    pub adapter: Option<AdapterActivations>,
}

/// What LLaMA-Adapter changes in the saved activations.
#[derive(Clone, Copy, Debug)]
pub struct AdapterActivations {
    /// First layer with a learned prompt.
    pub start_layer: u64,
    /// v2: a scale and bias on every linear's output, trainable norms.
    pub v2: bool,
}

/// Bytes of the 16-bit compute dtype.
const A: u64 = 2;

/// One saved term: what it is and its bytes per token.
pub type Term = (&'static str, u64);

impl ActivationSetup<'_> {
    /// Bytes of the residual stream's dtype.
    fn residual(&self) -> u64 {
        if self.autocast {
            4
        } else {
            A
        }
    }

    /// Bytes per element of the input an adapter's first matmul saves: 16-bit under autocast
    /// (every op casts), else the adapters' dtype (peft casts x to it).
    fn adapter_input_bytes(&self) -> u64 {
        if self.autocast || self.trainer_autocast {
            A
        } else {
            self.adapter_bytes
        }
    }

    /// What the consumers of a layer input read `roles` need, per element: the dtypes of those
    /// that save the input itself when it is in their dtype (16-bit for base linears, the
    /// adapters' dtype for LoRA), and the bytes of the copies that are always their own (fp32
    /// adapters on a 16-bit base under `trainer_autocast`).
    fn consumers(&self, roles: &[Role]) -> (Vec<u64>, u64) {
        let (mut wants, mut own) = (Vec::new(), 0);
        for &role in roles {
            if self.base_trainable || self.frozen_saves_input {
                wants.push(A);
            }
            if self.targets.is_some_and(|t| t.covers_role(role)) && !self.lora_dropout {
                if self.trainer_autocast && self.adapter_bytes == 4 && !self.frozen_saves_input {
                    own += A;
                } else {
                    wants.push(self.adapter_input_bytes());
                }
            }
        }
        (wants, own)
    }

    /// A layer input of `width` in `dtype` bytes read by `roles`: stored once for consumers of
    /// its own dtype (unless already saved by another op), once per consumer that casts it.
    fn input_point(&self, roles: &[Role], width: u64, dtype: u64, already_saved: bool) -> u64 {
        let (wants, own) = self.consumers(roles);
        let shared = wants.contains(&dtype) && !already_saved;
        let copies: u64 = wants.iter().filter(|&&b| b != dtype).sum::<u64>() + own;
        (shared as u64 * dtype + copies + self.dropout_saves(roles)) * width
    }

    /// Per element of the input: what adapters behind an active dropout save (their dropped
    /// copy in the adapter dtype, and the bool mask).
    fn dropout_saves(&self, roles: &[Role]) -> u64 {
        if !self.lora_dropout {
            return 0;
        }
        let adapters = roles.iter().filter(|&&r| self.targets.is_some_and(|t| t.covers_role(r))).count() as u64;
        adapters * (self.adapter_input_bytes() + 1)
    }

    /// What one norm saves: its input (fp32 for RMSNorm's upcast), and the normalised value the
    /// weight multiplies when `trained`. Gemma's norms (by 1 + weight) and LitGPT's `RMSNorm`
    /// multiply in fp32 before casting back, so they keep an fp32 normalised value; transformers'
    /// Llama-style norms cast first and keep the 16-bit one.
    fn norm(&self, trained: bool) -> u64 {
        let h = self.spec.hidden_size;
        let input = match self.spec.norm {
            NormKind::RmsNorm => 4 * h,
            NormKind::LayerNorm => self.residual() * h,
        };
        let normed = if fp32_norm_product(self.spec.family) || self.litgpt { 4 } else { self.residual() };
        let weight = (trained && self.spec.norm == NormKind::RmsNorm) as u64 * normed * h;
        input + weight
    }

    /// A layer's norms: full fine-tuning trains them all; LLaMA-Adapter v2 trains LitGPT's
    /// `norm_1` and `norm_2` only (not Gemma's post-norms, nor the q/k norms).
    fn layer_norms(&self) -> u64 {
        let n = self.spec.norms_per_layer;
        let trained = if self.base_trainable { n } else { self.adapter.map_or(0, |a| a.v2 as u64 * n.min(2)) };
        trained * self.norm(true) + (n - trained) * self.norm(false)
    }

    /// The final norm (LitGPT `ln_f`): trained by full fine-tuning and by LLaMA-Adapter v2.
    fn final_norm(&self) -> u64 {
        self.norm(self.base_trainable || self.adapter.is_some_and(|a| a.v2))
    }

    /// Per-head q/k RMSNorms (Qwen3, Gemma 3, Qwen3-Next, Qwen3.5), over q_w + k_w elements per
    /// token: each saves its input upcast to fp32 (4 B) for the variance, and when its weight is
    /// trained the normalised value the weight multiplies: `Qwen3RMSNorm` casts it back to the
    /// 16-bit input dtype first (2 B); the zero-centred ones (`Gemma3RMSNorm`, Qwen3-Next's and
    /// Qwen3.5's) and LitGPT's `RMSNorm` multiply in fp32 (4 B). RoPE after them saves only its
    /// cos/sin tables. Qwen3-8B, full fine-tuning, per layer and token:
    /// (4 + 2)·(4096 + 1024) = 30,720 B.
    fn qk_norms(&self, q_w: u64, k_w: u64) -> u64 {
        let normalised = if fp32_norm_product(self.spec.family) || self.litgpt { 4 } else { A };
        (4 + self.base_trainable as u64 * normalised) * (q_w + k_w)
    }
}

/// Norms that multiply by their weight in fp32 and cast afterwards (`(1 + w)` in Gemma's,
/// Qwen3-Next's and Qwen3.5's zero-centred RMSNorms; `Olmo2RMSNorm`'s `(w · x).to(dtype)`;
/// `CohereLayerNorm`), so a trained one keeps an fp32 normalised value.
fn fp32_norm_product(family: Family) -> bool {
    use Family::*;
    matches!(family, Gemma | Gemma2 | Gemma3 | Qwen3Next | Qwen35 | Qwen35Moe | Olmo2 | Olmo3 | Cohere | Cohere2)
}

fn attention_inputs(spec: &ModelSpec) -> Vec<Role> {
    match (spec.mla, spec.fused_qkv) {
        (Some(m), _) => vec![if m.q_lora_rank.is_some() { Role::AttnQA } else { Role::AttnQ }, Role::AttnKvAMqa],
        (None, true) => vec![Role::AttnQkv],
        (None, false) => vec![Role::AttnQ, Role::AttnK, Role::AttnV],
    }
}

fn linear_attention_inputs(la: LinearAttention) -> Vec<Role> {
    if la.split_projections {
        vec![Role::SsmInQkv, Role::SsmInZ, Role::SsmBeta, Role::SsmAlpha]
    } else {
        vec![Role::SsmIn, Role::SsmBa]
    }
}

fn mlp_inputs(spec: &ModelSpec) -> Vec<Role> {
    match spec.mlp {
        MlpKind::Gated if spec.fused_gate_up => vec![Role::FfnGateUp],
        MlpKind::Gated => vec![Role::FfnGate, Role::FfnUp],
        MlpKind::Plain => vec![Role::FfnUp],
    }
}

/// Saved bytes per token of decoder layer `layer`, itemised.
pub fn layer_terms(s: &ActivationSetup, layer: u64) -> Vec<Term> {
    match s.adapter {
        // Nothing before the first prompt needs a gradient: autograd records nothing there.
        Some(a) if !a.v2 && layer < a.start_layer => Vec::new(),
        Some(a) => {
            let mut terms = base_layer_terms(s, layer);
            terms.extend(adapter_terms(s, a, layer));
            terms
        }
        None => base_layer_terms(s, layer),
    }
}

/// LLaMA-Adapter's own saves per layer and token (LitGPT `adapter.py`, `adapter_v2.py`): from
/// the first prompted layer, the prompt attention's output (gated by a trained factor, so it is
/// kept: 16-bit over q's width) and its fp32 log-sum-exp; in v2, every linear layer's output
/// plus bias, which the trained scale multiplies (Llama-2-7B: 2 × (12,288 + 4,096 + 2 × 11,008 +
/// 4,096) = 84,992 B).
fn adapter_terms(s: &ActivationSetup, a: AdapterActivations, layer: u64) -> Vec<Term> {
    let spec = s.spec;
    let prompt = if layer >= a.start_layer { A * spec.q_width() + 4 * spec.num_heads } else { 0 };
    let mut terms = vec![("adapter prompt attention output (gated) and log-sum-exp", prompt)];
    if a.v2 {
        terms.push(("adapter v2: every linear's output + bias (the scale's input)", A * linear_outputs(spec, layer)));
    }
    terms
}

/// Output features of every linear layer of decoder layer `layer`.
fn linear_outputs(spec: &ModelSpec, layer: u64) -> u64 {
    if spec.mla.is_some() || spec.moe.is_some() || spec.global_attention.is_some() || spec.double_wide_mlp {
        return crate::model::tensors::inventory(spec)
            .iter()
            .filter(|t| t.layer == Some(layer as u32) && t.part == crate::model::tensors::Part::Weight)
            .filter(|t| t.role.is_block_linear())
            // A token runs through `experts_per_token` of the routed experts only.
            .map(|t| {
                t.rows * if t.role.is_routed_expert() { spec.moe.map_or(1, |m| m.experts_per_token) } else { t.copies }
            })
            .sum();
    }
    let mlp = if spec.mlp == MlpKind::Gated { 2 * spec.intermediate_size } else { spec.intermediate_size };
    spec.q_width() + 2 * spec.kv_width() + spec.hidden_size + mlp + spec.hidden_size
}

fn base_layer_terms(s: &ActivationSetup, layer: u64) -> Vec<Term> {
    let spec = s.spec;
    if spec.layer_attention[layer as usize] == LayerAttention::Absent {
        return mlp_block_terms(
            s,
            layer,
            vec![("norm inputs (RMSNorm: fp32 upcast) and trained norm outputs", s.layer_norms())],
        );
    }
    if let Some(la) = spec.linear_attention.filter(|_| spec.is_linear_layer(layer)) {
        return match la.kind {
            LinearKind::GatedDeltaNet => linear_attention_layer_terms(s, la, layer),
            LinearKind::Mamba2 => mamba2_layer_terms(s, la, layer),
            LinearKind::Mamba1 => mamba1_layer_terms(s, la, layer),
        };
    }
    let h = spec.hidden_size;
    let heads = spec.num_heads;
    // (A Gemma 4 full layer's heads are wider; its values, the keys' projection, are a tensor
    // of their own all the same.)
    let (q_w, k_w, v_w) = match spec.mla {
        Some(m) => (spec.q_width(), heads * (m.qk_nope_head_dim + m.qk_rope_head_dim), heads * m.v_head_dim),
        None => {
            let (q, k, _) = spec.layer_qkv_widths(layer);
            (q, k, k)
        }
    };
    // The attention output, o_proj's input: every head's values.
    let o_w = spec.mla.map_or(q_w, |m| heads * m.v_head_dim);
    let norm_out = if s.autocast { 4 } else { A };
    let mut attn_in = attention_inputs(spec);
    let mut mlp_in = mlp_inputs(spec);
    // Parallel attention + MLP from one norm (Falcon-7B): one input point for both. (A
    // Nemotron-H block's one norm feeds its one mixer.)
    if spec.norms_per_layer == 1 && spec.layer_mlp[layer as usize] != LayerMlp::Absent {
        attn_in.append(&mut mlp_in);
    }
    let qk_norms = (
        "q/k norm inputs (fp32 upcast) and trained norm outputs",
        spec.qk_norm.present() as u64 * s.qk_norms(q_w, k_w),
    );
    // LitGPT always runs scaled_dot_product_attention (commands refuse eager attention and MLA).
    if s.litgpt && spec.mla.is_none() {
        let mut terms = vec![("norm inputs (RMSNorm: fp32 upcast) and trained norm outputs", s.layer_norms())];
        terms.push(qk_norms);
        let (attention, input_saved) = litgpt_attention_terms(s, q_w, k_w, v_w, norm_out);
        terms.extend(attention);
        // One norm feeding attention and MLP (Falcon-7B): the MLP shares a saved input.
        let shared = spec.norms_per_layer == 1 && input_saved;
        terms.push(("MLP input, per consumer", s.input_point(&mlp_inputs(spec), h, norm_out, shared)));
        terms.extend(mlp_terms(s, layer));
        return terms;
    }
    let mut terms: Vec<Term> = vec![
        ("norm inputs (RMSNorm: fp32 upcast) and trained norm outputs", s.layer_norms()),
        ("attention input, per consumer", s.input_point(&attn_in, h, norm_out, false)),
        qk_norms,
    ];
    if s.flash && spec.attn_output_gate {
        // `attn_output * sigmoid(gate)`: the product is a new tensor, o_proj's input.
        terms.push(("q, k, v after RoPE and the attention output (flash/SDPA)", A * (2 * q_w + k_w + v_w)));
        terms.push(("softmax log-sum-exp, fp32 per head", 4 * heads));
        terms.push(("output gate: sigmoid(gate), the multiply's input", A * q_w));
        terms.push(("o_proj input (the gated output)", s.input_point(&[Role::AttnOutput], o_w, A, false)));
    } else if s.flash {
        terms.push(("q, k, v after RoPE and the attention output (flash/SDPA)", A * (2 * q_w + k_w + v_w)));
        terms.push(("softmax log-sum-exp, fp32 per head", 4 * heads));
        terms.push(("o_proj input (shares the attention output)", s.input_point(&[Role::AttnOutput], o_w, A, true)));
    } else {
        // Eager: q·kᵀ saves q and the repeated k; the fp32 softmax output (4 B) and its bf16 cast
        // (2 B) per score; probs·v saves the repeated v; the output is a transposed copy.
        let full = q_w;
        terms.push(("q, repeated k and v (eager)", A * (q_w + 2 * full)));
        terms.push(("scores: fp32 softmax + bf16 probabilities (Korthikanti 5as/h)", 6 * heads * s.seq));
        if spec.attn_output_gate {
            terms.push(("output gate: sigmoid(gate), the multiply's input", A * q_w));
        }
        terms.push(("o_proj input (transposed copy)", s.input_point(&[Role::AttnOutput], o_w, A, false)));
    }
    // Falcon-H1: the Mamba-2 mixer beside attention, fed by the same norm.
    if let Some(la) = spec.linear_attention.filter(|_| spec.parallel_ssm) {
        terms.push(("Mamba-2 input, per consumer", s.input_point(&[Role::SsmIn], h, norm_out, false)));
        terms.extend(mamba2_mixer_terms(la));
    }
    if mlp_in.is_empty() {
        terms.extend(mlp_terms(s, layer));
        return terms;
    }
    mlp_block_terms(s, layer, terms)
}

/// `terms` followed by the layer's MLP: its input per consumer and its intermediates, or
/// nothing in a Nemotron-H block without one.
fn mlp_block_terms(s: &ActivationSetup, layer: u64, mut terms: Vec<Term>) -> Vec<Term> {
    if s.spec.layer_mlp[layer as usize] == LayerMlp::Absent {
        return terms;
    }
    let norm_out = if s.autocast { 4 } else { A };
    terms.push(("MLP input, per consumer", s.input_point(&mlp_inputs(s.spec), s.spec.hidden_size, norm_out, false)));
    terms.extend(mlp_terms(s, layer));
    terms
}

/// A Mamba-2 layer on transformers' training path with mamba_ssm's kernels
/// (`mamba_split_conv1d_scan_combined`, which runs the convolution, the scan, the gated norm and
/// `out_proj` in one autograd function and saves `in_proj`'s whole output, the scan's output
/// before the norm and the norm's fp32 reciprocal per group, recomputing the rest), per token:
/// the norm; `in_proj`'s input per consumer; those three saves. Nemotron-Nano-9B-v2, LoRA on
/// all linears (bf16): norm 4·4,480 (+2·4,480 trained), in_proj output 2·22,656, scan output
/// 2·10,240, 4·8.
fn mamba2_layer_terms(s: &ActivationSetup, la: LinearAttention, layer: u64) -> Vec<Term> {
    let norm_out = if s.autocast { 4 } else { A };
    let mut terms = vec![
        ("norm inputs (RMSNorm: fp32 upcast) and trained norm outputs", s.layer_norms()),
        ("Mamba-2 input, per consumer", s.input_point(&[Role::SsmIn], s.spec.hidden_size, norm_out, false)),
    ];
    terms.extend(mamba2_mixer_terms(la));
    mlp_block_terms(s, layer, terms)
}

/// What mamba_ssm's fused Mamba-2 function saves per token beside its input.
fn mamba2_mixer_terms(la: LinearAttention) -> [Term; 3] {
    [
        ("in_proj output: z, x, B, C, dt (the fused kernel's saved input)", A * la.fused_in_rows()),
        ("scan output before the gated norm", A * la.value_dim()),
        ("gated norm: fp32 reciprocal per group", 4 * la.num_key_heads),
    ]
}

/// A Mamba-1 layer on mamba_ssm's fused path (`mamba_inner_fn`), per token: the norm, the block's
/// input, in_proj's x and z, the convolution's output, each token's dt, B and C (`x_proj`), dt
/// widened by `dt_proj` and the scan's output before `out_proj`.
fn mamba1_layer_terms(s: &ActivationSetup, la: LinearAttention, layer: u64) -> Vec<Term> {
    let norm_out = if s.autocast { 4 } else { A };
    let d = la.value_dim();
    let terms = vec![
        ("norm inputs (RMSNorm: fp32 upcast) and trained norm outputs", s.layer_norms()),
        ("Mamba-1 input, per consumer", s.input_point(&[Role::SsmIn], s.spec.hidden_size, norm_out, false)),
        ("in_proj output: x, z", A * 2 * d),
        ("convolution output", A * d),
        ("x_proj output: dt, B, C; dt_proj output", A * (la.dt_rank + 2 * la.key_head_dim + d)),
        ("scan output before out_proj", A * d),
    ];
    mlp_block_terms(s, layer, terms)
}

/// A Gated DeltaNet layer (transformers `Qwen3NextGatedDeltaNet` on its fast path: causal-conv1d
/// and flash-linear-attention's `chunk_gated_delta_rule` with in-kernel q/k L2 norm, and FLA's
/// fused gated RMSNorm), per token: the norms; the input of `in_proj_qkvz` and `in_proj_ba` per
/// consumer; the convolution's input (q, k and v, 16-bit; `causal_conv1d_fn` saves it and
/// recomputes its SiLU); what the delta-rule kernel saves — q and k L2-normalised and repeated to
/// every value head, v, the fp32 decay `g` and L2-norm reciprocals, β (its sigmoid output) and
/// the within-chunk matrix `A` (64 per value head, 16-bit); the decay's fp32 softplus input; the
/// gated norm's input, its gate z and fp32 reciprocal norm; `out_proj`'s input per consumer.
/// Qwen3-Next-80B-A3B under LoRA on all linears (bf16), per layer and token: norms 2·4·2048; the
/// projection input 2·2048; conv input 2·8192; q, k 2·2·4096 and v 2·4096; g 4·32, rstd 8·32,
/// β 2·32, A 2·32·64; softplus input 4·32; norm input and z 2·2·4096 and rstd 4·32; out_proj
/// input 2·4096: 90,816 B beside its MoE terms.
fn linear_attention_layer_terms(s: &ActivationSetup, la: LinearAttention, layer: u64) -> Vec<Term> {
    let spec = s.spec;
    let h = spec.hidden_size;
    let norm_out = if s.autocast { 4 } else { A };
    let (heads, vd) = (la.num_value_heads, la.value_dim());
    let per_head_q = heads * la.key_head_dim;
    let terms: Vec<Term> = vec![
        ("norm inputs (RMSNorm: fp32 upcast) and trained norm outputs", s.layer_norms()),
        ("linear-attention input, per consumer", s.input_point(&linear_attention_inputs(la), h, norm_out, false)),
        ("convolution input: q, k, v (causal-conv1d)", A * la.conv_dim()),
        ("delta rule: L2-normed q and k per value head, v", A * (2 * per_head_q + vd)),
        ("delta rule: fp32 decay and L2 reciprocals, β, chunk matrix A", heads * (4 + 8 + A + A * 64)),
        ("decay: fp32 softplus input", 4 * heads),
        ("gated norm: input, gate z, fp32 reciprocal norm", 2 * A * vd + 4 * heads),
        ("out_proj input, per consumer", s.input_point(&[Role::SsmOut], vd, A, false)),
    ];
    mlp_block_terms(s, layer, terms)
}

/// LitGPT's attention (lit_gpt/model.py and lora.py): q, k and v are one `attn` linear in every
/// model, with one `LoRAQKVLinear` adapter for whichever of q, k, v are enabled. Its dropout runs
/// once on the shared input (one dropped copy and mask, not one per adapted projection); its
/// `zero_pad` scatters the adapter output into a qkv-wide tensor with `index_copy`, whose backward
/// keeps the scattered source (the enabled widths, 16-bit). With as many KV heads as query heads,
/// v stays a strided view of the fused qkv output, so SDPA saving v keeps the whole qkv buffer;
/// grouped-query K and V are expanded to every query head and copied first. Llama-2-7B, LoRA on
/// query and value, dropout 0.05: one 3·h dropout save instead of peft's two (−3·h), the index_copy
/// source 2·2·h, the rest of the qkv buffer 2·2·h: 5·h = 20,480 B more per layer and token than
/// transformers + peft. Also says whether the input itself (norm dtype) is saved.
fn litgpt_attention_terms(s: &ActivationSetup, q_w: u64, k_w: u64, v_w: u64, norm_out: u64) -> (Vec<Term>, bool) {
    let spec = s.spec;
    let h = spec.hidden_size;
    let enabled: u64 = [(Role::AttnQ, q_w), (Role::AttnK, k_w), (Role::AttnV, v_w), (Role::AttnQkv, q_w + k_w + v_w)]
        .iter()
        .filter(|(r, _)| s.targets.is_some_and(|t| t.covers_role(*r)))
        .map(|&(_, w)| w)
        .sum::<u64>()
        .min(q_w + k_w + v_w);
    let adapter = enabled > 0;
    let mut consumers = Vec::new();
    if s.base_trainable || s.frozen_saves_input {
        consumers.push(A);
    }
    let adapter_dtype = if s.autocast { A } else { s.adapter_bytes };
    let dropout = if adapter && s.lora_dropout { adapter_dtype + 1 } else { 0 };
    if adapter && !s.lora_dropout {
        consumers.push(adapter_dtype);
    }
    let shared = consumers.contains(&norm_out) as u64 * norm_out;
    let copies: u64 = consumers.iter().filter(|&&b| b != norm_out).sum();
    let grouped = spec.num_kv_heads < spec.num_heads;
    let qkv_saved = if grouped { A * 4 * q_w } else { A * (2 * q_w + k_w + v_w) + A * (q_w + k_w) };
    let terms = vec![
        ("attention input: base and one qkv adapter (one dropout)", (shared + copies + dropout) * h),
        ("LoRA qkv zero_pad: index_copy keeps its source", if adapter { A * enabled } else { 0 }),
        (
            if grouped {
                "q, expanded k and v, and the attention output (SDPA)"
            } else {
                "q, k after RoPE, the whole fused qkv (v is a view of it) and the attention output"
            },
            qkv_saved,
        ),
        ("softmax log-sum-exp, fp32 per head", 4 * spec.num_heads),
        ("o_proj input (shares the attention output)", s.input_point(&[Role::AttnOutput], q_w, A, true)),
    ];
    (terms, shared > 0)
}

/// The feed-forward block's saved intermediates.
fn mlp_terms(s: &ActivationSetup, layer: u64) -> Vec<Term> {
    let spec = s.spec;
    let units = if spec.mlp == MlpKind::Gated { 3 } else { 1 };
    let down = |i: u64| s.input_point(&[Role::FfnDown], i, A, false);
    let Some(moe) = spec.moe.filter(|_| spec.is_moe_layer(layer)) else {
        let i = spec.layer_intermediate(layer);
        return vec![("MLP intermediates (gate, SiLU, up / GELU input)", units * A * i), ("down_proj input", down(i))];
    };
    // Gated experts keep gate, SiLU and up; squared-ReLU ones (Nemotron-H) the activation's input.
    // Routed experts: every token's k experts keep their own intermediates; the gathered expert
    // inputs are saved when the expert weights are trained; the router keeps fp32 logits and
    // probabilities. Shared experts as a dense MLP.
    let (k, e, sh) = (moe.experts_per_token, moe.expert_intermediate_size, moe.shared_intermediate_size);
    let gathered = if s.base_trainable { k * A * spec.hidden_size } else { 0 };
    vec![
        ("routed expert intermediates (k experts per token)", k * (units * A * e + down(e))),
        ("expert inputs gathered per (token, expert)", gathered),
        ("router logits and probabilities, fp32", 2 * 4 * moe.num_experts),
        ("shared expert intermediates", if sh > 0 { units * A * sh + down(sh) } else { 0 }),
        // `sigmoid(shared_expert_gate(x)) * shared_expert(x)` keeps both factors.
        ("shared expert output and its sigmoid gate", moe.shared_expert_gate as u64 * A * (spec.hidden_size + 1)),
    ]
}

/// Saved bytes per token after the last layer: final norm, lm_head input, fp32 log-probs.
/// LitGPT's LoRA script runs lm_head in chunks of 128 tokens (`lm_head_chunk_size`) and keeps
/// every chunk's bf16 logits, and its `chunked_cross_entropy` keeps each chunk's bf16
/// log-softmax: 2·V + 2·V, the same bytes as transformers' fp32 log-probabilities; its
/// bitsandbytes plugin quantizes lm_head, whose 4-bit matmul saves its input.
/// `loss_head` false: a value head (critic) or a chunked, recomputed loss, with nothing
/// vocabulary-sized kept.
pub fn output_terms(s: &ActivationSetup, tp: u64, loss_head: bool) -> Vec<Term> {
    let v = if loss_head { s.spec.vocab_size / tp } else { 0 };
    // A trained lm_head saves its 16-bit input (the norm output, or autocast's cast of it).
    let saves_input = s.base_trainable || (s.litgpt && s.frozen_saves_input);
    let lm_head = saves_input as u64 * A * s.spec.hidden_size;
    let mut terms = vec![("final norm", s.final_norm()), ("lm_head input (trained or 4-bit lm_head)", lm_head)];
    if s.adapter.is_some_and(|a| a.v2) {
        terms.push(("adapter v2: lm_head output + bias (the scale's input)", A * v));
    }
    if s.litgpt {
        terms.push(("logits, bf16, every 128-token chunk kept for the loss", A * v));
        terms.push(("log-softmax, bf16 (chunked_cross_entropy)", A * v));
    } else {
        terms.push(("log-probabilities, fp32 (logits upcast for the loss)", 4 * v));
    }
    terms
}

/// LitGPT's chunked loss: transients exist for one 128-token chunk at a time (`LITGPT_CHUNK`
/// tokens): backward writes the bf16 gradients of its log-softmax and of its logits (2·V + 2·V);
/// the forward's bf16 cross-entropy keeps nothing beyond the saved log-softmax.
pub fn litgpt_loss_transients(spec: &ModelSpec, tp: u64) -> (u64, u64) {
    (0, 2 * A * spec.vocab_size / tp)
}

/// LitGPT's `lm_head_chunk_size` in its fine-tuning scripts.
pub const LITGPT_CHUNK: u64 = 128;

/// Transient bytes per token at the loss, above what is saved: forward holds the 16-bit logits
/// and their fp32 upcast next to the log-probabilities; backward holds the fp32 gradient of the
/// log-probabilities and of the logits (measured on an H200: +250 MB and +334 MB for Llama-2-7B
/// at 1,304 tokens, i.e. (2 + 4)·V and 8·V).
pub fn loss_transients(spec: &ModelSpec, tp: u64) -> (u64, u64) {
    let v = spec.vocab_size / tp;
    ((A + 4) * v, 8 * v)
}

/// Chunked cross-entropy with recomputation (Liger's fused linear cross-entropy, Apple's Cut
/// Cross-Entropy; not torchtune's `CEWithChunkedOutputLoss`, which computes every chunk's logits
/// in the forward and chunks only the fp32 upcast): only a chunk's logits exist at a time, so nothing vocabulary-sized is saved; the forward holds one
/// chunk's 16-bit logits, fp32 upcast and log-probabilities ((A + 4 + 4)·V per token), the
/// backward recomputes them and adds their fp32 gradients (8·V). The hidden states feeding the
/// lm_head are kept for the recompute (A·h per token, unless a trained lm_head saves them anyway).
pub fn chunked_loss_transients(spec: &ModelSpec, tp: u64) -> (u64, u64) {
    let v = spec.vocab_size / tp;
    ((A + 8) * v, (A + 8 + 8) * v)
}

/// Transient bytes per token inside one layer: forward, the unsaved MLP product and outputs;
/// backward, the gradients of the MLP intermediates (gate, up and product: 3·i; squared-ReLU's
/// up and activation: 2·i) and of the residual stream. The widest MLP of the model counts: a
/// dense one, or a token's experts beside the shared expert.
pub fn layer_transients(s: &ActivationSetup) -> (u64, u64) {
    let spec = s.spec;
    let width = |mlp: &LayerMlp| match (mlp, spec.moe) {
        (LayerMlp::Moe, Some(m)) => m.experts_per_token * m.expert_intermediate_size + m.shared_intermediate_size,
        (LayerMlp::Absent, _) => 0,
        _ => spec.widest_intermediate(),
    };
    let i = spec.layer_mlp.iter().map(width).max().unwrap_or(0);
    let units = if spec.mlp == MlpKind::Gated { 3 } else { 2 };
    let h = spec.hidden_size;
    (A * (i + 2 * h), A * units * i + (s.residual() + A) * h)
}

pub fn sum(terms: &[Term]) -> u64 {
    terms.iter().map(|t| t.1).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::llama_2_7b;

    fn setup<'a>(spec: &'a ModelSpec, targets: Option<&'a LoraTargets>) -> ActivationSetup<'a> {
        ActivationSetup {
            spec,
            base_trainable: targets.is_none(),
            targets,
            adapter_bytes: 2,
            lora_dropout: false,
            frozen_saves_input: false,
            autocast: false,
            trainer_autocast: false,
            flash: true,
            seq: 1304,
            litgpt: false,
            adapter: None,
        }
    }

    /// The module doc's worked example.
    #[test]
    fn llama_2_7b_lora_qv_saves_139904_bytes_per_layer_token() {
        let spec = llama_2_7b();
        let t = LoraTargets::parse("q_proj,v_proj").unwrap();
        let s = setup(&spec, Some(&t));
        assert_eq!(sum(&layer_terms(&s, 0)), 139_904);
        let total = 32 * 1304 * 139_904 + 1304 * sum(&output_terms(&s, 1, true));
        assert_eq!(total, 6_026_190_848);
    }

    /// The DeltaNet doc's worked example: Qwen3-Next-80B-A3B, LoRA on every linear, bf16. Its
    /// MoE terms: 10 experts' intermediates 10·(3·2·512 + 2·512), fp32 router logits and
    /// probabilities 2·4·512, the shared expert 3·2·512 + 2·512 and its gated output 2·2049.
    #[test]
    fn qwen3_next_deltanet_layer_lora_terms() {
        let config = include_str!("../../../data/models/qwen3-next-80b-a3b.json");
        let spec = crate::model::config::parse_config(config, "q", "q").unwrap().spec;
        let t = LoraTargets::parse("all-linear").unwrap();
        let s = setup(&spec, Some(&t));
        let terms = layer_terms(&s, 0);
        let moe = 10 * (3 * 2 * 512 + 2 * 512) + 2 * 4 * 512 + (3 * 2 * 512 + 2 * 512) + 2 * 2049;
        let mlp_input = 2 * 2048;
        assert_eq!(sum(&terms), 90_816 + mlp_input + moe);
        // Layer 3 is gated full attention: its sigmoid gate and the gated o_proj input count.
        assert!(layer_terms(&s, 3).iter().any(|(name, b)| name.starts_with("output gate") && *b == 2 * 4096));
    }

    /// Full fine-tuning adds the norm outputs (2·2h), the trained linears' inputs (o_proj shares
    /// the attention output) and down's input (2i): 24h + 8i + lse = 186,496 B.
    #[test]
    fn full_fine_tuning_saves_every_linear_input() {
        let spec = llama_2_7b();
        assert_eq!(sum(&layer_terms(&setup(&spec, None), 0)), 24 * 4096 + 8 * 11008 + 128);
    }

    /// LitGPT's LoRA on query and value with dropout: one dropout save on the fused input (−3h
    /// against peft's two), zero_pad's index_copy source (+4h) and the rest of the fused qkv
    /// buffer kept by the v view (+4h); the head keeps bf16 logits and log-softmax (4·V, as
    /// transformers' fp32 log-probabilities). Grouped-query models copy expanded K and V instead.
    #[test]
    fn litgpt_lora_saves_5h_more_than_peft() {
        let spec = llama_2_7b();
        let t = LoraTargets::parse("q_proj,v_proj").unwrap();
        let peft = ActivationSetup { lora_dropout: true, ..setup(&spec, Some(&t)) };
        let lit = ActivationSetup { litgpt: true, ..peft };
        assert_eq!(sum(&layer_terms(&lit, 0)) - sum(&layer_terms(&peft, 0)), 5 * 4096);
        assert_eq!(sum(&output_terms(&lit, 1, true)), sum(&output_terms(&peft, 1, true)));
        let mut gqa = llama_2_7b();
        gqa.num_kv_heads = 8;
        let (peft, lit) = (ActivationSetup { spec: &gqa, ..peft }, ActivationSetup { spec: &gqa, ..lit });
        let qkv =
            |s: &ActivationSetup| layer_terms(s, 0).iter().filter(|t| t.0.starts_with("q, ")).map(|t| t.1).sum::<u64>();
        assert_eq!(qkv(&lit), 2 * 4 * 4096, "q, expanded k and v, output");
        assert_eq!(qkv(&peft), 2 * (2 * 4096 + 2 * 1024));
    }

    /// A trained Gemma norm keeps its fp32 normalised value (Gemma multiplies by 1 + weight in
    /// fp32): 4·h + 4·h per norm under full fine-tuning, against Llama's 4·h + 2·h.
    #[test]
    fn trained_gemma_norms_keep_fp32_outputs() {
        let text = r#"{"model_type": "gemma2", "hidden_size": 3584, "intermediate_size": 14336,
            "num_hidden_layers": 2, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 256, "vocab_size": 256000, "sliding_window": 4096}"#;
        let spec = crate::model::config::parse_config(text, "g", "test").unwrap().spec;
        let norms = |s: &ActivationSetup| layer_terms(s, 0).iter().find(|t| t.0.starts_with("norm inputs")).unwrap().1;
        assert_eq!(norms(&setup(&spec, None)), 4 * (4 + 4) * 3584);
        let llama = llama_2_7b();
        assert_eq!(norms(&setup(&llama, None)), 2 * (4 + 2) * 4096);
    }

    /// fp32 adapters (peft's default) cast the bf16 input to fp32 once per adapter: +6h over
    /// bf16 adapters for q and v (measured +24,608 B per layer and token on an H200).
    #[test]
    fn fp32_adapters_cast_their_input() {
        let spec = llama_2_7b();
        let t = LoraTargets::parse("q_proj,v_proj").unwrap();
        let bf16 = sum(&layer_terms(&setup(&spec, Some(&t)), 0));
        let fp32 = sum(&layer_terms(&ActivationSetup { adapter_bytes: 4, ..setup(&spec, Some(&t)) }, 0));
        assert_eq!(fp32 - bf16, 6 * 4096);
    }

    /// Under transformers' Trainer (autocast), fp32 adapters on a 16-bit base save bf16 copies of
    /// their inputs (peft's fp32 cast, cast back by autocast): 2·2h for q and v instead of the
    /// 2·4h fp32 copies of a loop without autocast; on a bitsandbytes base peft skips the cast
    /// under autocast and the adapters share the input the 4-bit matmul saves.
    #[test]
    fn trainer_autocast_saves_bf16_adapter_copies() {
        let spec = llama_2_7b();
        let t = LoraTargets::parse("q_proj,v_proj").unwrap();
        let fp32 = ActivationSetup { adapter_bytes: 4, ..setup(&spec, Some(&t)) };
        let trainer = ActivationSetup { trainer_autocast: true, ..fp32 };
        assert_eq!(sum(&layer_terms(&fp32, 0)) - sum(&layer_terms(&trainer, 0)), 4 * 4096);
        let qlora = ActivationSetup { frozen_saves_input: true, ..trainer };
        let bf16_qlora = ActivationSetup { frozen_saves_input: true, ..setup(&spec, Some(&t)) };
        assert_eq!(sum(&layer_terms(&qlora, 0)), sum(&layer_terms(&bf16_qlora, 0)));
    }

    /// LoRA dropout: q and v each save a dropped bf16 copy of the normed input and a bool mask
    /// (2 × 3h) instead of sharing the input itself (2h): +4h per layer and token.
    #[test]
    fn lora_dropout_saves_a_copy_and_a_mask_per_adapter() {
        let spec = llama_2_7b();
        let t = LoraTargets::parse("q_proj,v_proj").unwrap();
        let plain = sum(&layer_terms(&setup(&spec, Some(&t)), 0));
        let dropout = sum(&layer_terms(&ActivationSetup { lora_dropout: true, ..setup(&spec, Some(&t)) }, 0));
        assert_eq!(dropout - plain, 4 * 4096);
    }

    /// `qk_norms`' Qwen3-8B figure: full fine-tuning saves (4 + 2)·(4096 + 1024) B per layer and
    /// token for the q/k norms, LoRA (frozen norms) only their fp32 inputs; Gemma 3 keeps its
    /// normalised values in fp32; models without q/k norms save nothing here.
    #[test]
    fn qk_norms_save_fp32_q_and_k() {
        let spec = |model_type: &str| {
            let text = format!(
                r#"{{"model_type": "{model_type}", "hidden_size": 4096, "intermediate_size": 12288,
                "num_hidden_layers": 36, "num_attention_heads": 32, "num_key_value_heads": 8,
                "head_dim": 128, "vocab_size": 151936}}"#
            );
            crate::model::config::parse_config(&text, model_type, "test").unwrap().spec
        };
        let term = |s: &ActivationSetup| {
            layer_terms(s, 0).iter().filter(|t| t.0.starts_with("q/k norm")).map(|t| t.1).sum::<u64>()
        };
        let qwen3 = spec("qwen3");
        assert_eq!(term(&setup(&qwen3, None)), 30_720);
        let t = LoraTargets::parse("q_proj,v_proj").unwrap();
        assert_eq!(term(&setup(&qwen3, Some(&t))), 4 * 5120);
        assert_eq!(term(&setup(&spec("gemma3_text"), None)), 8 * 5120);
        assert_eq!(term(&setup(&llama_2_7b(), None)), 0);
    }

    /// Eager attention grows with the sequence: 6 B per score, 32 heads × 1304 keys.
    #[test]
    fn eager_attention_saves_scores() {
        let spec = llama_2_7b();
        let eager = ActivationSetup { flash: false, ..setup(&spec, None) };
        assert!(sum(&layer_terms(&eager, 0)) > 6 * 32 * 1304);
    }
}
