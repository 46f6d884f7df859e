//! The training operations of [`CpuLayers`]: the reference every GPU training kernel is checked
//! against, in f64 arithmetic over bf16 storage.

use super::{unsupported, CpuLayers};
use crate::gpu::reference as r;
use crate::gpu::GpuError;
use crate::validate::backend::{Attn, Buf, Linear};

impl CpuLayers {
    fn write_f32(&mut self, b: Buf, v: &[f32]) -> Result<(), GpuError> {
        let bytes = self.bytes_mut(b)?;
        if bytes.len() < 4 * v.len() {
            return Err(unsupported(format!("writing {} f32 into {b:?}", v.len())));
        }
        for (c, x) in bytes.chunks_exact_mut(4).zip(v) {
            c.copy_from_slice(&x.to_le_bytes());
        }
        Ok(())
    }

    fn bf16_weight(&self, w: &Linear) -> Result<Vec<f32>, GpuError> {
        match *w {
            Linear::Bf16 { w, rows, cols } => self.read_bf16(w, rows * cols),
            Linear::Int4 { .. } => Err(unsupported("training a 4-bit weight".into())),
        }
    }
}

impl crate::validate::train_backend::TrainBackend for CpuLayers {
    fn cross_entropy(&mut self, logits: Buf, targets: Buf, losses: Buf, rows: u64, vocab: u64) -> Result<(), GpuError> {
        let l = self.read_bf16(logits, rows * vocab)?;
        let t = self.read_words(targets, rows)?;
        let v = vocab as usize;
        let (mut grad, mut loss) = (Vec::with_capacity(l.len()), Vec::with_capacity(rows as usize));
        for (row, &target) in l.chunks_exact(v).zip(&t) {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let lse = m + row.iter().map(|&x| (x as f64 - m).exp()).sum::<f64>().ln();
            let target = (target % vocab as u32) as usize;
            loss.push((lse - row[target] as f64) as f32);
            grad.extend(
                row.iter().enumerate().map(|(j, &x)| {
                    (((x as f64 - lse).exp() - if j == target { 1.0 } else { 0.0 }) / rows as f64) as f32
                }),
            );
        }
        self.write_f32(losses, &loss)?;
        self.write_bf16(logits, &grad)
    }

    fn linear_backward_input(
        &mut self,
        w: &Linear,
        dy: Buf,
        dx: Buf,
        tokens: u64,
        accumulate: bool,
    ) -> Result<(), GpuError> {
        let (n, k) = (w.rows() as usize, w.cols() as usize);
        let wt = self.bf16_weight(w)?;
        let g = self.read_bf16(dy, tokens * n as u64)?;
        let mut out = if accumulate { self.read_bf16(dx, tokens * k as u64)? } else { vec![0.0; tokens as usize * k] };
        for (grow, orow) in g.chunks_exact(n).zip(out.chunks_exact_mut(k)) {
            for (c, o) in orow.iter_mut().enumerate() {
                *o += (0..n).map(|r| grow[r] as f64 * wt[r * k + c] as f64).sum::<f64>() as f32;
            }
        }
        self.write_bf16(dx, &out)
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
        let (n, k) = (rows as usize, cols as usize);
        let g = self.read_bf16(dy, tokens * rows)?;
        let xs = self.read_bf16(x, tokens * cols)?;
        let mut out = vec![0f32; n * k];
        for r in 0..n {
            for c in 0..k {
                out[r * k + c] =
                    (0..tokens as usize).map(|t| g[t * n + r] as f64 * xs[t * k + c] as f64).sum::<f64>() as f32;
            }
        }
        self.write_bf16(dw, &out)
    }

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
        let d = dim as usize;
        let (xs, ws, gs) = (self.read_bf16(x, rows * dim)?, self.read_bf16(w, dim)?, self.read_bf16(dy, rows * dim)?);
        let mut dxs = self.read_bf16(dx, rows * dim)?;
        let mut dws = vec![0f64; d];
        for r in 0..rows as usize {
            let (xr, gr) = (&xs[r * d..(r + 1) * d], &gs[r * d..(r + 1) * d]);
            let ms = xr.iter().map(|&v| v as f64 * v as f64).sum::<f64>() / d as f64;
            let rstd = 1.0 / (ms + eps as f64).sqrt();
            let dot = (0..d).map(|c| gr[c] as f64 * ws[c] as f64 * xr[c] as f64 * rstd).sum::<f64>() / d as f64;
            for c in 0..d {
                let xhat = xr[c] as f64 * rstd;
                dxs[r * d + c] += (rstd * (gr[c] as f64 * ws[c] as f64 - xhat * dot)) as f32;
                dws[c] += gr[c] as f64 * xhat;
            }
        }
        self.write_bf16(dx, &dxs)?;
        self.write_bf16(dw, &dws.iter().map(|&v| v as f32).collect::<Vec<_>>())
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
        let (g, u, da) = (self.read_bf16(gate, n)?, self.read_bf16(up, n)?, self.read_bf16(d_act, n)?);
        let (mut dg, mut du) = (Vec::with_capacity(n as usize), Vec::with_capacity(n as usize));
        for i in 0..n as usize {
            let s = 1.0 / (1.0 + (-g[i]).exp());
            du.push(da[i] * g[i] * s);
            dg.push(da[i] * u[i] * s * (1.0 + g[i] * (1.0 - s)));
        }
        self.write_bf16(d_gate, &dg)?;
        self.write_bf16(d_up, &du)
    }

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
        let (b, h, kvh, s, d) =
            (a.batch as usize, a.heads as usize, a.kv_heads as usize, a.seq as usize, a.head_dim as usize);
        let group = h / kvh;
        let scale = 1.0 / (d as f64).sqrt();
        let qs = self.read_bf16(q, a.batch * a.heads * a.seq * a.head_dim)?;
        let (ks, vs) = (self.cache_rows(k, &a)?, self.cache_rows(v, &a)?);
        let (os, dos) = (self.read_bf16(o, (b * s * h * d) as u64)?, self.read_bf16(d_o, (b * s * h * d) as u64)?);
        let (mut dqs, mut dks, mut dvs) =
            (vec![0f64; b * s * h * d], vec![0f64; b * s * kvh * d], vec![0f64; b * s * kvh * d]);
        let (mut lses, mut deltas) = (vec![0f32; b * h * s], vec![0f32; b * h * s]);
        for bi in 0..b {
            for hi in 0..h {
                let kv = hi / group;
                let row = |i: usize| ((bi * h + hi) * s + i) * d; // q head-major
                let key = |j: usize| ((bi * kvh + kv) * s + j) * d; // k, v head-major
                let tok = |i: usize| ((bi * s + i) * h + hi) * d; // o, d_o, dq token-major
                let tok_kv = |j: usize| ((bi * s + j) * kvh + kv) * d; // dk, dv token-major
                for i in 0..s {
                    let scores: Vec<f64> = (0..=i)
                        .map(|j| (0..d).map(|e| qs[row(i) + e] as f64 * ks[key(j) + e] as f64).sum::<f64>() * scale)
                        .collect();
                    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                    let lse = m + scores.iter().map(|x| (x - m).exp()).sum::<f64>().ln();
                    let delta: f64 = (0..d).map(|e| dos[tok(i) + e] as f64 * os[tok(i) + e] as f64).sum();
                    lses[(bi * h + hi) * s + i] = lse as f32;
                    deltas[(bi * h + hi) * s + i] = delta as f32;
                    for (j, sc) in scores.iter().enumerate() {
                        let p = (sc - lse).exp();
                        let dp: f64 = (0..d).map(|e| dos[tok(i) + e] as f64 * vs[key(j) + e] as f64).sum();
                        let ds = p * (dp - delta);
                        for e in 0..d {
                            dqs[tok(i) + e] += scale * ds * ks[key(j) + e] as f64;
                            dks[tok_kv(j) + e] += scale * ds * qs[row(i) + e] as f64;
                            dvs[tok_kv(j) + e] += p * dos[tok(i) + e] as f64;
                        }
                    }
                }
            }
        }
        let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
        self.write_bf16(dq, &f(dqs))?;
        self.write_bf16(dk, &f(dks))?;
        self.write_bf16(dv, &f(dvs))?;
        let half = (b * h * s * 4) as u64;
        self.write_f32(Buf { bytes: half, ..ws }, &lses)?;
        self.write_f32(ws.skip(half), &deltas)
    }

    fn embed_backward(&mut self, ids: Buf, dx: Buf, d_table: Buf, tokens: u64, hidden: u64) -> Result<(), GpuError> {
        let ids = self.read_words(ids, tokens)?;
        let g = self.read_bf16(dx, tokens * hidden)?;
        let h = hidden as usize;
        for (t, &id) in ids.iter().enumerate() {
            let row = d_table.skip(id as u64 * hidden * 2);
            let mut cur = self.read_bf16(row, hidden)?;
            for (c, v) in cur.iter_mut().enumerate() {
                *v += g[t * h + c];
            }
            self.write_bf16(row, &cur)?;
        }
        Ok(())
    }

    fn zero(&mut self, buf: Buf) -> Result<(), GpuError> {
        self.bytes_mut(buf)?.fill(0);
        Ok(())
    }

    fn widen(&mut self, src: Buf, dst: Buf, n: u64) -> Result<(), GpuError> {
        let v = self.read_bf16(src, n)?;
        self.write_f32(dst, &v)
    }

    fn adamw_mixed(
        &mut self,
        weight: Buf,
        grad: Buf,
        master: Buf,
        m: Buf,
        v: Buf,
        n: u64,
        h: r::AdamW,
    ) -> Result<(), GpuError> {
        let g = self.read_bf16(grad, n)?;
        let (mut p, mut mm, mut vv) = (self.read_f32(master, n)?, self.read_f32(m, n)?, self.read_f32(v, n)?);
        r::adamw(&mut p, &g, &mut mm, &mut vv, h);
        self.write_f32(master, &p)?;
        self.write_f32(m, &mm)?;
        self.write_f32(v, &vv)?;
        self.write_bf16(weight, &p)
    }
}
