//! Kimi K2 (DeepSeek-V3's architecture under `model_type: kimi_k2`) and MiniMax M2: counts
//! rebuilt from their configs; each equals the element total a listing of the real checkpoint
//! prints, less the fp8 block scales stored beside the weights.

use headroom::catalog::models::ModelCatalog;
use headroom::model::spec::{Family, ModelSpec, QkNorm};
use headroom::model::tensors::{inventory, param_counts};

fn spec(id: &str) -> ModelSpec {
    ModelCatalog::builtin().get(id).unwrap().spec().clone()
}

/// Kimi K2 (hidden 7168, 64 MLA heads): attention 7168·1536 + 1536 + 1536·64·192 + 7168·576 +
/// 512 + 512·64·256 + 64·128·7168 = 101,124,096; a MoE layer 384·3·7168·2048 + 3·7168·2048 +
/// 384·7168 + 384 beside it; layer 0 dense 3·7168·18,432. The checkpoint listing's
/// 1,026,470,731,056 adds 62,495,192 fp32 block scales and 61 rotary buffers of 56.
#[test]
fn kimi_k2_is_deepseek_v3_shaped() {
    let s = spec("kimi-k2");
    assert_eq!((s.family, s.mtp_layers, s.num_heads), (Family::DeepseekV3, 0, 64));
    let h = 7168u64;
    let attention = 101_124_096u64;
    let moe = 384 * 3 * h * 2048 + 3 * h * 2048 + 384 * h + 384;
    let model = 61 * (attention + 2 * h) + 3 * h * 18_432 + 60 * moe + h + 2 * 163_840 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, model);
    assert_eq!(model + 62_495_192 + 61 * 56, 1_026_470_731_056);
}

/// MiniMax M2.7 (hidden 3072; 48 heads and 8 KV heads of 128): attention 2·3072·6144 +
/// 2·3072·1024 and q/k norms of 6144 and 1024; 256 experts of 1536 and the router with its
/// bias; two norms. The listing's 228,703,644,928 adds 13,880,064 block scales.
#[test]
fn minimax_m2_counts_and_norms() {
    let s = spec("minimax-m2.7");
    assert_eq!(s.qk_norm, QkNorm::Full);
    let h = 3072u64;
    let layer = 2 * h * 6144 + 2 * h * 1024 + 6144 + 1024 + 256 * 3 * 1536 * h + 256 * h + 256 + 2 * h;
    let model = 62 * layer + h + 2 * 200_064 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, model);
    assert_eq!(model + 13_880_064, 228_703_644_928);
    assert!(s.moe.unwrap().router_bias && s.moe.unwrap().shared_intermediate_size == 0);
}
