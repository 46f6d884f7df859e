//! vLLM's MXFP4 fused-MoE layers as loaded (plan/vllm_moe.rs), checked on gpt-oss-120b against
//! the catalog's tensor inventory and the sizes worked out by hand from vLLM's `Mxfp4MoEMethod`.

mod support;

use headroom::model::spec::ModelSpec;
use headroom::model::tensors::inventory;
use headroom::plan::vllm_moe::{checkpoint_layer_bytes, extra_per_layer, loaded_layer_bytes, Mxfp4Backend};
use headroom::quant::WeightFormat;

fn gpt_oss_120b() -> ModelSpec {
    support::catalog::spec("gpt-oss-120b")
}

/// The whole checkpoint in the MXFP4 format: 60.77 GiB.
const CHECKPOINT: u64 = 65_248_815_744;

#[test]
fn checkpoint_bytes_are_the_inventory_routed_experts() {
    let spec = gpt_oss_120b();
    let format = WeightFormat::parse("mxfp4").unwrap();
    let experts: u64 = inventory(&spec)
        .iter()
        .filter(|t| t.role.is_routed_expert() && t.layer == Some(0))
        .map(|t| format.tensor_bytes(t, &spec).0)
        .sum();
    assert_eq!(checkpoint_layer_bytes(&spec, 1).0, experts);
    // values 128·(5760·1440 + 2880·1440), scales 128·(5760·90 + 2880·90), bf16 biases
    // 128·(5760 + 2880)·2.
    assert_eq!(experts, 1_592_524_800 + 99_532_800 + 2_211_840);
}

#[test]
fn triton_keeps_two_copies_of_the_scales() {
    let spec = gpt_oss_120b();
    // The swizzled scales 128·(5888·90 + 3072·90) and the biases' second two bytes.
    assert_eq!(extra_per_layer(&spec, Mxfp4Backend::Triton, 1).0, 103_219_200 + 2_211_840);
    // 64.30 GiB over 36 layers, where vLLM 0.11 and 0.14 log 64.38.
    assert_eq!(CHECKPOINT + 36 * extra_per_layer(&spec, Mxfp4Backend::Triton, 1).0, 69_044_333_184);
}

#[test]
fn marlin_pads_intermediate_to_128_and_hidden_to_256() {
    let spec = gpt_oss_120b();
    // values 128·(5888·1536 + 3072·1472), scales 128·(5888·96 + 3072·92), bf16 biases
    // 128·(5888 + 3072)·2.
    let loaded = 128 * (5888 * 1536 + 3072 * 1472) + 128 * (5888 * 96 + 3072 * 92) + 128 * (5888 + 3072) * 2;
    assert_eq!(loaded_layer_bytes(&spec, Mxfp4Backend::Marlin, 1).0, loaded);
    // 65.90 GiB in all; vLLM 0.10.1 (PyTorch 2.7, so Marlin) logged 65.97 GiB on an H100.
    assert_eq!(CHECKPOINT + 36 * extra_per_layer(&spec, Mxfp4Backend::Marlin, 1).0, 70_756_592_256);
}

#[test]
fn flashinfer_pads_both_sizes_to_256() {
    let spec = gpt_oss_120b();
    // values 128·(6144·1536 + 3072·1536), scales 128·(6144·96 + 3072·96), fp32 biases
    // 128·(6144 + 3072)·4.
    let loaded = 128 * (6144 * 1536 + 3072 * 1536) + 128 * (6144 * 96 + 3072 * 96) + 128 * (6144 + 3072) * 4;
    assert_eq!(loaded_layer_bytes(&spec, Mxfp4Backend::FlashInfer, 1).0, loaded);
}

#[test]
fn tensor_parallel_pads_each_rank_share() {
    let spec = gpt_oss_120b();
    // TP 4: 720 intermediate features per rank, padded to 768 for Triton; 2880 rows of w2 to
    // 3072 and 1536 rows of w13 stay.
    let values = 128 * (1536 * 1440 + 2880 * 384);
    let scales = 128 * (1536 * 90 + 2880 * 24);
    let swizzled = 128 * (1536 * 90 + 3072 * 24);
    let biases = 128 * (1536 + 2880) * 4;
    assert_eq!(loaded_layer_bytes(&spec, Mxfp4Backend::Triton, 4).0, values + scales + swizzled + biases);
    assert_eq!(checkpoint_layer_bytes(&spec, 4).0 * 4, checkpoint_layer_bytes(&spec, 1).0);
}
