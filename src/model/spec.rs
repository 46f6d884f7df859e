//! `ModelSpec`: the architecture of a decoder-only transformer, as far as memory and speed care.
//!
//! A spec is built from a Hugging Face `config.json` (see `config.rs`) or from GGUF metadata, and
//! is turned into an exact list of tensors by `tensors.rs`. Every shape the planner needs comes
//! from here; nothing is guessed from the model's name.

use super::vision::{AudioTower, VisionTower};
use serde::Serialize;

/// The model families whose `config.json` headroom understands (`model_type` in the config).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    Llama,
    Mistral,
    Mixtral,
    Qwen2,
    Gemma,
    Gemma2,
    /// Microsoft phi-1, phi-1.5, phi-2 (`PhiForCausalLM`).
    Phi,
    Phi3,
    Falcon,
    GptNeox,
    DeepseekV2,
    DeepseekV3,
    /// Qwen3 dense (`Qwen3ForCausalLM`): Llama-like with per-head q/k RMSNorms.
    Qwen3,
    /// Qwen3 mixture of experts (`Qwen3MoeForCausalLM`).
    Qwen3Moe,
    /// Gemma 3's language model (`Gemma3ForCausalLM`; `Gemma3ForConditionalGeneration` nests it in
    /// `text_config`, beside the vision tower of `ModelSpec::vision`).
    Gemma3,
    /// OpenAI gpt-oss (`GptOssForCausalLM`): every layer a mixture of experts with biased router
    /// and experts (gate and up fused), q/k/v/o biases, per-head attention sinks, and sliding
    /// and full attention alternating.
    GptOss,
    /// Qwen3-Next (`Qwen3NextForCausalLM`): a hybrid of Gated DeltaNet linear-attention layers
    /// and gated full-attention layers (three to one), every layer a mixture of experts with a
    /// gated shared expert.
    Qwen3Next,
    /// Qwen3.5's dense language model (`Qwen3_5ForConditionalGeneration` nests it in
    /// `text_config`): Qwen3-Next's hybrid layers with split DeltaNet projections and an fp32
    /// recurrent state (`mamba_ssm_dtype`).
    Qwen35,
    /// Qwen3.5's mixture-of-experts language model (`Qwen3_5MoeForConditionalGeneration`).
    Qwen35Moe,
    /// NVIDIA Nemotron-H (`NemotronHForCausalLM`: Nemotron-H, Nemotron Nano 2, Nemotron 3 Nano):
    /// every block holds one mixer with its own RMSNorm — a Mamba-2 layer, attention (no
    /// position encoding), a squared-ReLU MLP or a mixture of squared-ReLU experts — as the
    /// config's `hybrid_override_pattern` (`M`, `*`, `-`, `E`) lays them out.
    NemotronH,
    /// IBM Granite 4.0 (`GraniteMoeHybridForCausalLM`): Mamba-2 or attention layers by
    /// `layer_types`, each followed by a SwiGLU shared MLP and, when `num_local_experts` > 0,
    /// a mixture of SwiGLU experts.
    GraniteMoeHybrid,
    /// Zhipu GLM-4-0414 and GLM-Z1 (`Glm4ForCausalLM`): Llama-like attention with q/k/v biases,
    /// four RMSNorms per layer (before and after attention and the MLP) and a fused `gate_up_proj`.
    Glm4,
    /// Zhipu GLM-4.5, 4.5-Air, 4.6 and 4.7 (`Glm4MoeForCausalLM`): grouped-query attention of
    /// 128-wide heads (96 heads over a 5,120 or 4,096 hidden) with q/k/v biases and optional
    /// per-head q/k norms, DeepSeek-V3's MoE (sigmoid router with score-correction bias, one
    /// shared expert, leading dense layers) and a multi-token-prediction layer.
    Glm4Moe,
    /// AI2 OLMo 2 (`Olmo2ForCausalLM`): Llama's shapes with norms after attention and the MLP
    /// instead of before (`post_attention_layernorm`, `post_feedforward_layernorm`), and q/k
    /// RMSNorms over the whole projection (`num_heads · head_dim`, `num_kv_heads · head_dim`).
    Olmo2,
    /// AI2 Olmo 3 (`Olmo3ForCausalLM`): OLMo 2 with a 4096-token window on three layers of four.
    Olmo3,
    /// Cohere Command R and R+ (`CohereForCausalLM`): attention and MLP in parallel after one
    /// bias-free LayerNorm, tied embeddings; R+ norms q and k per head with weights of their own
    /// (`use_qk_norm`: `[heads, head_dim]`).
    Cohere,
    /// Cohere Command R7B and Command A (`Cohere2ForCausalLM`): Cohere's parallel layer, a
    /// 4096-token window with RoPE on three layers of four and full attention without position
    /// encoding on the fourth.
    Cohere2,
    /// IBM Granite 3 dense (`GraniteForCausalLM`): Llama's shapes with scalar multipliers.
    Granite,
    /// Hugging Face SmolLM3 (`SmolLM3ForCausalLM`): Llama's shapes, tied embeddings, every
    /// fourth layer without RoPE.
    SmolLM3,
    /// ByteDance Seed-OSS (`SeedOssForCausalLM`, Seed-OSS-36B): Llama's dense GQA decoder with
    /// explicit 128-wide heads, q/k/v biased by `attention_bias` and o by `attention_out_bias`.
    SeedOss,
    /// Baidu ERNIE 4.5 dense (`Ernie4_5_ForCausalLM`, ERNIE-4.5-0.3B): Llama's GQA decoder with
    /// explicit heads, biases by `use_bias` (false in every release), tied embeddings.
    Ernie45,
    /// Baidu ERNIE 4.5 MoE (`Ernie4_5_MoeForCausalLM`: 21B-A3B, 300B-A47B): experts on layers
    /// `moe_layer_start_index..=moe_layer_end_index` at `moe_layer_interval` (the others dense),
    /// `moe_num_shared_experts` shared experts fused into one MLP, and a score-correction bias
    /// per expert (`moe_statics`) beside the router.
    Ernie45Moe,
    /// Meta Llama 4 (`Llama4ForConditionalGeneration`'s `text_config`, `Llama4ForCausalLM`): three
    /// layers of four attend within 8,192-token chunks with RoPE, the fourth to everything
    /// without; mixtures of 16 or 128 experts (one per token) beside a shared expert, in every
    /// layer (Scout) or every second (Maverick, whose other layers are dense).
    Llama4,
    /// MiniMax M2 (`MiniMaxM2ForCausalLM`: M2, M2.1, M2.5, M2.7): full attention in every layer
    /// with q/k RMSNorms over the whole projection (`qk_norm_type` "per_layer"), and 256 experts
    /// (8 per token, a sigmoid router with a score-correction bias) without a shared expert.
    MiniMaxM2,
    /// Qwen1.5-MoE and Qwen2-57B-A14B (`Qwen2MoeForCausalLM`): Qwen2's attention (q/k/v biases)
    /// and Qwen3-Next's MoE block (routed experts beside a gated shared expert).
    Qwen2Moe,
    /// BigCode StarCoder2 (`Starcoder2ForCausalLM`): LayerNorms with biases, biases on every
    /// projection, a plain GELU MLP (`c_fc`, `c_proj`), a sliding window on every layer.
    Starcoder2,
    /// Microsoft Phi-3.5-MoE (`PhiMoEForCausalLM`): Mixtral's experts behind LayerNorms with
    /// biases, biased attention projections and a biased lm_head.
    PhiMoe,
    /// AI2 OLMoE (`OlmoeForCausalLM`): 64 experts (8 per token) and OLMo 2's q/k norms over the
    /// whole projection, before the usual pre-norms.
    Olmoe,
    /// Stability AI StableLM 3B-4E1T and StableLM 2 (`StableLmForCausalLM`): LayerNorms with
    /// biases, optional q/k/v biases, optional per-head q/k LayerNorms and a parallel residual
    /// with one norm.
    StableLm,
    /// Shanghai AI Lab InternLM2 and 2.5 (`InternLM2ForCausalLM`, remote code): one fused `wqkv`,
    /// `wo`, and a SwiGLU of `w1`, `w3`, `w2`; biases on `wqkv` and `wo` unless `bias` is false.
    InternLm2,
    /// DeepSeek-V3.2 (`DeepseekV32ForCausalLM`): DeepSeek-V3 with a lightning indexer in every
    /// layer (`Mla::indexer`) that picks the `index_topk` tokens each query attends to.
    DeepseekV32,
    /// OpenAI GPT-2 (`GPT2LMHeadModel`): learned positions, LayerNorms and every linear with
    /// biases, a fused `c_attn`, a plain GELU MLP, tied embeddings.
    Gpt2,
    /// BigCode StarCoder and SantaCoder (`GPTBigCodeForCausalLM`): GPT-2's layer with multi-query
    /// attention (one K and one V head).
    GptBigCode,
    /// Meta OPT (`OPTForCausalLM`): learned positions (`max_position_embeddings + 2` rows),
    /// separate q/k/v with biases, a ReLU MLP (`fc1`, `fc2`), tied embeddings.
    Opt,
    /// BigScience BLOOM (`BloomForCausalLM`): ALiBi, a LayerNorm after the embedding, a fused
    /// `query_key_value`, biases everywhere, a 4·hidden GELU MLP, tied embeddings.
    Bloom,
    /// EleutherAI GPT-J (`GPTJForCausalLM`): attention and MLP in parallel after one LayerNorm,
    /// bias-free attention projections, a biased MLP and a biased, untied lm_head.
    GptJ,
    /// MosaicML MPT (`MptForCausalLM`): ALiBi, a fused `Wqkv`, and with `no_bias` (every release)
    /// no biases at all, LayerNorms included.
    Mpt,
    /// Mamba (`MambaForCausalLM`, state-spaces' `-hf` checkpoints): Mamba-1 blocks alone, one
    /// RMSNorm each, tied embeddings.
    Mamba,
    /// TII Falcon-Mamba (`FalconMambaForCausalLM`): Mamba-1 blocks (its dt/B/C norms have no
    /// weights); its file's `intermediate_size` is d_inner whatever `expand` says.
    FalconMamba,
    /// Mamba-2 alone (`Mamba2ForCausalLM`: Mamba-Codestral-7B).
    Mamba2,
    /// AI21 Jamba (`JambaForCausalLM`): Mamba-1 blocks with attention every
    /// `attn_layer_period`-th layer and experts every `expert_layer_period`-th.
    Jamba,
    /// TII Falcon-H1 (`FalconH1ForCausalLM`): every layer runs attention and a Mamba-2 mixer in
    /// parallel from one norm (`ModelSpec::parallel_ssm`), then a SwiGLU MLP.
    FalconH1,
    /// Google Gemma 4's language model (`Gemma4ForConditionalGeneration` nests it in
    /// `text_config`): Gemma 3's sliding and full layers, the full ones with their own head size
    /// and KV heads (`ModelSpec::global_attention`); 26B-A4B runs 128 experts beside each layer's
    /// dense MLP.
    Gemma4,
    /// Moonshot's Kimi Linear (`KimiLinearForCausalLM`): Kimi Delta Attention layers (Gated
    /// DeltaNet with a per-channel decay and low-rank gates) and, every fourth layer, DeepSeek's
    /// multi-head latent attention without RoPE, as `linear_attn_config` lists them (1-based);
    /// DeepSeek-V3's mixture of experts with a shared expert after a dense first layer.
    KimiLinear,
}

impl Family {
    /// The `model_type` string of the family's `config.json`.
    pub fn model_type(self) -> &'static str {
        match self {
            Family::Llama => "llama",
            Family::Mistral => "mistral",
            Family::Mixtral => "mixtral",
            Family::Qwen2 => "qwen2",
            Family::Gemma => "gemma",
            Family::Gemma2 => "gemma2",
            Family::Phi => "phi",
            Family::Phi3 => "phi3",
            Family::Falcon => "falcon",
            Family::GptNeox => "gpt_neox",
            Family::DeepseekV2 => "deepseek_v2",
            Family::DeepseekV3 => "deepseek_v3",
            Family::Qwen3 => "qwen3",
            Family::Qwen3Moe => "qwen3_moe",
            Family::Gemma3 => "gemma3_text",
            Family::GptOss => "gpt_oss",
            Family::Qwen3Next => "qwen3_next",
            Family::Qwen35 => "qwen3_5_text",
            Family::Qwen35Moe => "qwen3_5_moe_text",
            Family::NemotronH => "nemotron_h",
            Family::GraniteMoeHybrid => "granitemoehybrid",
            Family::Glm4 => "glm4",
            Family::Glm4Moe => "glm4_moe",
            Family::Olmo2 => "olmo2",
            Family::Olmo3 => "olmo3",
            Family::Cohere => "cohere",
            Family::Cohere2 => "cohere2",
            Family::Granite => "granite",
            Family::SmolLM3 => "smollm3",
            Family::SeedOss => "seed_oss",
            Family::Ernie45 => "ernie4_5",
            Family::Ernie45Moe => "ernie4_5_moe",
            Family::Llama4 => "llama4_text",
            Family::MiniMaxM2 => "minimax_m2",
            Family::Qwen2Moe => "qwen2_moe",
            Family::Starcoder2 => "starcoder2",
            Family::PhiMoe => "phimoe",
            Family::Olmoe => "olmoe",
            Family::StableLm => "stablelm",
            Family::InternLm2 => "internlm2",
            Family::DeepseekV32 => "deepseek_v32",
            Family::Gpt2 => "gpt2",
            Family::GptBigCode => "gpt_bigcode",
            Family::Opt => "opt",
            Family::Bloom => "bloom",
            Family::GptJ => "gptj",
            Family::Mpt => "mpt",
            Family::Mamba => "mamba",
            Family::FalconMamba => "falcon_mamba",
            Family::Mamba2 => "mamba2",
            Family::Jamba => "jamba",
            Family::FalconH1 => "falcon_h1",
            Family::Gemma4 => "gemma4_text",
            Family::KimiLinear => "kimi_linear",
        }
    }

    /// Families whose layers mix a recurrent mixer (Gated DeltaNet, Mamba-2) with attention.
    pub fn has_linear_attention(self) -> bool {
        matches!(
            self,
            Family::Qwen3Next
                | Family::Qwen35
                | Family::Qwen35Moe
                | Family::NemotronH
                | Family::GraniteMoeHybrid
                | Family::Mamba
                | Family::FalconMamba
                | Family::Mamba2
                | Family::Jamba
                | Family::FalconH1
                | Family::KimiLinear
        )
    }

    pub const ALL: [Family; 54] = [
        Family::Llama,
        Family::Mistral,
        Family::Mixtral,
        Family::Qwen2,
        Family::Gemma,
        Family::Gemma2,
        Family::Phi,
        Family::Phi3,
        Family::Falcon,
        Family::GptNeox,
        Family::DeepseekV2,
        Family::DeepseekV3,
        Family::Qwen3,
        Family::Qwen3Moe,
        Family::Gemma3,
        Family::GptOss,
        Family::Qwen3Next,
        Family::Qwen35,
        Family::Qwen35Moe,
        Family::NemotronH,
        Family::GraniteMoeHybrid,
        Family::Glm4,
        Family::Glm4Moe,
        Family::Olmo2,
        Family::Olmo3,
        Family::Cohere,
        Family::Cohere2,
        Family::Granite,
        Family::SmolLM3,
        Family::SeedOss,
        Family::Ernie45,
        Family::Ernie45Moe,
        Family::Llama4,
        Family::MiniMaxM2,
        Family::Qwen2Moe,
        Family::Starcoder2,
        Family::PhiMoe,
        Family::Olmoe,
        Family::StableLm,
        Family::InternLm2,
        Family::DeepseekV32,
        Family::Gpt2,
        Family::GptBigCode,
        Family::Opt,
        Family::Bloom,
        Family::GptJ,
        Family::Mpt,
        Family::Mamba,
        Family::FalconMamba,
        Family::Mamba2,
        Family::Jamba,
        Family::FalconH1,
        Family::Gemma4,
        Family::KimiLinear,
    ];
}

/// What one layer's feed-forward part is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerMlp {
    /// A dense MLP of `intermediate_size`.
    Dense,
    /// The mixture of experts of `ModelSpec::moe`.
    Moe,
    /// None: a Nemotron-H block that holds only its mixer.
    Absent,
}

impl LayerMlp {
    /// Every layer dense, or with experts from `moe.first_dense_layers` on.
    pub fn standard(layers: u64, moe: Option<&Moe>) -> Vec<LayerMlp> {
        (0..layers)
            .map(|l| match moe {
                Some(m) if l >= m.first_dense_layers => LayerMlp::Moe,
                _ => LayerMlp::Dense,
            })
            .collect()
    }
}

/// Feed-forward block shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MlpKind {
    /// gate, up and down projections (SwiGLU, GeGLU): three `h × i` matrices.
    Gated,
    /// up and down projections with a plain activation (GELU): two `h × i` matrices.
    Plain,
}

/// Normalisation layers: RMSNorm carries a weight vector, LayerNorm a weight and a bias.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NormKind {
    /// A weight vector only, the input upcast to fp32: RMSNorm, and Cohere's bias-free
    /// LayerNorm (`CohereLayerNorm`), which has the same parameters and saves the same tensors.
    RmsNorm,
    LayerNorm,
}

/// What one layer's attention keeps in the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LayerAttention {
    /// Attends to the whole context: caches every token.
    Full,
    /// Attends to the last `window` tokens only: caches at most that many.
    Sliding { window: u64 },
    /// Attends within fixed chunks of `chunk` tokens (Llama 4's `attention_chunk_size`, local
    /// layers): a token sees only the earlier tokens of its own chunk, so at most `chunk` are
    /// cached.
    Chunked { chunk: u64 },
    /// Linear attention or a state-space layer (Gated DeltaNet, Mamba-2:
    /// `ModelSpec::linear_attention`): no tokens cached, a fixed-size recurrent state and a short
    /// convolution window per sequence instead.
    Linear,
    /// No token mixer: a block that holds only its MLP or experts (Nemotron-H's `-` and `E`).
    Absent,
}

impl LayerAttention {
    /// Softmax attention with a KV cache (full, sliding or chunked).
    pub fn attends(self) -> bool {
        matches!(self, LayerAttention::Full | LayerAttention::Sliding { .. } | LayerAttention::Chunked { .. })
    }

    /// The most tokens a sequence keeps in this layer's cache: the window or the chunk; `None`
    /// for full attention (and for layers without a cache).
    pub fn token_cap(self) -> Option<u64> {
        match self {
            LayerAttention::Sliding { window } => Some(window),
            LayerAttention::Chunked { chunk } => Some(chunk),
            _ => None,
        }
    }

    /// A hybrid's layer when its config lists no `layer_types`: full attention on every
    /// `interval`-th layer, (i + 1) % interval == 0 (layers 3, 7, 11, ... for 4), linear
    /// attention elsewhere (`Qwen3NextConfig`, llama.cpp's `recurrent_layer_arr`).
    pub fn hybrid(layer: u64, interval: u64) -> LayerAttention {
        if (layer + 1) % interval == 0 {
            LayerAttention::Full
        } else {
            LayerAttention::Linear
        }
    }
}

/// Which recurrent mixer a `LayerAttention::Linear` layer runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LinearKind {
    GatedDeltaNet,
    /// Mamba-2's state-space duality layer (Dao & Gu 2024, arXiv 2405.21060; transformers
    /// `NemotronHMamba2Mixer`, `GraniteMoeHybridMambaLayer`). Per token, `in_proj` makes the gate
    /// `z` and `x` (`heads · head_dim` each), `B` and `C` (`n_groups · d_state` each) and one `dt`
    /// per head; x, B and C pass a causal depthwise convolution; each head keeps a
    /// `head_dim × d_state` state `S ← exp(dt·A)·S + dt·x·Bᵀ`, read `y = S·C + D·x`; a gated
    /// RMSNorm over `heads · head_dim` and `out_proj` follow. In `LinearAttention`'s terms the
    /// groups are the key heads (`B` the keys, `C` the queries, `d_state` their width) and the
    /// heads the value heads (`x` the values, `head_dim` their width): the same conv channels
    /// (`2·n_groups·d_state + heads·head_dim`) and state (`heads · head_dim · d_state`).
    /// Nemotron-Nano-9B-v2: 128 heads of 80, 8 groups of 128: conv_dim 12,288 and a state of
    /// 1,310,720 values per layer and sequence.
    Mamba2,
    /// Mamba-1's selective scan (Gu & Dao 2023, arXiv 2312.00752; transformers `MambaMixer`,
    /// `JambaMambaMixer`): `in_proj` makes x and the gate z (`d_inner` each), x passes a causal
    /// depthwise convolution, `x_proj` gives each token a `dt_rank`-wide dt and `d_state`-wide B
    /// and C, `dt_proj` widens dt back to `d_inner`; every channel keeps its own `d_state`-long
    /// state. In `LinearAttention`'s terms: no key heads, `d_inner` value heads of width 1, keys of
    /// width `d_state`: a convolution over `d_inner` channels and a `d_inner · d_state` state.
    /// Mamba-2.8B: d_inner 5,120, d_state 16: 81,920 state values per layer and sequence.
    Mamba1,
}

/// Gated DeltaNet linear attention (Yang et al. 2024, arXiv 2412.06464; transformers
/// `Qwen3NextGatedDeltaNet`). Per token, `in_proj_qkvz` makes queries and keys for the key heads
/// and values and an output gate `z` for the value heads, `in_proj_ba` a write strength β and a
/// decay α per value head; q, k and v pass a causal depthwise convolution of `conv_kernel` taps;
/// each value head keeps a `key_head_dim × value_head_dim` state matrix `S`, updated
/// `S ← α·S + β·(v − S·k)·kᵀ` and read `o = S·q`; a gated RMSNorm and `out_proj` follow.
///
/// Qwen3-Next-80B-A3B: 16 key heads and 32 value heads of 128, kernel 4: key_dim 2048,
/// value_dim 4096, conv_dim 8192; a state of 32·128·128 = 524,288 values per layer and sequence.
/// Mamba-2 layers fill the same fields (see `LinearKind::Mamba2`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct LinearAttention {
    pub kind: LinearKind,
    pub num_key_heads: u64,
    pub num_value_heads: u64,
    pub key_head_dim: u64,
    pub value_head_dim: u64,
    /// Taps of the causal convolution over q, k and v (`linear_conv_kernel_dim`).
    pub conv_kernel: u64,
    /// The input projections are four matrices (Qwen3.5's `in_proj_qkv`, `in_proj_z`,
    /// `in_proj_b`, `in_proj_a`) rather than Qwen3-Next's fused `in_proj_qkvz` and `in_proj_ba`.
    pub split_projections: bool,
    /// The checkpoint asks for an fp32 recurrent state (`mamba_ssm_dtype: "float32"`, Qwen3.5),
    /// which vLLM honours (`Qwen3_5ForConditionalGenerationConfig`); Nemotron-H's
    /// `mamba_ssm_cache_dtype`, which vLLM's `NemotronHForCausalLMConfig` reads (fp32 by default).
    pub state_fp32: bool,
    /// Mamba-2: the convolution has a bias per channel (`use_conv_bias`, `mamba_conv_bias`).
    pub conv_bias: bool,
    /// Mamba-2: `in_proj` and `out_proj` have biases (`use_bias`, `mamba_proj_bias`).
    pub proj_bias: bool,
    /// Mamba-2: tokens per chunk of the state-space-duality scan (`chunk_size`,
    /// `mamba_chunk_size`); vLLM's prefix caching aligns its blocks to it. Gated DeltaNet's
    /// kernels use chunks of 64.
    pub chunk_size: u64,
    /// Mamba-1: the width of dt before `dt_proj` (`time_step_rank`, `mamba_dt_rank`; "auto" is
    /// ⌈hidden / 16⌉); 0 for the other kinds.
    pub dt_rank: u64,
    /// Mamba-1 in Jamba: RMSNorms with weights over dt, B and C (`dt_layernorm`, `b_layernorm`,
    /// `c_layernorm`); Falcon-Mamba's are weightless buffers.
    pub inner_norms: bool,
    /// Mamba-2: a gated RMSNorm with weights before `out_proj` (Falcon-H1 only with
    /// `mamba_rms_norm`), and a bias on `out_proj` apart from `in_proj`'s (Falcon-H1's
    /// `projectors_bias`; elsewhere both follow `proj_bias`).
    pub gated_norm: bool,
    pub out_bias: bool,
    /// Kimi Delta Attention: the rank of its factored gates (0 elsewhere). The output gate is
    /// `g_b · g_a` (value_dim × rank, rank × hidden) instead of Gated DeltaNet's `in_proj_z`, the
    /// decay is per channel, `f_b · f_a`, instead of one α per head, and `dt_bias` is per
    /// channel too. Kimi-Linear-48B-A3B: rank 128 (the head size) over 32 heads of 128.
    pub low_rank_gates: u64,
}

impl LinearAttention {
    /// A Gated DeltaNet of this shape as Qwen3.5 lays it out (split projections, a 16-bit state,
    /// no biases, a gated norm, chunks of 64); callers change what their family does otherwise.
    pub fn gated_delta_net(key_heads: u64, value_heads: u64, key_dim: u64, value_dim: u64, kernel: u64) -> Self {
        LinearAttention {
            kind: LinearKind::GatedDeltaNet,
            num_key_heads: key_heads,
            num_value_heads: value_heads,
            key_head_dim: key_dim,
            value_head_dim: value_dim,
            conv_kernel: kernel,
            split_projections: true,
            state_fp32: false,
            conv_bias: false,
            proj_bias: false,
            chunk_size: 64,
            dt_rank: 0,
            inner_norms: false,
            gated_norm: true,
            out_bias: false,
            low_rank_gates: 0,
        }
    }

    /// Width of all queries (or all keys): `num_key_heads · key_head_dim`.
    pub fn key_dim(&self) -> u64 {
        self.num_key_heads * self.key_head_dim
    }

    /// Width of all values (and of the output gate `z`): `num_value_heads · value_head_dim`.
    pub fn value_dim(&self) -> u64 {
        self.num_value_heads * self.value_head_dim
    }

    /// Channels of the convolution: q, k and v together, `2·key_dim + value_dim`.
    pub fn conv_dim(&self) -> u64 {
        2 * self.key_dim() + self.value_dim()
    }

    /// Values of one sequence's recurrent state in one layer: `num_value_heads · d_k · d_v`.
    pub fn state_values(&self) -> u64 {
        self.num_value_heads * self.key_head_dim * self.value_head_dim
    }

    /// Values of one sequence's convolution state in one layer: the last `kernel − 1` inputs of
    /// every channel.
    pub fn conv_state_values(&self) -> u64 {
        self.conv_dim() * (self.conv_kernel - 1)
    }

    /// One of `tp` tensor-parallel ranks' share: (key width, value width, value heads). Heads are
    /// divided among the ranks; Mamba-2 with fewer groups than ranks (a single group) gives every
    /// rank the whole group, as vLLM pads the groups to `tp` (`extra_groups_for_head_shards`).
    pub fn per_rank(&self, tp: u64) -> (u64, u64, u64) {
        let tp = tp.min(self.num_value_heads).max(1);
        let groups = match self.kind {
            LinearKind::Mamba2 if self.num_key_heads % tp != 0 => tp,
            _ => self.num_key_heads,
        };
        (groups * self.key_head_dim / tp, self.value_dim() / tp, self.num_value_heads / tp)
    }

    /// Outputs of all input projections on one of `tp` ranks: DeltaNet's q, k, v, z, β and α,
    /// Mamba-2's z, x, B, C and dt.
    pub fn input_rows_per_rank(&self, tp: u64) -> u64 {
        let (k, v, heads) = self.per_rank(tp);
        match self.kind {
            LinearKind::GatedDeltaNet => 2 * k + 2 * v + 2 * heads,
            LinearKind::Mamba2 => 2 * k + 2 * v + heads,
            LinearKind::Mamba1 => 2 * v,
        }
    }

    /// Output rows of the fused input projection: DeltaNet's `in_proj_qkvz` (q, k, v, z), or
    /// Mamba-2's `in_proj` (z, x, B, C and one dt per head).
    pub fn fused_in_rows(&self) -> u64 {
        match self.kind {
            LinearKind::GatedDeltaNet => 2 * self.key_dim() + 2 * self.value_dim(),
            LinearKind::Mamba2 => self.value_dim() + self.conv_dim() + self.num_value_heads,
            LinearKind::Mamba1 => 2 * self.value_dim(),
        }
    }
}

/// Multi-head latent attention (DeepSeek-V2/V3): queries and keys/values go through low-rank
/// projections, and engines that support it cache only the compressed latent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Mla {
    /// Rank of the query compression; `None` means a plain `q_proj`.
    pub q_lora_rank: Option<u64>,
    pub kv_lora_rank: u64,
    pub qk_nope_head_dim: u64,
    pub qk_rope_head_dim: u64,
    pub v_head_dim: u64,
    /// DeepSeek-V3.2's lightning indexer (DeepSeek Sparse Attention), `None` elsewhere.
    pub indexer: Option<Indexer>,
}

/// DeepSeek-V3.2's lightning indexer (DeepSeek's `inference/model.py` `Indexer`): per layer
/// `wq_b` (the compressed query to `heads · head_dim`), `wk` (hidden to one `head_dim` key), a
/// LayerNorm with bias over that key and `weights_proj` (hidden to one weight per head, kept in
/// bf16). Its keys are cached beside the latent: vLLM stores them as 128 fp8 values and an fp32
/// scale (132 B per token and layer) whatever the cache dtype; llama.cpp in the cache's type.
/// DeepSeek-V3.2 (64 heads of 128, q_lora_rank 1536, hidden 7168): 1536·8192 + 7168·128 +
/// 2·128 + 7168·64 = 13,959,424 parameters per layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Indexer {
    pub heads: u64,
    pub head_dim: u64,
}

/// Mixture-of-experts feed-forward layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Moe {
    /// Routed experts per MoE layer.
    pub num_experts: u64,
    /// Routed experts each token uses.
    pub experts_per_token: u64,
    /// Intermediate size of one routed expert.
    pub expert_intermediate_size: u64,
    /// Intermediate size of the always-on shared expert block (0 when there is none).
    pub shared_intermediate_size: u64,
    /// The first layers keep a dense MLP of `intermediate_size` (DeepSeek `first_k_dense_replace`;
    /// a Qwen3-MoE `mlp_only_layers` of `[0, 1, ..., k-1]`).
    pub first_dense_layers: u64,
    /// The shared expert's output is scaled by `sigmoid(shared_expert_gate(x))`, a `1 × hidden`
    /// linear (Qwen2-MoE, Qwen3-Next).
    pub shared_expert_gate: bool,
    /// The router has a per-expert score-correction bias (DeepSeek-V3 `noaux_tc`).
    pub router_bias: bool,
    /// The router and every routed expert are affine, each with its own bias (gpt-oss:
    /// `router.bias` [experts], `gate_up_proj_bias` [experts, 2·intermediate] and
    /// `down_proj_bias` [experts, hidden]).
    pub expert_biases: bool,
}

/// The norms queries and keys pass before RoPE, by the length of their weights.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QkNorm {
    #[default]
    None,
    /// One `head_dim`-long weight shared by all heads (Qwen3, Gemma 3, GLM-4.5 with
    /// `use_qk_norm`).
    PerHead,
    /// A weight per channel of all heads: `num_heads · head_dim` for queries and
    /// `num_kv_heads · head_dim` for keys (OLMo 2's `q_norm`/`k_norm` over the whole projection;
    /// Cohere's per-head LayerNorms of `[heads, head_dim]` weights).
    Full,
}

impl QkNorm {
    pub fn present(self) -> bool {
        self != QkNorm::None
    }
}

/// Which linear layers carry a bias vector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Biases {
    pub qkv: bool,
    pub attn_out: bool,
    pub mlp: bool,
    /// The lm_head has a `vocab`-long bias (Phi's `nn.Linear(h, V, bias=True)`); it stays even
    /// when the weight is tied to the embedding.
    pub lm_head: bool,
}

/// The architecture of one model.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ModelSpec {
    /// Catalog id (`llama-2-7b`) or the name of the local file or directory it came from.
    pub id: String,
    pub family: Family,
    pub hidden_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    /// Key/value heads: equal to `num_heads` for MHA, fewer for GQA, 1 for MQA.
    pub num_kv_heads: u64,
    /// Per-head dimension of queries, keys and values (explicit `head_dim`, else hidden / heads).
    pub head_dim: u64,
    pub vocab_size: u64,
    /// Dense MLP intermediate size.
    pub intermediate_size: u64,
    /// Longest context the model was configured for, in tokens.
    pub max_context: u64,
    pub tie_word_embeddings: bool,
    pub mlp: MlpKind,
    pub norm: NormKind,
    /// Norm layers inside each decoder layer (2 for most, 4 for Gemma 2 and 3, 1 for parallel
    /// Falcon-7B and Phi, and for Nemotron-H, whose blocks hold one mixer each).
    pub norms_per_layer: u64,
    pub biases: Biases,
    /// Q, K and V live in one fused matrix in the checkpoint (Phi-3, Falcon, GPT-NeoX).
    pub fused_qkv: bool,
    /// Queries and keys pass a norm before RoPE (Qwen3's and Gemma 3's per-head `q_norm` and
    /// `k_norm`; OLMo 2's over all heads).
    pub qk_norm: QkNorm,
    /// Gate and up live in one fused matrix in the checkpoint: the dense MLP's (Phi-3) or each
    /// routed expert's (gpt-oss `experts.gate_up_proj`).
    pub fused_gate_up: bool,
    /// Each layer has a learned attention sink per query head (gpt-oss `self_attn.sinks`): a
    /// `num_heads`-long vector of logits that joins every softmax and is then dropped.
    pub attn_sinks: bool,
    /// Attention gates its output per element by `sigmoid` of a second query-sized projection
    /// (Qwen3-Next's `q_proj` has `2 · num_heads · head_dim` outputs: the queries and the gate).
    pub attn_output_gate: bool,
    /// One entry per layer.
    pub layer_attention: Vec<LayerAttention>,
    /// One entry per layer.
    pub layer_mlp: Vec<LayerMlp>,
    pub mla: Option<Mla>,
    /// The shape of the `LayerAttention::Linear` layers (Qwen3-Next's Gated DeltaNet,
    /// Nemotron-H's Mamba-2).
    pub linear_attention: Option<LinearAttention>,
    pub moe: Option<Moe>,
    /// Multi-token-prediction layers the checkpoint carries beside the model (Qwen3-Next's and
    /// Qwen3.5's `mtp.*`, DeepSeek-V3's `model.layers.61`): loaded only as a speculative-decoding
    /// drafter (`--mtp`).
    pub mtp_layers: u64,
    /// Bytes per element of the checkpoint's native dtype (`torch_dtype`): 2 for bf16/fp16.
    pub native_dtype_bytes: u64,
    /// The logits are soft-capped (`cap · tanh(logits / cap)`, Gemma 2's
    /// `final_logit_softcapping`): each step of it materialises another vocabulary-sized tensor.
    pub logit_softcap: bool,
    /// The vision encoder and projector of a multimodal checkpoint (Gemma 3 4B/12B/27B's
    /// `vision_config`); `None` for text-only models.
    pub vision: Option<VisionTower>,
    /// Rows of a learned absolute position-embedding table (GPT-2's and StarCoder's `wpe`,
    /// `n_positions`; OPT's `embed_positions`, `max_position_embeddings + 2`); 0 for models
    /// with rotary or ALiBi positions.
    pub position_table: u64,
    /// A LayerNorm right after the token embedding (BLOOM's `word_embeddings_layernorm`).
    pub embedding_norm: bool,
    /// Every attention layer also runs `linear_attention`'s Mamba-2 mixer in parallel, from the
    /// same norm, summing both into the residual (Falcon-H1): a KV cache and a recurrent state in
    /// every layer.
    pub parallel_ssm: bool,
    /// The full-attention layers' own shape where it differs from the sliding layers' (Gemma 4:
    /// `global_head_dim`, `num_global_key_value_heads`, `attention_k_eq_v`).
    pub global_attention: Option<GlobalAttention>,
    /// The last this many layers attend over an earlier layer's keys and values and cache none
    /// of their own (Gemma 4 E2B, E4B: `num_kv_shared_layers`; each reads the last layer of its
    /// kind before them).
    pub kv_shared_layers: u64,
    /// Per-layer input embeddings (Gemma 4 E2B, E4B: PLE): a second token table of
    /// `vocab × layers·width` gathered once per token and projected into every layer.
    pub per_layer_input: Option<PerLayerInput>,
    /// The KV-shared layers' MLPs are twice `intermediate_size` wide (Gemma 4
    /// `use_double_wide_mlp`: E2B).
    pub double_wide_mlp: bool,
    /// The audio encoder and projector of Gemma 4 E2B and E4B (`audio_config`); like `vision`,
    /// memory on the first GPU, never per-token work.
    pub audio: Option<AudioTower>,
}

/// Gemma 4's per-layer inputs (transformers `Gemma4TextModel`): `embed_tokens_per_layer`
/// (`vocab × layers·width`), `per_layer_model_projection` (`layers·width × hidden`) and its norm
/// (`width`); in each layer `per_layer_input_gate` (`width × hidden`), `per_layer_projection`
/// (`hidden × width`) and `post_per_layer_input_norm` (`hidden`). E2B: 262,144 × 35·256 =
/// 2,348,810,240 table parameters, which a token reads one row of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct PerLayerInput {
    /// `hidden_size_per_layer_input`.
    pub width: u64,
    /// `vocab_size_per_layer_input`.
    pub vocab: u64,
}

/// Gemma 4's full-attention layers (transformers `Gemma4TextAttention` with the config's
/// `per_layer_config`): heads of `head_dim` over `num_kv_heads` KV heads. With `k_eq_v` the
/// layer has no `v_proj`: the values are the key projection's output, which then takes its own
/// weightless norm and no RoPE, so every engine still caches keys and values apart. Gemma 4 31B:
/// 4 KV heads of 512 (sliding layers: 16 of 256), 8 KiB a token in bf16 (sliding: 16 KiB).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct GlobalAttention {
    /// Each head's width (`global_head_dim`), queries', keys' and values' alike.
    pub head_dim: u64,
    /// KV heads (`num_global_key_value_heads` under `attention_k_eq_v`, else `num_key_value_heads`).
    pub num_kv_heads: u64,
    /// No `v_proj`: the values are the key projection's output (`attention_k_eq_v`).
    pub k_eq_v: bool,
}

impl ModelSpec {
    /// Width of all query heads together (`num_heads · q head dim`).
    pub fn q_width(&self) -> u64 {
        match self.mla {
            Some(m) => self.num_heads * (m.qk_nope_head_dim + m.qk_rope_head_dim),
            None => self.num_heads * self.head_dim,
        }
    }

    /// Width of the keys (or values) of all KV heads together (`num_kv_heads · head_dim`).
    pub fn kv_width(&self) -> u64 {
        self.num_kv_heads * self.head_dim
    }

    /// KV heads and head size of a layer of this kind: a Gemma 4 full-attention layer's own
    /// (`global_attention`), every other layer's `num_kv_heads` and `head_dim`.
    pub fn kv_shape(&self, attention: LayerAttention) -> (u64, u64) {
        match self.global_attention {
            Some(g) if attention == LayerAttention::Full => (g.num_kv_heads, g.head_dim),
            _ => (self.num_kv_heads, self.head_dim),
        }
    }

    /// Parameters of the image and audio encoders and their projectors (none of a token's work).
    pub fn encoder_parameters(&self) -> u64 {
        self.vision.map_or(0, |v| v.parameters()) + self.audio.map_or(0, |a| a.parameters())
    }

    /// The kinds of attention layer the model has (full, each window or chunk), each once, in
    /// layer order.
    pub fn attention_kinds(&self) -> Vec<LayerAttention> {
        let mut kinds: Vec<LayerAttention> = Vec::new();
        for &a in self.layer_attention.iter().filter(|a| a.attends()) {
            if !kinds.contains(&a) {
                kinds.push(a);
            }
        }
        kinds
    }

    /// Whether layer `layer` keeps keys and values of its own (all but the last
    /// `kv_shared_layers`).
    pub fn caches_kv(&self, layer: u64) -> bool {
        layer.saturating_add(self.kv_shared_layers) < self.num_layers
    }

    /// Width of layer `layer`'s dense MLP: `intermediate_size`, doubled in the KV-shared layers
    /// under `double_wide_mlp`.
    pub fn layer_intermediate(&self, layer: u64) -> u64 {
        let wide = self.double_wide_mlp && self.kv_shared_layers > 0 && !self.caches_kv(layer);
        self.intermediate_size * (1 + wide as u64)
    }

    /// The widest dense MLP of any layer.
    pub fn widest_intermediate(&self) -> u64 {
        (0..self.num_layers).map(|l| self.layer_intermediate(l)).max().unwrap_or(self.intermediate_size)
    }

    /// Query, key and value widths of layer `layer`'s projections (values 0 for a Gemma 4 full
    /// layer whose values are its keys).
    pub fn layer_qkv_widths(&self, layer: u64) -> (u64, u64, u64) {
        let attention = self.layer_attention.get(layer as usize).copied().unwrap_or(LayerAttention::Full);
        self.kind_qkv_widths(attention)
    }

    /// Query, key and value projection widths of a layer of kind `attention` (see
    /// `layer_qkv_widths`).
    pub fn kind_qkv_widths(&self, attention: LayerAttention) -> (u64, u64, u64) {
        match self.global_attention {
            Some(g) if attention == LayerAttention::Full => {
                let kv = g.num_kv_heads * g.head_dim;
                (self.num_heads * g.head_dim, kv, if g.k_eq_v { 0 } else { kv })
            }
            _ => (self.q_width(), self.kv_width(), self.kv_width()),
        }
    }

    /// Whether layer `layer` has a mixture-of-experts MLP.
    pub fn is_moe_layer(&self, layer: u64) -> bool {
        self.moe.is_some() && self.layer_mlp.get(layer as usize) == Some(&LayerMlp::Moe)
    }

    /// Whether layer `layer` is a linear-attention (Gated DeltaNet, Mamba-2) layer.
    pub fn is_linear_layer(&self, layer: u64) -> bool {
        self.layer_attention.get(layer as usize) == Some(&LayerAttention::Linear)
    }

    /// Layers with softmax attention and a KV cache.
    pub fn attention_layers(&self) -> u64 {
        self.layer_attention.iter().filter(|a| a.attends()).count() as u64
    }

    /// Token mixers and MLPs over all layers: 2 per layer, except in Nemotron-H, whose blocks hold
    /// one each. Each ends in an all-reduce under tensor parallelism and costs about half a
    /// transformer layer's kernels (Nemotron-H-8B: 52 blocks, 52 sublayers; Llama-2-7B: 64).
    pub fn sublayers(&self) -> u64 {
        let mixers = self.layer_attention.iter().filter(|a| **a != LayerAttention::Absent).count() as u64;
        mixers + self.mlp_layers() + self.parallel_ssm_layers()
    }

    /// Layers with an MLP (dense or experts): all but Nemotron-H's mixer blocks and pure
    /// state-space models.
    pub fn mlp_layers(&self) -> u64 {
        self.layer_mlp.iter().filter(|m| **m != LayerMlp::Absent).count() as u64
    }

    /// Recurrent (Gated DeltaNet, Mamba) mixers: no KV cache, a fixed state per sequence. A layer
    /// of its own, or (Falcon-H1) one beside each attention layer.
    pub fn linear_layers(&self) -> u64 {
        self.recurrent_layers_in(0..self.num_layers)
    }

    /// Of the decoder layers in `layers`, those with a recurrent mixer ([`Self::linear_layers`]).
    pub fn recurrent_layers_in(&self, layers: std::ops::Range<u64>) -> u64 {
        let recurrent = |a: &LayerAttention| *a == LayerAttention::Linear || (self.parallel_ssm && a.attends());
        self.layer_attention[layers.start as usize..layers.end as usize].iter().filter(|a| recurrent(a)).count() as u64
    }

    /// Attention layers that also run a Mamba-2 mixer in parallel (Falcon-H1's, all of them).
    pub fn parallel_ssm_layers(&self) -> u64 {
        if self.parallel_ssm {
            self.attention_layers()
        } else {
            0
        }
    }

    /// Whether `tp` tensor-parallel ranks can share the heads: every rank a whole number of query
    /// heads and of KV heads (or KV heads replicated when there are fewer than ranks), and of a
    /// linear-attention layer's key and value heads (vLLM shards those by head).
    pub fn splits_heads(&self, tp: u64) -> bool {
        // (A pure state-space model has no heads of attention to share.)
        let kv_shares = |kv: u64| kv % tp == 0 || tp % kv == 0;
        let global_kv = self.global_attention.map_or(self.num_kv_heads, |g| g.num_kv_heads);
        let attention = self.attention_layers() == 0
            || (self.num_heads % tp == 0 && kv_shares(self.num_kv_heads) && kv_shares(global_kv));
        // Mamba-2's single group is replicated on every rank (vLLM `extra_groups_for_head_shards`).
        let linear = self.linear_attention.is_none_or(|la| {
            let groups = la.num_key_heads % tp == 0 || (la.kind == LinearKind::Mamba2 && la.num_key_heads == 1);
            groups && la.num_value_heads % tp == 0
        });
        tp <= 1 || (attention && linear)
    }

    /// The model with its `n` multi-token-prediction layers appended as layers `num_layers ..`:
    /// each a full-attention layer with the model's MLP or experts (Qwen3-Next's and Qwen3.5's
    /// `mtp.layers.N`), which is how vLLM's drafter joins the KV cache.
    pub fn with_mtp_layers(&self, n: u64) -> ModelSpec {
        let mut spec = self.clone();
        let mlp = if self.moe.is_some() { LayerMlp::Moe } else { LayerMlp::Dense };
        spec.num_layers += n;
        spec.layer_attention.extend((0..n).map(|_| LayerAttention::Full));
        spec.layer_mlp.extend((0..n).map(|_| mlp));
        spec
    }

    /// Output rows of the query projection: the queries, and with an output gate the gate too.
    pub fn q_proj_rows(&self) -> u64 {
        self.q_width() * (1 + self.attn_output_gate as u64)
    }

    /// Query heads per KV head (1 for MHA).
    pub fn gqa_group(&self) -> u64 {
        self.num_heads / self.num_kv_heads.max(1)
    }
}

impl ModelSpec {
    /// Elements of the largest weight matrix inside a decoder layer (one expert for MoE): the
    /// size of scratch buffers that hold one dequantized matrix.
    pub fn largest_layer_matrix(&self) -> u64 {
        let h = self.hidden_size;
        let dense = self.layer_mlp.contains(&LayerMlp::Dense) as u64 * self.widest_intermediate();
        let gate_up = if self.fused_gate_up { 2 } else { 1 };
        // (Gemma 4 fuses its experts' gate and up, not its dense MLP's.)
        let (dense_gate_up, expert_gate_up) =
            if self.family == Family::Gemma4 { (1, gate_up) } else { (gate_up, gate_up) };
        let moe = self.moe.map_or(0, |m| {
            (m.expert_intermediate_size * expert_gate_up).max(m.shared_intermediate_size * dense_gate_up)
        });
        let mlp_rows = (dense * dense_gate_up).max(moe);
        let q_rows = (0..self.num_layers).map(|l| self.layer_qkv_widths(l).0).max().unwrap_or(0)
            * (1 + self.attn_output_gate as u64);
        // The recurrent mixer's input projection: fused, or Qwen3.5's q, k, v.
        let linear_in = self
            .linear_attention
            .map_or(0, |la| h * if la.split_projections { la.conv_dim() } else { la.fused_in_rows() });
        (h * mlp_rows)
            .max(h * q_rows.max(self.q_proj_rows()))
            .max(h * (self.q_width() + 2 * self.kv_width()) * self.fused_qkv as u64)
            .max(linear_in)
    }
}
