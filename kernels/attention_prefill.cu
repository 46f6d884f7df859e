// attention_prefill.cu — causal attention for a prompt (flash-attention-2 style), bf16 in and out,
// fp32 accumulation on tensor cores through inline PTX mma.sync.m16n8k16 (sm_80+), GQA.
//
// q, o [batch][heads][seq][128]; k, v [batch][kv_heads][kv_cap][128] (kv_cap ≥ seq rows per
// (sequence, KV head); the keys are rows 0..seq, so a KV cache with spare rows is read in place;
// the benchmark passes kv_cap = seq). Grid (seq/BR, heads, batch), the last query tile first. K and
// V tiles of 64 keys are copied with cp.async into shared memory, rows padded to 136 elements
// (conflict-free ldmatrix); S = Q·Kᵀ and O += P·V stay in registers; the softmax is online, in
// log2 units; warps skip the keys that lie wholly after their rows. Three entry points (the host
// raises each function's dynamic shared-memory limit above 48 KiB):
//   attn_prefill_bf16:       BR = 64 query rows, 128 threads (4 warps × 16 rows), seq a multiple
//                            of 64; Q fragments in registers, K and V double-buffered;
//                            PF_SMEM_BYTES. One body, attn_prefill<BR>, with:
//   attn_prefill_br128_bf16: BR = 128, 256 threads (8 warps × 16 rows: each K/V tile serves
//                            twice the queries), seq a multiple of 128; PF_SMEM_BYTES.
//   attn_prefill_w32_bf16:   BR = 128, 128 threads (4 warps × 32 rows, two m16 tiles each, the
//                            layout of FlashAttention-2's sm80 hdim128 forward), seq a multiple
//                            of 128; PW_SMEM_BYTES. Each K/V fragment ldmatrix loads feeds two
//                            mma's. Q stays in shared memory, re-read with ldmatrix (two m-tiles
//                            of Q, S and O do not fit in 255 registers); K and V double-buffered;
//                            each 64-key tile runs as two steps of 32 keys (S of 64 keys beside
//                            O spills); the causal mask only on the step on a warp's diagonal;
//                            P = exp2(s·scale − m·scale), one FMA, with ex2.approx.ftz.
#define PF_D 128
#define PF_BC 64
#define PF_LD 136
#define PF_TILE_ELEMS (PF_BC * PF_LD)
#define PF_SMEM_BYTES (4 * PF_TILE_ELEMS * 2)

// Issues the cp.async copies of one 64-key tile of K and V (16 KiB each) into shared memory.
template <int THREADS>
__device__ __forceinline__ void pf_load_tile(bf16_t* ks, bf16_t* vs, const bf16_t* kg, const bf16_t* vg, int key0) {
#pragma unroll
  for (int i = 0; i < (PF_BC * PF_D / 8) / THREADS; ++i) {
    const int c = threadIdx.x + i * THREADS;  // 16-byte chunk: row c / 16, column (c % 16) * 8
    const int r = c >> 4, col = (c & 15) * 8;
    cp_async16(smem_u32(ks + r * PF_LD + col), kg + (u64)(key0 + r) * PF_D + col);
    cp_async16(smem_u32(vs + r * PF_LD + col), vg + (u64)(key0 + r) * PF_D + col);
  }
  asm volatile("cp.async.commit_group;");
}

template <int BR>
__device__ __forceinline__ void attn_prefill(const bf16_t* __restrict__ q, const bf16_t* __restrict__ k,
                                             const bf16_t* __restrict__ v, bf16_t* __restrict__ o, int seq,
                                             int kv_heads, int kv_cap, float scale_log2) {
  constexpr int THREADS = BR * 2;  // BR / 16 warps
  extern __shared__ __align__(16) bf16_t pf_smem[];
  const int n_tiles = gridDim.x;
  const int qt = n_tiles - 1 - blockIdx.x;  // longest rows first
  const int h = blockIdx.y, b = blockIdx.z, heads = gridDim.y;
  const int kvh = h / (heads / kv_heads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const bf16_t* qg = q + (((u64)b * heads + h) * seq + (u64)qt * BR) * PF_D;
  const bf16_t* kg = k + ((u64)b * kv_heads + kvh) * kv_cap * PF_D;
  const bf16_t* vg = v + ((u64)b * kv_heads + kvh) * kv_cap * PF_D;
  bf16_t* og = o + (((u64)b * heads + h) * seq + (u64)qt * BR) * PF_D;

  // Q fragments (A operand, row-major 16×16 per k-step), straight from global memory.
  unsigned qa[PF_D / 16][4];
  const int r_lo = warp * 16 + g, r_hi = r_lo + 8;
#pragma unroll
  for (int ks = 0; ks < PF_D / 16; ++ks) {
    const int c = ks * 16 + tig * 2;
    qa[ks][0] = *reinterpret_cast<const unsigned*>(qg + (u64)r_lo * PF_D + c);
    qa[ks][1] = *reinterpret_cast<const unsigned*>(qg + (u64)r_hi * PF_D + c);
    qa[ks][2] = *reinterpret_cast<const unsigned*>(qg + (u64)r_lo * PF_D + c + 8);
    qa[ks][3] = *reinterpret_cast<const unsigned*>(qg + (u64)r_hi * PF_D + c + 8);
  }
  float oacc[PF_D / 8][4];
#pragma unroll
  for (int i = 0; i < PF_D / 8; ++i) oacc[i][0] = oacc[i][1] = oacc[i][2] = oacc[i][3] = 0.f;
  float m_lo = -HR_INF, m_hi = -HR_INF, l_lo = 0.f, l_hi = 0.f;
  const int row_lo = qt * BR + r_lo, row_hi = qt * BR + r_hi;
  const int last = (qt * BR + BR - 1) / PF_BC;  // the last key tile any row of this block sees

  pf_load_tile<THREADS>(pf_smem, pf_smem + 2 * PF_TILE_ELEMS, kg, vg, 0);
  for (int j = 0; j <= last; ++j) {
    bf16_t* ks = pf_smem + (j & 1) * PF_TILE_ELEMS;
    bf16_t* vs = pf_smem + (2 + (j & 1)) * PF_TILE_ELEMS;
    if (j < last) {
      pf_load_tile<THREADS>(pf_smem + ((j + 1) & 1) * PF_TILE_ELEMS,
                            pf_smem + (2 + ((j + 1) & 1)) * PF_TILE_ELEMS, kg, vg, (j + 1) * PF_BC);
      asm volatile("cp.async.wait_group 1;");
    } else {
      asm volatile("cp.async.wait_group 0;");
    }
    __syncthreads();
    // Rows r_lo..r_hi of this warp see no key of this tile: nothing to do but the barriers.
    if (j * PF_BC > qt * BR + warp * 16 + 15) {
      __syncthreads();
      continue;
    }

    // S = Q·Kᵀ: 16 rows × 64 keys per warp.
    float s[PF_BC / 8][4];
#pragma unroll
    for (int nt = 0; nt < PF_BC / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.f;
    const int mi = lane >> 3, mr = lane & 7;
#pragma unroll
    for (int ks_ = 0; ks_ < PF_D / 16; ++ks_) {
#pragma unroll
      for (int nt = 0; nt < PF_BC / 8; nt += 2) {
        unsigned b0, b1, b2, b3;
        const int key = (nt + (mi >> 1)) * 8 + mr, col = ks_ * 16 + (mi & 1) * 8;
        ldsm_x4(smem_u32(ks + key * PF_LD + col), b0, b1, b2, b3);
        mma_bf16(s[nt], qa[ks_], b0, b1);
        mma_bf16(s[nt + 1], qa[ks_], b2, b3);
      }
    }

    // Online softmax over this tile (rows r_lo and r_hi of this thread; a quad shares a row).
    float mx_lo = -HR_INF, mx_hi = -HR_INF;
#pragma unroll
    for (int nt = 0; nt < PF_BC / 8; ++nt) {
      const int key = j * PF_BC + nt * 8 + tig * 2;
#pragma unroll
      for (int e = 0; e < 2; ++e) {
        s[nt][e] = key + e <= row_lo ? s[nt][e] * scale_log2 : -HR_INF;
        s[nt][2 + e] = key + e <= row_hi ? s[nt][2 + e] * scale_log2 : -HR_INF;
        mx_lo = fmaxf(mx_lo, s[nt][e]);
        mx_hi = fmaxf(mx_hi, s[nt][2 + e]);
      }
    }
    mx_lo = fmaxf(mx_lo, __shfl_xor_sync(0xffffffffu, mx_lo, 1));
    mx_lo = fmaxf(mx_lo, __shfl_xor_sync(0xffffffffu, mx_lo, 2));
    mx_hi = fmaxf(mx_hi, __shfl_xor_sync(0xffffffffu, mx_hi, 1));
    mx_hi = fmaxf(mx_hi, __shfl_xor_sync(0xffffffffu, mx_hi, 2));
    const float mn_lo = fmaxf(m_lo, mx_lo), mn_hi = fmaxf(m_hi, mx_hi);
    const float al_lo = exp2f(m_lo - mn_lo), al_hi = exp2f(m_hi - mn_hi);
    m_lo = mn_lo;
    m_hi = mn_hi;
    float sum_lo = 0.f, sum_hi = 0.f;
#pragma unroll
    for (int nt = 0; nt < PF_BC / 8; ++nt) {
      s[nt][0] = exp2f(s[nt][0] - mn_lo);
      s[nt][1] = exp2f(s[nt][1] - mn_lo);
      s[nt][2] = exp2f(s[nt][2] - mn_hi);
      s[nt][3] = exp2f(s[nt][3] - mn_hi);
      sum_lo += s[nt][0] + s[nt][1];
      sum_hi += s[nt][2] + s[nt][3];
    }
    l_lo = l_lo * al_lo + sum_lo;
    l_hi = l_hi * al_hi + sum_hi;
#pragma unroll
    for (int dt = 0; dt < PF_D / 8; ++dt) {
      oacc[dt][0] *= al_lo;
      oacc[dt][1] *= al_lo;
      oacc[dt][2] *= al_hi;
      oacc[dt][3] *= al_hi;
    }

    // O += P·V: P re-used from the S accumulators as the A operand.
#pragma unroll
    for (int kt = 0; kt < PF_BC / 16; ++kt) {
      const unsigned pa[4] = {cvt_bf16x2(s[2 * kt][0], s[2 * kt][1]), cvt_bf16x2(s[2 * kt][2], s[2 * kt][3]),
                              cvt_bf16x2(s[2 * kt + 1][0], s[2 * kt + 1][1]),
                              cvt_bf16x2(s[2 * kt + 1][2], s[2 * kt + 1][3])};
#pragma unroll
      for (int dt = 0; dt < PF_D / 8; dt += 2) {
        unsigned b0, b1, b2, b3;
        const int key = kt * 16 + (mi & 1) * 8 + mr, col = (dt + (mi >> 1)) * 8;
        ldsm_x4_t(smem_u32(vs + key * PF_LD + col), b0, b1, b2, b3);
        mma_bf16(oacc[dt], pa, b0, b1);
        mma_bf16(oacc[dt + 1], pa, b2, b3);
      }
    }
    __syncthreads();
  }

  l_lo += __shfl_xor_sync(0xffffffffu, l_lo, 1);
  l_lo += __shfl_xor_sync(0xffffffffu, l_lo, 2);
  l_hi += __shfl_xor_sync(0xffffffffu, l_hi, 1);
  l_hi += __shfl_xor_sync(0xffffffffu, l_hi, 2);
  const float inv_lo = 1.f / l_lo, inv_hi = 1.f / l_hi;
#pragma unroll
  for (int dt = 0; dt < PF_D / 8; ++dt) {
    const int c = dt * 8 + tig * 2;
    *reinterpret_cast<unsigned*>(og + (u64)r_lo * PF_D + c) = cvt_bf16x2(oacc[dt][0] * inv_lo, oacc[dt][1] * inv_lo);
    *reinterpret_cast<unsigned*>(og + (u64)r_hi * PF_D + c) = cvt_bf16x2(oacc[dt][2] * inv_hi, oacc[dt][3] * inv_hi);
  }
}

extern "C" __global__ void __launch_bounds__(128) attn_prefill_bf16(
    const bf16_t* __restrict__ q, const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
    bf16_t* __restrict__ o, int seq, int kv_heads, int kv_cap, float scale_log2) {
  attn_prefill<64>(q, k, v, o, seq, kv_heads, kv_cap, scale_log2);
}

extern "C" __global__ void __launch_bounds__(256) attn_prefill_br128_bf16(
    const bf16_t* __restrict__ q, const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
    bf16_t* __restrict__ o, int seq, int kv_heads, int kv_cap, float scale_log2) {
  attn_prefill<128>(q, k, v, o, seq, kv_heads, kv_cap, scale_log2);
}

// ---- attn_prefill_w32_bf16: 4 warps × 32 query rows (two m16 tiles per warp) ----
#define PW_BR 128
#define PW_THREADS 128
#define PW_MT 2  // m16 tiles per warp
#define PW_BN 32  // keys per step: S is 2 × 16 registers beside O's 128
#define PW_SMEM_BYTES (6 * PF_TILE_ELEMS * 2)  // Q, then two buffers of K and V

// 2^x without exp2f's denormal fix-up: inputs are ≤ 0 and a p below 2^-126 flushes to 0.
__device__ __forceinline__ float ex2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// Issues the cp.async copies of ROWS rows of 128 bf16 into a padded tile (the caller commits).
// Warp w copies rows w·ROWS/4 onward, two rows (512 contiguous bytes) per pass; dst and src are
// this lane's first 16-byte chunk. Successive passes lie 512 bytes apart in global memory, within
// cp.async's immediate offset of one address register (per-pass addresses, which the compiler
// keeps across the key loop, cost registers that S and O need).
template <int ROWS>
__device__ __forceinline__ void pw_copy_rows(unsigned dst, const bf16_t* src) {
#pragma unroll
  for (int i = 0; i < ROWS / 8; ++i) cp_async16(dst + i * 2 * PF_LD * 2, src + i * 2 * PF_D);
}

// One ldmatrix.x4 B fragment pair (n8 tiles n and n + 1) times the A fragments of both m-tiles:
// each B fragment feeds two mma's, the point of 32 rows per warp.
template <int N>
__device__ __forceinline__ void pw_mma_pair(float (&c)[PW_MT][N][4], int n, const unsigned (&a0)[4],
                                            const unsigned (&a1)[4], unsigned b0, unsigned b1, unsigned b2,
                                            unsigned b3) {
  mma_bf16(c[0][n], a0, b0, b1);
  mma_bf16(c[0][n + 1], a0, b2, b3);
  mma_bf16(c[1][n], a1, b0, b1);
  mma_bf16(c[1][n + 1], a1, b2, b3);
}

// S = Q·Kᵀ for the warp's 32 rows × PW_BN keys, raw (unscaled). q_addr and k_addr are this lane's
// ldmatrix addresses of the warp's first Q row and of the step's first key.
__device__ __forceinline__ void pw_scores(float (&s)[PW_MT][PW_BN / 8][4], unsigned q_addr, unsigned k_addr) {
#pragma unroll
  for (int mt = 0; mt < PW_MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < PW_BN / 8; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < PF_D / 16; ++kk) {
    unsigned a[PW_MT][4];
#pragma unroll
    for (int mt = 0; mt < PW_MT; ++mt)
      ldsm_x4(q_addr + (mt * 16 * PF_LD + kk * 16) * 2, a[mt][0], a[mt][1], a[mt][2], a[mt][3]);
#pragma unroll
    for (int nt = 0; nt < PW_BN / 8; nt += 2) {
      unsigned b0, b1, b2, b3;
      ldsm_x4(k_addr + (nt * 8 * PF_LD + kk * 16) * 2, b0, b1, b2, b3);
      pw_mma_pair(s, nt, a[0], a[1], b0, b1, b2, b3);
    }
  }
}

// Causal mask of the step on the warp's diagonal (keys key0..key0+31 = the warp's rows): keys
// after a row become -inf. row0 is this thread's first row (its rows: row0 + 16·mt + {0, 8}).
__device__ __forceinline__ void pw_mask(float (&s)[PW_MT][PW_BN / 8][4], int key0, int row0) {
#pragma unroll
  for (int mt = 0; mt < PW_MT; ++mt)
#pragma unroll
    for (int nt = 0; nt < PW_BN / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int key = key0 + nt * 8 + (threadIdx.x & 3) * 2 + (e & 1);
        if (key > row0 + mt * 16 + (e >> 1) * 8) s[mt][nt][e] = -HR_INF;
      }
}

// Online softmax of one step, one m-tile at a time: m (raw row maxima) and l (this thread's
// partial row sums) per [m-tile][row g, row g + 8]; P = 2^(s·scale − m·scale) (one FMA and one
// ex2 per score) is packed to bf16 into pa, the A operand of each 16-key slice, and O is
// rescaled. Every row has an unmasked key in each step its warp runs: m is finite from the first.
__device__ __forceinline__ void pw_softmax(float (&s)[PW_MT][PW_BN / 8][4], float (&m)[PW_MT][2],
                                           float (&l)[PW_MT][2], float (&oacc)[PW_MT][PF_D / 8][4],
                                           unsigned (&pa)[PW_MT][PW_BN / 16][4], float scale_log2) {
#pragma unroll
  for (int mt = 0; mt < PW_MT; ++mt) {
    float alpha[2];
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      float mx = m[mt][h];
#pragma unroll
      for (int nt = 0; nt < PW_BN / 8; ++nt) mx = fmaxf(mx, fmaxf(s[mt][nt][2 * h], s[mt][nt][2 * h + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      alpha[h] = ex2_ftz((m[mt][h] - mx) * scale_log2);
      m[mt][h] = mx;
      const float ms = mx * scale_log2;
      float sum = 0.f;
#pragma unroll
      for (int nt = 0; nt < PW_BN / 8; ++nt) {
        s[mt][nt][2 * h] = ex2_ftz(fmaf(s[mt][nt][2 * h], scale_log2, -ms));
        s[mt][nt][2 * h + 1] = ex2_ftz(fmaf(s[mt][nt][2 * h + 1], scale_log2, -ms));
        sum += s[mt][nt][2 * h] + s[mt][nt][2 * h + 1];
      }
      l[mt][h] = l[mt][h] * alpha[h] + sum;
    }
#pragma unroll
    for (int kt = 0; kt < PW_BN / 16; ++kt)
#pragma unroll
      for (int i = 0; i < 4; ++i) {
        const float* p = s[mt][2 * kt + (i >> 1)] + (i & 1) * 2;  // a0: row g, a1: g + 8, a2/a3: keys + 8
        pa[mt][kt][i] = cvt_bf16x2(p[0], p[1]);
      }
#pragma unroll
    for (int dt = 0; dt < PF_D / 8; ++dt) {
      oacc[mt][dt][0] *= alpha[0];
      oacc[mt][dt][1] *= alpha[0];
      oacc[mt][dt][2] *= alpha[1];
      oacc[mt][dt][3] *= alpha[1];
    }
  }
}

// O += P·V for one step. v_addr is this lane's ldmatrix.trans address of the step's first key.
__device__ __forceinline__ void pw_pv(float (&oacc)[PW_MT][PF_D / 8][4], const unsigned (&pa)[PW_MT][PW_BN / 16][4],
                                      unsigned v_addr) {
#pragma unroll
  for (int kt = 0; kt < PW_BN / 16; ++kt)
#pragma unroll
    for (int dt = 0; dt < PF_D / 8; dt += 2) {
      unsigned b0, b1, b2, b3;
      ldsm_x4_t(v_addr + (kt * 16 * PF_LD + dt * 8) * 2, b0, b1, b2, b3);
      pw_mma_pair(oacc, dt, pa[0][kt], pa[1][kt], b0, b1, b2, b3);
    }
}

// Shared memory (PW_SMEM_BYTES): Q (128 rows) in tiles 0–1, then buffer 0 (K tile 2, V tile 3)
// and buffer 1 (K tile 4, V tile 5). Per key tile j: wait for tile j, one barrier (tile j is
// visible and every warp is done with tile j − 1), copy tile j + 1 into the other buffer, then
// compute tile j as two steps of 32 keys: S = Q·Kᵀ (2 × 16 registers), softmax, O += P·V. A warp
// runs the steps up to its diagonal (key0 ≤ its first row; the step with key0 = its first row is
// the only one masked) and skips the rest.
extern "C" __global__ void __launch_bounds__(PW_THREADS, 2) attn_prefill_w32_bf16(
    const bf16_t* __restrict__ q, const bf16_t* __restrict__ k, const bf16_t* __restrict__ v,
    bf16_t* __restrict__ o, int seq, int kv_heads, int kv_cap, float scale_log2) {
  extern __shared__ __align__(16) bf16_t pf_smem[];
  const int qt = gridDim.x - 1 - blockIdx.x;  // longest rows first
  const int h = blockIdx.y, b = blockIdx.z, heads = gridDim.y;
  const int kvh = h / (heads / kv_heads);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, g = lane >> 2, tig = lane & 3;
  const int mi = lane >> 3, mr = lane & 7;  // ldmatrix: this lane's matrix and row in it
  const int crow = warp * (PF_BC / 4) + (lane >> 4), ccol = (lane & 15) * 8;  // pw_copy_rows' first
  const int chunk = crow * PF_LD + ccol, gchunk = crow * PF_D + ccol;          // chunk of a K/V tile
  const bf16_t* qg = q + (((u64)b * heads + h) * seq + (u64)qt * PW_BR) * PF_D;
  const bf16_t* kg = k + ((u64)b * kv_heads + kvh) * kv_cap * PF_D + gchunk;
  const bf16_t* vg = v + ((u64)b * kv_heads + kvh) * kv_cap * PF_D + gchunk;
  constexpr unsigned BUF = 2 * PF_TILE_ELEMS * 2;  // bytes from buffer 0 to buffer 1
  const unsigned qs = smem_u32(pf_smem), ks = qs + 2 * PF_TILE_ELEMS * 2, vs = ks + PF_TILE_ELEMS * 2;
  const unsigned q_addr = qs + ((warp * 32 + (mi & 1) * 8 + mr) * PF_LD + (mi >> 1) * 8) * 2;
  const unsigned k_addr = ks + (((mi >> 1) * 8 + mr) * PF_LD + (mi & 1) * 8) * 2;
  const unsigned v_addr = vs + (((mi & 1) * 8 + mr) * PF_LD + (mi >> 1) * 8) * 2;
  const int w0 = qt * PW_BR + warp * 32;              // the warp's first row
  const int last = (qt * PW_BR + PW_BR - 1) / PF_BC;  // the last key tile any row of the block sees

  float oacc[PW_MT][PF_D / 8][4], m[PW_MT][2], l[PW_MT][2];
#pragma unroll
  for (int mt = 0; mt < PW_MT; ++mt) {
#pragma unroll
    for (int dt = 0; dt < PF_D / 8; ++dt) oacc[mt][dt][0] = oacc[mt][dt][1] = oacc[mt][dt][2] = oacc[mt][dt][3] = 0.f;
    m[mt][0] = m[mt][1] = -HR_INF;
    l[mt][0] = l[mt][1] = 0.f;
  }

  pw_copy_rows<PW_BR>(qs + (chunk + warp * (PF_BC / 4) * PF_LD) * 2, qg + gchunk + warp * (PF_BC / 4) * PF_D);
  pw_copy_rows<PF_BC>(ks + chunk * 2, kg);
  pw_copy_rows<PF_BC>(vs + chunk * 2, vg);
  asm volatile("cp.async.commit_group;");
  for (int j = 0; j <= last; ++j) {
    asm volatile("cp.async.wait_group 0;");
    __syncthreads();
    if (j < last) {
      const u64 next = (u64)(j + 1) * PF_BC * PF_D;
      pw_copy_rows<PF_BC>(ks + ((j + 1) & 1) * BUF + chunk * 2, kg + next);
      pw_copy_rows<PF_BC>(vs + ((j + 1) & 1) * BUF + chunk * 2, vg + next);
      asm volatile("cp.async.commit_group;");
    }
#pragma unroll
    for (int st = 0; st < PF_BC / PW_BN; ++st) {
      const int key0 = j * PF_BC + st * PW_BN;
      if (key0 > w0) break;  // after the warp's last row (w0 and key0 are multiples of 32)
      const unsigned at = (j & 1) * BUF + st * PW_BN * PF_LD * 2;
      float s[PW_MT][PW_BN / 8][4];
      unsigned pa[PW_MT][PW_BN / 16][4];
      pw_scores(s, q_addr, k_addr + at);
      if (key0 == w0) pw_mask(s, key0, w0 + g);
      pw_softmax(s, m, l, oacc, pa, scale_log2);
      pw_pv(oacc, pa, v_addr + at);
    }
  }

  bf16_t* og = o + (((u64)b * heads + h) * seq + (u64)qt * PW_BR) * PF_D;
#pragma unroll
  for (int mt = 0; mt < PW_MT; ++mt)
#pragma unroll
    for (int h2 = 0; h2 < 2; ++h2) {
      float sum = l[mt][h2];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      const float inv = 1.f / sum;
      const int r = warp * 32 + mt * 16 + h2 * 8 + g;
#pragma unroll
      for (int dt = 0; dt < PF_D / 8; ++dt)
        *reinterpret_cast<unsigned*>(og + (u64)r * PF_D + dt * 8 + tig * 2) =
            cvt_bf16x2(oacc[mt][dt][2 * h2] * inv, oacc[mt][dt][2 * h2 + 1] * inv);
    }
}
