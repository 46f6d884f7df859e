//! The image path of a multimodal checkpoint: Gemma 3's SigLIP vision encoder (`vision_tower`)
//! and the projector (`multi_modal_projector`) that maps its patch features into the language
//! model's embedding space. Their weights sit beside the language model's on the GPU that holds
//! the embedding; they run only when a prompt carries an image, so they count for memory, never
//! for the per-token work of decoding.
//!
//! Shapes (transformers `modeling_siglip.py`, `modeling_gemma3.py`), for a tower of width `h`,
//! MLP width `i`, `L` layers, `c` channels, `p`-pixel patches of an `s`-pixel image, projecting
//! into a language model of width `d`:
//! - `patch_embedding`: `Conv2d(c, h, kernel p, stride p)`: `h·c·p²` weights and `h` biases;
//! - `position_embedding`: one `h`-vector per patch, `(s/p)²·h`;
//! - per layer: `layer_norm1` and `layer_norm2` (LayerNorm: weight and bias, `2h` each);
//!   `q_proj`, `k_proj`, `v_proj`, `out_proj` (`h×h` with bias); `fc1` (`h→i`) and `fc2` (`i→h`)
//!   with biases;
//! - `post_layernorm`: `2h` (no pooling head: Gemma 3 sets `vision_use_head` false);
//! - projector: `mm_soft_emb_norm` (Gemma RMSNorm, weight only, `h`) and
//!   `mm_input_projection_weight`, a bare `h × d` parameter (not an `nn.Linear`).
//!
//! Worked example, Gemma 3 27B (h 1152, i 4304, 27 layers, 3 channels, 14-pixel patches of 896,
//! d 5376): patch embedding 1152·588 + 1152 = 678,528; positions 64²·1152 = 4,718,592; per layer
//! 4·(1152² + 1152) + 2·(1152·4304) + 4304 + 1152 + 2·2·1152 = 15,239,504; post norm 2,304;
//! tower 678,528 + 4,718,592 + 27·15,239,504 + 2,304 = 416,866,032. Projector 1152·5376 + 1152
//! = 6,194,304. With the language model's 27,009,346,304 that is 27,432,406,640, keras-hub's
//! published count for MedGemma 27B (`gemma3_presets.py`, `medgemma_instruct_27b`).

//!
//! Qwen3.5's vision model (transformers `Qwen3_5VisionModel`, Qwen3-VL's ViT without deepstack
//! mergers) differs: `patch_embed` is a `Conv3d(c, h, kernel (t, p, p))` over `t` frames, with
//! bias; `pos_embed` is a table of `num_position_embeddings` rows; each block has two LayerNorms,
//! a fused `attn.qkv` (`3h × h`) and `attn.proj`, and `mlp.linear_fc1` / `linear_fc2`, all with
//! biases; the `merger` normalises (LayerNorm over `h`), concatenates 2×2 patches (`m = 4h`) and
//! projects `m → m → out_hidden_size` (two linears with biases). Qwen3.5-9B (h 1152, i 4304, 27
//! blocks, 16-pixel patches over 2 frames, 2,304 positions, out 4096): patch embedding
//! 1152·3·2·16·16 + 1152 = 1,770,624; positions 2,654,208; per block 2·2·1152 + 3456·1152 + 3456 +
//! 1152² + 1152 + 2·1152·4304 + 4304 + 1152 = 15,239,504; merger 2·1152 + 4608² + 4608 +
//! 4096·4608 + 4096 = 40,119,040; in all 456,010,480, the vision share of the published
//! 9,653,104,368 (beside 8,953,803,264 of language model and a 243,290,624-parameter
//! multi-token-prediction layer).

use super::tensors::{Part, Role, TensorDesc};
use serde::Serialize;

/// Which vision encoder a multimodal checkpoint carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum VisionKind {
    /// SigLIP with Gemma 3's projector.
    Siglip,
    /// Qwen's ViT (Qwen3-VL, Qwen3.5) with its patch merger.
    QwenVit,
    /// Llama 4's vision encoder with its pixel-shuffle adapter and projector.
    Llama4,
    /// Qwen2.5-VL's ViT: RMSNorms, gated MLPs with biases, no learned positions, and its
    /// patch merger.
    Qwen25Vit,
    /// Mistral's Pixtral encoder (Mistral Small 3.1/3.2) with the patch merger and two-layer
    /// projector of `Mistral3MultiModalProjector`.
    Pixtral,
    /// Gemma 4's vision encoder (`Gemma4VisionModel`) and its `embed_vision` projector.
    Gemma4,
    /// Kimi K2.5's MoonViT-3D (`MoonViT3dPretrainedModel`) and its patch-merger projector: Qwen
    /// ViT's layout with a final LayerNorm before the projector's own.
    MoonVit,
}

/// The role of a SigLIP linear module by its name (`q_proj`, `k_proj`, `v_proj`, `out_proj`,
/// `fc1`, `fc2`): what checkpoint classification and peft's module names share.
pub fn linear_role(name: &str) -> Option<Role> {
    use Role::*;
    Some(match name {
        "q_proj" => VisionAttnQ,
        "k_proj" => VisionAttnK,
        "v_proj" => VisionAttnV,
        "out_proj" => VisionAttnOutput,
        "fc1" => VisionFfnUp,
        "fc2" => VisionFfnDown,
        _ => return None,
    })
}

/// The roles a peft module name selects in a Qwen ViT (`attn.qkv`, `attn.proj`, `mlp.linear_fc1`
/// and `linear_fc2`; the merger's `linear_fc1` and `linear_fc2` share the last two names).
pub fn qwen_vit_linear_roles(name: &str) -> &'static [Role] {
    use Role::*;
    match name {
        "qkv" => &[VisionAttnQkv],
        "proj" => &[VisionAttnProj],
        "linear_fc1" => &[VisionMlpFc1, MmMergerUp],
        "linear_fc2" => &[VisionMlpFc2, MmMergerDown],
        _ => &[],
    }
}

/// A vision encoder and the projector behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VisionTower {
    pub kind: VisionKind,
    /// Width of the encoder (`hidden_size`) and of the projector's input.
    pub hidden_size: u64,
    /// Width of each encoder layer's MLP (`fc1` outputs).
    pub intermediate_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    /// Pixels per side of one patch.
    pub patch_size: u64,
    /// Learned position embeddings: SigLIP's one per patch of its fixed image,
    /// `(image_size / patch_size)²`; Qwen's `num_position_embeddings` (interpolated to any image).
    pub positions: u64,
    /// Image channels (3 for RGB).
    pub num_channels: u64,
    /// Frames one patch spans (Qwen's `temporal_patch_size`; 1 for SigLIP).
    pub temporal_patch_size: u64,
    /// Patches merged per side into one language-model token (Qwen's `spatial_merge_size`; 1
    /// for SigLIP).
    pub spatial_merge_size: u64,
    /// Width the projector maps into: the language model's `hidden_size` (Qwen's
    /// `out_hidden_size`).
    pub text_hidden_size: u64,
    /// Llama 4: the width of the pixel-shuffle adapter's output and the projector's input
    /// (`projector_input_dim`, `projector_output_dim` and `vision_output_dim`, 4096 in every
    /// release); 0 for the other towers.
    pub adapter_width: u64,
    /// Qwen3-VL: extra patch mergers fed from intermediate blocks (`deepstack_visual_indexes`),
    /// each the merger's shape with its LayerNorm over the merged width; 0 elsewhere.
    pub deepstack_mergers: u64,
    /// Pixtral: the projector's `linear_1` and `linear_2` carry biases
    /// (`multimodal_projector_bias`).
    pub projector_bias: bool,
    /// Gemma 4: a learned bias and scale standardize the pooled soft tokens (`standardize`).
    pub standardize: bool,
    /// Gemma 4 E2B/E4B: every encoder linear keeps four clipping bounds (`use_clipped_linears`:
    /// `input_min`, `input_max`, `output_min`, `output_max`, one scalar each).
    pub clipped_linears: bool,
}

impl VisionTower {
    /// A tower of `kind` projecting into `text_hidden_size`, its shape still to be filled in:
    /// RGB single-frame patches, no merging, adapter, deepstack mergers, projector biases,
    /// standardization or clipping bounds.
    pub const fn base(kind: VisionKind, text_hidden_size: u64) -> VisionTower {
        VisionTower {
            kind,
            hidden_size: 0,
            intermediate_size: 0,
            num_layers: 0,
            num_heads: 0,
            patch_size: 0,
            positions: 0,
            num_channels: 3,
            temporal_patch_size: 1,
            spatial_merge_size: 1,
            text_hidden_size,
            adapter_width: 0,
            deepstack_mergers: 0,
            projector_bias: false,
            standardize: false,
            clipped_linears: false,
        }
    }

    /// Parameters of the encoder and projector together.
    pub fn parameters(&self) -> u64 {
        elements_of(|out| self.push_tensors(out))
    }

    /// Appends every tensor of the encoder and projector, in module order, each with no decoder
    /// layer (`layer: None`) and one tensor per encoder layer. Kimi K2.5's MoonViT (vLLM
    /// `kimi_k25_vit.py`; h 1152, i 4304, 27 blocks, 14-pixel patches, a 64 × 64 position
    /// table, merge 2 × 2, text 7168): the biased patch convolution 678,528, positions 4,718,592,
    /// 27 blocks of two LayerNorms, biased `wqkv`, `wo`, `fc0`, `fc1` (15,239,504 each), the
    /// final LayerNorm 2,304: 416,866,032; the projector's `pre_norm`, `linear_1` (4608²) and
    /// `linear_2` (4608 → 7168) with biases: 54,277,888.
    pub fn push_tensors(&self, out: &mut Vec<TensorDesc>) {
        match self.kind {
            VisionKind::Llama4 => return self.push_llama4(out),
            VisionKind::Qwen25Vit => return self.push_qwen25(out),
            VisionKind::Pixtral => return self.push_pixtral(out),
            VisionKind::Gemma4 => return self.push_gemma4(out),
            VisionKind::Siglip | VisionKind::QwenVit | VisionKind::MoonVit => {}
        }
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let conv_inputs = self.num_channels * self.temporal_patch_size * self.patch_size * self.patch_size;
        linear(Role::VisionPatchEmbd, h, conv_inputs, out);
        out.push(weight(Role::VisionPosEmbd, self.positions, h));
        if matches!(self.kind, VisionKind::QwenVit | VisionKind::MoonVit) {
            for _ in 0..self.num_layers {
                layer_norm(h, out);
                layer_norm(h, out);
                linear(Role::VisionAttnQkv, 3 * h, h, out);
                linear(Role::VisionAttnProj, h, h, out);
                linear(Role::VisionMlpFc1, i, h, out);
                linear(Role::VisionMlpFc2, h, i, out);
            }
            // MoonViT: the encoder's `final_layernorm`, then the projector's `pre_norm`.
            if self.kind == VisionKind::MoonVit {
                layer_norm(h, out);
            }
            let merged = h * self.spatial_merge_size.pow(2);
            for norm in std::iter::once(h).chain((0..self.deepstack_mergers).map(|_| merged)) {
                layer_norm(norm, out);
                linear(Role::MmMergerUp, merged, merged, out);
                linear(Role::MmMergerDown, self.text_hidden_size, merged, out);
            }
            return;
        }
        (0..self.num_layers).for_each(|_| encoder_layer(h, i, out));
        layer_norm(h, out);
        out.push(weight(Role::MmSoftEmbNorm, 1, h));
        // Stored as `[vision hidden, text hidden]` and applied as `x @ W`.
        out.push(weight(Role::MmInputProjection, h, self.text_hidden_size));
    }
}

impl VisionTower {
    /// Llama 4's `vision_model` and `multi_modal_projector` (transformers `modeling_llama4.py`):
    /// the patch embedding is an unfold and a bias-free linear (`h × c·p²`), then a class
    /// embedding (`h`), one position per patch and the class token (`((s/p)² + 1)·h`) and
    /// `layernorm_pre`; each layer two LayerNorms, q, k, v, o and fc1, fc2, all with biases;
    /// `layernorm_post`; the adapter's bias-free `fc1` (the pixel shuffle's `4h`, which
    /// transformers takes as `intermediate_size`, to the adapter width) and `fc2` (adapter width
    /// squared); the projector's bias-free `linear_1` into the language model. Scout and
    /// Maverick (h 1408, i 5632, 34 layers, 14-pixel patches of 336, adapter 4096, text 5120):
    /// 827,904 + 1,408 + 812,416 + 2·2,816 + 34·23,807,872 + 5632·4096 + 4096² = 850,960,896 and
    /// the projector 20,971,520.
    fn push_llama4(&self, out: &mut Vec<TensorDesc>) {
        let (h, i, a) = (self.hidden_size, self.intermediate_size, self.adapter_width);
        out.push(weight(Role::VisionPatchEmbd, h, self.num_channels * self.patch_size * self.patch_size));
        out.push(weight(Role::VisionPosEmbd, 1, h));
        out.push(weight(Role::VisionPosEmbd, self.positions, h));
        layer_norm(h, out);
        (0..self.num_layers).for_each(|_| encoder_layer(h, i, out));
        layer_norm(h, out);
        out.push(weight(Role::MmMergerUp, a, i));
        out.push(weight(Role::MmMergerDown, a, a));
        out.push(weight(Role::MmInputProjection, self.text_hidden_size, a));
    }
}

impl VisionTower {
    /// Qwen2.5-VL's ViT (transformers `modeling_qwen2_5_vl.py`): a bias-free `Conv3d` patch
    /// embedding, no learned positions (2-D RoPE), per block two RMSNorms (weights), a fused
    /// `qkv` and `proj` with biases and a gated MLP (`gate_proj`, `up_proj`, `down_proj`) with
    /// biases; the merger's `ln_q` (RMSNorm) and `mlp.0`, `mlp.2` with biases. Qwen2.5-VL-7B (h
    /// 1280, i 3420, 32 blocks, 14-pixel patches over 2 frames, merge 2, out 3584): 1,505,280 +
    /// 32·19,702,200 + 44,574,464 = 676,550,144, the Hub total less Qwen2.5-7B's.
    fn push_qwen25(&self, out: &mut Vec<TensorDesc>) {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let conv_inputs = self.num_channels * self.temporal_patch_size * self.patch_size * self.patch_size;
        out.push(weight(Role::VisionPatchEmbd, h, conv_inputs));
        for _ in 0..self.num_layers {
            out.push(weight(Role::VisionNorm, 1, h));
            out.push(weight(Role::VisionNorm, 1, h));
            linear(Role::VisionAttnQkv, 3 * h, h, out);
            linear(Role::VisionAttnProj, h, h, out);
            linear(Role::VisionMlpFc1, i, h, out);
            linear(Role::VisionMlpFc1, i, h, out);
            linear(Role::VisionMlpFc2, h, i, out);
        }
        let merged = h * self.spatial_merge_size.pow(2);
        out.push(weight(Role::VisionNorm, 1, h));
        linear(Role::MmMergerUp, merged, merged, out);
        linear(Role::MmMergerDown, self.text_hidden_size, merged, out);
    }

    /// Pixtral (transformers `modeling_pixtral.py`) and Mistral 3's projector
    /// (`modular_mistral3.py`): a bias-free patch convolution, `ln_pre` (RMSNorm), no learned
    /// positions (2-D RoPE); per layer an RMSNorm, bias-free q, k, v, o, an RMSNorm and a gated
    /// MLP without biases; then the projector's RMSNorm, the patch merger's bias-free
    /// `merging_layer` (`h·m² → h`), `linear_1` (`h → text`) and `linear_2` (`text → text`), biased
    /// when `multimodal_projector_bias`. Mistral Small 3.1 (h 1024, i 4096, 24 layers, 14-pixel
    /// patches, merge 2, text 5120): 403,305,472 + 35,652,608.
    fn push_pixtral(&self, out: &mut Vec<TensorDesc>) {
        let (h, i, t) = (self.hidden_size, self.intermediate_size, self.text_hidden_size);
        out.push(weight(Role::VisionPatchEmbd, h, self.num_channels * self.patch_size * self.patch_size));
        out.push(weight(Role::VisionNorm, 1, h));
        for _ in 0..self.num_layers {
            out.push(weight(Role::VisionNorm, 1, h));
            for role in [Role::VisionAttnQ, Role::VisionAttnK, Role::VisionAttnV, Role::VisionAttnOutput] {
                out.push(weight(role, h, h));
            }
            out.push(weight(Role::VisionNorm, 1, h));
            out.push(weight(Role::VisionFfnUp, i, h));
            out.push(weight(Role::VisionFfnUp, i, h));
            out.push(weight(Role::VisionFfnDown, h, i));
        }
        out.push(weight(Role::VisionNorm, 1, h));
        out.push(weight(Role::MmMergerUp, h, h * self.spatial_merge_size.pow(2)));
        for (role, cols) in [(Role::MmInputProjection, h), (Role::MmMergerDown, t)] {
            out.push(weight(role, t, cols));
            if self.projector_bias {
                out.push(bias(role, t));
            }
        }
    }
}

impl VisionTower {
    /// Gemma 4's encoder (transformers `modeling_gemma4.py`): a bias-free `input_proj`
    /// (`h × c·p²`) and a position table of two axes (`2 × position_embedding_size × h`); per
    /// layer Gemma 3's four RMSNorms, bias-free q, k, v, o (heads of `h / heads`) with q and k
    /// norms (v's has no weight) and a bias-free gated MLP; with `standardize` a bias and a scale
    /// (`h` each); the projector's bias-free `embedding_projection` (`text × h`, its norm
    /// weightless). Gemma 4 31B (h 1152, i 4304, 27 layers, 16 heads, 16-pixel patches, 10,240
    /// positions, text 5376): 884,736 + 23,592,960 + 27·20,187,792 + 2,304 + 6,193,152 =
    /// 575,743,536, which with the language model's 30,697,345,340 is the 31,273,088,876 the
    /// checkpoint holds.
    fn push_gemma4(&self, out: &mut Vec<TensorDesc>) {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let head_dim = h / self.num_heads.max(1);
        out.push(weight(Role::VisionPatchEmbd, h, self.num_channels * self.patch_size * self.patch_size));
        out.push(weight(Role::VisionPosEmbd, 2 * self.positions, h));
        let clip = |out: &mut Vec<TensorDesc>| {
            if self.clipped_linears {
                out.push(weight(Role::VisionNorm, 1, 4));
            }
        };
        for _ in 0..self.num_layers {
            for role in [Role::VisionAttnQ, Role::VisionAttnK, Role::VisionAttnV, Role::VisionAttnOutput] {
                out.push(weight(role, h, h));
                clip(out);
            }
            out.push(weight(Role::VisionNorm, 1, head_dim));
            out.push(weight(Role::VisionNorm, 1, head_dim));
            for (role, rows, cols) in
                [(Role::VisionFfnUp, i, h), (Role::VisionFfnUp, i, h), (Role::VisionFfnDown, h, i)]
            {
                out.push(weight(role, rows, cols));
                clip(out);
            }
            (0..4).for_each(|_| out.push(weight(Role::VisionNorm, 1, h)));
        }
        if self.standardize {
            out.push(weight(Role::VisionNorm, 1, 2 * h));
        }
        out.push(weight(Role::MmInputProjection, self.text_hidden_size, h));
    }
}

/// Gemma 4 E2B's and E4B's audio encoder (transformers `Gemma4AudioModel`) and its `embed_audio`
/// projector: a conformer that, like the vision tower, sits on the GPU that holds the embedding
/// in 16 bits and runs only on audio, so its tensors take the vision roles (memory, never the
/// per-token work).
///
/// Shapes for hidden `D`, `N` layers of `nh` heads (`dh = D / nh`), depthwise kernel `K`,
/// subsampling channels `(c0, c1)`, output `O`, text hidden `T`: the subsampler's two bias-free
/// 3×3 convolutions (`c0·9`, `c1·c0·9`) with a weight-only LayerNorm each and its `input_proj`
/// (`D × (c0/4)·c1`); per layer two macaron feed-forwards (`4D × D`, `D × 4D`, two norms each),
/// q, k, v and `post` (`D × D`), `relative_k_proj` (`D × D`) and `per_dim_scale` (`dh`), the
/// light convolution (`linear_start` `2D × D`, the depthwise `D·K`, `linear_end` `D × D`, two
/// norms) and three norms: 24·D² + (9 + K)·D + dh, and with clipped linears four scalars on each
/// of its ten linears; `output_proj` (`O × D` and its bias); the projector `T × O`. Released
/// E2B/E4B (D 1024, 12 layers of 8 heads, K 5, (128, 32), O 1536): 1,086,752 + 12·25,180,328 +
/// 1,574,400 = 304,825,088, and the projector 1536·1536 (E2B) or 2560·1536 (E4B).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct AudioTower {
    /// The conformer's width (`hidden_size`, `D`).
    pub hidden_size: u64,
    pub num_layers: u64,
    /// Attention heads (`D / heads` wide: `per_dim_scale`'s length).
    pub num_heads: u64,
    /// The light convolution's depthwise kernel (`conv_kernel_size`).
    pub conv_kernel: u64,
    /// The subsampler's two convolutions' output channels (`subsampling_conv_channels`).
    pub subsampling_channels: (u64, u64),
    /// `output_proj`'s width (`output_proj_dims`), the projector's input.
    pub output_dims: u64,
    /// Four clipping bounds on each linear (`use_clipped_linears`).
    pub clipped_linears: bool,
    /// The language model's width, the projector's output.
    pub text_hidden_size: u64,
}

impl AudioTower {
    pub fn parameters(&self) -> u64 {
        elements_of(|out| self.push_tensors(out))
    }

    pub fn push_tensors(&self, out: &mut Vec<TensorDesc>) {
        let (d, (c0, c1), o) = (self.hidden_size, self.subsampling_channels, self.output_dims);
        let norm = |len, out: &mut Vec<TensorDesc>| out.push(weight(Role::VisionNorm, 1, len));
        let linear = |rows, cols, out: &mut Vec<TensorDesc>| {
            out.push(weight(Role::VisionFfnUp, rows, cols));
            if self.clipped_linears {
                norm(4, out);
            }
        };
        out.push(weight(Role::VisionPatchEmbd, c0, 9));
        norm(c0, out);
        out.push(weight(Role::VisionPatchEmbd, c1, c0 * 9));
        norm(c1, out);
        out.push(weight(Role::VisionFfnUp, d, c0 / 4 * c1));
        for _ in 0..self.num_layers {
            for _ in 0..2 {
                linear(4 * d, d, out);
                linear(d, 4 * d, out);
                (0..2).for_each(|_| norm(d, out));
            }
            (0..4).for_each(|_| linear(d, d, out));
            out.push(weight(Role::VisionFfnUp, d, d));
            norm(d / self.num_heads.max(1), out);
            linear(2 * d, d, out);
            out.push(weight(Role::VisionPatchEmbd, d, self.conv_kernel));
            linear(d, d, out);
            (0..5).for_each(|_| norm(d, out));
        }
        out.push(weight(Role::VisionFfnUp, o, d));
        out.push(bias(Role::VisionFfnUp, o));
        out.push(weight(Role::MmInputProjection, self.text_hidden_size, o));
    }
}

/// Elements of the tensors `push` appends.
fn elements_of(push: impl FnOnce(&mut Vec<TensorDesc>)) -> u64 {
    let mut tensors = Vec::new();
    push(&mut tensors);
    tensors.iter().map(TensorDesc::elements).sum()
}

fn weight(role: Role, rows: u64, cols: u64) -> TensorDesc {
    TensorDesc { role, part: Part::Weight, layer: None, rows, cols, copies: 1 }
}

fn bias(role: Role, len: u64) -> TensorDesc {
    TensorDesc { part: Part::Bias, ..weight(role, 1, len) }
}

/// A weight `cols -> rows` and its `rows`-long bias.
fn linear(role: Role, rows: u64, cols: u64, out: &mut Vec<TensorDesc>) {
    out.push(weight(role, rows, cols));
    out.push(bias(role, rows));
}

/// One encoder layer of SigLIP and of Llama 4's tower: a LayerNorm, q, k, v and the output
/// projection (`h × h` with biases), a LayerNorm, and the MLP's `h → i → h` with biases.
fn encoder_layer(h: u64, i: u64, out: &mut Vec<TensorDesc>) {
    layer_norm(h, out);
    for role in [Role::VisionAttnQ, Role::VisionAttnK, Role::VisionAttnV, Role::VisionAttnOutput] {
        linear(role, h, h, out);
    }
    layer_norm(h, out);
    linear(Role::VisionFfnUp, i, h, out);
    linear(Role::VisionFfnDown, h, i, out);
}

/// A LayerNorm: an `h`-long weight and an `h`-long bias.
fn layer_norm(h: u64, out: &mut Vec<TensorDesc>) {
    out.push(weight(Role::VisionNorm, 1, h));
    out.push(bias(Role::VisionNorm, h));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gemma 3 27B's `vision_config` (and 4B's, 12B's: the same tower) with a 5376-wide
    /// language model.
    const GEMMA_3_27B: VisionTower = VisionTower {
        hidden_size: 1152,
        intermediate_size: 4304,
        num_layers: 27,
        num_heads: 16,
        patch_size: 14,
        positions: 4096,
        ..VisionTower::base(VisionKind::Siglip, 5376)
    };

    /// The Qwen3.5 doc's worked example (the 9B's `vision_config`), and the 35B-A3B's tower
    /// (out 2048): 446,571,248, the published total's vision share.
    #[test]
    fn qwen3_5_vit_and_merger() {
        let tower = VisionTower {
            kind: VisionKind::QwenVit,
            patch_size: 16,
            positions: 2304,
            temporal_patch_size: 2,
            spatial_merge_size: 2,
            text_hidden_size: 4096,
            ..GEMMA_3_27B
        };
        let mut tensors = Vec::new();
        tower.push_tensors(&mut tensors);
        let sum =
            |keep: fn(Role) -> bool| -> u64 { tensors.iter().filter(|t| keep(t.role)).map(TensorDesc::elements).sum() };
        assert_eq!(sum(|r| r == Role::VisionPatchEmbd), 1_770_624);
        assert_eq!(sum(|r| r == Role::VisionPosEmbd), 2_654_208);
        assert_eq!(sum(|r| matches!(r, Role::MmMergerUp | Role::MmMergerDown)) + 2 * 1152, 40_119_040);
        assert_eq!(tower.parameters(), 456_010_480);
        assert_eq!(VisionTower { text_hidden_size: 2048, ..tower }.parameters(), 446_571_248);
        // Qwen3-VL-8B's tower: the same and three deepstack mergers whose LayerNorms span the
        // merged 4608: 576,388,336, the Hub total less Qwen3-8B's.
        assert_eq!(VisionTower { deepstack_mergers: 3, ..tower }.parameters(), 576_388_336);
        // Per block: qkv, proj, fc1, fc2; and the merger's two linears.
        assert_eq!(tensors.iter().filter(|t| t.part == Part::Weight && t.role.is_vision_linear()).count(), 27 * 4 + 2);
    }

    /// The module doc's worked example, term by term.
    #[test]
    fn gemma_3_27b_tower_and_projector() {
        let mut tensors = Vec::new();
        GEMMA_3_27B.push_tensors(&mut tensors);
        let sum =
            |keep: fn(Role) -> bool| -> u64 { tensors.iter().filter(|t| keep(t.role)).map(TensorDesc::elements).sum() };
        assert_eq!(sum(|r| r == Role::VisionPatchEmbd), 678_528);
        assert_eq!(sum(|r| r == Role::VisionPosEmbd), 4_718_592);
        assert_eq!(sum(|r| !matches!(r, Role::MmSoftEmbNorm | Role::MmInputProjection)), 416_866_032);
        assert_eq!(sum(|r| matches!(r, Role::MmSoftEmbNorm | Role::MmInputProjection)), 6_194_304);
        assert_eq!(GEMMA_3_27B.parameters(), 416_866_032 + 6_194_304);
        assert!(tensors.iter().all(|t| t.layer.is_none() && t.copies == 1 && t.role.is_vision()));
        // 27 layers of q, k, v, out, fc1, fc2: the nn.Linear modules peft's all-linear wraps.
        assert_eq!(tensors.iter().filter(|t| t.part == Part::Weight && t.role.is_vision_linear()).count(), 27 * 6);
    }

    /// Llama 4 Scout's and Maverick's `vision_config` (the Hub's, not the class defaults):
    /// the doc's worked example.
    #[test]
    fn llama4_tower_adapter_and_projector() {
        let tower = VisionTower {
            kind: VisionKind::Llama4,
            hidden_size: 1408,
            intermediate_size: 5632,
            num_layers: 34,
            num_heads: 16,
            patch_size: 14,
            positions: 24 * 24 + 1,
            text_hidden_size: 5120,
            adapter_width: 4096,
            ..GEMMA_3_27B
        };
        let mut tensors = Vec::new();
        tower.push_tensors(&mut tensors);
        let projector: u64 =
            tensors.iter().filter(|t| t.role == Role::MmInputProjection).map(TensorDesc::elements).sum();
        assert_eq!((tower.parameters() - projector, projector), (850_960_896, 20_971_520));
        let per_layer = 4 * (1408 * 1408 + 1408) + 2 * 1408 * 5632 + 5632 + 1408 + 4 * 1408;
        assert_eq!(per_layer, 23_807_872);
    }

    /// Qwen2.5-VL-7B's and Mistral Small 3.1's towers: the worked examples of `push_qwen25` and
    /// `push_pixtral`.
    #[test]
    fn qwen25_vl_and_pixtral_towers() {
        let qwen25 = VisionTower {
            kind: VisionKind::Qwen25Vit,
            hidden_size: 1280,
            intermediate_size: 3420,
            num_layers: 32,
            patch_size: 14,
            positions: 0,
            temporal_patch_size: 2,
            spatial_merge_size: 2,
            text_hidden_size: 3584,
            ..GEMMA_3_27B
        };
        assert_eq!(qwen25.parameters(), 676_550_144);
        let pixtral = VisionTower {
            kind: VisionKind::Pixtral,
            hidden_size: 1024,
            intermediate_size: 4096,
            num_layers: 24,
            patch_size: 14,
            positions: 0,
            spatial_merge_size: 2,
            text_hidden_size: 5120,
            ..GEMMA_3_27B
        };
        assert_eq!(pixtral.parameters(), 403_305_472 + 35_652_608);
        assert_eq!(VisionTower { projector_bias: true, ..pixtral }.parameters(), 403_305_472 + 35_652_608 + 2 * 5120);
    }

    /// Gemma 4 E2B's audio encoder and projector: the worked example of `AudioTower`.
    #[test]
    fn gemma4_audio_tower() {
        let audio = AudioTower {
            hidden_size: 1024,
            num_layers: 12,
            num_heads: 8,
            conv_kernel: 5,
            subsampling_channels: (128, 32),
            output_dims: 1536,
            clipped_linears: true,
            text_hidden_size: 1536,
        };
        assert_eq!(audio.parameters(), 304_825_088 + 1536 * 1536);
        let per_layer = 24 * 1024 * 1024 + 14 * 1024 + 128 + 40;
        assert_eq!(per_layer, 25_180_328);
    }

    /// Kimi K2.5's `vision_config` (the `KimiK25VisionConfig` defaults): the worked example of
    /// `push_tensors`.
    #[test]
    fn moonvit_tower_and_projector() {
        let tower = VisionTower {
            kind: VisionKind::MoonVit,
            hidden_size: 1152,
            intermediate_size: 4304,
            num_layers: 27,
            num_heads: 16,
            patch_size: 14,
            positions: 64 * 64,
            spatial_merge_size: 2,
            ..VisionTower::base(VisionKind::MoonVit, 7168)
        };
        assert_eq!(tower.parameters(), 416_866_032 + 54_277_888);
    }

    /// Gemma 4 31B's `vision_config`: the worked example of `push_gemma4`.
    #[test]
    fn gemma4_tower_and_projector() {
        let tower = VisionTower {
            kind: VisionKind::Gemma4,
            patch_size: 16,
            positions: 10_240,
            standardize: true,
            ..GEMMA_3_27B
        };
        assert_eq!(tower.parameters(), 575_743_536);
        let per_layer = 4 * 1152 * 1152 + 2 * 72 + 3 * 1152 * 4304 + 4 * 1152;
        assert_eq!(per_layer, 20_187_792);
        // E2B/E4B's clipped linears: four scalars on each of a layer's seven.
        let clipped = VisionTower { clipped_linears: true, ..tower };
        assert_eq!(clipped.parameters() - tower.parameters(), 27 * 7 * 4);
    }
}
