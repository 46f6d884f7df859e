// gemv.cu — decode-path matrix-vector products y = W·x with quantized weights (bf16 x and y).
//
// gemv_int4_bf16: GPTQ/AWQ-like symmetric 4-bit with one fp16 scale per group of 128 along k.
//   qweight u32 [n][k/8]: word j of row r holds k = 8j..8j+7, nibble i (bits 4i..4i+3) is k = 8j+i;
//   w[r][k] = (nibble − 8) · scale[r][k/128]; scales f16 [n][k/128].
// gemv_int8_bf16: int8 [n][k] row-major with one fp16 scale per row: w[r][k] = q[r][k] · scale[r].
// Two candidates beside gemv_int4_bf16 (bench times all three): gemv_int4_q8_bf16 (x quantized to
// int8, dp4a) and gemv_int4_v2_bf16 (exact, three instructions per weight); see each below.
//
// Decode GEMV is a pure weight stream, so the kernel is organised to keep many loads in flight
// and to do nothing else between them: x (k ≤ GEMV_MAX_K) is staged once per block in dynamic
// shared memory of k·2 bytes (the host passes shared_mem_bytes = k·2 and raises the function's
// dynamic shared-memory limit when k·2 > 48 KiB); each warp then streams GEMV_ROWS rows at a time,
// every lane taking 16-byte chunks (GEMV_UNROLL per row per step, all issued before any
// arithmetic), and reduces with warp shuffles only: no block-wide synchronisation inside the row
// loop. Launch with a few blocks per SM (grid-stride over rows; src/gpu/cuda/setup.rs and
// src/gpu/cuda/layer.rs). Weights stream with __ldcs (read once, evict first).
// The int4 dequantisation stays in fp32: doing it in f16 pairs (two weights per instruction)
// failed the correctness check on an H200 even with f16 sums of only 8 products (2.05e-2 > 2e-2;
// data/measurements/device/2026-11-27-h200-bench-3 and -4).
#define GEMV_THREADS 256
#define GEMV_WARPS (GEMV_THREADS / 32)
#define GEMV_ROWS 2
#define GEMV_UNROLL 4
#define GEMV_MAX_K 32768  // 64 KiB of x; src/gpu/cuda/launch.rs GEMV_MAX_K

// Copies x (k bf16, k a multiple of 8, 16-byte aligned) into shared memory (k·2 bytes, dynamic).
__device__ __forceinline__ void gemv_stage_x(const bf16_t* __restrict__ x, uint4* xs, int k) {
  const uint4* src = reinterpret_cast<const uint4*>(x);
  for (int i = threadIdx.x; i < k / 8; i += GEMV_THREADS) xs[i] = src[i];
  __syncthreads();
}

// Eight bf16 of x from shared memory as floats.
__device__ __forceinline__ void gemv_x8(const uint4* xs, int i, float* out) {
  const uint4 v = xs[i];
  out[0] = bf16_lo(v.x); out[1] = bf16_hi(v.x); out[2] = bf16_lo(v.y); out[3] = bf16_hi(v.y);
  out[4] = bf16_lo(v.z); out[5] = bf16_hi(v.z); out[6] = bf16_lo(v.w); out[7] = bf16_hi(v.w);
}

__device__ __forceinline__ void gemv_store(const float (&acc)[GEMV_ROWS], int r0, int n_rows, bf16_t* y) {
#pragma unroll
  for (int r = 0; r < GEMV_ROWS; ++r) {
    const float v = warp_sum(acc[r]);
    if ((threadIdx.x & 31) == 0 && r0 + r < n_rows) y[r0 + r] = f32_to_bf16(v);
  }
}

// Issues every load of one step of the 4-bit row loop before any arithmetic: GEMV_UNROLL chunks
// (32 weights, one uint4) of each of the warp's GEMV_ROWS rows from lane c0, and their group scales.
__device__ __forceinline__ void gemv_load_int4(const uint4* __restrict__ qw, const f16_t* __restrict__ scales,
                                               int r0, int c0, int n_rows, int k,
                                               uint4 (&w)[GEMV_UNROLL][GEMV_ROWS], float (&s)[GEMV_UNROLL][GEMV_ROWS]) {
  const int chunks = k / 32, groups = k / 128;
#pragma unroll
  for (int u = 0; u < GEMV_UNROLL; ++u)
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) {
      const int c = c0 + 32 * u, row = r0 + r;
      const bool ok = c < chunks && row < n_rows;
      w[u][r] = ok ? __ldcs(qw + (u64)row * chunks + c) : make_uint4(0, 0, 0, 0);
      s[u][r] = ok ? f16_to_f32(scales[(u64)row * groups + c / 4]) : 0.f;
    }
}

// The row loop of the 4-bit GEMVs: each warp takes GEMV_ROWS rows at a time (grid-stride over
// rows), each lane GEMV_UNROLL chunks of 32 weights per step with every load issued first
// (gemv_load_int4); `chunk(c, w, s, acc)` adds chunk c of the warp's rows (their words w and
// group scales s) into acc; warp shuffles reduce acc into y.
template <class Chunk>
__device__ __forceinline__ void gemv_int4_rows(const uint4* __restrict__ qw, const f16_t* __restrict__ scales,
                                               bf16_t* __restrict__ y, int n_rows, int k, Chunk chunk) {
  const int lane = threadIdx.x & 31;
  const int chunks = k / 32;  // a chunk: 32 weights in one uint4
  const int row_step = gridDim.x * GEMV_WARPS * GEMV_ROWS;
  for (int r0 = (blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5)) * GEMV_ROWS; r0 < n_rows; r0 += row_step) {
    float acc[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) acc[r] = 0.f;
    for (int c0 = lane; c0 < chunks; c0 += 32 * GEMV_UNROLL) {
      uint4 w[GEMV_UNROLL][GEMV_ROWS];
      float s[GEMV_UNROLL][GEMV_ROWS];
      gemv_load_int4(qw, scales, r0, c0, n_rows, k, w, s);
#pragma unroll
      for (int u = 0; u < GEMV_UNROLL; ++u) {
        const int c = c0 + 32 * u;
        if (c < chunks) chunk(c, w[u], s[u], acc);
      }
    }
    gemv_store(acc, r0, n_rows, y);
  }
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int4_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  extern __shared__ uint4 xs[];  // k / 8 entries: k·2 bytes of dynamic shared memory
  gemv_stage_x(x, xs, k);
  gemv_int4_rows(qw, scales, y, n_rows, k,
                 [&](int c, const uint4 (&w)[GEMV_ROWS], const float (&s)[GEMV_ROWS], float (&acc)[GEMV_ROWS]) {
                   float xf[32];
#pragma unroll
                   for (int q = 0; q < 4; ++q) gemv_x8(xs, c * 4 + q, xf + 8 * q);
#pragma unroll
                   for (int r = 0; r < GEMV_ROWS; ++r) {
                     const unsigned words[4] = {w[r].x, w[r].y, w[r].z, w[r].w};
                     float part = 0.f;
#pragma unroll
                     for (int j = 0; j < 4; ++j)
#pragma unroll
                       for (int i = 0; i < 8; ++i) {
                         // 0x4B000000 | n is the float 2^23 + n; subtracting 2^23 + 8 leaves n − 8.
                         const float q = __int_as_float(0x4B000000 | ((words[j] >> (4 * i)) & 0xF)) - 8388616.f;
                         part = fmaf(q, xf[j * 8 + i], part);
                       }
                     acc[r] = fmaf(part, s[r], acc[r]);
                   }
                 });
}

// gemv_int4_q8_bf16: the same 4-bit weights, with x quantized first, per 32 values, to int8 with one
// f32 scale d = max|x| / 127 (round to nearest even; llama.cpp's q8 activations), so a 32-weight
// chunk costs 8 dp4a on the raw nibbles instead of 32 dequantize-and-FMA sequences:
//   Σ (q − 8)·x ≈ d · (Σ q·xq − 8·Σ xq).
// Each block quantizes x into dynamic shared memory (k + k/4 bytes): per chunk c two uint4 (the
// bytes that pair with the even nibbles 0, 2, 4, 6 of its four weight words, then with the odd
// ones), then f32 d[k/32], then s32 Σxq[k/32]. The CPU twin is gpu::reference::gemv_int4_q8.
__device__ __forceinline__ int q8_round(float v) {
  int i;
  asm("cvt.rni.s32.f32 %0, %1;" : "=r"(i) : "f"(v));
  return i;
}

// Σ of four unsigned bytes of a times four signed bytes of b, plus c.
__device__ __forceinline__ int dp4a_us(unsigned a, unsigned b, int c) {
  int d;
  asm("dp4a.u32.s32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

__device__ __forceinline__ unsigned pack_s8x4(int a, int b, int c, int d) {
  return (unsigned)(a & 0xff) | ((unsigned)(b & 0xff) << 8) | ((unsigned)(c & 0xff) << 16) | ((unsigned)(d & 0xff) << 24);
}

__device__ __forceinline__ void gemv_stage_q8(const bf16_t* __restrict__ x, uint4* xq, float* xd, int* xsum, int k) {
  const uint4* src = reinterpret_cast<const uint4*>(x);
  for (int c = threadIdx.x; c < k / 32; c += GEMV_THREADS) {
    float v[32];
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const uint4 u = src[c * 4 + q];
      v[8 * q + 0] = bf16_lo(u.x); v[8 * q + 1] = bf16_hi(u.x); v[8 * q + 2] = bf16_lo(u.y); v[8 * q + 3] = bf16_hi(u.y);
      v[8 * q + 4] = bf16_lo(u.z); v[8 * q + 5] = bf16_hi(u.z); v[8 * q + 6] = bf16_lo(u.w); v[8 * q + 7] = bf16_hi(u.w);
    }
    float amax = 0.f;
#pragma unroll
    for (int i = 0; i < 32; ++i) amax = fmaxf(amax, fabsf(v[i]));
    const float inv = amax > 0.f ? 127.f / amax : 0.f;
    int q[32], sum = 0;
#pragma unroll
    for (int i = 0; i < 32; ++i) {
      q[i] = max(-127, min(127, q8_round(v[i] * inv)));
      sum += q[i];
    }
    unsigned e[4], o[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      e[j] = pack_s8x4(q[8 * j], q[8 * j + 2], q[8 * j + 4], q[8 * j + 6]);
      o[j] = pack_s8x4(q[8 * j + 1], q[8 * j + 3], q[8 * j + 5], q[8 * j + 7]);
    }
    xq[2 * c] = make_uint4(e[0], e[1], e[2], e[3]);
    xq[2 * c + 1] = make_uint4(o[0], o[1], o[2], o[3]);
    xd[c] = amax / 127.f;
    xsum[c] = sum;
  }
  __syncthreads();
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int4_q8_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  extern __shared__ uint4 q8s[];  // k + k/4 bytes: see above
  const int chunks = k / 32;
  uint4* xq = q8s;
  float* xd = reinterpret_cast<float*>(q8s + 2 * chunks);
  int* xsum = reinterpret_cast<int*>(xd + chunks);
  gemv_stage_q8(x, xq, xd, xsum, k);
  gemv_int4_rows(qw, scales, y, n_rows, k,
                 [&](int c, const uint4 (&w)[GEMV_ROWS], const float (&s)[GEMV_ROWS], float (&acc)[GEMV_ROWS]) {
                   const uint4 e = xq[2 * c], o = xq[2 * c + 1];
                   const float d = xd[c];
                   const int zero = 8 * xsum[c];
#pragma unroll
                   for (int r = 0; r < GEMV_ROWS; ++r) {
                     const uint4 ww = w[r];
                     int dot = 0;
                     dot = dp4a_us(ww.x & 0x0F0F0F0Fu, e.x, dot);
                     dot = dp4a_us((ww.x >> 4) & 0x0F0F0F0Fu, o.x, dot);
                     dot = dp4a_us(ww.y & 0x0F0F0F0Fu, e.y, dot);
                     dot = dp4a_us((ww.y >> 4) & 0x0F0F0F0Fu, o.y, dot);
                     dot = dp4a_us(ww.z & 0x0F0F0F0Fu, e.z, dot);
                     dot = dp4a_us((ww.z >> 4) & 0x0F0F0F0Fu, o.z, dot);
                     dot = dp4a_us(ww.w & 0x0F0F0F0Fu, e.w, dot);
                     dot = dp4a_us((ww.w >> 4) & 0x0F0F0F0Fu, o.w, dot);
                     acc[r] = fmaf((float)(dot - zero) * d, s[r], acc[r]);
                   }
                 });
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int8_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  extern __shared__ uint4 xs[];  // k / 8 entries: k·2 bytes of dynamic shared memory
  gemv_stage_x(x, xs, k);
  const int lane = threadIdx.x & 31;
  const int chunks = k / 16;  // a chunk: 16 weights in one uint4
  const int row_step = gridDim.x * GEMV_WARPS * GEMV_ROWS;
  for (int r0 = (blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5)) * GEMV_ROWS; r0 < n_rows; r0 += row_step) {
    float acc[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) acc[r] = 0.f;
    for (int c0 = lane; c0 < chunks; c0 += 32 * GEMV_UNROLL) {
      uint4 w[GEMV_UNROLL][GEMV_ROWS];
#pragma unroll
      for (int u = 0; u < GEMV_UNROLL; ++u)
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) {
          const int c = c0 + 32 * u, row = r0 + r;
          w[u][r] = (c < chunks && row < n_rows) ? __ldcs(qw + (u64)row * chunks + c) : make_uint4(0, 0, 0, 0);
        }
#pragma unroll
      for (int u = 0; u < GEMV_UNROLL; ++u) {
        const int c = c0 + 32 * u;
        if (c >= chunks) continue;
        float xf[16];
        gemv_x8(xs, c * 2, xf);
        gemv_x8(xs, c * 2 + 1, xf + 8);
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) {
          const unsigned words[4] = {w[u][r].x, w[u][r].y, w[u][r].z, w[u][r].w};
#pragma unroll
          for (int j = 0; j < 4; ++j)
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              // Sign-flipped byte in the low mantissa of 2^23: (2^23 + b ^ 0x80) − (2^23 + 128) = b.
              const float q = __int_as_float(0x4B000000 | (((words[j] >> (8 * i)) & 0xFF) ^ 0x80)) - 8388736.f;
              acc[r] = fmaf(q, xf[j * 4 + i], acc[r]);
            }
        }
      }
    }
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) {
      const int row = r0 + r;
      acc[r] = row < n_rows ? acc[r] * f16_to_f32(scales[row]) : 0.f;
    }
    gemv_store(acc, r0, n_rows, y);
  }
}

// gemv_int4_v2_bf16: the same weights and result as gemv_int4_bf16 (x stays exact, no int8
// quantization), with three instructions per weight instead of about four and a half:
// - nibble q lands in the top mantissa bits (19..22) under the exponent of 1.0f, one shift and
//   one AND-OR making the exact float 1 + q/16, then one FMA with x: part = Σ (1 + q/16)·x over a
//   32-weight chunk; since Σ (q − 8)·x = 16·part − 24·X with X = Σ x over the chunk, X is
//   computed once per block and each chunk adds s·(16·part − 24·X) (two FMAs per row and chunk);
// - x is staged as f32 (no bf16 unpacking per row) with the chunk sums X behind it: k·4 + k/8
//   bytes of dynamic shared memory (src/gpu/cuda/launch.rs gemv_v2).
// The cancellation in 16·part − 24·X costs ~2^-20 of Σ|x| per chunk: far below bf16 output
// rounding. Checked against the same CPU reference as gemv_int4_bf16 (gpu::reference::gemv_int4).
template <int I>
__device__ __forceinline__ float gemv_unit(unsigned w) {
  // Nibble I (bits 4I..4I+3) moved to bits 19..22: the float 1 + q/16, exactly.
  // (The & 31 keeps the branch not taken from shifting by a negative count.)
  const unsigned t = I <= 4 ? (w << ((19 - 4 * I) & 31)) : (w >> ((4 * I - 19) & 31));
  return __uint_as_float((t & 0x00780000u) | 0x3F800000u);
}

__device__ __forceinline__ float gemv_word_v2(unsigned w, const float* xf) {
  float part = 0.f;
  part = fmaf(gemv_unit<0>(w), xf[0], part);
  part = fmaf(gemv_unit<1>(w), xf[1], part);
  part = fmaf(gemv_unit<2>(w), xf[2], part);
  part = fmaf(gemv_unit<3>(w), xf[3], part);
  part = fmaf(gemv_unit<4>(w), xf[4], part);
  part = fmaf(gemv_unit<5>(w), xf[5], part);
  part = fmaf(gemv_unit<6>(w), xf[6], part);
  part = fmaf(gemv_unit<7>(w), xf[7], part);
  return part;
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int4_v2_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  extern __shared__ float v2s[];  // x as f32 (k), then X per 32-value chunk (k / 32)
  const int chunks = k / 32;
  float* xs = v2s;
  float* xc = v2s + k;
  const uint4* src = reinterpret_cast<const uint4*>(x);
  for (int i = threadIdx.x; i < k / 8; i += GEMV_THREADS) {
    const uint4 v = src[i];
    float4* dst = reinterpret_cast<float4*>(xs + 8 * i);
    dst[0] = make_float4(bf16_lo(v.x), bf16_hi(v.x), bf16_lo(v.y), bf16_hi(v.y));
    dst[1] = make_float4(bf16_lo(v.z), bf16_hi(v.z), bf16_lo(v.w), bf16_hi(v.w));
  }
  __syncthreads();
  for (int c = threadIdx.x; c < chunks; c += GEMV_THREADS) {
    float sum = 0.f;
    for (int j = 0; j < 32; ++j) sum += xs[32 * c + j];
    xc[c] = sum;
  }
  __syncthreads();
  gemv_int4_rows(qw, scales, y, n_rows, k,
                 [&](int c, const uint4 (&w)[GEMV_ROWS], const float (&s)[GEMV_ROWS], float (&acc)[GEMV_ROWS]) {
                   float xf[32];
                   const float4* x4 = reinterpret_cast<const float4*>(xs + 32 * c);
#pragma unroll
                   for (int q = 0; q < 8; ++q) {
                     const float4 v = x4[q];
                     xf[4 * q] = v.x; xf[4 * q + 1] = v.y; xf[4 * q + 2] = v.z; xf[4 * q + 3] = v.w;
                   }
                   const float sum_x = xc[c];
#pragma unroll
                   for (int r = 0; r < GEMV_ROWS; ++r) {
                     const float part = gemv_word_v2(w[r].x, xf) + gemv_word_v2(w[r].y, xf + 8) +
                                        gemv_word_v2(w[r].z, xf + 16) + gemv_word_v2(w[r].w, xf + 24);
                     acc[r] = fmaf(16.f * s[r], part, fmaf(-24.f * s[r], sum_x, acc[r]));
                   }
                 });
}
