//! Device discovery through NVML (nvml-wrapper loads libnvidia-ml at run time). The unversioned
//! library name is tried first, then `libnvidia-ml.so.1` (what the driver alone installs).

use super::{DeviceInfo, GpuError, GpuProcess};
use nvml_wrapper::enum_wrappers::device::{Clock, TemperatureSensor};
use nvml_wrapper::enums::device::UsedGpuMemory;
use nvml_wrapper::Nvml;

/// Opens NVML, or says it is missing.
pub fn open() -> Result<Nvml, GpuError> {
    Nvml::init().or_else(|_| Nvml::builder().lib_path(std::ffi::OsStr::new("libnvidia-ml.so.1")).init()).map_err(|e| {
        match e {
            nvml_wrapper::error::NvmlError::LibloadingError(_) => GpuError::NvmlNotFound,
            other => GpuError::Nvml(other.to_string()),
        }
    })
}

/// Every local GPU as NVML describes it.
pub fn devices() -> Result<Vec<DeviceInfo>, GpuError> {
    let nvml = open()?;
    let n = nvml.device_count().map_err(|e| GpuError::Nvml(e.to_string()))?;
    if n == 0 {
        return Err(GpuError::NoDevice);
    }
    let driver_version = nvml.sys_driver_version().unwrap_or_default();
    let cuda_version =
        nvml.sys_cuda_driver_version().map(|v| format!("{}.{}", v / 1000, (v % 1000) / 10)).unwrap_or_default();
    (0..n).map(|i| describe(&nvml, i, &driver_version, &cuda_version)).collect()
}

fn describe(nvml: &Nvml, index: u32, driver: &str, cuda: &str) -> Result<DeviceInfo, GpuError> {
    let d = nvml.device_by_index(index).map_err(|e| GpuError::Nvml(e.to_string()))?;
    let mem = d.memory_info().map_err(|e| GpuError::Nvml(e.to_string()))?;
    let cc = d.cuda_compute_capability().map(|c| (c.major as u32, c.minor as u32)).unwrap_or((0, 0));
    let processes = compute_processes(&d);
    Ok(DeviceInfo {
        index,
        name: d.name().unwrap_or_default(),
        uuid: d.uuid().unwrap_or_default(),
        memory_total_bytes: mem.total,
        memory_used_bytes: mem.used,
        memory_free_bytes: mem.free,
        memory_reserved_bytes: mem.reserved,
        compute_capability: cc,
        sm_count: None,
        sm_clock_mhz: d.clock_info(Clock::SM).ok(),
        max_sm_clock_mhz: d.max_clock_info(Clock::SM).ok(),
        max_mem_clock_mhz: d.max_clock_info(Clock::Memory).ok(),
        power_w: d.power_usage().ok().map(|mw| mw as f64 / 1000.0),
        power_limit_w: d.enforced_power_limit().ok().map(|mw| mw as f64 / 1000.0),
        temperature_c: d.temperature(TemperatureSensor::Gpu).ok(),
        pcie_gen: d.current_pcie_link_gen().ok(),
        pcie_width: d.current_pcie_link_width().ok(),
        l2_cache_bytes: None,
        driver_version: driver.to_string(),
        cuda_version: cuda.to_string(),
        processes,
    })
}

/// The compute processes on a device with their memory. Some drivers refuse the list (vGPU, MIG
/// without instance access): then it is empty, and device memory alone is still worth having.
pub(crate) fn compute_processes(d: &nvml_wrapper::Device) -> Vec<GpuProcess> {
    d.running_compute_processes()
        .unwrap_or_default()
        .into_iter()
        .map(|p| GpuProcess {
            pid: p.pid,
            used_bytes: match p.used_gpu_memory {
                UsedGpuMemory::Used(b) => Some(b),
                UsedGpuMemory::Unavailable => None,
            },
        })
        .collect()
}
