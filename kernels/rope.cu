// rope.cu — rotary position embedding, rotate-half (GPT-NeoX / Llama in transformers) layout, in
// place on x[tokens][heads][head_dim] bf16. cos/sin tables are fp32 [positions][head_dim/2], as
// transformers precomputes them: for i < half, (x_i, x_{i+half}) -> (x_i·c − x_{i+half}·s,
// x_{i+half}·c + x_i·s).
//
// The tokens are batch sequences of `seq` tokens each (tokens = batch·seq): token index t is at
// position p = pos0 + t % seq, and c, s = cos_t[p][i], sin_t[p][i]. The benchmark passes
// seq = tokens, pos0 = 0 (position = token index). One thread per (token, head, i < half) pair,
// grid-striding over tokens·heads·half.
extern "C" __global__ void rope_bf16(bf16_t* __restrict__ x, const float* __restrict__ cos_t,
                                     const float* __restrict__ sin_t, int tokens, int heads, int head_dim, int seq,
                                     int pos0) {
  const int half = head_dim / 2;
  const u64 total = (u64)tokens * heads * half;
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < total; i += (u64)gridDim.x * blockDim.x) {
    const int j = (int)(i % half);
    const u64 th = i / half;  // token * heads + head
    const int t = (int)(th / heads);
    const u64 p = (u64)pos0 + (u64)(t % seq);
    bf16_t* base = x + th * head_dim;
    const float c = cos_t[p * half + j], s = sin_t[p * half + j];
    const float a = bf16_to_f32(base[j]), b = bf16_to_f32(base[j + half]);
    base[j] = f32_to_bf16(a * c - b * s);
    base[j + half] = f32_to_bf16(b * c + a * s);
  }
}
