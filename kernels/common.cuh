// common.cuh — prepended to every kernel family before NVRTC compiles it. Header-free on purpose:
// the NVRTC of the PyPI wheel ships no cuda_bf16.h / cuda_fp16.h / libc, so bf16 and fp16 are
// plain 16-bit integers converted by bit manipulation or one PTX instruction.
typedef unsigned short bf16_t;
typedef unsigned short f16_t;
typedef unsigned long long u64;

__device__ __forceinline__ float bf16_to_f32(bf16_t x) { return __uint_as_float(((unsigned)x) << 16); }

// Round to nearest even; NaN stays NaN.
__device__ __forceinline__ bf16_t f32_to_bf16(float f) {
  unsigned u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (bf16_t)((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (bf16_t)(u >> 16);
}

__device__ __forceinline__ float f16_to_f32(f16_t h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ f16_t f32_to_f16(float f) {
  f16_t h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// Two bf16 packed in one 32-bit word (low half first in memory).
__device__ __forceinline__ float bf16_lo(unsigned w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(unsigned w) { return __uint_as_float(w & 0xffff0000u); }
__device__ __forceinline__ unsigned pack_bf16(float lo, float hi) {
  return (unsigned)f32_to_bf16(lo) | ((unsigned)f32_to_bf16(hi) << 16);
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Deterministic pseudo-random bits (a 32-bit integer hash of index and seed).
__device__ __forceinline__ unsigned hash_u32(u64 i, unsigned seed) {
  unsigned x = (unsigned)i ^ (unsigned)(i >> 32) * 0x9e3779b9u ^ seed * 0x85ebca6bu;
  x ^= x >> 16; x *= 0x7feb352du; x ^= x >> 15; x *= 0x846ca68bu; x ^= x >> 16;
  return x;
}

// Uniform in [-scale, scale).
__device__ __forceinline__ float hash_uniform(u64 i, unsigned seed, float scale) {
  return ((hash_u32(i, seed) >> 8) * (1.0f / 8388608.0f) - 1.0f) * scale;
}

#define HR_INF __int_as_float(0x7f800000)
