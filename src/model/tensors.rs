//! The exact tensor inventory of a model: every weight matrix, bias and norm vector, with its
//! shape, derived from a `ModelSpec`. Parameter counts, weight bytes per format and the GGUF
//! quantizer's per-tensor choices all work from this list.
//!
//! Shapes follow PyTorch's `nn.Linear` convention: `rows` = output features, `cols` = input
//! features, the contiguous dimension along which block quantization (GGUF, GPTQ groups) runs.
//!
//! Worked example, Llama-2-7B (h 4096, i 11008, 32 layers, vocab 32000, untied):
//! embeddings 32000·4096 = 131,072,000 and the same again for lm_head; per layer
//! 4·4096² (q,k,v,o) + 3·4096·11008 (gate,up,down) + 2·4096 (norms) = 202,383,360;
//! total 2·131,072,000 + 32·202,383,360 + 4096 (final norm) = 6,738,415,616.
//!
//! Phi-2 (h 2560, i 10240, 32 layers, vocab 51200, untied, biases everywhere, one LayerNorm per
//! layer): embeddings 131,072,000; per layer 4·(2560²+2560) (q,k,v,dense), 2·2560·10240 +
//! 10240 + 2560 (fc1, fc2) and 2·2560 (input_layernorm) = 78,671,360; final LayerNorm 5,120;
//! lm_head 131,072,000 plus its bias 51,200; total 2,779,683,840.
//!
//! Qwen3-8B (h 4096, i 12288, 36 layers, 32 heads and 8 KV heads of head_dim 128, vocab 151936,
//! untied, q/k norms): embeddings 622,329,856 and the same for lm_head; per layer q and o
//! 2·4096·4096, k and v 2·1024·4096, gate/up/down 3·4096·12288, norms 2·4096 and q_norm + k_norm
//! 2·128 = 192,946,432; total 2·622,329,856 + 36·192,946,432 + 4096 = 8,190,735,360.
//!
//! gpt-oss-20b (h 2880, 24 layers, 64 heads and 8 KV heads of head_dim 64, vocab 201088, untied,
//! 32 experts of intermediate 2880, 4 per token): embeddings 579,133,440 and the same for
//! lm_head; per layer q and o 2·4096·2880 and k and v 2·512·2880 with their biases (4096 + 512 +
//! 512 + 2880), 64 sinks, norms 2·2880, the router 32·2880 + 32 and 32 experts of gate_up
//! 5760·2880 + 5760 and down 2880·2880 + 2880 = 823,186,976; total 2·579,133,440 + 24 ·
//! 823,186,976 + 2880 = 20,914,757,184, the model card's 20.91B.
//!
//! Qwen3-Next-80B-A3B (h 2048, 48 layers: 36 Gated DeltaNet and 12 gated full attention, 512
//! experts of 512 and a shared expert of 512 in every layer, vocab 151936, untied): embeddings
//! 311,164,928 and the same for lm_head; a DeltaNet layer in_proj_qkvz 12288·2048, in_proj_ba
//! 64·2048, conv 8192·4, dt_bias and A_log 2·32, norm 128, out_proj 2048·4096 = 33,718,464; an
//! attention layer q_proj (queries and gate) 8192·2048, k and v 2·512·2048, o 2048·4096, q/k norms
//! 2·256 = 27,263,488; every layer's MoE block router 512·2048, experts 512·3·512·2048, shared
//! expert 3·512·2048 and its gate 2048 = 1,614,809,088, and two norms 2·2048; total
//! 2·311,164,928 + 36·33,718,464 + 12·27,263,488 + 48·(1,614,809,088 + 4096) + 2048 =
//! 79,674,391,296, the
//! published total of the same architecture without its multi-token-prediction layer
//! (Qwen3-Coder-Next; the 80B-A3B checkpoints add a 1,650,471,424-parameter MTP block that
//! engines load only for speculative decoding).
//!
//! A multimodal checkpoint (Gemma 3 4B/12B/27B) adds its vision encoder and projector after the
//! language model (`vision.rs`): roles of their own (`Role::is_vision`), no decoder layer, never
//! quantized, never in the active (per-token) parameters.

use super::spec::{
    Family, LayerAttention, LayerMlp, LinearAttention, LinearKind, MlpKind, ModelSpec, Moe, NormKind, QkNorm,
};
use serde::Serialize;

/// What a tensor does; names follow GGUF (`attn_q`, `ffn_down_exps`, ...), which is also what
/// llama.cpp's quantizer keys its per-tensor type choices on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    TokenEmbd,
    /// A learned absolute position-embedding table (GPT-2's `wpe`, OPT's `embed_positions`).
    PosEmbd,
    /// BLOOM's LayerNorm after the token embedding (`word_embeddings_layernorm`).
    TokenEmbdNorm,
    Output,
    OutputNorm,
    AttnNorm,
    /// Norms after attention / around the MLP (`ffn_norm`, Gemma 2's post norms).
    FfnNorm,
    AttnQ,
    AttnK,
    AttnV,
    /// Fused Q, K and V (Phi-3, Falcon, GPT-NeoX).
    AttnQkv,
    AttnOutput,
    /// Per-head RMSNorms of queries and keys (Qwen3, Gemma 3): `head_dim`-long weights.
    AttnQNorm,
    AttnKNorm,
    /// gpt-oss's per-head attention sink logits (`self_attn.sinks`): a `num_heads`-long vector,
    /// kept in the checkpoint's dtype like a norm, never quantized nor adapted.
    AttnSinks,
    /// MLA: query down-projection, its norm, and up-projection.
    AttnQA,
    AttnQANorm,
    AttnQB,
    /// MLA: joint KV down-projection (with the shared rope key), its norm, and up-projection.
    AttnKvAMqa,
    AttnKvANorm,
    AttnKvB,
    /// DeepSeek-V3.2's lightning indexer: `wq_b` (compressed query to the index heads), `wk`
    /// (hidden to the index key), the key's LayerNorm (weight and bias) and `weights_proj` (one
    /// weight per index head, kept in bf16 like a router).
    IndexerQB,
    IndexerK,
    IndexerKNorm,
    IndexerProj,
    FfnGate,
    FfnUp,
    /// Fused gate and up (Phi-3).
    FfnGateUp,
    FfnDown,
    /// MoE router (`ffn_gate_inp`) and its score-correction bias (`exp_probs_b`).
    FfnGateInp,
    ExpProbsB,
    FfnGateExps,
    FfnUpExps,
    /// Each routed expert's gate and up in one matrix (gpt-oss `experts.gate_up_proj`).
    FfnGateUpExps,
    FfnDownExps,
    FfnGateShexp,
    FfnUpShexp,
    FfnDownShexp,
    /// The shared expert's output gate (Qwen3-Next `shared_expert_gate`, `1 × hidden`).
    FfnGateInpShexp,
    /// Gated DeltaNet (`linear_attn.*`): the fused input projection to q, k, v and the output
    /// gate z (`in_proj_qkvz`), and to β and α (`in_proj_ba`). Mamba-2's `in_proj` (z, x, B, C,
    /// dt) is `SsmIn` too.
    SsmIn,
    SsmBa,
    /// Qwen3.5's split projections: q, k and v (`in_proj_qkv`), the output gate z (`in_proj_z`),
    /// β (`in_proj_b`) and α (`in_proj_a`).
    SsmInQkv,
    SsmInZ,
    SsmBeta,
    SsmAlpha,
    /// The depthwise causal convolution over q, k and v (`conv1d`, `conv_dim × kernel`; Mamba-2's
    /// has a bias).
    SsmConv1d,
    /// Per-value-head decay parameters (`dt_bias`, `A_log`).
    SsmDt,
    SsmA,
    /// Mamba-2's per-head skip connection (`D`; Mamba-1's per channel).
    SsmD,
    /// Mamba-1's `x_proj` (each token's dt, B and C from the convolved x).
    SsmX,
    /// Jamba's RMSNorms over dt, B and C (`dt_layernorm`, `b_layernorm`, `c_layernorm`).
    SsmInnerNorm,
    /// The gated RMSNorm over each value head (`norm`, `value_head_dim` long; Mamba-2's over all
    /// heads, `heads · head_dim`).
    SsmNorm,
    /// The output projection (`out_proj`, value_dim → hidden).
    SsmOut,
    /// A multi-token-prediction drafter's input projection (Qwen3-Next's `mtp.fc`: the token's
    /// embedding and the last hidden state, normed and concatenated, to hidden), left in 16 bits.
    MtpProj,
    /// Its norms: the two before `fc` and the one after its layers.
    MtpNorm,
    /// SigLIP vision encoder (`vision_tower`, see `vision.rs`): the patch-embedding convolution
    /// (`hidden × channels·patch²`, with bias) and the learned position embeddings.
    VisionPatchEmbd,
    VisionPosEmbd,
    /// The encoder's LayerNorms (`layer_norm1`, `layer_norm2`, `post_layernorm`): weight and bias.
    VisionNorm,
    /// The encoder's `q_proj`, `k_proj`, `v_proj`, `out_proj`, `fc1` and `fc2` (`nn.Linear`, with
    /// biases).
    VisionAttnQ,
    VisionAttnK,
    VisionAttnV,
    VisionAttnOutput,
    /// A Qwen ViT block's fused `attn.qkv`, its `attn.proj` and its MLP's `linear_fc1` and
    /// `linear_fc2` (all with biases): roles of their own, since peft's module names differ from
    /// SigLIP's.
    VisionAttnQkv,
    VisionAttnProj,
    VisionMlpFc1,
    VisionMlpFc2,
    VisionFfnUp,
    VisionFfnDown,
    /// Gemma 4's per-layer inputs (PLE, `ModelSpec::per_layer_input`): the second token table
    /// (`embed_tokens_per_layer`, a gather like the embedding), its projection from the hidden
    /// state (`per_layer_model_projection`) and that projection's norm; in each layer the gate
    /// from the hidden state (`per_layer_input_gate`) and the projection back
    /// (`per_layer_projection`).
    PerLayerEmbd,
    PerLayerModelProj,
    PerLayerProjNorm,
    PerLayerInpGate,
    PerLayerProj,
    /// Gemma 3's `multi_modal_projector`: the RMSNorm over the vision width and the bare
    /// `vision hidden × text hidden` projection parameter.
    MmSoftEmbNorm,
    MmInputProjection,
    /// Qwen's patch merger (`visual.merger`): `linear_fc1` over 2×2 merged patches and
    /// `linear_fc2` into the language model's width (with biases; its LayerNorm is `VisionNorm`).
    MmMergerUp,
    MmMergerDown,
}

impl Role {
    /// GGUF base name (`blk.N.` prefix and `.weight` / `.bias` suffix left out).
    pub fn gguf_name(self) -> &'static str {
        use Role::*;
        match self {
            TokenEmbd => "token_embd",
            PosEmbd => "position_embd",
            TokenEmbdNorm => "token_embd_norm",
            Output => "output",
            OutputNorm => "output_norm",
            AttnNorm => "attn_norm",
            FfnNorm => "ffn_norm",
            AttnQ => "attn_q",
            AttnK => "attn_k",
            AttnV => "attn_v",
            AttnQkv => "attn_qkv",
            AttnOutput => "attn_output",
            AttnQNorm => "attn_q_norm",
            AttnKNorm => "attn_k_norm",
            AttnSinks => "attn_sinks",
            AttnQA => "attn_q_a",
            AttnQANorm => "attn_q_a_norm",
            AttnQB => "attn_q_b",
            AttnKvAMqa => "attn_kv_a_mqa",
            AttnKvANorm => "attn_kv_a_norm",
            AttnKvB => "attn_kv_b",
            IndexerQB => "indexer.attn_q_b",
            IndexerK => "indexer.attn_k",
            IndexerKNorm => "indexer.k_norm",
            IndexerProj => "indexer.proj",
            FfnGate => "ffn_gate",
            FfnUp => "ffn_up",
            FfnGateUp => "ffn_gate_up",
            FfnDown => "ffn_down",
            FfnGateInp => "ffn_gate_inp",
            ExpProbsB => "exp_probs_b",
            FfnGateExps => "ffn_gate_exps",
            FfnUpExps => "ffn_up_exps",
            FfnGateUpExps => "ffn_gate_up_exps",
            FfnDownExps => "ffn_down_exps",
            FfnGateShexp => "ffn_gate_shexp",
            FfnUpShexp => "ffn_up_shexp",
            FfnDownShexp => "ffn_down_shexp",
            FfnGateInpShexp => "ffn_gate_inp_shexp",
            SsmIn => "ssm_in",
            // llama.cpp's qwen35 names.
            SsmInQkv => "attn_qkv",
            SsmInZ => "attn_gate",
            SsmBeta => "ssm_beta",
            SsmAlpha => "ssm_alpha",
            SsmBa => "ssm_ba",
            SsmConv1d => "ssm_conv1d",
            SsmDt => "ssm_dt",
            SsmA => "ssm_a",
            SsmD => "ssm_d",
            SsmX => "ssm_x",
            SsmInnerNorm => "ssm_dt_norm",
            SsmNorm => "ssm_norm",
            SsmOut => "ssm_out",
            MtpProj => "nextn.eh_proj",
            PerLayerEmbd => "per_layer_token_embd",
            PerLayerModelProj => "per_layer_model_proj",
            PerLayerProjNorm => "per_layer_proj_norm",
            PerLayerInpGate => "inp_gate",
            PerLayerProj => "proj",
            MtpNorm => "nextn.norm",
            // llama.cpp keeps these in a separate mmproj file (clip.cpp names; `v.ln` stands for
            // its `v.blk.N.ln1`, `ln2` and `v.post_ln`).
            VisionPatchEmbd => "v.patch_embd",
            VisionPosEmbd => "v.position_embd",
            VisionNorm => "v.ln",
            VisionAttnQ => "v.attn_q",
            VisionAttnK => "v.attn_k",
            VisionAttnV => "v.attn_v",
            VisionAttnOutput => "v.attn_out",
            VisionAttnQkv => "v.attn_qkv",
            // clip.cpp names every tower's output and MLP projections alike.
            VisionAttnProj => "v.attn_out",
            VisionMlpFc1 => "v.ffn_up",
            VisionMlpFc2 => "v.ffn_down",
            VisionFfnUp => "v.ffn_up",
            VisionFfnDown => "v.ffn_down",
            MmSoftEmbNorm => "mm.soft_emb_norm",
            MmInputProjection => "mm.input_projection",
            MmMergerUp => "mm.0",
            MmMergerDown => "mm.2",
        }
    }

    /// Norm weight vectors of the language model (kept in full precision by every format).
    pub fn is_norm(self) -> bool {
        use Role::*;
        matches!(
            self,
            OutputNorm
                | TokenEmbdNorm
                | AttnNorm
                | FfnNorm
                | AttnQNorm
                | AttnKNorm
                | AttnQANorm
                | AttnKvANorm
                | IndexerKNorm
                | SsmNorm
                | SsmInnerNorm
                | MtpNorm
                | PerLayerProjNorm
        )
    }

    /// Whether every tensor-parallel rank holds this tensor whole (vLLM, after Megatron-LM): the
    /// norms (SsmNorm aside: Mamba-2's gated norm spans all heads and vLLM shards it; Gated
    /// DeltaNet's is one head wide, a few KB, and counted as divided), MLA's down-projections
    /// (`q_a_proj`, `kv_a_proj_with_mqa`: `ReplicatedLinear`, fused as `fused_qkv_a_proj`), the
    /// MoE routers and score-correction bias, the shared expert's gate, and DeepSeek-V3.2's
    /// indexer (`wq_b`, `wk`, `weights_proj` are `ReplicatedLinear`). Kimi K2's 61 × (1536 + 576)
    /// × 7168 down-projections and 60 routers of 384 × 7168 are 2.2 GB in bf16 on each of 8 GPUs,
    /// not an eighth of it.
    pub fn replicated_under_tensor_parallel(self) -> bool {
        use Role::*;
        (self.is_norm() && self != SsmNorm)
            || matches!(
                self,
                AttnQA | AttnKvAMqa | FfnGateInp | ExpProbsB | FfnGateInpShexp | IndexerQB | IndexerK | IndexerProj
            )
    }

    /// A recurrent mixer's small parameters that no quantizer touches: the convolution and the
    /// per-head vectors (vLLM and llama.cpp keep them in 16 or 32 bits).
    pub fn is_ssm_param(self) -> bool {
        matches!(self, Role::SsmConv1d | Role::SsmDt | Role::SsmA | Role::SsmD)
    }

    /// The input side of the model, on the GPU (or host) that holds the embedding: the token
    /// embedding, a learned position table and BLOOM's embedding norm.
    pub fn is_embedding(self) -> bool {
        matches!(self, Role::TokenEmbd | Role::PosEmbd | Role::TokenEmbdNorm | Role::PerLayerEmbd)
    }

    /// Routed-expert weights (total parameters for memory, only `experts_per_token` for speed).
    pub fn is_routed_expert(self) -> bool {
        matches!(self, Role::FfnGateExps | Role::FfnUpExps | Role::FfnGateUpExps | Role::FfnDownExps)
    }

    /// Linear layers inside decoder blocks: the matrices weight-only quantizers (GPTQ, AWQ,
    /// bitsandbytes, FP8) replace. Embeddings, lm_head, norms, attention sinks, the routers (and
    /// the shared expert's one-row gate), Gated DeltaNet's convolution and decay vectors, and the
    /// vision encoder and projector are not among them.
    pub fn is_block_linear(self) -> bool {
        use Role::*;
        !self.is_norm()
            && !self.is_vision()
            && !self.is_ssm_param()
            && !matches!(
                self,
                TokenEmbd
                    | PosEmbd
                    | PerLayerEmbd
                    | PerLayerModelProj
                    | Output
                    | FfnGateInp
                    | FfnGateInpShexp
                    | ExpProbsB
                    | AttnSinks
                    | MtpProj
                    | IndexerProj
            )
    }

    /// The vision encoder and projector of a multimodal checkpoint: weights on the GPU that
    /// holds the embedding, in the checkpoint's 16-bit dtype under every format, run only on
    /// images (not in the active parameters, no text activations).
    pub fn is_vision(self) -> bool {
        use Role::*;
        self.is_vision_linear()
            || matches!(self, VisionPatchEmbd | VisionPosEmbd | VisionNorm | MmSoftEmbNorm | MmInputProjection)
    }

    /// The vision encoder's `nn.Linear` modules (SigLIP's q, k, v, out, fc1, fc2; Qwen's qkv,
    /// proj, fc1, fc2 and its merger's two): what peft's `all-linear` wraps besides the decoder's
    /// linears. The patch convolution, the position table and Gemma's projector parameter are
    /// not linears.
    pub fn is_vision_linear(self) -> bool {
        use Role::*;
        matches!(
            self,
            VisionAttnQ
                | VisionAttnK
                | VisionAttnV
                | VisionAttnOutput
                | VisionAttnQkv
                | VisionAttnProj
                | VisionMlpFc1
                | VisionMlpFc2
                | VisionFfnUp
                | VisionFfnDown
                | MmMergerUp
                | MmMergerDown
        )
    }
}

/// Gated DeltaNet's modules and parameters under `linear_attn` (transformers
/// `Qwen3NextGatedDeltaNet`, `Qwen3_5GatedDeltaNet`) and Mamba-2's (`in_proj`, `D`), by name:
/// what checkpoint classification and peft's module names share.
pub fn linear_attention_role(leaf: &str) -> Option<Role> {
    use Role::*;
    Some(match leaf {
        "in_proj_qkvz" => SsmIn,
        "in_proj_ba" => SsmBa,
        "in_proj_qkv" => SsmInQkv,
        "in_proj_z" => SsmInZ,
        "in_proj_b" => SsmBeta,
        "in_proj_a" => SsmAlpha,
        "conv1d" => SsmConv1d,
        "dt_bias" => SsmDt,
        "A_log" => SsmA,
        "D" => SsmD,
        // Mamba-1 (`MambaMixer`, `JambaMambaMixer`): `dt_proj` is llama.cpp's `ssm_dt` (weight and bias).
        "x_proj" => SsmX,
        "dt_proj" => SsmDt,
        "dt_layernorm" | "b_layernorm" | "c_layernorm" => SsmInnerNorm,
        "in_proj" => SsmIn,
        "norm" => SsmNorm,
        "out_proj" => SsmOut,
        _ => return None,
    })
}

/// Whether a tensor is a weight or a bias vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Part {
    Weight,
    Bias,
}

/// One tensor (or `copies` identical-shaped tensors, for routed experts).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TensorDesc {
    pub role: Role,
    pub part: Part,
    /// Decoder layer, or `None` for embeddings, lm_head, the final norm and the vision encoder
    /// and projector (whose role says which).
    pub layer: Option<u32>,
    /// Output features (1 for vectors).
    pub rows: u64,
    /// Input features: the contiguous row length.
    pub cols: u64,
    /// Number of tensors of this shape (routed experts per layer; 1 otherwise).
    pub copies: u64,
}

impl TensorDesc {
    /// Elements of all copies (saturating, so an absurd config cannot overflow; the resolver
    /// rejects implausible totals).
    pub fn elements(&self) -> u64 {
        self.rows.saturating_mul(self.cols).saturating_mul(self.copies)
    }

    /// A 1-D tensor: norm weights and biases.
    pub fn is_vector(&self) -> bool {
        self.rows == 1
    }
}

/// Every tensor of the model: the language model in checkpoint order, then the vision encoder and
/// projector of a multimodal checkpoint.
pub fn inventory(spec: &ModelSpec) -> Vec<TensorDesc> {
    let mut out = Vec::with_capacity(4 + spec.num_layers as usize * 16);
    let (h, v) = (spec.hidden_size, spec.vocab_size);
    out.push(matrix(Role::TokenEmbd, None, v, h));
    if spec.position_table > 0 {
        out.push(matrix(Role::PosEmbd, None, spec.position_table, h));
    }
    if spec.embedding_norm {
        push_norm(spec, Role::TokenEmbdNorm, None, h, &mut out);
    }
    if let Some(p) = spec.per_layer_input {
        let all = spec.num_layers * p.width;
        out.push(matrix(Role::PerLayerEmbd, None, p.vocab, all));
        out.push(matrix(Role::PerLayerModelProj, None, all, h));
        out.push(matrix(Role::PerLayerProjNorm, None, 1, p.width));
    }
    for layer in 0..spec.num_layers {
        push_layer(spec, layer as u32, &mut out);
    }
    push_norm(spec, Role::OutputNorm, None, h, &mut out);
    if !spec.tie_word_embeddings {
        out.push(output_matrix(spec));
    }
    if spec.biases.lm_head {
        out.push(bias(Role::Output, None, v));
    }
    if let Some(audio) = &spec.audio {
        audio.push_tensors(&mut out);
    }
    if let Some(vision) = &spec.vision {
        vision.push_tensors(&mut out);
    }
    out
}

/// The multi-token-prediction drafter of a checkpoint that carries one (`spec.mtp_layers`), as
/// vLLM loads it for `--speculative-config '{"method": "mtp"}'`: `fc` (DeepSeek-V3's `eh_proj`,
/// hidden × 2·hidden), its layers (full attention with the model's MLP or experts, as layers
/// `num_layers ..`) and three norms (DeepSeek-V3's `enorm`, `hnorm` and `shared_head.norm`); the
/// embedding and lm_head are the model's own. Qwen3.5-9B: 2·4096² + one gated
/// attention layer and MLP of 12,288 + 5 norms: 243,290,624, the Hub's total less the model's.
pub fn mtp_inventory(spec: &ModelSpec) -> Vec<TensorDesc> {
    let n = spec.mtp_layers;
    let (h, mut out) = (spec.hidden_size, Vec::new());
    if n == 0 {
        return out;
    }
    out.push(matrix(Role::MtpProj, None, h, 2 * h));
    (0..3).for_each(|_| push_norm(spec, Role::MtpNorm, None, h, &mut out));
    let drafter = spec.with_mtp_layers(n);
    for layer in spec.num_layers..drafter.num_layers {
        push_layer(&drafter, layer as u32, &mut out);
    }
    out
}

/// The lm_head matrix (vocab × hidden), which tied checkpoints share with the embedding.
pub fn output_matrix(spec: &ModelSpec) -> TensorDesc {
    matrix(Role::Output, None, spec.vocab_size, spec.hidden_size)
}

/// `tensors` with each fused QKV projection (weight and bias) listed as its q, k and v parts, as
/// LitGPT's `LoRAQKVLinear` sees them: its `lora_query`, `lora_key` and `lora_value` adapt slices
/// of the fused `attn` linear. Elements and row length are unchanged. StableLM-Alpha-3B (GPT-NeoX,
/// 32 heads of 128): `query_key_value` 12,288 × 4,096 becomes q, k and v of 4,096 × 4,096 each.
pub fn unfused_qkv(spec: &ModelSpec, tensors: &[TensorDesc]) -> Vec<TensorDesc> {
    let mut out = Vec::with_capacity(tensors.len() + 2 * spec.num_layers as usize);
    for t in tensors {
        if t.role != Role::AttnQkv {
            out.push(*t);
            continue;
        }
        let (q, kv, _) = spec.layer_qkv_widths(t.layer.map_or(0, u64::from));
        for (role, width) in [(Role::AttnQ, q), (Role::AttnK, kv), (Role::AttnV, kv)] {
            out.push(match t.part {
                Part::Bias => TensorDesc { role, cols: width, ..*t },
                _ => TensorDesc { role, rows: width, ..*t },
            });
        }
    }
    out
}

fn matrix(role: Role, layer: Option<u32>, rows: u64, cols: u64) -> TensorDesc {
    TensorDesc { role, part: Part::Weight, layer, rows, cols, copies: 1 }
}

fn bias(role: Role, layer: Option<u32>, len: u64) -> TensorDesc {
    TensorDesc { role, part: Part::Bias, layer, rows: 1, cols: len, copies: 1 }
}

fn push_norm(spec: &ModelSpec, role: Role, layer: Option<u32>, len: u64, out: &mut Vec<TensorDesc>) {
    out.push(TensorDesc { role, part: Part::Weight, layer, rows: 1, cols: len, copies: 1 });
    if spec.norm == NormKind::LayerNorm {
        out.push(bias(role, layer, len));
    }
}

/// A linear layer `cols -> rows`, with its bias when `has_bias`.
fn push_linear(role: Role, l: Option<u32>, rows: u64, cols: u64, has_bias: bool, out: &mut Vec<TensorDesc>) {
    out.push(matrix(role, l, rows, cols));
    if has_bias {
        out.push(bias(role, l, rows));
    }
}

fn push_layer(spec: &ModelSpec, layer: u32, out: &mut Vec<TensorDesc>) {
    let l = Some(layer);
    let h = spec.hidden_size;
    let mixer = spec.layer_attention[layer as usize];
    let mlp = spec.layer_mlp[layer as usize];
    if mixer != LayerAttention::Absent {
        push_norm(spec, Role::AttnNorm, l, h, out);
        match spec.linear_attention {
            Some(la) if mixer == LayerAttention::Linear => push_linear_attention(spec, la, l, out),
            // Falcon-H1: attention and the Mamba-2 mixer side by side after the one norm.
            Some(la) if spec.parallel_ssm => {
                push_attention(spec, l, out);
                push_linear_attention(spec, la, l, out);
            }
            _ => push_attention(spec, l, out),
        }
    }
    // Gemma 4 scales each layer's output by a learned scalar (`layer_scalar`, a checkpoint buffer)
    // and, with per-layer inputs, gates one into the residual (`per_layer_input_gate`,
    // `per_layer_projection`, `post_per_layer_input_norm`).
    if spec.family == Family::Gemma4 {
        out.push(matrix(Role::FfnNorm, l, 1, 1));
    }
    if let Some(p) = spec.per_layer_input {
        out.push(matrix(Role::PerLayerInpGate, l, p.width, h));
        out.push(matrix(Role::PerLayerProj, l, h, p.width));
        push_norm(spec, Role::FfnNorm, l, h, out);
    }
    // A block that holds its MLP alone (Nemotron-H) has that MLP's one norm.
    let mlp_norms = if mixer == LayerAttention::Absent { 1 } else { spec.norms_per_layer - 1 };
    match (mlp, spec.moe) {
        (LayerMlp::Absent, _) => {}
        (LayerMlp::Moe, Some(moe)) => {
            (0..mlp_norms).for_each(|_| push_norm(spec, Role::FfnNorm, l, h, out));
            push_linear(Role::FfnGateInp, l, moe.num_experts, h, moe.expert_biases, out);
            // Gemma 4's router scales its input per channel and its scores per expert.
            if spec.family == Family::Gemma4 {
                out.push(matrix(Role::FfnGateInp, l, 1, h));
                out.push(matrix(Role::FfnGateInp, l, 1, moe.num_experts));
            }
            if moe.router_bias {
                out.push(TensorDesc {
                    role: Role::ExpProbsB,
                    part: Part::Bias,
                    layer: l,
                    rows: 1,
                    cols: moe.num_experts,
                    copies: 1,
                });
            }
            push_routed_experts(spec, moe, l, out);
            let s = moe.shared_intermediate_size;
            if s > 0 {
                if spec.mlp == MlpKind::Gated {
                    out.push(matrix(Role::FfnGateShexp, l, s, h));
                }
                out.push(matrix(Role::FfnUpShexp, l, s, h));
                out.push(matrix(Role::FfnDownShexp, l, h, s));
                if moe.shared_expert_gate {
                    out.push(matrix(Role::FfnGateInpShexp, l, 1, h));
                }
            }
        }
        _ => {
            (0..mlp_norms).for_each(|_| push_norm(spec, Role::FfnNorm, l, h, out));
            push_dense_mlp(spec, l, out);
        }
    }
}

/// The routed experts of one layer: `num_experts` copies of each projection (gate and up, or
/// gpt-oss's fused gate_up of 2·intermediate rows), each copy with its bias when the experts are
/// affine.
fn push_routed_experts(spec: &ModelSpec, moe: Moe, l: Option<u32>, out: &mut Vec<TensorDesc>) {
    let (h, e) = (spec.hidden_size, moe.expert_intermediate_size);
    let experts = |role, rows, cols, out: &mut Vec<TensorDesc>| {
        let mut tensors = Vec::with_capacity(2);
        push_linear(role, l, rows, cols, moe.expert_biases, &mut tensors);
        out.extend(tensors.into_iter().map(|t| TensorDesc { copies: moe.num_experts, ..t }));
    };
    match spec.mlp {
        MlpKind::Gated if spec.fused_gate_up => experts(Role::FfnGateUpExps, 2 * e, h, out),
        MlpKind::Gated => {
            experts(Role::FfnGateExps, e, h, out);
            experts(Role::FfnUpExps, e, h, out);
        }
        // Nemotron-H's squared-ReLU experts: up and down only.
        MlpKind::Plain => experts(Role::FfnUpExps, e, h, out),
    }
    experts(Role::FfnDownExps, h, e, out);
}

fn push_attention(spec: &ModelSpec, l: Option<u32>, out: &mut Vec<TensorDesc>) {
    let h = spec.hidden_size;
    let b = spec.biases;
    if let Some(m) = spec.mla {
        let heads = spec.num_heads;
        match m.q_lora_rank {
            Some(r) => {
                out.push(matrix(Role::AttnQA, l, r, h));
                push_norm(spec, Role::AttnQANorm, l, r, out);
                out.push(matrix(Role::AttnQB, l, spec.q_width(), r));
            }
            None => out.push(matrix(Role::AttnQ, l, spec.q_width(), h)),
        }
        out.push(matrix(Role::AttnKvAMqa, l, m.kv_lora_rank + m.qk_rope_head_dim, h));
        push_norm(spec, Role::AttnKvANorm, l, m.kv_lora_rank, out);
        let kv_b = heads * (m.qk_nope_head_dim + m.v_head_dim);
        out.push(matrix(Role::AttnKvB, l, kv_b, m.kv_lora_rank));
        push_linear(Role::AttnOutput, l, h, heads * m.v_head_dim, b.attn_out, out);
        if let Some(ix) = m.indexer {
            // The index query comes from the compressed query (hidden without a q_lora_rank).
            out.push(matrix(Role::IndexerQB, l, ix.heads * ix.head_dim, m.q_lora_rank.unwrap_or(h)));
            out.push(matrix(Role::IndexerK, l, ix.head_dim, h));
            out.push(matrix(Role::IndexerKNorm, l, 1, ix.head_dim));
            out.push(bias(Role::IndexerKNorm, l, ix.head_dim));
            out.push(matrix(Role::IndexerProj, l, ix.heads, h));
        }
        return;
    }
    // (A Gemma 4 full layer has its own head size and KV heads, and with `attention_k_eq_v` no
    // `v_proj`: `ModelSpec::layer_qkv_widths`.)
    let (q, kv, v) = spec.layer_qkv_widths(l.map_or(0, u64::from));
    if spec.fused_qkv {
        push_linear(Role::AttnQkv, l, q + 2 * kv, h, b.qkv, out);
    } else {
        push_linear(Role::AttnQ, l, q * (1 + spec.attn_output_gate as u64), h, b.qkv, out);
        push_linear(Role::AttnK, l, kv, h, b.qkv, out);
        if v > 0 {
            push_linear(Role::AttnV, l, v, h, b.qkv, out);
        }
    }
    push_linear(Role::AttnOutput, l, h, q, b.attn_out, out);
    let head_dim = q / spec.num_heads.max(1);
    let (q_norm, k_norm) = match spec.qk_norm {
        QkNorm::None => (0, 0),
        QkNorm::PerHead => (head_dim, head_dim),
        QkNorm::Full => (q, kv),
    };
    // Every q/k norm is a weight alone (RMSNorm, or Cohere's and StableLM's bias-free LayerNorms).
    if q_norm > 0 {
        out.push(matrix(Role::AttnQNorm, l, 1, q_norm));
        out.push(matrix(Role::AttnKNorm, l, 1, k_norm));
    }
    if spec.attn_sinks {
        out.push(TensorDesc {
            role: Role::AttnSinks,
            part: Part::Weight,
            layer: l,
            rows: 1,
            cols: spec.num_heads,
            copies: 1,
        });
    }
}

/// A Gated DeltaNet layer (transformers `Qwen3NextGatedDeltaNet`, no biases): `in_proj_qkvz`
/// (2·key_dim + 2·value_dim rows) and `in_proj_ba` (2·value heads), or Qwen3.5's same rows in
/// four matrices (`in_proj_qkv`, `in_proj_z`, `in_proj_b`, `in_proj_a`), the convolution (conv_dim ×
/// kernel), `dt_bias` and `A_log` (one per value head), the gated norm (value_head_dim) and
/// `out_proj` (hidden × value_dim). Kimi Delta Attention (`low_rank_gates`) factors the output
/// gate and the decay through the gate rank and keeps `dt_bias` per channel: Kimi-Linear-48B-A3B's
/// layer (hidden 2304, 32 heads of 128, rank 128) is 3·4096·2304 + 128·2304 + 4096·128 +
/// 32·2304 + 128·2304 + 4096·128 + 12,288·4 + 4096 + 32 + 128 + 2304·4096 = 39,514,272.
fn push_linear_attention(spec: &ModelSpec, la: LinearAttention, l: Option<u32>, out: &mut Vec<TensorDesc>) {
    let h = spec.hidden_size;
    match la.kind {
        LinearKind::Mamba2 => return push_mamba2(spec, la, l, out),
        LinearKind::Mamba1 => return push_mamba1(spec, la, l, out),
        LinearKind::GatedDeltaNet => {}
    }
    let rank = la.low_rank_gates;
    if rank > 0 {
        // Kimi Delta Attention: q, k and v apart, the output gate g_b·g_a and the per-channel
        // decay f_b·f_a through `rank`, β per head.
        out.push(matrix(Role::SsmInQkv, l, la.conv_dim(), h));
        out.push(matrix(Role::SsmInZ, l, rank, h));
        out.push(matrix(Role::SsmInZ, l, la.value_dim(), rank));
        out.push(matrix(Role::SsmBeta, l, la.num_value_heads, h));
        out.push(matrix(Role::SsmAlpha, l, rank, h));
        out.push(matrix(Role::SsmAlpha, l, la.key_dim(), rank));
    } else if la.split_projections {
        out.push(matrix(Role::SsmInQkv, l, la.conv_dim(), h));
        out.push(matrix(Role::SsmInZ, l, la.value_dim(), h));
        out.push(matrix(Role::SsmBeta, l, la.num_value_heads, h));
        out.push(matrix(Role::SsmAlpha, l, la.num_value_heads, h));
    } else {
        out.push(matrix(Role::SsmIn, l, 2 * la.key_dim() + 2 * la.value_dim(), h));
        out.push(matrix(Role::SsmBa, l, 2 * la.num_value_heads, h));
    }
    out.push(matrix(Role::SsmConv1d, l, la.conv_dim(), la.conv_kernel));
    // (Kimi Delta Attention's dt_bias is per channel.)
    out.push(bias(Role::SsmDt, l, if rank > 0 { la.key_dim() } else { la.num_value_heads }));
    out.push(matrix(Role::SsmA, l, 1, la.num_value_heads));
    out.push(matrix(Role::SsmNorm, l, 1, la.value_head_dim));
    out.push(matrix(Role::SsmOut, l, h, la.value_dim()));
}

/// A Mamba-2 layer (transformers `NemotronHMamba2Mixer`, `GraniteMoeHybridMambaLayer`):
/// `in_proj` (z, x, B, C and one dt per head: `2·heads·head_dim + 2·groups·d_state + heads`
/// rows), the convolution over x, B and C with its bias, `dt_bias`, `A_log` and `D` (one per
/// head), the gated RMSNorm over `heads · head_dim` and `out_proj`. Nemotron-Nano-9B-v2
/// (hidden 4,480; 128 heads of 80; 8 groups of 128; kernel 4): in_proj 22,656 × 4,480, conv
/// 12,288 × 4 + 12,288, 3 × 128, norm 10,240, out_proj 4,480 × 10,240: 147,446,144 parameters.
fn push_mamba2(spec: &ModelSpec, la: LinearAttention, l: Option<u32>, out: &mut Vec<TensorDesc>) {
    let h = spec.hidden_size;
    push_linear(Role::SsmIn, l, la.fused_in_rows(), h, la.proj_bias, out);
    out.push(matrix(Role::SsmConv1d, l, la.conv_dim(), la.conv_kernel));
    if la.conv_bias {
        out.push(bias(Role::SsmConv1d, l, la.conv_dim()));
    }
    out.push(bias(Role::SsmDt, l, la.num_value_heads));
    out.push(matrix(Role::SsmA, l, 1, la.num_value_heads));
    out.push(matrix(Role::SsmD, l, 1, la.num_value_heads));
    if la.gated_norm {
        out.push(matrix(Role::SsmNorm, l, 1, la.value_dim()));
    }
    push_linear(Role::SsmOut, l, h, la.value_dim(), la.out_bias, out);
}

/// A Mamba-1 layer (transformers `MambaMixer`; Jamba's `JambaMambaMixer`): `in_proj` (x and z,
/// `2·d_inner` rows), the depthwise convolution over x with its bias, `x_proj` (dt, B and C:
/// `dt_rank + 2·d_state` rows), `dt_proj` (`d_inner × dt_rank` with a bias), `A_log`
/// (`d_inner × d_state`), `D` (`d_inner`), `out_proj`, and Jamba's dt/B/C norms. Mamba-2.8B
/// (hidden 2,560, d_inner 5,120, d_state 16, dt_rank 160, kernel 4): 26,214,400 + 25,600 +
/// 983,040 + 824,320 + 81,920 + 5,120 + 13,107,200 = 41,241,600, and the block's norm.
fn push_mamba1(spec: &ModelSpec, la: LinearAttention, l: Option<u32>, out: &mut Vec<TensorDesc>) {
    let (h, d, n, r) = (spec.hidden_size, la.value_dim(), la.key_head_dim, la.dt_rank);
    push_linear(Role::SsmIn, l, 2 * d, h, la.proj_bias, out);
    out.push(matrix(Role::SsmConv1d, l, d, la.conv_kernel));
    if la.conv_bias {
        out.push(bias(Role::SsmConv1d, l, d));
    }
    out.push(matrix(Role::SsmX, l, r + 2 * n, d));
    push_linear(Role::SsmDt, l, d, r, true, out);
    out.push(matrix(Role::SsmA, l, d, n));
    out.push(matrix(Role::SsmD, l, 1, d));
    push_linear(Role::SsmOut, l, h, d, la.out_bias, out);
    if la.inner_norms {
        for len in [r, n, n] {
            out.push(matrix(Role::SsmInnerNorm, l, 1, len));
        }
    }
}

fn push_dense_mlp(spec: &ModelSpec, l: Option<u32>, out: &mut Vec<TensorDesc>) {
    let i = spec.layer_intermediate(l.map_or(0, u64::from));
    let (h, bias) = (spec.hidden_size, spec.biases.mlp);
    match spec.mlp {
        MlpKind::Gated if spec.fused_gate_up => push_linear(Role::FfnGateUp, l, 2 * i, h, bias, out),
        MlpKind::Gated => {
            push_linear(Role::FfnGate, l, i, h, bias, out);
            push_linear(Role::FfnUp, l, i, h, bias, out);
        }
        MlpKind::Plain => push_linear(Role::FfnUp, l, i, h, bias, out),
    }
    push_linear(Role::FfnDown, l, h, i, bias, out);
}

/// Parameter counts of a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct ParamCounts {
    /// Every parameter (all experts).
    pub total: u64,
    /// Parameters one token passes through: routed experts counted `experts_per_token` times,
    /// the vision encoder and projector (which run on images only) not at all.
    pub active: u64,
}

/// Total and active parameter counts from the inventory.
pub fn param_counts(spec: &ModelSpec, tensors: &[TensorDesc]) -> ParamCounts {
    let total = tensors.iter().map(TensorDesc::elements).fold(0u64, u64::saturating_add);
    let per_token = spec.moe.map_or(1, |m| m.experts_per_token);
    let active = tensors
        .iter()
        .map(|t| match t.role {
            r if r.is_vision() => 0,
            r if r.is_routed_expert() => t.elements() / t.copies * per_token,
            _ => t.elements(),
        })
        .fold(0u64, u64::saturating_add);
    ParamCounts { total, active }
}

/// Tokens of KV cache a layer holds for a sequence of `context` tokens.
pub fn cached_tokens(attention: LayerAttention, context: u64) -> u64 {
    match attention {
        LayerAttention::Full => context,
        LayerAttention::Sliding { window: cap } | LayerAttention::Chunked { chunk: cap } => context.min(cap),
        LayerAttention::Linear | LayerAttention::Absent => 0,
    }
}
