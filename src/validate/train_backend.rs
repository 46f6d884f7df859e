//! The operations a full fine-tuning step adds to [`LayerBackend`]: the loss, the backward pass
//! of every forward operation, and a mixed-precision AdamW step. Layouts as in
//! [`super::backend`]; gradients have their tensor's shape and dtype (bf16). Every operation is
//! written for clarity over speed: the step is run to measure memory, which does not depend on
//! how fast the backward kernels are.

use super::backend::{Attn, Buf, LayerBackend, Linear};
use crate::gpu::reference::AdamW;
use crate::gpu::GpuError;

pub trait TrainBackend: LayerBackend {
    /// Mean next-token cross-entropy over `rows` rows of bf16 logits `[rows][vocab]` with i32
    /// `targets`: writes each row's loss (f32, natural log) to `losses` and overwrites the logits
    /// with the gradient of the mean loss, `(softmax − onehot) / rows` (bf16).
    fn cross_entropy(&mut self, logits: Buf, targets: Buf, losses: Buf, rows: u64, vocab: u64) -> Result<(), GpuError>;
    /// `dx (+)= dy · W` for a bf16 weight `[rows][cols]`: `dy [tokens][rows]`, `dx [tokens][cols]`;
    /// `accumulate` adds to dx instead of overwriting it.
    fn linear_backward_input(
        &mut self,
        w: &Linear,
        dy: Buf,
        dx: Buf,
        tokens: u64,
        accumulate: bool,
    ) -> Result<(), GpuError>;
    /// `dW = dyᵀ · x` (overwritten): `dy [tokens][rows]`, `x [tokens][cols]`, `dW [rows][cols]`.
    fn linear_backward_weight(
        &mut self,
        dy: Buf,
        x: Buf,
        dw: Buf,
        rows: u64,
        cols: u64,
        tokens: u64,
    ) -> Result<(), GpuError>;
    /// RMSNorm backward for `y = x / rms(x) · w`: `dx += ∂L/∂x` (the residual stream's
    /// gradient accumulates here) and `dw = Σ_rows dy ⊙ x / rms(x)` (overwritten).
    #[allow(clippy::too_many_arguments)]
    fn rmsnorm_backward(
        &mut self,
        x: Buf,
        w: Buf,
        dy: Buf,
        dx: Buf,
        dw: Buf,
        rows: u64,
        dim: u64,
        eps: f32,
    ) -> Result<(), GpuError>;
    /// SwiGLU backward for `act = silu(gate) · up`: writes `d_gate` and `d_up` from `d_act`.
    fn silu_gate_backward(
        &mut self,
        gate: Buf,
        up: Buf,
        d_act: Buf,
        d_gate: Buf,
        d_up: Buf,
        n: u64,
    ) -> Result<(), GpuError>;
    /// Causal attention backward over `a.seq` tokens (`a.cap == a.seq`): `q [b][heads][seq][d]`,
    /// `k, v [b][kv_heads][seq][d]` as the forward used them (after RoPE), the forward's output
    /// `o` and its gradient `d_o` token-major `[b][seq][heads][d]`. Writes `dq [b][seq][heads][d]`
    /// and `dk, dv [b][seq][kv_heads][d]` token-major (query heads of a group summed into their
    /// KV head). `ws`: f32 `[b][heads][seq]` twice (each query row's log-sum-exp and
    /// `Σ d_o·o`), see [`attention_backward_workspace`].
    #[allow(clippy::too_many_arguments)]
    fn attention_backward(
        &mut self,
        q: Buf,
        k: Buf,
        v: Buf,
        o: Buf,
        d_o: Buf,
        dq: Buf,
        dk: Buf,
        dv: Buf,
        ws: Buf,
        a: Attn,
    ) -> Result<(), GpuError>;
    /// `d_table[ids[t]] += dx[t]` over `tokens` rows of `hidden` (bf16; repeated ids add up).
    fn embed_backward(&mut self, ids: Buf, dx: Buf, d_table: Buf, tokens: u64, hidden: u64) -> Result<(), GpuError>;
    /// Sets every byte of `buf` to zero.
    fn zero(&mut self, buf: Buf) -> Result<(), GpuError>;
    /// `dst (f32) = src (bf16)` over `n` elements: the master copy of a weight.
    fn widen(&mut self, src: Buf, dst: Buf, n: u64) -> Result<(), GpuError>;
    /// One AdamW step with fp32 master weights and states (torch.optim.AdamW semantics on the
    /// master): `master`, `m`, `v` f32 are updated from the bf16 `grad`, and `weight` (bf16)
    /// becomes the rounded master.
    #[allow(clippy::too_many_arguments)]
    fn adamw_mixed(
        &mut self,
        weight: Buf,
        grad: Buf,
        master: Buf,
        m: Buf,
        v: Buf,
        n: u64,
        h: AdamW,
    ) -> Result<(), GpuError>;
}

/// Bytes of the attention backward's workspace: two f32 per (sequence, query head, row).
pub fn attention_backward_workspace(batch: u64, heads: u64, seq: u64) -> u64 {
    2 * batch * heads * seq * 4
}
