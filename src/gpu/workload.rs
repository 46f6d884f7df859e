//! What the benchmark runs: one [`Workload`] per kernel and size, with the bytes it must move and
//! the floating-point operations it does, so a time becomes GB/s or TFLOPS.

use serde::Serialize;

/// A GEMM data type: cuBLAS GemmEx for all but fp8, which runs through cuBLASLt (E4M3 inputs,
/// bf16 output, fp32 accumulation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GemmDtype {
    Fp32,
    Tf32,
    Fp16,
    Bf16,
    Int8,
    /// FP8 E4M3 inputs, bf16 output (sm_89+).
    Fp8,
}

impl GemmDtype {
    /// The catalog key (`crate::catalog::gpus::Tflops::get`).
    pub fn key(self) -> &'static str {
        match self {
            GemmDtype::Fp32 => "fp32",
            GemmDtype::Tf32 => "tf32",
            GemmDtype::Fp16 => "fp16",
            GemmDtype::Bf16 => "bf16",
            GemmDtype::Int8 => "int8",
            GemmDtype::Fp8 => "fp8",
        }
    }
    /// Bytes per input element.
    pub fn bytes(self) -> u64 {
        match self {
            GemmDtype::Fp32 | GemmDtype::Tf32 => 4,
            GemmDtype::Fp16 | GemmDtype::Bf16 => 2,
            GemmDtype::Int8 | GemmDtype::Fp8 => 1,
        }
    }
    /// Bytes per output element as the GEMM writes it: fp32, int32 for int8, the input type for
    /// fp16 and bf16, bf16 for fp8.
    pub fn out_bytes(self) -> u64 {
        match self {
            GemmDtype::Fp32 | GemmDtype::Tf32 | GemmDtype::Int8 => 4,
            GemmDtype::Fp16 | GemmDtype::Bf16 | GemmDtype::Fp8 => 2,
        }
    }
    /// Output bytes per element that [`Workload::bytes`] and [`Workload::footprint_bytes`] count:
    /// 4 for every type but fp8 (fp16 and bf16 write 2, but their rows have always counted 4, and
    /// recorded profiles in `data/measurements/` carry those numbers), the real 2 for fp8.
    fn accounted_out_bytes(self) -> u64 {
        if self == GemmDtype::Fp8 {
            self.out_bytes()
        } else {
            4
        }
    }
}

/// Which causal prefill attention kernel of `kernels/attention_prefill.cu` a case runs (its
/// header describes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PrefillKernel {
    /// `attn_prefill_bf16`: 64 query rows per block, 4 warps × 16 rows.
    Br64,
    /// `attn_prefill_br128_bf16`: 128 rows per block, 8 warps × 16 rows (a candidate).
    Br128,
    /// `attn_prefill_w32_bf16`: 128 rows per block, 4 warps × 32 rows, Q in shared memory (a
    /// candidate).
    W32,
}

impl PrefillKernel {
    /// The `extern "C"` entry point.
    pub fn entry(self) -> &'static str {
        match self {
            PrefillKernel::Br64 => "attn_prefill_bf16",
            PrefillKernel::Br128 => "attn_prefill_br128_bf16",
            PrefillKernel::W32 => "attn_prefill_w32_bf16",
        }
    }

    /// Query rows per block; the sequence must be a multiple.
    pub const fn rows(self) -> u64 {
        match self {
            PrefillKernel::Br64 => 64,
            PrefillKernel::Br128 | PrefillKernel::W32 => 128,
        }
    }

    /// The word the case name carries before the shape: none for `Br64`, whose name recorded
    /// profiles and scripts/device-check.sh already use.
    fn name_tag(self) -> &'static str {
        match self {
            PrefillKernel::Br64 => "",
            PrefillKernel::Br128 => "br128 ",
            PrefillKernel::W32 => "w32 ",
        }
    }
}

/// Which decode attention kernels of `kernels/attention_decode.cu` a case runs (its header
/// describes each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DecodeKernel {
    /// `attn_decode_split_g{G}` over 256-key splits, then `attn_decode_reduce`: two launches.
    Split,
    /// `attn_decode_v2_g{G}`: 512-key splits, K and V streamed through shared memory with
    /// cp.async, scores and P·V on tensor cores, the last split block of each (sequence, KV head)
    /// merges the splits: one launch, sm_80+ (a candidate).
    V2,
}

impl DecodeKernel {
    /// The word the case name carries before the shape: none for `Split`, whose name recorded
    /// profiles and scripts/device-check.sh already use.
    fn name_tag(self) -> &'static str {
        match self {
            DecodeKernel::Split => "",
            DecodeKernel::V2 => "v2 ",
        }
    }
}

/// One benchmark case. Sizes are element counts unless a name says bytes.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Workload {
    /// Read, write or copy `bytes` per buffer with 16-byte accesses.
    Bandwidth { op: BandwidthOp, bytes: u64 },
    /// C = A·B, m×k by k×n, through cuBLAS (fp8: cuBLASLt).
    Gemm { dtype: GemmDtype, m: u64, n: u64, k: u64 },
    /// One decode step of attention over a bf16 KV cache of `ctx` tokens, through `kernel`.
    AttentionDecode { batch: u64, heads: u64, kv_heads: u64, ctx: u64, head_dim: u64, kernel: DecodeKernel },
    /// Causal prefill attention, bf16, `seq` tokens, through `kernel`.
    AttentionPrefill { batch: u64, heads: u64, kv_heads: u64, seq: u64, head_dim: u64, kernel: PrefillKernel },
    /// y = W·x with 4-bit weights (group 128, fp16 scales), n rows × k.
    GemvInt4 { n: u64, k: u64 },
    /// The same 4-bit weights times x quantized to int8 per 32 values (dp4a).
    GemvInt4Q8 { n: u64, k: u64 },
    /// The same product as `GemvInt4`, three instructions per weight (`gemv_int4_v2_bf16`).
    GemvInt4V2 { n: u64, k: u64 },
    /// y = W·x with int8 weights (per-row fp16 scale), n rows × k.
    GemvInt8 { n: u64, k: u64 },
    /// RMSNorm over `rows` rows of `dim`, bf16.
    RmsNorm { rows: u64, dim: u64 },
    /// Rotary embedding in place, bf16.
    Rope { tokens: u64, heads: u64, head_dim: u64 },
    /// silu(gate)·up over `n` bf16 elements.
    SiluGate { n: u64 },
    /// One AdamW step over `n` fp32 parameters.
    AdamW { n: u64 },
}

/// Which bandwidth pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BandwidthOp {
    Read,
    Write,
    Copy,
}

/// Whether a workload is judged by bytes or by operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Bound {
    Memory,
    Compute,
}

impl Workload {
    /// A short unique name, e.g. `gemm bf16 8192³`.
    pub fn name(&self) -> String {
        match self {
            Workload::Bandwidth { op, .. } => format!("bandwidth {}", format!("{op:?}").to_lowercase()),
            Workload::Gemm { dtype, m, n, k } if m == n && n == k => format!("gemm {} {m}³", dtype.key()),
            Workload::Gemm { dtype, m, n, k } => format!("gemm {} {m}×{n}×{k}", dtype.key()),
            Workload::AttentionDecode { batch, heads, kv_heads, ctx, kernel, .. } => {
                let tag = kernel.name_tag();
                format!("attention decode {tag}b{batch} h{heads}/{kv_heads} ctx {ctx}")
            }
            Workload::AttentionPrefill { batch, heads, kv_heads, seq, head_dim, kernel } => {
                let tag = kernel.name_tag();
                format!("attention prefill {tag}b{batch} h{heads}/{kv_heads} seq {seq} d{head_dim} causal")
            }
            Workload::GemvInt4 { n, k } => format!("gemv int4 g128 {n}×{k}"),
            Workload::GemvInt4Q8 { n, k } => format!("gemv int4×q8 g128 {n}×{k}"),
            Workload::GemvInt4V2 { n, k } => format!("gemv int4 v2 g128 {n}×{k}"),
            Workload::GemvInt8 { n, k } => format!("gemv int8 {n}×{k}"),
            Workload::RmsNorm { rows, dim } => format!("rmsnorm {rows}×{dim}"),
            Workload::Rope { tokens, heads, head_dim } => format!("rope {tokens}×{heads}×{head_dim}"),
            Workload::SiluGate { n } => format!("silu-gate {n}"),
            Workload::AdamW { n } => format!("adamw {n}"),
        }
    }

    /// Bytes the workload must move to and from device memory per launch.
    pub fn bytes(&self) -> u64 {
        match *self {
            Workload::Bandwidth { op: BandwidthOp::Copy, bytes } => 2 * bytes,
            Workload::Bandwidth { bytes, .. } => bytes,
            Workload::Gemm { dtype, m, n, k } => dtype.bytes() * (m * k + k * n) + dtype.accounted_out_bytes() * m * n,
            // K and V once, q read and o written; the same for every kernel (v2's workspace traffic
            // is not counted, as v1's is not).
            Workload::AttentionDecode { batch, heads, kv_heads, ctx, head_dim, .. } => {
                2 * (2 * batch * kv_heads * ctx * head_dim + 2 * batch * heads * head_dim)
            }
            Workload::AttentionPrefill { batch, heads, kv_heads, seq, head_dim, .. } => {
                2 * seq * head_dim * batch * (2 * heads + 2 * kv_heads)
            }
            Workload::GemvInt4 { n, k } | Workload::GemvInt4Q8 { n, k } | Workload::GemvInt4V2 { n, k } => {
                n * k / 2 + 2 * n * (k / 128) + 2 * k + 2 * n
            }
            Workload::GemvInt8 { n, k } => n * k + 2 * n + 2 * k + 2 * n,
            Workload::RmsNorm { rows, dim } => 2 * (2 * rows * dim + dim),
            Workload::Rope { tokens, heads, head_dim } => 4 * tokens * heads * head_dim + 4 * tokens * head_dim,
            Workload::SiluGate { n } => 6 * n,
            Workload::AdamW { n } => 28 * n,
        }
    }

    /// Floating-point (or integer) operations per launch; 2 per multiply-add.
    pub fn flops(&self) -> u64 {
        match *self {
            Workload::Bandwidth { .. } => 0,
            Workload::Gemm { m, n, k, .. } => 2 * m * n * k,
            Workload::AttentionDecode { batch, heads, ctx, head_dim, .. } => 4 * batch * heads * ctx * head_dim,
            // 4·b·h·s²·d / 2, the convention of scripts/gtlib/kernels.py (causal halves the work).
            Workload::AttentionPrefill { batch, heads, seq, head_dim, .. } => 2 * batch * heads * seq * seq * head_dim,
            Workload::GemvInt4 { n, k }
            | Workload::GemvInt4Q8 { n, k }
            | Workload::GemvInt4V2 { n, k }
            | Workload::GemvInt8 { n, k } => 2 * n * k,
            Workload::RmsNorm { rows, dim } => 4 * rows * dim,
            Workload::Rope { tokens, heads, head_dim } => 3 * tokens * heads * head_dim,
            Workload::SiluGate { n } => 5 * n,
            Workload::AdamW { n } => 16 * n,
        }
    }

    /// What limits it: prefill attention and GEMMs by operations, everything else by bytes.
    pub fn bound(&self) -> Bound {
        match self {
            Workload::Gemm { .. } | Workload::AttentionPrefill { .. } => Bound::Compute,
            _ => Bound::Memory,
        }
    }

    /// The catalog TFLOPS key a compute-bound workload is compared with.
    pub fn peak_key(&self) -> Option<&'static str> {
        match self {
            Workload::Gemm { dtype, .. } => Some(dtype.key()),
            Workload::AttentionPrefill { .. } => Some("bf16"),
            _ => None,
        }
    }

    /// Device memory the full-size case allocates, in bytes (before rotation copies).
    pub fn footprint_bytes(&self) -> u64 {
        match *self {
            Workload::Bandwidth { op: BandwidthOp::Copy, bytes } => 2 * bytes,
            Workload::Gemm { dtype, m, n, k } => dtype.bytes() * (m * k + k * n) + dtype.accounted_out_bytes() * m * n,
            Workload::AttentionPrefill { batch, heads, kv_heads, seq, head_dim, .. } => {
                2 * seq * head_dim * batch * (2 * heads + 2 * kv_heads)
            }
            _ => self.bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefill_flops_match_the_pytorch_convention() {
        // scripts/gtlib/kernels.py: b1 h32 s4096 d128 causal → 137438953472 flops.
        let w = Workload::AttentionPrefill {
            batch: 1,
            heads: 32,
            kv_heads: 32,
            seq: 4096,
            head_dim: 128,
            kernel: PrefillKernel::Br64,
        };
        assert_eq!(w.flops(), 137_438_953_472);
        assert_eq!(w.bound(), Bound::Compute);
    }

    /// scripts/device-check.sh and recorded profiles find the prefill kernels by these names.
    #[test]
    fn prefill_kernels_keep_distinct_names() {
        let name = |kernel| {
            Workload::AttentionPrefill { batch: 1, heads: 32, kv_heads: 32, seq: 4096, head_dim: 128, kernel }.name()
        };
        assert_eq!(name(PrefillKernel::Br64), "attention prefill b1 h32/32 seq 4096 d128 causal");
        assert_eq!(name(PrefillKernel::Br128), "attention prefill br128 b1 h32/32 seq 4096 d128 causal");
        assert_eq!(name(PrefillKernel::W32), "attention prefill w32 b1 h32/32 seq 4096 d128 causal");
        let rows = [PrefillKernel::Br64, PrefillKernel::Br128, PrefillKernel::W32].map(PrefillKernel::rows);
        assert_eq!(rows, [64, 128, 128]);
        let w = Workload::AttentionPrefill {
            batch: 1,
            heads: 8,
            kv_heads: 2,
            seq: 256,
            head_dim: 128,
            kernel: PrefillKernel::W32,
        };
        assert_eq!(serde_json::to_value(w).unwrap()["kernel"], "w32");
    }

    /// scripts/device-check.sh finds the decode kernels by these names; both count the same bytes:
    /// K and V, 2·2·8·8·8192·128 = 268,435,456, plus q and o, 2·2·8·32·128 = 131,072.
    #[test]
    fn decode_kernels_keep_distinct_names_and_the_same_bytes() {
        let w =
            |kernel| Workload::AttentionDecode { batch: 8, heads: 32, kv_heads: 8, ctx: 8192, head_dim: 128, kernel };
        assert_eq!(w(DecodeKernel::Split).name(), "attention decode b8 h32/8 ctx 8192");
        assert_eq!(w(DecodeKernel::V2).name(), "attention decode v2 b8 h32/8 ctx 8192");
        assert_eq!(w(DecodeKernel::Split).bytes(), 268_435_456 + 131_072);
        assert_eq!(w(DecodeKernel::V2).bytes(), w(DecodeKernel::Split).bytes());
        assert_eq!(w(DecodeKernel::V2).flops(), w(DecodeKernel::Split).flops());
        assert_eq!(w(DecodeKernel::V2).bound(), Bound::Memory);
        assert_eq!(serde_json::to_value(w(DecodeKernel::V2)).unwrap()["kernel"], "v2");
    }

    #[test]
    fn bytes_of_copy_count_read_and_write() {
        let w = Workload::Bandwidth { op: BandwidthOp::Copy, bytes: 1 << 30 };
        assert_eq!(w.bytes(), 2 << 30);
        assert_eq!(w.name(), "bandwidth copy");
    }

    /// fp8 reads 1-byte E4M3 A and B and writes a 2-byte bf16 D; the older types keep their
    /// numbers (C counted as 4 bytes).
    #[test]
    fn fp8_gemm_counts_one_byte_inputs_and_a_bf16_output() {
        let s = 8192u64 * 8192;
        let w = Workload::Gemm { dtype: GemmDtype::Fp8, m: 8192, n: 8192, k: 8192 };
        assert_eq!(w.name(), "gemm fp8 8192³");
        assert_eq!(w.bytes(), s + s + 2 * s);
        assert_eq!(w.footprint_bytes(), 268_435_456);
        assert_eq!(w.flops(), 1_099_511_627_776);
        assert_eq!((w.bound(), w.peak_key()), (Bound::Compute, Some("fp8")));
        assert_eq!(serde_json::to_value(w).unwrap()["dtype"], "fp8");
        let bytes = |dtype| Workload::Gemm { dtype, m: 8192, n: 8192, k: 8192 }.bytes();
        assert_eq!(bytes(GemmDtype::Bf16), 2 * 2 * s + 4 * s);
        assert_eq!(bytes(GemmDtype::Fp16), 536_870_912);
        assert_eq!(bytes(GemmDtype::Int8), 2 * s + 4 * s);
        assert_eq!(bytes(GemmDtype::Fp32), 4 * 2 * s + 4 * s);
        let out = [GemmDtype::Fp32, GemmDtype::Tf32, GemmDtype::Fp16, GemmDtype::Bf16, GemmDtype::Int8, GemmDtype::Fp8]
            .map(GemmDtype::out_bytes);
        assert_eq!(out, [4, 4, 2, 2, 4, 2]);
    }

    #[test]
    fn int4_gemv_bytes_include_scales() {
        let w = Workload::GemvInt4 { n: 8192, k: 8192 };
        assert_eq!(w.bytes(), 8192 * 4096 + 2 * 8192 * 64 + 2 * 8192 + 2 * 8192);
    }
}
