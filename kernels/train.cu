// train.cu — the backward pass and optimizer step of `headroom validate`'s training step
// (src/gpu/cuda/layer/train.rs launches them; src/validate/train_backend.rs documents every
// operation and layout, and src/validate/cpu.rs `impl TrainBackend for CpuLayers` defines what each
// computes). Written for obviousness, not speed: the step is run to measure memory. bf16 is stored,
// every sum and product is fp32; scalar loads only (no alignment beyond the element's own), 64-bit
// element indices. Block sizes are fixed by the launcher (src/gpu/cuda/launch/train.rs mirrors the
// #defines below); the reductions assume blockDim.x is a multiple of 32.

#define TRAIN_ROW_THREADS 256  // cross_entropy, rmsnorm_bwd_dx: one block per row
#define RMS_DW_COLS 256        // rmsnorm_bwd_dw: columns per block = threads per block
#define RMS_DW_ROWS 32         // rmsnorm_bwd_dw: rows whose rstd is cached in shared memory per pass
#define ATT_D 128              // attention backward: head_dim = threads per block

#define TRAIN_FOR(i, total) \
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < (total); i += (u64)gridDim.x * blockDim.x)

// Sum of v over the block; every thread gets the total. `red` is 32 floats of shared memory. The
// leading barrier lets a call reuse `red` right after the previous call's readers.
__device__ __forceinline__ float block_sum(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  return warp_sum(lane < warps ? red[lane] : 0.f);
}

__device__ __forceinline__ float block_max(float v, float* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  v = warp_max(v);
  __syncthreads();
  if (lane == 0) red[warp] = v;
  __syncthreads();
  return warp_max(lane < warps ? red[lane] : -HR_INF);
}

// Two sums over the block at once (one pair of barriers); `red` is 32 float2 of shared memory.
__device__ __forceinline__ float2 block_sum2(float a, float b, float2* red) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  a = warp_sum(a);
  b = warp_sum(b);
  __syncthreads();
  if (lane == 0) red[warp] = make_float2(a, b);
  __syncthreads();
  const float2 t = lane < warps ? red[lane] : make_float2(0.f, 0.f);
  return make_float2(warp_sum(t.x), warp_sum(t.y));
}

// cross_entropy_bf16: grid (rows), block TRAIN_ROW_THREADS. Block r owns logits row r,
// logits[r·vocab .. r·vocab + vocab) (bf16, overwritten with the gradient); thread t visits columns
// t, t + blockDim.x, ... target = (unsigned)targets[r] % vocab (as the CPU reference reads the i32
// as a u32). lse = max + log Σ exp(l − max); losses[r] = lse − l[target];
// grad[j] = (exp(l[j] − lse) − [j == target]) / rows.
extern "C" __global__ void cross_entropy_bf16(bf16_t* __restrict__ logits, const int* __restrict__ targets,
                                              float* __restrict__ losses, int vocab, int rows) {
  __shared__ float red[32];
  bf16_t* row = logits + (u64)blockIdx.x * vocab;
  const int target = (int)((unsigned)targets[blockIdx.x] % (unsigned)vocab);
  // Read by every thread before the first barrier (inside block_max), so before any thread writes
  // the gradient over it.
  const float target_logit = bf16_to_f32(row[target]);
  float m = -HR_INF;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) m = fmaxf(m, bf16_to_f32(row[j]));
  m = block_max(m, red);
  float s = 0.f;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) s += expf(bf16_to_f32(row[j]) - m);
  s = block_sum(s, red);
  const float lse = m + logf(s);
  if (threadIdx.x == 0) losses[blockIdx.x] = lse - target_logit;
  for (int j = threadIdx.x; j < vocab; j += blockDim.x) {
    const float p = expf(bf16_to_f32(row[j]) - lse);
    row[j] = f32_to_bf16((p - (j == target ? 1.f : 0.f)) / (float)rows);
  }
}

// rmsnorm_bwd_dx_bf16: grid (rows), block TRAIN_ROW_THREADS. Block r owns row r of x, dy, dx
// (element (r, c) at r·d + c); w is [d]. rstd = 1/√(mean(x²) + eps), x̂ = x·rstd,
// dot = mean(dy·w·x̂), dx[c] += rstd·(dy[c]·w[c] − x̂[c]·dot) (read-modify-write, rounded once).
extern "C" __global__ void rmsnorm_bwd_dx_bf16(const bf16_t* __restrict__ x, const bf16_t* __restrict__ w,
                                               const bf16_t* __restrict__ dy, bf16_t* __restrict__ dx, int d,
                                               float eps) {
  __shared__ float red[32];
  const u64 base = (u64)blockIdx.x * d;
  float ss = 0.f;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    const float v = bf16_to_f32(x[base + c]);
    ss += v * v;
  }
  const float rstd = 1.f / sqrtf(block_sum(ss, red) / d + eps);
  float dot = 0.f;
  for (int c = threadIdx.x; c < d; c += blockDim.x)
    dot += bf16_to_f32(dy[base + c]) * bf16_to_f32(w[c]) * bf16_to_f32(x[base + c]);
  dot = block_sum(dot, red) * rstd / d;
  for (int c = threadIdx.x; c < d; c += blockDim.x) {
    const float xhat = bf16_to_f32(x[base + c]) * rstd;
    const float g = rstd * (bf16_to_f32(dy[base + c]) * bf16_to_f32(w[c]) - xhat * dot);
    dx[base + c] = f32_to_bf16(bf16_to_f32(dx[base + c]) + g);
  }
}

// rmsnorm_bwd_dw_bf16: dw[c] = Σ_r dy[r][c]·x[r][c]·rstd_r (overwritten), x, dy [rows][d].
// grid (⌈d / RMS_DW_COLS⌉), block RMS_DW_COLS: thread t owns column c = blockIdx.x·RMS_DW_COLS + t
// and walks every row (a warp reads 32 consecutive columns of a row: coalesced). The trait gives no
// scratch for the rows' rstd, so each block recomputes it: rows go in chunks of RMS_DW_ROWS, warp w
// computes the rstd of chunk rows w, w + 8, ... (a warp-wide sum over the whole row) into shared
// memory, then every thread adds its column over the chunk. x is read ⌈d / 256⌉ + 1 times in all.
// Threads past d take part in the rstd work and the barriers but write nothing.
extern "C" __global__ void rmsnorm_bwd_dw_bf16(const bf16_t* __restrict__ x, const bf16_t* __restrict__ dy,
                                               bf16_t* __restrict__ dw, int rows, int d, float eps) {
  __shared__ float rstd[RMS_DW_ROWS];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
  const u64 c = (u64)blockIdx.x * blockDim.x + threadIdx.x;
  float acc = 0.f;
  for (int r0 = 0; r0 < rows; r0 += RMS_DW_ROWS) {
    const int n = min(RMS_DW_ROWS, rows - r0);
    for (int k = warp; k < n; k += warps) {
      const bf16_t* row = x + (u64)(r0 + k) * d;
      float ss = 0.f;
      for (int j = lane; j < d; j += 32) {
        const float v = bf16_to_f32(row[j]);
        ss += v * v;
      }
      ss = warp_sum(ss);
      if (lane == 0) rstd[k] = 1.f / sqrtf(ss / d + eps);
    }
    __syncthreads();
    if (c < (u64)d)
      for (int k = 0; k < n; ++k) {
        const u64 i = (u64)(r0 + k) * d + c;
        acc += bf16_to_f32(dy[i]) * bf16_to_f32(x[i]) * rstd[k];
      }
    __syncthreads();  // the next chunk overwrites rstd
  }
  if (c < (u64)d) dw[c] = f32_to_bf16(acc);
}

// silu_gate_bwd_bf16: for act = silu(g)·u with s = σ(g): d_up = d_act·g·s,
// d_gate = d_act·u·s·(1 + g·(1 − s)). Element i of every operand; thread i reads all three inputs
// before writing, so an output may alias an input (no __restrict__).
extern "C" __global__ void silu_gate_bwd_bf16(const bf16_t* gate, const bf16_t* up, const bf16_t* d_act,
                                              bf16_t* d_gate, bf16_t* d_up, u64 n) {
  TRAIN_FOR(i, n) {
    const float g = bf16_to_f32(gate[i]), u = bf16_to_f32(up[i]), da = bf16_to_f32(d_act[i]);
    const float s = 1.f / (1.f + expf(-g));
    d_up[i] = f32_to_bf16(da * g * s);
    d_gate[i] = f32_to_bf16(da * u * s * (1.f + g * (1.f - s)));
  }
}

// Attention backward, two kernels, fp32 CUDA-core math, thread = head dimension e (ATT_D = 128):
//   q      [b][heads][seq][128]     head-major, row i of (b, h) at ((b·heads + h)·seq + i)·128
//   k, v   [b][kv_heads][cap][128]  head-major, row j of (b, kv) at ((b·kv_heads + kv)·cap + j)·128
//   o, d_o, dq [b][seq][heads][128]    token-major, (b, i, h) at ((b·seq + i)·heads + h)·128
//   dk, dv     [b][seq][kv_heads][128] token-major, (b, j, kv) at ((b·seq + j)·kv_heads + kv)·128
//   lse, delta f32 [b][heads][seq]: (b, h, i) at (b·heads + h)·seq + i
// Query head h reads KV head h / (heads / kv_heads). Causal: query i sees keys j ≤ i.
// s_ij = scale·q_i·k_j, p_ij = exp(s_ij − lse_i), dp_ij = do_i·v_j, ds_ij = p_ij·(dp_ij − delta_i)
// with delta_i = do_i·o_i; dq_i = scale·Σ_j ds_ij·k_j, dk_j = scale·Σ_(h,i) ds_ij·q_i,
// dv_j = Σ_(h,i) p_ij·do_i. Every dot product over e is a block reduction.

// attn_bwd_dq_bf16: grid (seq, heads, batch), block ATT_D; block (i, h, b) owns query row i of
// head h. Pass 1 (keys 0..i, online max and sum) gives lse_i; pass 2 accumulates dq_i[e] in a
// register. Writes lse_i and delta_i for attn_bwd_dkv_bf16, which runs after it.
extern "C" __global__ void attn_bwd_dq_bf16(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                                            const bf16_t* __restrict__ v, const bf16_t* __restrict__ o,
                                            const bf16_t* __restrict__ d_o, bf16_t* __restrict__ dq,
                                            float* __restrict__ lse_out, float* __restrict__ delta_out, int seq,
                                            int heads, int kv_heads, int cap, float scale) {
  __shared__ float red[32];
  __shared__ float2 red2[32];
  const int i = blockIdx.x, h = blockIdx.y, b = blockIdx.z, e = threadIdx.x;
  const int kv = h / (heads / kv_heads);
  const u64 bh = (u64)b * heads + h;
  const u64 tok = (((u64)b * seq + i) * heads + h) * ATT_D + e;
  const bf16_t* kb = k + ((u64)b * kv_heads + kv) * cap * ATT_D + e;  // key j, dim e at kb[j·ATT_D]
  const bf16_t* vb = v + ((u64)b * kv_heads + kv) * cap * ATT_D + e;
  const float qe = bf16_to_f32(q[(bh * seq + i) * ATT_D + e]);
  const float doe = bf16_to_f32(d_o[tok]);
  const float delta = block_sum(doe * bf16_to_f32(o[tok]), red);
  float m = -HR_INF, l = 0.f;
  for (int j = 0; j <= i; ++j) {
    const float s = scale * block_sum(qe * bf16_to_f32(kb[(u64)j * ATT_D]), red);
    const float mn = fmaxf(m, s);
    l = l * expf(m - mn) + expf(s - mn);
    m = mn;
  }
  const float lse = m + logf(l);
  if (e == 0) {
    lse_out[bh * seq + i] = lse;
    delta_out[bh * seq + i] = delta;
  }
  float acc = 0.f;
  for (int j = 0; j <= i; ++j) {
    const float ke = bf16_to_f32(kb[(u64)j * ATT_D]);
    const float2 sd = block_sum2(qe * ke, doe * bf16_to_f32(vb[(u64)j * ATT_D]), red2);
    const float p = expf(scale * sd.x - lse);
    acc += scale * p * (sd.y - delta) * ke;
  }
  dq[tok] = f32_to_bf16(acc);
}

// attn_bwd_dkv_bf16: grid (seq, kv_heads, batch), block ATT_D; block (j, kv, b) owns key row j of
// KV head kv and walks every query head h of its group and every query i ≥ j, reading lse and
// delta from attn_bwd_dq_bf16. dk_j[e] and dv_j[e] accumulate in registers.
extern "C" __global__ void attn_bwd_dkv_bf16(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                                             const bf16_t* __restrict__ v, const bf16_t* __restrict__ d_o,
                                             bf16_t* __restrict__ dk, bf16_t* __restrict__ dv,
                                             const float* __restrict__ lse, const float* __restrict__ delta, int seq,
                                             int heads, int kv_heads, int cap, float scale) {
  __shared__ float2 red2[32];
  const int j = blockIdx.x, kv = blockIdx.y, b = blockIdx.z, e = threadIdx.x;
  const int group = heads / kv_heads;
  const u64 key = (((u64)b * kv_heads + kv) * cap + j) * ATT_D + e;
  const float ke = bf16_to_f32(k[key]), ve = bf16_to_f32(v[key]);
  float dk_acc = 0.f, dv_acc = 0.f;
  for (int g = 0; g < group; ++g) {
    const int h = kv * group + g;
    const u64 bh = (u64)b * heads + h;
    for (int i = j; i < seq; ++i) {
      const float qe = bf16_to_f32(q[(bh * seq + i) * ATT_D + e]);
      const float doe = bf16_to_f32(d_o[(((u64)b * seq + i) * heads + h) * ATT_D + e]);
      const float2 sd = block_sum2(qe * ke, doe * ve, red2);
      const float p = expf(scale * sd.x - lse[bh * seq + i]);
      const float ds = p * (sd.y - delta[bh * seq + i]);
      dv_acc += p * doe;
      dk_acc += scale * ds * qe;
    }
  }
  const u64 out = (((u64)b * seq + j) * kv_heads + kv) * ATT_D + e;
  dk[out] = f32_to_bf16(dk_acc);
  dv[out] = f32_to_bf16(dv_acc);
}

// *p += v for a bf16 in global memory, atomically: a compare-and-swap loop on the aligned 32-bit
// word holding it (the low half when p is 4-byte aligned, the high half when it is 2 bytes past),
// rounding the sum to bf16 once per add. The other half of the word is written back unchanged.
__device__ __forceinline__ void atomic_add_bf16(bf16_t* p, float v) {
  unsigned* word = reinterpret_cast<unsigned*>((u64)p & ~(u64)3);
  const bool high = ((u64)p & 2) != 0;
  unsigned old = *word, assumed;
  do {
    assumed = old;
    const unsigned sum = f32_to_bf16((high ? bf16_hi(assumed) : bf16_lo(assumed)) + v);
    const unsigned next = high ? (assumed & 0xffffu) | (sum << 16) : (assumed & 0xffff0000u) | sum;
    old = atomicCAS(word, assumed, next);
  } while (old != assumed);
}

// embed_bwd_bf16: d_table[ids[t] mod vocab][c] += dx[t][c] for t < tokens, c < hidden; ids i32
// (read as unsigned, as the CPU reference does), dx bf16 [tokens][hidden], d_table bf16
// [vocab][hidden] starting 4-byte aligned. Thread i adds dx element i, (t, c) = (i / hidden,
// i % hidden); repeated ids and neighbouring elements meet in atomic_add_bf16.
extern "C" __global__ void embed_bwd_bf16(const int* __restrict__ ids, const bf16_t* __restrict__ dx,
                                          bf16_t* d_table, u64 tokens, int hidden, u64 vocab) {
  TRAIN_FOR(i, tokens * (u64)hidden) {
    const u64 t = i / hidden, c = i % hidden;
    const u64 row = (u64)(unsigned)ids[t] % vocab;
    atomic_add_bf16(d_table + row * hidden + c, bf16_to_f32(dx[i]));
  }
}

// widen_bf16_f32: dst[i] = src[i] for i < n (bf16 → f32, exact).
extern "C" __global__ void widen_bf16_f32(const bf16_t* __restrict__ src, float* __restrict__ dst, u64 n) {
  TRAIN_FOR(i, n) dst[i] = bf16_to_f32(src[i]);
}

// adamw_mixed_bf16: one AdamW step per element i < n, the math of adamw.cu on an fp32 master copy
// with a bf16 gradient: g = grad[i]; m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; p −= lr·wd·p;
// p −= lr·(m / bc1) / (√(v / bc2) + eps) with bc1 = 1 − b1^t, bc2 = 1 − b2^t from the host;
// weight[i] = bf16(p).
extern "C" __global__ void adamw_mixed_bf16(bf16_t* __restrict__ weight, const bf16_t* __restrict__ grad,
                                            float* __restrict__ master, float* __restrict__ m, float* __restrict__ v,
                                            u64 n, float lr, float b1, float b2, float eps, float wd, float bc1,
                                            float bc2) {
  TRAIN_FOR(i, n) {
    const float g = bf16_to_f32(grad[i]);
    const float mi = b1 * m[i] + (1.f - b1) * g;
    const float vi = b2 * v[i] + (1.f - b2) * g * g;
    float p = master[i];
    p -= lr * wd * p;
    p -= lr * (mi / bc1) / (sqrtf(vi / bc2) + eps);
    m[i] = mi;
    v[i] = vi;
    master[i] = p;
    weight[i] = f32_to_bf16(p);
  }
}
