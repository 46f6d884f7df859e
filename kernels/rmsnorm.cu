// rmsnorm.cu — y = x / sqrt(mean(x²) + eps) · w over rows of length d (bf16 in and out, fp32
// math). One block per row; d must be a multiple of 8 (one uint4 = 8 bf16 per access).
extern "C" __global__ void rmsnorm_bf16(const bf16_t* __restrict__ x, const bf16_t* __restrict__ w,
                                        bf16_t* __restrict__ y, int d, float eps) {
  __shared__ float partial[32];
  const uint4* row = reinterpret_cast<const uint4*>(x + (u64)blockIdx.x * d);
  uint4* out = reinterpret_cast<uint4*>(y + (u64)blockIdx.x * d);
  const uint4* wv = reinterpret_cast<const uint4*>(w);
  const int n = d / 8;
  float ss = 0.f;
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    uint4 v = row[i];
    unsigned p[4] = {v.x, v.y, v.z, v.w};
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float a = bf16_lo(p[j]), b = bf16_hi(p[j]);
      ss += a * a + b * b;
    }
  }
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float t = threadIdx.x < (blockDim.x + 31) / 32 ? partial[threadIdx.x] : 0.f;
    t = warp_sum(t);
    if (threadIdx.x == 0) partial[0] = rsqrtf(t / d + eps);
  }
  __syncthreads();
  const float inv = partial[0];
  for (int i = threadIdx.x; i < n; i += blockDim.x) {
    uint4 v = row[i], g = wv[i];
    unsigned p[4] = {v.x, v.y, v.z, v.w}, q[4] = {g.x, g.y, g.z, g.w}, r[4];
#pragma unroll
    for (int j = 0; j < 4; ++j)
      r[j] = pack_bf16(bf16_lo(p[j]) * inv * bf16_lo(q[j]), bf16_hi(p[j]) * inv * bf16_hi(q[j]));
    out[i] = make_uint4(r[0], r[1], r[2], r[3]);
  }
}
