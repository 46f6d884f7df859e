//! Memory sampling for `headroom watch`: what every GPU has in use and which processes hold it
//! (NVML `nvmlDeviceGetMemoryInfo` and `nvmlDeviceGetComputeRunningProcesses`), and which
//! processes descend from the watched command (sysinfo parent pids).
//!
//! Two seams, each with a real implementation and a scripted one in [`super::mock`]:
//! [`MemorySampler`] (NVML) and [`ProcessTree`] (the host's process table).

use super::{GpuError, GpuProcess};
use nvml_wrapper::Nvml;
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// One GPU's memory at one instant.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct DeviceMemory {
    pub index: u32,
    /// Bytes in use on the device, by every process and the driver.
    pub used_bytes: u64,
    /// Bytes the device has.
    pub total_bytes: u64,
    /// Compute processes and the bytes each holds on this device.
    pub processes: Vec<GpuProcess>,
}

/// Reads every GPU's memory now.
pub trait MemorySampler {
    fn sample(&mut self) -> Result<Vec<DeviceMemory>, GpuError>;
}

/// Finds the processes descending from a root process.
pub trait ProcessTree {
    /// `root` and every descendant alive now.
    fn members(&mut self, root: u32) -> HashSet<u32>;
}

/// [`MemorySampler`] over NVML.
pub struct NvmlSampler {
    nvml: Nvml,
    count: u32,
}

impl NvmlSampler {
    /// Opens NVML; [`GpuError::NvmlNotFound`] without the library, [`GpuError::NoDevice`]
    /// when it sees no GPU.
    pub fn open() -> Result<Self, GpuError> {
        let nvml = super::nvml::open()?;
        let count = nvml.device_count().map_err(|e| GpuError::Nvml(e.to_string()))?;
        if count == 0 {
            return Err(GpuError::NoDevice);
        }
        Ok(NvmlSampler { nvml, count })
    }
}

impl MemorySampler for NvmlSampler {
    fn sample(&mut self) -> Result<Vec<DeviceMemory>, GpuError> {
        (0..self.count).map(|i| device_memory(&self.nvml, i)).collect()
    }
}

fn device_memory(nvml: &Nvml, index: u32) -> Result<DeviceMemory, GpuError> {
    let nvml_err = |e: nvml_wrapper::error::NvmlError| GpuError::Nvml(format!("GPU {index}: {e}"));
    let d = nvml.device_by_index(index).map_err(nvml_err)?;
    let mem = d.memory_info().map_err(nvml_err)?;
    let processes = super::nvml::compute_processes(&d);
    Ok(DeviceMemory { index, used_bytes: mem.used, total_bytes: mem.total, processes })
}

/// [`ProcessTree`] over sysinfo: refreshes the process table (pids and parents only, no
/// threads, no memory or CPU figures) at each call.
pub struct SysinfoTree {
    sys: Option<sysinfo::System>,
}

impl SysinfoTree {
    /// Without a readable process table only the root itself is a member.
    pub fn new() -> Self {
        SysinfoTree { sys: sysinfo::System::new().ok() }
    }
}

impl Default for SysinfoTree {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessTree for SysinfoTree {
    fn members(&mut self, root: u32) -> HashSet<u32> {
        let Some(sys) = self.sys.as_mut() else { return HashSet::from([root]) };
        let kind = sysinfo::ProcessRefreshKind::nothing().without_tasks();
        sys.refresh_processes_specifics(sysinfo::ProcessesToUpdate::All, true, kind);
        let pairs = sys.processes().iter().map(|(pid, p)| (pid.as_u32(), p.parent().map(|q| q.as_u32())));
        descendants(root, pairs)
    }
}

/// `root` and every process whose chain of parents leads to it.
pub fn descendants(root: u32, parents: impl IntoIterator<Item = (u32, Option<u32>)>) -> HashSet<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for (pid, parent) in parents {
        if let Some(parent) = parent.filter(|&p| p != pid) {
            children.entry(parent).or_default().push(pid);
        }
    }
    let mut members = HashSet::from([root]);
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map_or(&[][..], Vec::as_slice) {
            if members.insert(child) {
                stack.push(child);
            }
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descendants_follow_parents_through_generations_and_skip_strangers() {
        let table = [(10, Some(1)), (11, Some(10)), (12, Some(11)), (13, Some(10)), (20, Some(1)), (1, None)];
        let got = descendants(10, table);
        assert_eq!(got, HashSet::from([10, 11, 12, 13]));
    }

    #[test]
    fn a_root_missing_from_the_table_is_still_a_member() {
        assert_eq!(descendants(7, []), HashSet::from([7]));
    }

    #[test]
    fn this_process_is_in_its_own_tree() {
        let me = std::process::id();
        assert!(SysinfoTree::new().members(me).contains(&me));
    }
}
