//! One full fine-tuning step of the synthetic model: forward over `batch × seq` tokens saving
//! what the backward pass needs, the mean next-token cross-entropy, the backward pass of every
//! operation, and AdamW with fp32 master weights (`--mode full --precision mixed`: 2 B of bf16
//! weight, 2 B of bf16 gradient and 12 B of master, m and v per parameter).
//!
//! Saved per layer (token-major bf16, T = batch·seq tokens): the layer input `x_in` and its
//! norm `n1` (T·h each), q, k, v after RoPE (head-major, T·(q + 2·kv)), the attention output
//! `o` (T·q), the mid-layer residual `x_mid` and its norm `n2` (T·h each), gate, up and their
//! SiLU product `act` (3·T·i); after the last layer the final residual and its norm (2·T·h).
//! Scratch (shared by the forward's temporaries and the backward's gradients) and workspace
//! (logits T·V, ids, targets and losses, RoPE tables, the attention backward's row statistics,
//! cuBLAS) complete the allocations; [`TrainLayout`] lists them all.

use super::backend::{bf16_bytes, Attn, Buf, Heads, LayerBackend, Linear};
use super::engine::{load_tensors, rotary_tables, token_ids, Init, LayerWeights, Weights, EPS};
use super::layout::{blas_workspace_bytes, check_model, weight_tensors, TensorAlloc, Unsupported, PREFILL_TILE};
use super::train_backend::{attention_backward_workspace, TrainBackend};
use crate::gpu::reference::AdamW;
use crate::gpu::GpuError;
use crate::model::spec::ModelSpec;
use crate::quant::WeightFormat;

/// The optimizer step `validate` takes: PyTorch's AdamW defaults with a learning rate large
/// enough that the first step moves bf16 weights (so the loss after it shows the step worked).
pub const ADAMW: AdamW = AdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01, step: 1 };

/// A training step's shape: `batch` sequences of `seq` tokens (a multiple of 64).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrainRequest {
    pub batch: u64,
    pub seq: u64,
}

/// Everything one training step allocates, in bytes.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainLayout {
    pub tensors: Vec<TensorAlloc>,
    /// bf16 gradients: the weights' bytes again.
    pub gradients: u64,
    /// fp32 master weights, AdamW m and v: 12 B per parameter.
    pub optimizer: u64,
    /// Saved activations of one layer, by name.
    pub saved_per_layer: Vec<(&'static str, u64)>,
    /// The final residual and its norm.
    pub saved_final: u64,
    pub layers: u64,
    pub scratch: u64,
    pub workspace: Vec<(&'static str, u64)>,
}

impl TrainLayout {
    pub fn weight_bytes(&self) -> u64 {
        self.tensors.iter().map(TensorAlloc::bytes).sum()
    }
    pub fn saved_bytes(&self) -> u64 {
        self.layers * self.saved_per_layer.iter().map(|s| s.1).sum::<u64>() + self.saved_final
    }
    pub fn workspace_bytes(&self) -> u64 {
        self.workspace.iter().map(|w| w.1).sum()
    }
}

/// The step's allocations for `spec` (bf16 weights) on a GPU of compute capability `major`.
pub fn train_layout(spec: &ModelSpec, req: TrainRequest, major: u32) -> Result<TrainLayout, Unsupported> {
    check_model(spec)?;
    if req.seq < PREFILL_TILE || req.seq % PREFILL_TILE != 0 || req.seq > 32768 {
        return Err(Unsupported::Request {
            what: "context",
            value: req.seq.to_string(),
            fix: "a training step runs 64 to 32,768 tokens per sequence, a multiple of 64",
        });
    }
    if req.batch == 0 || req.batch > 64 {
        return Err(Unsupported::Request {
            what: "batch",
            value: req.batch.to_string(),
            fix: "give 1 to 64 sequences",
        });
    }
    let tensors = weight_tensors(spec, WeightFormat::parse("bf16").map_err(|e| Unsupported::Format(e.to_string()))?);
    let params: u64 = tensors.iter().map(|t| t.desc.elements()).sum();
    let t = req.batch * req.seq;
    let (h, q, kv, i, v) = (spec.hidden_size, spec.q_width(), spec.kv_width(), spec.intermediate_size, spec.vocab_size);
    let saved_per_layer = vec![
        ("layer input", bf16_bytes(t * h)),
        ("attention norm", bf16_bytes(t * h)),
        ("q after RoPE", bf16_bytes(t * q)),
        ("k after RoPE", bf16_bytes(t * kv)),
        ("v", bf16_bytes(t * kv)),
        ("attention output", bf16_bytes(t * q)),
        ("mid-layer residual", bf16_bytes(t * h)),
        ("MLP norm", bf16_bytes(t * h)),
        ("gate, up, SiLU product", bf16_bytes(3 * t * i)),
    ];
    // Forward temporaries: q, k, v token-major and the head-major attention output. Backward:
    // the residual gradient and a norm gradient (T·h each), d_o and dq (T·q each), dk and dv,
    // and the MLP's d_act, d_gate, d_up (3·T·i).
    let forward = bf16_bytes(t * (2 * q + 2 * kv));
    let backward = bf16_bytes(t * (2 * h + 2 * q + 2 * kv + 3 * i));
    Ok(TrainLayout {
        gradients: tensors.iter().map(TensorAlloc::bytes).sum(),
        optimizer: 12 * params,
        tensors,
        saved_per_layer,
        saved_final: bf16_bytes(2 * t * h),
        layers: spec.num_layers,
        scratch: forward.max(backward),
        workspace: vec![
            ("cuBLAS workspace", blas_workspace_bytes(major)),
            ("logits and their gradient", bf16_bytes(t * v)),
            ("token ids, targets, losses", 3 * t * 4),
            ("rotary tables (cos, sin, −sin)", 3 * req.seq * (spec.head_dim / 2) * 4),
            ("attention backward row statistics", attention_backward_workspace(req.batch, spec.num_heads, req.seq)),
        ],
    })
}

/// Carves `sizes` out of `region` one after another (every size a multiple of 256 in practice).
fn carve(region: Buf, sizes: &[u64]) -> Vec<Buf> {
    let mut at = 0;
    sizes
        .iter()
        .map(|&bytes| {
            let b = Buf { bytes, ..region.skip(at) };
            at += bytes;
            b
        })
        .collect()
}

/// One layer's saved tensors.
struct Saved {
    x_in: Buf,
    n1: Buf,
    qh: Buf,
    kc: Buf,
    vc: Buf,
    o: Buf,
    x_mid: Buf,
    n2: Buf,
    gate: Buf,
    up: Buf,
    act: Buf,
}

/// A tensor's training state: its gradient and its fp32 master, m and v.
struct State {
    weight: Buf,
    elements: u64,
    grad: Buf,
    master: Buf,
    m: Buf,
    v: Buf,
}

/// The model and everything its training step needs, on a backend.
pub struct TrainModel {
    spec: ModelSpec,
    req: TrainRequest,
    w: Weights,
    states: Vec<State>,
    saved: Vec<Saved>,
    x_final: Buf,
    n_final: Buf,
    scratch: Buf,
    logits: Buf,
    ids: Buf,
    targets: Buf,
    losses: Buf,
    cos: Buf,
    sin: Buf,
    neg_sin: Buf,
    attn_ws: Buf,
}

/// The allocation steps of a training run, so a caller can sample memory between them.
impl TrainModel {
    /// Weights, then gradients and optimizer states (masters copied from the weights, m and v
    /// zero), then saved activations, scratch and workspace.
    pub fn build<B: TrainBackend>(
        b: &mut B,
        spec: &ModelSpec,
        lay: &TrainLayout,
        req: TrainRequest,
        init: Init,
        mut after: impl FnMut(&mut B, &'static str) -> Result<(), GpuError>,
    ) -> Result<TrainModel, GpuError> {
        let tensors = load_tensors(b, &lay.tensors, init)?;
        after(b, "weights")?;
        let w = Weights::bind(spec, &tensors)?;
        let grads = b.alloc_slab("gradients", &tensors.iter().map(|(t, _)| t.bytes()).collect::<Vec<_>>())?;
        let state_sizes: Vec<u64> = tensors.iter().flat_map(|(t, _)| [4 * t.desc.elements(); 3]).collect();
        let opt = b.alloc_slab("optimizer states", &state_sizes)?;
        let mut states = Vec::with_capacity(tensors.len());
        for (((t, parts), grad), s) in tensors.iter().zip(grads).zip(opt.chunks_exact(3)) {
            let elements = t.desc.elements();
            b.widen(parts[0], s[0], elements)?;
            b.zero(s[1])?;
            b.zero(s[2])?;
            states.push(State { weight: parts[0], elements, grad, master: s[0], m: s[1], v: s[2] });
        }
        after(b, "gradients and optimizer states")?;

        let per_layer: Vec<u64> = lay.saved_per_layer.iter().map(|s| s.1).collect();
        let mut sizes = Vec::new();
        for _ in 0..lay.layers {
            sizes.extend(&per_layer);
        }
        sizes.extend([lay.saved_final / 2, lay.saved_final / 2]);
        let saved_bufs = b.alloc_slab("saved activations", &sizes)?;
        let (t, i) = (req.batch * req.seq, spec.intermediate_size);
        let saved = saved_bufs
            .chunks_exact(per_layer.len())
            .take(lay.layers as usize)
            .map(|c| {
                let mlp = carve(c[8], &[bf16_bytes(t * i); 3]);
                Saved {
                    x_in: c[0],
                    n1: c[1],
                    qh: c[2],
                    kc: c[3],
                    vc: c[4],
                    o: c[5],
                    x_mid: c[6],
                    n2: c[7],
                    gate: mlp[0],
                    up: mlp[1],
                    act: mlp[2],
                }
            })
            .collect();
        let (x_final, n_final) = (saved_bufs[saved_bufs.len() - 2], saved_bufs[saved_bufs.len() - 1]);
        let scratch = b.alloc_slab("scratch", &[lay.scratch])?[0];
        let ws_sizes: Vec<u64> = lay.workspace.iter().map(|w| w.1).collect();
        let ws = b.alloc_slab("workspace", &ws_sizes)?;
        b.set_blas_workspace(ws[0])?;
        let io = carve(ws[2], &[t * 4; 3]);
        let half = req.seq * (spec.head_dim / 2) * 4;
        let rope = carve(ws[3], &[half; 3]);
        let (cos, sin) = rotary_tables(req.seq, spec.head_dim);
        let neg: Vec<u8> =
            sin.chunks_exact(4).flat_map(|c| (-f32::from_le_bytes([c[0], c[1], c[2], c[3]])).to_le_bytes()).collect();
        b.upload(rope[0], &cos)?;
        b.upload(rope[1], &sin)?;
        b.upload(rope[2], &neg)?;
        after(b, "activations, scratch and workspace")?;
        Ok(TrainModel {
            spec: spec.clone(),
            req,
            w,
            states,
            saved,
            x_final,
            n_final,
            scratch,
            logits: ws[1],
            ids: io[0],
            targets: io[1],
            losses: io[2],
            cos: rope[0],
            sin: rope[1],
            neg_sin: rope[2],
            attn_ws: ws[4],
        })
    }

    /// Writes the step's token ids and next-token targets (`[batch][seq]` i32 each).
    pub fn set_batch<B: LayerBackend>(&self, b: &mut B, salt: u64) -> Result<(), GpuError> {
        let t = self.req.batch * self.req.seq;
        let vocab = self.spec.vocab_size;
        let ids = token_ids(t + 1, salt, vocab);
        let bytes = |v: &[u32]| v.iter().flat_map(|i| i.to_le_bytes()).collect::<Vec<u8>>();
        b.upload(self.ids, &bytes(&ids[..t as usize]))?;
        b.upload(self.targets, &bytes(&ids[1..]))
    }

    fn dims(&self) -> (u64, u64, u64, u64, u64, u64) {
        let s = &self.spec;
        (self.req.batch * self.req.seq, s.hidden_size, s.q_width(), s.kv_width(), s.intermediate_size, s.head_dim)
    }

    /// The forward pass and the loss: leaves the gradient of the mean loss in the logits buffer.
    pub fn forward<B: TrainBackend>(&self, b: &mut B) -> Result<(), GpuError> {
        let s = &self.spec;
        let (t, h, qw, kvw, _, d) = self.dims();
        let (batch, seq) = (self.req.batch, self.req.seq);
        let tmp =
            carve(self.scratch, &[bf16_bytes(t * qw), bf16_bytes(t * kvw), bf16_bytes(t * kvw), bf16_bytes(t * qw)]);
        let (q, k, v, oh) = (tmp[0], tmp[1], tmp[2], tmp[3]);
        let q_heads = Heads { batch, seq, heads: s.num_heads, head_dim: d };
        let kv_heads = Heads { heads: s.num_kv_heads, ..q_heads };
        let attn = Attn { batch, heads: s.num_heads, kv_heads: s.num_kv_heads, head_dim: d, seq, cap: seq };
        // bf16 weights need no dequantization scratch.
        let none = Buf { bytes: 0, ..self.scratch };
        b.embed(self.ids, self.w.embed, self.saved[0].x_in, t, h)?;
        for (l, (w, sv)) in self.w.layers.iter().zip(&self.saved).enumerate() {
            b.rmsnorm(sv.x_in, w.attn_norm, sv.n1, t, h, EPS)?;
            b.linear(&w.q, sv.n1, h, q, t, none)?;
            b.linear(&w.k, sv.n1, h, k, t, none)?;
            b.linear(&w.v, sv.n1, h, v, t, none)?;
            b.rope(q, self.cos, self.sin, q_heads, 0)?;
            b.rope(k, self.cos, self.sin, kv_heads, 0)?;
            b.split_heads(q, sv.qh, q_heads, seq, 0)?;
            b.split_heads(k, sv.kc, kv_heads, seq, 0)?;
            b.split_heads(v, sv.vc, kv_heads, seq, 0)?;
            b.attention_prefill(sv.qh, sv.kc, sv.vc, oh, attn)?;
            b.merge_heads(oh, sv.o, q_heads)?;
            // x_mid = x_in + o·Woᵀ, written as (o·Woᵀ) += x_in.
            b.linear(&w.o, sv.o, qw, sv.x_mid, t, none)?;
            b.add(sv.x_mid, sv.x_in, t * h)?;
            b.rmsnorm(sv.x_mid, w.ffn_norm, sv.n2, t, h, EPS)?;
            b.linear(&w.gate, sv.n2, h, sv.gate, t, none)?;
            b.linear(&w.up, sv.n2, h, sv.up, t, none)?;
            b.silu_gate(sv.gate, sv.up, sv.act, t * s.intermediate_size)?;
            let next = self.saved.get(l + 1).map_or(self.x_final, |n| n.x_in);
            b.linear(&w.down, sv.act, s.intermediate_size, next, t, none)?;
            b.add(next, sv.x_mid, t * h)?;
        }
        b.rmsnorm(self.x_final, self.w.out_norm, self.n_final, t, h, EPS)?;
        b.linear(&self.w.lm_head, self.n_final, h, self.logits, t, none)?;
        b.cross_entropy(self.logits, self.targets, self.losses, t, s.vocab_size)
    }

    /// The mean loss of the last forward pass.
    pub fn loss<B: LayerBackend>(&self, b: &mut B) -> Result<f64, GpuError> {
        let bytes = b.download(self.losses)?;
        let losses: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        Ok(losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len().max(1) as f64)
    }

    fn state(&self, weight: Buf) -> Result<&State, GpuError> {
        self.states
            .iter()
            .find(|s| s.weight == weight)
            .ok_or_else(|| GpuError::Unsupported(format!("no gradient for the weight at {weight:?}")))
    }

    fn grad(&self, w: &Linear) -> Result<Buf, GpuError> {
        match *w {
            Linear::Bf16 { w, .. } => Ok(self.state(w)?.grad),
            Linear::Int4 { .. } => Err(GpuError::Unsupported("training a 4-bit weight".into())),
        }
    }

    /// The backward pass of the last forward: every weight's gradient.
    pub fn backward<B: TrainBackend>(&self, b: &mut B) -> Result<(), GpuError> {
        let s = &self.spec;
        let (t, h, qw, kvw, i, d) = self.dims();
        let (batch, seq) = (self.req.batch, self.req.seq);
        let bufs = carve(
            self.scratch,
            &[
                bf16_bytes(t * h),
                bf16_bytes(t * h),
                bf16_bytes(t * qw),
                bf16_bytes(t * qw),
                bf16_bytes(t * kvw),
                bf16_bytes(t * kvw),
                bf16_bytes(t * i),
                bf16_bytes(t * i),
                bf16_bytes(t * i),
            ],
        );
        let (g, dn, d_o, dq, dk, dv, d_act, d_gate, d_up) =
            (bufs[0], bufs[1], bufs[2], bufs[3], bufs[4], bufs[5], bufs[6], bufs[7], bufs[8]);
        let q_heads = Heads { batch, seq, heads: s.num_heads, head_dim: d };
        let kv_heads = Heads { heads: s.num_kv_heads, ..q_heads };
        let attn = Attn { batch, heads: s.num_heads, kv_heads: s.num_kv_heads, head_dim: d, seq, cap: seq };

        // The output layer (tied: its gradient is the embedding's, added to below).
        b.linear_backward_input(&self.w.lm_head, self.logits, dn, t, false)?;
        b.linear_backward_weight(self.logits, self.n_final, self.grad(&self.w.lm_head)?, s.vocab_size, h, t)?;
        b.zero(g)?;
        b.rmsnorm_backward(self.x_final, self.w.out_norm, dn, g, self.state(self.w.out_norm)?.grad, t, h, EPS)?;
        for (w, sv) in self.w.layers.iter().zip(&self.saved).rev() {
            self.layer_backward(b, w, sv, [g, dn, d_o, dq, dk, dv, d_act, d_gate, d_up], q_heads, kv_heads, attn)?;
        }
        // The embedding: its rows gather the residual gradient of their tokens.
        let embed_grad = self.state(self.w.embed)?.grad;
        if self.spec.tie_word_embeddings {
            // Already holds the output layer's gradient.
        } else {
            b.zero(embed_grad)?;
        }
        b.embed_backward(self.ids, g, embed_grad, t, h)
    }

    #[allow(clippy::too_many_arguments)]
    fn layer_backward<B: TrainBackend>(
        &self,
        b: &mut B,
        w: &LayerWeights,
        sv: &Saved,
        [g, dn, d_o, dq, dk, dv, d_act, d_gate, d_up]: [Buf; 9],
        q_heads: Heads,
        kv_heads: Heads,
        attn: Attn,
    ) -> Result<(), GpuError> {
        let (t, h, qw, kvw, i, _) = self.dims();
        // MLP: x_out = x_mid + act·Wdᵀ, act = silu(n2·Wgᵀ) · (n2·Wuᵀ), n2 = norm(x_mid).
        b.linear_backward_input(&w.down, g, d_act, t, false)?;
        b.linear_backward_weight(g, sv.act, self.grad(&w.down)?, h, i, t)?;
        b.silu_gate_backward(sv.gate, sv.up, d_act, d_gate, d_up, t * i)?;
        b.linear_backward_input(&w.gate, d_gate, dn, t, false)?;
        b.linear_backward_input(&w.up, d_up, dn, t, true)?;
        b.linear_backward_weight(d_gate, sv.n2, self.grad(&w.gate)?, i, h, t)?;
        b.linear_backward_weight(d_up, sv.n2, self.grad(&w.up)?, i, h, t)?;
        b.rmsnorm_backward(sv.x_mid, w.ffn_norm, dn, g, self.state(w.ffn_norm)?.grad, t, h, EPS)?;
        // Attention: x_mid = x_in + o·Woᵀ, o = attention(rope(n1·Wqᵀ), rope(n1·Wkᵀ), n1·Wvᵀ).
        b.linear_backward_input(&w.o, g, d_o, t, false)?;
        b.linear_backward_weight(g, sv.o, self.grad(&w.o)?, h, qw, t)?;
        b.attention_backward(sv.qh, sv.kc, sv.vc, sv.o, d_o, dq, dk, dv, self.attn_ws, attn)?;
        // RoPE is a rotation: its backward rotates the other way.
        b.rope(dq, self.cos, self.neg_sin, q_heads, 0)?;
        b.rope(dk, self.cos, self.neg_sin, kv_heads, 0)?;
        b.linear_backward_input(&w.q, dq, dn, t, false)?;
        b.linear_backward_input(&w.k, dk, dn, t, true)?;
        b.linear_backward_input(&w.v, dv, dn, t, true)?;
        b.linear_backward_weight(dq, sv.n1, self.grad(&w.q)?, qw, h, t)?;
        b.linear_backward_weight(dk, sv.n1, self.grad(&w.k)?, kvw, h, t)?;
        b.linear_backward_weight(dv, sv.n1, self.grad(&w.v)?, kvw, h, t)?;
        b.rmsnorm_backward(sv.x_in, w.attn_norm, dn, g, self.state(w.attn_norm)?.grad, t, h, EPS)
    }

    /// Every tensor's gradient buffer, in checkpoint order.
    pub fn gradients(&self) -> Vec<Buf> {
        self.states.iter().map(|s| s.grad).collect()
    }

    /// Every tensor's bf16 weight buffer, in checkpoint order.
    pub fn weights(&self) -> Vec<Buf> {
        self.states.iter().map(|s| s.weight).collect()
    }

    /// AdamW on every tensor: masters, m and v updated, the bf16 weights rewritten.
    pub fn optimizer_step<B: TrainBackend>(&self, b: &mut B, h: AdamW) -> Result<(), GpuError> {
        for s in &self.states {
            b.adamw_mixed(s.weight, s.grad, s.master, s.m, s.v, s.elements, h)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
