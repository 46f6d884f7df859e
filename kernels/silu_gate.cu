// silu_gate.cu — the gated MLP activation out = silu(gate) · up = gate / (1 + e^−gate) · up,
// bf16 in and out, fp32 math; n counts uint4 groups of 8 elements.
extern "C" __global__ void silu_gate_bf16(const uint4* __restrict__ gate, const uint4* __restrict__ up,
                                          uint4* __restrict__ out, u64 n) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
    uint4 g = gate[i], u = up[i];
    unsigned gp[4] = {g.x, g.y, g.z, g.w}, up4[4] = {u.x, u.y, u.z, u.w}, r[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      float a = bf16_lo(gp[j]), b = bf16_hi(gp[j]);
      float sa = a / (1.f + __expf(-a)), sb = b / (1.f + __expf(-b));
      r[j] = pack_bf16(sa * bf16_lo(up4[j]), sb * bf16_hi(up4[j]));
    }
    out[i] = make_uint4(r[0], r[1], r[2], r[3]);
  }
}
