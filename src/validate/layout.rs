//! What `validate`'s engine allocates, derived from the model's tensors and the request alone:
//! one slab of weights (every tensor in the planned format, zeros and `g_idx` included), one
//! slab of KV cache, one activation arena, one workspace slab. The planner's `headroom` engine
//! profile (`plan::engine`, `plan::activations`) predicts the same buffers from its own formulas;
//! a property test (tests/validate_props.rs) holds the two to the byte, and `validate` then
//! checks both against NVML.
//!
//! The arena holds the residual stream `x` and the normed input `n` (T·h each, T = batch ×
//! context tokens) and one scratch region shared by the two moments of a layer:
//! attention needs q, k, v token-major (T·(q + 2·kv)) plus q and the output head-major (2·T·q);
//! the MLP needs gate and up (2·T·i; the SiLU product overwrites gate, the down projection
//! writes into `n`). Worked example, Llama-2-7B, batch 1, context 4096, bf16:
//! x + n = 2·4096·4096·2 B = 64 MiB; attention 4096·(3·4096 + 2·4096)·2 B = 160 MiB; MLP
//! 2·4096·11008·2 B = 172 MiB; arena 64 + 172 = 236 MiB (247,463,936 B).

use super::backend::bf16_bytes;
use crate::model::spec::{MlpKind, ModelSpec, NormKind};
use crate::model::tensors::{inventory, Part, TensorDesc};
use crate::quant::stored::{FloatType, QuantScheme, StoredType};
use crate::quant::WeightFormat;
use thiserror::Error;

/// Keys per split of the decode attention kernel (kernels/attention_decode.cu `DEC_CHUNK`).
pub const DECODE_CHUNK: u64 = 256;
/// Query rows per block of the prefill kernel (kernels/attention_prefill.cu `PF_BR`).
pub const PREFILL_TILE: u64 = 64;
/// The head dimension both attention kernels are written for.
pub const HEAD_DIM: u64 = 128;
/// Longest row the GEMV kernels take (x staged in shared memory, kernels/gemv.cu).
pub const GEMV_MAX_COLS: u64 = 32768;

/// cuBLAS workspace `validate` hands to cuBLAS: NVIDIA's recommendation, 32 MiB on Hopper and
/// newer, 4 MiB before (cuBLAS docs, `cublasSetWorkspace`; PyTorch and TVM use the same sizes).
pub fn blas_workspace_bytes(compute_major: u32) -> u64 {
    if compute_major >= 9 {
        32 << 20
    } else {
        4 << 20
    }
}

/// The split-K partials of decode attention: f32 `[batch][heads][splits][head_dim]` then
/// `[batch][heads][splits][2]` (running max and sum), splits = ⌈cap / 256⌉.
pub fn decode_workspace_bytes(batch: u64, heads: u64, head_dim: u64, cap: u64) -> u64 {
    batch * heads * cap.div_ceil(DECODE_CHUNK) * (head_dim + 2) * 4
}

/// Why the engine cannot run a model or request.
#[derive(Debug, Error, PartialEq)]
pub enum Unsupported {
    #[error("validate runs Llama-style models (RMSNorm, gated MLP, RoPE, no biases, dense, full attention); {model} has {what}: plan it with `headroom plan` instead")]
    Architecture { model: String, what: String },
    #[error("validate runs bf16 weights and 4-bit group-128 formats (gptq, awq); '{0}' is not one: use --weights bf16, gptq or awq")]
    Format(String),
    #[error("validate's kernels need {what}; {model} has {value}")]
    Shape { model: String, what: &'static str, value: String },
    #[error("--{what} {value} is invalid for validate: {fix}")]
    Request { what: &'static str, value: String, fix: &'static str },
}

/// How the planned format stores the block linear layers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Storage {
    Bf16,
    /// 4-bit group 128 with the scheme's exact tensors (gptq adds `g_idx`).
    Int4(QuantScheme),
}

/// One tensor as the engine allocates it: its parts, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorAlloc {
    pub desc: TensorDesc,
    pub storage: Storage,
    /// bf16 data, or qweight, scales, zeros and (gptq) g_idx.
    pub parts: Vec<u64>,
}

impl TensorAlloc {
    pub fn bytes(&self) -> u64 {
        self.parts.iter().sum()
    }
}

/// The engine's request: a model, a format, and the sequences it runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    pub batch: u64,
    /// KV rows per sequence: prompt plus generated tokens.
    pub context: u64,
    /// Prompt tokens per sequence (a multiple of 64, at most `context − 1`).
    pub prompt: u64,
}

/// Everything the engine allocates, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct Layout {
    pub tensors: Vec<TensorAlloc>,
    /// K and V of one layer: 2 · batch · kv_heads · context · head_dim · 2 B.
    pub kv_per_layer: u64,
    pub layers: u64,
    /// The arena: x, n and the shared scratch region.
    pub stream: u64,
    pub scratch: u64,
    /// Workspace buffers by name.
    pub workspace: Vec<(&'static str, u64)>,
}

impl Layout {
    pub fn weight_bytes(&self) -> u64 {
        self.tensors.iter().map(TensorAlloc::bytes).sum()
    }
    pub fn kv_bytes(&self) -> u64 {
        self.kv_per_layer * self.layers
    }
    pub fn arena_bytes(&self) -> u64 {
        2 * self.stream + self.scratch
    }
    pub fn workspace_bytes(&self) -> u64 {
        self.workspace.iter().map(|w| w.1).sum()
    }
}

/// Checks the model is one the engine runs: Llama-style, head_dim 128, GQA groups of 1–8.
pub fn check_model(spec: &ModelSpec) -> Result<(), Unsupported> {
    let arch = |what: &str| Err(Unsupported::Architecture { model: spec.id.clone(), what: what.to_string() });
    if spec.vision.is_some() {
        return arch("a vision tower (multimodal checkpoint)");
    }
    if spec.moe.is_some() {
        return arch("mixture-of-experts layers");
    }
    if spec.mla.is_some() {
        return arch("multi-head latent attention");
    }
    if spec.linear_attention.is_some() {
        return arch("linear-attention (Gated DeltaNet) layers");
    }
    if spec.norm != NormKind::RmsNorm || spec.norms_per_layer != 2 {
        return arch("a different norm arrangement");
    }
    if spec.mlp != MlpKind::Gated {
        return arch("a plain (ungated) MLP");
    }
    if spec.biases.qkv || spec.biases.attn_out || spec.biases.mlp || spec.biases.lm_head {
        return arch("bias vectors");
    }
    if spec.fused_qkv || spec.fused_gate_up {
        return arch("fused projections");
    }
    if spec.qk_norm.present() {
        return arch("q/k norms");
    }
    if spec.logit_softcap {
        return arch("soft-capped logits");
    }
    if spec.layer_attention.iter().any(|a| a.token_cap().is_some()) {
        return arch("sliding-window or chunked layers");
    }
    let shape = |what, value: u64| Err(Unsupported::Shape { model: spec.id.clone(), what, value: value.to_string() });
    if spec.head_dim != HEAD_DIM {
        return shape("head_dim 128", spec.head_dim);
    }
    let group = spec.num_heads / spec.num_kv_heads.max(1);
    if spec.num_heads % spec.num_kv_heads.max(1) != 0 || ![1, 2, 4, 8].contains(&group) {
        return shape("1, 2, 4 or 8 query heads per KV head", group);
    }
    if spec.hidden_size % 128 != 0 || spec.intermediate_size % 128 != 0 {
        return shape("hidden and intermediate sizes that are multiples of 128", spec.intermediate_size);
    }
    Ok(())
}

/// The storage of a format, or why the engine cannot run it.
pub fn storage(format: WeightFormat) -> Result<Storage, Unsupported> {
    match format {
        WeightFormat::Float(FloatType::Bf16 | FloatType::F16) => Ok(Storage::Bf16),
        WeightFormat::Quantized(q @ (QuantScheme::GptqG128 | QuantScheme::AwqG128)) => Ok(Storage::Int4(q)),
        other => Err(Unsupported::Format(other.id().to_string())),
    }
}

/// The parts of one tensor in `storage`: its own bytes in the checkpoint layout.
fn tensor_alloc(spec: &ModelSpec, format: WeightFormat, t: &TensorDesc) -> TensorAlloc {
    let (n, k) = (t.rows, t.cols);
    match format.tensor_type(t, spec) {
        StoredType::Quantized(q) => {
            let groups = k.div_ceil(128);
            let mut parts = vec![n * k / 2, groups * n * 2, groups * n / 2];
            if q == QuantScheme::GptqG128 {
                parts.push(k * 4);
            }
            TensorAlloc { desc: *t, storage: Storage::Int4(q), parts }
        }
        // Floats are held in bf16 whatever the checkpoint's 16-bit type.
        _ => TensorAlloc { desc: *t, storage: Storage::Bf16, parts: vec![bf16_bytes(t.elements())] },
    }
}

/// Every weight tensor of `spec` as the engine allocates it in `format`.
pub fn weight_tensors(spec: &ModelSpec, format: WeightFormat) -> Vec<TensorAlloc> {
    inventory(spec).iter().filter(|t| t.part == Part::Weight).map(|t| tensor_alloc(spec, format, t)).collect()
}

/// The engine's allocations for `spec` in `format` on a GPU of compute capability `major`.
pub fn layout(spec: &ModelSpec, format: WeightFormat, req: &Request, major: u32) -> Result<Layout, Unsupported> {
    check_model(spec)?;
    let st = storage(format)?;
    check_request(spec, st, req)?;
    let tensors = weight_tensors(spec, format);
    let (h, q, kv, i) = (spec.hidden_size, spec.q_width(), spec.kv_width(), spec.intermediate_size);
    let t = req.batch * req.context;
    let scratch = bf16_bytes(t * (3 * q + 2 * kv)).max(bf16_bytes(2 * t * i));
    let mut workspace = vec![
        ("cuBLAS workspace", blas_workspace_bytes(major)),
        ("logits", bf16_bytes(req.batch * spec.vocab_size)),
        ("rotary tables", 2 * req.context * (spec.head_dim / 2) * 4),
        ("token ids", t * 4),
        ("decode attention partials", decode_workspace_bytes(req.batch, spec.num_heads, spec.head_dim, req.context)),
    ];
    if matches!(st, Storage::Int4(_)) {
        let largest = tensors
            .iter()
            .filter(|a| matches!(a.storage, Storage::Int4(_)))
            .map(|a| a.desc.rows * a.desc.cols)
            .max()
            .unwrap_or(0);
        workspace.push(("dequantized weight (prefill)", bf16_bytes(largest)));
    }
    Ok(Layout {
        tensors,
        kv_per_layer: 2 * bf16_bytes(req.batch * spec.num_kv_heads * req.context * spec.head_dim),
        layers: spec.num_layers,
        stream: bf16_bytes(t * h),
        scratch,
        workspace,
    })
}

fn check_request(spec: &ModelSpec, st: Storage, req: &Request) -> Result<(), Unsupported> {
    let bad = |what, value: u64, fix| Err(Unsupported::Request { what, value: value.to_string(), fix });
    if req.batch == 0 || req.batch > 1024 {
        return bad("batch", req.batch, "give 1 to 1024 sequences");
    }
    if req.prompt < PREFILL_TILE || req.prompt % PREFILL_TILE != 0 || req.prompt >= req.context {
        return bad("context", req.context, "give a context of at least 65 tokens (the prompt is a multiple of 64)");
    }
    if req.context > spec.max_context.max(4096) * 4 || req.context > 1 << 20 {
        return bad("context", req.context, "give at most 4× the model's configured context");
    }
    if matches!(st, Storage::Int4(_)) {
        if req.batch != 1 {
            return bad("batch", req.batch, "4-bit weights run one sequence (the GEMV kernel multiplies one vector)");
        }
        let widest = spec.hidden_size.max(spec.intermediate_size);
        if widest > GEMV_MAX_COLS {
            return bad("weights", widest, "4-bit rows longer than 32,768 do not fit the GEMV kernel's shared memory");
        }
    }
    Ok(())
}

/// The prompt length for a context and a number of decode steps: the largest multiple of 64
/// that leaves at least `steps` positions (at least one).
pub fn prompt_for(context: u64, steps: u64) -> u64 {
    let room = context.saturating_sub(steps.max(1));
    room / PREFILL_TILE * PREFILL_TILE
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::testing::llama_2_7b;

    fn req(context: u64) -> Request {
        Request { batch: 1, context, prompt: prompt_for(context, 64) }
    }

    /// The module doc's worked example.
    #[test]
    fn llama_2_7b_arena_at_4096() {
        let l = layout(&llama_2_7b(), WeightFormat::parse("bf16").unwrap(), &req(4096), 9).unwrap();
        assert_eq!(l.arena_bytes(), 247_463_936);
        assert_eq!(l.kv_bytes(), 2_147_483_648);
        assert_eq!(l.weight_bytes(), 13_476_831_232);
    }

    /// The engine's own derivation of every quantized tensor's bytes agrees with the format's.
    #[test]
    fn quantized_parts_add_up_to_the_format() {
        let spec = llama_2_7b();
        for id in ["gptq", "awq"] {
            let f = WeightFormat::parse(id).unwrap();
            let l = layout(&spec, f, &req(4096), 9).unwrap();
            let want = f.weight_bytes(&spec, &inventory(&spec));
            assert_eq!(l.weight_bytes(), want.0, "{id}");
            assert!(l.workspace.iter().any(|w| w.0.starts_with("dequantized") && w.1 == 11008 * 4096 * 2));
        }
    }

    #[test]
    fn refuses_what_the_kernels_cannot_run() {
        let spec = llama_2_7b();
        let bf16 = WeightFormat::parse("bf16").unwrap();
        assert!(matches!(
            layout(&spec, WeightFormat::parse("q4_k_m").unwrap(), &req(4096), 9),
            Err(Unsupported::Format(_))
        ));
        assert!(matches!(layout(&spec, bf16, &req(64), 9), Err(Unsupported::Request { what: "context", .. })));
        let awq = WeightFormat::parse("awq").unwrap();
        let two = Request { batch: 2, ..req(4096) };
        assert!(matches!(layout(&spec, awq, &two, 9), Err(Unsupported::Request { what: "batch", .. })));
        let wide = ModelSpec { head_dim: 64, num_heads: 64, num_kv_heads: 64, ..spec.clone() };
        assert!(matches!(layout(&wide, bf16, &req(4096), 9), Err(Unsupported::Shape { .. })));
        let gemma3 = crate::catalog::models::ModelCatalog::builtin().get("gemma-3-27b").unwrap().spec();
        let err = layout(gemma3, bf16, &req(4096), 9).unwrap_err().to_string();
        assert!(err.contains("gemma-3-27b has a vision tower"), "{err}");
    }

    #[test]
    fn prompt_is_a_multiple_of_the_prefill_tile() {
        assert_eq!(prompt_for(4096, 64), 4032);
        assert_eq!(prompt_for(4096, 32), 4032);
        assert_eq!(prompt_for(130, 1), 128);
        assert_eq!(prompt_for(64, 1), 0);
    }
}
