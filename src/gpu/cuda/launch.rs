//! Launch configurations of the kernels `bench` (setup.rs) and `validate` (layer.rs) share, as
//! pure functions of the shapes so they are tested without a GPU: grids, block sizes, dynamic
//! shared memory and the shape limits each kernel is written for (each `kernels/*.cu` header
//! documents its indexing). The training step's kernels and GEMMs are in `train`.

pub(crate) mod train;

use super::GemmCall;
use crate::gpu::workload::{GemmDtype, PrefillKernel};
use crate::gpu::GpuError;
use crate::validate::backend::Attn;
use cudarc::driver::{CudaFunction, LaunchConfig};

/// Longest x the GEMV kernels stage in shared memory (kernels/gemv.cu `GEMV_MAX_K`): 64 KiB.
pub(crate) const GEMV_MAX_K: u64 = 32768;
/// Threads per GEMV block (kernels/gemv.cu `GEMV_THREADS`).
const GEMV_THREADS: u32 = 256;
/// Dynamic shared memory a launch may use without raising the function's limit.
pub(crate) const DEFAULT_SMEM_LIMIT: u32 = 48 << 10;
/// The 16-rows-per-warp prefill kernels' dynamic shared memory: K and V tiles, double-buffered,
/// 64 rows of 136 bf16 each (kernels/attention_prefill.cu `PF_SMEM_BYTES`).
pub(crate) const PREFILL_SMEM: u32 = 4 * 64 * 136 * 2;
/// `attn_prefill_w32_bf16`'s: Q (128 rows of 136 bf16), then K and V tiles, double-buffered
/// (`PW_SMEM_BYTES`): 102 KiB, so two blocks share an H100's 228 KiB (one fits an A100's 164 KiB;
/// sm_86 and sm_89 allow a block 99 KiB, and the limit cannot be raised that far there).
pub(crate) const PREFILL_W32_SMEM: u32 = 6 * 64 * 136 * 2;
/// Query rows per block of the prefill kernel `validate` runs, and keys per decode split
/// (`DEC_CHUNK`).
pub(crate) const PREFILL_ROWS: u64 = PrefillKernel::Br64.rows();
pub(crate) const DECODE_CHUNK: u64 = 256;
/// The head dimension both attention kernels are written for.
pub(crate) const ATTN_HEAD_DIM: u64 = 128;

pub(crate) fn cfg(grid: (u32, u32, u32), block: u32, smem: u32) -> LaunchConfig {
    LaunchConfig { grid_dim: grid, block_dim: (block, 1, 1), shared_mem_bytes: smem }
}

/// Blocks of a grid-stride kernel over `items` (one per thread): enough to cover them, at most
/// 16 per SM, at least one.
pub(crate) fn grid_stride(items: u64, block: u32, sm_count: u32) -> u32 {
    items.div_ceil(block as u64).clamp(1, sm_count as u64 * 16) as u32
}

/// Softmax scale of both attention kernels, in log2 units: log2(e) / √head_dim.
pub(crate) fn attn_scale_log2(head_dim: u64) -> f32 {
    std::f32::consts::LOG2_E / (head_dim as f32).sqrt()
}

/// GEMV over `rows` rows of `k` weights: 256 threads (8 warps × 2 rows per pass), three blocks per
/// SM grid-striding over rows, x (k bf16) in k·2 bytes of dynamic shared memory. k must be a
/// multiple of 128 (one 4-bit scale group) and at most [`GEMV_MAX_K`].
pub(crate) fn gemv(rows: u64, k: u64, sm_count: u32) -> Result<LaunchConfig, GpuError> {
    if k == 0 || k > GEMV_MAX_K || k % 128 != 0 || rows > i32::MAX as u64 {
        return Err(GpuError::Unsupported(format!(
            "gemv of {rows} rows with k = {k} (k ≤ {GEMV_MAX_K}, a multiple of 128)"
        )));
    }
    let blocks = rows.div_ceil(16).clamp(1, sm_count as u64 * 3) as u32;
    Ok(cfg((blocks, 1, 1), GEMV_THREADS, (2 * k) as u32))
}

/// Raises `f`'s dynamic shared-memory limit to `bytes` when a launch needs more than the default
/// 48 KiB (the device's opt-in maximum is at least 64 KiB from sm_70 on).
pub(crate) fn allow_smem(f: &CudaFunction, bytes: u32, kernel: &str) -> Result<(), GpuError> {
    if bytes <= DEFAULT_SMEM_LIMIT {
        return Ok(());
    }
    f.set_attribute(
        cudarc::driver::sys::CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
        bytes as i32,
    )
    .map_err(|e| GpuError::driver(format!("raising {kernel}'s shared-memory limit to {bytes} bytes"), e))
}

/// Prefill attention: one block per (`kernel.rows()` query rows, head, sequence); 32 threads per
/// 16 query rows with [`PREFILL_SMEM`] (`Br64`: 128, `Br128`: 256), or 128 threads (4 warps × 32
/// rows) with [`PREFILL_W32_SMEM`] (`W32`).
pub(crate) fn prefill(batch: u64, heads: u64, seq: u64, kernel: PrefillKernel) -> LaunchConfig {
    let (threads, smem) = match kernel {
        PrefillKernel::Br64 | PrefillKernel::Br128 => (2 * kernel.rows() as u32, PREFILL_SMEM),
        PrefillKernel::W32 => (128, PREFILL_W32_SMEM),
    };
    cfg(((seq / kernel.rows()) as u32, heads as u32, batch as u32), threads, smem)
}

/// The 4-bit GEMV over int8-quantized x (`gemv_int4_q8_bf16`): the grid of [`gemv`], with
/// k + k/4 bytes of shared memory (codes, then an f32 scale and an s32 sum per 32 values).
pub(crate) fn gemv_q8(rows: u64, k: u64, sm_count: u32) -> Result<LaunchConfig, GpuError> {
    let c = gemv(rows, k, sm_count)?;
    Ok(LaunchConfig { shared_mem_bytes: (k + k / 4) as u32, ..c })
}

/// The 4-bit GEMV with f32 x (`gemv_int4_v2_bf16`): the grid of [`gemv`], with k·4 bytes of x
/// and k/8 bytes of chunk sums in shared memory (k = 8,192: 33,792 bytes).
pub(crate) fn gemv_v2(rows: u64, k: u64, sm_count: u32) -> Result<LaunchConfig, GpuError> {
    let c = gemv(rows, k, sm_count)?;
    Ok(LaunchConfig { shared_mem_bytes: (4 * k + k / 8) as u32, ..c })
}

/// Decode attention over `ctx` keys: the split pass, grid (⌈ctx/256⌉, kv_heads, batch), and the
/// reduction, grid (heads, batch), both 128 threads (one per dimension); and the split count.
pub(crate) fn decode(batch: u64, heads: u64, kv_heads: u64, ctx: u64) -> (LaunchConfig, LaunchConfig, u64) {
    let splits = ctx.div_ceil(DECODE_CHUNK);
    let split = cfg((splits as u32, kv_heads as u32, batch as u32), 128, 0);
    let reduce = cfg((heads as u32, batch as u32, 1), 128, 0);
    (split, reduce, splits)
}

/// Keys per block of `attn_decode_v2_g{G}` (`DV2_CHUNK`: 4 warps × 8 steps of 16 keys).
pub(crate) const DECODE_V2_CHUNK: u64 = 512;
/// Its dynamic shared memory (`DV2_SMEM_BYTES`): per warp, 3 stages of 16 keys of K and of V,
/// 256 bytes a key row: 4 · 3 · 2 · 16 · 256 = 96 KiB, so two blocks share an H100's 228 KiB.
pub(crate) const DECODE_V2_SMEM: u32 = 4 * 3 * 2 * 16 * 256;

/// The decode candidate `attn_decode_v2_g{G}`, one launch: grid (⌈ctx/512⌉, kv_heads, batch), 128
/// threads, [`DECODE_V2_SMEM`]; and the split count. Its workspace: `ws_o` f32
/// `[batch][heads][splits][128]`, `ws_ml` f32 `[batch][heads][splits][2]` (as [`decode`]'s, with
/// these splits) and the arrival counters u32 `[batch][kv_heads]`, zero before the first launch
/// (each launch leaves them zero).
pub(crate) fn decode_v2(batch: u64, kv_heads: u64, ctx: u64) -> (LaunchConfig, u64) {
    let splits = ctx.div_ceil(DECODE_V2_CHUNK);
    (cfg((splits as u32, kv_heads as u32, batch as u32), 128, DECODE_V2_SMEM), splits)
}

/// `validate`'s decode partials in one workspace buffer: `ws_o` f32 `[batch][heads][splits][d]` at
/// offset 0, then `ws_ml` f32 `[batch][heads][splits][2]`, laid out for the most splits the cache
/// can need, ⌈cap/256⌉. Returns (offset of `ws_ml`, bytes of both) — the bytes are
/// `validate::layout::decode_workspace_bytes`. A call over `ctx ≤ cap` keys launches ⌈ctx/256⌉
/// splits and the kernels pack `[b][h][split]` with that count, so `ws_o` stays below `ws_ml`.
pub(crate) fn decode_workspace(batch: u64, heads: u64, head_dim: u64, cap: u64) -> (u64, u64) {
    let slots = batch.saturating_mul(heads).saturating_mul(cap.div_ceil(DECODE_CHUNK));
    let ml = slots.saturating_mul(head_dim).saturating_mul(4);
    (ml, ml.saturating_add(slots.saturating_mul(8)))
}

/// `y [tokens][rows] = x · Wᵀ` (bf16, row-major, row t of x at `t · x_stride`) as one
/// column-major cuBLAS GemmEx: row-major `W [rows][cols]` is column-major `cols × rows` (lda =
/// cols), row-major x is column-major `cols × tokens` (ldb = x_stride), row-major y is
/// column-major `rows × tokens` (ldc = rows); so `C = Aᵀ·B` with m = rows, n = tokens, k = cols.
pub(crate) fn linear_gemm(
    rows: u64,
    cols: u64,
    tokens: u64,
    x_stride: u64,
    (w, x, y): (u64, u64, u64),
) -> Result<GemmCall, GpuError> {
    let fits = |v: u64| v >= 1 && v <= i32::MAX as u64;
    if !(fits(rows) && fits(cols) && fits(tokens) && fits(x_stride)) || x_stride < cols {
        return Err(GpuError::Unsupported(format!(
            "a linear layer of {rows}×{cols} over {tokens} tokens with row stride {x_stride} (cuBLAS takes 32-bit sizes; the stride must be at least the width)"
        )));
    }
    let (m, n, k, ldb) = (rows as i32, tokens as i32, cols as i32, x_stride as i32);
    Ok(GemmCall {
        dtype: GemmDtype::Bf16,
        m,
        n,
        k,
        a: w,
        b: x,
        c: y,
        trans_a: true,
        trans_b: false,
        lda: k,
        ldb,
        ldc: m,
        accumulate: false,
    })
}

/// What both attention kernels are written for: head_dim 128, whole GQA groups, at most 65,535
/// sequences and (KV) heads (grid dimensions), `seq ≤ cap`.
pub(crate) fn check_attention(a: &Attn, what: &str) -> Result<(), GpuError> {
    let grid = 65_535;
    if a.head_dim != ATTN_HEAD_DIM
        || a.kv_heads == 0
        || a.heads % a.kv_heads != 0
        || a.batch > grid
        || a.heads > grid
        || a.seq > a.cap
    {
        return Err(GpuError::Unsupported(format!(
            "{what} attention with head_dim {}, {} heads over {} KV heads, batch {}, {} of {} cache rows (head_dim 128, whole groups, at most 65,535 sequences and heads)",
            a.head_dim, a.heads, a.kv_heads, a.batch, a.seq, a.cap
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_limits_match_validate() {
        use crate::validate::layout;
        assert_eq!(GEMV_MAX_K, layout::GEMV_MAX_COLS);
        assert_eq!(DECODE_CHUNK, layout::DECODE_CHUNK);
        assert_eq!(PREFILL_ROWS, layout::PREFILL_TILE);
        assert_eq!(ATTN_HEAD_DIM, layout::HEAD_DIM);
        assert_eq!(PREFILL_SMEM, 69_632);
        assert_eq!(PREFILL_W32_SMEM, 104_448);
    }

    #[test]
    fn grid_stride_covers_small_and_caps_large() {
        assert_eq!(grid_stride(0, 256, 132), 1);
        assert_eq!(grid_stride(257, 256, 132), 2);
        assert_eq!(grid_stride(1 << 30, 256, 132), 132 * 16);
    }

    /// Llama-2-7B's down projection (11008 → 4096) and the widest row the kernel takes.
    #[test]
    fn gemv_stages_x_in_dynamic_shared_memory() {
        let c = gemv(4096, 11008, 132).unwrap();
        assert_eq!((c.grid_dim, c.block_dim, c.shared_mem_bytes), ((256, 1, 1), (256, 1, 1), 22_016));
        assert_eq!(gemv(28672, 8192, 132).unwrap().grid_dim.0, 396);
        assert_eq!(gemv(8, 32768, 132).unwrap().shared_mem_bytes, 65_536);
        assert!(matches!(gemv(8, 32768 + 128, 132), Err(GpuError::Unsupported(_))));
        assert!(matches!(gemv(8, 4000, 132), Err(GpuError::Unsupported(_))));
    }

    #[test]
    fn attention_grids() {
        let p = prefill(2, 32, 4096, PrefillKernel::Br64);
        assert_eq!((p.grid_dim, p.block_dim.0, p.shared_mem_bytes), ((64, 32, 2), 128, 69_632));
        let wide = prefill(2, 32, 4096, PrefillKernel::Br128);
        assert_eq!((wide.grid_dim, wide.block_dim.0, wide.shared_mem_bytes), ((32, 32, 2), 256, 69_632));
        let w32 = prefill(2, 32, 4096, PrefillKernel::W32);
        assert_eq!((w32.grid_dim, w32.block_dim.0, w32.shared_mem_bytes), ((32, 32, 2), 128, 104_448));
        // The int8-x GEMV: 8192 codes + 256 scales + 256 sums.
        assert_eq!(gemv_q8(28672, 8192, 132).unwrap().shared_mem_bytes, 10_240);
        assert_eq!(gemv_v2(28672, 8192, 132).unwrap().shared_mem_bytes, 33_792);
        let (s, r, splits) = decode(2, 32, 8, 700);
        assert_eq!((s.grid_dim, r.grid_dim, splits), ((3, 8, 2), (32, 2, 1), 3));
        // v2 at the bench's shape: 16 splits × 8 KV heads × 8 sequences = 1,024 blocks; 700 keys: a
        // full split and one of 188.
        let (v2, splits) = decode_v2(8, 8, 8192);
        assert_eq!((v2.grid_dim, v2.block_dim.0, v2.shared_mem_bytes, splits), ((16, 8, 8), 128, 98_304, 16));
        assert_eq!(decode_v2(2, 8, 700).1, 2);
        // log2(e) / √128 = 1.442695 / 11.313708
        assert!((attn_scale_log2(128) - 0.127_517_43).abs() < 1e-6);
    }

    /// Every prefill kernel the bench names is an entry point of kernels/attention_prefill.cu.
    #[test]
    fn prefill_entries_are_in_the_kernel_source() {
        let src = crate::gpu::kernels::family("attention_prefill").unwrap().source;
        for k in [PrefillKernel::Br64, PrefillKernel::Br128, PrefillKernel::W32] {
            assert!(src.contains(&format!(" {}(", k.entry())), "{} missing from attention_prefill.cu", k.entry());
        }
    }

    /// The decode candidate's entry points, chunk and shared memory are those of the kernel source.
    #[test]
    fn decode_v2_matches_the_kernel_source() {
        let src = crate::gpu::kernels::family("attention_decode").unwrap().source;
        for g in [1, 2, 4, 8] {
            assert!(src.contains(&format!("\nDEC_V2({g})\n")), "attn_decode_v2_g{g} missing from attention_decode.cu");
        }
        for line in ["#define DV2_WARPS 4", "#define DV2_STEP 16", "#define DV2_CHUNK 512", "#define DV2_STAGES 3"] {
            assert!(src.contains(line), "{line} missing from attention_decode.cu");
        }
        assert_eq!(DECODE_V2_CHUNK, 4 * 8 * 16);
    }

    /// Llama-2-7B decode partials at batch 2, context 4096, and a call over fewer keys.
    #[test]
    fn decode_partials_fit_below_the_statistics() {
        use crate::validate::layout::decode_workspace_bytes;
        let (ml, bytes) = decode_workspace(2, 32, 128, 4096);
        assert_eq!((ml, bytes), (2 * 32 * 16 * 128 * 4, 2 * 32 * 16 * 130 * 4));
        for (b, h, cap) in [(2, 32, 4096), (1, 64, 1000), (3, 8, 257)] {
            let (ml, bytes) = decode_workspace(b, h, 128, cap);
            assert_eq!(bytes, decode_workspace_bytes(b, h, 128, cap));
            for ctx in [1, 255, 256, 257, cap] {
                let (_, _, splits) = decode(b, h, 8, ctx);
                // Last ws_o float the split kernel writes, and the end of the ws_ml it writes.
                assert!(b * h * splits * 128 * 4 <= ml);
                assert!(ml + b * h * splits * 8 <= bytes);
            }
        }
    }

    /// Llama-2-7B's gate projection (4096 → 11008) over a 4096-token prompt, and q read from a
    /// fused row of width 12288.
    #[test]
    fn linear_maps_row_major_onto_column_major_gemm() {
        let g = linear_gemm(11008, 4096, 4096, 4096, (1, 2, 3)).unwrap();
        assert_eq!((g.m, g.n, g.k, g.lda, g.ldb, g.ldc), (11008, 4096, 4096, 4096, 4096, 11008));
        assert!(g.trans_a && !g.trans_b && !g.accumulate && g.dtype == GemmDtype::Bf16);
        assert_eq!((g.a, g.b, g.c), (1, 2, 3));
        let q = linear_gemm(4096, 4096, 7, 12288, (1, 2, 3)).unwrap();
        assert_eq!((q.n, q.ldb), (7, 12288));
        assert!(linear_gemm(4096, 4096, 7, 100, (1, 2, 3)).is_err());
        assert!(linear_gemm(1 << 31, 4096, 7, 4096, (1, 2, 3)).is_err());
        assert!(linear_gemm(0, 4096, 7, 4096, (1, 2, 3)).is_err());
    }

    /// The benchmark's GEMMs keep their historical parameters: N,N with lda = m, ldb = k, ldc = m;
    /// int8 with A transposed (lda = k).
    #[test]
    fn bench_gemms_are_packed() {
        let f = GemmCall::packed(GemmDtype::Fp16, 96, 80, 64, 1, 2, 3);
        assert_eq!((f.trans_a, f.trans_b, f.lda, f.ldb, f.ldc), (false, false, 96, 64, 96));
        let i = GemmCall::packed(GemmDtype::Int8, 96, 80, 64, 1, 2, 3);
        assert_eq!((i.trans_a, i.trans_b, i.lda, i.ldb, i.ldc), (true, false, 64, 64, 96));
        assert!(!f.accumulate && !i.accumulate);
    }

    #[test]
    fn attention_shapes_the_kernels_take() {
        let a = Attn { batch: 1, heads: 32, kv_heads: 8, head_dim: 128, seq: 4032, cap: 4096 };
        assert!(check_attention(&a, "prefill").is_ok());
        for bad in [
            Attn { head_dim: 64, ..a },
            Attn { kv_heads: 0, ..a },
            Attn { kv_heads: 5, ..a },
            Attn { seq: 4097, ..a },
            Attn { batch: 70_000, ..a },
        ] {
            assert!(matches!(check_attention(&bad, "decode"), Err(GpuError::Unsupported(_))), "{bad:?}");
        }
    }
}
