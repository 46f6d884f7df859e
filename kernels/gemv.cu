// gemv.cu — decode-path matrix-vector products y = W·x with quantized weights (bf16 x and y).
//
// gemv_int4_bf16: GPTQ/AWQ-like symmetric 4-bit with one fp16 scale per group of 128 along k.
//   qweight u32 [n][k/8]: word j of row r holds k = 8j..8j+7, nibble i (bits 4i..4i+3) is k = 8j+i;
//   w[r][k] = (nibble − 8) · scale[r][k/128]; scales f16 [n][k/128].
// gemv_int8_bf16: int8 [n][k] row-major with one fp16 scale per row: w[r][k] = q[r][k] · scale[r].
//
// Decode GEMV is a pure weight stream, so the kernel is organised to keep many loads in flight
// and to do nothing else between them: x (k ≤ GEMV_MAX_K) is staged once per block in shared
// memory; each warp then streams GEMV_ROWS rows at a time, every lane taking 16-byte chunks
// (GEMV_UNROLL per row per step, all issued before any arithmetic), and reduces with warp
// shuffles only: no block-wide synchronisation inside the row loop. Launch with a grid of about
// two blocks per SM (grid-stride over rows). Weights stream with __ldcs (read once, evict first).
#define GEMV_THREADS 256
#define GEMV_WARPS (GEMV_THREADS / 32)
#define GEMV_ROWS 2
#define GEMV_UNROLL 4
#define GEMV_MAX_K 16384

// Copies x (k bf16, k a multiple of 8) into shared memory.
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

// f16x2 arithmetic by PTX (no cuda_fp16.h under NVRTC from the wheel).
__device__ __forceinline__ unsigned hsub2(unsigned a, unsigned b) {
  unsigned d;
  asm("sub.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}
__device__ __forceinline__ unsigned hfma2(unsigned a, unsigned b, unsigned c) {
  unsigned d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}
__device__ __forceinline__ float h2_sum(unsigned h) {
  return f16_to_f32((f16_t)(h & 0xffffu)) + f16_to_f32((f16_t)(h >> 16));
}

// x for the int4 kernel, staged as f16 pairs in nibble order: for chunk c (32 weights, 4 words),
// word j, shift i (0..3) the pair is (x[32c + 8j + i], x[32c + 8j + i + 4]), matching the two
// nibbles `(word >> 4i) & 0x000F000F` extracts. 16 pairs (64 bytes) per chunk.
__device__ __forceinline__ void gemv_stage_x_pairs(const bf16_t* __restrict__ x, unsigned* xp, int k) {
  for (int p = threadIdx.x; p < k / 2; p += GEMV_THREADS) {
    const int c = p / 16, j = (p % 16) / 4, i = p % 4, base = 32 * c + 8 * j + i;
    xp[p] = (unsigned)f32_to_f16(bf16_to_f32(x[base])) | ((unsigned)f32_to_f16(bf16_to_f32(x[base + 4])) << 16);
  }
  __syncthreads();
}

// Dequantisation costs more instructions than the weight stream allows in fp32, so the int4
// kernel works on f16 pairs: `(w >> 4i) & 0x000F000F | 0x64006400` is the f16 pair (1024 + n_a,
// 1024 + n_b) (the exponent of 1024 leaves one unit per mantissa step); subtracting 1032 gives
// (n − 8) exactly, and one fma.f16x2 multiplies-adds two weights. Only one word's 8 products are
// summed in f16 before the sum moves to fp32: summing a whole chunk's 32 in f16 failed the
// correctness check on an H200 (2.2e-2 > 2e-2 relative error, data/measurements/device/
// 2026-11-27-h200-bench-3).
extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int4_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  __shared__ uint4 xs[GEMV_MAX_K / 8];
  unsigned* xp = reinterpret_cast<unsigned*>(xs);
  gemv_stage_x_pairs(x, xp, k);
  const int lane = threadIdx.x & 31;
  const int chunks = k / 32, groups = k / 128;  // a chunk: 32 weights in one uint4
  const int row_step = gridDim.x * GEMV_WARPS * GEMV_ROWS;
  const unsigned magic = 0x64006400u, bias = 0x64086408u;  // f16 pairs (1024, 1024), (1032, 1032)
  for (int r0 = (blockIdx.x * GEMV_WARPS + (threadIdx.x >> 5)) * GEMV_ROWS; r0 < n_rows; r0 += row_step) {
    float acc[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) acc[r] = 0.f;
    for (int c0 = lane; c0 < chunks; c0 += 32 * GEMV_UNROLL) {
      uint4 w[GEMV_UNROLL][GEMV_ROWS];
      float s[GEMV_UNROLL][GEMV_ROWS];
#pragma unroll
      for (int u = 0; u < GEMV_UNROLL; ++u)
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) {
          const int c = c0 + 32 * u, row = r0 + r;
          const bool ok = c < chunks && row < n_rows;
          w[u][r] = ok ? __ldcs(qw + (u64)row * chunks + c) : make_uint4(0, 0, 0, 0);
          s[u][r] = ok ? f16_to_f32(scales[(u64)row * groups + c / 4]) : 0.f;
        }
#pragma unroll
      for (int u = 0; u < GEMV_UNROLL; ++u) {
        const int c = c0 + 32 * u;
        if (c >= chunks) continue;
        const uint4* xc = xs + c * 4;  // 16 pairs
        const uint4 xq[4] = {xc[0], xc[1], xc[2], xc[3]};
        const unsigned xv[16] = {xq[0].x, xq[0].y, xq[0].z, xq[0].w, xq[1].x, xq[1].y, xq[1].z, xq[1].w,
                                 xq[2].x, xq[2].y, xq[2].z, xq[2].w, xq[3].x, xq[3].y, xq[3].z, xq[3].w};
#pragma unroll
        for (int r = 0; r < GEMV_ROWS; ++r) {
          const unsigned words[4] = {w[u][r].x, w[u][r].y, w[u][r].z, w[u][r].w};
          float part = 0.f;
#pragma unroll
          for (int j = 0; j < 4; ++j) {
            unsigned word_sum = 0u;  // f16 pair (0, 0): one word's 8 products
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              const unsigned q = hsub2(((words[j] >> (4 * i)) & 0x000F000Fu) | magic, bias);
              word_sum = hfma2(q, xv[j * 4 + i], word_sum);
            }
            part += h2_sum(word_sum);
          }
          acc[r] = fmaf(part, s[u][r], acc[r]);
        }
      }
    }
    gemv_store(acc, r0, n_rows, y);
  }
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int8_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  __shared__ uint4 xs[GEMV_MAX_K / 8];
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
