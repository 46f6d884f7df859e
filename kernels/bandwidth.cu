// bandwidth.cu — memory bandwidth: read, write and copy with 16-byte (uint4) accesses, a
// grid-stride loop and four independent loads in flight per thread. `n` counts uint4 elements.
#define BW_UNROLL 4

extern "C" __global__ void bandwidth_read(const uint4* __restrict__ src, u64 n, unsigned* sink) {
  const u64 stride = (u64)gridDim.x * blockDim.x;
  u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (; i + (BW_UNROLL - 1) * stride < n; i += BW_UNROLL * stride) {
    uint4 v[BW_UNROLL];
#pragma unroll
    for (int u = 0; u < BW_UNROLL; ++u) v[u] = __ldcs(src + i + u * stride);
#pragma unroll
    for (int u = 0; u < BW_UNROLL; ++u) acc ^= v[u].x ^ v[u].y ^ v[u].z ^ v[u].w;
  }
  for (; i < n; i += stride) {
    uint4 v = __ldcs(src + i);
    acc ^= v.x ^ v.y ^ v.z ^ v.w;
  }
  if (acc == 0x9e3779b9u) sink[0] = acc;  // practically never true; keeps the loads alive
}

extern "C" __global__ void bandwidth_write(uint4* __restrict__ dst, u64 n, unsigned value) {
  const u64 stride = (u64)gridDim.x * blockDim.x;
  uint4 v = make_uint4(value, value ^ 1u, value ^ 2u, value ^ 3u);
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += stride) __stcs(dst + i, v);
}

extern "C" __global__ void bandwidth_copy(const uint4* __restrict__ src, uint4* __restrict__ dst, u64 n) {
  const u64 stride = (u64)gridDim.x * blockDim.x;
  u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x;
  for (; i + (BW_UNROLL - 1) * stride < n; i += BW_UNROLL * stride) {
    uint4 v[BW_UNROLL];
#pragma unroll
    for (int u = 0; u < BW_UNROLL; ++u) v[u] = __ldcs(src + i + u * stride);
#pragma unroll
    for (int u = 0; u < BW_UNROLL; ++u) __stcs(dst + i + u * stride, v[u]);
  }
  for (; i < n; i += stride) __stcs(dst + i, __ldcs(src + i));
}
