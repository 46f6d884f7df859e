//! [`TrainBackend`] on a CUDA device: the training step's loss, backward pass and optimizer step
//! for [`CudaLayers`]. Linear layers' gradients are cuBLAS GemmEx calls (bf16 in and out, fp32
//! compute; the column-major mappings are derived in `launch::train`); everything else is a simple
//! kernel of kernels/train.cu, fp32 math on bf16 storage, written to be obviously right rather
//! than fast (the step is run to measure memory). Each method checks its buffers (inside their
//! slab, large and aligned enough) and shapes first and answers [`GpuError::Unsupported`] instead
//! of launching; zero-size work launches nothing. `CpuLayers`' implementation defines what each
//! method computes.

use super::slab::{bytes, int, unsupported};
use super::{launch, Arg, CudaLayers, Step};
use crate::gpu::reference::AdamW;
use crate::gpu::GpuError;
use crate::validate::backend::{Attn, Buf, Linear};
use crate::validate::train_backend::TrainBackend;
use launch::train as tl;

const FAMILY: &str = "train";

impl CudaLayers {
    /// Zeroes the first `n` bytes of `buf` (a gradient whose sum has no terms).
    fn zero_prefix(&mut self, buf: Buf, n: u64) -> Result<(), GpuError> {
        self.zero(Buf { bytes: n.min(buf.bytes), ..buf })
    }
}

impl TrainBackend for CudaLayers {
    fn cross_entropy(&mut self, logits: Buf, targets: Buf, losses: Buf, rows: u64, vocab: u64) -> Result<(), GpuError> {
        if rows == 0 {
            return Ok(());
        }
        let v = int(vocab, "vocabulary")?;
        if v == 0 {
            return Err(unsupported("cross-entropy over an empty vocabulary".into()));
        }
        let c = tl::per_row(rows, "cross-entropy")?;
        let args = vec![
            Arg::Ptr(self.at(logits, bytes(&[2, rows, vocab]), 2, "logits")?),
            Arg::Ptr(self.at(targets, bytes(&[4, rows]), 4, "targets")?),
            Arg::Ptr(self.at(losses, bytes(&[4, rows]), 4, "losses")?),
            Arg::I32(v),
            Arg::I32(int(rows, "cross-entropy rows")?),
        ];
        self.kernel(FAMILY, "cross_entropy_bf16", c, args)
    }

    fn linear_backward_input(
        &mut self,
        w: &Linear,
        dy: Buf,
        dx: Buf,
        tokens: u64,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        let Linear::Bf16 { w, rows, cols } = *w else {
            return Err(unsupported("the input gradient of a 4-bit linear layer (training needs bf16 weights)".into()));
        };
        if tokens == 0 || cols == 0 {
            return Ok(());
        }
        let pdx = self.at(dx, bytes(&[2, tokens, cols]), 2, "input gradient")?;
        if rows == 0 {
            // dx = dy · W over no rows: zero, or unchanged when accumulating.
            return if accumulate { Ok(()) } else { self.zero_prefix(dx, bytes(&[2, tokens, cols])) };
        }
        let pw = self.at(w, bytes(&[2, rows, cols]), 2, "linear weight")?;
        let pdy = self.at(dy, bytes(&[2, tokens, rows]), 2, "output gradient")?;
        let g = tl::linear_backward_input_gemm(rows, cols, tokens, accumulate, (pw, pdy, pdx))?;
        self.gpu.run_step(&Step::Gemm(g))
    }

    fn linear_backward_weight(
        &mut self,
        dy: Buf,
        x: Buf,
        dw: Buf,
        rows: u64,
        cols: u64,
        tokens: u64,
    ) -> Result<(), GpuError> {
        if rows == 0 || cols == 0 {
            return Ok(());
        }
        let pdw = self.at(dw, bytes(&[2, rows, cols]), 2, "weight gradient")?;
        if tokens == 0 {
            return self.zero_prefix(dw, bytes(&[2, rows, cols]));
        }
        let pdy = self.at(dy, bytes(&[2, tokens, rows]), 2, "output gradient")?;
        let px = self.at(x, bytes(&[2, tokens, cols]), 2, "linear input")?;
        let g = tl::linear_backward_weight_gemm(rows, cols, tokens, (pdy, px, pdw))?;
        self.gpu.run_step(&Step::Gemm(g))
    }

    /// Two kernels: `rmsnorm_bwd_dx_bf16` (one block per row) adds each row's input gradient to
    /// dx; `rmsnorm_bwd_dw_bf16` (one thread per column, walking every row) writes dw, recomputing
    /// each row's rstd since the trait gives no scratch to keep it in (kernels/train.cu).
    fn rmsnorm_backward(
        &mut self,
        x: Buf,
        w: Buf,
        dy: Buf,
        dx: Buf,
        dw: Buf,
        rows: u64,
        dim: u64,
        eps: f32,
    ) -> Result<(), GpuError> {
        if dim == 0 {
            return Ok(());
        }
        let (r, d) = (int(rows, "rmsnorm rows")?, int(dim, "rmsnorm width")?);
        let rows_bytes = bytes(&[2, rows, dim]);
        let px = self.at(x, rows_bytes, 2, "rmsnorm input")?;
        let pw = self.at(w, bytes(&[2, dim]), 2, "rmsnorm weight")?;
        let pdy = self.at(dy, rows_bytes, 2, "rmsnorm output gradient")?;
        let pdx = self.at(dx, rows_bytes, 2, "rmsnorm input gradient")?;
        let pdw = self.at(dw, bytes(&[2, dim]), 2, "rmsnorm weight gradient")?;
        if rows > 0 {
            let c = tl::per_row(rows, "rmsnorm backward")?;
            let args = vec![Arg::Ptr(px), Arg::Ptr(pw), Arg::Ptr(pdy), Arg::Ptr(pdx), Arg::I32(d), Arg::F32(eps)];
            self.kernel(FAMILY, "rmsnorm_bwd_dx_bf16", c, args)?;
        }
        // Over no rows the kernel writes dw = 0, as the sum has no terms.
        let args = vec![Arg::Ptr(px), Arg::Ptr(pdy), Arg::Ptr(pdw), Arg::I32(r), Arg::I32(d), Arg::F32(eps)];
        self.kernel(FAMILY, "rmsnorm_bwd_dw_bf16", tl::rmsnorm_dw(dim), args)
    }

    fn silu_gate_backward(
        &mut self,
        gate: Buf,
        up: Buf,
        d_act: Buf,
        d_gate: Buf,
        d_up: Buf,
        n: u64,
    ) -> Result<(), GpuError> {
        if n == 0 {
            return Ok(());
        }
        let need = bytes(&[2, n]);
        let args = vec![
            Arg::Ptr(self.at(gate, need, 2, "silu_gate gate")?),
            Arg::Ptr(self.at(up, need, 2, "silu_gate up")?),
            Arg::Ptr(self.at(d_act, need, 2, "silu_gate output gradient")?),
            Arg::Ptr(self.at(d_gate, need, 2, "silu_gate gate gradient")?),
            Arg::Ptr(self.at(d_up, need, 2, "silu_gate up gradient")?),
            Arg::U64(n),
        ];
        self.kernel(FAMILY, "silu_gate_bwd_bf16", self.elementwise(n), args)
    }

    /// `attn_bwd_dq_bf16` (dq, and each query row's log-sum-exp and delta into `ws`), then
    /// `attn_bwd_dkv_bf16` (dk, dv from them), in stream order (kernels/train.cu).
    fn attention_backward(
        &mut self,
        q: Buf,
        k: Buf,
        v: Buf,
        o: Buf,
        d_o: Buf,
        dq: Buf,
        dk: Buf,
        dv: Buf,
        ws: Buf,
        a: Attn,
    ) -> Result<(), GpuError> {
        if a.batch == 0 || a.heads == 0 || a.seq == 0 {
            return Ok(());
        }
        let (dq_cfg, dkv_cfg) = tl::attention_backward(&a)?;
        let q_bytes = bytes(&[2, a.batch, a.heads, a.seq, a.head_dim]);
        let kv_bytes = bytes(&[2, a.batch, a.kv_heads, a.cap, a.head_dim]);
        let dkv_bytes = bytes(&[2, a.batch, a.seq, a.kv_heads, a.head_dim]);
        let (delta_at, ws_bytes) = tl::attention_backward_ws(a.batch, a.heads, a.seq);
        let (pq, pk, pv) = (self.at(q, q_bytes, 2, "q")?, self.at(k, kv_bytes, 2, "k")?, self.at(v, kv_bytes, 2, "v")?);
        let (po, pdo) = (self.at(o, q_bytes, 2, "attention output")?, self.at(d_o, q_bytes, 2, "output gradient")?);
        let pdq = self.at(dq, q_bytes, 2, "dq")?;
        let (pdk, pdv) = (self.at(dk, dkv_bytes, 2, "dk")?, self.at(dv, dkv_bytes, 2, "dv")?);
        let pws = self.at(ws, ws_bytes, 4, "attention backward workspace")?;
        let shape = [
            Arg::I32(int(a.seq, "attention seq")?),
            Arg::I32(int(a.heads, "heads")?),
            Arg::I32(int(a.kv_heads, "kv_heads")?),
            Arg::I32(int(a.cap, "cache rows")?),
            Arg::F32(1.0 / (a.head_dim as f32).sqrt()),
        ];
        let mut dq_args =
            vec![pq, pk, pv, po, pdo, pdq, pws, pws + delta_at].into_iter().map(Arg::Ptr).collect::<Vec<_>>();
        dq_args.extend(shape);
        self.kernel(FAMILY, "attn_bwd_dq_bf16", dq_cfg, dq_args)?;
        let mut dkv_args =
            vec![pq, pk, pv, pdo, pdk, pdv, pws, pws + delta_at].into_iter().map(Arg::Ptr).collect::<Vec<_>>();
        dkv_args.extend(shape);
        self.kernel(FAMILY, "attn_bwd_dkv_bf16", dkv_cfg, dkv_args)
    }

    fn embed_backward(&mut self, ids: Buf, dx: Buf, d_table: Buf, tokens: u64, hidden: u64) -> Result<(), GpuError> {
        if tokens == 0 || hidden == 0 {
            return Ok(());
        }
        let h = int(hidden, "embedding width")?;
        let pi = self.at(ids, bytes(&[4, tokens]), 4, "token ids")?;
        let pdx = self.at(dx, bytes(&[2, tokens, hidden]), 2, "embedding output gradient")?;
        // 4-byte aligned: the kernel adds through the 32-bit word holding each bf16.
        let pt = self.at(d_table, bytes(&[2, hidden]), 4, "embedding table gradient")?;
        let vocab = d_table.bytes / (2 * hidden);
        let args = vec![Arg::Ptr(pi), Arg::Ptr(pdx), Arg::Ptr(pt), Arg::U64(tokens), Arg::I32(h), Arg::U64(vocab)];
        self.kernel(FAMILY, "embed_bwd_bf16", self.elementwise(bytes(&[tokens, hidden])), args)
    }

    fn zero(&mut self, buf: Buf) -> Result<(), GpuError> {
        let p = self.at(buf, 0, 1, "zero")?;
        if buf.bytes == 0 {
            return Ok(());
        }
        let n = usize::try_from(buf.bytes).map_err(|_| unsupported(format!("zeroing {} bytes", buf.bytes)))?;
        self.bind()?;
        // SAFETY: p..p+n lies inside a live slab (checked above); the memset is ordered on the stream
        // with every kernel and GEMM that reads or writes the buffer.
        unsafe { cudarc::driver::result::memset_d8_async(p, 0, n, self.gpu.stream.cu_stream()) }
            .map_err(|e| GpuError::driver("cuMemsetD8Async", e))
    }

    fn widen(&mut self, src: Buf, dst: Buf, n: u64) -> Result<(), GpuError> {
        if n == 0 {
            return Ok(());
        }
        let ps = self.at(src, bytes(&[2, n]), 2, "widen source")?;
        let pd = self.at(dst, bytes(&[4, n]), 4, "widen destination")?;
        self.kernel(FAMILY, "widen_bf16_f32", self.elementwise(n), vec![Arg::Ptr(ps), Arg::Ptr(pd), Arg::U64(n)])
    }

    fn adamw_mixed(
        &mut self,
        weight: Buf,
        grad: Buf,
        master: Buf,
        m: Buf,
        v: Buf,
        n: u64,
        h: AdamW,
    ) -> Result<(), GpuError> {
        if n == 0 {
            return Ok(());
        }
        let (bc1, bc2) = tl::adamw_bias_corrections(&h)?;
        let (half, full) = (bytes(&[2, n]), bytes(&[4, n]));
        let args = vec![
            Arg::Ptr(self.at(weight, half, 2, "AdamW weight")?),
            Arg::Ptr(self.at(grad, half, 2, "AdamW gradient")?),
            Arg::Ptr(self.at(master, full, 4, "AdamW master weight")?),
            Arg::Ptr(self.at(m, full, 4, "AdamW first moment")?),
            Arg::Ptr(self.at(v, full, 4, "AdamW second moment")?),
            Arg::U64(n),
            Arg::F32(h.lr),
            Arg::F32(h.beta1),
            Arg::F32(h.beta2),
            Arg::F32(h.eps),
            Arg::F32(h.weight_decay),
            Arg::F32(bc1),
            Arg::F32(bc2),
        ];
        self.kernel(FAMILY, "adamw_mixed_bf16", self.elementwise(n), args)
    }
}
