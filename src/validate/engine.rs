//! The synthetic model `validate` runs: a Llama-style decoder with random weights of the exact
//! shapes and format, on any [`LayerBackend`]. One forward pass serves prefill (`seq` tokens per
//! sequence from position 0) and decode (one token per sequence at position `pos0`):
//!
//! ```text
//! x = embed(ids)
//! per layer:  n = rmsnorm(x); q, k, v = n·Wqᵀ, n·Wkᵀ, n·Wvᵀ; rope(q, k)
//!             k, v → KV cache rows pos0..; attention(q, cache) → o; n = o·Woᵀ; x += n
//!             n = rmsnorm(x); g, u = n·Wgᵀ, n·Wuᵀ; g = silu(g)·u; n = g·Wdᵀ; x += n
//! logits = rmsnorm(x)[last token of each sequence] · W_lmᵀ
//! ```
//!
//! Buffers come from [`Layout`]: every allocation the engine makes is there, so NVML sees only
//! these slabs, the CUDA context and what cuBLAS keeps outside its workspace.

use super::backend::{bf16_bytes, Attn, Buf, Fill, Heads, LayerBackend, Linear};
use super::cpu::host_fill;
use super::layout::{Layout, Request, Storage, TensorAlloc};
use crate::gpu::GpuError;
use crate::model::spec::ModelSpec;
use crate::model::tensors::Role;

/// RMSNorm epsilon (Llama 2's `rms_norm_eps`; the value does not change the work).
pub(super) const EPS: f32 = 1e-5;
/// RoPE base (Llama 2's `rope_theta`; the value does not change the work).
const ROPE_THETA: f64 = 10_000.0;

/// How weights get their random values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Filled on the device (fast; the values are the backend's own).
    Device,
    /// Generated on the host and uploaded, so two backends hold the same model.
    Host,
}

/// One decoder layer's weights.
pub(super) struct LayerWeights {
    pub attn_norm: Buf,
    pub ffn_norm: Buf,
    pub q: Linear,
    pub k: Linear,
    pub v: Linear,
    pub o: Linear,
    pub gate: Linear,
    pub up: Linear,
    pub down: Linear,
}

/// Where each weight of the model lives.
pub(super) struct Weights {
    pub embed: Buf,
    pub out_norm: Buf,
    pub lm_head: Linear,
    pub layers: Vec<LayerWeights>,
}

/// The model on a backend: its weights, KV cache, arena and workspace.
pub struct Model {
    spec: ModelSpec,
    req: Request,
    w: Weights,
    kv: Vec<(Buf, Buf)>,
    x: Buf,
    n: Buf,
    scratch: Buf,
    logits: Buf,
    cos: Buf,
    sin: Buf,
    ids: Buf,
    decode_ws: Buf,
    dequant: Buf,
}

/// The allocation steps, so a caller can sample memory between them.
impl Model {
    /// Allocates and fills every weight.
    pub fn load_weights<B: LayerBackend>(
        b: &mut B,
        spec: &ModelSpec,
        layout: &Layout,
        req: &Request,
        init: Init,
    ) -> Result<WeightsLoaded, GpuError> {
        let tensors = load_tensors(b, &layout.tensors, init)?;
        Ok(WeightsLoaded { tensors, spec: spec.clone(), req: *req })
    }
}

/// Allocates one slab for `tensors` and fills each: every tensor with its parts' buffers.
pub(super) fn load_tensors<B: LayerBackend>(
    b: &mut B,
    tensors: &[TensorAlloc],
    init: Init,
) -> Result<Vec<(TensorAlloc, Vec<Buf>)>, GpuError> {
    let sizes: Vec<u64> = tensors.iter().flat_map(|t| t.parts.iter().copied()).collect();
    let bufs = b.alloc_slab("weights", &sizes)?;
    let mut it = bufs.into_iter();
    let mut loaded = Vec::with_capacity(tensors.len());
    for (i, t) in tensors.iter().enumerate() {
        let parts: Vec<Buf> = it.by_ref().take(t.parts.len()).collect();
        fill_tensor(b, t, &parts, 1 + i as u32, init)?;
        loaded.push((t.clone(), parts));
    }
    Ok(loaded)
}

/// Weights on the device, waiting for the KV cache and the arena.
pub struct WeightsLoaded {
    tensors: Vec<(TensorAlloc, Vec<Buf>)>,
    spec: ModelSpec,
    req: Request,
}

impl WeightsLoaded {
    /// Allocates the KV cache (not filled: only rows already written are read).
    pub fn alloc_kv<B: LayerBackend>(self, b: &mut B, layout: &Layout) -> Result<KvLoaded, GpuError> {
        let half = layout.kv_per_layer / 2;
        let bufs = b.alloc_slab("KV cache", &vec![half; 2 * layout.layers as usize])?;
        let kv = bufs.chunks_exact(2).map(|p| (p[0], p[1])).collect();
        Ok(KvLoaded { weights: self, kv })
    }
}

/// Weights and KV cache, waiting for the arena and workspace.
pub struct KvLoaded {
    weights: WeightsLoaded,
    kv: Vec<(Buf, Buf)>,
}

impl KvLoaded {
    /// Allocates the arena and the workspace, fills the rotary tables, and hands cuBLAS its
    /// workspace: the model is ready to run.
    pub fn alloc_arena<B: LayerBackend>(self, b: &mut B, layout: &Layout) -> Result<Model, GpuError> {
        let arena = b.alloc_slab("activation arena", &[layout.stream, layout.stream, layout.scratch])?;
        let sizes: Vec<u64> = layout.workspace.iter().map(|w| w.1).collect();
        let ws = b.alloc_slab("workspace", &sizes)?;
        let named = |name: &str| {
            layout.workspace.iter().position(|w| w.0.starts_with(name)).map(|i| ws[i]).unwrap_or(Buf {
                slab: ws[0].slab,
                offset: 0,
                bytes: 0,
            })
        };
        b.set_blas_workspace(named("cuBLAS"))?;
        let WeightsLoaded { tensors, spec, req } = self.weights;
        let (cos, sin) = rotary_tables(req.context, spec.head_dim);
        let rotary = named("rotary");
        let (cos_buf, sin_buf) = split_half(rotary);
        b.upload(cos_buf, &cos)?;
        b.upload(sin_buf, &sin)?;
        Ok(Model {
            w: Weights::bind(&spec, &tensors)?,
            kv: self.kv,
            x: arena[0],
            n: arena[1],
            scratch: arena[2],
            logits: named("logits"),
            cos: cos_buf,
            sin: sin_buf,
            ids: named("token ids"),
            decode_ws: named("decode attention"),
            dequant: named("dequantized"),
            spec,
            req,
        })
    }
}

fn split_half(b: Buf) -> (Buf, Buf) {
    let half = b.bytes / 2;
    (Buf { bytes: half, ..b }, b.skip(half))
}

/// cos and sin f32 `[positions][head_dim/2]`, position p and pair j at angle p·θ^(−2j/d).
pub(super) fn rotary_tables(positions: u64, head_dim: u64) -> (Vec<u8>, Vec<u8>) {
    let half = head_dim / 2;
    let (mut cos, mut sin) = (Vec::new(), Vec::new());
    for p in 0..positions {
        for j in 0..half {
            let angle = p as f64 * ROPE_THETA.powf(-2.0 * j as f64 / head_dim as f64);
            cos.extend_from_slice(&(angle.cos() as f32).to_le_bytes());
            sin.extend_from_slice(&(angle.sin() as f32).to_le_bytes());
        }
    }
    (cos, sin)
}

/// Fills one tensor's parts: bf16 values scaled so activations stay near unit size, 4-bit codes
/// as random words, f16 group scales, and zeros / `g_idx` as random words (never read).
fn fill_tensor<B: LayerBackend>(
    b: &mut B,
    t: &TensorAlloc,
    parts: &[Buf],
    seed: u32,
    init: Init,
) -> Result<(), GpuError> {
    let cols = t.desc.cols.max(1) as f32;
    let plan: Vec<(Fill, f32)> = match t.storage {
        Storage::Bf16 if t.desc.role == Role::TokenEmbd || t.desc.is_vector() => vec![(Fill::Bf16, 1.0)],
        Storage::Bf16 => vec![(Fill::Bf16, 1.7 / cols.sqrt())],
        // Codes −8..7 have a standard deviation of about 4.6.
        Storage::Int4(_) => {
            let mut p = vec![(Fill::U32, 0.0), (Fill::F16, 0.37 / cols.sqrt())];
            p.extend(std::iter::repeat_n((Fill::U32, 0.0), parts.len() - 2));
            p
        }
    };
    for (k, (&buf, (fill, scale))) in parts.iter().zip(plan).enumerate() {
        let seed = seed.wrapping_mul(16).wrapping_add(k as u32);
        match init {
            Init::Device => b.fill(buf, fill, seed, scale)?,
            Init::Host => b.upload(buf, &host_fill(fill, buf.bytes, seed, scale))?,
        }
    }
    Ok(())
}

impl Weights {
    /// Finds every tensor's place in the model.
    pub(super) fn bind(spec: &ModelSpec, tensors: &[(TensorAlloc, Vec<Buf>)]) -> Result<Weights, GpuError> {
        let find = |layer: Option<u32>, role: Role| {
            tensors
                .iter()
                .find(|(t, _)| t.desc.layer == layer && t.desc.role == role)
                .ok_or_else(|| GpuError::Unsupported(format!("{} has no {role:?} tensor in layer {layer:?}", spec.id)))
        };
        let vector = |layer, role| find(layer, role).map(|(_, p)| p[0]);
        let linear = |layer, role| {
            find(layer, role).map(|(t, p)| match t.storage {
                Storage::Bf16 => Linear::Bf16 { w: p[0], rows: t.desc.rows, cols: t.desc.cols },
                Storage::Int4(_) => Linear::Int4 { qweight: p[0], scales: p[1], rows: t.desc.rows, cols: t.desc.cols },
            })
        };
        let embed = vector(None, Role::TokenEmbd)?;
        let layers = (0..spec.num_layers as u32)
            .map(|l| {
                let l = Some(l);
                Ok(LayerWeights {
                    attn_norm: vector(l, Role::AttnNorm)?,
                    ffn_norm: vector(l, Role::FfnNorm)?,
                    q: linear(l, Role::AttnQ)?,
                    k: linear(l, Role::AttnK)?,
                    v: linear(l, Role::AttnV)?,
                    o: linear(l, Role::AttnOutput)?,
                    gate: linear(l, Role::FfnGate)?,
                    up: linear(l, Role::FfnUp)?,
                    down: linear(l, Role::FfnDown)?,
                })
            })
            .collect::<Result<Vec<_>, GpuError>>()?;
        Ok(Weights {
            embed,
            out_norm: vector(None, Role::OutputNorm)?,
            // Tied embeddings: the output layer is the embedding table.
            lm_head: linear(None, Role::Output).unwrap_or(Linear::Bf16 {
                w: embed,
                rows: spec.vocab_size,
                cols: spec.hidden_size,
            }),
            layers,
        })
    }
}

impl Model {
    /// Writes token ids (i32) starting at slot `at` of the id buffer. A pass at position `pos0`
    /// reads its `batch × seq` ids from slot `pos0 × batch`: a prefill's `[batch][seq]` from 0,
    /// decode step p's `[batch]` from p·batch, so every step's ids can be written up front.
    pub fn set_tokens<B: LayerBackend>(&self, b: &mut B, at: u64, ids: &[u32]) -> Result<(), GpuError> {
        if (at + ids.len() as u64) * 4 > self.ids.bytes {
            return Err(GpuError::Unsupported(format!(
                "{} token ids at slot {at}: the id buffer holds {}",
                ids.len(),
                self.ids.bytes / 4
            )));
        }
        let bytes: Vec<u8> = ids.iter().flat_map(|&i| (i % self.spec.vocab_size as u32).to_le_bytes()).collect();
        b.upload(Buf { bytes: bytes.len() as u64, ..self.ids.skip(at * 4) }, &bytes)
    }

    /// One forward pass over `seq` tokens per sequence starting at position `pos0`: prefill
    /// when `seq > 1` (from position 0), a decode step when `seq == 1`. Leaves the logits of
    /// each sequence's last token in the logits buffer.
    pub fn forward<B: LayerBackend>(&self, b: &mut B, seq: u64, pos0: u64) -> Result<(), GpuError> {
        let s = &self.spec;
        let batch = self.req.batch;
        // A prefill starts at position 0: its attention reads cache rows 0..seq.
        if seq == 0 || (seq > 1 && pos0 != 0) || pos0 + seq > self.req.context {
            return Err(GpuError::Unsupported(format!(
                "a pass of {seq} tokens at position {pos0} (prefill from 0, or one token, within the context {})",
                self.req.context
            )));
        }
        let t = batch * seq;
        let (h, qw, kvw, i, d) = (s.hidden_size, s.q_width(), s.kv_width(), s.intermediate_size, s.head_dim);
        let (x, n) = (self.x, self.n);
        // Attention's buffers and the MLP's share the scratch region.
        let carve = |sizes: &[u64]| {
            let mut at = 0;
            sizes
                .iter()
                .map(|&bytes| {
                    let buf = Buf { bytes, ..self.scratch.skip(at) };
                    at += bytes;
                    buf
                })
                .collect::<Vec<_>>()
        };
        let a = carve(&[
            bf16_bytes(t * qw),
            bf16_bytes(t * kvw),
            bf16_bytes(t * kvw),
            bf16_bytes(t * qw),
            bf16_bytes(t * qw),
        ]);
        let (q, k, v, qh, oh) = (a[0], a[1], a[2], a[3], a[4]);
        let m = carve(&[bf16_bytes(t * i), bf16_bytes(t * i)]);
        let (gate, up) = (m[0], m[1]);
        let q_heads = Heads { batch, seq, heads: s.num_heads, head_dim: d };
        let kv_heads = Heads { heads: s.num_kv_heads, ..q_heads };
        let cap = self.req.context;

        b.embed(self.ids.skip(pos0 * batch * 4), self.w.embed, x, t, h)?;
        for (layer, w) in self.w.layers.iter().enumerate() {
            let (kc, vc) = self.kv[layer];
            b.rmsnorm(x, w.attn_norm, n, t, h, EPS)?;
            b.linear(&w.q, n, h, q, t, self.dequant)?;
            b.linear(&w.k, n, h, k, t, self.dequant)?;
            b.linear(&w.v, n, h, v, t, self.dequant)?;
            b.rope(q, self.cos, self.sin, q_heads, pos0)?;
            b.rope(k, self.cos, self.sin, kv_heads, pos0)?;
            b.split_heads(k, kc, kv_heads, cap, pos0)?;
            b.split_heads(v, vc, kv_heads, cap, pos0)?;
            let attn = Attn { batch, heads: s.num_heads, kv_heads: s.num_kv_heads, head_dim: d, seq, cap };
            // The token-major output, input of the output projection.
            let o = if seq > 1 {
                b.split_heads(q, qh, q_heads, seq, 0)?;
                b.attention_prefill(qh, kc, vc, oh, attn)?;
                b.merge_heads(oh, q, q_heads)?;
                q
            } else {
                // One token per sequence: [b][heads][d] is already token-major.
                b.attention_decode(q, kc, vc, qh, self.decode_ws, Attn { seq: pos0 + 1, ..attn })?;
                qh
            };
            b.linear(&w.o, o, qw, n, t, self.dequant)?;
            b.add(x, n, t * h)?;
            b.rmsnorm(x, w.ffn_norm, n, t, h, EPS)?;
            b.linear(&w.gate, n, h, gate, t, self.dequant)?;
            b.linear(&w.up, n, h, up, t, self.dequant)?;
            b.silu_gate(gate, up, gate, t * i)?;
            b.linear(&w.down, gate, i, n, t, self.dequant)?;
            b.add(x, n, t * h)?;
        }
        b.rmsnorm(x, self.w.out_norm, n, t, h, EPS)?;
        // The last token of each sequence: rows seq−1, 2·seq−1, ...
        b.linear(&self.w.lm_head, n.skip(bf16_bytes((seq - 1) * h)), seq * h, self.logits, batch, self.dequant)
    }

    /// The logits of the last forward pass, `[batch][vocab]`.
    pub fn logits<B: LayerBackend>(&self, b: &mut B) -> Result<Vec<f32>, GpuError> {
        let bytes = b.download(self.logits)?;
        Ok(bytes
            .chunks_exact(2)
            .map(|c| crate::gpu::reference::bf16_to_f32(u16::from_le_bytes([c[0], c[1]])))
            .collect())
    }
}

/// Token ids for a pass: a deterministic sequence (the values do not change the work).
pub fn token_ids(count: u64, salt: u64, vocab: u64) -> Vec<u32> {
    (0..count).map(|j| ((j * 7919 + salt * 104_729 + 17) % vocab) as u32).collect()
}

#[cfg(test)]
mod tests {
    use super::super::cpu::CpuLayers;
    use super::super::layout::layout;
    use super::*;
    use crate::model::config::parse_config;
    use crate::quant::WeightFormat;

    fn tiny() -> ModelSpec {
        parse_config(super::super::TINY_CONFIG, "tiny", "tiny").unwrap().spec
    }

    fn build(b: &mut CpuLayers, format: &str, batch: u64, prompt: u64) -> Model {
        let spec = tiny();
        let req = Request { batch, context: 256, prompt };
        let lay = layout(&spec, WeightFormat::parse(format).unwrap(), &req, 9).unwrap();
        Model::load_weights(b, &spec, &lay, &req, Init::Host)
            .and_then(|w| w.alloc_kv(b, &lay))
            .and_then(|k| k.alloc_arena(b, &lay))
            .unwrap()
    }

    /// Largest |a − b| over the largest |b|.
    fn rel(a: &[f32], b: &[f32]) -> f64 {
        let scale = b.iter().fold(0f64, |m, v| m.max(v.abs() as f64));
        a.iter().zip(b).fold(0f64, |m, (x, y)| m.max((x - y).abs() as f64)) / scale
    }

    /// The decode path (KV cache rows, positions, decode attention) computes the same logits as a
    /// prefill over the whole sequence: prefill 64 tokens and decode 64 one at a time, against
    /// one prefill of all 128. `shift` moves the decode positions, which must break it.
    fn decode_vs_prefill(format: &str, batch: u64, shift: u64) -> f64 {
        let spec = tiny();
        let ids = token_ids(batch * 128, 1, spec.vocab_size);
        let ids = &ids;
        let per_seq = |range: std::ops::Range<u64>| -> Vec<u32> {
            (0..batch).flat_map(|s| range.clone().map(move |p| ids[(s * 128 + p) as usize])).collect()
        };
        let mut one = CpuLayers::new();
        let whole = build(&mut one, format, batch, 128);
        whole.set_tokens(&mut one, 0, &per_seq(0..128)).unwrap();
        whole.forward(&mut one, 128, 0).unwrap();
        let want = whole.logits(&mut one).unwrap();

        let mut two = CpuLayers::new();
        let steps = build(&mut two, format, batch, 64);
        steps.set_tokens(&mut two, 0, &per_seq(0..64)).unwrap();
        steps.forward(&mut two, 64, 0).unwrap();
        for p in 64..128 {
            steps.set_tokens(&mut two, (p + shift) * batch, &per_seq(p..p + 1)).unwrap();
            steps.forward(&mut two, 1, p + shift).unwrap();
        }
        let got = steps.logits(&mut two).unwrap();
        assert_eq!(got.len(), (batch * spec.vocab_size) as usize);
        assert!(want.iter().all(|v| v.is_finite()) && want.iter().any(|&v| v != 0.0));
        rel(&got, &want)
    }

    #[test]
    fn bf16_decode_matches_prefill() {
        let e = decode_vs_prefill("bf16", 2, 0);
        assert!(e < 0.03, "decode differs from prefill by {e}");
    }

    #[test]
    fn int4_decode_matches_prefill() {
        let e = decode_vs_prefill("awq", 1, 0);
        assert!(e < 0.03, "decode differs from prefill by {e}");
    }

    /// Decoding at the wrong positions fails the comparison: the property has teeth.
    #[test]
    fn wrong_positions_are_caught() {
        let e = decode_vs_prefill("bf16", 1, 100);
        assert!(e > 0.03, "shifted positions only moved the logits by {e}");
    }
}
