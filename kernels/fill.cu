// fill.cu — device-side random fill, so large benchmark buffers never cross PCIe and are never
// zeros. `n` counts elements of the named type.
extern "C" __global__ void fill_u32(unsigned* p, u64 n, unsigned seed) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
    p[i] = hash_u32(i, seed);
}

extern "C" __global__ void fill_f32(float* p, u64 n, unsigned seed, float scale) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
    p[i] = hash_uniform(i, seed, scale);
}

extern "C" __global__ void fill_bf16(bf16_t* p, u64 n, unsigned seed, float scale) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
    p[i] = f32_to_bf16(hash_uniform(i, seed, scale));
}

extern "C" __global__ void fill_f16(f16_t* p, u64 n, unsigned seed, float scale) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
    p[i] = f32_to_f16(hash_uniform(i, seed, scale));
}

// FP8 E4M3 values, four per 32-bit word (`n` counts words): each byte keeps a random sign and
// mantissa and gets exponent field 0b01xx, so it is finite (never the NaN 0x7f / 0xff) with
// magnitude 0.125 to 1.875 (src/gpu/reference.rs `e4m3_fill_word` mirrors it).
extern "C" __global__ void fill_e4m3(unsigned* p, u64 n, unsigned seed) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x)
    p[i] = (hash_u32(i, seed) & 0x9f9f9f9fu) | 0x20202020u;
}
