//! CPU references for every kernel's math, in f32 (f64 accumulation), used by the GPU correctness
//! checks and unit-tested here. Layouts match `kernels/*.cu` exactly (see each file's header).

/// bf16 bits → f32.
pub fn bf16_to_f32(x: u16) -> f32 {
    f32::from_bits((x as u32) << 16)
}

/// f32 → bf16 bits, round to nearest even (NaN stays NaN), as `kernels/common.cuh`.
pub fn f32_to_bf16(f: f32) -> u16 {
    let u = f.to_bits();
    if (u & 0x7fff_ffff) > 0x7f80_0000 {
        return ((u >> 16) | 0x40) as u16;
    }
    ((u + 0x7fff + ((u >> 16) & 1)) >> 16) as u16
}

/// IEEE half bits → f32.
pub fn f16_to_f32(h: u16) -> f32 {
    let sign = ((h >> 15) as u32) << 31;
    let exp = ((h >> 10) & 0x1f) as i32;
    let man = (h & 0x3ff) as u32;
    let v = match exp {
        0 => (man as f32) * 2f32.powi(-24),
        31 => return f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(((exp + 112) as u32) << 23 | (man << 13)),
    };
    f32::from_bits(sign | v.to_bits())
}

/// f32 → IEEE half bits (round to nearest; normal range only, which the references need).
pub fn f32_to_f16(f: f32) -> u16 {
    let sign = ((f.to_bits() >> 16) & 0x8000) as u16;
    let a = f.abs();
    if a < 6.103_515_6e-5 {
        return sign | (a / 2f32.powi(-24)).round() as u16;
    }
    let e = a.log2().floor() as i32;
    let m = ((a / 2f32.powi(e) - 1.0) * 1024.0).round() as u32;
    let (e, m) = if m == 1024 { (e + 1, 0) } else { (e, m) };
    sign | (((e + 15) as u16) << 10) | m as u16
}

/// FP8 E4M3 bits (the OCP "e4m3fn" format cuBLASLt's `CUDA_R_8F_E4M3` reads) → f32: sign, 4
/// exponent bits with bias 7, 3 mantissa bits; exponent 0 is subnormal (m·2⁻⁹); no infinities, and
/// only `S.1111.111` (0x7F, 0xFF) is NaN, so the largest finite value is 0x7E = 1.75·2⁸ = 448.
pub fn e4m3_to_f32(x: u8) -> f32 {
    let sign = if x & 0x80 != 0 { -1.0 } else { 1.0 };
    let (exp, man) = (((x >> 3) & 0xf) as i32, (x & 7) as f32);
    if exp == 15 && man == 7.0 {
        return f32::NAN;
    }
    let v = if exp == 0 { man * 2f32.powi(-9) } else { (1.0 + man / 8.0) * 2f32.powi(exp - 7) };
    sign * v
}

/// Bits `fill_e4m3` (kernels/fill.cu) keeps from a random word, and the bits it sets: per byte,
/// sign and mantissa random, exponent field 0b01xx (4..=7), so every byte is a finite E4M3 value
/// of magnitude 0.125 to 1.875, never NaN.
pub const E4M3_FILL_KEEP: u32 = 0x9f9f_9f9f;
pub const E4M3_FILL_SET: u32 = 0x2020_2020;

/// Four E4M3 values from random bits, as `fill_e4m3` makes them on the device.
pub fn e4m3_fill_word(random: u32) -> u32 {
    (random & E4M3_FILL_KEEP) | E4M3_FILL_SET
}

/// RMSNorm of each row of `x` (rows × dim) with weight `w`.
pub fn rmsnorm(x: &[f32], w: &[f32], dim: usize, eps: f32) -> Vec<f32> {
    let mut y = Vec::with_capacity(x.len());
    for row in x.chunks(dim) {
        let ms = row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>() / dim as f64;
        let inv = 1.0 / (ms + eps as f64).sqrt();
        y.extend(row.iter().zip(w).map(|(&v, &g)| (v as f64 * inv * g as f64) as f32));
    }
    y
}

/// Rotate-half RoPE on x [tokens][heads][head_dim] with cos/sin [tokens][head_dim/2].
pub fn rope(x: &[f32], cos: &[f32], sin: &[f32], heads: usize, head_dim: usize) -> Vec<f32> {
    let half = head_dim / 2;
    let mut y = x.to_vec();
    for (th, v) in y.chunks_mut(head_dim).enumerate() {
        let t = th / heads;
        for j in 0..half {
            let (c, s) = (cos[t * half + j], sin[t * half + j]);
            let (a, b) = (x[th * head_dim + j], x[th * head_dim + j + half]);
            v[j] = a * c - b * s;
            v[j + half] = b * c + a * s;
        }
    }
    y
}

/// silu(gate) · up.
pub fn silu_gate(gate: &[f32], up: &[f32]) -> Vec<f32> {
    gate.iter().zip(up).map(|(&g, &u)| g / (1.0 + (-g).exp()) * u).collect()
}

/// AdamW hyper-parameters for one step `t` (1-based).
#[derive(Clone, Copy, Debug)]
pub struct AdamW {
    pub lr: f32,
    pub beta1: f32,
    pub beta2: f32,
    pub eps: f32,
    pub weight_decay: f32,
    pub step: i32,
}

/// One AdamW step in place on (p, m, v) with gradient g (torch.optim.AdamW semantics).
pub fn adamw(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], h: AdamW) {
    let bc1 = 1.0 - h.beta1.powi(h.step);
    let bc2 = 1.0 - h.beta2.powi(h.step);
    for i in 0..p.len() {
        m[i] = h.beta1 * m[i] + (1.0 - h.beta1) * g[i];
        v[i] = h.beta2 * v[i] + (1.0 - h.beta2) * g[i] * g[i];
        p[i] -= h.lr * h.weight_decay * p[i];
        p[i] -= h.lr * (m[i] / bc1) / ((v[i] / bc2).sqrt() + h.eps);
    }
}

/// 4-bit GEMV: `qweight` u32 [n][k/8] (nibble i of word j = k 8j+i), scales [n][k/128].
pub fn gemv_int4(qweight: &[u32], scales: &[f32], x: &[f32], n: usize, k: usize) -> Vec<f32> {
    (0..n)
        .map(|r| {
            let mut acc = 0f64;
            for kk in 0..k {
                let word = qweight[r * k / 8 + kk / 8];
                let q = ((word >> (4 * (kk % 8))) & 0xf) as i32 - 8;
                acc += q as f64 * scales[r * k / 128 + kk / 128] as f64 * x[kk] as f64;
            }
            acc as f32
        })
        .collect()
}

/// x quantized per 32 values to int8 as `gemv_int4_q8_bf16` does (kernels/gemv.cu): scale
/// d = max|x| / 127, values round-to-nearest-even of x·(127 / max|x|), clamped to ±127; all in f32
/// like the kernel, so the codes match bit for bit. Returns (codes, d per chunk).
pub fn quantize_q8_32(x: &[f32]) -> (Vec<i32>, Vec<f32>) {
    let mut codes = Vec::with_capacity(x.len());
    let mut scales = Vec::with_capacity(x.len() / 32);
    for chunk in x.chunks(32) {
        let amax = chunk.iter().fold(0f32, |m, v| m.max(v.abs()));
        let inv = if amax > 0.0 { 127.0 / amax } else { 0.0 };
        codes.extend(chunk.iter().map(|&v| ((v * inv).round_ties_even() as i32).clamp(-127, 127)));
        scales.push(amax / 127.0);
    }
    (codes, scales)
}

/// The 4-bit GEMV with int8-quantized x (`gemv_int4_q8_bf16`): per 32-weight chunk the integer
/// dot product Σ (q − 8)·xq, times the chunk's x scale and the group's weight scale.
pub fn gemv_int4_q8(qweight: &[u32], scales: &[f32], x: &[f32], n: usize, k: usize) -> Vec<f32> {
    let (xq, xd) = quantize_q8_32(x);
    (0..n)
        .map(|r| {
            let mut acc = 0f64;
            for c in 0..k / 32 {
                let dot: i64 = (0..32)
                    .map(|i| {
                        let kk = 32 * c + i;
                        let word = qweight[r * k / 8 + kk / 8];
                        let q = ((word >> (4 * (kk % 8))) & 0xf) as i64 - 8;
                        q * xq[kk] as i64
                    })
                    .sum();
                acc += dot as f64 * xd[c] as f64 * scales[r * k / 128 + c / 4] as f64;
            }
            acc as f32
        })
        .collect()
}

/// int8 GEMV: `q` [n][k] row-major, one scale per row.
pub fn gemv_int8(q: &[i8], scales: &[f32], x: &[f32], n: usize, k: usize) -> Vec<f32> {
    (0..n)
        .map(|r| {
            let dot: f64 = (0..k).map(|kk| q[r * k + kk] as f64 * x[kk] as f64).sum();
            (dot * scales[r] as f64) as f32
        })
        .collect()
}

/// Shapes for the attention references; layouts [batch][heads][seq][head_dim].
#[derive(Clone, Copy, Debug)]
pub struct AttnShape {
    pub batch: usize,
    pub heads: usize,
    pub kv_heads: usize,
    /// Keys (decode: the cache length; prefill: the sequence).
    pub seq: usize,
    pub head_dim: usize,
}

/// Softmax attention of one query row over keys `0..n_keys` of one KV head.
fn attend(q: &[f32], k: &[f32], v: &[f32], n_keys: usize, d: usize, out: &mut [f32]) {
    let scale = 1.0 / (d as f64).sqrt();
    let scores: Vec<f64> =
        (0..n_keys).map(|j| (0..d).map(|e| q[e] as f64 * k[j * d + e] as f64).sum::<f64>() * scale).collect();
    let m = scores.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let p: Vec<f64> = scores.iter().map(|s| (s - m).exp()).collect();
    let l: f64 = p.iter().sum();
    for (e, o) in out.iter_mut().enumerate().take(d) {
        *o = ((0..n_keys).map(|j| p[j] * v[j * d + e] as f64).sum::<f64>() / l) as f32;
    }
}

/// Decode attention: q [b][h][d], k/v [b][kv_heads][seq][d] → o [b][h][d].
pub fn attention_decode(q: &[f32], k: &[f32], v: &[f32], s: AttnShape) -> Vec<f32> {
    let (d, g) = (s.head_dim, s.heads / s.kv_heads);
    let mut o = vec![0f32; s.batch * s.heads * d];
    for b in 0..s.batch {
        for h in 0..s.heads {
            let kv = (b * s.kv_heads + h / g) * s.seq * d;
            let qi = (b * s.heads + h) * d;
            attend(&q[qi..qi + d], &k[kv..], &v[kv..], s.seq, d, &mut o[qi..qi + d]);
        }
    }
    o
}

/// Causal attention: q/o [b][h][seq][d], k/v [b][kv_heads][seq][d].
pub fn attention_causal(q: &[f32], k: &[f32], v: &[f32], s: AttnShape) -> Vec<f32> {
    let (d, g) = (s.head_dim, s.heads / s.kv_heads);
    let mut o = vec![0f32; q.len()];
    for b in 0..s.batch {
        for h in 0..s.heads {
            let kv = (b * s.kv_heads + h / g) * s.seq * d;
            for i in 0..s.seq {
                let qi = ((b * s.heads + h) * s.seq + i) * d;
                attend(&q[qi..qi + d], &k[kv..], &v[kv..], i + 1, d, &mut o[qi..qi + d]);
            }
        }
    }
    o
}

/// Largest |got − want| / (|want| + atol).
pub fn max_rel_error(got: &[f32], want: &[f32], atol: f64) -> f64 {
    got.iter().zip(want).map(|(&g, &w)| ((g as f64 - w as f64).abs()) / (w.abs() as f64 + atol)).fold(0.0, f64::max)
}

/// A small deterministic generator for test inputs (xorshift64*), uniform in [-1, 1).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 32) as u32
    }
    pub fn uniform(&mut self) -> f32 {
        (self.next_u32() >> 8) as f32 / 8_388_608.0 - 1.0
    }
    /// `n` values uniform in [-scale, scale), rounded to bf16 (so device and host see the same).
    pub fn bf16_values(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| bf16_to_f32(f32_to_bf16(self.uniform() * scale))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bf16_round_trip_rounds_to_nearest_even() {
        assert_eq!(f32_to_bf16(1.0), 0x3f80);
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties to even (1.0).
        assert_eq!(f32_to_bf16(1.0 + 2f32.powi(-8)), 0x3f80);
        assert_eq!(f32_to_bf16(1.0 + 3.0 * 2f32.powi(-8)), 0x3f82);
        assert!(bf16_to_f32(f32_to_bf16(f32::NAN)).is_nan());
    }

    #[test]
    fn f16_round_trip() {
        for v in [0.0f32, 1.0, -2.5, 0.000_123, 65504.0, 0.1] {
            let back = f16_to_f32(f32_to_f16(v));
            assert!((back - v).abs() <= v.abs() * 1e-3 + 1e-7, "{v} -> {back}");
        }
        assert_eq!(f32_to_f16(1.0), 0x3c00);
    }

    #[test]
    fn e4m3_decodes_bit_exactly() {
        for (bits, want) in [
            (0x38u8, 1.0f32),
            (0x40, 2.0),
            (0x3c, 1.5),
            (0x30, 0.5),
            (0x7e, 448.0),
            (0xfe, -448.0),
            (0xb8, -1.0),
            (0x08, 2f32.powi(-6)), // smallest normal
            (0x01, 2f32.powi(-9)), // smallest subnormal
            (0x07, 7.0 * 2f32.powi(-9)),
            (0x86, -6.0 * 2f32.powi(-9)),
            (0x00, 0.0),
        ] {
            assert_eq!(e4m3_to_f32(bits), want, "{bits:#04x}");
        }
        assert!(e4m3_to_f32(0x80) == 0.0 && e4m3_to_f32(0x80).is_sign_negative());
        assert!(e4m3_to_f32(0x7f).is_nan() && e4m3_to_f32(0xff).is_nan());
        // Exponent 15 is an ordinary binade apart from its NaN: 0x78 = 256, 0x7d = 416.
        assert_eq!((e4m3_to_f32(0x78), e4m3_to_f32(0x7d)), (256.0, 416.0));
        let finite = (0..=255u8).filter(|b| e4m3_to_f32(*b).is_finite()).count();
        assert_eq!(finite, 254);
    }

    /// Every byte the fill can make is finite, 0.125 ≤ |v| ≤ 1.875, and both signs occur.
    #[test]
    fn e4m3_fill_bytes_are_finite_and_moderate() {
        let mut seen = std::collections::BTreeSet::new();
        for b in 0..=255u32 {
            let word = e4m3_fill_word(b * 0x0101_0101);
            for byte in word.to_le_bytes() {
                let v = e4m3_to_f32(byte);
                assert!(v.is_finite() && (0.125..=1.875).contains(&v.abs()), "{byte:#04x} -> {v}");
                seen.insert(byte);
            }
        }
        assert_eq!(seen.len(), 64); // sign × 4 exponents × 8 mantissas
        assert!(seen.contains(&0x38) && seen.contains(&0xb8));
        let src = crate::gpu::kernels::family("fill").unwrap().source;
        assert!(src.contains("0x9f9f9f9fu") && src.contains("0x20202020u"), "fill_e4m3 and the mirror disagree");
    }

    #[test]
    fn rmsnorm_of_a_constant_row_is_the_weight() {
        let y = rmsnorm(&[3.0; 4], &[1.0, 2.0, 3.0, 4.0], 4, 0.0);
        for (a, b) in y.iter().zip([1.0, 2.0, 3.0, 4.0]) {
            assert!((a - b).abs() < 1e-6);
        }
    }

    #[test]
    fn rope_rotates_pairs_and_keeps_norm() {
        let x = [1.0, 2.0, 3.0, 4.0];
        let (c, s) = (0.6f32, 0.8f32);
        let y = rope(&x, &[c, c], &[s, s], 1, 4);
        assert!((y[0] - (1.0 * c - 3.0 * s)).abs() < 1e-6);
        assert!((y[2] - (3.0 * c + 1.0 * s)).abs() < 1e-6);
        let n = |v: &[f32]| v.iter().map(|a| a * a).sum::<f32>();
        assert!((n(&x) - n(&y)).abs() < 1e-4);
    }

    /// Codes round half to even and the chunk's largest magnitude maps to ±127.
    #[test]
    fn q8_quantization_matches_the_kernel_rules() {
        let mut x = vec![0f32; 32];
        x[0] = -2.0;
        x[1] = 1.0; // 63.5 → 64 (ties to even)
        x[2] = 3.0 / 127.0 * 2.0; // 3.0 exactly
        let (q, d) = quantize_q8_32(&x);
        assert_eq!((q[0], q[1], q[2], q[3]), (-127, 64, 3, 0));
        assert_eq!(d, vec![2.0 / 127.0]);
        assert_eq!(quantize_q8_32(&[0.0; 32]), (vec![0; 32], vec![0.0]));
    }

    /// The int8-activation GEMV stays within the quantization error of the exact one.
    #[test]
    fn q8_gemv_approximates_the_exact_gemv() {
        let mut rng = Rng::new(7);
        let (n, k) = (4, 256);
        let qw: Vec<u32> = (0..n * k / 8).map(|_| rng.next_u32()).collect();
        let sc: Vec<f32> = (0..n * k / 128).map(|_| 0.01 + 0.01 * rng.uniform().abs()).collect();
        let x = rng.bf16_values(k, 1.0);
        let (exact, approx) = (gemv_int4(&qw, &sc, &x, n, k), gemv_int4_q8(&qw, &sc, &x, n, k));
        let scale = exact.iter().fold(0f32, |m, v| m.max(v.abs()));
        for (a, b) in exact.iter().zip(&approx) {
            assert!((a - b).abs() < 0.02 * scale, "{a} vs {b}");
        }
        assert!(exact.iter().zip(&approx).any(|(a, b)| a != b), "quantization changes something");
    }

    #[test]
    fn silu_gate_values() {
        let y = silu_gate(&[0.0, 1.0], &[5.0, 2.0]);
        assert_eq!(y[0], 0.0);
        assert!((y[1] - 2.0 * 0.731_058_6).abs() < 1e-5);
    }

    #[test]
    fn adamw_first_step_moves_by_lr_times_sign() {
        let (mut p, mut m, mut v) = (vec![1.0f32, 1.0], vec![0.0; 2], vec![0.0; 2]);
        let h = AdamW { lr: 0.1, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.0, step: 1 };
        adamw(&mut p, &[0.5, -2.0], &mut m, &mut v, h);
        assert!((p[0] - 0.9).abs() < 1e-5 && (p[1] - 1.1).abs() < 1e-5, "{p:?}");
    }

    #[test]
    fn int4_gemv_dequantizes_nibbles_minus_eight() {
        // One row, k = 128: nibbles all 9 → weights = (9 − 8)·0.5 = 0.5; x = 1 → y = 64.
        let q = vec![0x9999_9999u32; 16];
        let y = gemv_int4(&q, &[0.5], &[1.0; 128], 1, 128);
        assert_eq!(y, vec![64.0]);
    }

    #[test]
    fn int8_gemv_signed() {
        let y = gemv_int8(&[-1, 2, -128, 127], &[0.5, 2.0], &[1.0, 1.0], 2, 2);
        assert_eq!(y, vec![0.5, -2.0]);
    }

    #[test]
    fn decode_attention_equals_the_last_row_of_causal_attention() {
        let s = AttnShape { batch: 1, heads: 4, kv_heads: 2, seq: 5, head_dim: 8 };
        let mut r = Rng::new(7);
        let (q, k, v) = (r.bf16_values(4 * 5 * 8, 1.0), r.bf16_values(2 * 5 * 8, 1.0), r.bf16_values(2 * 5 * 8, 1.0));
        let full = attention_causal(&q, &k, &v, s);
        let last: Vec<f32> = (0..4).flat_map(|h| q[(h * 5 + 4) * 8..(h * 5 + 5) * 8].to_vec()).collect();
        let dec = attention_decode(&last, &k, &v, s);
        for h in 0..4 {
            let want = &full[(h * 5 + 4) * 8..(h * 5 + 5) * 8];
            assert!(max_rel_error(&dec[h * 8..h * 8 + 8], want, 1e-6) < 1e-6);
        }
        // Row 0 of causal attention sees only key 0: output = v[0] of its KV head.
        assert!(max_rel_error(&full[0..8], &v[0..8], 1e-6) < 1e-6);
    }

    #[test]
    fn rng_is_uniform_ish_and_never_all_zero() {
        let mut r = Rng::new(1);
        let v: Vec<f32> = (0..10_000).map(|_| r.uniform()).collect();
        let mean = v.iter().sum::<f32>() / v.len() as f32;
        assert!(mean.abs() < 0.05 && v.iter().all(|x| (-1.0..1.0).contains(x)));
    }
}
