//! What vLLM's fused-MoE layers hold once an MXFP4 checkpoint (gpt-oss) is loaded, which is more
//! than the checkpoint: each kernel backend pads the expert matrices to its tiles, and the
//! Triton backend keeps a second copy of the scales. Read from
//! `vllm/model_executor/layers/quantization/mxfp4.py` (`get_mxfp4_backend`,
//! `Mxfp4MoEMethod.create_weights` and `process_weights_after_loading`) and triton_kernels'
//! `HopperMXScaleLayout`.
//!
//! gpt-oss-120b (128 experts, hidden 2880, expert intermediate 2880, 36 layers) on one H100, per
//! layer, in bytes:
//!
//! | | checkpoint | Triton (Hopper) |
//! |---|---|---|
//! | values: 128·(5760·1440 + 2880·1440) | 1,592,524,800 | same (2880 is a multiple of 64) |
//! | scales: 128·(5760·90 + 2880·90) | 99,532,800 | the same, kept |
//! | swizzled scales: 128·(5888·90 + 3072·90), rows to 256 | — | 103,219,200 |
//! | biases: 128·(5760 + 2880), bf16 → fp32 | 2,211,840 | 4,423,680 |
//!
//! That is 105,431,040 B more per layer, 3.535 GiB over 36 layers: 60.77 GiB of checkpoint
//! becomes 64.30 GiB, where vLLM logs "Model loading took 64.38 GiB" (llm-d's H100 table, vLLM
//! 0.11; vLLM issue #33155, 0.14.1). The swizzled layout needs PyTorch 2.8.1 or newer (vLLM 0.11.1
//! on); with an older PyTorch triton_kernels keeps a strided layout on Hopper, not modelled.
//! vLLM 0.10.1 (PyTorch 2.7) ran Marlin on Hopper: its padding (intermediate to 128, hidden to
//! 256) gives 65.90 GiB against the 65.97 logged in vLLM issue #23278. Both leave about 0.07 GiB
//! unexplained, the size of the YaRN rotary table (131,072 × 64 × 4 B = 32 MiB) and other small
//! buffers.

use super::device::{Device, Generation};
use crate::model::spec::ModelSpec;
use crate::quant::stored::QuantScheme;
use crate::units::Bytes;

/// The MXFP4 MoE kernel vLLM picks for a GPU (`get_mxfp4_backend`, no environment overrides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mxfp4Backend {
    /// triton_kernels' `matmul_ogs` (compute capability 9.x, PyTorch 2.8.1 or newer): intermediate
    /// padded to 64; the scales swizzled into a copy whose rows are padded to 256 while the
    /// loaded ones stay registered on the layer; biases converted to fp32.
    Triton,
    /// Marlin weight-only FP4 (Ampere, Ada, and GeForce Blackwell 12.x, which triton_kernels does
    /// not support): intermediate padded to 128 and hidden to 256, repacked in place, bf16 biases.
    Marlin,
    /// FlashInfer's TRT-LLM MoE (data-centre Blackwell 10.x; vLLM's wheels ship FlashInfer):
    /// intermediate and hidden padded to 256, shuffled in place, fp32 biases.
    FlashInfer,
}

impl Mxfp4Backend {
    /// The backend for a GPU; `None` where vLLM has no MXFP4 MoE kernel (before compute
    /// capability 8.0, `Mxfp4Config.get_min_capability`), the GPU is not NVIDIA's, or it is a
    /// Blackwell whose capability (data-centre 10.x or GeForce 12.x) the catalog does not give.
    pub fn for_device(device: &Device) -> Option<Self> {
        match major_capability(device)? {
            0..=7 => None,
            9 => Some(Mxfp4Backend::Triton),
            10 => Some(Mxfp4Backend::FlashInfer),
            _ => Some(Mxfp4Backend::Marlin),
        }
    }

    /// Whether vLLM has no MXFP4 MoE kernel for the GPU: compute capability below 8.0, known or
    /// implied by the generation.
    pub fn unsupported(device: &Device) -> bool {
        major_capability(device).is_some_and(|major| major < 8)
    }

    pub fn name(self) -> &'static str {
        match self {
            Mxfp4Backend::Triton => "Triton (triton_kernels matmul_ogs)",
            Mxfp4Backend::Marlin => "Marlin",
            Mxfp4Backend::FlashInfer => "FlashInfer TRT-LLM",
        }
    }

    /// Multiples the expert intermediate size (per tensor-parallel rank) and the hidden size are
    /// padded to in `create_weights`.
    fn padding(self) -> (u64, u64) {
        match self {
            Mxfp4Backend::Triton => (64, 1),
            Mxfp4Backend::Marlin => (128, 256),
            Mxfp4Backend::FlashInfer => (256, 256),
        }
    }

    /// Bytes per bias element once loaded.
    fn bias_bytes(self) -> u64 {
        match self {
            Mxfp4Backend::Marlin => 2,
            Mxfp4Backend::Triton | Mxfp4Backend::FlashInfer => 4,
        }
    }
}

/// The GPU's compute capability major version: the catalog's, else implied by the generation;
/// `None` for a Blackwell without one (data-centre 10.x or GeForce 12.x) and for other vendors.
fn major_capability(device: &Device) -> Option<u32> {
    match (device.compute_capability, device.generation) {
        (Some((major, _)), _) => Some(major),
        (None, Generation::Volta | Generation::Turing) => Some(7),
        (None, Generation::Ampere | Generation::Ada) => Some(8),
        (None, Generation::Hopper) => Some(9),
        (None, Generation::Blackwell | Generation::Apple | Generation::Rdna | Generation::Other) => None,
    }
}

/// The MXFP4 experts of one MoE layer as the checkpoint stores them, on one of `tp` GPUs: each
/// expert's fused gate/up `[2I, H]` and down `[H, I]` matrices in 17 bytes per 32 weights, and
/// gpt-oss's bf16 biases.
pub fn checkpoint_layer_bytes(spec: &ModelSpec, tp: u64) -> Bytes {
    let Some(moe) = spec.moe else { return Bytes::ZERO };
    let (h, i) = (spec.hidden_size, moe.expert_intermediate_size);
    let matrices = QuantScheme::Mxfp4.matrix_bytes(2 * i, h) + QuantScheme::Mxfp4.matrix_bytes(h, i);
    let biases = if moe.expert_biases { (2 * i + h) * 2 } else { 0 };
    Bytes(moe.num_experts * (matrices + biases) / tp)
}

/// The same layer on one of `tp` GPUs once `backend` has loaded it. vLLM divides each expert's
/// intermediate features among the ranks and registers biases whether the checkpoint has them
/// or not.
pub fn loaded_layer_bytes(spec: &ModelSpec, backend: Mxfp4Backend, tp: u64) -> Bytes {
    let Some(moe) = spec.moe else { return Bytes::ZERO };
    let (pad_i, pad_h) = backend.padding();
    let i = moe.expert_intermediate_size.div_ceil(tp).next_multiple_of(pad_i);
    let h = spec.hidden_size.next_multiple_of(pad_h);
    // Values: two FP4 codes per byte; scales: one E8M0 byte per 32 along the reduction axis.
    let values = 2 * i * h / 2 + h * i / 2;
    let scales = 2 * i * h.div_ceil(32) + h * i.div_ceil(32);
    let swizzled_scales = match backend {
        // `_swizzle_mxfp4` with num_warps 8: rows (output features) to 2·8·2·8 = 256, scale
        // columns to 2; a new tensor beside `w13_weight_scale` / `w2_weight_scale`.
        Mxfp4Backend::Triton => {
            (2 * i).next_multiple_of(256) * h.div_ceil(32).next_multiple_of(2)
                + h.next_multiple_of(256) * i.div_ceil(32).next_multiple_of(2)
        }
        Mxfp4Backend::Marlin | Mxfp4Backend::FlashInfer => 0,
    };
    let biases = (2 * i + h) * backend.bias_bytes();
    Bytes(moe.num_experts * (values + scales + swizzled_scales + biases))
}

/// What vLLM's loading adds to each MoE layer's planned bytes on one GPU.
pub fn extra_per_layer(spec: &ModelSpec, backend: Mxfp4Backend, tp: u64) -> Bytes {
    loaded_layer_bytes(spec, backend, tp).saturating_sub(checkpoint_layer_bytes(spec, tp))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_follows_compute_capability() {
        let device = |cc, generation| Device {
            id: "gpu".into(),
            capacity: Bytes(1 << 36),
            reserved: Bytes::ZERO,
            in_use: Bytes::ZERO,
            unified_memory: None,
            count: 1,
            generation,
            compute_capability: cc,
        };
        assert_eq!(Mxfp4Backend::for_device(&device(Some((9, 0)), Generation::Hopper)), Some(Mxfp4Backend::Triton));
        assert_eq!(Mxfp4Backend::for_device(&device(Some((8, 0)), Generation::Ampere)), Some(Mxfp4Backend::Marlin));
        assert_eq!(Mxfp4Backend::for_device(&device(Some((12, 0)), Generation::Blackwell)), Some(Mxfp4Backend::Marlin));
        assert_eq!(
            Mxfp4Backend::for_device(&device(Some((10, 0)), Generation::Blackwell)),
            Some(Mxfp4Backend::FlashInfer)
        );
        assert_eq!(Mxfp4Backend::for_device(&device(Some((7, 5)), Generation::Turing)), None);
        assert_eq!(Mxfp4Backend::for_device(&device(None, Generation::Ada)), Some(Mxfp4Backend::Marlin));
        assert_eq!(Mxfp4Backend::for_device(&device(None, Generation::Blackwell)), None);
        assert!(!Mxfp4Backend::unsupported(&device(None, Generation::Blackwell)));
        assert!(Mxfp4Backend::unsupported(&device(Some((7, 5)), Generation::Turing)));
    }
}
