//! Validates every entry of the built-in GPU catalog (`data/gpus.toml`) through the public API:
//! the file parses, ids are unique, numbers are positive, dense peaks are ordered the way real
//! hardware orders them (which catches sparse figures and typos), and the ids the planner and the
//! docs rely on exist.

use std::collections::HashSet;

use headroom::catalog::gpus::{parse_gpu_arg, Arch, GpuArgError, GpuCatalog, GpuSpec, LinkKind, Vendor};

const REQUIRED_IDS: [&str; 34] = [
    "t4",
    "a10",
    "a10g",
    "a40",
    "l4",
    "l40s",
    "a100-40gb",
    "a100-80gb",
    "a100-80gb-pcie",
    "h100-pcie",
    "h100-sxm",
    "h100-nvl",
    "h200",
    "gh200",
    "b200",
    "v100-32gb",
    "rtx-3060",
    "rtx-3090",
    "rtx-3090-ti",
    "rtx-4060-ti-16gb",
    "rtx-4070-ti-super",
    "rtx-4080-super",
    "rtx-4090",
    "rtx-5090",
    "rtx-a6000",
    "rtx-6000-ada",
    "mi210",
    "mi250x",
    "mi300x",
    "gaudi2",
    "gaudi3",
    "m2-ultra",
    "m3-max",
    "m4-max",
];

fn all() -> Vec<&'static GpuSpec> {
    GpuCatalog::builtin().iter().collect()
}

#[test]
fn builtin_catalog_parses_with_every_required_id() {
    let gpus = all();
    assert!(gpus.len() >= 34, "only {} entries", gpus.len());
    for id in REQUIRED_IDS {
        assert!(GpuCatalog::builtin().get(id).is_ok(), "missing {id}");
    }
}

#[test]
fn ids_are_unique_and_lowercase() {
    let mut seen = HashSet::new();
    for gpu in all() {
        assert_eq!(gpu.id, gpu.id.to_ascii_lowercase(), "{}", gpu.id);
        assert!(seen.insert(gpu.id.clone()), "duplicate {}", gpu.id);
    }
}

#[test]
fn every_number_is_positive_and_plausible() {
    for gpu in all() {
        let gib = gpu.memory_mib as f64 / 1024.0;
        // Unified memory goes up to the 512 GiB of an M3 Ultra; accelerator memory to 256 GiB.
        let most = if gpu.unified_memory { 512.0 } else { 256.0 };
        assert!((8.0..=most).contains(&gib), "{}: {gib} GiB", gpu.id);
        assert!((100.0..=10_000.0).contains(&gpu.bandwidth_gb_s), "{}", gpu.id);
        for (key, tflops) in gpu.tflops.entries() {
            assert!(tflops > 0.0 && tflops < 20_000.0, "{}: {key} = {tflops}", gpu.id);
        }
        if let Some(link) = &gpu.interconnect {
            assert!(link.bandwidth_gb_s > 0.0, "{}", gpu.id);
        }
        assert!(gpu.tdp_w.is_none_or(|w| (20..=1500).contains(&w)), "{}", gpu.id);
    }
}

#[test]
fn dense_peaks_are_ordered_like_real_hardware() {
    for gpu in all() {
        let t = &gpu.tflops;
        let le = |small: Option<f64>, big: Option<f64>, what: &str| {
            if let (Some(s), Some(b)) = (small, big) {
                assert!(s <= b * 1.001, "{}: {what} ({s} > {b})", gpu.id);
            }
        };
        le(t.tf32, t.bf16, "tf32 <= bf16");
        le(t.bf16, t.fp8, "bf16 <= fp8");
        le(t.fp8, t.fp4, "fp8 <= fp4");
        le(t.fp32, t.bf16, "vector fp32 <= tensor bf16");
        // A sparse figure typed into a dense field shows up as a doubled ratio. 2% slack covers
        // vendor rounding (L40S datasheet: 362.05 BF16 and 733 FP8).
        let twice = |v: Option<f64>| v.map(|v| 2.0 * 1.02 * v);
        le(t.fp8, twice(t.bf16), "fp8 <= 2 x bf16");
        le(t.fp4, twice(t.fp8), "fp4 <= 2 x fp8");
        le(t.int8, twice(twice(t.bf16)), "int8 <= 4 x bf16");
        if let (Some(f16), Some(b16)) = (t.fp16, t.bf16) {
            assert!((f16 - b16).abs() <= 0.01 * b16, "{}: fp16 {f16} vs bf16 {b16}", gpu.id);
        }
    }
}

#[test]
fn vendor_specific_fields_match_the_vendor() {
    for gpu in all() {
        assert_eq!(gpu.arch.vendor(), gpu.vendor, "{}", gpu.id);
        let nvidia = gpu.vendor == Vendor::Nvidia;
        assert_eq!(gpu.compute_capability.is_some(), nvidia, "{}", gpu.id);
        let apu = gpu.vendor == Vendor::Apple || gpu.arch == Arch::Rdna35;
        assert_eq!(gpu.unified_memory, apu, "{}", gpu.id);
    }
}

#[test]
fn pcie_links_do_not_exceed_an_x16_slot() {
    for gpu in all() {
        let Some(link) = &gpu.interconnect else {
            continue;
        };
        let x16 = match link.kind {
            LinkKind::Pcie3 => 15.75,
            LinkKind::Pcie4 => 31.5,
            LinkKind::Pcie5 => 63.0,
            _ => continue,
        };
        assert!(link.bandwidth_gb_s <= x16, "{}", gpu.id);
    }
}

#[test]
fn every_entry_names_its_sources() {
    for gpu in all() {
        assert!(!gpu.sources.is_empty(), "{}", gpu.id);
        assert!(!gpu.memory_note.trim().is_empty(), "{}", gpu.id);
        if let Some(price) = &gpu.price {
            assert!(!price.source.trim().is_empty(), "{}", gpu.id);
            assert!(price.purchase_usd.is_some() || price.hourly_usd.is_some(), "{}", gpu.id);
        }
    }
}

#[test]
fn known_driver_totals_are_kept() {
    let cat = GpuCatalog::builtin();
    let h100 = cat.get("h100-sxm").unwrap();
    assert_eq!(h100.memory_mib, 81_559);
    assert_eq!(h100.memory_bytes(), 81_559 * 1024 * 1024);
    assert_eq!(cat.get("h200").unwrap().memory_mib, 143_771);
    assert_eq!(h100.peak_flops("bf16"), Some(989.4e12));
    assert_eq!(h100.bandwidth_bytes_per_s(), 3.35e12);
}

#[test]
fn gpu_arguments_parse() {
    let (gpu, n) = parse_gpu_arg("rtx-4090:2").unwrap();
    assert_eq!((gpu.id.as_str(), n), ("rtx-4090", 2));
    let (gpu, n) = parse_gpu_arg("a100-80gb").unwrap();
    assert_eq!((gpu.id.as_str(), n), ("a100-80gb", 1));
    assert_eq!(parse_gpu_arg("H100-SXM:8").unwrap().1, 8);
    for bad in ["rtx-4090:0", "rtx-4090:x", "rtx-4090:", "rtx-4090:1025", "rtx-4090:-1"] {
        assert!(matches!(parse_gpu_arg(bad), Err(GpuArgError::InvalidCount { .. })), "{bad}");
    }
    assert_eq!(parse_gpu_arg(" rtx-4090 : 4 ").unwrap().1, 4);
    assert_eq!(parse_gpu_arg("b200:1024").unwrap().1, 1024);
    assert_eq!(parse_gpu_arg("").unwrap_err(), GpuArgError::Empty);
    assert_eq!(parse_gpu_arg("   ").unwrap_err(), GpuArgError::Empty);
    assert!(matches!(parse_gpu_arg(":2"), Err(GpuArgError::MissingId { .. })));
    assert!(matches!(parse_gpu_arg("nope:2"), Err(GpuArgError::UnknownGpu(_))));
    assert_eq!(
        parse_gpu_arg("rtx-4090:0").unwrap_err().to_string(),
        "invalid GPU count '0' in 'rtx-4090:0'; expected a whole number from 1 to 1024"
    );
}

#[test]
fn unknown_gpu_message_suggests_and_points_to_the_list() {
    let msg = parse_gpu_arg("a100:4").unwrap_err().to_string();
    assert!(msg.starts_with("unknown GPU 'a100'; did you mean "), "{msg}");
    assert!(msg.contains("a100-40gb") && msg.contains("a100-80gb"), "{msg}");
    assert!(msg.ends_with("? (headroom gpus lists all)"), "{msg}");
    let none = GpuCatalog::builtin().get("zzzz").unwrap_err();
    assert_eq!(none.to_string(), "unknown GPU 'zzzz' (headroom gpus lists all)");
    let typo = GpuCatalog::builtin().get("rtx-4900").unwrap_err();
    assert!(typo.suggestions.contains(&"rtx-4090".to_string()), "{typo}");
}

/// CUDA's total is the driver's less its reservation: the H200 entry reproduces what our own H200
/// run measured (driver 580.159.04: torch total_memory 150,109,880,320 B; the reservation is not
/// a whole number of MiB, so the catalog's MiB lands within one MiB), and every NVIDIA card
/// reserves a plausible 0.2-4.5% of its memory (3.4% on the 12 GB RTX 3060; GB10's 4.9% includes
/// the kernel's share of its unified memory). On Apple silicon
/// macOS keeps 1/6 to 1/3 of the unified memory from the GPU by default (2/3 of 16 and 32 GiB
/// Macs, 3/4 above on macOS 13-14, 84% of 128 GiB on macOS 26); on AMD's Strix Halo Linux's
/// default GTT limit is half the RAM the kernel sees (62.82 of 128 GiB).
#[test]
fn usable_memory_is_the_total_less_the_driver_reservation() {
    let h200 = GpuCatalog::builtin().get("h200").unwrap();
    assert!(h200.usable_bytes().abs_diff(150_109_880_320) < 1 << 20, "{}", h200.usable_bytes());
    for g in all() {
        let share = 1.0 - g.usable_bytes() as f64 / g.memory_bytes() as f64;
        match g.vendor {
            // GB10 (DGX Spark) shares its LPDDR5X with the OS: CUDA sees 121.69 of 128 GiB.
            Vendor::Nvidia if g.id == "gb10" => assert!((0.045..0.055).contains(&share), "gb10 keeps {share:.4}"),
            Vendor::Nvidia => assert!((0.002..0.045).contains(&share), "{}: reserves {share:.4}", g.id),
            Vendor::Apple => assert!((0.15..=1.0 / 3.0).contains(&share), "{}: keeps {share:.4}", g.id),
            Vendor::Amd if g.unified_memory => assert!((0.5..0.52).contains(&share), "{}: keeps {share:.4}", g.id),
            _ => assert_eq!(share, 0.0, "{}", g.id),
        }
    }
}

/// `--gpu` takes the names people use for a machine (`strix-halo`, `dgx-spark`) as aliases of
/// the catalog id, and no alias names two GPUs.
#[test]
fn aliases_resolve_to_their_gpu() {
    let catalog = GpuCatalog::builtin();
    assert_eq!(catalog.get("Strix-Halo").unwrap().id, "ryzen-ai-max-395");
    assert_eq!(catalog.get("dgx-spark").unwrap().id, "gb10");
    let mut seen = HashSet::new();
    for g in all() {
        for name in std::iter::once(&g.id).chain(&g.aliases) {
            assert!(seen.insert(name.clone()), "{name} names two GPUs");
        }
    }
    let typo = catalog.get("strix-hallo").unwrap_err();
    assert!(typo.suggestions.contains(&"strix-halo".to_string()), "{typo}");
}

/// A published copy rate is an achievement, so it stays below the peak: Strix Halo 212 of 256
/// GB/s (0.83), the RX 7900 XTX 643 of 960 (0.67).
#[test]
fn measured_copies_stay_below_the_peak() {
    for g in all() {
        if let Some(copy) = g.copy_gb_s {
            let share = copy / g.bandwidth_gb_s;
            assert!((0.5..0.95).contains(&share), "{}: copies {share:.3} of the peak", g.id);
        }
    }
}
