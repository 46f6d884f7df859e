// attention_decode.cu — one decode step of attention over a bf16 KV cache, GQA-aware, split along
// the context (flash-decoding) with a second reduction pass.
//
// q [batch][heads][128], k and v [batch][kv_heads][capacity][128], all bf16; the first `ctx` keys are
// valid. Pass 1 (attn_decode_split_g{G}): grid (splits, kv_heads, batch), 128 threads; a block reads
// one 256-key chunk of K and V once for all G = heads / kv_heads query heads of its group, and
// writes the unnormalised partial output and its (max, sum) in log2 units to the workspace:
// ws_o f32 [batch][heads][splits][128], ws_ml f32 [batch][heads][splits][2].
// Pass 2 (attn_decode_reduce): grid (heads, batch), 128 threads, merges the splits into o bf16.
#define DEC_D 128
#define DEC_CHUNK 256
#define DEC_THREADS 128

template <int G>
__device__ __forceinline__ void attn_decode_split(const bf16_t* __restrict__ q, const bf16_t* __restrict__ kc,
                                                  const bf16_t* __restrict__ vc, float* __restrict__ ws_o,
                                                  float* __restrict__ ws_ml, int ctx, int cap, float scale_log2) {
  __shared__ __align__(16) float qs[G][DEC_D];
  __shared__ float ps[G][DEC_CHUNK];
  __shared__ float ml[G][2];
  __shared__ __align__(16) float red[8][G][DEC_D];
  const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int kv_heads = gridDim.y, heads = kv_heads * G, splits = gridDim.x;
  const int t = threadIdx.x, key0 = split * DEC_CHUNK;
  const u64 kv_base = ((u64)b * kv_heads + kvh) * cap * DEC_D;
  for (int i = t; i < G * DEC_D; i += DEC_THREADS)
    qs[i / DEC_D][i % DEC_D] = bf16_to_f32(q[((u64)b * heads + kvh * G) * DEC_D + i]);
  __syncthreads();

  // Pass 1a: scores. As in P·V below, 16 threads share a key row (coalesced 16-byte slices: thread t
  // owns dims 8·(t % 16) .. +7 of every 8th key from t / 16), and the 16 partial dot products are
  // summed with shuffles inside the aligned 16-lane group.
  const int dc = t & 15, kg = t >> 4;
  float qf[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) qf[g][e] = qs[g][dc * 8 + e];
  for (int kk0 = kg; kk0 < DEC_CHUNK; kk0 += 32) {
    uint4 kr[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int key = key0 + kk0 + u * 8;
      kr[u] = key < ctx ? __ldcs(reinterpret_cast<const uint4*>(kc + kv_base + (u64)key * DEC_D) + dc)
                        : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int kk = kk0 + u * 8;
      const float kf[8] = {bf16_lo(kr[u].x), bf16_hi(kr[u].x), bf16_lo(kr[u].y), bf16_hi(kr[u].y),
                           bf16_lo(kr[u].z), bf16_hi(kr[u].z), bf16_lo(kr[u].w), bf16_hi(kr[u].w)};
#pragma unroll
      for (int g = 0; g < G; ++g) {
        float dot = 0.f;
#pragma unroll
        for (int e = 0; e < 8; ++e) dot = fmaf(qf[g][e], kf[e], dot);
#pragma unroll
        for (int o = 8; o > 0; o >>= 1) dot += __shfl_xor_sync(0xffffffffu, dot, o);
        if (dc == 0) ps[g][kk] = key0 + kk < ctx ? dot * scale_log2 : -HR_INF;
      }
    }
  }
  __syncthreads();

  // Pass 1b: softmax statistics of the chunk, one warp per query head.
  for (int g = t >> 5; g < G; g += DEC_THREADS / 32) {
    const int lane = t & 31;
    float m = -HR_INF;
    for (int i = lane; i < DEC_CHUNK; i += 32) m = fmaxf(m, ps[g][i]);
    m = warp_max(m);
    float l = 0.f;
    for (int i = lane; i < DEC_CHUNK; i += 32) {
      const float p = exp2f(ps[g][i] - m);
      ps[g][i] = p;
      l += p;
    }
    l = warp_sum(l);
    if (lane == 0) { ml[g][0] = m; ml[g][1] = l; }
  }
  __syncthreads();

  // Pass 1c: P·V with the same thread layout as pass 1a.
  float acc[G][8];
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) acc[g][e] = 0.f;
  const int valid = min(DEC_CHUNK, ctx - key0);
  for (int kk0 = kg; kk0 < valid; kk0 += 32) {
    uint4 vr[4];
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int kk = kk0 + u * 8;
      vr[u] = kk < valid ? __ldcs(reinterpret_cast<const uint4*>(vc + kv_base + (u64)(key0 + kk) * DEC_D) + dc)
                         : make_uint4(0, 0, 0, 0);
    }
#pragma unroll
    for (int u = 0; u < 4; ++u) {
      const int kk = kk0 + u * 8;
      if (kk < valid) {
        const float vf[8] = {bf16_lo(vr[u].x), bf16_hi(vr[u].x), bf16_lo(vr[u].y), bf16_hi(vr[u].y),
                             bf16_lo(vr[u].z), bf16_hi(vr[u].z), bf16_lo(vr[u].w), bf16_hi(vr[u].w)};
#pragma unroll
        for (int g = 0; g < G; ++g) {
          const float p = ps[g][kk];
#pragma unroll
          for (int e = 0; e < 8; ++e) acc[g][e] = fmaf(p, vf[e], acc[g][e]);
        }
      }
    }
  }
#pragma unroll
  for (int g = 0; g < G; ++g)
#pragma unroll
    for (int e = 0; e < 8; ++e) red[kg][g][dc * 8 + e] = acc[g][e];
  __syncthreads();
  for (int i = t; i < G * DEC_D; i += DEC_THREADS) {
    const int g = i / DEC_D, d = i % DEC_D;
    float s = 0.f;
#pragma unroll
    for (int r = 0; r < 8; ++r) s += red[r][g][d];
    const u64 slot = ((u64)b * heads + kvh * G + g) * splits + split;
    ws_o[slot * DEC_D + d] = s;
    if (d == 0) { ws_ml[slot * 2] = ml[g][0]; ws_ml[slot * 2 + 1] = ml[g][1]; }
  }
}

#define DEC_SPLIT(G)                                                                                       \
  extern "C" __global__ void __launch_bounds__(DEC_THREADS) attn_decode_split_g##G(                        \
      const bf16_t* q, const bf16_t* kc, const bf16_t* vc, float* ws_o, float* ws_ml, int ctx, int cap,     \
      float scale_log2) {                                                                                  \
    attn_decode_split<G>(q, kc, vc, ws_o, ws_ml, ctx, cap, scale_log2);                                    \
  }
DEC_SPLIT(1)
DEC_SPLIT(2)
DEC_SPLIT(4)
DEC_SPLIT(8)

extern "C" __global__ void __launch_bounds__(DEC_THREADS) attn_decode_reduce(
    const float* __restrict__ ws_o, const float* __restrict__ ws_ml, bf16_t* __restrict__ o, int splits) {
  const int h = blockIdx.x, b = blockIdx.y, heads = gridDim.x, d = threadIdx.x;
  const u64 slot0 = ((u64)b * heads + h) * splits;
  float m = -HR_INF;
  for (int s = 0; s < splits; ++s) m = fmaxf(m, ws_ml[(slot0 + s) * 2]);
  float l = 0.f, acc = 0.f;
  for (int s = 0; s < splits; ++s) {
    const float w = exp2f(ws_ml[(slot0 + s) * 2] - m);
    l += w * ws_ml[(slot0 + s) * 2 + 1];
    acc += w * ws_o[(slot0 + s) * DEC_D + d];
  }
  o[((u64)b * heads + h) * DEC_D + d] = f32_to_bf16(acc / l);
}
