// attention_decode.cu — one decode step of attention over a bf16 KV cache, GQA-aware, split along
// the context (flash-decoding). Two implementations of the same computation:
//
// q [batch][heads][128], k and v [batch][kv_heads][capacity][128], all bf16; the first `ctx` keys are
// valid. Both write the unnormalised partial output of each split and its (max, sum) in log2 units
// to the workspace: ws_o f32 [batch][heads][splits][128], ws_ml f32 [batch][heads][splits][2].
//
// Split + reduce (two launches, any sm):
// Pass 1 (attn_decode_split_g{G}): grid (splits, kv_heads, batch), 128 threads; a block reads
// one 256-key chunk of K and V once for all G = heads / kv_heads query heads of its group.
// Pass 2 (attn_decode_reduce): grid (heads, batch), 128 threads, merges the splits into o bf16.
//
// v2 (attn_decode_v2_g{G}, one launch, sm_80+; a candidate): grid (⌈ctx/512⌉, kv_heads, batch),
// 128 threads, DV2_SMEM_BYTES of dynamic shared memory; see the v2 section below.
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

// ---- v2: one launch, K and V streamed through shared memory, tensor-core scores and P·V ----
//
// Block (split, kvh, b) takes keys split·512 .. +511; its 4 warps work independently on steps of
// 16 keys, warp w on steps w, w+4, w+8, … (8 each). Each warp owns a ring of DV2_STAGES stages in
// shared memory (a stage: 16 keys of K, then 16 of V, 4 KiB each, rows of 16 16-byte chunks with
// chunk c of key row k stored at position c ^ (k & 7): conflict-free ldmatrix). The loads of step
// i+2 are issued with cp.async (keys ≥ ctx zero-filled) before step i is computed, so up to two
// steps per warp (16 KiB) are in flight while it computes; no barrier inside the loop.
// Per step, on mma.sync.m16n8k16 (bf16 in, f32 accumulate), lane = 4·r + c:
//   Sᵀ (16 × 16 keys) = Q (queries padded to 16 rows, rows ≥ G zero) · Kᵀ: Q's A fragments stay in
//     registers, Kᵀ's B fragments by ldmatrix; lane holds queries r, keys 8j + 2c + {0, 1}.
//   online softmax per query in raw score units (p = exp2(s·scale − m·scale)).
//   Oᵀ (128 dims × 8 queries) += Vᵀ · Pᵀ: Vᵀ's A fragments by ldmatrix.trans, Pᵀ's B fragments are
//     the lane's own Sᵀ values packed to bf16 (no shuffle); lane holds dims 16t + r (+8), queries
//     2c, 2c + 1, whose rescale factors come from lanes 8c and 8c + 4.
// The warps' (m, l, Oᵀ) meet in shared memory (each warp's ring, reused) and the block writes its
// split to ws_o / ws_ml as above. Then it raises cnt [batch][kv_heads] (u32, zero before the first
// launch) after a __threadfence; the block that brings it to `splits` merges every split of its
// (b, kvh) into o, as attn_decode_reduce does, and sets the counter back to 0 for the next launch.
#if __CUDA_ARCH__ >= 800
#define DV2_WARPS 4
#define DV2_THREADS (DV2_WARPS * 32)
#define DV2_STEP 16
#define DV2_CHUNK 512
#define DV2_STEPS (DV2_CHUNK / DV2_STEP / DV2_WARPS)
#define DV2_STAGES 3
#define DV2_TILE_BYTES (DV2_STEP * DEC_D * 2)
#define DV2_WARP_BYTES (DV2_STAGES * 2 * DV2_TILE_BYTES)
#define DV2_SMEM_BYTES (DV2_WARPS * DV2_WARP_BYTES)

// Byte offset of 16-byte chunk `ch` (dims 8·ch .. +7) of key row `key` in a swizzled tile.
__device__ __forceinline__ unsigned dv2_swz(int key, int ch) { return key * (DEC_D * 2) + ((ch ^ (key & 7)) << 4); }

// Issues one step's copies: keys key .. key+15 of K and V into the stage at ks (K) and ks + tile (V).
__device__ __forceinline__ void dv2_issue(unsigned ks, const bf16_t* kg, const bf16_t* vg, int key, int ctx, int lane) {
#pragma unroll
  for (int it = 0; it < DV2_STEP * 16 / 32; ++it) {
    const int idx = it * 32 + lane, row = idx >> 4, ch = idx & 15;
    const bool ok = key + row < ctx;
    const u64 off = (u64)(ok ? key + row : 0) * DEC_D + ch * 8;  // key 0 is valid: a safe address
    const unsigned dst = ks + dv2_swz(row, ch);
    cp_async16_zfill(dst, kg + off, ok ? 16u : 0u);
    cp_async16_zfill(dst + DV2_TILE_BYTES, vg + off, ok ? 16u : 0u);
  }
}

// One warp's pass over its steps: returns m (raw score units), l (its lanes' partial sums) and Oᵀ.
template <int G>
__device__ __forceinline__ void dv2_warp(const bf16_t* __restrict__ qg, const bf16_t* kg, const bf16_t* vg,
                                         unsigned ring, int first, int n, int ctx, float scale_log2, float& m,
                                         float& l, float (&acc)[DEC_D / 16][4]) {
  const int lane = threadIdx.x & 31, r = lane >> 2, c = lane & 3;
#pragma unroll
  for (int st = 0; st < DV2_STAGES - 1; ++st) {
    if (st < n) dv2_issue(ring + st * 2 * DV2_TILE_BYTES, kg, vg, first + st * DV2_STEP * DV2_WARPS, ctx, lane);
    asm volatile("cp.async.commit_group;");
  }
  // Q's A fragments for k-step s (dims 16s .. 16s+15): a0 = Q[r][16s + 2c ..], a2 = Q[r][16s + 8 + 2c ..];
  // a1 and a3 (rows r + 8) are zero, as are rows r ≥ G.
  unsigned qa[DEC_D / 16][2];
#pragma unroll
  for (int s = 0; s < DEC_D / 16; ++s) {
    qa[s][0] = r < G ? *reinterpret_cast<const unsigned*>(qg + (u64)r * DEC_D + 16 * s + 2 * c) : 0u;
    qa[s][1] = r < G ? *reinterpret_cast<const unsigned*>(qg + (u64)r * DEC_D + 16 * s + 8 + 2 * c) : 0u;
  }
#pragma unroll
  for (int t = 0; t < DEC_D / 16; ++t) acc[t][0] = acc[t][1] = acc[t][2] = acc[t][3] = 0.f;
  m = -HR_INF;
  l = 0.f;
  int st = 0;  // stage of step i
  for (int i = 0; i < n; ++i) {
    asm volatile("cp.async.wait_group %0;" ::"n"(DV2_STAGES - 2));
    __syncwarp();  // every lane's copies of step i landed; step i-1's stage is free
    {
      const int nx = i + DV2_STAGES - 1, nst = st == 0 ? DV2_STAGES - 1 : st - 1;
      if (nx < n) dv2_issue(ring + nst * 2 * DV2_TILE_BYTES, kg, vg, first + nx * DV2_STEP * DV2_WARPS, ctx, lane);
      asm volatile("cp.async.commit_group;");
    }
    const unsigned ks = ring + st * 2 * DV2_TILE_BYTES, vs = ks + DV2_TILE_BYTES;
    st = st == DV2_STAGES - 1 ? 0 : st + 1;

    // Sᵀ = Q·Kᵀ: n-tile j holds keys 8j .. 8j+7; one ldmatrix.x4 gives the B fragments of two
    // k-steps (matrix lane/8 = chunk 4·sp + lane/8, rows = keys).
    float s[2][4];
#pragma unroll
    for (int j = 0; j < 2; ++j) s[j][0] = s[j][1] = s[j][2] = s[j][3] = 0.f;
#pragma unroll
    for (int sp = 0; sp < DEC_D / 32; ++sp)
#pragma unroll
      for (int j = 0; j < 2; ++j) {
        unsigned kb[4];
        ldsm_x4(ks + dv2_swz(8 * j + (lane & 7), 4 * sp + (lane >> 3)), kb[0], kb[1], kb[2], kb[3]);
        mma_bf16(s[j], qa[2 * sp][0], 0u, qa[2 * sp][1], 0u, kb[0], kb[1]);
        mma_bf16(s[j], qa[2 * sp + 1][0], 0u, qa[2 * sp + 1][1], 0u, kb[2], kb[3]);
      }

    // Online softmax of query r over this step (its 16 keys sit in lanes 4r .. 4r+3).
    const int kb0 = first + i * DV2_STEP * DV2_WARPS;
    float mx = -HR_INF;
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        if (kb0 + 8 * j + 2 * c + e >= ctx) s[j][e] = -HR_INF;
        mx = fmaxf(mx, s[j][e]);
      }
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
    const float m_new = fmaxf(m, mx);  // finite: key kb0 < ctx
    const float alpha = exp2f((m - m_new) * scale_log2), ms = m_new * scale_log2;
    m = m_new;
    float p[2][2];
#pragma unroll
    for (int j = 0; j < 2; ++j)
#pragma unroll
      for (int e = 0; e < 2; ++e) p[j][e] = exp2f(fmaf(s[j][e], scale_log2, -ms));
    l = l * alpha + (p[0][0] + p[0][1]) + (p[1][0] + p[1][1]);
    const float a_lo = __shfl_sync(0xffffffffu, alpha, 8 * c), a_hi = __shfl_sync(0xffffffffu, alpha, 8 * c + 4);
    const unsigned pb0 = cvt_bf16x2(p[0][0], p[0][1]), pb1 = cvt_bf16x2(p[1][0], p[1][1]);

    // Oᵀ += Vᵀ·Pᵀ: m-tile t = dims 16t .. 16t+15; ldmatrix.trans of matrices (keys 0-7 | 8-15) ×
    // (dims 16t .. +7 | +8 .. +15) gives a0..a3.
#pragma unroll
    for (int t = 0; t < DEC_D / 16; ++t) {
      acc[t][0] *= a_lo;
      acc[t][1] *= a_hi;
      acc[t][2] *= a_lo;
      acc[t][3] *= a_hi;
      unsigned va[4];
      ldsm_x4_t(vs + dv2_swz((lane & 7) + ((lane >> 4) << 3), 2 * t + ((lane >> 3) & 1)), va[0], va[1], va[2], va[3]);
      mma_bf16(acc[t], va[0], va[1], va[2], va[3], pb0, pb1);
    }
  }
  asm volatile("cp.async.wait_group 0;");
  l += __shfl_xor_sync(0xffffffffu, l, 1);
  l += __shfl_xor_sync(0xffffffffu, l, 2);
}

// The last split block of (b, kvh): merges every split's partial of its G heads into o.
template <int G>
__device__ __forceinline__ void dv2_merge(const float* ws_o, const float* ws_ml, bf16_t* __restrict__ o, u64 head0,
                                          int splits) {
  const int d = threadIdx.x;
#pragma unroll 1
  for (int g = 0; g < G; ++g) {
    const u64 slot0 = (head0 + g) * splits;
    float mx = -HR_INF;
#pragma unroll 4
    for (int s = 0; s < splits; ++s) mx = fmaxf(mx, __ldcg(ws_ml + (slot0 + s) * 2));
    float lsum = 0.f, acc = 0.f;
#pragma unroll 4
    for (int s = 0; s < splits; ++s) {
      const float w = exp2f(__ldcg(ws_ml + (slot0 + s) * 2) - mx);
      lsum += w * __ldcg(ws_ml + (slot0 + s) * 2 + 1);
      acc += w * __ldcg(ws_o + (slot0 + s) * DEC_D + d);
    }
    o[(head0 + g) * DEC_D + d] = f32_to_bf16(acc / lsum);
  }
}

template <int G>
__device__ __forceinline__ void attn_decode_v2(const bf16_t* __restrict__ q, const bf16_t* __restrict__ kc,
                                               const bf16_t* __restrict__ vc, float* ws_o, float* ws_ml,
                                               unsigned* cnt, bf16_t* __restrict__ o, int ctx, int cap,
                                               float scale_log2) {
  extern __shared__ __align__(128) unsigned char dv2_smem[];
  __shared__ bool last;
  const int split = blockIdx.x, kvh = blockIdx.y, b = blockIdx.z;
  const int kv_heads = gridDim.y, heads = kv_heads * G, splits = gridDim.x;
  const int t = threadIdx.x, warp = t >> 5, lane = t & 31, r = lane >> 2, c = lane & 3;
  const u64 kv_base = ((u64)b * kv_heads + kvh) * cap * DEC_D, head0 = (u64)b * heads + kvh * G;
  // This warp's steps start at first + 64·i, i < n.
  const int first = split * DV2_CHUNK + warp * DV2_STEP, stride = DV2_STEP * DV2_WARPS;
  const int n = first < ctx ? min(DV2_STEPS, (ctx - first + stride - 1) / stride) : 0;
  unsigned char* wsm = dv2_smem + warp * DV2_WARP_BYTES;
  float m, l, acc[DEC_D / 16][4];
  dv2_warp<G>(q + head0 * DEC_D, kc + kv_base, vc + kv_base, smem_u32(wsm), first, n, ctx, scale_log2, m, l, acc);

  // Each warp's (m in log2 units, l, Oᵀ) into its own ring: o [8][128] f32, then m [8], l [8].
  __syncwarp();
  float* wf = reinterpret_cast<float*>(wsm);
#pragma unroll
  for (int i = 0; i < DEC_D / 16; ++i) {
    wf[(2 * c) * DEC_D + 16 * i + r] = acc[i][0];
    wf[(2 * c + 1) * DEC_D + 16 * i + r] = acc[i][1];
    wf[(2 * c) * DEC_D + 16 * i + r + 8] = acc[i][2];
    wf[(2 * c + 1) * DEC_D + 16 * i + r + 8] = acc[i][3];
  }
  if (c == 0) {
    wf[8 * DEC_D + r] = m * scale_log2;  // -inf for a warp with no step
    wf[8 * DEC_D + 8 + r] = l;
  }
  __syncthreads();

  // The block's split: thread t is dim t of every head; warp 0 always has a step, so mx is finite.
  for (int g = 0; g < G; ++g) {
    float mx = -HR_INF;
#pragma unroll
    for (int w = 0; w < DV2_WARPS; ++w)
      mx = fmaxf(mx, reinterpret_cast<const float*>(dv2_smem + w * DV2_WARP_BYTES)[8 * DEC_D + g]);
    float os = 0.f, ls = 0.f;
#pragma unroll
    for (int w = 0; w < DV2_WARPS; ++w) {
      const float* f = reinterpret_cast<const float*>(dv2_smem + w * DV2_WARP_BYTES);
      const float wt = exp2f(f[8 * DEC_D + g] - mx);
      os += wt * f[g * DEC_D + t];
      ls += wt * f[8 * DEC_D + 8 + g];
    }
    const u64 slot = (head0 + g) * splits + split;
    ws_o[slot * DEC_D + t] = os;
    if (t == 0) {
      ws_ml[slot * 2] = mx;
      ws_ml[slot * 2 + 1] = ls;
    }
  }

  // The last block of (b, kvh) to finish merges.
  __threadfence();
  __syncthreads();
  unsigned* counter = cnt + (u64)b * kv_heads + kvh;
  if (t == 0) last = atomicAdd(counter, 1u) == (unsigned)splits - 1;
  __syncthreads();
  if (!last) return;
  __threadfence();
  if (t == 0) *counter = 0u;
  dv2_merge<G>(ws_o, ws_ml, o, head0, splits);
}

#define DEC_V2(G)                                                                                          \
  extern "C" __global__ void __launch_bounds__(DV2_THREADS) attn_decode_v2_g##G(                           \
      const bf16_t* q, const bf16_t* kc, const bf16_t* vc, float* ws_o, float* ws_ml, unsigned* cnt, bf16_t* o, \
      int ctx, int cap, float scale_log2) {                                                                \
    attn_decode_v2<G>(q, kc, vc, ws_o, ws_ml, cnt, o, ctx, cap, scale_log2);                               \
  }
DEC_V2(1)
DEC_V2(2)
DEC_V2(4)
DEC_V2(8)
#endif
