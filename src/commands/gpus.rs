//! `headroom gpus`: the built-in GPU catalog.

use crate::catalog::gpus::GpuCatalog;
use crate::report::Listing;
use serde_json::json;

pub fn listing() -> Listing {
    let mut rows = Vec::new();
    let mut items = Vec::new();
    for g in GpuCatalog::builtin().iter() {
        let bf16 = g.tflops.bf16.or(g.tflops.fp16);
        let price = g.price.as_ref().map(|p| match (p.hourly_usd, p.purchase_usd) {
            (Some(h), _) => format!("${h:.2}/h"),
            (None, Some(buy)) => format!("${buy}"),
            (None, None) => String::new(),
        });
        let name = match g.aliases.as_slice() {
            [] => g.name.clone(),
            aliases => format!("{} (also --gpu {})", g.name, aliases.join(", ")),
        };
        rows.push(vec![
            g.id.clone(),
            name,
            format!("{:.1}", g.memory_bytes() as f64 / (1u64 << 30) as f64),
            format!("{:.2}", g.usable_bytes() as f64 / (1u64 << 30) as f64),
            format!("{:.0}", g.bandwidth_gb_s),
            bf16.map_or("—".into(), |t| format!("{t:.0}")),
            g.interconnect
                .as_ref()
                .map_or("—".into(), |i| format!("{:?} {:.0} GB/s", i.kind, i.bandwidth_gb_s).to_lowercase()),
            price.unwrap_or_default(),
        ]);
        items.push(json!({
            "id": g.id, "name": g.name, "memory_bytes": g.memory_bytes(), "memory_note": g.memory_note,
            "usable_bytes": g.usable_bytes(), "reserved_note": g.reserved_note,
            "gpu_working_set_note": g.gpu_working_set_note, "aliases": g.aliases,
            "bandwidth_gb_s": g.bandwidth_gb_s, "copy_gb_s": g.copy_gb_s, "copy_note": g.copy_note,
            "bf16_tflops": bf16,
            "tdp_w": g.tdp_w, "hourly_usd": g.price.as_ref().and_then(|p| p.hourly_usd),
            "purchase_usd": g.price.as_ref().and_then(|p| p.purchase_usd), "sources": g.sources,
        }));
    }
    Listing {
        title:
            "built-in GPUs (memory: the driver's total; usable: what CUDA can allocate, less the driver's reservation; on Apple silicon, the unified memory macOS lets the GPU wire; on Strix Halo, Linux's default GTT limit)"
                .into(),
        headers: vec!["id", "name", "memory GiB", "usable GiB", "GB/s", "bf16 TFLOPS", "interconnect", "price"],
        rows,
        json: json!(items),
    }
}

/// `headroom gpus --local`: the GPUs NVML sees, each matched to its catalog entry.
pub fn local() -> Result<Listing, crate::gpu::GpuError> {
    let devices = crate::gpu::nvml::devices()?;
    let gib = |b: u64| format!("{:.1}", b as f64 / (1u64 << 30) as f64);
    let rows = devices
        .iter()
        .map(|d| {
            vec![
                d.index.to_string(),
                d.name.clone(),
                d.catalog_entry().map_or("—".into(), |g| g.id.clone()),
                gib(d.memory_total_bytes),
                format!("{:.2}", d.memory_reserved_bytes as f64 / (1u64 << 30) as f64),
                gib(d.memory_used_bytes),
                format!("{}.{}", d.compute_capability.0, d.compute_capability.1),
                d.power_w.map_or("—".into(), |w| format!("{w:.0}")),
                d.temperature_c.map_or("—".into(), |t| t.to_string()),
                d.processes.len().to_string(),
            ]
        })
        .collect();
    Ok(Listing {
        title: format!(
            "local GPUs (driver {}, CUDA {})",
            devices.first().map_or("", |d| d.driver_version.as_str()),
            devices.first().map_or("", |d| d.cuda_version.as_str())
        ),
        headers: vec![
            "#",
            "name",
            "catalog",
            "memory GiB",
            "reserved GiB",
            "used GiB",
            "cc",
            "power W",
            "°C",
            "processes",
        ],
        rows,
        json: serde_json::to_value(&devices).unwrap_or_default(),
    })
}
