//! Gemma 3's vision encoder and projector in every consumer of the inventory: exact counts, out
//! of the active parameters, 16-bit under every weight format, on the first GPU of a layer
//! split, LoRA's all-linear as peft wraps it, and engines that leave the tower out.

mod support;

use headroom::catalog::models::ModelCatalog;
use headroom::model::spec::ModelSpec;
use headroom::model::tensors::{inventory, param_counts, Part, Role, TensorDesc};
use headroom::plan::training::{lora, LoraTargets};
use headroom::plan::{
    plan_inference, Device, Engine, EngineOptions, Generation, InferenceRequest, Split, WeightLayout,
};
use headroom::quant::{KvFormat, WeightFormat};
use headroom::units::Bytes;
use support::cli::headroom;

/// Gemma 3 27B: language model, SigLIP tower, projector (keras-hub's MedGemma 27B total).
const LANGUAGE: u64 = 27_009_346_304;
const TOWER: u64 = 416_866_032;
const PROJECTOR: u64 = 6_194_304;

fn gemma_3_27b() -> ModelSpec {
    ModelCatalog::builtin().get("gemma-3-27b").unwrap().spec().clone()
}

fn vision_elements(tensors: &[TensorDesc]) -> u64 {
    tensors.iter().filter(|t| t.role.is_vision()).map(TensorDesc::elements).sum()
}

#[test]
fn gemma_3_27b_counts_the_tower_in_total_but_not_in_active() {
    let spec = gemma_3_27b();
    let tensors = inventory(&spec);
    let counts = param_counts(&spec, &tensors);
    assert_eq!(counts.total, LANGUAGE + TOWER + PROJECTOR);
    assert_eq!(counts.total, 27_432_406_640);
    assert_eq!(counts.active, LANGUAGE);
    assert_eq!(vision_elements(&tensors), TOWER + PROJECTOR);
    let projector: u64 = tensors
        .iter()
        .filter(|t| matches!(t.role, Role::MmSoftEmbNorm | Role::MmInputProjection))
        .map(TensorDesc::elements)
        .sum();
    assert_eq!(projector, 1152 * 5376 + 1152);
    assert!(tensors.iter().filter(|t| t.role.is_vision()).all(|t| t.layer.is_none() && !t.role.is_block_linear()));
}

/// Every format keeps the tower in 16 bits (GGUF: F16, llama.cpp's mmproj), except a whole fp32
/// checkpoint; the language model's linears are quantized as before.
#[test]
fn quantized_formats_keep_the_tower_in_16_bits() {
    let spec = gemma_3_27b();
    let tensors = inventory(&spec);
    let vision = vision_elements(&tensors);
    for &format in WeightFormat::all() {
        let bytes: u64 = tensors.iter().filter(|t| t.role.is_vision()).map(|t| format.tensor_bytes(t, &spec).0).sum();
        let per_element = if format.id() == "fp32" { 4 } else { 2 };
        assert_eq!(bytes, per_element * vision, "{}", format.id());
    }
    let nf4 = WeightFormat::parse("nf4").unwrap();
    let q = tensors.iter().find(|t| t.role == Role::AttnQ).unwrap();
    assert!(nf4.tensor_bytes(q, &spec).0 < q.elements());
}

fn plan_on_two(spec: &ModelSpec, weights: &WeightLayout, split: Split, engine: Engine) -> headroom::plan::Plan {
    plan_inference(&InferenceRequest {
        spec,
        weights,
        format: WeightFormat::parse("bf16").unwrap(),
        kv: KvFormat::Bf16,
        context: 4096,
        batch: 1,
        engine,
        options: EngineOptions::default(),
        device: Some(Device {
            id: "h100-sxm".into(),
            capacity: Bytes(80 << 30),
            reserved: Bytes::ZERO,
            in_use: Bytes::ZERO,
            unified_memory: None,
            count: 2,
            generation: Generation::Hopper,
            compute_capability: None,
        }),
        split: Some(split),
    })
    .unwrap()
}

/// A layer split puts the tower beside the embedding on GPU 0; tensor parallelism divides it
/// like the layers; the basis names its bytes.
#[test]
fn layer_split_puts_the_tower_on_the_first_gpu() {
    let spec = gemma_3_27b();
    let bf16 = WeightFormat::parse("bf16").unwrap();
    let w = WeightLayout::from_inventory(spec.num_layers, &inventory(&spec), |t| bf16.tensor_bytes(t, &spec));
    assert_eq!(w.vision, Bytes(2 * (TOWER + PROJECTOR)));
    assert_eq!(w.total(), w.language_model() + w.vision);
    let plan = plan_on_two(&spec, &w, Split::Layer, Engine::Hf);
    let layers = |a: usize, b: usize| w.layers_in(a as u64..b as u64);
    assert_eq!(plan.per_gpu[0].layers, (0, 31));
    assert_eq!(plan.per_gpu[0].memory.weights, layers(0, 31) + w.embedding + w.vision);
    assert_eq!(plan.per_gpu[1].memory.weights, layers(31, 62) + w.output);
    let line = plan.basis.iter().find(|b| b.name == "vision tower + projector (16-bit)").unwrap();
    assert_eq!(line.value, (2 * (TOWER + PROJECTOR)).to_string());
    // Tensor parallel halves everything but the decoder layers' norms, which each GPU holds whole
    // (62 layers × 4 norms of 5376 and q/k norms of 128, in bf16: 2,697,728 B).
    let tp = plan_on_two(&spec, &w, Split::Tensor, Engine::Vllm);
    let norms = 62 * (4 * 5376 + 2 * 128) * 2;
    assert_eq!(w.layers.iter().map(|l| l.replicated).sum::<Bytes>(), Bytes(norms));
    assert_eq!(tp.per_gpu[1].memory.weights, Bytes((w.total().0 - norms) / 2 + norms));
}

/// peft's all-linear wraps SigLIP's q/k/v/out_proj and fc1/fc2 (every `nn.Linear` but lm_head):
/// per vision layer r·(4·2304 + 2·5456) = 20,128·r; the decoder's 114,432·r per layer as before.
/// `q_proj` matches wherever peft's suffix match finds it (decoder and tower), `o_proj` only in
/// the decoder (SigLIP's is `out_proj`).
#[test]
fn lora_all_linear_covers_the_vision_linears_exactly() {
    let tensors = inventory(&gemma_3_27b());
    let count = |targets: &str| -> u64 {
        let t = LoraTargets::parse(targets).unwrap();
        lora::adapters(&tensors, 16, &t).unwrap().iter().map(|(r, c)| r * c).sum()
    };
    let decoder = 62 * 114_432 * 16;
    let vision = 27 * 20_128 * 16;
    assert_eq!(count("all-linear"), decoder + vision);
    assert_eq!(count("attention"), 62 * (9_472 + 7_424 + 7_424 + 9_472) * 16);
    assert_eq!(count("q_proj"), 62 * 9_472 * 16 + 27 * 2_304 * 16);
    assert_eq!(count("o_proj"), 62 * 9_472 * 16);
    assert_eq!(count("q_proj,v_proj"), 62 * (9_472 + 7_424) * 16 + 27 * 2 * 2_304 * 16);
    // The patch convolution, position table, norms, biases and the projector get none.
    let t = LoraTargets::AllLinear;
    assert!(tensors
        .iter()
        .filter(|d| d.role.is_vision() && (d.part == Part::Bias || !d.role.is_vision_linear()))
        .all(|d| !t.covers(d)));
}

fn plan_json(args: &[&str]) -> serde_json::Value {
    let out = headroom().args(args).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// transformers loads the tower; LitGPT's Gemma 3 is text only (and unties lm_head); full
/// fine-tuning trains the tower like any other tensor.
#[test]
fn engines_that_build_the_tower_count_it() {
    let hf = plan_json(&["plan", "gemma-3-27b", "--context", "1024"]);
    assert_eq!(hf["model"]["parameters"], 27_432_406_640u64);
    assert_eq!(hf["model"]["active_parameters"], LANGUAGE);
    let lit = plan_json(&["plan", "gemma-3-27b", "--context", "1024", "--engine", "litgpt"]);
    let lm_head = 2 * 262_208 * 5376;
    let hf_w = hf["memory"]["weights_bytes"].as_u64().unwrap();
    assert_eq!(hf_w, 2 * (LANGUAGE + TOWER + PROJECTOR));
    assert_eq!(lit["memory"]["weights_bytes"].as_u64().unwrap(), hf_w - 2 * (TOWER + PROJECTOR) + lm_head);
    let full = plan_json(&["plan", "gemma-3-27b", "--mode", "full", "--context", "512"]);
    assert_eq!(full["training"]["trainable_parameters"], 27_432_406_640u64);
}

/// `--text-only` leaves the tower and projector out (846,120,672 B for Gemma 3 27B in 16-bit),
/// for inference and training alike, and is refused for a model without one.
#[test]
fn text_only_leaves_the_tower_out() {
    use support::cli::{plan_json, u};
    // LoRA on all-linear also drops the vision linears' adapters: 543,456 · r fp32 parameters.
    for (mode, adapters) in [("", 0), ("--mode lora --lora-rank 8", 543_456 * 8 * 4)] {
        let with = plan_json(&format!("gemma-3-27b --weights bf16 --context 1024 {mode}"));
        let without = plan_json(&format!("gemma-3-27b --weights bf16 --context 1024 --text-only {mode}"));
        let dropped = u(&with, "/memory/weights_bytes") - u(&without, "/memory/weights_bytes");
        assert_eq!(dropped, 846_120_672 + adapters, "{mode}");
    }
    let out = headroom().args(["plan", "gemma-3-1b", "--text-only"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && err.contains("no vision encoder"), "{err}");
}
