//! The host the GPUs sit in (sysinfo): CPU, memory and OS, recorded with every benchmark profile.

use serde::Serialize;

/// The host machine.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostInfo {
    pub hostname: String,
    pub os: String,
    pub cpu: String,
    pub cpu_cores: usize,
    pub memory_total_bytes: u64,
}

/// Reads the host; fields sysinfo cannot read stay empty.
pub fn host() -> HostInfo {
    let mut info = HostInfo {
        hostname: sysinfo::System::host_name().unwrap_or_default(),
        os: sysinfo::System::long_os_version().unwrap_or_default(),
        cpu_cores: sysinfo::System::physical_core_count().unwrap_or_default(),
        ..Default::default()
    };
    if let Ok(mut sys) = sysinfo::System::new() {
        sys.refresh_memory();
        sys.refresh_cpu_all();
        info.memory_total_bytes = sys.total_memory();
        info.cpu = sys.cpus().first().map(|c| c.brand().to_string()).unwrap_or_default();
    }
    info
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_this_host_without_panicking() {
        let h = super::host();
        assert!(h.memory_total_bytes > 0);
    }
}
