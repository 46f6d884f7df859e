//! `gguf_to_spec`: a `ModelSpec` from GGUF metadata and tensor infos, so a `.gguf` file can be
//! planned without its `config.json`.
//!
//! Keys are llama.cpp's (`llama-arch.cpp`, `LLM_KV_NAMES`), prefixed with the architecture:
//! `llama.block_count`, `llama.embedding_length`, `llama.attention.head_count_kv` ... What the
//! metadata does not say is read from the tensors where it can be (tied embeddings = no
//! `output.weight`; the lm_head bias = an `output.bias` (phi2); biases, fused QKV, Falcon's second
//! norm and the q/k norms (`attn_q_norm`: Qwen3, Gemma 3) from layer 0's tensor names; the
//! vocabulary from `token_embd`'s shape) and otherwise follows the family's conventions (norm and
//! MLP kinds; phi2 has one LayerNorm per layer; Gemma 3's window pattern). GGUF does not record
//! the original checkpoint dtype; `native_dtype_bytes` is 2, the bf16/fp16 every supported family
//! ships in.
//!
//! DeepSeek MLA: current converters write `attention.key_length_mla` / `value_length_mla` for the
//! per-head dims (and `key_length` = kv_lora_rank + rope dim, the latent cache width); older ones
//! wrote the per-head dims in `key_length` / `value_length`. Both are read. `head_dim` of an MLA
//! spec is the query/key head dim (qk_nope + qk_rope), with `num_kv_heads = num_heads` as in the
//! Hugging Face config. A `deepseek2` file whose router has a score-correction bias
//! (`exp_probs_b`) is DeepSeek-V3 (`noaux_tc` routing); without it, DeepSeek-V2.
//!
//! gpt-oss (`gpt-oss`, llama.cpp `LLM_ARCH_OPENAI_MOE`): `attn_sinks` per layer, biases on the
//! router (`ffn_gate_inp.bias`) and on every expert projection (`ffn_*_exps.bias`), the experts'
//! gate and up split into `ffn_gate_exps` / `ffn_up_exps` by `convert_hf_to_gguf.py` (or kept as
//! `ffn_gate_up_exps` when it fuses them), and the 128-token window on even layers.
//!
//! Gated DeltaNet hybrids (`qwen3next`, `qwen35`, `qwen35moe`): see `linear_attention`; their
//! attention tensors (q/k norms, the gated `attn_q`) are read from the first attention layer.
//!
//! GLM (`glm4`, `glm4moe`): GLM-4's fused gate+up is one `ffn_up` of 2 × `feed_forward_length`
//! rows beside its four norms (`attn_norm`, `post_attention_norm`, `ffn_norm`, `post_ffw_norm`);
//! GLM-4.5's `block_count` includes its `nextn_predict_layers`, whose tensors (`blk.N.nextn.*`
//! and a whole MoE layer) stay in the file but are not loaded.

use super::{GgufFile, GgufValue};
use crate::model::local::LocalFileError;
use crate::model::spec::{
    Biases, Family, GlobalAttention, Indexer, LayerAttention, LayerMlp, LinearAttention, LinearKind, Mla, MlpKind,
    ModelSpec, Moe, NormKind, PerLayerInput, QkNorm,
};

/// GGUF architectures `gguf_to_spec` understands.
pub const SUPPORTED_ARCHITECTURES: [&str; 42] = [
    "llama",
    "qwen2",
    "qwen3",
    "qwen3moe",
    "gemma",
    "gemma2",
    "gemma3",
    "gemma4",
    "phi2",
    "phi3",
    "falcon",
    "gptneox",
    "deepseek2",
    "gpt-oss",
    "qwen3next",
    "qwen35",
    "qwen35moe",
    "glm4",
    "glm4moe",
    "olmo2",
    "command-r",
    "cohere2",
    "granite",
    "smollm3",
    "llama4",
    "minimax-m2",
    "qwen2moe",
    "starcoder2",
    "phimoe",
    "olmoe",
    "stablelm",
    "internlm2",
    "deepseek32",
    "gpt2",
    "gptj",
    "bloom",
    "starcoder",
    "mpt",
    "mamba",
    "mamba2",
    "jamba",
    "falcon-h1",
];

/// Most layers accepted (the largest real models have under 200).
const MAX_LAYERS: u64 = 1 << 16;

/// The architecture of the model in `file`.
pub fn gguf_to_spec(file: &GgufFile) -> Result<ModelSpec, LocalFileError> {
    let arch = file.architecture().ok_or_else(|| missing(file, "general.architecture"))?;
    let k = Keys { file, arch };
    let expert_count = k.opt("expert_count")?.unwrap_or(0);
    let family = family(&k, expert_count)?;
    let hidden = k.nonzero("embedding_length")?;
    let blocks = k.nonzero("block_count")?;
    if blocks > MAX_LAYERS {
        return Err(k.bad(format!("block_count {blocks} is over the limit of {MAX_LAYERS}")));
    }
    // GLM-4.5's converter counts its multi-token-prediction layers among the blocks (93 for
    // GLM-4.5: 92 + 1 NextN); llama.cpp skips them at load (`TENSOR_SKIP`) unless it drafts.
    // Other converters (DeepSeek's) drop those layers, so the count comes off only where the
    // family's converter keeps them or the last block holds a NextN tensor.
    let keeps_nextn =
        arch == "glm4moe" || file.tensor(&format!("blk.{}.nextn.eh_proj.weight", blocks.saturating_sub(1))).is_some();
    let nextn = if keeps_nextn { k.opt("nextn_predict_layers")?.unwrap_or(0) } else { 0 };
    let layers = match blocks.checked_sub(nextn) {
        Some(n) if n > 0 => n,
        _ => return Err(k.bad(format!("nextn_predict_layers {nextn} leaves none of the {blocks} blocks"))),
    };
    // Mamba-2 hybrids list heads and MLP widths per layer, Gemma 4 its KV heads (sliding and full)
    // and MLP widths (doubled in the KV-shared layers); elsewhere an array is refused.
    let gemma4 = (family == Family::Gemma4).then(|| gemma4_layers(&k, blocks)).transpose()?;
    let hybrid = matches!(family, Family::NemotronH | Family::GraniteMoeHybrid | Family::Jamba);
    let count = |name: &str| if hybrid { k.opt_max(name) } else { k.opt(name) };
    // Pure state-space files have no attention heads (llama.cpp writes 0 or nothing).
    let attention_free = matches!(family, Family::Mamba | Family::Mamba2);
    let heads = match count("attention.head_count")? {
        _ if attention_free => 1,
        Some(0) => return Err(k.bad(format!("'{arch}.attention.head_count' is 0"))),
        Some(n) => n,
        None => return Err(missing(file, &format!("{arch}.attention.head_count"))),
    };
    // Qwen3.5-MoE files have no dense feed-forward width: every layer is sparse.
    let feed_forward = match &gemma4 {
        Some(g) => Some(g.intermediate),
        None => count("feed_forward_length")?,
    };
    let intermediate = match feed_forward.filter(|&n| n > 0) {
        Some(n) => n,
        None if expert_count > 0 => k.req("expert_feed_forward_length")?,
        // (A pure state-space model has no MLP.)
        None if attention_free => 0,
        None => k.req("feed_forward_length")?,
    };
    let mut moe = moe(&k, expert_count, intermediate)?;
    // Gemma 4's dense MLP runs beside its experts, as a shared expert would.
    if let (Some(m), Some(_)) = (moe.as_mut(), &gemma4) {
        m.shared_intermediate_size = intermediate;
    }
    let has = |name: &str| file.tensor(name).is_some();
    let (layer_attention, layer_mlp) = layer_layout(&k, family, layers, moe.as_ref())?;
    // Attention tensors are read from the first attention layer (a hybrid's layer 0 is recurrent).
    let a = layer_attention.iter().position(|l| matches!(l, LayerAttention::Full | LayerAttention::Sliding { .. }));
    let a = a.unwrap_or(0);
    let in_attention = |name: &str| has(&format!("blk.{a}.{name}"));
    let q_rows = file.tensor(&format!("blk.{a}.attn_q.weight")).and_then(|t| t.dims.get(1).copied());
    let mla = mla(&k)?;
    // Nemotron-H's heads are not hidden / heads wide: without `key_length`, attn_q says.
    let head_dim = match (mla, &gemma4) {
        (Some(m), _) => m.qk_nope_head_dim + m.qk_rope_head_dim,
        (None, Some(g)) => g.head_dim,
        (None, None) => k
            .opt("attention.key_length")?
            .or(q_rows.map(|r| r / heads).filter(|_| matches!(family, Family::NemotronH | Family::FalconH1)))
            .unwrap_or(hidden / heads),
    };
    let num_kv_heads = match (mla, &gemma4) {
        (Some(_), _) => heads,
        (None, Some(g)) => g.kv_heads.unwrap_or(heads),
        (None, None) => count("attention.head_count_kv")?.filter(|&n| n > 0).unwrap_or(heads),
    };
    let linear = linear_attention(&k, family, &layer_attention)?;
    let legacy = matches!(family, Family::Gpt2 | Family::GptJ | Family::Bloom | Family::GptBigCode | Family::Mpt);
    let plain = legacy || matches!(family, Family::Falcon | Family::GptNeox | Family::Phi | Family::Starcoder2);
    // (MPT's bias-free LayerNorms are a weight alone, as an RMSNorm's.)
    let layer_norm = matches!(family, Family::PhiMoe | Family::StableLm)
        || (plain && (family != Family::Mpt || has("blk.0.attn_norm.bias")));
    Ok(ModelSpec {
        id: model_id(file, arch),
        family,
        hidden_size: hidden,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads,
        head_dim,
        vocab_size: vocab(&k)?,
        intermediate_size: intermediate,
        max_context: k.req("context_length")?,
        tie_word_embeddings: !has("output.weight"),
        mlp: if plain || family == Family::NemotronH { MlpKind::Plain } else { MlpKind::Gated },
        norm: if layer_norm { NormKind::LayerNorm } else { NormKind::RmsNorm },
        norms_per_layer: match family {
            Family::Gemma2 | Family::Gemma3 | Family::Glm4 => 4,
            Family::Gemma4 => 4 + 3 * has("blk.0.ffn_gate_inp.weight") as u64,
            Family::Falcon if !has("blk.0.attn_norm_2.weight") => 1,
            Family::Phi | Family::NemotronH | Family::Cohere | Family::Cohere2 | Family::GptJ => 1,
            Family::Mamba | Family::Mamba2 => 1,
            // StableLM's parallel residual has no second norm.
            Family::StableLm if !has("blk.0.ffn_norm.weight") => 1,
            _ => 2,
        },
        biases: Biases {
            qkv: in_attention("attn_qkv.bias") || in_attention("attn_q.bias"),
            attn_out: in_attention("attn_output.bias"),
            mlp: has("blk.0.ffn_down.bias"),
            lm_head: has("output.bias"),
        },
        fused_qkv: in_attention("attn_qkv.weight"),
        // A per-head norm's weight is head_dim long; OLMo 2's spans the projection and Command
        // R+'s holds a row per head ({head_dim, heads}).
        qk_norm: match file.tensor(&format!("blk.{a}.attn_q_norm.weight")).map(|t| t.dims.iter().product::<u64>()) {
            None => QkNorm::None,
            Some(len) if len == head_dim => QkNorm::PerHead,
            Some(_) => QkNorm::Full,
        },
        // llama.cpp stores Phi-3's and GLM-4's fused gate+up as one `ffn_up` of 2 × feed_forward_length rows;
        // gpt-oss's converter splits the experts' gate_up unless asked to fuse them.
        fused_gate_up: (matches!(family, Family::Phi3 | Family::Glm4) && !has("blk.0.ffn_gate.weight"))
            || has("blk.0.ffn_gate_up_exps.weight"),
        attn_sinks: in_attention("attn_sinks.weight"),
        // A gated attention's `attn_q` holds the queries and the gate: twice the heads' width.
        attn_output_gate: linear.is_some() && q_rows == Some(2 * heads * head_dim),
        layer_mlp,
        layer_attention,
        mla,
        linear_attention: linear,
        // llama.cpp's converters drop the multi-token-prediction layers (DeepSeek, Qwen) or its
        // loader skips them (GLM-4.5); `--mtp` is vLLM's.
        mtp_layers: 0,
        moe,
        native_dtype_bytes: 2,
        logit_softcap: file.get(&format!("{arch}.final_logit_softcapping")).is_some(),
        // llama.cpp keeps a multimodal model's vision encoder in a separate mmproj file; the
        // text GGUF has none.
        vision: None,
        position_table: file.tensor("position_embd.weight").and_then(|t| t.dims.get(1).copied()).unwrap_or(0),
        embedding_norm: has("token_embd_norm.weight"),
        parallel_ssm: family == Family::FalconH1,
        global_attention: gemma4.as_ref().map(|g| g.global),
        kv_shared_layers: gemma4.as_ref().map_or(0, |g| g.kv_shared_layers),
        per_layer_input: gemma4.as_ref().and_then(|g| g.per_layer_input),
        double_wide_mlp: gemma4.as_ref().is_some_and(|g| g.double_wide_mlp),
        audio: None,
    })
}

/// What a `gemma4` file says per layer (llama.cpp `src/models/gemma4.cpp`, the converter's
/// `Gemma4Model`): `key_length_swa` (sliding heads) and `key_length` (full heads), KV heads as a
/// per-layer `head_count_kv` array (or one count), `feed_forward_length` per layer (doubled in
/// the KV-shared layers under `use_double_wide_mlp`), `attention.shared_kv_layers`,
/// `embedding_length_per_layer_input` with the `per_layer_token_embd` table; a full layer without
/// `attn_v` takes its values from its keys.
struct Gemma4Layers {
    head_dim: u64,
    kv_heads: Option<u64>,
    global: GlobalAttention,
    intermediate: u64,
    double_wide_mlp: bool,
    kv_shared_layers: u64,
    per_layer_input: Option<PerLayerInput>,
}

fn gemma4_layers(k: &Keys<'_>, layers: u64) -> Result<Gemma4Layers, LocalFileError> {
    let pattern = sliding_pattern(k)?.unwrap_or_default();
    let first = |sliding: bool| pattern.iter().position(|&s| s == sliding);
    let kv_heads = k.per_layer("attention.head_count_kv")?;
    let kv_at = |layer: Option<usize>| match &kv_heads {
        Some(v) if v.len() > 1 => layer.and_then(|l| v.get(l).copied()).filter(|&n| n > 0),
        Some(v) => v.first().copied().filter(|&n| n > 0),
        None => None,
    };
    let widths = k.per_layer("feed_forward_length")?.unwrap_or_default();
    let intermediate =
        widths.iter().copied().filter(|&w| w > 0).min().ok_or_else(|| missing(k.file, "gemma4.feed_forward_length"))?;
    let full = first(false).unwrap_or(0);
    let has = |name: &str| k.file.tensor(&format!("blk.{full}.{name}.weight")).is_some();
    // (llama.cpp defaults the KV heads to the query heads.)
    let heads = k.nonzero("attention.head_count")?;
    let global = GlobalAttention {
        head_dim: k.nonzero("attention.key_length")?,
        num_kv_heads: kv_at(first(false)).or(kv_at(None)).unwrap_or(heads),
        k_eq_v: has("attn_k") && !has("attn_v"),
    };
    let width = k.opt("embedding_length_per_layer_input")?.filter(|&w| w > 0);
    let table = k.file.tensor("per_layer_token_embd.weight").and_then(|t| t.dims.get(1).copied());
    if width.is_some() && table.is_none() {
        return Err(k.bad(
            "'gemma4.embedding_length_per_layer_input' is set but the file has no per_layer_token_embd.weight; it is incomplete".into(),
        ));
    }
    let kv_shared_layers = k.opt("attention.shared_kv_layers")?.unwrap_or(0);
    if kv_shared_layers >= layers {
        return Err(k.bad(format!("attention.shared_kv_layers {kv_shared_layers} leaves no layer its own cache")));
    }
    Ok(Gemma4Layers {
        head_dim: k.nonzero("attention.key_length_swa")?,
        kv_heads: kv_at(first(true)),
        global,
        intermediate,
        double_wide_mlp: widths.iter().any(|&w| w == 2 * intermediate),
        kv_shared_layers,
        per_layer_input: width.map(|width| PerLayerInput { width, vocab: table.unwrap_or(0) }),
    })
}

/// Reads `{arch}.{name}` keys as counts.
struct Keys<'a> {
    file: &'a GgufFile,
    arch: &'a str,
}

impl Keys<'_> {
    /// `{arch}.{name}` as a count up to `u32::MAX`, or `None` when absent.
    fn opt(&self, name: &str) -> Result<Option<u64>, LocalFileError> {
        let key = format!("{}.{name}", self.arch);
        let Some(value) = self.file.get(&key) else {
            return Ok(None);
        };
        match value.as_u64() {
            Some(n) if n <= u64::from(u32::MAX) => Ok(Some(n)),
            _ => Err(self.bad(format!("'{key}' holds {}, not a count", describe(value)))),
        }
    }

    /// `{arch}.{name}` as a count, or the largest of a per-layer array of counts (llama.cpp
    /// writes Nemotron-H's KV heads and MLP widths per layer, 0 where a block has none).
    fn opt_max(&self, name: &str) -> Result<Option<u64>, LocalFileError> {
        let key = format!("{}.{name}", self.arch);
        let Some(value @ GgufValue::Array(a)) = self.file.get(&key) else { return self.opt(name) };
        let counts: Option<Vec<u64>> = a.items.as_ref().and_then(|items| items.iter().map(GgufValue::as_u64).collect());
        match counts {
            Some(counts) => Ok(counts.into_iter().max()),
            None => Err(self.bad(format!("'{key}' holds {}, not a per-layer array of counts", describe(value)))),
        }
    }

    /// `{arch}.{name}` as one count or a per-layer array of counts; `None` when absent.
    fn per_layer(&self, name: &str) -> Result<Option<Vec<u64>>, LocalFileError> {
        let key = format!("{}.{name}", self.arch);
        let Some(value @ GgufValue::Array(a)) = self.file.get(&key) else {
            return Ok(self.opt(name)?.map(|n| vec![n]));
        };
        let counts: Option<Vec<u64>> = a.items.as_ref().and_then(|items| items.iter().map(GgufValue::as_u64).collect());
        counts
            .map(Some)
            .ok_or_else(|| self.bad(format!("'{key}' holds {}, not a per-layer array of counts", describe(value))))
    }

    fn req(&self, name: &str) -> Result<u64, LocalFileError> {
        self.opt(name)?.ok_or_else(|| missing(self.file, &format!("{}.{name}", self.arch)))
    }

    fn nonzero(&self, name: &str) -> Result<u64, LocalFileError> {
        match self.req(name)? {
            0 => Err(self.bad(format!("'{}.{name}' is 0", self.arch))),
            n => Ok(n),
        }
    }

    fn bad(&self, reason: String) -> LocalFileError {
        LocalFileError::malformed(&self.file.path, reason)
    }
}

fn describe(value: &GgufValue) -> String {
    match value {
        GgufValue::Array(a) => format!("an array of {} {:?} items", a.len, a.item_type),
        other => format!("{other:?}"),
    }
}

fn missing(file: &GgufFile, key: &str) -> LocalFileError {
    LocalFileError::MissingKey { path: file.path.clone(), key: key.to_string() }
}

fn family(k: &Keys<'_>, expert_count: u64) -> Result<Family, LocalFileError> {
    Ok(match k.arch {
        "llama" if expert_count > 0 => Family::Mixtral,
        "llama" => Family::Llama,
        "qwen2" => Family::Qwen2,
        "qwen3" => Family::Qwen3,
        "qwen3moe" => Family::Qwen3Moe,
        "gemma" => Family::Gemma,
        "gemma2" => Family::Gemma2,
        "gemma3" => Family::Gemma3,
        "gemma4" => Family::Gemma4,
        // llama.cpp's `phi2` covers phi-1, phi-1.5 and phi-2 (`PhiForCausalLM`).
        "phi2" => Family::Phi,
        "phi3" => Family::Phi3,
        "falcon" => Family::Falcon,
        "gptneox" => Family::GptNeox,
        "deepseek2" if has_router_bias(k.file) => Family::DeepseekV3,
        "deepseek2" => Family::DeepseekV2,
        "deepseek32" => Family::DeepseekV32,
        "gpt2" => Family::Gpt2,
        "gptj" => Family::GptJ,
        "bloom" => Family::Bloom,
        // llama.cpp converts GPTBigCodeForCausalLM (StarCoder) as `starcoder`.
        "starcoder" => Family::GptBigCode,
        "mpt" => Family::Mpt,
        // (llama.cpp converts Falcon-Mamba as `mamba`; its dt/B/C norms have no weights.)
        "mamba" => Family::Mamba,
        "mamba2" => Family::Mamba2,
        "jamba" => Family::Jamba,
        "falcon-h1" => Family::FalconH1,
        "gpt-oss" => Family::GptOss,
        "qwen3next" => Family::Qwen3Next,
        "qwen35" => Family::Qwen35,
        "qwen35moe" => Family::Qwen35Moe,
        "nemotron_h" | "nemotron_h_moe" => Family::NemotronH,
        "granitehybrid" => Family::GraniteMoeHybrid,
        "glm4" => Family::Glm4,
        "glm4moe" => Family::Glm4Moe,
        // One converter for OLMo 2 and Olmo 3; Olmo 3's files carry its window.
        "olmo2" if k.opt("attention.sliding_window")?.is_some_and(|w| w > 0) => Family::Olmo3,
        "olmo2" => Family::Olmo2,
        "command-r" => Family::Cohere,
        "cohere2" => Family::Cohere2,
        "granite" => Family::Granite,
        "smollm3" => Family::SmolLM3,
        "seed_oss" => Family::SeedOss,
        // Ministral 3 and Devstral 2: Mistral's decoder with Llama 4's query temperature.
        "mistral3" => Family::Mistral,
        "ernie4_5" => Family::Ernie45,
        "ernie4_5-moe" => Family::Ernie45Moe,
        "llama4" => Family::Llama4,
        "minimax-m2" => Family::MiniMaxM2,
        "qwen2moe" => Family::Qwen2Moe,
        "starcoder2" => Family::Starcoder2,
        "phimoe" => Family::PhiMoe,
        "olmoe" => Family::Olmoe,
        "stablelm" => Family::StableLm,
        // (llama.cpp's converter splits InternLM2's wqkv into attn_q, attn_k and attn_v.)
        "internlm2" => Family::InternLm2,
        other => {
            return Err(LocalFileError::UnsupportedArchitecture { path: k.file.path.clone(), arch: other.to_string() })
        }
    })
}

fn has_router_bias(file: &GgufFile) -> bool {
    file.tensors.iter().any(|t| t.name.ends_with(".exp_probs_b.bias"))
}

/// The file's stem (`Llama-3-8B-Q4_K_M`), else `general.name`, else the architecture.
fn model_id(file: &GgufFile, arch: &str) -> String {
    let stem = file.path.file_stem().and_then(|s| s.to_str()).filter(|s| !s.starts_with('<'));
    let name = file.get("general.name").and_then(GgufValue::as_str);
    stem.or(name).unwrap_or(arch).to_string()
}

/// Rows of `token_embd` (its exact shape), else `{arch}.vocab_size`, else the token list's length.
fn vocab(k: &Keys<'_>) -> Result<u64, LocalFileError> {
    let rows = k.file.tensor("token_embd.weight").and_then(|t| t.dims.get(1).copied());
    let tokens = || k.file.get("tokenizer.ggml.tokens").and_then(GgufValue::array_len);
    let vocab = match rows {
        Some(rows) => Some(rows),
        None => k.opt("vocab_size")?.or_else(tokens),
    };
    match vocab {
        Some(v) if v > 0 && v <= u64::from(u32::MAX) => Ok(v),
        Some(v) => Err(k.bad(format!("vocabulary of {v} tokens"))),
        None => Err(missing(k.file, "tokenizer.ggml.tokens")),
    }
}

/// Each layer's mixer and MLP. Mamba-2 hybrids by the tensors each block holds (llama.cpp's
/// `nemotron_h` blocks hold one of `ssm_in`, `attn_q`, `ffn_up` or `ffn_up_exps`; `granitehybrid`
/// layers a Mamba-2 or attention mixer and an MLP or experts); the rest by their family's
/// pattern, with experts from `leading_dense_block_count` on.
fn layer_layout(
    k: &Keys<'_>,
    family: Family,
    layers: u64,
    moe: Option<&Moe>,
) -> Result<(Vec<LayerAttention>, Vec<LayerMlp>), LocalFileError> {
    if family == Family::Llama4 {
        // llama.cpp: experts on layers with (i + 1) % interleave_moe_layer_step == 0.
        let step = k.opt("interleave_moe_layer_step")?.filter(|&s| s > 0).unwrap_or(1);
        let mlps = (0..layers).map(|l| if (l + 1) % step == 0 { LayerMlp::Moe } else { LayerMlp::Dense }).collect();
        return Ok((layer_attention(k, family, layers)?, mlps));
    }
    // Falcon-H1: attention and a Mamba-2 mixer side by side in every block (`parallel_ssm`).
    if family == Family::FalconH1 {
        return Ok((vec![LayerAttention::Full; layers as usize], LayerMlp::standard(layers, moe)));
    }
    let by_tensors = matches!(family, Family::NemotronH | Family::GraniteMoeHybrid | Family::Jamba | Family::Mamba | Family::Mamba2)
            // ERNIE 4.5's experts start at `moe_layer_start_index` and recur every
            // `moe_layer_interval` layers; the tensors say which.
            || family == Family::Ernie45Moe;
    if !by_tensors {
        return Ok((layer_attention(k, family, layers)?, LayerMlp::standard(layers, moe)));
    }
    let has = |l: u64, names: &[&str]| names.iter().any(|n| k.file.tensor(&format!("blk.{l}.{n}.weight")).is_some());
    let mixer = |l| {
        if has(l, &["ssm_in"]) {
            LayerAttention::Linear
        } else if has(l, &["attn_q", "attn_qkv"]) {
            LayerAttention::Full
        } else {
            LayerAttention::Absent
        }
    };
    let mlp = |l| {
        if has(l, &["ffn_up_exps", "ffn_gate_up_exps"]) {
            LayerMlp::Moe
        } else if has(l, &["ffn_up", "ffn_gate_up"]) {
            LayerMlp::Dense
        } else {
            LayerMlp::Absent
        }
    };
    let mixers = (0..layers).map(mixer).collect();
    let mlps: Vec<LayerMlp> = (0..layers).map(mlp).collect();
    if mlps.contains(&LayerMlp::Moe) && moe.is_none() {
        return Err(k.bad(format!("expert tensors without '{}.expert_count'", k.arch)));
    }
    Ok((mixers, mlps))
}

/// Gemma 2 and gpt-oss alternate sliding (even layers) and global attention (llama.cpp
/// `set_swa_pattern(2)`); Gemma 3 slides on five layers of every six (`set_swa_pattern(6)`: layer
/// i is global when (i + 1) % 6 == 0); Phi-3 slides on every layer when it has a window; Olmo 3
/// by its per-layer `sliding_window_pattern` (else three layers of four) and Cohere2 on three
/// layers of four; Llama 4 attends within 8,192-token chunks on three layers of four. Other
/// families attend to the full context.
fn layer_attention(k: &Keys<'_>, family: Family, layers: u64) -> Result<Vec<LayerAttention>, LocalFileError> {
    if family.has_linear_attention() {
        let interval = match k.opt("full_attention_interval")? {
            Some(0) => return Err(k.bad(format!("'{}.full_attention_interval' is 0", k.arch))),
            other => other.unwrap_or(4),
        };
        return Ok((0..layers).map(|l| LayerAttention::hybrid(l, interval)).collect());
    }
    let written_window = k.opt("attention.sliding_window")?;
    let window = written_window.filter(|&w| w > 0);
    // Llama 4 files carry no chunk size; one that writes a sliding_window of 0 attends fully.
    let llama4_chunked = family == Family::Llama4 && written_window != Some(0);
    let pattern = if matches!(family, Family::Olmo3 | Family::Gemma4) { sliding_pattern(k)? } else { None };
    let sliding = |layer: u64| match (family, window) {
        (Family::Olmo3, Some(window))
            if pattern.as_ref().map_or((layer + 1) % 4 != 0, |p| p.get(layer as usize) == Some(&true)) =>
        {
            LayerAttention::Sliding { window }
        }
        (Family::Gemma2 | Family::GptOss, Some(window)) if layer % 2 == 0 => LayerAttention::Sliding { window },
        // Gemma 4 writes its layer types as flags (`sliding_window_pattern`; the last layer is full).
        (Family::Gemma4, Some(window))
            if pattern.as_ref().map_or((layer + 1) % 6 != 0, |p| p.get(layer as usize) == Some(&true)) =>
        {
            LayerAttention::Sliding { window }
        }
        (Family::Gemma3, Some(window)) if (layer + 1) % 6 != 0 => LayerAttention::Sliding { window },
        // llama.cpp's cohere2 graph slides layers with il % 4 < 3.
        (Family::Cohere2, Some(window)) if layer % 4 < 3 => LayerAttention::Sliding { window },
        // llama.cpp's Llama 4: chunks of 8192 on layers with il % 4 < 3 (both hard-coded).
        (Family::Llama4, _) if llama4_chunked && layer % 4 < 3 => LayerAttention::Chunked { chunk: 8192 },
        (Family::Phi3, Some(window)) => LayerAttention::Sliding { window },
        _ => LayerAttention::Full,
    };
    if pattern.as_ref().is_some_and(|p| p.len() as u64 != layers) {
        return Err(k.bad(format!("'{}.attention.sliding_window_pattern' does not list one flag per block", k.arch)));
    }
    Ok((0..layers).map(sliding).collect())
}

/// `{arch}.attention.sliding_window_pattern` as a per-layer array of flags (Olmo 3's converter
/// writes one from `layer_types`), or `None` when the file has none.
fn sliding_pattern(k: &Keys<'_>) -> Result<Option<Vec<bool>>, LocalFileError> {
    let key = format!("{}.attention.sliding_window_pattern", k.arch);
    let Some(value @ GgufValue::Array(a)) = k.file.get(&key) else { return Ok(None) };
    let flag = |v: &GgufValue| match v {
        GgufValue::Bool(b) => Some(*b),
        other => other.as_u64().map(|n| n != 0),
    };
    let flags = a.items.as_ref().and_then(|items| items.iter().map(flag).collect::<Option<Vec<bool>>>());
    match flags {
        Some(flags) => Ok(Some(flags)),
        None => Err(k.bad(format!("'{key}' holds {}, not a per-layer array of flags", describe(value)))),
    }
}

/// A Gated DeltaNet hybrid's linear-attention shape. llama.cpp writes it in its Mamba keys
/// (`convert_hf_to_gguf.py`, `Qwen3NextModel`): `ssm.conv_kernel` = kernel, `ssm.state_size` =
/// key head dim, `ssm.group_count` = key heads, `ssm.time_step_rank` = value heads,
/// `ssm.inner_size` = value heads × value head dim. Layers are linear except every
/// `full_attention_interval`-th (default 4). Qwen3.5's projections are split (`ssm_beta`,
/// `ssm_alpha`); its recurrent state is fp32 as its config asks (llama.cpp keeps every state in
/// F32 anyway). Mamba-2 (`nemotron_h`, `granitehybrid`, `falcon-h1`) writes the same keys with the groups as
/// `group_count`, the heads as `time_step_rank` and the inner width `heads · head_dim`; its
/// convolution bias and projection biases are tensors when present.
fn linear_attention(
    k: &Keys<'_>,
    family: Family,
    layers: &[LayerAttention],
) -> Result<Option<LinearAttention>, LocalFileError> {
    // (Falcon-H1's Mamba-2 mixers run beside attention in every layer.)
    let first = match family {
        Family::FalconH1 => 0,
        _ => match layers.iter().position(|l| *l == LayerAttention::Linear) {
            Some(first) => first,
            None => return Ok(None),
        },
    };
    let has = |name: &str| k.file.tensor(&format!("blk.{first}.{name}")).is_some();
    // Mamba-1 (`mamba`, `jamba`): `time_step_rank` is dt's rank, `inner_size` d_inner; no groups.
    if matches!(family, Family::Mamba | Family::Jamba) {
        return Ok(Some(LinearAttention {
            kind: LinearKind::Mamba1,
            num_key_heads: 0,
            key_head_dim: k.nonzero("ssm.state_size")?,
            num_value_heads: k.nonzero("ssm.inner_size")?,
            value_head_dim: 1,
            conv_kernel: k.nonzero("ssm.conv_kernel")?,
            split_projections: false,
            state_fp32: false,
            conv_bias: has("ssm_conv1d.bias"),
            proj_bias: has("ssm_in.bias"),
            chunk_size: 256,
            dt_rank: k.nonzero("ssm.time_step_rank")?,
            inner_norms: has("ssm_dt_norm.weight"),
            gated_norm: true,
            out_bias: has("ssm_out.bias"),
            low_rank_gates: 0,
        }));
    }
    let value_heads = k.nonzero("ssm.time_step_rank")?;
    let key_heads = k.nonzero("ssm.group_count")?;
    let inner = k.nonzero("ssm.inner_size")?;
    if inner % value_heads != 0 || value_heads % key_heads != 0 {
        return Err(k.bad(format!(
            "ssm.inner_size {inner}, ssm.time_step_rank {value_heads} and ssm.group_count {key_heads} do not describe whole heads"
        )));
    }
    let conv_kernel = k.nonzero("ssm.conv_kernel")?;
    if matches!(family, Family::NemotronH | Family::GraniteMoeHybrid | Family::Mamba2 | Family::FalconH1) {
        return Ok(Some(LinearAttention {
            kind: LinearKind::Mamba2,
            num_key_heads: key_heads,
            num_value_heads: value_heads,
            key_head_dim: k.nonzero("ssm.state_size")?,
            value_head_dim: inner / value_heads,
            conv_kernel,
            split_projections: false,
            // As vLLM keeps them (llama.cpp keeps every state in F32 anyway).
            state_fp32: family == Family::NemotronH,
            conv_bias: has("ssm_conv1d.bias"),
            proj_bias: has("ssm_in.bias"),
            // (Nemotron-H's and Falcon-H1's configs scan in chunks of 128.)
            chunk_size: if matches!(family, Family::NemotronH | Family::FalconH1) { 128 } else { 256 },
            dt_rank: 0,
            inner_norms: false,
            // Falcon-H1's gated norm only with `mamba_rms_norm` (an `ssm_norm` tensor).
            gated_norm: family != Family::FalconH1 || has("ssm_norm.weight"),
            out_bias: has("ssm_out.bias"),
            low_rank_gates: 0,
        }));
    }
    Ok(Some(LinearAttention {
        split_projections: family != Family::Qwen3Next,
        state_fp32: family != Family::Qwen3Next,
        ..LinearAttention::gated_delta_net(
            key_heads,
            value_heads,
            k.nonzero("ssm.state_size")?,
            inner / value_heads,
            conv_kernel,
        )
    }))
}

fn mla(k: &Keys<'_>) -> Result<Option<Mla>, LocalFileError> {
    if !matches!(k.arch, "deepseek2" | "deepseek32") {
        return Ok(None);
    }
    let kv_lora_rank = k.nonzero("attention.kv_lora_rank")?;
    let q_lora_rank = k.opt("attention.q_lora_rank")?.filter(|&r| r > 0);
    let rope = k.req("rope.dimension_count")?;
    let (key_name, key_len) = match k.opt("attention.key_length_mla")? {
        Some(len) => ("attention.key_length_mla", len),
        None => ("attention.key_length", k.req("attention.key_length")?),
    };
    let qk_nope_head_dim = key_len
        .checked_sub(rope)
        .ok_or_else(|| k.bad(format!("{key_name} {key_len} is smaller than rope.dimension_count {rope}")))?;
    let v_head_dim = match k.opt("attention.value_length_mla")? {
        Some(len) => len,
        None => k.req("attention.value_length")?,
    };
    // llama.cpp's deepseek32 writes its indexer's shape (`attention.indexer.*`).
    let indexer = match k.arch {
        "deepseek32" => Some(Indexer {
            heads: k.nonzero("attention.indexer.head_count")?,
            head_dim: k.nonzero("attention.indexer.key_length")?,
        }),
        _ => None,
    };
    Ok(Some(Mla { q_lora_rank, kv_lora_rank, qk_nope_head_dim, qk_rope_head_dim: rope, v_head_dim, indexer }))
}

/// Mixture of experts. The shared-expert width is read from the `ffn_up_shexp` tensor where there
/// is one (exact whatever the converter wrote), else `expert_shared_count × expert width`.
fn moe(k: &Keys<'_>, expert_count: u64, intermediate: u64) -> Result<Option<Moe>, LocalFileError> {
    if expert_count == 0 {
        return Ok(None);
    }
    let expert_intermediate_size = k.opt("expert_feed_forward_length")?.unwrap_or(intermediate);
    let shared_rows = k.file.tensors.iter().find(|t| t.name.ends_with(".ffn_up_shexp.weight"));
    let shared_intermediate_size = match shared_rows.and_then(|t| t.dims.get(1)) {
        Some(&rows) => rows,
        None => k.opt("expert_shared_count")?.unwrap_or(0) * expert_intermediate_size,
    };
    Ok(Some(Moe {
        num_experts: expert_count,
        experts_per_token: k.nonzero("expert_used_count")?,
        expert_intermediate_size,
        shared_intermediate_size,
        first_dense_layers: k.opt("leading_dense_block_count")?.unwrap_or(0),
        shared_expert_gate: k.file.tensors.iter().any(|t| t.name.ends_with(".ffn_gate_inp_shexp.weight")),
        router_bias: has_router_bias(k.file),
        expert_biases: k.file.tensors.iter().any(|t| t.name.ends_with(".ffn_down_exps.bias")),
    }))
}
