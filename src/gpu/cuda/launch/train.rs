//! Launch parameters of the training step's kernels (kernels/train.cu) and the two cuBLAS GEMMs
//! of a linear layer's backward pass, as pure functions of the shapes so they are tested without
//! a GPU. The block sizes mirror the `#define`s at the top of kernels/train.cu (a test checks).

use super::{cfg, check_attention, ATTN_HEAD_DIM};
use crate::gpu::cuda::GemmCall;
use crate::gpu::reference::AdamW;
use crate::gpu::workload::GemmDtype;
use crate::gpu::GpuError;
use crate::validate::backend::Attn;
use cudarc::driver::LaunchConfig;

/// Threads of the one-block-per-row kernels, `cross_entropy_bf16` and `rmsnorm_bwd_dx_bf16`
/// (`TRAIN_ROW_THREADS`).
pub(crate) const ROW_THREADS: u32 = 256;
/// Columns (= threads) per block of `rmsnorm_bwd_dw_bf16` (`RMS_DW_COLS`).
pub(crate) const RMS_DW_COLS: u32 = 256;
/// Largest grid x dimension: 2³¹ − 1 blocks.
const GRID_X: u64 = i32::MAX as u64;

fn unsupported(what: String) -> GpuError {
    GpuError::Unsupported(what)
}

/// One block of [`ROW_THREADS`] per row (`cross_entropy_bf16`, `rmsnorm_bwd_dx_bf16`): at most
/// 2³¹ − 1 rows (the grid's x limit), at least one.
pub(crate) fn per_row(rows: u64, what: &str) -> Result<LaunchConfig, GpuError> {
    if rows == 0 || rows > GRID_X {
        return Err(unsupported(format!("{what} over {rows} rows (one block per row: 1 to 2³¹ − 1)")));
    }
    Ok(cfg((rows as u32, 1, 1), ROW_THREADS, 0))
}

/// `rmsnorm_bwd_dw_bf16`: one block of [`RMS_DW_COLS`] threads per 256 columns, ⌈dim / 256⌉.
pub(crate) fn rmsnorm_dw(dim: u64) -> LaunchConfig {
    cfg((dim.div_ceil(RMS_DW_COLS as u64).max(1) as u32, 1, 1), RMS_DW_COLS, 0)
}

/// The two attention-backward kernels, 128 threads (one per head dimension) each:
/// `attn_bwd_dq_bf16` one block per (query row, head, sequence), grid (seq, heads, batch), then
/// `attn_bwd_dkv_bf16` one block per (key row, KV head, sequence), grid (seq, kv_heads, batch).
/// The shapes of the forward kernels (head_dim 128, whole groups, `seq ≤ cap`) and a non-empty
/// grid.
pub(crate) fn attention_backward(a: &Attn) -> Result<(LaunchConfig, LaunchConfig), GpuError> {
    check_attention(a, "backward")?;
    if a.batch == 0 || a.heads == 0 || a.seq == 0 || a.seq > GRID_X || a.cap > GRID_X {
        return Err(unsupported(format!(
            "backward attention over {} sequences of {} tokens ({} cache rows), {} heads (each at least 1, 32-bit)",
            a.batch, a.seq, a.cap, a.heads
        )));
    }
    let threads = ATTN_HEAD_DIM as u32;
    let dq = cfg((a.seq as u32, a.heads as u32, a.batch as u32), threads, 0);
    let dkv = cfg((a.seq as u32, a.kv_heads as u32, a.batch as u32), threads, 0);
    Ok((dq, dkv))
}

/// The attention backward's workspace: each query row's log-sum-exp, f32 `[b][heads][seq]` at
/// offset 0, then its `Σ d_o·o` (delta), same shape. Returns (offset of delta, bytes of both),
/// the bytes being `validate::train_backend::attention_backward_workspace`.
pub(crate) fn attention_backward_ws(batch: u64, heads: u64, seq: u64) -> (u64, u64) {
    let half = batch.saturating_mul(heads).saturating_mul(seq).saturating_mul(4);
    (half, half.saturating_mul(2))
}

/// AdamW's bias corrections for step `t`, `(1 − β1^t, 1 − β2^t)`, computed as
/// `gpu::reference::adamw` does (f32 `powi`); the kernel divides by them, so `t` must be at
/// least 1.
pub(crate) fn adamw_bias_corrections(h: &AdamW) -> Result<(f32, f32), GpuError> {
    if h.step < 1 {
        return Err(unsupported(format!("an AdamW step numbered {} (steps count from 1)", h.step)));
    }
    Ok((1.0 - h.beta1.powi(h.step), 1.0 - h.beta2.powi(h.step)))
}

/// The sizes of a training GEMM, each a positive 32-bit int (what cuBLAS takes).
fn gemm_dims(what: &str, dims: [u64; 3]) -> Result<[i32; 3], GpuError> {
    match dims.map(|v| i32::try_from(v).ok().filter(|&v| v >= 1)) {
        [Some(a), Some(b), Some(c)] => Ok([a, b, c]),
        _ => Err(GpuError::Unsupported(format!(
            "{what} of {}×{} over {} tokens (cuBLAS takes 32-bit sizes, each at least 1)",
            dims[0], dims[1], dims[2]
        ))),
    }
}

/// The input gradient of a linear layer, `dx [tokens][cols] (+)= dy [tokens][rows] · W [rows][cols]`
/// (bf16, row-major, packed), as one column-major GemmEx: row-major `W` is column-major
/// `cols × rows` (lda = cols), row-major dy is column-major `rows × tokens` (ldb = rows), row-major
/// dx is column-major `cols × tokens` (ldc = cols); `dxᶜ(c, t) = Σ_r Wᶜ(c, r) · dyᶜ(r, t)`, so
/// `C = A·B` (N, N) with m = cols, n = tokens, k = rows. `accumulate` sets beta = 1.
pub(crate) fn linear_backward_input_gemm(
    rows: u64,
    cols: u64,
    tokens: u64,
    accumulate: bool,
    (w, dy, dx): (u64, u64, u64),
) -> Result<GemmCall, GpuError> {
    let [rows, cols, tokens] = gemm_dims("a linear layer's input gradient", [rows, cols, tokens])?;
    Ok(GemmCall {
        dtype: GemmDtype::Bf16,
        m: cols,
        n: tokens,
        k: rows,
        a: w,
        b: dy,
        c: dx,
        trans_a: false,
        trans_b: false,
        lda: cols,
        ldb: rows,
        ldc: cols,
        accumulate,
    })
}

/// The weight gradient of a linear layer, `dW [rows][cols] = dyᵀ · x` with `dy [tokens][rows]`,
/// `x [tokens][cols]` (bf16, row-major, packed), as one column-major GemmEx: row-major dW is
/// column-major `cols × rows` (ldc = cols), x is column-major `cols × tokens` (lda = cols), dy is
/// column-major `rows × tokens` (ldb = rows); `dWᶜ(c, r) = Σ_t xᶜ(c, t) · dyᶜ(r, t)`, so
/// `C = A·Bᵀ` (N, T) with m = cols, n = rows, k = tokens. Overwrites dW (beta = 0).
pub(crate) fn linear_backward_weight_gemm(
    rows: u64,
    cols: u64,
    tokens: u64,
    (dy, x, dw): (u64, u64, u64),
) -> Result<GemmCall, GpuError> {
    let [rows, cols, tokens] = gemm_dims("a linear layer's weight gradient", [rows, cols, tokens])?;
    Ok(GemmCall {
        dtype: GemmDtype::Bf16,
        m: cols,
        n: rows,
        k: tokens,
        a: x,
        b: dy,
        c: dw,
        trans_a: false,
        trans_b: true,
        lda: cols,
        ldb: rows,
        ldc: cols,
        accumulate: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The block sizes here are the ones kernels/train.cu is written for.
    #[test]
    fn block_sizes_mirror_the_kernel_source() {
        let src = crate::gpu::kernels::family("train").unwrap().source;
        for line in [
            format!("#define TRAIN_ROW_THREADS {ROW_THREADS}"),
            format!("#define RMS_DW_COLS {RMS_DW_COLS}"),
            format!("#define ATT_D {ATTN_HEAD_DIM}"),
        ] {
            assert!(src.contains(&line), "kernels/train.cu lacks `{line}`");
        }
    }

    /// Llama-3-8B's vocabulary over a 2×2048-token batch: one block per row.
    #[test]
    fn row_kernels_take_one_block_per_row() {
        let c = per_row(4096, "cross-entropy").unwrap();
        assert_eq!((c.grid_dim, c.block_dim, c.shared_mem_bytes), ((4096, 1, 1), (256, 1, 1), 0));
        assert!(per_row(0, "x").is_err());
        assert!(per_row(1 << 31, "x").unwrap_err().to_string().contains("2³¹"));
        assert_eq!(per_row((1 << 31) - 1, "x").unwrap().grid_dim.0, i32::MAX as u32);
    }

    /// Hidden 4096 → 16 blocks of 256 columns; 4100 → 17 (the last with 4 live columns).
    #[test]
    fn rmsnorm_weight_gradient_tiles_columns() {
        assert_eq!(rmsnorm_dw(4096).grid_dim, (16, 1, 1));
        assert_eq!(rmsnorm_dw(4100).grid_dim, (17, 1, 1));
        assert_eq!(rmsnorm_dw(1).grid_dim, (1, 1, 1));
        assert_eq!(rmsnorm_dw(1).block_dim, (256, 1, 1));
    }

    /// Llama-3-8B (32 heads over 8 KV heads) at batch 2, 512 tokens.
    #[test]
    fn attention_backward_grids() {
        let a = Attn { batch: 2, heads: 32, kv_heads: 8, head_dim: 128, seq: 512, cap: 512 };
        let (dq, dkv) = attention_backward(&a).unwrap();
        assert_eq!((dq.grid_dim, dq.block_dim.0), ((512, 32, 2), 128));
        assert_eq!((dkv.grid_dim, dkv.block_dim.0), ((512, 8, 2), 128));
        for bad in [
            Attn { head_dim: 64, ..a },
            Attn { kv_heads: 5, ..a },
            Attn { kv_heads: 0, ..a },
            Attn { seq: 0, ..a },
            Attn { batch: 0, ..a },
            Attn { seq: 513, ..a },
        ] {
            assert!(matches!(attention_backward(&bad), Err(GpuError::Unsupported(_))), "{bad:?}");
        }
    }

    /// 2 sequences × 32 heads × 512 rows × 4 bytes = 131,072 per statistic.
    #[test]
    fn attention_workspace_is_lse_then_delta() {
        use crate::validate::train_backend::attention_backward_workspace;
        assert_eq!(attention_backward_ws(2, 32, 512), (131_072, 262_144));
        for (b, h, s) in [(1, 1, 1), (3, 40, 777), (2, 64, 4096)] {
            assert_eq!(attention_backward_ws(b, h, s).1, attention_backward_workspace(b, h, s));
        }
    }

    /// Step 1 with β = (0.9, 0.999): corrections 0.1 and 0.001; step 0 is refused.
    #[test]
    fn adamw_bias_corrections_match_the_reference() {
        let h = AdamW { lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step: 1 };
        let (bc1, bc2) = adamw_bias_corrections(&h).unwrap();
        assert!((bc1 - 0.1).abs() < 1e-6 && (bc2 - 0.001).abs() < 1e-6, "{bc1} {bc2}");
        let (bc1, _) = adamw_bias_corrections(&AdamW { step: 2, ..h }).unwrap();
        assert!((bc1 - 0.19).abs() < 1e-6);
        assert!(adamw_bias_corrections(&AdamW { step: 0, ..h }).is_err());
    }

    /// Llama-2-7B's gate projection (W 11008×4096) backward over 4096 tokens: dx (4096×4096) =
    /// dy (4096×11008) · W, column-major 4096(cols)×4096(tokens) with k = 11008 (rows).
    #[test]
    fn linear_input_gradient_is_w_times_dy_column_major() {
        let g = linear_backward_input_gemm(11008, 4096, 4096, true, (1, 2, 3)).unwrap();
        let want = GemmCall {
            dtype: GemmDtype::Bf16,
            m: 4096,
            n: 4096,
            k: 11008,
            a: 1,
            b: 2,
            c: 3,
            trans_a: false,
            trans_b: false,
            lda: 4096,
            ldb: 11008,
            ldc: 4096,
            accumulate: true,
        };
        assert_eq!(g, want);
        // A small, lopsided case: W 3×5, 2 tokens: C 5×2 = (5×3) · (3×2).
        let s = linear_backward_input_gemm(3, 5, 2, false, (1, 2, 3)).unwrap();
        assert_eq!((s.m, s.n, s.k, s.lda, s.ldb, s.ldc, s.accumulate), (5, 2, 3, 5, 3, 5, false));
        assert!(linear_backward_input_gemm(0, 5, 2, false, (1, 2, 3)).is_err());
        assert!(linear_backward_input_gemm(3, 1 << 31, 2, false, (1, 2, 3)).is_err());
    }

    /// dW (3×5) = dyᵀ (3×2) · x (2×5): column-major C 5×3 = x (5×2, ld 5) · dyᵀ (dy stored 3×2,
    /// ld 3), k = 2 tokens.
    #[test]
    fn linear_weight_gradient_is_x_times_dy_transposed() {
        let g = linear_backward_weight_gemm(3, 5, 2, (1, 2, 3)).unwrap();
        let want = GemmCall {
            dtype: GemmDtype::Bf16,
            m: 5,
            n: 3,
            k: 2,
            a: 2,
            b: 1,
            c: 3,
            trans_a: false,
            trans_b: true,
            lda: 5,
            ldb: 3,
            ldc: 5,
            accumulate: false,
        };
        assert_eq!(g, want);
        assert!(linear_backward_weight_gemm(3, 5, 0, (1, 2, 3)).is_err());
    }

    /// The column-major mappings, evaluated on the host as cuBLAS would (op, then C (+)= A·B),
    /// against the row-major definitions of both gradients.
    #[test]
    fn training_gemms_compute_the_row_major_gradients() {
        let (rows, cols, tokens) = (3usize, 5usize, 2usize);
        let w: Vec<f64> = (0..rows * cols).map(|i| (i as f64 * 0.37).sin()).collect();
        let x: Vec<f64> = (0..tokens * cols).map(|i| (i as f64 * 0.71).cos()).collect();
        let dy: Vec<f64> = (0..tokens * rows).map(|i| 1.0 + i as f64 * 0.5).collect();
        let mut dx = vec![0.25; tokens * cols];
        let g = linear_backward_input_gemm(rows as u64, cols as u64, tokens as u64, true, (0, 1, 2)).unwrap();
        column_major_gemm(&g, [&w, &dy], &mut dx);
        for t in 0..tokens {
            for c in 0..cols {
                let want = 0.25 + (0..rows).map(|r| dy[t * rows + r] * w[r * cols + c]).sum::<f64>();
                assert!((dx[t * cols + c] - want).abs() < 1e-12);
            }
        }
        let mut dw = vec![9.0; rows * cols];
        let g = linear_backward_weight_gemm(rows as u64, cols as u64, tokens as u64, (1, 0, 2)).unwrap();
        column_major_gemm(&g, [&x, &dy], &mut dw);
        for r in 0..rows {
            for c in 0..cols {
                let want = (0..tokens).map(|t| dy[t * rows + r] * x[t * cols + c]).sum::<f64>();
                assert!((dw[r * cols + c] - want).abs() < 1e-12);
            }
        }
    }

    /// `C (+)= op(A)·op(B)` over host slices as cuBLAS reads them; `ops[0]` is the operand at
    /// address 0, `ops[1]` at address 1 (the calls above name A and B by those addresses).
    fn column_major_gemm(g: &GemmCall, ops: [&[f64]; 2], c: &mut [f64]) {
        let (a, b) = (ops[g.a as usize], ops[g.b as usize]);
        let at = |i: usize, p: usize| if g.trans_a { a[p + i * g.lda as usize] } else { a[i + p * g.lda as usize] };
        let bt = |p: usize, j: usize| if g.trans_b { b[j + p * g.ldb as usize] } else { b[p + j * g.ldb as usize] };
        for i in 0..g.m as usize {
            for j in 0..g.n as usize {
                let sum: f64 = (0..g.k as usize).map(|p| at(i, p) * bt(p, j)).sum();
                let out = &mut c[i + j * g.ldc as usize];
                *out = if g.accumulate { *out + sum } else { sum };
            }
        }
    }
}
