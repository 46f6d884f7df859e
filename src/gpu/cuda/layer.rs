//! [`CudaLayers`]: `validate`'s [`LayerBackend`] on a CUDA device. It owns a [`CudaGpu`] and the
//! slabs the engine allocates (one plain device allocation each, buffers at 256-byte offsets), and
//! runs every operation on the device's one stream, in order: our kernels (`kernels/layer.cu`
//! for data movement and elementwise steps, the benchmark's rmsnorm, rope, silu_gate, gemv and
//! attention kernels) and cuBLAS GemmEx for bf16 linear layers. Every call checks the buffers it
//! is given (inside their slab, large and aligned enough for the kernel) and the shape (what the
//! kernel is written for) first, and answers [`GpuError::Unsupported`] instead of launching.
//! The training step's operations (`TrainBackend`) are in `train.rs`.

use super::launch::{self, cfg};
use super::{Arg, CudaGpu, Step};
use crate::gpu::workload::PrefillKernel;
use crate::gpu::{DeviceInfo, Gpu, GpuError};
use crate::validate::backend::{Attn, Buf, Fill, Heads, LayerBackend, Linear};
use cudarc::driver::{CudaEvent, CudaSlice, LaunchConfig};
use slab::{bytes, int, pack, resolve, unsupported, Span, ALIGN};

mod slab;
mod train;

/// `validate`'s operations on a CUDA device (see the module doc).
pub struct CudaLayers {
    // Declared first so it drops first: the cuBLAS handle goes before the workspace it was given.
    gpu: CudaGpu,
    spans: Vec<Span>,
    slabs: Vec<CudaSlice<u8>>,
    marks: Vec<CudaEvent>,
}

impl CudaLayers {
    /// Takes over an opened device: everything `validate` allocates lives as long as this value.
    pub fn new(gpu: CudaGpu) -> Self {
        CudaLayers { gpu, spans: Vec::new(), slabs: Vec::new(), marks: Vec::new() }
    }

    /// The device underneath (its free memory, compiled kernels).
    pub fn gpu(&self) -> &CudaGpu {
        &self.gpu
    }

    /// What the device is: name, compute capability, memory, SM count.
    pub fn device(&self) -> &DeviceInfo {
        self.gpu.device()
    }

    fn at(&self, b: Buf, need: u64, align: u64, what: &str) -> Result<u64, GpuError> {
        resolve(&self.spans, b, need, align, what)
    }

    /// One thread per item over 256-thread blocks, grid-striding (kernels/layer.cu and the
    /// benchmark's elementwise kernels).
    fn elementwise(&self, items: u64) -> LaunchConfig {
        cfg((launch::grid_stride(items, 256, self.gpu.sm_count()), 1, 1), 256, 0)
    }

    fn kernel(
        &mut self,
        family: &'static str,
        name: &'static str,
        c: LaunchConfig,
        args: Vec<Arg>,
    ) -> Result<(), GpuError> {
        let f = self.gpu.function_with_smem(family, name, c.shared_mem_bytes)?;
        self.gpu.run_step(&Step::Kernel { f, cfg: c, args })
    }

    fn bind(&self) -> Result<(), GpuError> {
        self.gpu.ctx.bind_to_thread().map_err(|e| GpuError::driver("binding the CUDA context", e))
    }

    /// `y = x · Wᵀ` with bf16 `W` at device address `w`, through cuBLAS.
    fn gemm_bf16(
        &mut self,
        w: u64,
        (rows, cols): (u64, u64),
        x: Buf,
        x_stride: u64,
        y: Buf,
        tokens: u64,
    ) -> Result<(), GpuError> {
        let x_elems = (tokens - 1).saturating_mul(x_stride).saturating_add(cols);
        let xp = self.at(x, bytes(&[2, x_elems]), 2, "linear input")?;
        let yp = self.at(y, bytes(&[2, tokens, rows]), 2, "linear output")?;
        let g = launch::linear_gemm(rows, cols, tokens, x_stride, (w, xp, yp))?;
        self.gpu.run_step(&Step::Gemm(g))
    }
}

impl LayerBackend for CudaLayers {
    fn alloc_slab(&mut self, what: &str, sizes: &[u64]) -> Result<Vec<Buf>, GpuError> {
        let (offsets, total) = pack(sizes);
        let (mem, base) = self.gpu.alloc(what, total)?;
        if base % ALIGN != 0 {
            return Err(unsupported(format!("{what}: a device allocation at {base:#x}, not {ALIGN}-byte aligned")));
        }
        let slab = self.spans.len();
        self.spans.push(Span { base, bytes: total });
        self.slabs.push(mem);
        Ok(offsets.into_iter().zip(sizes).map(|(offset, &bytes)| Buf { slab, offset, bytes }).collect())
    }

    fn fill(&mut self, buf: Buf, fill: Fill, seed: u32, scale: f32) -> Result<(), GpuError> {
        let (kind, elem) = match fill {
            Fill::U32 => ("u32", 4),
            Fill::F32 => ("f32", 4),
            Fill::F16 => ("f16", 2),
            Fill::Bf16 => ("bf16", 2),
        };
        let p = self.at(buf, 0, elem, "fill")?;
        self.gpu.fill(p, buf.bytes, kind, seed, scale)
    }

    /// Copies `bytes` (as many as fit in `buf`, as the CPU backend does) to the start of `buf`.
    fn upload(&mut self, buf: Buf, bytes: &[u8]) -> Result<(), GpuError> {
        let n = bytes.len().min(usize::try_from(buf.bytes).unwrap_or(usize::MAX));
        let p = self.at(buf, n as u64, 1, "upload")?;
        if n == 0 {
            return Ok(());
        }
        self.bind()?;
        // SAFETY: p..p+n lies inside a live slab (checked above). `bytes` is pageable host memory:
        // the driver copies it to a staging buffer before returning, so it may be dropped after.
        unsafe { cudarc::driver::result::memcpy_htod_async(p, &bytes[..n], self.gpu.stream.cu_stream()) }
            .map_err(|e| GpuError::driver("copy to device", e))
    }

    fn download(&mut self, buf: Buf) -> Result<Vec<u8>, GpuError> {
        let p = self.at(buf, buf.bytes, 1, "download")?;
        let len = usize::try_from(buf.bytes).map_err(|_| unsupported(format!("downloading {} bytes", buf.bytes)))?;
        let mut out = vec![0u8; len];
        if len == 0 {
            return Ok(out);
        }
        self.bind()?;
        // SAFETY: p..p+len lies inside a live slab (checked above); `out` holds len bytes, and a
        // copy into pageable memory has completed when the call returns (then the stream sync).
        unsafe { cudarc::driver::result::memcpy_dtoh_async(&mut out, p, self.gpu.stream.cu_stream()) }
            .map_err(|e| GpuError::driver("copy to host", e))?;
        self.gpu.sync()?;
        Ok(out)
    }

    fn set_blas_workspace(&mut self, ws: Buf) -> Result<(), GpuError> {
        let p = self.at(ws, ws.bytes, ALIGN, "cuBLAS workspace")?;
        let handle = self.gpu.blas_handle()?;
        self.bind()?;
        // SAFETY: the handle is live; the workspace lies inside a slab that outlives the handle
        // (`gpu` drops before `slabs`), and is used only by cuBLAS calls on this stream.
        unsafe { cudarc::cublas::sys::cublasSetWorkspace_v2(handle, p as *mut std::ffi::c_void, ws.bytes as usize) }
            .result()
            .map_err(|e| GpuError::Cublas { context: "cublasSetWorkspace".into(), detail: format!("{e:?}") })
    }

    fn embed(&mut self, ids: Buf, table: Buf, out: Buf, tokens: u64, hidden: u64) -> Result<(), GpuError> {
        let h = int(hidden, "embedding width")?;
        if tokens == 0 || h == 0 {
            return Ok(());
        }
        let pi = self.at(ids, bytes(&[4, tokens]), 4, "token ids")?;
        let pt = self.at(table, bytes(&[2, hidden]), 2, "embedding table")?;
        let po = self.at(out, bytes(&[2, tokens, hidden]), 2, "embedding output")?;
        let vocab = table.bytes / (2 * hidden);
        let c = self.elementwise(tokens * hidden);
        let args = vec![Arg::Ptr(pi), Arg::Ptr(pt), Arg::Ptr(po), Arg::U64(tokens), Arg::I32(h), Arg::U64(vocab)];
        self.kernel("layer", "embed_bf16", c, args)
    }

    fn rmsnorm(&mut self, x: Buf, w: Buf, y: Buf, rows: u64, dim: u64, eps: f32) -> Result<(), GpuError> {
        if rows == 0 {
            return Ok(());
        }
        if dim == 0 || dim % 8 != 0 {
            return Err(unsupported(format!("rmsnorm over rows of {dim} (a multiple of 8)")));
        }
        let (r, d) = (int(rows, "rmsnorm rows")?, int(dim, "rmsnorm width")?);
        let px = self.at(x, bytes(&[2, rows, dim]), 16, "rmsnorm input")?;
        let pw = self.at(w, bytes(&[2, dim]), 16, "rmsnorm weight")?;
        let py = self.at(y, bytes(&[2, rows, dim]), 16, "rmsnorm output")?;
        let args = vec![Arg::Ptr(px), Arg::Ptr(pw), Arg::Ptr(py), Arg::I32(d), Arg::F32(eps)];
        self.kernel("rmsnorm", "rmsnorm_bf16", cfg((r as u32, 1, 1), 256, 0), args)
    }

    fn linear(&mut self, w: &Linear, x: Buf, x_stride: u64, y: Buf, tokens: u64, scratch: Buf) -> Result<(), GpuError> {
        if tokens == 0 {
            return Ok(());
        }
        match *w {
            Linear::Bf16 { w, rows, cols } => {
                let pw = self.at(w, bytes(&[2, rows, cols]), 2, "linear weight")?;
                self.gemm_bf16(pw, (rows, cols), x, x_stride, y, tokens)
            }
            Linear::Int4 { qweight, scales, rows, cols } => {
                if cols == 0 || cols % 128 != 0 {
                    return Err(unsupported(format!("a 4-bit linear layer of width {cols} (a multiple of 128)")));
                }
                let (r, k) = (int(rows, "4-bit rows")?, int(cols, "4-bit width")?);
                let pq = self.at(qweight, bytes(&[rows, cols / 2]), 16, "4-bit qweight")?;
                let ps = self.at(scales, bytes(&[2, rows, cols / 128]), 2, "4-bit scales")?;
                if tokens == 1 {
                    let px = self.at(x, bytes(&[2, cols]), 16, "gemv input")?;
                    let py = self.at(y, bytes(&[2, rows]), 2, "gemv output")?;
                    let c = launch::gemv(rows, cols, self.gpu.sm_count())?;
                    let args = vec![Arg::Ptr(pq), Arg::Ptr(ps), Arg::Ptr(px), Arg::Ptr(py), Arg::I32(r), Arg::I32(k)];
                    return self.kernel("gemv", "gemv_int4_bf16", c, args);
                }
                let pw = self.at(scratch, bytes(&[2, rows, cols]), 16, "dequantized weight")?;
                let c = self.elementwise(rows * cols / 8);
                let args = vec![Arg::Ptr(pq), Arg::Ptr(ps), Arg::Ptr(pw), Arg::I32(r), Arg::I32(k)];
                self.kernel("layer", "dequant_int4_bf16", c, args)?;
                self.gemm_bf16(pw, (rows, cols), x, x_stride, y, tokens)
            }
        }
    }

    fn rope(&mut self, x: Buf, cos: Buf, sin: Buf, h: Heads, pos0: u64) -> Result<(), GpuError> {
        let tokens = h.batch.saturating_mul(h.seq);
        if tokens == 0 || h.heads == 0 {
            return Ok(());
        }
        if h.head_dim == 0 || h.head_dim % 2 != 0 {
            return Err(unsupported(format!("rope with head_dim {} (an even number)", h.head_dim)));
        }
        let half = h.head_dim / 2;
        let positions = pos0.saturating_add(h.seq);
        int(positions, "rope's last position")?;
        let args = vec![
            Arg::Ptr(self.at(x, bytes(&[2, tokens, h.heads, h.head_dim]), 2, "rope input")?),
            Arg::Ptr(self.at(cos, bytes(&[4, positions, half]), 4, "rope cos table")?),
            Arg::Ptr(self.at(sin, bytes(&[4, positions, half]), 4, "rope sin table")?),
            Arg::I32(int(tokens, "rope tokens")?),
            Arg::I32(int(h.heads, "rope heads")?),
            Arg::I32(int(h.head_dim, "rope head_dim")?),
            Arg::I32(int(h.seq, "rope seq")?),
            Arg::I32(int(pos0, "rope pos0")?),
        ];
        let c = self.elementwise(bytes(&[tokens, h.heads, half]));
        self.kernel("rope", "rope_bf16", c, args)
    }

    fn split_heads(&mut self, src: Buf, dst: Buf, h: Heads, cap: u64, pos0: u64) -> Result<(), GpuError> {
        let n = bytes(&[h.batch, h.seq, h.heads, h.head_dim]);
        if n == 0 {
            return Ok(());
        }
        if pos0.saturating_add(h.seq) > cap {
            return Err(unsupported(format!(
                "writing rows {pos0}..{} of a {cap}-row cache",
                pos0.saturating_add(h.seq)
            )));
        }
        let args = vec![
            Arg::Ptr(self.at(src, bytes(&[2, n]), 2, "split_heads source")?),
            Arg::Ptr(self.at(dst, bytes(&[2, h.batch, h.heads, cap, h.head_dim]), 2, "split_heads destination")?),
            Arg::I32(int(h.batch, "batch")?),
            Arg::I32(int(h.seq, "seq")?),
            Arg::I32(int(h.heads, "heads")?),
            Arg::I32(int(h.head_dim, "head_dim")?),
            Arg::I32(int(cap, "cache rows")?),
            Arg::I32(int(pos0, "pos0")?),
        ];
        self.kernel("layer", "split_heads_bf16", self.elementwise(n), args)
    }

    fn merge_heads(&mut self, src: Buf, dst: Buf, h: Heads) -> Result<(), GpuError> {
        let n = bytes(&[h.batch, h.seq, h.heads, h.head_dim]);
        if n == 0 {
            return Ok(());
        }
        let args = vec![
            Arg::Ptr(self.at(src, bytes(&[2, n]), 2, "merge_heads source")?),
            Arg::Ptr(self.at(dst, bytes(&[2, n]), 2, "merge_heads destination")?),
            Arg::I32(int(h.batch, "batch")?),
            Arg::I32(int(h.seq, "seq")?),
            Arg::I32(int(h.heads, "heads")?),
            Arg::I32(int(h.head_dim, "head_dim")?),
        ];
        self.kernel("layer", "merge_heads_bf16", self.elementwise(n), args)
    }

    fn attention_prefill(&mut self, q: Buf, k: Buf, v: Buf, o: Buf, a: Attn) -> Result<(), GpuError> {
        if a.batch == 0 || a.heads == 0 {
            return Ok(());
        }
        launch::check_attention(&a, "prefill")?;
        if a.seq == 0 || a.seq % launch::PREFILL_ROWS != 0 {
            return Err(unsupported(format!("prefill attention over {} tokens (a multiple of 64)", a.seq)));
        }
        let qo = bytes(&[2, a.batch, a.heads, a.seq, a.head_dim]);
        let kv = bytes(&[2, a.batch, a.kv_heads, a.cap, a.head_dim]);
        let args = vec![
            Arg::Ptr(self.at(q, qo, 4, "prefill q")?),
            Arg::Ptr(self.at(k, kv, 16, "prefill k cache")?),
            Arg::Ptr(self.at(v, kv, 16, "prefill v cache")?),
            Arg::Ptr(self.at(o, qo, 4, "prefill output")?),
            Arg::I32(int(a.seq, "prefill seq")?),
            Arg::I32(int(a.kv_heads, "kv_heads")?),
            Arg::I32(int(a.cap, "cache rows")?),
            Arg::F32(launch::attn_scale_log2(a.head_dim)),
        ];
        let kernel = PrefillKernel::Br64;
        self.kernel("attention_prefill", kernel.entry(), launch::prefill(a.batch, a.heads, a.seq, kernel), args)
    }

    fn attention_decode(&mut self, q: Buf, k: Buf, v: Buf, o: Buf, ws: Buf, a: Attn) -> Result<(), GpuError> {
        if a.batch == 0 || a.heads == 0 {
            return Ok(());
        }
        launch::check_attention(&a, "decode")?;
        let group = a.heads / a.kv_heads;
        if ![1, 2, 4, 8].contains(&group) || a.seq == 0 {
            return Err(unsupported(format!(
                "decode attention with {group} query heads per KV head over {} keys (1, 2, 4 or 8; at least one key)",
                a.seq
            )));
        }
        let qo = bytes(&[2, a.batch, a.heads, a.head_dim]);
        let kv = bytes(&[2, a.batch, a.kv_heads, a.cap, a.head_dim]);
        let (ml, ws_bytes) = launch::decode_workspace(a.batch, a.heads, a.head_dim, a.cap);
        let (pq, po) = (self.at(q, qo, 2, "decode q")?, self.at(o, qo, 2, "decode output")?);
        let (pk, pv) = (self.at(k, kv, 16, "decode k cache")?, self.at(v, kv, 16, "decode v cache")?);
        let pw = self.at(ws, ws_bytes, 16, "decode workspace")?;
        let (split_cfg, reduce_cfg, splits) = launch::decode(a.batch, a.heads, a.kv_heads, a.seq);
        let split = vec![
            Arg::Ptr(pq),
            Arg::Ptr(pk),
            Arg::Ptr(pv),
            Arg::Ptr(pw),
            Arg::Ptr(pw + ml),
            Arg::I32(int(a.seq, "decode keys")?),
            Arg::I32(int(a.cap, "cache rows")?),
            Arg::F32(launch::attn_scale_log2(a.head_dim)),
        ];
        let split_kernel = match group {
            1 => "attn_decode_split_g1",
            2 => "attn_decode_split_g2",
            4 => "attn_decode_split_g4",
            _ => "attn_decode_split_g8",
        };
        self.kernel("attention_decode", split_kernel, split_cfg, split)?;
        let reduce = vec![Arg::Ptr(pw), Arg::Ptr(pw + ml), Arg::Ptr(po), Arg::I32(int(splits, "decode splits")?)];
        self.kernel("attention_decode", "attn_decode_reduce", reduce_cfg, reduce)
    }

    fn silu_gate(&mut self, gate: Buf, up: Buf, out: Buf, n: u64) -> Result<(), GpuError> {
        if n == 0 {
            return Ok(());
        }
        if n % 8 != 0 {
            return Err(unsupported(format!("silu_gate over {n} elements (a multiple of 8)")));
        }
        let args = vec![
            Arg::Ptr(self.at(gate, bytes(&[2, n]), 16, "silu_gate gate")?),
            Arg::Ptr(self.at(up, bytes(&[2, n]), 16, "silu_gate up")?),
            Arg::Ptr(self.at(out, bytes(&[2, n]), 16, "silu_gate output")?),
            Arg::U64(n / 8),
        ];
        self.kernel("silu_gate", "silu_gate_bf16", self.elementwise(n / 8), args)
    }

    fn add(&mut self, x: Buf, y: Buf, n: u64) -> Result<(), GpuError> {
        if n == 0 {
            return Ok(());
        }
        let px = self.at(x, bytes(&[2, n]), 2, "residual")?;
        let py = self.at(y, bytes(&[2, n]), 2, "residual addend")?;
        self.kernel("layer", "add_bf16", self.elementwise(n), vec![Arg::Ptr(px), Arg::Ptr(py), Arg::U64(n)])
    }

    fn mark(&mut self) -> Result<usize, GpuError> {
        let timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let e = self.gpu.ctx.new_event(timing).map_err(|e| GpuError::driver("cuEventCreate", e))?;
        e.record(&self.gpu.stream).map_err(|e| GpuError::driver("cuEventRecord", e))?;
        self.marks.push(e);
        Ok(self.marks.len() - 1)
    }

    fn elapsed_ms(&mut self, from: usize, to: usize) -> Result<f64, GpuError> {
        match (self.marks.get(from), self.marks.get(to)) {
            (Some(a), Some(b)) => a.elapsed_ms(b).map(f64::from).map_err(|e| GpuError::driver("cuEventElapsedTime", e)),
            _ => Err(unsupported(format!("timing marks {from}..{to} of {} recorded", self.marks.len()))),
        }
    }

    fn sync(&mut self) -> Result<(), GpuError> {
        self.gpu.sync()
    }

    fn release_all(&mut self) -> Result<(), GpuError> {
        self.gpu.sync()?;
        let handle = self.gpu.blas_handle()?;
        self.bind()?;
        // SAFETY: the handle is live; a null workspace of 0 bytes detaches the one in a slab
        // about to be freed (no cuBLAS call is queued: the stream is idle).
        unsafe { cudarc::cublas::sys::cublasSetWorkspace_v2(handle, std::ptr::null_mut(), 0) }.result().map_err(
            |e| GpuError::Cublas { context: "cublasSetWorkspace (detach)".into(), detail: format!("{e:?}") },
        )?;
        self.spans.clear();
        // Frees are stream-ordered (cuMemFreeAsync); the pool returns the memory at the sync.
        self.slabs.clear();
        self.gpu.sync()
    }
}
