//! GLM-4, GLM-4.5 to 4.7 and GLM-4.7-Flash: the catalog's counts rebuilt by hand from the configs, and the Hub's
//! safetensors totals, which hold the multi-token-prediction layer with its own copies of the
//! embedding and head.

mod support;

use headroom::model::spec::QkNorm;
use headroom::model::tensors::{inventory, mtp_inventory, param_counts, Role};
use support::catalog::{elements, spec};

/// GLM-4.5-Air (hidden 4096; 96 heads and 8 KV heads of 128; vocab 151,552): attention
/// 4096·12,288·2 (q, o) + 2·4096·1024 (k, v) + the q/k/v biases 12,288 + 2·1024 = 109,066,240;
/// an MoE block 128·3·4096·1408 (experts) + 3·4096·1408 (shared) + 128·4096 + 128 (router and
/// its bias) = 2,232,418,432; the dense layer 0 3·4096·10,944. The drafter adds eh_proj
/// 4096 × 8192 and three norms to one more MoE layer.
#[test]
fn glm_4_5_air_from_its_config() {
    let s = spec("glm-4.5-air");
    let h = 4096u64;
    let attention = 2 * h * 12_288 + 2 * h * 1024 + 12_288 + 2 * 1024;
    let moe = 128 * 3 * h * 1408 + 3 * h * 1408 + 128 * h + 128;
    assert_eq!((attention, moe), (109_066_240, 2_232_418_432));
    let dense = 3 * h * 10_944;
    let embeddings = 2 * 151_552 * h;
    let model = attention * 46 + dense + 45 * moe + 2 * 46 * h + h + embeddings;
    let counts = param_counts(&s, &inventory(&s));
    assert_eq!(counts.total, model);
    assert_eq!(counts.total, 106_852_251_264);
    // "12B active" (zai-org/GLM-4.5 README) leaves out the embedding and head.
    assert_eq!(counts.active - embeddings, 12_182_615_680);
    let drafter = elements(&mtp_inventory(&s));
    assert_eq!(drafter, 2 * h * h + 3 * h + attention + moe + 2 * h);
    // The Hub's safetensors total: model, drafter, and the drafter's embed_tokens and
    // shared_head.head, which vLLM shares with the model's.
    assert_eq!(model + drafter + embeddings, 110_468_824_832);
    assert!(s.qk_norm == QkNorm::None && s.biases.qkv && !s.biases.attn_out);
}

/// GLM-4.5: 92 layers (3 dense of 12,288), 160 experts of 1536, per-head q/k norms; the Hub's
/// 358,337,791,296 is the model, the drafter and the drafter's two 151,552 × 5120 copies.
#[test]
fn glm_4_5_hub_total_includes_the_drafter() {
    let s = spec("glm-4.5");
    assert_eq!(s.qk_norm, QkNorm::PerHead);
    assert_eq!((0..92).filter(|&l| s.is_moe_layer(l)).count(), 89);
    let model = param_counts(&s, &inventory(&s)).total;
    let drafter = elements(&mtp_inventory(&s));
    assert_eq!((model, drafter), (352_797_829_024, 3_988_069_792));
    assert_eq!(model + drafter + 2 * 151_552 * 5120, 358_337_791_296);
    // The per-head norms: 2·128 per layer.
    let norms = inventory(&s).iter().filter(|t| matches!(t.role, Role::AttnQNorm | Role::AttnKNorm)).count();
    assert_eq!(norms, 2 * 92);
}

/// GLM-4-32B-0414: 61 layers of q/k/v with biases, o, a fused gate_up of 2·23,040 rows, down,
/// and four norms; llama.cpp prints 32.57 B.
#[test]
fn glm_4_dense_has_four_norms_and_a_fused_mlp() {
    let s = spec("glm-4-32b-0414");
    let h = 6144u64;
    let layer = h * 6144 * 2 + 2 * h * 256 + 6144 + 2 * 256 + 3 * h * 23_040 + 4 * h;
    assert_eq!(param_counts(&s, &inventory(&s)).total, 61 * layer + h + 2 * 151_552 * h);
    let roles: Vec<Role> = inventory(&s).iter().filter(|t| t.layer == Some(0)).map(|t| t.role).collect();
    assert!(roles.contains(&Role::FfnGateUp) && !roles.contains(&Role::FfnGate));
    assert_eq!(roles.iter().filter(|r| **r == Role::FfnNorm).count(), 3);
}

/// GLM-4.7 keeps GLM-4.5's shape: the same model and drafter, and the Hub's 358B.
#[test]
fn glm_4_7_is_glm_4_5_shaped() {
    let (s, old) = (spec("glm-4.7"), spec("glm-4.5"));
    assert_eq!(param_counts(&s, &inventory(&s)), param_counts(&old, &inventory(&old)));
    assert_eq!(elements(&mtp_inventory(&s)) + 2 * 151_552 * 5120, 5_539_962_272);
}

/// GLM-4.7-Flash (`glm4_moe_lite`, hidden 2048, 20 heads): latent attention q_a 2048·768 and its
/// norm 768, q_b 768·20·256, kv_a 2048·576 and its norm 512, kv_b 512·20·(192 + 256), o
/// 20·256·2048 = 21,759,232 a layer; an MoE block 64·3·2048·1536 + the shared 3·2048·1536 + the
/// router 64·2048 and its bias 64 = 613,548,096; layer 0 dense 3·2048·10,240. The report of the
/// download lists 31,221,488,576 parameters: the model, the drafter layer (eh_proj 2048 × 4096,
/// three norms, a full MoE layer) and the drafter's own embedding and head.
#[test]
fn glm_4_7_flash_from_its_config() {
    let s = spec("glm-4.7-flash");
    let h = 2048u64;
    let attention = h * 768 + 768 + 768 * 5120 + h * 576 + 512 + 512 * 8960 + 5120 * h;
    let moe = 64 * 3 * h * 1536 + 3 * h * 1536 + 64 * h + 64;
    assert_eq!((attention, moe), (21_759_232, 613_548_096));
    let embeddings = 2 * 154_880 * h;
    let model = 47 * attention + 3 * h * 10_240 + 46 * moe + 47 * 2 * h + h + embeddings;
    assert_eq!(param_counts(&s, &inventory(&s)).total, model);
    assert_eq!(model, 29_943_393_920);
    let drafter = elements(&mtp_inventory(&s));
    assert_eq!(drafter, 2 * h * h + 3 * h + attention + moe + 2 * h);
    assert_eq!(model + drafter + embeddings, 31_221_488_576);
    // No head is hidden / heads wide: the latent attention's qk_nope + qk_rope.
    assert_eq!(s.head_dim, 256);
}
