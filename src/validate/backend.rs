//! The seam between `validate`'s engine and a device: every operation the synthetic model runs,
//! on buffers the engine allocated in slabs. The CUDA implementation
//! (`crate::gpu::cuda::layer::CudaLayers`) runs our kernels and cuBLAS; [`super::cpu::CpuLayers`]
//! runs the same operations on the host in f32 with bf16 storage, the reference the GPU's
//! logits are checked against.
//!
//! Layouts (all row-major, elements):
//! - activations token-major: `x [batch][seq][width]`;
//! - head-major attention operands: `q, o [batch][heads][seq][head_dim]`;
//! - KV cache per layer: `k, v [batch][kv_heads][cap][head_dim]`, position `p` of a sequence at
//!   row `p`;
//! - linear weights as `nn.Linear` stores them, `[rows = out][cols = in]`:
//!   bf16, or 4-bit (see [`Linear::Int4`]).

use crate::gpu::GpuError;

/// A buffer: `bytes` at `offset` inside slab `slab`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Buf {
    pub slab: usize,
    pub offset: u64,
    pub bytes: u64,
}

impl Buf {
    /// The part of this buffer starting `bytes` in.
    pub fn skip(self, bytes: u64) -> Buf {
        let bytes = bytes.min(self.bytes);
        Buf { slab: self.slab, offset: self.offset + bytes, bytes: self.bytes - bytes }
    }
}

/// What a buffer is filled with by [`LayerBackend::fill`]: values uniform in `(-scale, scale)`
/// (random bits for `U32`), from a hash of the element index and the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fill {
    Bf16,
    F16,
    F32,
    U32,
}

/// A linear layer's weight: `y[t][r] = Σ_c x[t][c] · W[r][c]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Linear {
    /// bf16 `[rows][cols]`.
    Bf16 { w: Buf, rows: u64, cols: u64 },
    /// Symmetric 4-bit in groups of 128 along `cols`: `qweight` u32 `[rows][cols/8]` (nibble i
    /// of word j is column 8j+i), `scales` f16 `[rows][cols/128]`,
    /// `W[r][c] = (nibble − 8) · scale[r][c/128]` (kernels/gemv.cu). The format's zeros and
    /// `g_idx` are allocated as the checkpoint stores them but not read: a symmetric checkpoint's
    /// zeros are all 8.
    Int4 { qweight: Buf, scales: Buf, rows: u64, cols: u64 },
}

impl Linear {
    pub fn rows(&self) -> u64 {
        match *self {
            Linear::Bf16 { rows, .. } | Linear::Int4 { rows, .. } => rows,
        }
    }
    pub fn cols(&self) -> u64 {
        match *self {
            Linear::Bf16 { cols, .. } | Linear::Int4 { cols, .. } => cols,
        }
    }
}

/// Shape of a head-major operation: `batch` sequences of `seq` tokens, `heads` heads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Heads {
    pub batch: u64,
    pub seq: u64,
    pub heads: u64,
    pub head_dim: u64,
}

/// Shape of an attention call over the KV cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attn {
    pub batch: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    /// Prefill: query tokens per sequence (a multiple of 64), the keys are the first `seq` cache
    /// rows. Decode: the valid cache rows (one query per sequence).
    pub seq: u64,
    /// Cache rows per sequence and KV head.
    pub cap: u64,
}

/// A device that runs the synthetic model. Calls are asynchronous on a GPU (one stream, in
/// order); downloads and `elapsed_ms` synchronise.
pub trait LayerBackend {
    /// Allocates one slab holding buffers of `sizes` bytes, each starting 256-byte aligned, and
    /// returns them in order. `what` names the slab in errors.
    fn alloc_slab(&mut self, what: &str, sizes: &[u64]) -> Result<Vec<Buf>, GpuError>;
    fn fill(&mut self, buf: Buf, fill: Fill, seed: u32, scale: f32) -> Result<(), GpuError>;
    fn upload(&mut self, buf: Buf, bytes: &[u8]) -> Result<(), GpuError>;
    fn download(&mut self, buf: Buf) -> Result<Vec<u8>, GpuError>;
    /// Hands cuBLAS (or nothing, on the CPU) its workspace.
    fn set_blas_workspace(&mut self, ws: Buf) -> Result<(), GpuError>;

    /// `out[t] = table[ids[t]]` for `tokens` i32 ids, rows of `hidden` bf16.
    fn embed(&mut self, ids: Buf, table: Buf, out: Buf, tokens: u64, hidden: u64) -> Result<(), GpuError>;
    /// RMSNorm of `rows` rows of `dim` (bf16, fp32 math), weight `w`.
    fn rmsnorm(&mut self, x: Buf, w: Buf, y: Buf, rows: u64, dim: u64, eps: f32) -> Result<(), GpuError>;
    /// `y [tokens][rows] = x · Wᵀ`; row t of x starts `x_stride` elements after row t−1. A 4-bit
    /// weight is dequantized into `scratch` (bf16 `[rows][cols]`) first when `tokens > 1`, and
    /// multiplied directly (GEMV) when `tokens == 1`.
    fn linear(&mut self, w: &Linear, x: Buf, x_stride: u64, y: Buf, tokens: u64, scratch: Buf) -> Result<(), GpuError>;
    /// Rotate-half RoPE in place on `x [batch][seq][heads][head_dim]`; token t of a sequence is at
    /// position `pos0 + t`; `cos`, `sin` f32 `[positions][head_dim/2]`.
    fn rope(&mut self, x: Buf, cos: Buf, sin: Buf, h: Heads, pos0: u64) -> Result<(), GpuError>;
    /// `dst[b][h][pos0 + t][:] = src[b][t][h][:]`, dst having `cap` rows per head.
    fn split_heads(&mut self, src: Buf, dst: Buf, h: Heads, cap: u64, pos0: u64) -> Result<(), GpuError>;
    /// `dst[b][t][h][:] = src[b][h][t][:]`.
    fn merge_heads(&mut self, src: Buf, dst: Buf, h: Heads) -> Result<(), GpuError>;
    /// Causal attention of `q [b][heads][seq][d]` over cache rows `0..seq`, into `o` (same layout).
    fn attention_prefill(&mut self, q: Buf, k: Buf, v: Buf, o: Buf, a: Attn) -> Result<(), GpuError>;
    /// One query per sequence, `q, o [b][heads][d]`, over cache rows `0..seq`; `ws` holds the
    /// split-K partials (see `validate::layout::decode_workspace_bytes`).
    fn attention_decode(&mut self, q: Buf, k: Buf, v: Buf, o: Buf, ws: Buf, a: Attn) -> Result<(), GpuError>;
    /// `out = silu(gate) · up` over `n` bf16 elements (`out` may be `gate`).
    fn silu_gate(&mut self, gate: Buf, up: Buf, out: Buf, n: u64) -> Result<(), GpuError>;
    /// `x += y` over `n` bf16 elements.
    fn add(&mut self, x: Buf, y: Buf, n: u64) -> Result<(), GpuError>;

    /// Records a timing mark on the stream and returns its index.
    fn mark(&mut self) -> Result<usize, GpuError>;
    /// Milliseconds between two marks (waits for the later one).
    fn elapsed_ms(&mut self, from: usize, to: usize) -> Result<f64, GpuError>;
    /// Waits for all queued work.
    fn sync(&mut self) -> Result<(), GpuError>;
    /// Waits, then frees every slab (their `Buf`s become invalid) and detaches the cuBLAS
    /// workspace: what stays is the runtime itself (context, compiled kernels, library handles).
    fn release_all(&mut self) -> Result<(), GpuError>;
}

/// Bytes of `n` elements of bf16.
pub const fn bf16_bytes(n: u64) -> u64 {
    2 * n
}
