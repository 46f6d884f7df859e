//! The host RAM's read bandwidth: what llama.cpp's CPU matmuls stream host-resident weights from
//! (`--n-cpu-moe`, `--n-gpu-layers`). `headroom bench` measures it beside the GPU suite, and
//! `plan --calibration PROFILE` plans those weights at it (`calibration_from_bench`).
//!
//! Every thread sums its own slice of one buffer far larger than the CPU's caches, with eight
//! independent accumulators so the loads, not the adds, set the pace; one warm-up pass, then
//! timed repeats of all threads together (the median is the figure). A read-only kernel is the
//! right yardstick: llama.cpp's CPU decode reaches 84–91% of one (llama.cpp #26484, STREAM's
//! read kernel beside decode on one board), while copy and triad kernels, which also write, can
//! understate it.

use super::stats::Summary;
use serde::Serialize;
use std::time::Instant;

/// The measurement.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HostMemoryResult {
    /// Bytes read per second, all threads together, at the median repeat (GB/s, 1e9 B/s).
    pub read_gb_s: f64,
    pub threads: usize,
    pub buffer_bytes: u64,
    /// Every timed repeat.
    pub summary: Summary,
}

/// Reads a buffer of `buffer_bytes` with `threads` threads, `repeats` times after a warm-up.
pub fn measure_read(buffer_bytes: u64, threads: usize, repeats: usize) -> HostMemoryResult {
    let threads = threads.max(1);
    let words = ((buffer_bytes / 8) as usize).max(8 * threads);
    // Distinct non-zero values, written by the threads that will read them (first touch).
    let mut buffer = vec![0u64; words];
    let slice = words.div_ceil(threads);
    std::thread::scope(|s| {
        for (t, chunk) in buffer.chunks_mut(slice).enumerate() {
            s.spawn(move || chunk.iter_mut().enumerate().for_each(|(i, w)| *w = (t * slice + i) as u64 | 1));
        }
    });
    let pass = || {
        let start = Instant::now();
        let total: u64 = std::thread::scope(|s| {
            let handles: Vec<_> = buffer.chunks(slice).map(|chunk| s.spawn(move || sum(chunk))).collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).fold(0, u64::wrapping_add)
        });
        std::hint::black_box(total);
        start.elapsed().as_secs_f64() * 1e3
    };
    pass();
    let samples: Vec<f64> = (0..repeats.max(1)).map(|_| pass()).collect();
    let summary = Summary::of(&samples).expect("at least one repeat");
    let bytes = (words * 8) as u64;
    HostMemoryResult {
        read_gb_s: bytes as f64 / (summary.median_ms / 1e3) / 1e9,
        threads,
        buffer_bytes: bytes,
        summary,
    }
}

/// The buffer `bench` reads: a quarter of the host's RAM, at most 2 GiB (1 GiB with `--quick`)
/// and at least 256 MiB, so no cache holds it.
pub fn buffer_bytes(memory_total_bytes: u64, quick: bool) -> u64 {
    let cap = if quick { 1u64 << 30 } else { 2u64 << 30 };
    (memory_total_bytes / 4).clamp(256 << 20, cap)
}

/// Sums a slice with eight independent accumulators.
fn sum(words: &[u64]) -> u64 {
    let mut acc = [0u64; 8];
    let mut blocks = words.chunks_exact(8);
    for block in &mut blocks {
        for (a, w) in acc.iter_mut().zip(block) {
            *a = a.wrapping_add(*w);
        }
    }
    let rest = blocks.remainder().iter().fold(0u64, |a, w| a.wrapping_add(*w));
    acc.iter().fold(rest, |a, b| a.wrapping_add(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel sums every word (the rest after the blocks of eight too), and a threaded
    /// measurement reports its shape and a finite rate.
    #[test]
    fn sums_every_word_and_reports_a_rate() {
        let words: Vec<u64> = (1..=1003).collect();
        assert_eq!(sum(&words), 1003 * 1004 / 2);
        let r = measure_read(4 << 20, 3, 3);
        assert_eq!((r.threads, r.buffer_bytes, r.summary.samples_ms.len()), (3, 4 << 20, 3));
        assert!(r.read_gb_s.is_finite() && r.read_gb_s > 0.0, "{r:?}");
    }

    #[test]
    fn buffer_is_a_quarter_of_ram_within_bounds() {
        assert_eq!(buffer_bytes(64 << 30, false), 2 << 30);
        assert_eq!(buffer_bytes(64 << 30, true), 1 << 30);
        assert_eq!(buffer_bytes(2 << 30, false), 512 << 20);
        assert_eq!(buffer_bytes(512 << 20, false), 256 << 20);
    }
}
