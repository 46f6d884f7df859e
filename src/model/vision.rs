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

use super::tensors::{Part, Role, TensorDesc};
use serde::Serialize;

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

/// A SigLIP vision encoder and the Gemma 3 projector behind it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct VisionTower {
    /// Width of the encoder (SigLIP `hidden_size`) and of the projector's input.
    pub hidden_size: u64,
    /// Width of each encoder layer's MLP (`fc1` outputs).
    pub intermediate_size: u64,
    pub num_layers: u64,
    pub num_heads: u64,
    /// Pixels per side of one patch.
    pub patch_size: u64,
    /// Pixels per side of the image the encoder takes.
    pub image_size: u64,
    /// Image channels (3 for RGB).
    pub num_channels: u64,
    /// Width the projector maps into: the language model's `hidden_size`.
    pub text_hidden_size: u64,
}

impl VisionTower {
    /// Patches per image, each with its own position embedding: `(image_size / patch_size)²`.
    pub fn patches(&self) -> u64 {
        (self.image_size / self.patch_size).pow(2)
    }

    /// Parameters of the encoder and projector together.
    pub fn parameters(&self) -> u64 {
        let mut tensors = Vec::new();
        self.push_tensors(&mut tensors);
        tensors.iter().map(TensorDesc::elements).sum()
    }

    /// Appends every tensor of the encoder and projector, in module order, each with no decoder
    /// layer (`layer: None`) and one tensor per encoder layer.
    pub fn push_tensors(&self, out: &mut Vec<TensorDesc>) {
        let (h, i) = (self.hidden_size, self.intermediate_size);
        let conv_inputs = self.num_channels * self.patch_size * self.patch_size;
        linear(Role::VisionPatchEmbd, h, conv_inputs, out);
        out.push(weight(Role::VisionPosEmbd, self.patches(), h));
        for _ in 0..self.num_layers {
            layer_norm(h, out);
            for role in [Role::VisionAttnQ, Role::VisionAttnK, Role::VisionAttnV, Role::VisionAttnOutput] {
                linear(role, h, h, out);
            }
            layer_norm(h, out);
            linear(Role::VisionFfnUp, i, h, out);
            linear(Role::VisionFfnDown, h, i, out);
        }
        layer_norm(h, out);
        out.push(weight(Role::MmSoftEmbNorm, 1, h));
        // Stored as `[vision hidden, text hidden]` and applied as `x @ W`.
        out.push(weight(Role::MmInputProjection, h, self.text_hidden_size));
    }
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
        image_size: 896,
        num_channels: 3,
        text_hidden_size: 5376,
    };

    /// The module doc's worked example, term by term.
    #[test]
    fn gemma_3_27b_tower_and_projector() {
        let mut tensors = Vec::new();
        GEMMA_3_27B.push_tensors(&mut tensors);
        let sum =
            |keep: fn(Role) -> bool| -> u64 { tensors.iter().filter(|t| keep(t.role)).map(TensorDesc::elements).sum() };
        assert_eq!(GEMMA_3_27B.patches(), 4096);
        assert_eq!(sum(|r| r == Role::VisionPatchEmbd), 678_528);
        assert_eq!(sum(|r| r == Role::VisionPosEmbd), 4_718_592);
        assert_eq!(sum(|r| !matches!(r, Role::MmSoftEmbNorm | Role::MmInputProjection)), 416_866_032);
        assert_eq!(sum(|r| matches!(r, Role::MmSoftEmbNorm | Role::MmInputProjection)), 6_194_304);
        assert_eq!(GEMMA_3_27B.parameters(), 416_866_032 + 6_194_304);
        assert!(tensors.iter().all(|t| t.layer.is_none() && t.copies == 1 && t.role.is_vision()));
        // 27 layers of q, k, v, out, fc1, fc2: the nn.Linear modules peft's all-linear wraps.
        assert_eq!(tensors.iter().filter(|t| t.part == Part::Weight && t.role.is_vision_linear()).count(), 27 * 6);
    }
}
