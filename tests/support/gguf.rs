//! GGUF files in llama.cpp's layouts, on top of the writer in `mod.rs`: one layer's attention,
//! q/k norms and gated MLP in llama.cpp's tensor names, and a file written to a temporary
//! directory and opened as a user's model is.

use super::Gguf;
use headroom::model::gguf::gguf_to_spec;
use headroom::model::local::LocalModel;
use headroom::model::spec::ModelSpec;
use headroom::quant::ggml::GgmlType::{self, F32, Q8_0};
use std::fs;
use tempfile::TempDir;

/// `blk.{l}.{name}.weight`.
fn weight(l: u32, name: &str) -> String {
    format!("blk.{l}.{name}.weight")
}

/// Layer `l`'s attention projections in Q8_0, in ggml dims: `attn_q` h → q, `attn_k` and
/// `attn_v` h → kv, `attn_output` q → h.
pub fn attn_projections(g: Gguf, l: u32, h: u64, q: u64, kv: u64) -> Gguf {
    g.tensor(&weight(l, "attn_q"), &[h, q], Q8_0)
        .tensor(&weight(l, "attn_k"), &[h, kv], Q8_0)
        .tensor(&weight(l, "attn_v"), &[h, kv], Q8_0)
        .tensor(&weight(l, "attn_output"), &[q, h], Q8_0)
}

/// Layer `l`'s `attn_norm` (F32, h wide), then its attention projections.
pub fn attention(g: Gguf, l: u32, h: u64, q: u64, kv: u64) -> Gguf {
    attn_projections(g.tensor(&weight(l, "attn_norm"), &[h], F32), l, h, q, kv)
}

/// Layer `l`'s F32 `attn_q_norm` and `attn_k_norm` of ggml dims `q` and `k`: `[head_dim]` one
/// norm shared by the heads, `[head_dim, heads]` a row per head, `[width]` the whole projection.
pub fn qk_norms(g: Gguf, l: u32, q: &[u64], k: &[u64]) -> Gguf {
    g.tensor(&weight(l, "attn_q_norm"), q, F32).tensor(&weight(l, "attn_k_norm"), k, F32)
}

/// Layer `l`'s gated MLP in `ty`: `ffn_gate` and `ffn_up` h → ffn, `ffn_down` ffn → h.
pub fn gated_mlp(g: Gguf, l: u32, h: u64, ffn: u64, ty: GgmlType) -> Gguf {
    g.tensor(&weight(l, "ffn_gate"), &[h, ffn], ty).tensor(&weight(l, "ffn_up"), &[h, ffn], ty).tensor(
        &weight(l, "ffn_down"),
        &[ffn, h],
        ty,
    )
}

/// Layer `l`'s mixture of experts in Q8_0: an F32 router `ffn_gate_inp` h → experts, the routed
/// `ffn_{gate,up,down}_exps` of `ffn` each, and a shared expert `ffn_{gate,up,down}_shexp` of
/// `shared` (none when 0).
pub fn experts(g: Gguf, l: u32, h: u64, experts: u64, ffn: u64, shared: u64) -> Gguf {
    let g = g
        .tensor(&weight(l, "ffn_gate_inp"), &[h, experts], F32)
        .tensor(&weight(l, "ffn_gate_exps"), &[h, ffn, experts], Q8_0)
        .tensor(&weight(l, "ffn_up_exps"), &[h, ffn, experts], Q8_0)
        .tensor(&weight(l, "ffn_down_exps"), &[ffn, h, experts], Q8_0);
    if shared == 0 {
        return g;
    }
    g.tensor(&weight(l, "ffn_gate_shexp"), &[h, shared], Q8_0)
        .tensor(&weight(l, "ffn_up_shexp"), &[h, shared], Q8_0)
        .tensor(&weight(l, "ffn_down_shexp"), &[shared, h], Q8_0)
}

/// `g` written to a temporary directory as `name` and opened; the file lives as long as the
/// returned directory.
pub fn open_gguf(g: &Gguf, name: &str) -> (TempDir, LocalModel) {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join(name);
    fs::write(&path, g.build()).unwrap();
    let model = LocalModel::open(&path).unwrap();
    (dir, model)
}

/// The spec read from an opened GGUF file's metadata.
pub fn gguf_spec(model: &LocalModel) -> ModelSpec {
    gguf_to_spec(model.gguf.as_ref().unwrap()).unwrap()
}

/// Elements of every tensor the file stores, whether or not the model counts it as a parameter.
pub fn stored_elements(model: &LocalModel) -> u64 {
    model.tensors.iter().map(|t| t.shape.iter().product::<u64>()).sum()
}
