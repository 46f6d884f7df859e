//! One measured training step, and the check of the training kernels against the CPU reference.

use super::backend::LayerBackend;
use super::cpu::CpuLayers;
use super::engine::Init;
use super::run::{relative, KernelCheck, MemoryProbe, PhaseMemory};
use super::train::{train_layout, TrainLayout, TrainModel, TrainRequest, ADAMW};
use super::train_backend::TrainBackend;
use crate::gpu::reference::{bf16_to_f32, f32_to_bf16};
use crate::gpu::GpuError;
use crate::model::spec::ModelSpec;
use serde::Serialize;
use std::time::Instant;

/// What one training step measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrainMeasured {
    pub memory_method: String,
    /// `context`, `weights`, `gradients and optimizer states`, `activations, scratch and
    /// workspace`, `step`.
    pub phases: Vec<PhaseMemory>,
    pub batch: u64,
    pub seq: u64,
    /// GPU times (CUDA events) of the forward pass with the loss, the backward pass and the
    /// optimizer step.
    pub forward_ms: f64,
    pub backward_ms: f64,
    pub optimizer_ms: f64,
    /// The mean loss before the step and on the same batch after it.
    pub loss_before: f64,
    pub loss_after: f64,
    /// Host wall time of the whole step, for reference.
    pub wall_ms: f64,
}

impl TrainMeasured {
    pub fn step_ms(&self) -> f64 {
        self.forward_ms + self.backward_ms + self.optimizer_ms
    }
    pub fn tokens_per_s(&self) -> f64 {
        (self.batch * self.seq) as f64 / (self.step_ms() / 1e3)
    }
}

/// Builds the step's buffers phase by phase (sampling memory after each), runs one step and
/// samples again. `b` must hold its warmed-up runtime: the context sample comes first.
pub fn measure_training<B: TrainBackend, P: MemoryProbe>(
    b: &mut B,
    probe: &mut P,
    spec: &ModelSpec,
    lay: &TrainLayout,
    req: TrainRequest,
) -> Result<TrainMeasured, GpuError> {
    let mut phases = Vec::new();
    b.sync()?;
    phases.push(PhaseMemory { phase: "context", process_bytes: probe.process_bytes() });
    let model = TrainModel::build(b, spec, lay, req, Init::Device, |b, phase| {
        b.sync()?;
        phases.push(PhaseMemory { phase, process_bytes: probe.process_bytes() });
        Ok(())
    })?;
    model.set_batch(b, 7)?;
    b.sync()?;
    let wall = Instant::now();
    let m0 = b.mark()?;
    model.forward(b)?;
    let m1 = b.mark()?;
    let loss_before = model.loss(b)?;
    let m2 = b.mark()?;
    model.backward(b)?;
    let m3 = b.mark()?;
    model.optimizer_step(b, ADAMW)?;
    let m4 = b.mark()?;
    b.sync()?;
    let wall_ms = wall.elapsed().as_secs_f64() * 1e3;
    phases.push(PhaseMemory { phase: "step", process_bytes: probe.process_bytes() });
    let (forward_ms, backward_ms, optimizer_ms) = (b.elapsed_ms(m0, m1)?, b.elapsed_ms(m2, m3)?, b.elapsed_ms(m3, m4)?);
    model.forward(b)?;
    let loss_after = model.loss(b)?;
    Ok(TrainMeasured {
        memory_method: probe.method(),
        phases,
        batch: req.batch,
        seq: req.seq,
        forward_ms,
        backward_ms,
        optimizer_ms,
        loss_before,
        loss_after,
        wall_ms,
    })
}

/// Tolerance of the training check: gradients pass through more bf16 roundings than logits
/// (every backward buffer is bf16), in a different summation order on each side.
pub const TRAIN_CHECK_TOLERANCE: f64 = 0.05;

/// The training kernels on `b` against the CPU reference on [`super::TINY_CONFIG`]: the loss,
/// every tensor's gradient, and the weights after one AdamW step.
pub fn train_kernel_check<B: TrainBackend>(b: &mut B) -> Result<KernelCheck, GpuError> {
    let spec = crate::model::config::parse_config(super::TINY_CONFIG, "tiny", "built-in")
        .map_err(|e| GpuError::Unsupported(e.to_string()))?
        .spec;
    let req = TrainRequest { batch: 1, seq: 64 };
    let lay = train_layout(&spec, req, 9).map_err(|e| GpuError::Unsupported(e.to_string()))?;
    let gpu = step_outputs(b, &spec, &lay, req, None)?;
    // The reference's AdamW step starts from the GPU's gradients: AdamW's first step moves each
    // weight by ±lr whatever the gradient's size, so a near-zero gradient whose sign differs
    // between the two would otherwise look like a wrong update.
    let cpu = step_outputs(&mut CpuLayers::new(), &spec, &lay, req, Some(&gpu.1))?;
    let mut errors = vec![("loss".to_string(), ((gpu.0 - cpu.0) / cpu.0).abs())];
    let worst = |a: &[Vec<f32>], b: &[Vec<f32>]| a.iter().zip(b).map(|(x, y)| relative(x, y)).fold(0.0, f64::max);
    errors.push(("gradients (worst tensor)".to_string(), worst(&gpu.1, &cpu.1)));
    errors.push(("weights after the step".to_string(), worst(&gpu.2, &cpu.2)));
    Ok(KernelCheck::new("training step", errors, TRAIN_CHECK_TOLERANCE))
}

type StepOutputs = (f64, Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Loss, gradients and updated weights of one step of the small model with host-made weights;
/// with `grads_in`, the optimizer step uses those gradients instead of its own.
fn step_outputs<B: TrainBackend>(
    b: &mut B,
    spec: &ModelSpec,
    lay: &TrainLayout,
    req: TrainRequest,
    grads_in: Option<&[Vec<f32>]>,
) -> Result<StepOutputs, GpuError> {
    let model = TrainModel::build(b, spec, lay, req, Init::Host, |_, _| Ok(()))?;
    model.set_batch(b, 5)?;
    model.forward(b)?;
    let loss = model.loss(b)?;
    model.backward(b)?;
    let grads = model.gradients().iter().map(|&g| bf16s(b, g)).collect::<Result<Vec<_>, _>>()?;
    if let Some(given) = grads_in {
        for (&buf, g) in model.gradients().iter().zip(given) {
            let bytes: Vec<u8> = g.iter().flat_map(|&x| f32_to_bf16(x).to_le_bytes()).collect();
            b.upload(buf, &bytes)?;
        }
    }
    // A step large enough to move every bf16 weight.
    model.optimizer_step(b, crate::gpu::reference::AdamW { lr: 1e-2, ..ADAMW })?;
    let weights = model.weights().iter().map(|&w| bf16s(b, w)).collect::<Result<Vec<_>, _>>()?;
    b.release_all()?;
    Ok((loss, grads, weights))
}

fn bf16s<B: LayerBackend>(b: &mut B, buf: super::backend::Buf) -> Result<Vec<f32>, GpuError> {
    Ok(b.download(buf)?.chunks_exact(2).map(|c| bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_measured_step_samples_every_phase_and_learns() {
        let spec = crate::model::config::parse_config(crate::validate::TINY_CONFIG, "tiny", "t").unwrap().spec;
        let req = TrainRequest { batch: 1, seq: 64 };
        let lay = train_layout(&spec, req, 8).unwrap();
        let m = measure_training(
            &mut CpuLayers::new(),
            &mut crate::validate::run::CountingProbe { bytes: 0, step: 10 },
            &spec,
            &lay,
            req,
        )
        .unwrap();
        let names: Vec<_> = m.phases.iter().map(|p| p.phase).collect();
        assert_eq!(
            names,
            ["context", "weights", "gradients and optimizer states", "activations, scratch and workspace", "step"]
        );
        assert!(m.step_ms() > 0.0 && m.tokens_per_s() > 0.0);
        assert!(m.loss_after < m.loss_before, "{} → {}", m.loss_before, m.loss_after);
    }

    /// The CPU against itself agrees exactly, and the check covers loss, gradients and weights.
    #[test]
    fn the_training_check_compares_loss_gradients_and_weights() {
        let c = train_kernel_check(&mut CpuLayers::new()).unwrap();
        assert!(c.passed && c.worst() == 0.0 && c.errors.len() == 3, "{c:?}");
    }

    /// A gradient whose sign differs between the two sides does not fail the update check: the
    /// reference steps from the given gradients (AdamW's first step is ±lr whatever their size).
    #[test]
    fn the_update_check_steps_from_the_same_gradients() {
        let spec = crate::model::config::parse_config(crate::validate::TINY_CONFIG, "tiny", "t").unwrap().spec;
        let req = TrainRequest { batch: 1, seq: 64 };
        let lay = train_layout(&spec, req, 9).unwrap();
        let mut mine = step_outputs(&mut CpuLayers::new(), &spec, &lay, req, None).unwrap();
        // Flip one small gradient, as a GPU's different rounding might.
        let (t, i) = (0, mine.1[0].iter().position(|g| g.abs() > 0.0).unwrap());
        mine.1[t][i] = -mine.1[t][i];
        let theirs = step_outputs(&mut CpuLayers::new(), &spec, &lay, req, Some(&mine.1)).unwrap();
        let own = step_outputs(&mut CpuLayers::new(), &spec, &lay, req, None).unwrap();
        assert!(relative(&theirs.2[t], &own.2[t]) > 0.0, "the given gradient was used");
        // The updates from the same (flipped) gradients agree with a step taken from them.
        let again = step_outputs(&mut CpuLayers::new(), &spec, &lay, req, Some(&mine.1)).unwrap();
        assert_eq!(theirs.2, again.2);
    }
}
