// adamw.cu — one AdamW step (Loshchilov & Hutter; torch.optim.AdamW), fp32 parameters, gradients
// and moments: m = b1·m + (1−b1)·g; v = b2·v + (1−b2)·g²; p −= lr·wd·p;
// p −= lr · (m / bc1) / (sqrt(v / bc2) + eps), with bc1 = 1 − b1^t, bc2 = 1 − b2^t.
// n counts float4 groups.
extern "C" __global__ void adamw_f32(float4* __restrict__ p, const float4* __restrict__ g, float4* __restrict__ m,
                                     float4* __restrict__ v, u64 n, float lr, float b1, float b2, float eps,
                                     float wd, float bc1, float bc2) {
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < n; i += (u64)gridDim.x * blockDim.x) {
    float4 pp = p[i], gg = g[i], mm = m[i], vv = v[i];
    float* pa = &pp.x; const float* ga = &gg.x; float* ma = &mm.x; float* va = &vv.x;
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      ma[j] = b1 * ma[j] + (1.f - b1) * ga[j];
      va[j] = b2 * va[j] + (1.f - b2) * ga[j] * ga[j];
      pa[j] -= lr * wd * pa[j];
      pa[j] -= lr * (ma[j] / bc1) / (sqrtf(va[j] / bc2) + eps);
    }
    p[i] = pp; m[i] = mm; v[i] = vv;
  }
}
