//! Per-workload set-up: the launch steps for a shape, the full-size buffers (filled on the device
//! with random values), and the correctness check on a small case against `gpu::reference`.

use super::launch::{self, cfg};
use super::{Arg, CudaGpu, GemmCall, Step};
use crate::gpu::reference::{self as r, AttnShape, Rng};
use crate::gpu::workload::{BandwidthOp, DecodeKernel, GemmDtype, Workload};
use crate::gpu::{Check, GpuError};
use cudarc::driver::CudaSlice;

type Bufs = Vec<CudaSlice<u8>>;

fn grid_for(gpu: &CudaGpu, n: u64, block: u32) -> u32 {
    launch::grid_stride(n, block, gpu.sm_count())
}

/// Launch steps of a workload on given device pointers (`p`, in the order each arm documents).
fn steps(gpu: &mut CudaGpu, w: &Workload, p: &[u64]) -> Result<Vec<Step>, GpuError> {
    use Arg::*;
    let s = |f, c, a| Step::Kernel { f, cfg: c, args: a };
    Ok(match *w {
        // p: src, dst (or sink)
        Workload::Bandwidth { op, bytes } => {
            let n = bytes / 16;
            let g = cfg((gpu.sm_count() * 4, 1, 1), 512, 0);
            match op {
                BandwidthOp::Read => {
                    vec![s(gpu.function("bandwidth", "bandwidth_read")?, g, vec![Ptr(p[0]), U64(n), Ptr(p[1])])]
                }
                BandwidthOp::Write => {
                    vec![s(gpu.function("bandwidth", "bandwidth_write")?, g, vec![Ptr(p[1]), U64(n), U32(7)])]
                }
                BandwidthOp::Copy => {
                    vec![s(gpu.function("bandwidth", "bandwidth_copy")?, g, vec![Ptr(p[0]), Ptr(p[1]), U64(n)])]
                }
            }
        }
        // p: a, b, c (fp8: A stored k×m, as int8; lt.rs checks the shape)
        Workload::Gemm { dtype, m, n, k } => {
            vec![Step::Gemm(GemmCall::packed(dtype, m as i32, n as i32, k as i32, p[0], p[1], p[2]))]
        }
        // p: q, k, v, ws_o, ws_ml, o (v2: then cnt)
        Workload::AttentionDecode { batch, heads, kv_heads, ctx, head_dim, kernel } => {
            let gsize = heads / kv_heads;
            if head_dim != 128 || ![1, 2, 4, 8].contains(&gsize) || heads % kv_heads != 0 {
                return Err(GpuError::Unsupported(format!(
                    "decode attention with head_dim {head_dim}, {gsize} heads per KV head"
                )));
            }
            let scale = launch::attn_scale_log2(head_dim);
            let (q, k, v, ws_o, ws_ml, o) = (Ptr(p[0]), Ptr(p[1]), Ptr(p[2]), Ptr(p[3]), Ptr(p[4]), Ptr(p[5]));
            // The cache holds exactly `ctx` rows per (sequence, KV head): cap = ctx.
            let keys = I32(ctx as i32);
            match kernel {
                DecodeKernel::Split => {
                    let (split_cfg, reduce_cfg, splits) = launch::decode(batch, heads, kv_heads, ctx);
                    let split = gpu.function("attention_decode", &format!("attn_decode_split_g{gsize}"))?;
                    let reduce = gpu.function("attention_decode", "attn_decode_reduce")?;
                    vec![
                        s(split, split_cfg, vec![q, k, v, ws_o, ws_ml, keys, keys, F32(scale)]),
                        s(reduce, reduce_cfg, vec![ws_o, ws_ml, o, I32(splits as i32)]),
                    ]
                }
                DecodeKernel::V2 => {
                    if gpu.info.compute_capability < (8, 0) {
                        return Err(GpuError::Unsupported("decode attention v2 (needs sm_80+)".into()));
                    }
                    let (c, _) = launch::decode_v2(batch, kv_heads, ctx);
                    let name = format!("attn_decode_v2_g{gsize}");
                    let f = gpu.function_with_smem("attention_decode", &name, c.shared_mem_bytes)?;
                    vec![s(f, c, vec![q, k, v, ws_o, ws_ml, Ptr(p[6]), o, keys, keys, F32(scale)])]
                }
            }
        }
        // p: q, k, v, o
        Workload::AttentionPrefill { batch, heads, kv_heads, seq, head_dim, kernel } => {
            let rows = kernel.rows();
            if head_dim != 128 || seq % rows != 0 || heads % kv_heads != 0 {
                return Err(GpuError::Unsupported(format!(
                    "prefill attention with head_dim {head_dim}, seq {seq} (a multiple of {rows})"
                )));
            }
            let c = launch::prefill(batch, heads, seq, kernel);
            let f = gpu.function_with_smem("attention_prefill", kernel.entry(), c.shared_mem_bytes)?;
            let scale = launch::attn_scale_log2(head_dim);
            // K and V hold exactly `seq` rows per (sequence, KV head): kv_cap = seq.
            let (seq, kv_heads) = (seq as i32, kv_heads as i32);
            vec![s(
                f,
                c,
                vec![Ptr(p[0]), Ptr(p[1]), Ptr(p[2]), Ptr(p[3]), I32(seq), I32(kv_heads), I32(seq), F32(scale)],
            )]
        }
        // p: qweight, scales, x, y
        Workload::GemvInt4 { n, k }
        | Workload::GemvInt4Q8 { n, k }
        | Workload::GemvInt4V2 { n, k }
        | Workload::GemvInt8 { n, k } => {
            // Three blocks per SM grid-striding over rows (8 warps × 2 rows per block and pass); x
            // is staged once per block in dynamic shared memory: k·2 bytes, or k + k/4 bytes
            // quantized to int8 (kernels/gemv.cu).
            let (name, c) = match w {
                Workload::GemvInt4 { .. } => ("gemv_int4_bf16", launch::gemv(n, k, gpu.sm_count())?),
                Workload::GemvInt4Q8 { .. } => ("gemv_int4_q8_bf16", launch::gemv_q8(n, k, gpu.sm_count())?),
                Workload::GemvInt4V2 { .. } => ("gemv_int4_v2_bf16", launch::gemv_v2(n, k, gpu.sm_count())?),
                _ => ("gemv_int8_bf16", launch::gemv(n, k, gpu.sm_count())?),
            };
            let f = gpu.function_with_smem("gemv", name, c.shared_mem_bytes)?;
            vec![s(f, c, vec![Ptr(p[0]), Ptr(p[1]), Ptr(p[2]), Ptr(p[3]), I32(n as i32), I32(k as i32)])]
        }
        // p: x, w, y
        Workload::RmsNorm { rows, dim } => {
            let f = gpu.function("rmsnorm", "rmsnorm_bf16")?;
            vec![s(
                f,
                cfg((rows as u32, 1, 1), 256, 0),
                vec![Ptr(p[0]), Ptr(p[1]), Ptr(p[2]), I32(dim as i32), F32(1e-5)],
            )]
        }
        // p: x, cos, sin
        Workload::Rope { tokens, heads, head_dim } => {
            let f = gpu.function("rope", "rope_bf16")?;
            let g = grid_for(gpu, tokens * heads * head_dim / 2, 256);
            // One sequence of `tokens` tokens from position 0: token t uses table row t.
            let (tokens, heads, head_dim) = (tokens as i32, heads as i32, head_dim as i32);
            vec![s(
                f,
                cfg((g, 1, 1), 256, 0),
                vec![Ptr(p[0]), Ptr(p[1]), Ptr(p[2]), I32(tokens), I32(heads), I32(head_dim), I32(tokens), I32(0)],
            )]
        }
        // p: gate, up, out
        Workload::SiluGate { n } => {
            let f = gpu.function("silu_gate", "silu_gate_bf16")?;
            let g = grid_for(gpu, n / 8, 256);
            vec![s(f, cfg((g, 1, 1), 256, 0), vec![Ptr(p[0]), Ptr(p[1]), Ptr(p[2]), U64(n / 8)])]
        }
        // p: params, grads, m, v
        Workload::AdamW { n } => {
            let f = gpu.function("adamw", "adamw_f32")?;
            let g = grid_for(gpu, n / 4, 256);
            let h = ADAMW;
            let (bc1, bc2) = (1.0 - h.beta1.powi(h.step), 1.0 - h.beta2.powi(h.step));
            vec![s(
                f,
                cfg((g, 1, 1), 256, 0),
                vec![
                    Ptr(p[0]),
                    Ptr(p[1]),
                    Ptr(p[2]),
                    Ptr(p[3]),
                    U64(n / 4),
                    F32(h.lr),
                    F32(h.beta1),
                    F32(h.beta2),
                    F32(h.eps),
                    F32(h.weight_decay),
                    F32(bc1),
                    F32(bc2),
                ],
            )]
        }
    })
}

const ADAMW: r::AdamW = r::AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step: 3 };

/// The buffers of a workload: (bytes, fill kind, fill scale) in the order `steps` expects; kind
/// "none" is left as allocated, "zero" is cleared.
fn buffers(w: &Workload) -> Vec<(u64, &'static str, f32)> {
    match *w {
        Workload::Bandwidth { bytes, .. } => vec![(bytes, "u32", 0.0), (bytes, "u32", 0.0)],
        Workload::Gemm { dtype, m, n, k } => {
            let kind = match dtype {
                GemmDtype::Fp32 | GemmDtype::Tf32 => "f32",
                GemmDtype::Fp16 => "f16",
                GemmDtype::Bf16 => "bf16",
                GemmDtype::Int8 => "u32",
                GemmDtype::Fp8 => "e4m3",
            };
            let out = dtype.out_bytes();
            vec![(m * k * dtype.bytes(), kind, 1.0), (k * n * dtype.bytes(), kind, 1.0), (m * n * out, "none", 0.0)]
        }
        Workload::AttentionDecode { batch, heads, kv_heads, ctx, head_dim, kernel } => {
            let splits = match kernel {
                DecodeKernel::Split => launch::decode(batch, heads, kv_heads, ctx).2,
                DecodeKernel::V2 => launch::decode_v2(batch, kv_heads, ctx).1,
            };
            let mut b = vec![
                (2 * batch * heads * head_dim, "bf16", 1.0),
                (2 * batch * kv_heads * ctx * head_dim, "bf16", 1.0),
                (2 * batch * kv_heads * ctx * head_dim, "bf16", 1.0),
                (4 * batch * heads * splits * head_dim, "none", 0.0),
                (8 * batch * heads * splits, "none", 0.0),
                (2 * batch * heads * head_dim, "none", 0.0),
            ];
            if kernel == DecodeKernel::V2 {
                b.push((4 * batch * kv_heads, "zero", 0.0)); // the arrival counters
            }
            b
        }
        Workload::AttentionPrefill { batch, heads, kv_heads, seq, head_dim, .. } => {
            let (q, kv) = (2 * batch * heads * seq * head_dim, 2 * batch * kv_heads * seq * head_dim);
            vec![(q, "bf16", 1.0), (kv, "bf16", 1.0), (kv, "bf16", 1.0), (q, "none", 0.0)]
        }
        Workload::GemvInt4 { n, k } | Workload::GemvInt4Q8 { n, k } | Workload::GemvInt4V2 { n, k } => {
            vec![(n * k / 2, "u32", 0.0), (2 * n * (k / 128), "f16", 0.01), (2 * k, "bf16", 1.0), (2 * n, "none", 0.0)]
        }
        Workload::GemvInt8 { n, k } => {
            vec![(n * k, "u32", 0.0), (2 * n, "f16", 0.001), (2 * k, "bf16", 1.0), (2 * n, "none", 0.0)]
        }
        Workload::RmsNorm { rows, dim } => {
            vec![(2 * rows * dim, "bf16", 1.0), (2 * dim, "bf16", 1.0), (2 * rows * dim, "none", 0.0)]
        }
        Workload::Rope { tokens, heads, head_dim } => {
            vec![
                (2 * tokens * heads * head_dim, "bf16", 1.0),
                (2 * tokens * head_dim, "f32", 1.0),
                (2 * tokens * head_dim, "f32", 1.0),
            ]
        }
        Workload::SiluGate { n } => vec![(2 * n, "bf16", 4.0), (2 * n, "bf16", 1.0), (2 * n, "none", 0.0)],
        Workload::AdamW { n } => {
            vec![(4 * n, "f32", 1.0), (4 * n, "f32", 1.0), (4 * n, "f32", 0.1), (4 * n, "f32", 0.01)]
        }
    }
}

/// Allocates and fills the full-size buffers and returns the steps on them.
pub(super) fn full(gpu: &mut CudaGpu, w: &Workload, seed: u32) -> Result<(Bufs, Vec<Step>), GpuError> {
    let mut bufs = Vec::new();
    let mut ptrs = Vec::new();
    for (i, (bytes, kind, scale)) in buffers(w).into_iter().enumerate() {
        let (mut b, p) = gpu.alloc(&format!("{} buffer {i}", w.name()), bytes)?;
        match kind {
            "none" => {}
            "zero" => gpu.stream.memset_zeros(&mut b).map_err(|e| GpuError::driver("cuMemsetD8", e))?,
            _ => gpu.fill(p, bytes, kind, seed * 16 + i as u32, scale)?,
        }
        bufs.push(b);
        ptrs.push(p);
    }
    let st = steps(gpu, w, &ptrs)?;
    Ok((bufs, st))
}

fn bf16s(v: &[f32]) -> Vec<u16> {
    v.iter().map(|&x| r::f32_to_bf16(x)).collect()
}

fn from_bf16(v: &[u16]) -> Vec<f32> {
    v.iter().map(|&x| r::bf16_to_f32(x)).collect()
}

fn verdict(reference: &str, got: &[f32], want: &[f32], atol: f64, tolerance: f64) -> Check {
    let e = r::max_rel_error(got, want, atol);
    let finite = got.iter().all(|x| x.is_finite());
    Check { reference: reference.into(), max_rel_error: e, tolerance, passed: finite && e <= tolerance }
}

/// Runs the workload's small case on host-made random inputs and compares with the reference.
pub(super) fn check(gpu: &mut CudaGpu, w: &Workload) -> Result<Check, GpuError> {
    let mut rng = Rng::new(0x5eed ^ w.name().len() as u64);
    match *w {
        Workload::Bandwidth { op, .. } => {
            let n = 1 << 18; // u32 words
            let src: Vec<u32> = (0..n).map(|_| rng.next_u32()).collect();
            let (s, ps) = gpu.upload(&src)?;
            let (d, pd) = gpu.upload(&vec![0u32; n])?;
            let small = Workload::Bandwidth { op, bytes: 4 * n as u64 };
            run(gpu, &small, &[ps, pd])?;
            let got = gpu.download(&d)?;
            let want: Vec<u32> = match op {
                BandwidthOp::Copy => src.clone(),
                BandwidthOp::Write => (0..n).map(|i| 7u32 ^ (i as u32 % 4)).collect(),
                BandwidthOp::Read => vec![0; n], // the sink is written only on a hash collision
            };
            let bad = got.iter().zip(&want).filter(|(a, b)| a != b).count();
            drop(s);
            Ok(Check {
                reference: "exact".into(),
                max_rel_error: bad as f64 / n as f64,
                tolerance: 0.0,
                passed: bad == 0,
            })
        }
        Workload::Gemm { dtype, .. } => {
            let (m, n, k) = (96usize, 80usize, 64usize);
            let a: Vec<f32> = (0..m * k).map(|_| (rng.next_u32() % 5) as f32 - 2.0).collect();
            let b: Vec<f32> = (0..k * n).map(|_| (rng.next_u32() % 5) as f32 - 2.0).collect();
            // Column-major C[i][j] = Σ A[i][l]·B[l][j]; int8 stores A transposed (k×m).
            let mut want = vec![0f32; m * n];
            for j in 0..n {
                for i in 0..m {
                    want[j * m + i] = (0..k)
                        .map(|l| {
                            let av = if dtype == GemmDtype::Int8 { a[i * k + l] } else { a[l * m + i] };
                            av * b[j * k + l]
                        })
                        .sum();
                }
            }
            let small = Workload::Gemm { dtype, m: m as u64, n: n as u64, k: k as u64 };
            let got: Vec<f32> = match dtype {
                GemmDtype::Fp32 | GemmDtype::Tf32 => {
                    let ((_a, pa), (_b, pb), (c, pc)) =
                        (gpu.upload(&a)?, gpu.upload(&b)?, gpu.upload(&vec![0f32; m * n])?);
                    run(gpu, &small, &[pa, pb, pc])?;
                    gpu.download(&c)?
                }
                GemmDtype::Fp16 | GemmDtype::Bf16 => {
                    let conv = |v: &[f32]| -> Vec<u16> {
                        v.iter()
                            .map(|&x| if dtype == GemmDtype::Fp16 { r::f32_to_f16(x) } else { r::f32_to_bf16(x) })
                            .collect()
                    };
                    let ((_a, pa), (_b, pb), (c, pc)) =
                        (gpu.upload(&conv(&a))?, gpu.upload(&conv(&b))?, gpu.upload(&vec![0u16; m * n])?);
                    run(gpu, &small, &[pa, pb, pc])?;
                    let out = gpu.download(&c)?;
                    out.iter()
                        .map(|&h| if dtype == GemmDtype::Fp16 { r::f16_to_f32(h) } else { r::bf16_to_f32(h) })
                        .collect()
                }
                GemmDtype::Int8 => {
                    let conv = |v: &[f32]| -> Vec<i8> { v.iter().map(|&x| x as i8).collect() };
                    let ((_a, pa), (_b, pb), (c, pc)) =
                        (gpu.upload(&conv(&a))?, gpu.upload(&conv(&b))?, gpu.upload(&vec![0i32; m * n])?);
                    run(gpu, &small, &[pa, pb, pc])?;
                    gpu.download(&c)?.iter().map(|&x| x as f32).collect()
                }
                // Random E4M3 values rather than small integers: its own check.
                GemmDtype::Fp8 => return check_fp8(gpu, &mut rng),
            };
            Ok(verdict("cpu reference (exact small integers)", &got, &want, 1.0, 1e-6))
        }
        Workload::AttentionDecode { heads, kv_heads, head_dim, kernel, .. } => {
            let s = AttnShape {
                batch: 2,
                heads: heads.min(16) as usize,
                kv_heads: (kv_heads.min(16) as usize).min(heads.min(16) as usize),
                seq: 700,
                head_dim: head_dim as usize,
            };
            let s = AttnShape { kv_heads: s.heads / (heads / kv_heads) as usize, ..s };
            // v2 runs a second call, over 1,040 keys (a last split of 16 keys, where three of the
            // four warps have none), on the arrival counters the first call must leave at zero.
            let seqs: &[usize] = match kernel {
                DecodeKernel::Split => &[700],
                DecodeKernel::V2 => &[700, 1040],
            };
            let (_c, pc) = gpu.upload(&vec![0u32; s.batch * s.kv_heads])?;
            let (mut got, mut want) = (Vec::new(), Vec::new());
            for &seq in seqs {
                let (g, w) = decode_once(gpu, &mut rng, AttnShape { seq, ..s }, kernel, pc)?;
                got.extend(g);
                want.extend(w);
            }
            Ok(verdict("cpu reference", &got, &want, 0.02, 0.05))
        }
        Workload::AttentionPrefill { heads, kv_heads, head_dim, kernel, .. } => {
            let g = (heads / kv_heads).max(1) as usize;
            // Three query tiles: the diagonal, a full one and the first.
            let seq = 3 * kernel.rows() as usize;
            let s = AttnShape { batch: 1, heads: 2 * g, kv_heads: 2, seq, head_dim: head_dim as usize };
            let (q, k, v) = (
                rng.bf16_values(s.heads * s.seq * s.head_dim, 1.0),
                rng.bf16_values(s.kv_heads * s.seq * s.head_dim, 1.0),
                rng.bf16_values(s.kv_heads * s.seq * s.head_dim, 1.0),
            );
            let want = r::attention_causal(&q, &k, &v, s);
            let small = Workload::AttentionPrefill {
                batch: 1,
                heads: s.heads as u64,
                kv_heads: 2,
                seq: seq as u64,
                head_dim,
                kernel,
            };
            let (_q, pq) = gpu.upload(&bf16s(&q))?;
            let (_k, pk) = gpu.upload(&bf16s(&k))?;
            let (_v, pv) = gpu.upload(&bf16s(&v))?;
            let (o, po) = gpu.upload(&vec![0u16; q.len()])?;
            run(gpu, &small, &[pq, pk, pv, po])?;
            Ok(verdict("cpu reference", &from_bf16(&gpu.download(&o)?), &want, 0.02, 0.05))
        }
        // The int8-activation variant is held to its bit-exact CPU twin (the quantization of x is
        // its design, not an error of the kernel).
        Workload::GemvInt4 { k, .. } | Workload::GemvInt4Q8 { k, .. } | Workload::GemvInt4V2 { k, .. } => {
            let n = 64usize;
            let k = k as usize;
            let qw: Vec<u32> = (0..n * k / 8).map(|_| rng.next_u32()).collect();
            let sc: Vec<f32> =
                (0..n * k / 128).map(|_| r::f16_to_f32(r::f32_to_f16(0.01 + 0.01 * rng.uniform().abs()))).collect();
            let x = rng.bf16_values(k, 1.0);
            let (small, want) = match w {
                Workload::GemvInt4 { .. } => {
                    (Workload::GemvInt4 { n: n as u64, k: k as u64 }, r::gemv_int4(&qw, &sc, &x, n, k))
                }
                // v2 computes the same product in another order: the same reference and tolerance.
                Workload::GemvInt4V2 { .. } => {
                    (Workload::GemvInt4V2 { n: n as u64, k: k as u64 }, r::gemv_int4(&qw, &sc, &x, n, k))
                }
                _ => (Workload::GemvInt4Q8 { n: n as u64, k: k as u64 }, r::gemv_int4_q8(&qw, &sc, &x, n, k)),
            };
            let (_a, pa) = gpu.upload(&qw)?;
            let (_b, pb) = gpu.upload(&sc.iter().map(|&v| r::f32_to_f16(v)).collect::<Vec<u16>>())?;
            let (_c, pc) = gpu.upload(&bf16s(&x))?;
            let (y, py) = gpu.upload(&vec![0u16; n])?;
            run(gpu, &small, &[pa, pb, pc, py])?;
            Ok(verdict("cpu reference", &from_bf16(&gpu.download(&y)?), &want, 0.05, 0.02))
        }
        Workload::GemvInt8 { k, .. } => {
            let n = 64usize;
            let k = k as usize;
            let q: Vec<i8> = (0..n * k).map(|_| rng.next_u32() as i8).collect();
            let sc: Vec<f32> =
                (0..n).map(|_| r::f16_to_f32(r::f32_to_f16(0.001 + 0.001 * rng.uniform().abs()))).collect();
            let x = rng.bf16_values(k, 1.0);
            let want = r::gemv_int8(&q, &sc, &x, n, k);
            let (_a, pa) = gpu.upload(&q)?;
            let (_b, pb) = gpu.upload(&sc.iter().map(|&v| r::f32_to_f16(v)).collect::<Vec<u16>>())?;
            let (_c, pc) = gpu.upload(&bf16s(&x))?;
            let (y, py) = gpu.upload(&vec![0u16; n])?;
            run(gpu, &Workload::GemvInt8 { n: n as u64, k: k as u64 }, &[pa, pb, pc, py])?;
            Ok(verdict("cpu reference", &from_bf16(&gpu.download(&y)?), &want, 0.05, 0.02))
        }
        Workload::RmsNorm { dim, .. } => {
            let (rows, d) = (4usize, dim as usize);
            let (x, wt) = (rng.bf16_values(rows * d, 2.0), rng.bf16_values(d, 1.0));
            let want = r::rmsnorm(&x, &wt, d, 1e-5);
            let (_x, px) = gpu.upload(&bf16s(&x))?;
            let (_w, pw) = gpu.upload(&bf16s(&wt))?;
            let (y, py) = gpu.upload(&vec![0u16; rows * d])?;
            run(gpu, &Workload::RmsNorm { rows: rows as u64, dim }, &[px, pw, py])?;
            Ok(verdict("cpu reference", &from_bf16(&gpu.download(&y)?), &want, 0.01, 0.02))
        }
        Workload::Rope { heads, head_dim, .. } => {
            let (t, h, d) = (16usize, heads.min(8) as usize, head_dim as usize);
            let x = rng.bf16_values(t * h * d, 1.0);
            let ang: Vec<f32> = (0..t * d / 2)
                .map(|i| (i / (d / 2)) as f32 * 10f32.powf(-((i % (d / 2)) as f32) / (d / 2) as f32))
                .collect();
            let (cos, sin): (Vec<f32>, Vec<f32>) = ang.iter().map(|a| (a.cos(), a.sin())).unzip();
            let want = r::rope(&x, &cos, &sin, h, d);
            let (xb, px) = gpu.upload(&bf16s(&x))?;
            let (_c, pc) = gpu.upload(&cos)?;
            let (_s, ps) = gpu.upload(&sin)?;
            run(gpu, &Workload::Rope { tokens: t as u64, heads: h as u64, head_dim }, &[px, pc, ps])?;
            Ok(verdict("cpu reference", &from_bf16(&gpu.download(&xb)?), &want, 0.01, 0.02))
        }
        Workload::SiluGate { .. } => {
            let n = 8192usize;
            let (g, u) = (rng.bf16_values(n, 4.0), rng.bf16_values(n, 1.0));
            let want = r::silu_gate(&g, &u);
            let (_g, pg) = gpu.upload(&bf16s(&g))?;
            let (_u, pu) = gpu.upload(&bf16s(&u))?;
            let (o, po) = gpu.upload(&vec![0u16; n])?;
            run(gpu, &Workload::SiluGate { n: n as u64 }, &[pg, pu, po])?;
            Ok(verdict("cpu reference", &from_bf16(&gpu.download(&o)?), &want, 0.01, 0.02))
        }
        Workload::AdamW { .. } => {
            let n = 8192usize;
            let (mut p, g) = (
                (0..n).map(|_| rng.uniform()).collect::<Vec<f32>>(),
                (0..n).map(|_| rng.uniform()).collect::<Vec<f32>>(),
            );
            let mut m: Vec<f32> = (0..n).map(|_| rng.uniform() * 0.1).collect();
            let mut v: Vec<f32> = (0..n).map(|_| rng.uniform().abs() * 0.01).collect();
            let (pb, pp) = gpu.upload(&p)?;
            let (_g, pg) = gpu.upload(&g)?;
            let (_m, pm) = gpu.upload(&m)?;
            let (_v, pv) = gpu.upload(&v)?;
            run(gpu, &Workload::AdamW { n: n as u64 }, &[pp, pg, pm, pv])?;
            r::adamw(&mut p, &g, &mut m, &mut v, ADAMW);
            Ok(verdict("cpu reference", &gpu.download(&pb)?, &p, 1e-3, 1e-4))
        }
    }
}

/// One decode call through `kernel` on fresh random q, K and V of shape `s` (K and V hold exactly
/// `s.seq` rows), with v2's arrival counters at `cnt`: the output and the CPU reference.
fn decode_once(
    gpu: &mut CudaGpu,
    rng: &mut Rng,
    s: AttnShape,
    kernel: DecodeKernel,
    cnt: u64,
) -> Result<(Vec<f32>, Vec<f32>), GpuError> {
    let (q, k, v) = (
        rng.bf16_values(s.batch * s.heads * s.head_dim, 1.0),
        rng.bf16_values(s.batch * s.kv_heads * s.seq * s.head_dim, 1.0),
        rng.bf16_values(s.batch * s.kv_heads * s.seq * s.head_dim, 1.0),
    );
    let want = r::attention_decode(&q, &k, &v, s);
    let (batch, heads, kv_heads, ctx) = (s.batch as u64, s.heads as u64, s.kv_heads as u64, s.seq as u64);
    let small = Workload::AttentionDecode { batch, heads, kv_heads, ctx, head_dim: s.head_dim as u64, kernel };
    let splits = launch::decode(batch, heads, kv_heads, ctx).2; // at least v2's
    let (_q, pq) = gpu.upload(&bf16s(&q))?;
    let (_k, pk) = gpu.upload(&bf16s(&k))?;
    let (_v, pv) = gpu.upload(&bf16s(&v))?;
    let (_wo, pwo) = gpu.upload(&vec![0f32; s.batch * s.heads * splits as usize * s.head_dim])?;
    let (_wm, pwm) = gpu.upload(&vec![0f32; s.batch * s.heads * splits as usize * 2])?;
    let (o, po) = gpu.upload(&vec![0u16; s.batch * s.heads * s.head_dim])?;
    run(gpu, &small, &[pq, pk, pv, pwo, pwm, po, cnt])?;
    Ok((from_bf16(&gpu.download(&o)?), want))
}

/// FP8: A (stored k×m, row i of A contiguous) and B (k×n) hold random E4M3 bytes made as
/// `fill_e4m3` makes them (|v| 0.125 to 1.875); the reference decodes them and sums in f64. The
/// bf16 output rounds to within 2⁻⁹ relative, so atol 1 (typical |D| ≈ 6 at k = 128) and
/// tolerance 1e-2 pass rounding with 5× margin while a wrong layout or decode errs by O(1).
/// m ≠ n ≠ k, all multiples of 16, so a swapped dimension or leading dimension shows.
fn check_fp8(gpu: &mut CudaGpu, rng: &mut Rng) -> Result<Check, GpuError> {
    let (m, n, k) = (256usize, 192usize, 128usize);
    let mut e4m3 = |len: usize| -> Vec<u8> {
        (0..len / 4).flat_map(|_| r::e4m3_fill_word(rng.next_u32()).to_le_bytes()).collect()
    };
    let (a, b) = (e4m3(m * k), e4m3(k * n));
    let decode = |v: &[u8]| -> Vec<f64> { v.iter().map(|&x| r::e4m3_to_f32(x) as f64).collect() };
    let (af, bf) = (decode(&a), decode(&b));
    let mut want = vec![0f32; m * n];
    for j in 0..n {
        for i in 0..m {
            want[j * m + i] = (0..k).map(|l| af[i * k + l] * bf[j * k + l]).sum::<f64>() as f32;
        }
    }
    let ((_a, pa), (_b, pb), (d, pd)) = (gpu.upload(&a)?, gpu.upload(&b)?, gpu.upload(&vec![0u16; m * n])?);
    let small = Workload::Gemm { dtype: GemmDtype::Fp8, m: m as u64, n: n as u64, k: k as u64 };
    run(gpu, &small, &[pa, pb, pd])?;
    Ok(verdict("cpu reference (e4m3 inputs, f64)", &from_bf16(&gpu.download(&d)?), &want, 1.0, 1e-2))
}

fn run(gpu: &mut CudaGpu, w: &Workload, ptrs: &[u64]) -> Result<(), GpuError> {
    for s in steps(gpu, w, ptrs)? {
        gpu.run_step(&s)?;
    }
    gpu.sync()
}
