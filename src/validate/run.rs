//! One validation run: allocate the model phase by phase, sampling process memory after each,
//! warm up, then time a prefill and the decode steps. And the kernel check: the same small model
//! on the GPU and on the CPU reference, logits compared.

use super::backend::LayerBackend;
use super::cpu::CpuLayers;
use super::engine::{token_ids, Init, Model};
use super::layout::{layout, Layout, Request};
use crate::gpu::GpuError;
use crate::model::spec::ModelSpec;
use crate::quant::WeightFormat;
use serde::Serialize;
use std::time::Instant;

/// Reads the memory this process holds on the GPU.
pub trait MemoryProbe {
    /// Bytes now, or `None` when the driver does not say.
    fn process_bytes(&mut self) -> Option<u64>;
    /// How the bytes are read (NVML per-process, or device used − baseline).
    fn method(&self) -> String;
}

/// A probe for tests: each sample reads `step` bytes more than the one before.
#[cfg(test)]
pub(crate) struct CountingProbe {
    pub bytes: u64,
    pub step: u64,
}

#[cfg(test)]
impl MemoryProbe for CountingProbe {
    fn process_bytes(&mut self) -> Option<u64> {
        self.bytes += self.step;
        Some(self.bytes)
    }
    fn method(&self) -> String {
        "counter".into()
    }
}

/// Process memory after one phase.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PhaseMemory {
    /// `context`, `weights`, `kv cache`, `arena`, `prefill`, `decode`.
    pub phase: &'static str,
    pub process_bytes: Option<u64>,
}

/// What one run measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Measured {
    pub memory_method: String,
    pub phases: Vec<PhaseMemory>,
    pub batch: u64,
    pub prompt_tokens: u64,
    pub decode_steps: u64,
    /// GPU time of the prefill (all layers and the LM head), CUDA events.
    pub prefill_ms: f64,
    /// GPU time of all decode steps, CUDA events.
    pub decode_ms: f64,
    /// Host time to enqueue one decode step on an idle GPU (launch overhead), wall clock:
    /// the median of 8 steps, each after a sync, so the launch queue never pushes back.
    pub decode_host_ms_per_step: f64,
    /// The host enqueued no faster than the GPU ran (≥ 90% of the GPU time per step): the decode
    /// speed measures launch overhead, not the kernels.
    pub launch_bound: bool,
    /// The last logits were all finite.
    pub logits_finite: bool,
}

impl Measured {
    pub fn prefill_tokens_per_s(&self) -> f64 {
        (self.batch * self.prompt_tokens) as f64 / (self.prefill_ms / 1e3)
    }
    pub fn decode_tokens_per_s(&self) -> f64 {
        (self.batch * self.decode_steps) as f64 / (self.decode_ms / 1e3)
    }
}

/// Memory after `phase` among `phases`.
pub fn after(phases: &[PhaseMemory], phase: &str) -> Option<u64> {
    phases.iter().find(|p| p.phase == phase).and_then(|p| p.process_bytes)
}

/// The largest sample among `phases`.
pub fn peak(phases: &[PhaseMemory]) -> Option<u64> {
    phases.iter().filter_map(|p| p.process_bytes).max()
}

/// Runs `spec` in `format` for `req` on `b`, sampling memory through `probe`. The context
/// sample is taken first, so `b` must already hold its context, kernels and cuBLAS handle.
pub fn measure<B: LayerBackend, P: MemoryProbe>(
    b: &mut B,
    probe: &mut P,
    spec: &ModelSpec,
    lay: &Layout,
    req: &Request,
) -> Result<Measured, GpuError> {
    let mut phases = Vec::new();
    let mut sample = |b: &mut B, phase: &'static str, probe: &mut P| -> Result<(), GpuError> {
        b.sync()?;
        phases.push(PhaseMemory { phase, process_bytes: probe.process_bytes() });
        Ok(())
    };
    sample(b, "context", probe)?;
    let weights = Model::load_weights(b, spec, lay, req, Init::Device)?;
    sample(b, "weights", probe)?;
    let kv = weights.alloc_kv(b, lay)?;
    sample(b, "kv cache", probe)?;
    let model = kv.alloc_arena(b, lay)?;
    sample(b, "arena", probe)?;

    let batch = req.batch;
    let vocab = spec.vocab_size;
    // Warm-up: compiles every kernel and lets cuBLAS pick its algorithms.
    model.set_tokens(b, 0, &token_ids(batch * 64, 0, vocab))?;
    model.forward(b, 64, 0)?;
    model.set_tokens(b, 64 * batch, &token_ids(batch, 1, vocab))?;
    model.forward(b, 1, 64)?;

    let p = req.prompt;
    model.set_tokens(b, 0, &token_ids(batch * p, 2, vocab))?;
    let steps = req.context - p;
    model.set_tokens(b, p * batch, &token_ids(batch * steps, 3, vocab))?;
    // One untimed prefill at the timed size: cuBLAS picks its algorithms and lazily loads their
    // kernels here, not inside the measurement (the KV rows are rewritten identically).
    model.forward(b, p, 0)?;
    b.sync()?;
    let start = b.mark()?;
    model.forward(b, p, 0)?;
    let end = b.mark()?;
    let prefill_ms = b.elapsed_ms(start, end)?;
    sample(b, "prefill", probe)?;

    let start = b.mark()?;
    for s in 0..steps {
        model.forward(b, 1, p + s)?;
    }
    let end = b.mark()?;
    let decode_ms = b.elapsed_ms(start, end)?;
    sample(b, "decode", probe)?;
    let logits_finite = model.logits(b)?.iter().all(|v| v.is_finite());
    // Enqueue time alone: the last position again (it rewrites the same KV row before reading).
    let mut host_ms: Vec<f64> = Vec::with_capacity(8);
    for _ in 0..8 {
        b.sync()?;
        let t = Instant::now();
        model.forward(b, 1, req.context - 1)?;
        host_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    b.sync()?;
    host_ms.sort_by(f64::total_cmp);
    let host_ms_per_step = (host_ms[3] + host_ms[4]) / 2.0;
    Ok(Measured {
        memory_method: probe.method(),
        phases,
        batch,
        prompt_tokens: p,
        decode_steps: steps,
        prefill_ms,
        decode_ms,
        decode_host_ms_per_step: host_ms_per_step,
        launch_bound: host_ms_per_step >= 0.9 * decode_ms / steps.max(1) as f64,
        logits_finite,
    })
}

/// The kernel check: logits of [`super::TINY_CONFIG`] after a 64-token prefill and after 8
/// decode steps, on `b` and on the CPU reference, for one weight format.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KernelCheck {
    /// What ran: the weight format of an inference check, or `training step`.
    pub check: String,
    /// Largest |gpu − cpu| over the largest |cpu| of each compared output (prefill and decode
    /// logits; the loss and every gradient).
    pub errors: Vec<NamedError>,
    pub tolerance: f64,
    pub passed: bool,
}

/// One compared output of a kernel check.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct NamedError {
    pub name: String,
    pub error: f64,
}

impl KernelCheck {
    pub fn new(check: &str, errors: Vec<(String, f64)>, tolerance: f64) -> Self {
        let passed = errors.iter().all(|e| e.1 <= tolerance);
        let errors = errors.into_iter().map(|(name, error)| NamedError { name, error }).collect();
        KernelCheck { check: check.to_string(), errors, tolerance, passed }
    }

    /// The largest error.
    pub fn worst(&self) -> f64 {
        self.errors.iter().map(|e| e.error).fold(0.0, f64::max)
    }
}

/// Relative tolerance of the kernel check: bf16 storage, fp32 accumulation in a different order
/// and bf16 attention probabilities over two layers (the CPU's own decode-vs-prefill agreement is
/// 0.4% for 4-bit weights, validate/engine.rs tests).
pub const CHECK_TOLERANCE: f64 = 0.03;

pub fn kernel_check<B: LayerBackend>(b: &mut B, format: &str) -> Result<KernelCheck, GpuError> {
    let spec = crate::model::config::parse_config(super::TINY_CONFIG, "tiny", "built-in")
        .map_err(|e| GpuError::Unsupported(e.to_string()))?
        .spec;
    let f = WeightFormat::parse(format).map_err(|e| GpuError::Unsupported(e.to_string()))?;
    let req = Request { batch: 1, context: 128, prompt: 64 };
    let lay = layout(&spec, f, &req, 9).map_err(|e| GpuError::Unsupported(e.to_string()))?;
    let gpu = check_sequence(b, &spec, &lay, &req)?;
    let cpu = check_sequence(&mut CpuLayers::new(), &spec, &lay, &req)?;
    let errors = vec![
        ("prefill logits".to_string(), relative(&gpu.0, &cpu.0)),
        ("decode logits".to_string(), relative(&gpu.1, &cpu.1)),
    ];
    Ok(KernelCheck::new(format, errors, CHECK_TOLERANCE))
}

/// The check's sequence on one backend: the prefill's logits, then those after 8 decode steps.
fn check_sequence<B: LayerBackend>(
    b: &mut B,
    spec: &ModelSpec,
    lay: &Layout,
    req: &Request,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    let model = Model::load_weights(b, spec, lay, req, Init::Host)?.alloc_kv(b, lay)?.alloc_arena(b, lay)?;
    model.set_tokens(b, 0, &token_ids(req.context, 5, spec.vocab_size))?;
    model.forward(b, req.prompt, 0)?;
    let prefill = model.logits(b)?;
    for p in req.prompt..req.prompt + 8 {
        model.forward(b, 1, p)?;
    }
    Ok((prefill, model.logits(b)?))
}

/// Largest |a − b| over the largest |b| (NaN in `a` counts as infinitely wrong).
pub fn relative(a: &[f32], b: &[f32]) -> f64 {
    let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64)).max(f64::MIN_POSITIVE);
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    a.iter().zip(b).fold(0f64, |m, (x, y)| {
        let d = (x - y).abs() as f64;
        if d.is_nan() {
            f64::INFINITY
        } else {
            m.max(d)
        }
    }) / scale
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A probe that reports the CPU backend's slab bytes plus a fixed "context".
    #[test]
    fn a_run_samples_every_phase_in_order_and_times_both_passes() {
        let spec = crate::model::config::parse_config(crate::validate::TINY_CONFIG, "tiny", "t").unwrap().spec;
        let req = Request { batch: 1, context: 80, prompt: 64 };
        let lay = layout(&spec, WeightFormat::parse("bf16").unwrap(), &req, 8).unwrap();
        let m = measure(&mut CpuLayers::new(), &mut CountingProbe { bytes: 0, step: 1 }, &spec, &lay, &req).unwrap();
        let names: Vec<_> = m.phases.iter().map(|p| p.phase).collect();
        assert_eq!(names, ["context", "weights", "kv cache", "arena", "prefill", "decode"]);
        assert_eq!((m.prompt_tokens, m.decode_steps), (64, 16));
        assert!(m.prefill_ms > 0.0 && m.decode_ms > 0.0 && m.logits_finite);
        assert_eq!(peak(&m.phases), Some(6));
    }

    /// The CPU against itself passes; a NaN or a wrong length fails.
    #[test]
    fn the_kernel_check_compares_logits() {
        let c = kernel_check(&mut CpuLayers::new(), "awq").unwrap();
        assert!(c.passed && c.worst() == 0.0 && c.errors.len() == 2, "{c:?}");
        assert_eq!(relative(&[f32::NAN, 1.0], &[1.0, 1.0]), f64::INFINITY);
        assert_eq!(relative(&[1.0], &[1.0, 1.0]), f64::INFINITY);
        assert!((relative(&[1.1, 2.0], &[1.0, 2.0]) - 0.05).abs() < 1e-6);
    }
}
