//! Weight formats against published numbers: Llama-2-7B's parameter bytes and its GGUF file
//! sizes, llama.cpp's per-tensor promotions on other architectures, and properties over random
//! tensor shapes.

use headroom::model::spec::{Family, LayerAttention, LayerMlp, Mla, MlpKind, ModelSpec, Moe};
use headroom::model::tensors::{inventory, Part, Role, TensorDesc};
use headroom::quant::ggml::GgmlType;
use headroom::quant::{GgufFileType, StoredType, WeightFormat};
use proptest::prelude::*;

mod support;

fn llama_2_7b() -> ModelSpec {
    ModelSpec { id: "llama-2-7b".into(), ..support::llama_spec(32, 4096, 32, 32, 11008, 32000, false) }
}

fn llama_2_70b() -> ModelSpec {
    ModelSpec { id: "llama-2-70b".into(), ..support::llama_spec(80, 8192, 64, 8, 28672, 32000, false) }
}

fn mixtral() -> ModelSpec {
    let moe = Moe {
        num_experts: 8,
        experts_per_token: 2,
        expert_intermediate_size: 14336,
        shared_intermediate_size: 0,
        first_dense_layers: 0,
        shared_expert_gate: false,
        router_bias: false,
        expert_biases: false,
    };
    let layer_mlp = LayerMlp::standard(32, Some(&moe));
    ModelSpec {
        id: "mixtral".into(),
        family: Family::Mixtral,
        num_kv_heads: 8,
        moe: Some(moe),
        layer_mlp,
        ..llama_2_7b()
    }
}

/// A small DeepSeek-V3-shaped model: MLA, one dense layer, then routed + shared experts.
fn deepseek_like(layers: u64) -> ModelSpec {
    let mla = Mla {
        q_lora_rank: Some(1536),
        kv_lora_rank: 512,
        qk_nope_head_dim: 128,
        qk_rope_head_dim: 64,
        v_head_dim: 128,
        indexer: None,
    };
    let moe = Moe {
        num_experts: 64,
        experts_per_token: 6,
        expert_intermediate_size: 2048,
        shared_intermediate_size: 2048,
        first_dense_layers: 1,
        shared_expert_gate: false,
        router_bias: true,
        expert_biases: false,
    };
    ModelSpec {
        id: "deepseek-like".into(),
        family: Family::DeepseekV3,
        hidden_size: 7168,
        num_layers: layers,
        num_heads: 128,
        num_kv_heads: 128,
        vocab_size: 129280,
        intermediate_size: 18432,
        layer_attention: vec![LayerAttention::Full; layers as usize],
        layer_mlp: LayerMlp::standard(layers, Some(&moe)),
        mla: Some(mla),
        moe: Some(moe),
        ..llama_2_7b()
    }
}

fn fmt(id: &str) -> WeightFormat {
    WeightFormat::parse(id).unwrap()
}

/// The GGML type `id` gives the tensor of `role` in `layer`.
fn ggml(id: &str, spec: &ModelSpec, role: Role, layer: Option<u32>) -> GgmlType {
    let tensors = inventory(spec);
    let t = tensors.iter().find(|t| t.role == role && t.layer == layer && t.part == Part::Weight).unwrap();
    match fmt(id).tensor_type(t, spec) {
        StoredType::Ggml(g) => g,
        other => panic!("{id} stored {role:?} as {}", other.name()),
    }
}

#[test]
fn bf16_llama_2_7b_is_two_bytes_per_parameter() {
    let spec = llama_2_7b();
    let tensors = inventory(&spec);
    assert_eq!(fmt("bf16").weight_bytes(&spec, &tensors).0, 2 * 6_738_415_616);
    assert_eq!(fmt("fp32").weight_bytes(&spec, &tensors).0, 4 * 6_738_415_616);
}

/// Published Llama-2-7B GGUF file sizes (GB = 1e9). The file adds metadata and the tokenizer
/// (~0.5–1 MB) to the tensors, so the prediction lands just below.
#[test]
fn llama_2_7b_gguf_sizes_match_published_files() {
    let spec = llama_2_7b();
    let tensors = inventory(&spec);
    for (id, published_gb) in
        [("q4_0", 3.826), ("q4_k_m", 4.081), ("q5_k_m", 4.783), ("q3_k_m", 3.298), ("q2_k", 2.533)]
    {
        let predicted = fmt(id).weight_bytes(&spec, &tensors).gb();
        let error = (predicted - published_gb) / published_gb;
        assert!(predicted < published_gb && error.abs() < 0.003, "{id}: {predicted:.4} GB vs {published_gb} GB");
    }
    assert_eq!(fmt("q4_k_m").weight_bytes(&spec, &tensors).0, 4_080_263_168);
}

#[test]
fn llama_2_7b_q4_k_m_mix() {
    let spec = llama_2_7b();
    let down = |l| ggml("q4_k_m", &spec, Role::FfnDown, Some(l));
    assert_eq!((down(0), down(4), down(6), down(28)), (GgmlType::Q6_K, GgmlType::Q4_K, GgmlType::Q6_K, GgmlType::Q6_K));
    assert_eq!(ggml("q4_k_m", &spec, Role::AttnQ, Some(0)), GgmlType::Q4_K);
    assert_eq!(ggml("q4_k_m", &spec, Role::Output, None), GgmlType::Q6_K);
    assert_eq!(ggml("q4_k_m", &spec, Role::TokenEmbd, None), GgmlType::Q4_K);
    assert_eq!(ggml("q4_k_m", &spec, Role::AttnNorm, Some(3)), GgmlType::F32);
    assert_eq!(ggml("q8_0", &spec, Role::Output, None), GgmlType::Q8_0);
    assert_eq!(ggml("q3_k_m", &spec, Role::AttnV, Some(1)), GgmlType::Q5_K);
    assert_eq!(ggml("q3_k_m", &spec, Role::AttnV, Some(2)), GgmlType::Q4_K);
}

#[test]
fn seventy_b_gqa_and_experts_promote_attn_v() {
    let big = llama_2_70b();
    // Q4_K_M: layer 11 is not a use_more_bits layer, so Q4_K, which 70B raises to Q5_K.
    assert_eq!(ggml("q4_k_m", &big, Role::AttnV, Some(11)), GgmlType::Q5_K);
    assert_eq!(ggml("q4_k_m", &big, Role::AttnV, Some(4)), GgmlType::Q6_K);
    assert_eq!(ggml("q2_k", &big, Role::AttnV, Some(40)), GgmlType::Q5_K);
    assert_eq!(ggml("iq4_xs", &big, Role::AttnV, Some(40)), GgmlType::Q5_K);
    let moe = mixtral();
    assert_eq!(ggml("q4_k_m", &moe, Role::AttnV, Some(5)), GgmlType::Q8_0);
    assert_eq!(ggml("q4_k_m", &moe, Role::AttnK, Some(5)), GgmlType::Q8_0);
    assert_eq!(ggml("q4_k_m", &moe, Role::AttnOutput, Some(5)), GgmlType::Q5_K);
    assert_eq!(ggml("q4_k_m", &moe, Role::FfnDownExps, Some(6)), GgmlType::Q6_K);
    assert_eq!(ggml("q4_k_m", &moe, Role::FfnDownExps, Some(7)), GgmlType::Q4_K);
    assert_eq!(ggml("q4_k_m", &moe, Role::FfnGateInp, Some(7)), GgmlType::F32);
}

#[test]
fn falcon_tied_and_odd_rows_follow_llama_cpp() {
    let falcon = ModelSpec { family: Family::Falcon, fused_qkv: true, mlp: MlpKind::Plain, ..llama_2_7b() };
    assert_eq!(ggml("q4_k_m", &falcon, Role::Output, None), GgmlType::Q8_0);
    assert_eq!(ggml("q4_k_m", &falcon, Role::FfnDown, Some(1)), GgmlType::Q6_K);
    assert_eq!(ggml("q4_k_m", &falcon, Role::FfnDown, Some(6)), GgmlType::Q5_K);
    assert_eq!(ggml("q4_k_m", &falcon, Role::FfnDown, Some(7)), GgmlType::Q4_K);
    // attn_qkv goes through the attn_v rules.
    assert_eq!(ggml("q4_k_m", &falcon, Role::AttnQkv, Some(6)), GgmlType::Q6_K);
    let tied = ModelSpec { tie_word_embeddings: true, ..llama_2_7b() };
    assert_eq!(ggml("q4_k_m", &tied, Role::TokenEmbd, None), GgmlType::Q6_K);
    // Rows of 11040 (a multiple of 32, not of 256): Q4_K falls back to Q5_0, Q6_K to Q8_0.
    let odd = ModelSpec { intermediate_size: 11040, ..llama_2_7b() };
    assert_eq!(ggml("q4_k_m", &odd, Role::FfnDown, Some(4)), GgmlType::Q5_0);
    assert_eq!(ggml("q4_k_m", &odd, Role::FfnDown, Some(0)), GgmlType::Q8_0);
    assert_eq!(ggml("q4_k_m", &odd, Role::FfnUp, Some(0)), GgmlType::Q4_K);
}

#[test]
fn moe_file_types_and_expert_counts() {
    let ds = deepseek_like(16);
    assert_eq!(ggml("mxfp4_moe", &ds, Role::FfnUpExps, Some(3)), GgmlType::MXFP4);
    assert_eq!(ggml("mxfp4_moe", &ds, Role::FfnUpShexp, Some(3)), GgmlType::Q8_0);
    assert_eq!(ggml("mxfp4_moe", &ds, Role::Output, None), GgmlType::Q8_0);
    // IQ2_XXS counts ffn_down tensors, not layers: the first 16/8 = 2 are layer 0's dense
    // ffn_down and layer 1's ffn_down_exps; layer 1's ffn_down_shexp is the third.
    assert_eq!(ggml("iq2_xxs", &ds, Role::FfnDown, Some(0)), GgmlType::Q2_K);
    assert_eq!(ggml("iq2_xxs", &ds, Role::FfnDownExps, Some(1)), GgmlType::Q2_K);
    assert_eq!(ggml("iq2_xxs", &ds, Role::FfnDownShexp, Some(1)), GgmlType::IQ2_XXS);
    // A latent-attention kv_b is written as attn_k_b and attn_v_b, which the very-low-bit rules
    // do not promote as attn_v: the v part (rows of 512) stays IQ2_XXS.
    assert_eq!(ggml("iq2_xxs", &ds, Role::AttnKvB, Some(1)), GgmlType::IQ2_XXS);
    assert_eq!(ggml("iq2_xxs", &ds, Role::Output, None), GgmlType::Q5_K);
}

/// MXFP4 on a mixture of experts covers the routed experts only, as the `quant_method: mxfp4`
/// checkpoints (gpt-oss) and their loaders do; on a dense model, every block linear.
#[test]
fn checkpoint_quantizers_leave_embeddings_norms_and_routers_alone() {
    let spec = mixtral();
    let tensors = inventory(&spec);
    for id in ["fp8", "int8", "nf4", "nf4-dq", "gptq", "awq", "mxfp4", "nvfp4"] {
        for t in &tensors {
            let stored = fmt(id).tensor_type(t, &spec);
            let quantized = matches!(stored, StoredType::Quantized(_));
            let covered = if id == "mxfp4" { t.role.is_routed_expert() } else { t.role.is_block_linear() };
            assert_eq!(quantized, covered && t.part == Part::Weight, "{id} {:?}", t.role);
            if !quantized {
                assert_eq!(stored.tensor_bytes(t), 2 * t.elements(), "{id} {:?}", t.role);
            }
        }
    }
    let dense = llama_2_7b();
    let q = inventory(&dense).into_iter().find(|t| t.role == Role::AttnQ).unwrap();
    assert!(matches!(fmt("mxfp4").tensor_type(&q, &dense), StoredType::Quantized(_)));
}

#[test]
fn gptq_g128_q_proj_is_exact() {
    let spec = llama_2_7b();
    let q = inventory(&spec).into_iter().find(|t| t.role == Role::AttnQ).unwrap();
    let expected = 4096 * 4096 / 2 + (4096 / 128) * 4096 * 2 + (4096 / 128) * (4096 / 8) * 4 + 4096 * 4;
    assert_eq!(fmt("gptq").tensor_bytes(&q, &spec).0, expected);
}

#[test]
fn bits_per_weight_on_a_large_matrix() {
    let spec = llama_2_7b();
    let t = TensorDesc { role: Role::FfnUp, part: Part::Weight, layer: Some(0), rows: 16384, cols: 16384, copies: 1 };
    let bpw = |id: &str| 8.0 * fmt(id).tensor_bytes(&t, &spec).0 as f64 / t.elements() as f64;
    assert!((bpw("nf4-dq") - 4.127).abs() < 1e-3, "{}", bpw("nf4-dq"));
    assert!((bpw("nf4") - 4.5).abs() < 1e-5);
    assert!((bpw("mxfp4") - 4.25).abs() < 1e-9);
    assert!((bpw("nvfp4") - 4.5).abs() < 1e-6);
    assert!((bpw("gptq") - (4.15625 + 32.0 / 16384.0)).abs() < 1e-9);
    assert!((fmt("gptq").nominal_bits_per_weight() - 4.156).abs() < 1e-3);
}

const ROLES: [Role; 10] = [
    Role::TokenEmbd,
    Role::Output,
    Role::AttnQ,
    Role::AttnK,
    Role::AttnV,
    Role::AttnOutput,
    Role::FfnGate,
    Role::FfnDown,
    Role::FfnDownExps,
    Role::AttnKvB,
];

fn tensor() -> impl Strategy<Value = TensorDesc> {
    let dim = prop_oneof![(1u64..64).prop_map(|k| k * 256), 1u64..20_000];
    (0..ROLES.len(), dim.clone(), dim, 1u64..4, 0u32..32).prop_map(|(r, rows, cols, copies, layer)| {
        let layer = if matches!(ROLES[r], Role::TokenEmbd | Role::Output) { None } else { Some(layer) };
        // One row is a vector (norm-like) by definition and keeps full precision: matrices here.
        TensorDesc { role: ROLES[r], part: Part::Weight, layer, rows: rows.max(2), cols, copies }
    })
}

proptest! {
    /// Quantized linear tensors keep at least nominal − 1 bits per weight (no rule or fallback
    /// drops far below the format), and a shape of whole groups stays within the per-row and
    /// per-tensor extras of the nominal figure.
    #[test]
    fn bytes_are_bounded_by_the_nominal_bits(t in tensor(), f in 0..WeightFormat::all().len()) {
        let spec = mixtral();
        let format = WeightFormat::all()[f];
        let bytes = format.tensor_bytes(&t, &spec).0 as f64;
        let elements = t.elements() as f64;
        let stored = format.tensor_type(&t, &spec);
        if format.is_quantized() && t.role.is_block_linear() {
            prop_assert!(8.0 * bytes >= elements * (format.nominal_bits_per_weight() - 1.0),
                "{} as {}: {} B", format.id(), stored.name(), bytes);
        }
        if let StoredType::Quantized(q) = stored {
            if t.rows % 256 == 0 && t.cols % 256 == 0 {
                let bpw = 8.0 * bytes / elements;
                let extra = 32.0 / t.rows as f64 + 32.0 / t.cols as f64 + 1024.0 * 8.0 / (t.rows * t.cols) as f64;
                prop_assert!(bpw >= q.nominal_bits_per_weight() - 1e-9 && bpw <= q.nominal_bits_per_weight() + extra,
                    "{}: {} bpw", q.name(), bpw);
            }
        }
        if let StoredType::Ggml(g) = stored {
            prop_assert_eq!(t.cols % g.block_size(), 0, "{} picked {} for rows of {}", format.id(), g.name(), t.cols);
            prop_assert_eq!(bytes as u64, t.elements() / g.block_size() * g.type_size());
        }
    }

    /// More rows never cost fewer bytes, and the model total is the sum of its tensors.
    #[test]
    fn bytes_grow_with_rows(t in tensor(), f in 0..WeightFormat::all().len()) {
        let spec = mixtral();
        let format = WeightFormat::all()[f];
        let bigger = TensorDesc { rows: t.rows + 1, ..t };
        prop_assert!(format.tensor_bytes(&bigger, &spec) >= format.tensor_bytes(&t, &spec));
        let sum = format.tensor_bytes(&t, &spec) + format.tensor_bytes(&bigger, &spec);
        prop_assert_eq!(format.weight_bytes(&spec, &[t, bigger]), sum);
    }
}

#[test]
fn every_format_sizes_every_model() {
    for spec in [llama_2_7b(), llama_2_70b(), mixtral(), deepseek_like(8)] {
        let tensors = inventory(&spec);
        let bf16 = fmt("bf16").weight_bytes(&spec, &tensors);
        for &format in WeightFormat::all() {
            let bytes = format.weight_bytes(&spec, &tensors);
            assert!(bytes.0 > 0, "{}", format.id());
            if format.is_quantized() {
                assert!(bytes < bf16, "{} on {}: {bytes} ≥ bf16 {bf16}", format.id(), spec.id);
            }
        }
    }
    assert!(!WeightFormat::Gguf(GgufFileType::F16).is_quantized());
}
