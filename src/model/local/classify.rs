//! `classify`: what a checkpoint tensor does (`Role`) and which decoder layer it belongs to, from
//! its name alone, for Hugging Face and GGUF naming alike.
//!
//! A name is read in three steps. (1) The layer: the number after a layer container segment
//! (`model.layers.12.`, `transformer.h.3.`, `gpt_neox.layers.0.`, `blk.12.`). (2) The parameter
//! part at the end is dropped: `weight`, `bias`, and the parts quantizers add beside or below it
//! (GPTQ/AWQ `qweight` `qzeros` `scales` `g_idx`; bitsandbytes `weight.absmax`, `weight.quant_map`,
//! `weight.nested_absmax`, `weight.quant_state.bitsandbytes__nf4`, `SCB`; FP8 `weight_scale`,
//! `weight_scale_inv`, `input_scale`; compressed-tensors `weight_packed` ...; MLX `scales` and
//! `biases`). (3) The module name left at the end gives the role, refined by the path above it:
//! under `experts` a gate/up/down projection is a routed expert, under `shared_experts` a shared
//! one; `dense` and `c_proj` are attention outputs under an attention module. gpt-oss keeps all
//! experts of a layer in bare tensors named after the projection plus a suffix
//! (`experts.gate_up_proj_blocks`, `experts.down_proj_bias`); the suffix leaves the role as it is.
//! Tensors of a multimodal checkpoint outside its language model never get a decoder layer: Gemma
//! 3's SigLIP `vision_tower` and `multi_modal_projector`, and Qwen's ViT `visual`, get the vision
//! roles (`Role::is_vision`). Qwen3-Next's and Qwen3.5's multi-token-prediction block (`mtp.*`) is
//! named by `is_speculative_head`: engines do not load it.

use crate::model::tensors::Role;

/// Segments after which a layer number follows.
const LAYER_CONTAINERS: [&str; 5] = ["layers", "h", "blocks", "blk", "layer"];

/// Trailing parts that name a parameter of a module, not the module.
const PARAMETER_PARTS: [&str; 24] = [
    "weight",
    "bias",
    "qweight",
    "qzeros",
    "scales",
    "biases",
    "g_idx",
    "SCB",
    "weight_format",
    "absmax",
    "quant_map",
    "nested_absmax",
    "nested_quant_map",
    "quant_state",
    "bitsandbytes__nf4",
    "bitsandbytes__fp4",
    "weight_scale",
    "weight_scale_inv",
    "input_scale",
    "weight_packed",
    "weight_shape",
    "weight_zero_point",
    "weight_global_scale",
    "input_global_scale",
];

/// Every language-model role, for looking GGUF names up through `Role::gguf_name` (a text GGUF
/// holds no vision tensors: llama.cpp keeps them in a separate mmproj file).
const ROLES: [Role; 57] = [
    Role::TokenEmbd,
    Role::PerLayerEmbd,
    Role::PerLayerModelProj,
    Role::PerLayerProjNorm,
    Role::PerLayerInpGate,
    Role::PerLayerProj,
    Role::PosEmbd,
    Role::TokenEmbdNorm,
    Role::Output,
    Role::OutputNorm,
    Role::AttnNorm,
    Role::FfnNorm,
    Role::AttnQ,
    Role::AttnK,
    Role::AttnV,
    Role::AttnQkv,
    Role::AttnOutput,
    Role::AttnQNorm,
    Role::AttnKNorm,
    Role::AttnSinks,
    Role::AttnQA,
    Role::AttnQANorm,
    Role::AttnQB,
    Role::AttnKvAMqa,
    Role::AttnKvANorm,
    Role::AttnKvB,
    Role::IndexerQB,
    Role::IndexerK,
    Role::IndexerKNorm,
    Role::IndexerProj,
    Role::FfnGate,
    Role::FfnUp,
    Role::FfnGateUp,
    Role::FfnDown,
    Role::FfnGateInp,
    Role::ExpProbsB,
    Role::FfnGateExps,
    Role::FfnUpExps,
    Role::FfnGateUpExps,
    Role::FfnDownExps,
    Role::FfnGateShexp,
    Role::FfnUpShexp,
    Role::FfnDownShexp,
    Role::FfnGateInpShexp,
    // Gated DeltaNet (llama.cpp qwen3next/qwen35; Qwen3.5's `in_proj_qkv` is `attn_qkv`, which
    // reads as AttnQkv in the layer it belongs to).
    Role::SsmIn,
    Role::SsmBa,
    Role::SsmInZ,
    Role::SsmBeta,
    Role::SsmAlpha,
    Role::SsmConv1d,
    Role::SsmDt,
    Role::SsmA,
    Role::SsmD,
    Role::SsmX,
    Role::SsmInnerNorm,
    Role::SsmNorm,
    Role::SsmOut,
];

/// Modules of a multimodal checkpoint outside its language model: their layers are not decoder
/// layers. Gemma 3's SigLIP `vision_tower` (`vision_model` inside it) and `multi_modal_projector`;
/// Qwen's ViT `visual` (Qwen2-VL to Qwen3.5: `patch_embed`, `pos_embed`, `blocks.N.{norm1, norm2,
/// attn.qkv, attn.proj, mlp.*}`, `merger`); Kimi K2.5's MoonViT (`vision_tower.encoder.blocks.N.
/// {norm0, norm1, wqkv, wo, mlp.fc0, mlp.fc1}`) and `mm_projector` (`pre_norm`, `proj.0`, `proj.2`).
const VISION: [&str; 4] = ["vision_tower", "vision_model", "multi_modal_projector", "mm_projector"];
const QWEN_VIT: &str = "visual";

/// GPT-2's and GPT-J's causal masks (`h.N.attn.bias`, `attn.masked_bias`), stored in their
/// checkpoints as `[1, 1, positions, positions]` buffers that transformers rebuilds rather than
/// loads: bytes in the file, none on the GPU.
pub fn is_runtime_buffer(name: &str) -> bool {
    name.ends_with(".attn.bias") || name.ends_with(".attn.masked_bias")
}

/// Qwen3-Next's and Qwen3.5's multi-token-prediction block (`mtp.*`) and ERNIE 4.5's
/// (`model.mtp_block.0.*`, `model.mtp_emb_norm.0`, `model.mtp_hidden_norm.0`,
/// `model.mtp_linear_proj.0`): in the checkpoint, but loaded only for speculative decoding
/// (transformers ignores them, `_keys_to_ignore_on_load_unexpected`).
pub fn is_speculative_head(name: &str) -> bool {
    name.split('.').next() == Some("mtp") || name.split('.').any(|s| s.starts_with("mtp_"))
}

/// The role and decoder layer of the tensor called `name`; `None` where the name is not one
/// headroom knows (rotary buffers, unmodelled vision towers ...).
pub fn classify(name: &str) -> (Option<Role>, Option<u32>) {
    let segments: Vec<&str> = name.split('.').collect();
    if segments.iter().any(|s| VISION.contains(s)) {
        return (vision_role(strip_parameter_parts(&segments)), None);
    }
    if segments.contains(&QWEN_VIT) {
        return (qwen_vit_role(strip_parameter_parts(&segments)), None);
    }
    let (layer, body) = split_layer(&segments);
    if body.last() == Some(&"e_score_correction_bias") {
        return (Some(Role::ExpProbsB), layer);
    }
    let module = strip_parameter_parts(body);
    let role = match layer {
        Some(_) => layer_role(module),
        None => global_role(module),
    };
    (role, layer)
}

/// Whether `segment` names a parameter of a module (or a part a quantizer stores beside it)
/// rather than the module: `weight`, `qzeros`, `absmax` ...
pub(crate) fn is_parameter_part(segment: &str) -> bool {
    PARAMETER_PARTS.contains(&segment)
}

fn split_layer<'a>(segments: &'a [&'a str]) -> (Option<u32>, &'a [&'a str]) {
    for (i, pair) in segments.windows(2).enumerate() {
        if let [container, number] = pair {
            if LAYER_CONTAINERS.contains(container) {
                if let Ok(layer) = number.parse::<u32>() {
                    return (Some(layer), segments.get(i + 2..).unwrap_or_default());
                }
            }
        }
    }
    (None, segments)
}

fn strip_parameter_parts<'a>(mut body: &'a [&'a str]) -> &'a [&'a str] {
    while let Some((last, rest)) = body.split_last() {
        if !is_parameter_part(last) {
            break;
        }
        body = rest;
    }
    body
}

fn gguf_role(name: &str) -> Option<Role> {
    ROLES.into_iter().find(|r| r.gguf_name() == name).or(match name {
        // Newer DeepSeek conversions split attn_kv_b into its K and V halves.
        "attn_k_b" | "attn_v_b" => Some(Role::AttnKvB),
        // (Gemma 4's `post_norm` after its per-layer input, its MoE norms and `layer_output_scale`.)
        "attn_norm_2"
        | "post_attention_norm"
        | "post_ffw_norm"
        | "post_norm"
        | "pre_ffw_norm_2"
        | "post_ffw_norm_1"
        | "post_ffw_norm_2"
        | "layer_output_scale" => Some(Role::FfnNorm),
        // llama.cpp's jamba: the dt, B and C norms.
        "ssm_b_norm" | "ssm_c_norm" => Some(Role::SsmInnerNorm),
        _ => None,
    })
}

fn global_role(module: &[&str]) -> Option<Role> {
    let leaf = *module.last()?;
    match leaf {
        "embed_tokens" | "wte" | "word_embeddings" | "embed_in" | "tok_embeddings" | "embeddings" => {
            Some(Role::TokenEmbd)
        }
        "lm_head" | "embed_out" => Some(Role::Output),
        // GPT-2's and StarCoder's `wpe`, OPT's `embed_positions`, MPT's `wpe`.
        "wpe" | "embed_positions" => Some(Role::PosEmbd),
        "word_embeddings_layernorm" => Some(Role::TokenEmbdNorm),
        "norm" | "ln_f" | "final_layernorm" | "final_layer_norm" | "final_norm" | "norm_f" => Some(Role::OutputNorm),
        _ => gguf_role(leaf).filter(|r| r.is_embedding() || matches!(r, Role::Output | Role::OutputNorm)),
    }
}

/// The SigLIP encoder's and Gemma 3 projector's module names (transformers `modeling_siglip.py`,
/// `modeling_gemma3.py`; the projection is a bare parameter, so its name is its leaf), and Llama
/// 4's (`modeling_llama4.py`: `patch_embedding.linear`, the bare `class_embedding` and
/// `positional_embedding_vlm`, `o_proj`, the adapter's `vision_adapter.mlp.fc1`/`fc2` and the
/// projector's `linear_1`).
fn vision_role(module: &[&str]) -> Option<Role> {
    use Role::*;
    let (&leaf, path) = module.split_last()?;
    let adapter = path.contains(&"vision_adapter");
    // MoonViT numbers its blocks under `blocks` and its MLP `fc0`, `fc1`; the Kimi projector's
    // linears are `proj.0` and `proj.2`.
    let moonvit = path.contains(&"blocks");
    let kimi_projector = path.contains(&"mm_projector") && path.last() == Some(&"proj");
    Some(match leaf {
        "pos_emb" => VisionPosEmbd,
        "proj" if path.last() == Some(&"patch_embed") => VisionPatchEmbd,
        "wqkv" => VisionAttnQkv,
        "wo" => VisionAttnProj,
        "fc0" if moonvit => VisionMlpFc1,
        "fc1" if moonvit => VisionMlpFc2,
        "0" if kimi_projector => MmMergerUp,
        "2" if kimi_projector => MmMergerDown,
        "patch_embedding" => VisionPatchEmbd,
        "linear" if path.last() == Some(&"patch_embedding") => VisionPatchEmbd,
        "position_embedding" | "class_embedding" | "positional_embedding_vlm" => VisionPosEmbd,
        "mm_soft_emb_norm" => MmSoftEmbNorm,
        "mm_input_projection_weight" | "linear_1" => MmInputProjection,
        "fc1" if adapter => MmMergerUp,
        "fc2" if adapter => MmMergerDown,
        "o_proj" => VisionAttnOutput,
        // Pixtral (Mistral 3): the patch convolution, the gated MLP, and the projector's patch
        // merger and second linear (its RMSNorms fall to the tower's norms below).
        "patch_conv" => VisionPatchEmbd,
        "gate_proj" | "up_proj" => VisionFfnUp,
        "down_proj" => VisionFfnDown,
        "merging_layer" => MmMergerUp,
        "linear_2" => MmMergerDown,
        // Norms, and whatever else a tower holds, stay with the tower.
        _ => return crate::model::vision::linear_role(leaf).or(Some(VisionNorm)),
    })
}

/// A Qwen ViT tensor's role: every one is a vision role (its weights sit with the tower), the
/// merger's two linears the projector's; names it does not know fall back to `VisionNorm`'s group
/// rather than the language model.
fn qwen_vit_role(module: &[&str]) -> Option<Role> {
    use Role::*;
    let (&leaf, path) = module.split_last()?;
    let parent = path.last().copied().unwrap_or("");
    // (Qwen3-VL's `deepstack_merger_list.K` are mergers too.)
    let merger = path.iter().any(|p| p.contains("merger"));
    Some(match leaf {
        _ if parent == "patch_embed" || leaf == "patch_embed" => VisionPatchEmbd,
        "pos_embed" => VisionPosEmbd,
        "qkv" => VisionAttnQkv,
        "proj" => VisionAttnProj,
        "linear_fc1" | "fc1" | "0" if merger => MmMergerUp,
        "linear_fc2" | "fc2" | "2" if merger => MmMergerDown,
        // (Qwen2.5-VL's gated MLP: gate_proj and up_proj in, down_proj out.)
        "linear_fc1" | "fc1" | "gate_proj" | "up_proj" => VisionMlpFc1,
        "linear_fc2" | "fc2" | "down_proj" => VisionMlpFc2,
        _ => VisionNorm,
    })
}

/// Where a gate, up or down projection sits: a dense MLP, a routed expert or a shared expert.
#[derive(Clone, Copy)]
enum Mlp {
    Dense,
    Routed,
    Shared,
}

/// Suffixes gpt-oss's checkpoint appends to its experts' parameters, which are bare tensors of
/// the `experts` module rather than submodules: `gate_up_proj_bias`, and the MXFP4 halves
/// `down_proj_blocks` (FP4 codes) and `down_proj_scales` (E8M0 scales).
const PARAMETER_SUFFIXES: [&str; 3] = ["_blocks", "_scales", "_bias"];

fn layer_role(module: &[&str]) -> Option<Role> {
    let (&leaf, path) = module.split_last()?;
    // Before the suffixes come off: DeltaNet's `dt_bias` is a parameter, not a bias of `dt`.
    // Nemotron-H's `mixer` is also its attention, MLP or experts, whose names fall through.
    match path.last() {
        Some(&"linear_attn") => return crate::model::tensors::linear_attention_role(leaf),
        Some(&"mamba") | Some(&"mixer") => {
            if let Some(role) = crate::model::tensors::linear_attention_role(leaf) {
                return Some(role);
            }
        }
        // Nemotron-H's block norm, before its one mixer.
        None if leaf == "norm" => return Some(Role::AttnNorm),
        // Kimi Delta Attention keeps its recurrent parameters under `self_attn` (its q, k, v and
        // o projections fall through to attention's names).
        Some(&"self_attn") => {
            let kda = match leaf {
                "f_a_proj" | "f_b_proj" => Some(Role::SsmAlpha),
                "g_a_proj" | "g_b_proj" => Some(Role::SsmInZ),
                "b_proj" => Some(Role::SsmBeta),
                "q_conv1d" | "k_conv1d" | "v_conv1d" => Some(Role::SsmConv1d),
                "o_norm" => Some(Role::SsmNorm),
                "dt_bias" => Some(Role::SsmDt),
                "A_log" => Some(Role::SsmA),
                _ => None,
            };
            if kda.is_some() {
                return kda;
            }
        }
        _ => {}
    }
    // DeepSeek-V3.2's lightning indexer (`self_attn.indexer.*`; llama.cpp's `indexer.*`).
    if path.last() == Some(&"indexer") {
        return match leaf {
            "wq_b" | "attn_q_b" => Some(Role::IndexerQB),
            "wk" | "attn_k" => Some(Role::IndexerK),
            "k_norm" => Some(Role::IndexerKNorm),
            "weights_proj" | "proj" => Some(Role::IndexerProj),
            _ => None,
        };
    }
    // StableLM's per-head LayerNorms are numbered modules: `q_layernorm.norms.N`.
    if let [.., norm, "norms"] = path {
        if leaf.parse::<u32>().is_ok() {
            return match *norm {
                "q_layernorm" => Some(Role::AttnQNorm),
                "k_layernorm" => Some(Role::AttnKNorm),
                _ => None,
            };
        }
    }
    let leaf = PARAMETER_SUFFIXES.iter().find_map(|s| leaf.strip_suffix(s)).unwrap_or(leaf);
    let parent = path.last().copied().unwrap_or("");
    // Granite 4.0's `shared_mlp` reads as a shared expert (in its dense checkpoints it is the
    // whole MLP: the same bytes, grouped apart); its experts are the 3-D
    // `block_sparse_moe.input_linear` and `output_linear`.
    let granite_experts = path.last() == Some(&"block_sparse_moe") && leaf.ends_with("_linear");
    let mlp = if path.iter().any(|s| matches!(*s, "shared_experts" | "shared_expert" | "shared_mlp")) {
        Mlp::Shared
    } else if path.contains(&"experts") || granite_experts {
        Mlp::Routed
    } else {
        Mlp::Dense
    };
    let attention = matches!(parent, "attention" | "self_attention" | "self_attn" | "attn");
    let ffn = |dense, routed, shared| match mlp {
        Mlp::Dense => Some(dense),
        Mlp::Routed => Some(routed),
        Mlp::Shared => Some(shared),
    };
    use Role::*;
    match leaf {
        "q_proj" | "wq" | "query" => Some(AttnQ),
        "k_proj" | "wk" | "key" => Some(AttnK),
        "v_proj" | "wv" | "value" => Some(AttnV),
        "qkv_proj" | "query_key_value" | "Wqkv" | "wqkv" | "W_pack" | "c_attn" => Some(AttnQkv),
        "o_proj" | "wo" | "out_proj" => Some(AttnOutput),
        "q_norm" if attention => Some(AttnQNorm),
        "k_norm" if attention => Some(AttnKNorm),
        // StableLM's per-head LayerNorms: `q_layernorm.norms.N`.
        "q_layernorm" => Some(AttnQNorm),
        "k_layernorm" => Some(AttnKNorm),
        "sinks" if attention => Some(AttnSinks),
        "dense" | "c_proj" if attention => Some(AttnOutput),
        "q_a_proj" => Some(AttnQA),
        "q_a_layernorm" => Some(AttnQANorm),
        "q_b_proj" => Some(AttnQB),
        "kv_a_proj_with_mqa" => Some(AttnKvAMqa),
        "kv_a_layernorm" => Some(AttnKvANorm),
        "kv_b_proj" => Some(AttnKvB),
        "gate_proj" | "w1" => ffn(FfnGate, FfnGateExps, FfnGateShexp),
        "up_proj" | "w3" | "dense_h_to_4h" | "fc1" | "c_fc" | "fc_in" => ffn(FfnUp, FfnUpExps, FfnUpShexp),
        "down_proj" | "w2" | "dense_4h_to_h" | "fc2" | "fc_out" | "c_proj" => ffn(FfnDown, FfnDownExps, FfnDownShexp),
        "gate_up_proj" => match mlp {
            Mlp::Dense => Some(FfnGateUp),
            Mlp::Routed => Some(FfnGateUpExps),
            Mlp::Shared => None,
        },
        "gate" | "router" => matches!(mlp, Mlp::Dense).then_some(FfnGateInp),
        // Granite 4.0: the router's linear (`router.layer`), the fused gate+up `input_linear`
        // and `output_linear` of the shared MLP and of the experts.
        "layer" if parent == "router" => Some(FfnGateInp),
        "input_linear" => match mlp {
            Mlp::Dense => Some(FfnGateUp),
            Mlp::Routed => Some(FfnGateUpExps),
            Mlp::Shared => Some(FfnUpShexp),
        },
        "output_linear" => ffn(FfnDown, FfnDownExps, FfnDownShexp),
        "shared_expert_gate" => Some(FfnGateInpShexp),
        // (OPT's per-layer `self_attn_layer_norm` and `final_layer_norm`; MPT's `norm_1`, `norm_2`.)
        "input_layernorm" | "ln_1" | "attention_norm" | "ln_attn" | "self_attn_layer_norm" | "norm_1" => Some(AttnNorm),
        "final_layer_norm" | "norm_2" | "pre_ff_layernorm" => Some(FfnNorm),
        // (GLM-4's `post_self_attn_layernorm` and `post_mlp_layernorm` norm the sublayers' outputs.)
        "post_attention_layernorm"
        | "ln_2"
        | "ln_mlp"
        | "pre_feedforward_layernorm"
        | "post_feedforward_layernorm"
        | "post_self_attn_layernorm"
        | "post_mlp_layernorm" => Some(FfnNorm),
        other => gguf_role(other).filter(|r| !r.is_embedding() && !matches!(r, Output | OutputNorm)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Role::*;

    fn check(name: &str, role: Option<Role>, layer: Option<u32>) {
        assert_eq!(classify(name), (role, layer), "{name}");
    }

    #[test]
    fn qwen_vit_names() {
        check("model.visual.patch_embed.proj.weight", Some(VisionPatchEmbd), None);
        check("model.visual.pos_embed.weight", Some(VisionPosEmbd), None);
        check("model.visual.blocks.3.attn.qkv.bias", Some(VisionAttnQkv), None);
        check("model.visual.blocks.3.attn.proj.weight", Some(VisionAttnProj), None);
        check("model.visual.blocks.3.mlp.linear_fc1.weight", Some(VisionMlpFc1), None);
        check("model.visual.blocks.3.norm2.weight", Some(VisionNorm), None);
        check("visual.blocks.3.mlp.gate_proj.weight", Some(VisionMlpFc1), None);
        check("visual.blocks.3.mlp.down_proj.bias", Some(VisionMlpFc2), None);
        check("model.visual.merger.linear_fc2.weight", Some(MmMergerDown), None);
        check("visual.merger.mlp.0.weight", Some(MmMergerUp), None);
    }

    #[test]
    fn gated_deltanet_and_speculative_head_names() {
        check("model.layers.0.linear_attn.in_proj_qkvz.weight", Some(SsmIn), Some(0));
        check("model.language_model.layers.4.linear_attn.in_proj_b.weight", Some(SsmBeta), Some(4));
        check("model.layers.2.linear_attn.A_log", Some(SsmA), Some(2));
        check("model.layers.2.linear_attn.dt_bias", Some(SsmDt), Some(2));
        check("model.layers.2.linear_attn.conv1d.weight", Some(SsmConv1d), Some(2));
        check("model.layers.2.linear_attn.norm.weight", Some(SsmNorm), Some(2));
        check("model.layers.2.linear_attn.out_proj.weight", Some(SsmOut), Some(2));
        check("model.layers.3.mlp.shared_expert_gate.weight", Some(FfnGateInpShexp), Some(3));
    }

    /// Nemotron-H (`backbone.layers.N.mixer.*`, one mixer per block) and Granite 4.0
    /// (`mamba`, `shared_mlp`, `block_sparse_moe`).
    #[test]
    fn mamba2_hybrid_names() {
        check("backbone.embeddings.weight", Some(TokenEmbd), None);
        check("backbone.norm_f.weight", Some(OutputNorm), None);
        check("backbone.layers.0.norm.weight", Some(AttnNorm), Some(0));
        check("backbone.layers.0.mixer.in_proj.weight", Some(SsmIn), Some(0));
        check("backbone.layers.0.mixer.conv1d.bias", Some(SsmConv1d), Some(0));
        check("backbone.layers.0.mixer.D", Some(SsmD), Some(0));
        check("backbone.layers.0.mixer.dt_bias", Some(SsmDt), Some(0));
        check("backbone.layers.0.mixer.norm.weight", Some(SsmNorm), Some(0));
        check("backbone.layers.0.mixer.out_proj.weight", Some(SsmOut), Some(0));
        check("backbone.layers.5.mixer.q_proj.weight", Some(AttnQ), Some(5));
        check("backbone.layers.5.mixer.o_proj.weight", Some(AttnOutput), Some(5));
        check("backbone.layers.1.mixer.up_proj.weight", Some(FfnUp), Some(1));
        check("backbone.layers.1.mixer.gate.weight", Some(FfnGateInp), Some(1));
        check("backbone.layers.1.mixer.gate.e_score_correction_bias", Some(ExpProbsB), Some(1));
        check("backbone.layers.1.mixer.experts.7.down_proj.weight", Some(FfnDownExps), Some(1));
        check("backbone.layers.1.mixer.shared_experts.up_proj.weight", Some(FfnUpShexp), Some(1));
        check("model.layers.2.mamba.A_log", Some(SsmA), Some(2));
        check("model.layers.2.mamba.in_proj.weight", Some(SsmIn), Some(2));
        check("model.layers.2.shared_mlp.input_linear.weight", Some(FfnUpShexp), Some(2));
        check("model.layers.2.shared_mlp.output_linear.weight", Some(FfnDownShexp), Some(2));
        check("model.layers.2.block_sparse_moe.input_linear.weight", Some(FfnGateUpExps), Some(2));
        check("model.layers.2.block_sparse_moe.router.layer.weight", Some(FfnGateInp), Some(2));
        check("model.layers.0.block_sparse_moe.gate.weight", Some(FfnGateInp), Some(0));
        assert!(is_speculative_head("mtp.layers.0.self_attn.q_proj.weight"));
        assert!(is_speculative_head("model.mtp_block.0.mlp.up_proj.weight"));
        assert!(is_speculative_head("model.mtp_linear_proj.0.weight"));
        assert!(!is_speculative_head("model.layers.3.mlp.moe_statics.e_score_correction_bias"));
        assert!(!is_speculative_head("model.layers.0.mtp.weight"));
    }

    #[test]
    fn hugging_face_names() {
        check("model.layers.12.self_attn.q_proj.weight", Some(AttnQ), Some(12));
        check("model.layers.0.self_attn.o_proj.weight", Some(AttnOutput), Some(0));
        check("model.layers.1.mlp.experts.3.w1.weight", Some(FfnGateExps), Some(1));
        check("model.layers.1.block_sparse_moe.experts.3.w2.weight", Some(FfnDownExps), Some(1));
        check("model.layers.1.block_sparse_moe.gate.weight", Some(FfnGateInp), Some(1));
        check("model.layers.5.mlp.experts.7.gate_proj.weight", Some(FfnGateExps), Some(5));
        check("model.layers.5.mlp.shared_experts.up_proj.weight", Some(FfnUpShexp), Some(5));
        check("model.layers.5.mlp.gate.e_score_correction_bias", Some(ExpProbsB), Some(5));
        check("model.layers.2.self_attn.kv_a_proj_with_mqa.weight", Some(AttnKvAMqa), Some(2));
        check("model.layers.2.self_attn.kv_a_layernorm.weight", Some(AttnKvANorm), Some(2));
        check("model.layers.2.self_attn.qkv_proj.weight", Some(AttnQkv), Some(2));
        check("model.layers.2.mlp.gate_up_proj.weight", Some(FfnGateUp), Some(2));
        check("transformer.h.3.self_attention.query_key_value.weight", Some(AttnQkv), Some(3));
        check("transformer.h.3.self_attention.dense.weight", Some(AttnOutput), Some(3));
        check("transformer.h.3.mlp.dense_4h_to_h.weight", Some(FfnDown), Some(3));
        check("transformer.h.3.ln_mlp.bias", Some(FfnNorm), Some(3));
        check("gpt_neox.layers.0.attention.query_key_value.bias", Some(AttnQkv), Some(0));
        check("gpt_neox.layers.0.attention.dense.weight", Some(AttnOutput), Some(0));
        check("gpt_neox.layers.0.attention.rotary_emb.inv_freq", None, Some(0));
        check("lm_head.weight", Some(Output), None);
        check("model.embed_tokens.weight", Some(TokenEmbd), None);
        check("model.norm.weight", Some(OutputNorm), None);
        check("gpt_neox.final_layer_norm.weight", Some(OutputNorm), None);
        check("model.layers.4.post_feedforward_layernorm.weight", Some(FfnNorm), Some(4));
        check("model.layers.4.post_self_attn_layernorm.weight", Some(FfnNorm), Some(4));
        check("model.layers.4.post_mlp_layernorm.weight", Some(FfnNorm), Some(4));
        // Phi (phi-1.5, phi-2): `dense` under self_attn, fc1/fc2, one input_layernorm, lm_head bias.
        check("model.layers.3.self_attn.dense.bias", Some(AttnOutput), Some(3));
        check("model.layers.3.mlp.fc1.weight", Some(FfnUp), Some(3));
        check("model.layers.3.mlp.fc2.bias", Some(FfnDown), Some(3));
        check("model.layers.3.input_layernorm.bias", Some(AttnNorm), Some(3));
        check("model.final_layernorm.bias", Some(OutputNorm), None);
        check("lm_head.bias", Some(Output), None);
        // Qwen3 and Gemma 3: per-head q/k RMSNorms; Gemma 3's multimodal checkpoint nests the
        // language model and keeps the vision tower and projector out of the decoder layers.
        check("model.layers.5.self_attn.q_norm.weight", Some(AttnQNorm), Some(5));
        check("language_model.model.layers.5.self_attn.k_norm.weight", Some(AttnKNorm), Some(5));
        check("model.language_model.layers.61.mlp.down_proj.weight", Some(FfnDown), Some(61));
        check("vision_tower.vision_model.encoder.layers.3.self_attn.q_proj.weight", Some(VisionAttnQ), None);
        check("multi_modal_projector.mm_input_projection_weight", Some(MmInputProjection), None);
        check("model.layers.7.mlp.experts.127.down_proj.weight", Some(FfnDownExps), Some(7));
        check("model.layers.7.mlp.gate.weight", Some(FfnGateInp), Some(7));
    }

    /// gpt-oss's safetensors (openai/gpt-oss-120b `model.safetensors.index.json`): sinks, the
    /// biased router, and the experts' MXFP4 blocks and scales beside their bf16 biases.
    #[test]
    fn gpt_oss_names() {
        check("model.layers.0.self_attn.sinks", Some(AttnSinks), Some(0));
        check("model.layers.0.self_attn.q_proj.bias", Some(AttnQ), Some(0));
        check("model.layers.0.mlp.router.weight", Some(FfnGateInp), Some(0));
        check("model.layers.0.mlp.router.bias", Some(FfnGateInp), Some(0));
        check("model.layers.3.mlp.experts.gate_up_proj_blocks", Some(FfnGateUpExps), Some(3));
        check("model.layers.3.mlp.experts.gate_up_proj_scales", Some(FfnGateUpExps), Some(3));
        check("model.layers.3.mlp.experts.gate_up_proj_bias", Some(FfnGateUpExps), Some(3));
        check("model.layers.3.mlp.experts.gate_up_proj", Some(FfnGateUpExps), Some(3));
        check("model.layers.3.mlp.experts.down_proj_blocks", Some(FfnDownExps), Some(3));
        check("model.layers.3.mlp.experts.down_proj_scales", Some(FfnDownExps), Some(3));
        check("model.layers.3.mlp.experts.down_proj_bias", Some(FfnDownExps), Some(3));
        check("model.layers.3.post_attention_layernorm.weight", Some(FfnNorm), Some(3));
        // llama.cpp's gpt-oss GGUF.
        check("blk.5.attn_sinks.weight", Some(AttnSinks), Some(5));
        check("blk.5.ffn_gate_inp.bias", Some(FfnGateInp), Some(5));
        check("blk.5.ffn_up_exps.bias", Some(FfnUpExps), Some(5));
        check("blk.5.ffn_gate_up_exps.weight", Some(FfnGateUpExps), Some(5));
        check("blk.5.post_attention_norm.weight", Some(FfnNorm), Some(5));
    }

    /// Gemma 3's vision tower and projector, under transformers 4.50's names and 4.52's
    /// (`model.` prefix): vision roles, never a decoder layer.
    #[test]
    fn gemma3_vision_names() {
        let tower = "vision_tower.vision_model";
        check(&format!("{tower}.embeddings.patch_embedding.weight"), Some(VisionPatchEmbd), None);
        check(&format!("{tower}.embeddings.patch_embedding.bias"), Some(VisionPatchEmbd), None);
        check(&format!("{tower}.embeddings.position_embedding.weight"), Some(VisionPosEmbd), None);
        check(&format!("{tower}.encoder.layers.26.layer_norm2.bias"), Some(VisionNorm), None);
        check(&format!("{tower}.encoder.layers.0.self_attn.out_proj.weight"), Some(VisionAttnOutput), None);
        check(&format!("{tower}.encoder.layers.0.mlp.fc1.bias"), Some(VisionFfnUp), None);
        check(&format!("model.{tower}.encoder.layers.4.mlp.fc2.weight"), Some(VisionFfnDown), None);
        check(&format!("model.{tower}.post_layernorm.weight"), Some(VisionNorm), None);
        check("model.multi_modal_projector.mm_soft_emb_norm.weight", Some(MmSoftEmbNorm), None);
        check(&format!("{tower}.encoder.layers.0.self_attn.k_proj.weight.absmax"), Some(VisionAttnK), None);
        check("visual.blocks.0.attn.qkv.weight", Some(VisionAttnQkv), None);
    }

    /// Mistral Small 3.1's Pixtral and projector, Qwen3-VL's deepstack mergers.
    #[test]
    fn pixtral_and_deepstack_names() {
        let layer = "vision_tower.transformer.layers.3";
        check("vision_tower.patch_conv.weight", Some(VisionPatchEmbd), None);
        check("vision_tower.ln_pre.weight", Some(VisionNorm), None);
        check(&format!("{layer}.attention.o_proj.weight"), Some(VisionAttnOutput), None);
        check(&format!("{layer}.feed_forward.gate_proj.weight"), Some(VisionFfnUp), None);
        check(&format!("{layer}.feed_forward.down_proj.weight"), Some(VisionFfnDown), None);
        check("multi_modal_projector.patch_merger.merging_layer.weight", Some(MmMergerUp), None);
        check("multi_modal_projector.linear_2.weight", Some(MmMergerDown), None);
        check("language_model.model.layers.3.mlp.down_proj.weight", Some(FfnDown), Some(3));
        check("model.visual.deepstack_merger_list.1.linear_fc2.bias", Some(MmMergerDown), None);
        check("vision_tower.something_new.weight", Some(VisionNorm), None);
    }

    /// Kimi Linear's Delta Attention parameters under `self_attn`, as its download lists them.
    #[test]
    fn kimi_delta_attention_names() {
        let l = "model.layers.5.self_attn";
        check(&format!("{l}.f_b_proj.weight"), Some(SsmAlpha), Some(5));
        check(&format!("{l}.g_a_proj.weight"), Some(SsmInZ), Some(5));
        check(&format!("{l}.b_proj.weight"), Some(SsmBeta), Some(5));
        check(&format!("{l}.k_conv1d.weight"), Some(SsmConv1d), Some(5));
        check(&format!("{l}.o_norm.weight"), Some(SsmNorm), Some(5));
        check(&format!("{l}.dt_bias"), Some(SsmDt), Some(5));
        check(&format!("{l}.A_log"), Some(SsmA), Some(5));
        check(&format!("{l}.q_proj.weight"), Some(AttnQ), Some(5));
        check("model.layers.3.self_attn.kv_a_proj_with_mqa.weight", Some(AttnKvAMqa), Some(3));
    }

    /// Kimi K2.5's MoonViT and projector, as its download lists them.
    #[test]
    fn moonvit_names() {
        let block = "vision_tower.encoder.blocks.26";
        check(&format!("{block}.wqkv.bias"), Some(VisionAttnQkv), None);
        check(&format!("{block}.wo.weight"), Some(VisionAttnProj), None);
        check(&format!("{block}.mlp.fc0.weight"), Some(VisionMlpFc1), None);
        check(&format!("{block}.mlp.fc1.bias"), Some(VisionMlpFc2), None);
        check(&format!("{block}.norm0.weight"), Some(VisionNorm), None);
        check("vision_tower.patch_embed.pos_emb.weight", Some(VisionPosEmbd), None);
        check("vision_tower.patch_embed.proj.bias", Some(VisionPatchEmbd), None);
        check("mm_projector.pre_norm.bias", Some(VisionNorm), None);
        check("mm_projector.proj.0.weight", Some(MmMergerUp), None);
        check("mm_projector.proj.2.bias", Some(MmMergerDown), None);
        check("language_model.model.layers.1.mlp.experts.7.up_proj.weight_packed", Some(FfnUpExps), Some(1));
    }

    /// Llama 4's checkpoint: the language model under `language_model`, its experts' fused
    /// bare parameters, and the vision encoder, adapter and projector.
    #[test]
    fn llama4_names() {
        let lm = "language_model.model.layers.3.feed_forward";
        check(&format!("{lm}.experts.gate_up_proj"), Some(FfnGateUpExps), Some(3));
        check(&format!("{lm}.experts.down_proj"), Some(FfnDownExps), Some(3));
        check(&format!("{lm}.router.weight"), Some(FfnGateInp), Some(3));
        check(&format!("{lm}.shared_expert.gate_proj.weight"), Some(FfnGateShexp), Some(3));
        check("language_model.lm_head.weight", Some(Output), None);
        check("vision_model.patch_embedding.linear.weight", Some(VisionPatchEmbd), None);
        check("vision_model.class_embedding", Some(VisionPosEmbd), None);
        check("vision_model.positional_embedding_vlm", Some(VisionPosEmbd), None);
        check("vision_model.layernorm_pre.bias", Some(VisionNorm), None);
        check("vision_model.model.layers.0.self_attn.o_proj.bias", Some(VisionAttnOutput), None);
        check("vision_model.model.layers.0.input_layernorm.weight", Some(VisionNorm), None);
        check("vision_model.model.layers.0.mlp.fc1.weight", Some(VisionFfnUp), None);
        check("vision_model.vision_adapter.mlp.fc2.weight", Some(MmMergerDown), None);
        check("multi_modal_projector.linear_1.weight", Some(MmInputProjection), None);
    }

    /// DeepSeek-V3.2's indexer, under Hugging Face's names and llama.cpp's.
    #[test]
    fn deepseek_v32_indexer_names() {
        check("model.layers.4.self_attn.indexer.wq_b.weight", Some(IndexerQB), Some(4));
        check("model.layers.4.self_attn.indexer.wk.weight_scale_inv", Some(IndexerK), Some(4));
        check("model.layers.4.self_attn.indexer.k_norm.bias", Some(IndexerKNorm), Some(4));
        check("model.layers.4.self_attn.indexer.weights_proj.weight", Some(IndexerProj), Some(4));
        check("blk.4.indexer.attn_q_b.weight", Some(IndexerQB), Some(4));
        check("blk.4.indexer.k_norm.bias", Some(IndexerKNorm), Some(4));
    }

    /// GPT-2 (no `transformer.` prefix in its checkpoint), OPT, BLOOM, GPT-J and MPT.
    #[test]
    fn gpt2_era_names() {
        check("wpe.weight", Some(PosEmbd), None);
        check("h.3.attn.c_attn.weight", Some(AttnQkv), Some(3));
        check("h.3.attn.c_proj.bias", Some(AttnOutput), Some(3));
        check("h.3.mlp.c_proj.weight", Some(FfnDown), Some(3));
        assert!(is_runtime_buffer("h.3.attn.bias") && is_runtime_buffer("transformer.h.0.attn.masked_bias"));
        assert!(!is_runtime_buffer("h.3.attn.c_attn.bias"));
        check("decoder.embed_positions.weight", Some(PosEmbd), None);
        check("decoder.layers.2.self_attn_layer_norm.bias", Some(AttnNorm), Some(2));
        check("decoder.layers.2.final_layer_norm.weight", Some(FfnNorm), Some(2));
        check("decoder.final_layer_norm.weight", Some(OutputNorm), None);
        check("word_embeddings_layernorm.bias", Some(TokenEmbdNorm), None);
        check("transformer.h.1.mlp.fc_in.weight", Some(FfnUp), Some(1));
        check("transformer.blocks.4.norm_2.weight", Some(FfnNorm), Some(4));
        check("transformer.blocks.4.attn.Wqkv.weight", Some(AttnQkv), Some(4));
        check("transformer.blocks.4.ffn.down_proj.weight", Some(FfnDown), Some(4));
        check("blk.0.position_embd.weight", None, Some(0));
        check("position_embd.weight", Some(PosEmbd), None);
        check("token_embd_norm.bias", Some(TokenEmbdNorm), None);
    }

    /// InternLM2's fused `wqkv` and StableLM 2's numbered per-head norms.
    #[test]
    fn internlm2_and_stablelm_names() {
        check("model.layers.3.attention.wqkv.weight", Some(AttnQkv), Some(3));
        check("model.layers.3.attention.wo.weight", Some(AttnOutput), Some(3));
        check("model.layers.3.attention_norm.weight", Some(AttnNorm), Some(3));
        check("model.layers.3.ffn_norm.weight", Some(FfnNorm), Some(3));
        check("model.layers.3.feed_forward.w3.weight", Some(FfnUp), Some(3));
        check("model.tok_embeddings.weight", Some(TokenEmbd), None);
        check("output.weight", Some(Output), None);
        check("model.layers.5.self_attn.q_layernorm.norms.7.weight", Some(AttnQNorm), Some(5));
        check("model.layers.5.self_attn.k_layernorm.norms.0.weight", Some(AttnKNorm), Some(5));
        check("model.layers.5.mlp.c_fc.bias", Some(FfnUp), Some(5));
        check("model.layers.5.mlp.c_proj.weight", Some(FfnDown), Some(5));
    }

    #[test]
    fn quantizer_parts_keep_their_module_role() {
        for part in ["qweight", "qzeros", "scales", "biases", "g_idx", "weight_scale", "weight_scale_inv", "SCB"] {
            check(&format!("model.layers.7.mlp.down_proj.{part}"), Some(FfnDown), Some(7));
        }
        for part in ["absmax", "quant_map", "nested_absmax", "quant_state.bitsandbytes__nf4"] {
            check(&format!("model.layers.7.self_attn.v_proj.weight.{part}"), Some(AttnV), Some(7));
        }
    }

    #[test]
    fn gguf_names() {
        check("blk.12.attn_q.weight", Some(AttnQ), Some(12));
        check("blk.3.ffn_gate_exps.weight", Some(FfnGateExps), Some(3));
        check("blk.3.exp_probs_b.bias", Some(ExpProbsB), Some(3));
        check("blk.3.attn_k_b.weight", Some(AttnKvB), Some(3));
        check("blk.0.post_ffw_norm.weight", Some(FfnNorm), Some(0));
        check("blk.4.attn_q_norm.weight", Some(AttnQNorm), Some(4));
        check("blk.4.attn_k_norm.weight", Some(AttnKNorm), Some(4));
        check("token_embd.weight", Some(TokenEmbd), None);
        check("output.weight", Some(Output), None);
        check("output_norm.weight", Some(OutputNorm), None);
        check("rope_freqs.weight", None, None);
    }

    #[test]
    fn every_role_is_in_the_lookup_table() {
        for role in ROLES {
            assert_eq!(gguf_role(role.gguf_name()), Some(role));
        }
    }
}
