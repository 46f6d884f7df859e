// gemv.cu — decode-path matrix-vector products y = W·x with quantized weights (bf16 x and y).
//
// gemv_int4_bf16: GPTQ/AWQ-like symmetric 4-bit with one fp16 scale per group of 128 along k.
//   qweight u32 [n][k/8]: word j of row r holds k = 8j..8j+7, nibble i (bits 4i..4i+3) is k = 8j+i;
//   w[r][k] = (nibble − 8) · scale[r][k/128]; scales f16 [n][k/128].
// gemv_int8_bf16: int8 [n][k] row-major with one fp16 scale per row: w[r][k] = q[r][k] · scale[r].
//
// One block of 256 threads computes GEMV_ROWS rows at a time; each thread owns up to GEMV_MAXCH
// 16-byte chunks of every row (x for those chunks stays in registers), so k ≤ 256·GEMV_MAXCH·(k per
// chunk): 16384 for int4 and int8. Weights stream with __ldcs (read once, evict first).
#define GEMV_THREADS 256
#define GEMV_ROWS 4
#define GEMV_MAXCH 2

__device__ __forceinline__ void gemv_store_rows(float (&acc)[GEMV_ROWS], int r0, int n_rows, bf16_t* y) {
  __shared__ float red[GEMV_ROWS][GEMV_THREADS / 32];
#pragma unroll
  for (int r = 0; r < GEMV_ROWS; ++r) {
    float v = warp_sum(acc[r]);
    if ((threadIdx.x & 31) == 0) red[r][threadIdx.x >> 5] = v;
  }
  __syncthreads();
  if (threadIdx.x < GEMV_ROWS && r0 + (int)threadIdx.x < n_rows) {
    float s = 0.f;
#pragma unroll
    for (int w = 0; w < GEMV_THREADS / 32; ++w) s += red[threadIdx.x][w];
    y[r0 + threadIdx.x] = f32_to_bf16(s);
  }
  __syncthreads();
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int4_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  const int chunks = k / 32, groups = k / 128;
  float xr[GEMV_MAXCH][32];
#pragma unroll
  for (int cc = 0; cc < GEMV_MAXCH; ++cc) {
    const int c = threadIdx.x + cc * GEMV_THREADS;
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      uint4 v = c < chunks ? reinterpret_cast<const uint4*>(x)[c * 4 + q] : make_uint4(0, 0, 0, 0);
      xr[cc][q * 8 + 0] = bf16_lo(v.x); xr[cc][q * 8 + 1] = bf16_hi(v.x);
      xr[cc][q * 8 + 2] = bf16_lo(v.y); xr[cc][q * 8 + 3] = bf16_hi(v.y);
      xr[cc][q * 8 + 4] = bf16_lo(v.z); xr[cc][q * 8 + 5] = bf16_hi(v.z);
      xr[cc][q * 8 + 6] = bf16_lo(v.w); xr[cc][q * 8 + 7] = bf16_hi(v.w);
    }
  }
  for (int r0 = blockIdx.x * GEMV_ROWS; r0 < n_rows; r0 += gridDim.x * GEMV_ROWS) {
    uint4 w[GEMV_ROWS][GEMV_MAXCH];
    float s[GEMV_ROWS][GEMV_MAXCH];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r)
#pragma unroll
      for (int cc = 0; cc < GEMV_MAXCH; ++cc) {
        const int c = threadIdx.x + cc * GEMV_THREADS, row = r0 + r;
        const bool ok = c < chunks && row < n_rows;
        w[r][cc] = ok ? __ldcs(qw + (u64)row * chunks + c) : make_uint4(0x88888888u, 0x88888888u, 0x88888888u, 0x88888888u);
        s[r][cc] = ok ? f16_to_f32(scales[(u64)row * groups + c / 4]) : 0.f;
      }
    float acc[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) {
      acc[r] = 0.f;
#pragma unroll
      for (int cc = 0; cc < GEMV_MAXCH; ++cc) {
        const unsigned words[4] = {w[r][cc].x, w[r][cc].y, w[r][cc].z, w[r][cc].w};
        float part = 0.f;
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int i = 0; i < 8; ++i) {
            const float q = __int_as_float(0x4B000000 | ((words[j] >> (4 * i)) & 0xF)) - 8388616.f;  // nibble − 8
            part = fmaf(q, xr[cc][j * 8 + i], part);
          }
        acc[r] = fmaf(part, s[r][cc], acc[r]);
      }
    }
    gemv_store_rows(acc, r0, n_rows, y);
  }
}

extern "C" __global__ void __launch_bounds__(GEMV_THREADS) gemv_int8_bf16(
    const uint4* __restrict__ qw, const f16_t* __restrict__ scales, const bf16_t* __restrict__ x,
    bf16_t* __restrict__ y, int n_rows, int k) {
  const int chunks = k / 16;
  float xr[2 * GEMV_MAXCH][16];
#pragma unroll
  for (int cc = 0; cc < 2 * GEMV_MAXCH; ++cc) {
    const int c = threadIdx.x + cc * GEMV_THREADS;
#pragma unroll
    for (int q = 0; q < 2; ++q) {
      uint4 v = c < chunks ? reinterpret_cast<const uint4*>(x)[c * 2 + q] : make_uint4(0, 0, 0, 0);
      xr[cc][q * 8 + 0] = bf16_lo(v.x); xr[cc][q * 8 + 1] = bf16_hi(v.x);
      xr[cc][q * 8 + 2] = bf16_lo(v.y); xr[cc][q * 8 + 3] = bf16_hi(v.y);
      xr[cc][q * 8 + 4] = bf16_lo(v.z); xr[cc][q * 8 + 5] = bf16_hi(v.z);
      xr[cc][q * 8 + 6] = bf16_lo(v.w); xr[cc][q * 8 + 7] = bf16_hi(v.w);
    }
  }
  for (int r0 = blockIdx.x * GEMV_ROWS; r0 < n_rows; r0 += gridDim.x * GEMV_ROWS) {
    float acc[GEMV_ROWS];
#pragma unroll
    for (int r = 0; r < GEMV_ROWS; ++r) {
      const int row = r0 + r;
      uint4 w[2 * GEMV_MAXCH];
#pragma unroll
      for (int cc = 0; cc < 2 * GEMV_MAXCH; ++cc) {
        const int c = threadIdx.x + cc * GEMV_THREADS;
        w[cc] = (c < chunks && row < n_rows) ? __ldcs(qw + (u64)row * chunks + c) : make_uint4(0x80808080u, 0x80808080u, 0x80808080u, 0x80808080u);
      }
      float part = 0.f;
#pragma unroll
      for (int cc = 0; cc < 2 * GEMV_MAXCH; ++cc) {
        const unsigned words[4] = {w[cc].x, w[cc].y, w[cc].z, w[cc].w};
#pragma unroll
        for (int j = 0; j < 4; ++j)
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float q = __int_as_float(0x4B000000 | (((words[j] >> (8 * i)) & 0xFF) ^ 0x80)) - 8388736.f;  // signed byte
            part = fmaf(q, xr[cc][j * 4 + i], part);
          }
      }
      acc[r] = row < n_rows ? part * f16_to_f32(scales[row]) : 0.f;
    }
    gemv_store_rows(acc, r0, n_rows, y);
  }
}
