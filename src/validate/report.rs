//! The validate record: predicted against measured, per memory component and for both speeds,
//! with the kernel checks. `--json FILE` writes it; its shape is what `data/measurements/`
//! keeps so CI can hold later planners to it.

use super::run::{after, peak, KernelCheck, Measured, PhaseMemory};
use super::train_run::TrainMeasured;
use crate::report::Listing;
use serde::Serialize;

/// What the planner said, for the same model, format, context, batch and GPU.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Predicted {
    pub cuda_context_bytes: u64,
    pub weights_bytes: u64,
    pub kv_cache_bytes: u64,
    pub activations_bytes: u64,
    pub gradients_bytes: u64,
    pub optimizer_bytes: u64,
    pub workspace_bytes: u64,
    pub total_bytes: u64,
    /// At the prompt length validate runs (the prefill), null without a catalog GPU.
    pub prefill_tokens_per_s: Option<f64>,
    /// At the full context.
    pub decode_tokens_per_s: Option<f64>,
    /// Host time per decode step the plan assumes (launches).
    pub decode_host_ms_per_step: Option<f64>,
}

/// One compared quantity.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub name: String,
    pub predicted: Option<f64>,
    pub measured: Option<f64>,
    /// (predicted − measured) / measured.
    pub error: Option<f64>,
}

impl Comparison {
    fn new(name: &str, predicted: Option<f64>, measured: Option<f64>) -> Self {
        let error = match (predicted, measured) {
            (Some(p), Some(m)) if m > 0.0 => Some((p - m) / m),
            _ => None,
        };
        Comparison { name: name.to_string(), predicted, measured, error }
    }
}

/// The device validate ran on.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceSummary {
    pub name: String,
    pub catalog_id: Option<String>,
    pub memory_total_bytes: u64,
    pub compute_capability: String,
    pub driver_version: String,
    pub cuda_version: String,
}

/// The whole record.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    pub schema: &'static str,
    pub model: String,
    /// The model argument as given (a catalog id or a path), so the record can be re-planned.
    pub model_input: String,
    /// `infer`, or `full` for a fine-tuning step.
    pub mode: &'static str,
    pub weights: String,
    pub context: u64,
    pub batch: u64,
    pub device: DeviceSummary,
    /// The planned total fits in the memory free when validate started.
    pub fits: bool,
    /// Why nothing was measured (does not fit, out of memory), when nothing was.
    pub note: Option<String>,
    pub predicted: Predicted,
    pub measured: Option<Measured>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measured_training: Option<TrainMeasured>,
    /// Memory components in bytes, then speeds in tokens/s.
    pub memory: Vec<Comparison>,
    pub speed: Vec<Comparison>,
    pub kernel_checks: Vec<KernelCheck>,
}

/// Memory comparisons from process memory after each phase: the context, then what loading the
/// weights added, what the `middle` phase added (KV cache, or gradients and optimizer states:
/// (name, predicted bytes, phase)), and everything after it up to the peak.
fn memory_rows(p: &Predicted, phases: Option<&[PhaseMemory]>, middle: (&str, u64, &str)) -> Vec<Comparison> {
    let at = |phase: &str| phases.and_then(|ph| after(ph, phase)).map(|b| b as f64);
    let delta = |to: Option<f64>, from: Option<f64>| to.zip(from).map(|(a, b)| a - b);
    let top = phases.and_then(peak).map(|b| b as f64);
    let f = |b: u64| Some(b as f64);
    let (name, predicted, phase) = middle;
    vec![
        Comparison::new("cuda context", f(p.cuda_context_bytes), at("context")),
        Comparison::new("weights", f(p.weights_bytes), delta(at("weights"), at("context"))),
        Comparison::new(name, f(predicted), delta(at(phase), at("weights"))),
        Comparison::new("activations + workspace", f(p.activations_bytes + p.workspace_bytes), delta(top, at(phase))),
        Comparison::new("total (peak)", f(p.total_bytes), top),
    ]
}

impl Record {
    /// Fills the comparisons from the prediction and the measurement. Measured components are
    /// differences of process memory between phases: the context, then what loading the
    /// weights, allocating the KV cache, and everything after (arena, workspace, cuBLAS's own
    /// allocations, module images) added.
    pub fn compare(&mut self) {
        if self.mode == "full" {
            return self.compare_training();
        }
        let p = &self.predicted;
        let m = self.measured.as_ref();
        self.memory = memory_rows(p, m.map(|m| &m.phases[..]), ("kv cache", p.kv_cache_bytes, "kv cache"));
        self.speed = vec![
            Comparison::new("prefill tokens/s", p.prefill_tokens_per_s, m.map(Measured::prefill_tokens_per_s)),
            Comparison::new("decode tokens/s", p.decode_tokens_per_s, m.map(Measured::decode_tokens_per_s)),
            Comparison::new("decode host ms/step", p.decode_host_ms_per_step, m.map(|m| m.decode_host_ms_per_step)),
        ];
    }

    /// A training step's comparisons: the context, the weights, the gradients and optimizer
    /// states, and everything after (saved activations, scratch, workspace, cuBLAS).
    fn compare_training(&mut self) {
        let p = &self.predicted;
        let m = self.measured_training.as_ref();
        let states =
            ("gradients + optimizer states", p.gradients_bytes + p.optimizer_bytes, "gradients and optimizer states");
        self.memory = memory_rows(p, m.map(|m| &m.phases[..]), states);
        self.speed = vec![
            Comparison::new("train tokens/s", None, m.map(TrainMeasured::tokens_per_s)),
            Comparison::new("step ms (forward, backward, AdamW)", None, m.map(TrainMeasured::step_ms)),
        ];
    }

    /// The table `validate` prints.
    pub fn listing(&self) -> Listing {
        let gib = |v: Option<f64>| v.map_or("-".to_string(), |b| format!("{:.3} GiB", b / (1u64 << 30) as f64));
        let rate = |v: Option<f64>| v.map_or("-".to_string(), |r| format!("{r:.1}"));
        let err = |e: Option<f64>| e.map_or("-".to_string(), |e| format!("{:+.1}%", 100.0 * e));
        let mut rows: Vec<Vec<String>> =
            self.memory.iter().map(|c| vec![c.name.clone(), gib(c.predicted), gib(c.measured), err(c.error)]).collect();
        rows.extend(self.speed.iter().map(|c| vec![c.name.clone(), rate(c.predicted), rate(c.measured), err(c.error)]));
        for k in &self.kernel_checks {
            let errors: Vec<String> = k.errors.iter().map(|e| format!("{} {:.2}%", e.name, 100.0 * e.error)).collect();
            rows.push(vec![
                format!("kernel check ({})", k.check),
                format!("≤ {:.1}%", 100.0 * k.tolerance),
                if k.errors.len() > 3 { format!("worst {:.2}%", 100.0 * k.worst()) } else { errors.join(", ") },
                if k.passed { "pass".into() } else { "FAIL".into() },
            ]);
        }
        let mut title = format!(
            "validate {} · {} · context {} · batch {} · on {}",
            self.model, self.weights, self.context, self.batch, self.device.name
        );
        if let Some(m) = &self.measured {
            title += &format!(
                " · prompt {} + {} decode steps · memory: {}",
                m.prompt_tokens, m.decode_steps, m.memory_method
            );
        }
        if let Some(m) = &self.measured_training {
            title += &format!(
                " · one step of {}×{} tokens, loss {:.4} → {:.4} · memory: {}",
                m.batch, m.seq, m.loss_before, m.loss_after, m.memory_method
            );
        }
        if let Some(note) = &self.note {
            title += &format!("\n{note}");
        }
        Listing {
            title,
            headers: vec!["", "predicted", "measured", "error"],
            rows,
            json: serde_json::to_value(self).unwrap_or_default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::run::PhaseMemory;
    use super::*;

    fn record(measured: Option<Measured>) -> Record {
        let mut r = Record {
            schema: "headroom-validate/1",
            model: "llama-2-7b".into(),
            model_input: "llama-2-7b".into(),
            mode: "infer",
            weights: "bf16".into(),
            context: 4096,
            batch: 1,
            device: DeviceSummary { name: "NVIDIA H200".into(), ..Default::default() },
            fits: true,
            note: None,
            predicted: Predicted {
                cuda_context_bytes: 500,
                weights_bytes: 10_000,
                kv_cache_bytes: 2_000,
                activations_bytes: 300,
                workspace_bytes: 100,
                total_bytes: 12_900,
                prefill_tokens_per_s: Some(1000.0),
                decode_tokens_per_s: Some(40.0),
                decode_host_ms_per_step: Some(1.8),
                ..Predicted::default()
            },
            measured,
            measured_training: None,
            memory: vec![],
            speed: vec![],
            kernel_checks: vec![],
        };
        r.compare();
        r
    }

    fn measured() -> Measured {
        let phase = |phase, b| PhaseMemory { phase, process_bytes: Some(b) };
        Measured {
            memory_method: "test".into(),
            phases: vec![
                phase("context", 400),
                phase("weights", 10_400),
                phase("kv cache", 12_400),
                phase("arena", 12_800),
                phase("prefill", 12_900),
                phase("decode", 12_900),
            ],
            batch: 1,
            prompt_tokens: 4032,
            decode_steps: 64,
            prefill_ms: 4032.0,
            decode_ms: 2000.0,
            decode_host_ms_per_step: 1.5,
            launch_bound: false,
            logits_finite: true,
        }
    }

    #[test]
    fn components_are_phase_differences_with_signed_errors() {
        let r = record(Some(measured()));
        let by = |n: &str| r.memory.iter().find(|c| c.name == n).unwrap().clone();
        assert_eq!(by("cuda context").error, Some(0.25));
        assert_eq!(by("weights").measured, Some(10_000.0));
        assert_eq!(by("kv cache").error, Some(0.0));
        assert_eq!(by("activations + workspace").measured, Some(500.0));
        assert_eq!(by("total (peak)").error, Some(0.0));
        let decode = r.speed.iter().find(|c| c.name == "decode tokens/s").unwrap();
        assert_eq!(decode.measured, Some(32.0));
        assert!((decode.error.unwrap() - 0.25).abs() < 1e-12);
        let table = crate::report::table::listing(&r.listing());
        assert!(table.contains("+25.0%") && table.contains("prompt 4032 + 64 decode steps"), "{table}");
    }

    #[test]
    fn without_a_measurement_only_predictions_show() {
        let mut r = record(None);
        r.note = Some("does not fit".into());
        r.compare();
        assert!(r.memory.iter().all(|c| c.measured.is_none() && c.error.is_none()));
        assert!(crate::report::table::listing(&r.listing()).contains("does not fit"));
    }
}
