//! [`CpuLayers`]: the synthetic model's operations on the host, in f64/f32 arithmetic with every
//! stored tensor rounded to bf16 as the GPU stores it. It is the reference the GPU's logits are
//! checked against (on a small model), and it lets the engine be tested without a GPU.

use super::backend::{Attn, Buf, Fill, Heads, LayerBackend, Linear};
use crate::gpu::reference::{self as r, AttnShape};
use crate::gpu::GpuError;
use std::time::Instant;

/// Host memory standing in for device slabs.
#[derive(Default)]
pub struct CpuLayers {
    slabs: Vec<Vec<u8>>,
    marks: Vec<Instant>,
}

/// Rounds `bytes` up to the 256-byte alignment every buffer starts at.
pub fn aligned(bytes: u64) -> u64 {
    bytes.next_multiple_of(256)
}

/// Host bytes for a [`Fill`]: uniform values in (−scale, scale) as bf16 / f16 / f32, or random
/// u32 words, from `seed`. The engine uploads these when it needs the same weights on two
/// backends.
pub fn host_fill(fill: Fill, bytes: u64, seed: u32, scale: f32) -> Vec<u8> {
    let mut rng = r::Rng::new(seed as u64 ^ 0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::with_capacity(bytes as usize);
    let value = |rng: &mut r::Rng| rng.uniform() * scale;
    while (out.len() as u64) < bytes {
        match fill {
            Fill::Bf16 => out.extend_from_slice(&r::f32_to_bf16(value(&mut rng)).to_le_bytes()),
            Fill::F16 => out.extend_from_slice(&r::f32_to_f16(value(&mut rng)).to_le_bytes()),
            Fill::F32 => out.extend_from_slice(&value(&mut rng).to_le_bytes()),
            Fill::U32 => out.extend_from_slice(&rng.next_u32().to_le_bytes()),
        }
    }
    out.truncate(bytes as usize);
    out
}

/// The reference's shape of an attention call (keys: the first `seq` cache rows).
fn attn_shape(a: &Attn) -> AttnShape {
    AttnShape {
        batch: a.batch as usize,
        heads: a.heads as usize,
        kv_heads: a.kv_heads as usize,
        seq: a.seq as usize,
        head_dim: a.head_dim as usize,
    }
}

fn unsupported(what: String) -> GpuError {
    GpuError::Unsupported(what)
}

impl CpuLayers {
    pub fn new() -> Self {
        Self::default()
    }

    fn bytes(&self, b: Buf) -> Result<&[u8], GpuError> {
        let slab = self.slabs.get(b.slab).ok_or_else(|| unsupported(format!("slab {}", b.slab)))?;
        slab.get(b.offset as usize..(b.offset + b.bytes) as usize)
            .ok_or_else(|| unsupported(format!("buffer {b:?} outside its slab")))
    }

    fn bytes_mut(&mut self, b: Buf) -> Result<&mut [u8], GpuError> {
        let slab = self.slabs.get_mut(b.slab).ok_or_else(|| unsupported(format!("slab {}", b.slab)))?;
        slab.get_mut(b.offset as usize..(b.offset + b.bytes) as usize)
            .ok_or_else(|| unsupported(format!("buffer {b:?} outside its slab")))
    }

    /// The first `n` bf16 values of `b` as f32.
    pub fn read_bf16(&self, b: Buf, n: u64) -> Result<Vec<f32>, GpuError> {
        let bytes = self.bytes(b)?;
        if (bytes.len() as u64) < 2 * n {
            return Err(unsupported(format!("reading {n} bf16 from {b:?}")));
        }
        Ok(bytes[..2 * n as usize].chunks_exact(2).map(|c| r::bf16_to_f32(u16::from_le_bytes([c[0], c[1]]))).collect())
    }

    fn write_bf16(&mut self, b: Buf, v: &[f32]) -> Result<(), GpuError> {
        let bytes = self.bytes_mut(b)?;
        if bytes.len() < 2 * v.len() {
            return Err(unsupported(format!("writing {} bf16 into {b:?}", v.len())));
        }
        for (c, x) in bytes.chunks_exact_mut(2).zip(v) {
            c.copy_from_slice(&r::f32_to_bf16(*x).to_le_bytes());
        }
        Ok(())
    }

    fn read_words(&self, b: Buf, n: u64) -> Result<Vec<u32>, GpuError> {
        let bytes = self.bytes(b)?;
        Ok(bytes[..(4 * n as usize).min(bytes.len())]
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect())
    }

    fn read_f32(&self, b: Buf, n: u64) -> Result<Vec<f32>, GpuError> {
        Ok(self.read_words(b, n)?.into_iter().map(f32::from_bits).collect())
    }

    fn read_f16(&self, b: Buf, n: u64) -> Result<Vec<f32>, GpuError> {
        let bytes = self.bytes(b)?;
        Ok(bytes[..(2 * n as usize).min(bytes.len())]
            .chunks_exact(2)
            .map(|c| r::f16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect())
    }

    /// The K or V rows `0..seq` of every (sequence, KV head), packed `[b][kv][seq][d]`.
    fn cache_rows(&self, c: Buf, a: &Attn) -> Result<Vec<f32>, GpuError> {
        let all = self.read_bf16(c, a.batch * a.kv_heads * a.cap * a.head_dim)?;
        let (cap, d) = (a.cap as usize, a.head_dim as usize);
        let mut out = Vec::with_capacity((a.batch * a.kv_heads * a.seq * a.head_dim) as usize);
        for bh in 0..(a.batch * a.kv_heads) as usize {
            out.extend_from_slice(&all[bh * cap * d..bh * cap * d + a.seq as usize * d]);
        }
        Ok(out)
    }

    /// `W` of a linear layer as f32 `[rows][cols]` (4-bit dequantized, optionally rounded to bf16
    /// as the GPU's prefill scratch holds it).
    fn weight(&self, w: &Linear, round_bf16: bool) -> Result<Vec<f32>, GpuError> {
        match *w {
            Linear::Bf16 { w, rows, cols } => self.read_bf16(w, rows * cols),
            Linear::Int4 { qweight, scales, rows, cols } => {
                let q = self.read_words(qweight, rows * cols / 8)?;
                let s = self.read_f16(scales, rows * cols / 128)?;
                let (n, k) = (rows as usize, cols as usize);
                let mut out = vec![0f32; n * k];
                for row in 0..n {
                    for c in 0..k {
                        let nib = ((q[row * k / 8 + c / 8] >> (4 * (c % 8))) & 0xf) as i32 - 8;
                        let v = nib as f32 * s[row * k / 128 + c / 128];
                        out[row * k + c] = if round_bf16 { r::bf16_to_f32(r::f32_to_bf16(v)) } else { v };
                    }
                }
                Ok(out)
            }
        }
    }
}

impl LayerBackend for CpuLayers {
    fn alloc_slab(&mut self, _what: &str, sizes: &[u64]) -> Result<Vec<Buf>, GpuError> {
        let slab = self.slabs.len();
        let mut offset = 0;
        let bufs = sizes
            .iter()
            .map(|&bytes| {
                let b = Buf { slab, offset, bytes };
                offset += aligned(bytes);
                b
            })
            .collect();
        self.slabs.push(vec![0; offset as usize]);
        Ok(bufs)
    }

    fn fill(&mut self, buf: Buf, fill: Fill, seed: u32, scale: f32) -> Result<(), GpuError> {
        self.upload(buf, &host_fill(fill, buf.bytes, seed, scale))
    }

    fn upload(&mut self, buf: Buf, bytes: &[u8]) -> Result<(), GpuError> {
        let dst = self.bytes_mut(buf)?;
        let n = bytes.len().min(dst.len());
        dst[..n].copy_from_slice(&bytes[..n]);
        Ok(())
    }

    fn download(&mut self, buf: Buf) -> Result<Vec<u8>, GpuError> {
        Ok(self.bytes(buf)?.to_vec())
    }

    fn set_blas_workspace(&mut self, _ws: Buf) -> Result<(), GpuError> {
        Ok(())
    }

    fn embed(&mut self, ids: Buf, table: Buf, out: Buf, tokens: u64, hidden: u64) -> Result<(), GpuError> {
        let ids = self.read_words(ids, tokens)?;
        let h = hidden as usize;
        let mut y = Vec::with_capacity(tokens as usize * h);
        for id in ids {
            y.extend(self.read_bf16(table.skip(id as u64 * hidden * 2), hidden)?.into_iter().take(h));
        }
        self.write_bf16(out, &y)
    }

    fn rmsnorm(&mut self, x: Buf, w: Buf, y: Buf, rows: u64, dim: u64, eps: f32) -> Result<(), GpuError> {
        let out = r::rmsnorm(&self.read_bf16(x, rows * dim)?, &self.read_bf16(w, dim)?, dim as usize, eps);
        self.write_bf16(y, &out)
    }

    fn linear(
        &mut self,
        w: &Linear,
        x: Buf,
        x_stride: u64,
        y: Buf,
        tokens: u64,
        _scratch: Buf,
    ) -> Result<(), GpuError> {
        let (n, k) = (w.rows() as usize, w.cols() as usize);
        let weight = self.weight(w, tokens > 1)?;
        let xs = self.read_bf16(x, (tokens - 1) * x_stride + k as u64)?;
        let mut out = Vec::with_capacity(tokens as usize * n);
        for t in 0..tokens as usize {
            let row = &xs[t * x_stride as usize..t * x_stride as usize + k];
            for wr in weight.chunks_exact(k) {
                out.push(row.iter().zip(wr).map(|(&a, &b)| a as f64 * b as f64).sum::<f64>() as f32);
            }
        }
        self.write_bf16(y, &out)
    }

    fn rope(&mut self, x: Buf, cos: Buf, sin: Buf, h: Heads, pos0: u64) -> Result<(), GpuError> {
        let half = h.head_dim / 2;
        let positions = pos0 + h.seq;
        let (cos_all, sin_all) = (self.read_f32(cos, positions * half)?, self.read_f32(sin, positions * half)?);
        // Tables for each token's position, then the reference rotation.
        let (mut c, mut s) = (Vec::new(), Vec::new());
        for t in 0..h.batch * h.seq {
            let p = (pos0 + t % h.seq) as usize * half as usize;
            c.extend_from_slice(&cos_all[p..p + half as usize]);
            s.extend_from_slice(&sin_all[p..p + half as usize]);
        }
        let v = self.read_bf16(x, h.batch * h.seq * h.heads * h.head_dim)?;
        let out = r::rope(&v, &c, &s, h.heads as usize, h.head_dim as usize);
        self.write_bf16(x, &out)
    }

    fn split_heads(&mut self, src: Buf, dst: Buf, h: Heads, cap: u64, pos0: u64) -> Result<(), GpuError> {
        let v = self.read_bf16(src, h.batch * h.seq * h.heads * h.head_dim)?;
        let d = h.head_dim as usize;
        for b in 0..h.batch {
            for t in 0..h.seq {
                for head in 0..h.heads {
                    let from = (((b * h.seq + t) * h.heads + head) as usize) * d;
                    let row = ((b * h.heads + head) * cap + pos0 + t) * h.head_dim * 2;
                    self.write_bf16(dst.skip(row), &v[from..from + d])?;
                }
            }
        }
        Ok(())
    }

    fn merge_heads(&mut self, src: Buf, dst: Buf, h: Heads) -> Result<(), GpuError> {
        let v = self.read_bf16(src, h.batch * h.seq * h.heads * h.head_dim)?;
        let d = h.head_dim as usize;
        let mut out = vec![0f32; v.len()];
        for b in 0..h.batch {
            for head in 0..h.heads {
                for t in 0..h.seq {
                    let from = (((b * h.heads + head) * h.seq + t) as usize) * d;
                    let to = (((b * h.seq + t) * h.heads + head) as usize) * d;
                    out[to..to + d].copy_from_slice(&v[from..from + d]);
                }
            }
        }
        self.write_bf16(dst, &out)
    }

    fn attention_prefill(&mut self, q: Buf, k: Buf, v: Buf, o: Buf, a: Attn) -> Result<(), GpuError> {
        let shape = attn_shape(&a);
        let qv = self.read_bf16(q, a.batch * a.heads * a.seq * a.head_dim)?;
        let out = r::attention_causal(&qv, &self.cache_rows(k, &a)?, &self.cache_rows(v, &a)?, shape);
        self.write_bf16(o, &out)
    }

    fn attention_decode(&mut self, q: Buf, k: Buf, v: Buf, o: Buf, _ws: Buf, a: Attn) -> Result<(), GpuError> {
        let shape = attn_shape(&a);
        let qv = self.read_bf16(q, a.batch * a.heads * a.head_dim)?;
        let out = r::attention_decode(&qv, &self.cache_rows(k, &a)?, &self.cache_rows(v, &a)?, shape);
        self.write_bf16(o, &out)
    }

    fn silu_gate(&mut self, gate: Buf, up: Buf, out: Buf, n: u64) -> Result<(), GpuError> {
        let y = r::silu_gate(&self.read_bf16(gate, n)?, &self.read_bf16(up, n)?);
        self.write_bf16(out, &y)
    }

    fn add(&mut self, x: Buf, y: Buf, n: u64) -> Result<(), GpuError> {
        let sum: Vec<f32> = self.read_bf16(x, n)?.iter().zip(self.read_bf16(y, n)?).map(|(a, b)| a + b).collect();
        self.write_bf16(x, &sum)
    }

    fn mark(&mut self) -> Result<usize, GpuError> {
        self.marks.push(Instant::now());
        Ok(self.marks.len() - 1)
    }

    fn elapsed_ms(&mut self, from: usize, to: usize) -> Result<f64, GpuError> {
        match (self.marks.get(from), self.marks.get(to)) {
            (Some(a), Some(b)) => Ok(b.duration_since(*a).as_secs_f64() * 1e3),
            _ => Err(unsupported(format!("timing marks {from}..{to}"))),
        }
    }

    fn sync(&mut self) -> Result<(), GpuError> {
        Ok(())
    }

    fn release_all(&mut self) -> Result<(), GpuError> {
        self.slabs.clear();
        Ok(())
    }
}

mod train;
