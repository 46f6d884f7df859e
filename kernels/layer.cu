// layer.cu — the data-movement and elementwise steps of `headroom validate`'s synthetic model
// (src/gpu/cuda/layer.rs launches them; src/validate/backend.rs documents every layout). Written
// for obviousness, not speed: one thread per element (per 8 elements for the dequantisation),
// grid-striding with 64-bit indices, no shared memory, no assumption about the grid size.
// Element indices are row-major; every bf16 is converted through fp32 as common.cuh does.

#define LAYER_FOR(i, total) \
  for (u64 i = blockIdx.x * (u64)blockDim.x + threadIdx.x; i < (total); i += (u64)gridDim.x * blockDim.x)

// embed_bf16: out[t][c] = table[ids[t]][c] for t < tokens, c < hidden; ids i32 [tokens], table bf16
// [vocab][hidden], out bf16 [tokens][hidden]. Element i of out is (t, c) = (i / hidden, i % hidden).
// An id outside 0..vocab writes a row of zeros instead of reading out of bounds.
extern "C" __global__ void embed_bf16(const int* __restrict__ ids, const bf16_t* __restrict__ table,
                                      bf16_t* __restrict__ out, u64 tokens, int hidden, u64 vocab) {
  LAYER_FOR(i, tokens * (u64)hidden) {
    const u64 t = i / hidden;
    const u64 c = i % hidden;
    const int id = ids[t];
    out[i] = (id >= 0 && (u64)id < vocab) ? table[(u64)id * hidden + c] : (bf16_t)0;
  }
}

// add_bf16: x[i] = bf16(x[i] + y[i]) for i < n (the residual add, fp32 sum rounded once).
extern "C" __global__ void add_bf16(bf16_t* __restrict__ x, const bf16_t* __restrict__ y, u64 n) {
  LAYER_FOR(i, n) x[i] = f32_to_bf16(bf16_to_f32(x[i]) + bf16_to_f32(y[i]));
}

// split_heads_bf16: dst[b][h][pos0 + t][d] = src[b][t][h][d].
//   src [batch][seq][heads][head_dim] token-major; dst [batch][heads][cap][head_dim] head-major with
//   `cap` rows per (sequence, head), pos0 + seq ≤ cap (a KV cache, or q with cap = seq, pos0 = 0).
//   Thread i reads src element i: d = i % head_dim, h = (i / head_dim) % heads,
//   t = (i / (head_dim·heads)) % seq, b = i / (head_dim·heads·seq).
extern "C" __global__ void split_heads_bf16(const bf16_t* __restrict__ src, bf16_t* __restrict__ dst, int batch,
                                         int seq, int heads, int head_dim, int cap, int pos0) {
  LAYER_FOR(i, (u64)batch * seq * heads * head_dim) {
    const u64 d = i % head_dim;
    const u64 bth = i / head_dim;  // (b·seq + t)·heads + h
    const u64 h = bth % heads;
    const u64 bt = bth / heads;  // b·seq + t
    const u64 t = bt % seq;
    const u64 b = bt / seq;
    dst[((b * heads + h) * cap + pos0 + t) * head_dim + d] = src[i];
  }
}

// merge_heads_bf16: dst[b][t][h][d] = src[b][h][t][d].
//   src [batch][heads][seq][head_dim] head-major; dst [batch][seq][heads][head_dim] token-major.
//   Thread i writes dst element i, decomposed as in split_heads_bf16.
extern "C" __global__ void merge_heads_bf16(const bf16_t* __restrict__ src, bf16_t* __restrict__ dst, int batch,
                                           int seq, int heads, int head_dim) {
  LAYER_FOR(i, (u64)batch * seq * heads * head_dim) {
    const u64 d = i % head_dim;
    const u64 bth = i / head_dim;
    const u64 h = bth % heads;
    const u64 bt = bth / heads;
    const u64 t = bt % seq;
    const u64 b = bt / seq;
    dst[i] = src[((b * heads + h) * seq + t) * head_dim + d];
  }
}

// dequant_int4_bf16: w[r][c] = bf16((nibble − 8) · scale[r][c / 128]) for r < rows, c < cols, the
// layout of kernels/gemv.cu: qweight u32 [rows][cols/8], nibble i (bits 4i..4i+3) of word j is
// column 8j + i; scales f16 [rows][cols/128]; w bf16 [rows][cols] (16-byte aligned). cols is a
// multiple of 128. Thread i expands word i: r = i / (cols/8), j = i % (cols/8), and writes the eight
// columns 8j..8j+7 of row r as one 16-byte store (the product rounded to bf16 once, as the CPU
// reference does).
extern "C" __global__ void dequant_int4_bf16(const unsigned* __restrict__ qweight, const f16_t* __restrict__ scales,
                                             bf16_t* __restrict__ w, int rows, int cols) {
  const u64 words_per_row = (u64)(cols / 8), groups = (u64)(cols / 128);
  LAYER_FOR(i, (u64)rows * words_per_row) {
    const u64 r = i / words_per_row, j = i % words_per_row;
    const float s = f16_to_f32(scales[r * groups + (8 * j) / 128]);
    const unsigned word = qweight[i];
    float v[8];
#pragma unroll
    for (int n = 0; n < 8; ++n) v[n] = (float)((int)((word >> (4 * n)) & 0xFu) - 8) * s;
    // w + r·cols + 8j = w + 8·i: eight bf16 starting at a multiple of 16 bytes.
    reinterpret_cast<uint4*>(w)[i] =
        make_uint4(pack_bf16(v[0], v[1]), pack_bf16(v[2], v[3]), pack_bf16(v[4], v[5]), pack_bf16(v[6], v[7]));
  }
}
