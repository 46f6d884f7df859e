//! Which GGML type `llama-quantize` gives each tensor of a GGUF file type.
//!
//! The rules restate, in our own terms, `llama_tensor_get_type_impl`, `tensor_type_fallback`
//! and `tensor_allows_quantization` of llama.cpp `src/llama-quant.cpp` (ggml-org/llama.cpp at
//! commit 007dbbf3; the mixes have changed over releases, so files made by old releases can
//! differ), plus the conversion rules of `convert_hf_to_gguf.py` for what the quantizer leaves
//! alone (1-D tensors, norms, biases and MoE routers are written F32).
//!
//! The main promotions: `output` (and a tied `token_embd`) goes to Q6_K unless the file is Q8_0;
//! `attn_v` (with `attn_qkv` and `attn_kv_b`, which the quantizer treats alike; current converters
//! write a latent-attention `kv_b` as `attn_k_b` and `attn_v_b`, which it does not:
//! `mla_kv_b_parts`) and `ffn_down`
//! get more bits on the layers `use_more_bits` picks (the first and last eighth, and every third
//! layer between) for Q4_K_M / Q5_K_M, on the first layers for Q3_K_M / Q4_K_S; Q2_K and Q3_K
//! mixes raise `attn_output`; GQA (n_head / n_head_kv ≥ 4), 70B-class models, 8-expert MoE and
//! Falcon have their own cases. A type whose block does not divide the row length falls back
//! (Q4_K → Q5_0, Q6_K → Q8_0, IQ*_XS → IQ4_NL, Q2_K/Q3_K → Q4_0; F16 when even that fails).
//!
//! llama.cpp counts tensors as it walks them in layer order (`weight_name_comparer`,
//! src/llama-model-loader.h); with one `attn_v`-like and one `ffn_down` tensor per layer that
//! count is the layer index, which is what we use. Where it counts several `ffn_down` tensors per
//! layer (routed and shared experts, IQ1/IQ2 file types) we reproduce the count. DeepSeek's MLA is
//! converted with one KV head (n_head_kv = 1), so its GQA ratio is its head count.
//!
//! Worked example, Llama-2-7B Q4_K_M: 16 of 32 layers have `attn_v` (16.8M weights) and `ffn_down`
//! (45.1M) in Q6_K (6.5625 bpw), the rest Q4_K (4.5 bpw); `token_embd` Q4_K, `output` Q6_K; norms
//! F32: 4,080,263,168 bytes of tensors, against a published file size of 4.081 GB.

use super::ggml::GgmlType;
use super::gguf::GgufFileType;
use super::stored::StoredType;
use crate::model::spec::{Family, LayerMlp, ModelSpec};
use crate::model::tensors::{Part, Role, TensorDesc};

use GgmlType as G;
use GgufFileType as F;

/// llama.cpp's coarse tensor classes (`tensor_category`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Category {
    TokenEmbd,
    Output,
    /// attn_v, attn_qkv and attn_kv_b (`category_is_attn_v`).
    AttnV,
    AttnK,
    AttnQ,
    AttnOutput,
    FfnUp,
    FfnGate,
    FfnDown,
    Other,
}

fn category(role: Role) -> Category {
    use Role::*;
    match role {
        TokenEmbd => Category::TokenEmbd,
        Output => Category::Output,
        AttnV | AttnQkv | AttnKvB => Category::AttnV,
        AttnK => Category::AttnK,
        AttnQ => Category::AttnQ,
        AttnOutput => Category::AttnOutput,
        FfnUp | FfnGateUp | FfnUpExps | FfnGateUpExps | FfnUpShexp => Category::FfnUp,
        FfnGate | FfnGateExps | FfnGateShexp => Category::FfnGate,
        FfnDown | FfnDownExps | FfnDownShexp => Category::FfnDown,
        _ => Category::Other,
    }
}

/// The model facts the rules look at (llama.cpp `hparams` and `llm_type`).
struct Model {
    n_layer: i64,
    /// Layers with attention (llama.cpp's `n_attention_wv`: a hybrid's recurrent layers and
    /// Nemotron-H's MLP blocks have no attn_v).
    n_attention_wv: i64,
    /// Layers with an MLP (Nemotron-H's mixer blocks have none).
    n_mlp: i64,
    /// Routed experts (`hparams.n_expert`, 0 for dense models).
    n_expert: u64,
    /// n_head / n_head_kv.
    n_gqa: u64,
    falcon: bool,
    /// llama.cpp `LLM_TYPE_70B`: Llama-architecture models with 80 layers and GQA (Llama 2/3
    /// 70B), and Qwen2 with 80 layers.
    is_70b: bool,
    tied: bool,
}

impl Model {
    fn new(spec: &ModelSpec) -> Model {
        let n_expert = spec.moe.map_or(0, |m| m.num_experts);
        let n_gqa = if spec.mla.is_some() { spec.num_heads } else { spec.gqa_group() };
        let llama_arch = matches!(spec.family, Family::Llama | Family::Mistral | Family::Mixtral);
        let is_70b = spec.num_layers == 80
            && ((llama_arch && n_expert != 8 && spec.num_kv_heads != spec.num_heads) || spec.family == Family::Qwen2);
        Model {
            n_layer: spec.num_layers as i64,
            n_attention_wv: spec.attention_layers() as i64,
            n_mlp: spec.mlp_layers() as i64,
            n_expert,
            n_gqa,
            falcon: spec.family == Family::Falcon,
            is_70b,
            tied: spec.tie_word_embeddings,
        }
    }
}

/// llama.cpp's `use_more_bits`: the first and last eighth of the layers, and every third between.
fn use_more_bits(i: i64, n: i64) -> bool {
    i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2
}

/// Position of `t` among the `ffn_down`-like tensors in llama.cpp's walk (layer order, then name:
/// `ffn_down`, `ffn_down_exps`, `ffn_down_shexp`).
fn ffn_down_index(spec: &ModelSpec, t: &TensorDesc) -> i64 {
    let layer = t.layer.unwrap_or(0) as u64;
    let Some(moe) = spec.moe else {
        return layers_before(spec, layer, |l| spec.layer_mlp[l as usize] != LayerMlp::Absent);
    };
    // Dense layers hold one, expert layers one more with a shared expert, wherever they sit
    // (Llama 4 Maverick and ERNIE 4.5 interleave them).
    let per_moe_layer = 1 + i64::from(moe.shared_intermediate_size > 0);
    let before: i64 = (0..layer.min(spec.num_layers))
        .map(|l| match spec.layer_mlp[l as usize] {
            LayerMlp::Moe => per_moe_layer,
            LayerMlp::Dense => 1,
            LayerMlp::Absent => 0,
        })
        .sum();
    before + i64::from(t.role == Role::FfnDownShexp)
}

/// Layers before `layer` that `holds`: a tensor's position among those of its kind.
fn layers_before(spec: &ModelSpec, layer: u64, holds: impl Fn(u64) -> bool) -> i64 {
    (0..layer.min(spec.num_layers)).filter(|&l| holds(l)).count() as i64
}

/// Position of an attention tensor among the attention layers (llama.cpp's `i_attention_wv`).
fn attention_index(spec: &ModelSpec, t: &TensorDesc) -> i64 {
    layers_before(spec, t.layer.unwrap_or(0) as u64, |l| spec.layer_attention[l as usize].attends())
}

/// The type llama.cpp falls back to when `ty`'s block does not divide the row length `cols`.
fn fallback(ty: GgmlType, cols: u64) -> GgmlType {
    if cols % ty.block_size() == 0 {
        return ty;
    }
    let alt = match ty {
        G::IQ1_S | G::IQ1_M | G::IQ2_XXS | G::IQ2_XS | G::IQ2_S | G::IQ3_XXS | G::IQ3_S | G::IQ4_XS => G::IQ4_NL,
        G::Q2_K | G::Q3_K | G::TQ1_0 | G::TQ2_0 => G::Q4_0,
        G::Q4_K => G::Q5_0,
        G::Q5_K => G::Q5_1,
        G::Q6_K => G::Q8_0,
        // llama.cpp stops with "no tensor type fallback"; F16 is the type that can hold it.
        _ => G::F16,
    };
    if cols % alt.block_size() == 0 {
        alt
    } else {
        G::F16
    }
}

/// A latent-attention layer's `kv_b_proj` as llama.cpp's converter writes it for the absorbed MLA
/// graph (convert_hf_to_gguf.py, `DeepseekV2Model.modify_tensors`, since April 2025): two
/// tensors `n_head` deep, `attn_k_b` (each head's key half transposed: `kv_lora_rank` rows of
/// `qk_nope_head_dim`) and `attn_v_b` (`v_head_dim` rows of `kv_lora_rank`). llama-quantize counts
/// neither as attn_v-like (category OTHER), so both take the mix's default type, and k_b's 128- or
/// 192-wide rows fall back from 256-element blocks. DeepSeek-V3 Q4_K_M, per layer: k_b 128 heads ×
/// 512 × 128 in Q5_0 (5.5 bits a weight), v_b 128 × 128 × 512 in Q4_K (4.5). `None` for any other
/// tensor.
pub fn mla_kv_b_parts(spec: &ModelSpec, t: &TensorDesc) -> Option<[TensorDesc; 2]> {
    let m = spec.mla.filter(|_| t.role == Role::AttnKvB && t.part == Part::Weight)?;
    let heads = spec.num_heads;
    Some([
        TensorDesc { rows: m.kv_lora_rank, cols: m.qk_nope_head_dim, copies: heads, ..*t },
        TensorDesc { rows: m.v_head_dim, cols: m.kv_lora_rank, copies: heads, ..*t },
    ])
}

impl GgufFileType {
    /// Bytes of tensor `t` of `spec` in a GGUF file of this type: a latent-attention `kv_b_proj`
    /// as its two converted parts (`mla_kv_b_parts`), any other tensor in its own type.
    pub fn tensor_bytes(self, t: &TensorDesc, spec: &ModelSpec) -> u64 {
        match mla_kv_b_parts(spec, t) {
            Some(parts) => parts.iter().map(|p| StoredType::Ggml(self.part_type(p, spec)).tensor_bytes(p)).sum(),
            None => StoredType::Ggml(self.tensor_type(t, spec)).tensor_bytes(t),
        }
    }

    /// The type of a tensor llama-quantize puts in no category of its own (OTHER).
    fn part_type(self, t: &TensorDesc, spec: &ModelSpec) -> GgmlType {
        self.quantized_as(Category::Other, t, spec)
    }

    /// The mix's type for a quantizable weight of category `cat`: the file's default type,
    /// promoted by the mix's rules, with the block-size fallback for rows it does not divide.
    fn quantized_as(self, cat: Category, t: &TensorDesc, spec: &ModelSpec) -> GgmlType {
        let default = self.default_type();
        if !self.is_quantized() {
            return default;
        }
        fallback(self.promote_as(cat, default, t, spec), t.cols)
    }

    /// The GGML type of tensor `t` in a GGUF file of this type made from `spec`. A multimodal
    /// checkpoint's vision encoder and projector go to llama.cpp's separate mmproj file, which
    /// is published in F16 whatever the text file's type.
    pub fn tensor_type(self, t: &TensorDesc, spec: &ModelSpec) -> GgmlType {
        if t.role.is_vision() {
            return G::F16;
        }
        // llama.cpp never quantizes DeltaNet's (or Mamba's) convolution and decay parameters; its
        // converter writes them in F32.
        if t.is_vector()
            || t.part == Part::Bias
            || t.role.is_norm()
            || t.role == Role::FfnGateInp
            || t.role.is_ssm_param()
        {
            return G::F32;
        }
        // A converted latent-attention kv_b is stored as its parts: name the v part's type.
        if let Some([_, v_b]) = mla_kv_b_parts(spec, t) {
            return self.part_type(&v_b, spec);
        }
        self.quantized_as(category(t.role), t, spec)
    }

    /// `llama_tensor_get_type_impl`: the mix's choice for a quantizable weight of category `cat`.
    fn promote_as(self, cat: Category, default: GgmlType, t: &TensorDesc, spec: &ModelSpec) -> GgmlType {
        let m = Model::new(spec);
        let layer = i64::from(t.layer.unwrap_or(0));
        if cat == Category::Output || (m.tied && cat == Category::TokenEmbd) {
            return self.output_type(default, t, &m);
        }
        if self == F::Mxfp4Moe {
            return if t.copies > 1 { G::MXFP4 } else { G::Q8_0 };
        }
        if cat == Category::TokenEmbd {
            return match self {
                F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ1_M => G::Q2_K,
                F::IQ2_S | F::IQ2_M | F::IQ3_XXS => G::IQ3_S,
                F::TQ1_0 | F::TQ2_0 => G::Q4_K,
                _ => default,
            };
        }
        if matches!(self, F::IQ2_XXS | F::IQ2_XS | F::IQ1_S | F::IQ2_S | F::IQ2_M | F::IQ1_M) {
            return self.very_low_bit(default, cat, ffn_down_index(spec, t), &m);
        }
        match cat {
            Category::AttnV => self.attn_v(default, attention_index(spec, t), &m),
            Category::AttnK if m.n_expert == 8 => G::Q8_0,
            Category::AttnK | Category::AttnQ => match self {
                F::IQ3_XS => G::IQ3_XXS,
                F::IQ3_XXS => G::IQ2_S,
                _ => default,
            },
            Category::FfnDown if m.n_expert == 0 => self.ffn_down(default, ffn_down_index(spec, t), m.n_mlp, &m),
            Category::FfnDown => self.ffn_down(default, layer, m.n_layer, &m),
            Category::AttnOutput => self.attn_output(default, &m),
            Category::FfnGate | Category::FfnUp => {
                let middle = layer >= m.n_layer / 8 && layer < 7 * m.n_layer / 8;
                if self == F::IQ3_XS && middle {
                    G::IQ3_XXS
                } else {
                    default
                }
            }
            _ => default,
        }
    }

    fn output_type(self, default: GgmlType, t: &TensorDesc, m: &Model) -> GgmlType {
        if self == F::Mxfp4Moe || m.falcon || t.cols % default.block_size() != 0 {
            G::Q8_0
        } else if matches!(self, F::IQ2_XXS | F::IQ2_XS | F::IQ3_XXS | F::IQ1_S | F::IQ2_S | F::IQ2_M | F::IQ1_M) {
            G::Q5_K
        } else if default != G::Q8_0 {
            G::Q6_K
        } else {
            default
        }
    }

    /// IQ1 / IQ2 mixes. `i_down` is llama.cpp's running count of `ffn_down` tensors.
    fn very_low_bit(self, default: GgmlType, cat: Category, i_down: i64, m: &Model) -> GgmlType {
        let iq2_sm = matches!(self, F::IQ2_S | F::IQ2_M);
        let low = if iq2_sm { G::IQ3_S } else { G::Q2_K };
        match cat {
            Category::AttnV if m.n_gqa >= 4 || m.n_expert >= 4 => G::Q4_K,
            Category::AttnV => low,
            Category::AttnK if m.n_expert == 8 => G::Q4_K,
            Category::FfnDown if i_down < m.n_layer / 8 => low,
            Category::AttnOutput if m.n_expert == 8 => G::Q5_K,
            Category::AttnOutput if matches!(self, F::IQ1_S | F::IQ1_M) => G::IQ2_XXS,
            Category::AttnOutput if iq2_sm => G::IQ3_S,
            _ => default,
        }
    }

    /// attn_v, attn_qkv, attn_kv_b; `i` is the attention layer (llama.cpp's `i_attention_wv`).
    fn attn_v(self, default: GgmlType, i: i64, m: &Model) -> GgmlType {
        let gqa4 = m.n_gqa >= 4;
        let mut ty = match self {
            F::Q2_K if gqa4 => G::Q4_K,
            F::Q2_K => G::Q3_K,
            F::Q2_K_S if gqa4 => G::Q4_K,
            F::IQ3_XXS if gqa4 => G::Q4_K,
            // With an importance matrix (IQ3_XXS needs one) attn_v stays IQ3_XXS.
            F::IQ3_XS | F::IQ3_S if gqa4 => G::Q4_K,
            F::IQ3_M => G::Q4_K,
            F::Q3_K_M if i < 2 => G::Q5_K,
            F::Q3_K_M => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            F::IQ4_NL | F::IQ4_XS if gqa4 => G::Q5_K,
            F::Q4_K_M | F::Q5_K_M if use_more_bits(i, m.n_attention_wv) => G::Q6_K,
            F::Q4_K_S if i < 4 => G::Q5_K,
            _ => default,
        };
        if m.is_70b && matches!(ty, G::Q3_K | G::Q4_K) {
            ty = G::Q5_K;
        }
        if m.n_expert == 8 {
            ty = G::Q8_0;
        }
        ty
    }

    /// ffn_down and its expert variants; `i` of `n`: the ffn_down's position among the layers with
    /// an MLP, or with experts the layer and the layer count (llama.cpp's `layer_info`).
    fn ffn_down(self, default: GgmlType, i: i64, n: i64, m: &Model) -> GgmlType {
        let more = use_more_bits(i, n);
        match self {
            F::Q2_K => G::Q3_K,
            F::Q2_K_S if i < n / 8 => G::Q4_K,
            F::Q3_K_M if i < n / 16 => G::Q5_K,
            F::Q3_K_M if !m.falcon || more => G::Q4_K,
            F::Q3_K_M => G::Q3_K,
            F::IQ3_M if i < n / 8 || (m.n_expert == 8 && more) => G::Q4_K,
            F::Q3_K_L if m.falcon => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            F::Q4_K_M if m.falcon && i < n / 16 => G::Q6_K,
            F::Q4_K_M if m.falcon && more => G::Q5_K,
            F::Q4_K_M if m.falcon => G::Q4_K,
            F::Q4_K_M if more => G::Q6_K,
            // IQ4 files are made with an importance matrix, as published ones are (bartowski's
            // GLM-Z1-32B IQ4_XS logs the bytes exactly so): llama.cpp then keeps IQ4 here. Without
            // one it would raise the first eighth to Q5_K.
            F::Q5_K_M if more => G::Q6_K,
            F::Q4_K_S if !m.falcon && i < n / 8 => G::Q5_K,
            _ => default,
        }
    }

    fn attn_output(self, default: GgmlType, m: &Model) -> GgmlType {
        if m.falcon {
            return if self == F::Q3_K_L { G::Q4_K } else { default };
        }
        if m.n_expert == 8 {
            let bumped = matches!(
                self,
                F::Q2_K
                    | F::IQ3_XS
                    | F::IQ3_XXS
                    | F::Q3_K_S
                    | F::Q3_K_M
                    | F::IQ4_NL
                    | F::Q4_K_S
                    | F::Q4_K_M
                    | F::IQ3_S
                    | F::IQ3_M
                    | F::IQ4_XS
            );
            return if bumped { G::Q5_K } else { default };
        }
        match self {
            F::Q2_K => G::Q3_K,
            F::IQ3_XXS => G::IQ3_S,
            F::Q3_K_M | F::IQ3_M => G::Q4_K,
            F::Q3_K_L => G::Q5_K,
            _ => default,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mla_kv_b_parts`' example: DeepSeek-V3's kv_b_proj (128 heads × (128 + 128) rows of 512)
    /// is written as k_b (rows of 128: Q4_K falls back to Q5_0) and v_b (rows of 512: Q4_K),
    /// neither promoted as attn_v; MXFP4_MOE makes both, 128 heads deep, MXFP4.
    #[test]
    fn mla_kv_b_is_written_as_k_b_and_v_b() {
        let spec =
            crate::model::config::parse_config(include_str!("../../data/models/deepseek-v3.json"), "d", "d.json")
                .unwrap()
                .spec;
        let kv_b = crate::model::tensors::inventory(&spec)
            .into_iter()
            .find(|t| t.role == Role::AttnKvB && t.layer == Some(0))
            .unwrap();
        let [k_b, v_b] = mla_kv_b_parts(&spec, &kv_b).unwrap();
        assert_eq!((k_b.rows, k_b.cols, k_b.copies, v_b.rows, v_b.cols), (512, 128, 128, 128, 512));
        assert_eq!(k_b.elements() + v_b.elements(), kv_b.elements());
        let q4 = F::Q4_K_M;
        assert_eq!((q4.part_type(&k_b, &spec), q4.part_type(&v_b, &spec)), (G::Q5_0, G::Q4_K));
        let per_head = 512 * 128 / 32 * 22 + 128 * 512 / 256 * 144;
        assert_eq!(q4.tensor_bytes(&kv_b, &spec), 128 * per_head);
        let mx = F::Mxfp4Moe;
        assert_eq!((mx.part_type(&k_b, &spec), mx.part_type(&v_b, &spec)), (G::MXFP4, G::MXFP4));
    }

    #[test]
    fn use_more_bits_picks_half_of_32_layers() {
        let picked: Vec<i64> = (0..32).filter(|&i| use_more_bits(i, 32)).collect();
        assert_eq!(picked, [0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31]);
    }

    /// A hybrid's attn_v tensors are counted among its attention layers only (llama.cpp asserts
    /// `n_attention_wv` equals them) and a Nemotron-H's ffn_down among its MLP blocks: Q4_K_M
    /// gives `use_more_bits`' extra bits to indices 0, 3, 6, 9, 10 and 11 of Qwen3-Next's 12
    /// attention layers (3, 7, 11, ...): layers 3, 15, 27, 39, 43 and 47.
    #[test]
    fn hybrids_count_attention_and_mlp_tensors_only() {
        let spec = crate::model::config::parse_config(
            include_str!("../../data/models/qwen3-next-80b-a3b.json"),
            "q",
            "q.json",
        )
        .unwrap()
        .spec;
        let attn_v = |layer: u32| TensorDesc {
            role: Role::AttnV,
            part: Part::Weight,
            layer: Some(layer),
            rows: 512,
            cols: 2048,
            copies: 1,
        };
        let promoted: Vec<u32> = (0..48)
            .filter(|l| (l + 1) % 4 == 0)
            .filter(|&l| F::Q4_K_M.tensor_type(&attn_v(l), &spec) == G::Q6_K)
            .collect();
        assert_eq!(promoted, [3, 15, 27, 39, 43, 47]);
        let nemotron =
            crate::model::config::parse_config(include_str!("../../data/models/nemotron-h-8b.json"), "n", "n.json")
                .unwrap()
                .spec;
        // 24 MLP blocks ("M-M-M-M*-...": layers 1, 3, 5, 8, ...): the first three get Q6_K
        // (index < 24 / 8), the fourth, layer 8, does not.
        let down = |layer: u32| TensorDesc {
            role: Role::FfnDown,
            part: Part::Weight,
            layer: Some(layer),
            rows: 4096,
            cols: 21504,
            copies: 1,
        };
        let types: Vec<GgmlType> = [1, 3, 5, 8].iter().map(|&l| F::Q4_K_M.tensor_type(&down(l), &nemotron)).collect();
        assert_eq!(types, [G::Q6_K, G::Q6_K, G::Q6_K, G::Q4_K]);
    }

    #[test]
    fn fallbacks_follow_llama_cpp() {
        assert_eq!(fallback(G::Q4_K, 4096), G::Q4_K);
        assert_eq!(fallback(G::Q4_K, 11008 + 32), G::Q5_0);
        assert_eq!(fallback(G::Q6_K, 160), G::Q8_0);
        assert_eq!(fallback(G::IQ4_XS, 96), G::IQ4_NL);
        assert_eq!(fallback(G::Q2_K, 48), G::F16);
        assert_eq!(fallback(G::Q4_0, 48), G::F16);
    }
}
