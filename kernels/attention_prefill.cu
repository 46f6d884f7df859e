// attention_prefill.cu — causal attention for a prompt (flash-attention-2 style), bf16 in and out,
// fp32 accumulation on tensor cores through inline PTX mma.sync.m16n8k16 (sm_80+), GQA.
//
// q, o [batch][heads][seq][128]; k, v [batch][kv_heads][kv_cap][128] (kv_cap ≥ seq rows per
// (sequence, KV head); the keys are rows 0..seq, so a KV cache with spare rows is read in place;
// the benchmark passes kv_cap = seq). Two tile heights, one body (attn_prefill<BR>):
//   attn_prefill_bf16:       BR = 64 query rows per block, 128 threads; seq a multiple of 64;
//   attn_prefill_br128_bf16: BR = 128 rows, 256 threads (each K/V tile serves twice the queries);
//                            seq a multiple of 128.
// Grid (seq/BR, heads, batch), 4 or 8 warps × 16 query rows. K and V tiles of 64 keys are
// double-buffered in shared memory with cp.async (rows padded to 136 elements: conflict-free
// ldmatrix); S = Q·Kᵀ and O += P·V stay in registers; the softmax is online, in log2 units. A
// warp skips the key tiles that lie wholly after its last row (the diagonal of BR = 128).
// Dynamic shared memory: PF_SMEM_BYTES (the host raises the function's limit above 48 KiB).
#define PF_D 128
#define PF_BC 64
#define PF_LD 136
#define PF_TILE_ELEMS (PF_BC * PF_LD)
#define PF_SMEM_BYTES (4 * PF_TILE_ELEMS * 2)

__device__ __forceinline__ unsigned smem_u32(const void* p) {
  unsigned a;
  asm("{ .reg .u64 t; cvta.to.shared.u64 t, %1; cvt.u32.u64 %0, t; }" : "=r"(a) : "l"(p));
  return a;
}

__device__ __forceinline__ void cp_async16(unsigned dst, const void* src) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16;" ::"r"(dst), "l"(src));
}

__device__ __forceinline__ void ldsm_x4(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void ldsm_x4_t(unsigned addr, unsigned& r0, unsigned& r1, unsigned& r2, unsigned& r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3) : "r"(addr));
}

__device__ __forceinline__ void mma_bf16(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1) {
  asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
               : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ unsigned cvt_bf16x2(float lo, float hi) {
  unsigned r;
  asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
  return r;
}

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
