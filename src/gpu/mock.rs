//! A scripted [`Gpu`] for tests: each workload's check result and per-launch time come from a
//! table, so the scheduler, statistics and reports run without a device.

use super::{Check, DeviceInfo, Gpu, GpuError, Workload};

/// What the mock does for one workload (matched by name).
#[derive(Clone, Debug)]
pub enum Script {
    /// Passes its check; each launch takes `ms_per_launch` (+ the jitter sequence, cycled).
    Ok { ms_per_launch: f64, jitter_ms: Vec<f64> },
    /// Fails its correctness check with this error.
    WrongResult { max_rel_error: f64 },
    /// `prepare` runs out of memory.
    OutOfMemory,
    /// `prepare` finds the device cannot run it (`what` as in [`GpuError::Unsupported`]).
    Unsupported { what: String },
}

/// The mock device.
pub struct MockGpu {
    info: DeviceInfo,
    scripts: Vec<(String, Script)>,
    current: Option<Script>,
    calls: usize,
    /// Every call in order (`prepare NAME`, `time N`, `release`), for assertions.
    pub log: Vec<String>,
}

impl MockGpu {
    pub fn new(info: DeviceInfo, scripts: Vec<(String, Script)>) -> Self {
        MockGpu { info, scripts, current: None, calls: 0, log: Vec::new() }
    }
}

impl Gpu for MockGpu {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn prepare(&mut self, w: &Workload) -> Result<Check, GpuError> {
        let name = w.name();
        self.log.push(format!("prepare {name}"));
        let script = self.scripts.iter().find(|(n, _)| *n == name).map(|(_, s)| s.clone());
        let script = script.unwrap_or(Script::Ok { ms_per_launch: 1.0, jitter_ms: vec![] });
        let check = |e: f64| Check { reference: "mock".into(), max_rel_error: e, tolerance: 1e-2, passed: e <= 1e-2 };
        match &script {
            Script::OutOfMemory => {
                Err(GpuError::OutOfMemory { what: name, requested_bytes: w.footprint_bytes(), free_bytes: 0 })
            }
            Script::Unsupported { what } => Err(GpuError::Unsupported(what.clone())),
            Script::WrongResult { max_rel_error } => Ok(check(*max_rel_error)),
            Script::Ok { .. } => {
                self.current = Some(script);
                self.calls = 0;
                Ok(check(0.0))
            }
        }
    }

    fn time(&mut self, launches: u32) -> Result<f64, GpuError> {
        self.log.push(format!("time {launches}"));
        let Some(Script::Ok { ms_per_launch, jitter_ms }) = &self.current else {
            return Err(GpuError::Unsupported("time before prepare".into()));
        };
        let j = if jitter_ms.is_empty() { 0.0 } else { jitter_ms[self.calls % jitter_ms.len()] };
        self.calls += 1;
        Ok((ms_per_launch + j) * launches as f64)
    }

    fn release(&mut self) {
        self.log.push("release".into());
        self.current = None;
    }
}

/// A scripted [`MemorySampler`](super::memory::MemorySampler): returns its samples in order
/// (`None` stands for a failed NVML read), then repeats the last one.
pub struct ScriptedSampler {
    samples: Vec<Option<Vec<super::memory::DeviceMemory>>>,
    next: usize,
}

impl ScriptedSampler {
    pub fn new(samples: Vec<Option<Vec<super::memory::DeviceMemory>>>) -> Self {
        ScriptedSampler { samples, next: 0 }
    }
}

impl super::memory::MemorySampler for ScriptedSampler {
    fn sample(&mut self) -> Result<Vec<super::memory::DeviceMemory>, GpuError> {
        let i = self.next.min(self.samples.len().saturating_sub(1));
        self.next += 1;
        match self.samples.get(i) {
            Some(Some(s)) => Ok(s.clone()),
            _ => Err(GpuError::Nvml("scripted failure".into())),
        }
    }
}

/// A [`ProcessTree`](super::memory::ProcessTree) with fixed members besides the root.
pub struct FixedTree(pub Vec<u32>);

impl super::memory::ProcessTree for FixedTree {
    fn members(&mut self, root: u32) -> std::collections::HashSet<u32> {
        self.0.iter().copied().chain([root]).collect()
    }
}
