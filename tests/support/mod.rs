//! Writers for tiny synthetic safetensors and GGUF files, written from the format specs
//! independently of the readers under test. Tensor data is zeros. Beside them: `catalog` reads
//! the built-in catalog, `cli` runs the binary, `gguf` lays out llama.cpp's layers and opens a file.

#![allow(dead_code)]

pub mod catalog;
pub mod cli;
pub mod gguf;

use headroom::model::spec::{Biases, Family, LayerAttention, LayerMlp, MlpKind, ModelSpec, NormKind, QkNorm};
use headroom::quant::ggml::GgmlType;
use serde_json::{json, Map, Value};

/// Bytes per element of the safetensors dtypes the tests use.
fn dtype_bytes(dtype: &str) -> u64 {
    match dtype {
        "BF16" | "F16" => 2,
        "F32" | "I32" | "U32" => 4,
        "U8" | "I8" | "F8_E4M3" => 1,
        other => panic!("test writer does not know {other}"),
    }
}

/// A safetensors file with `tensors` (name, dtype, shape) laid out back to back.
pub fn safetensors(tensors: &[(&str, &str, &[u64])]) -> Vec<u8> {
    let mut header = Map::new();
    header.insert("__metadata__".into(), json!({"format": "pt"}));
    let mut offset = 0u64;
    for (name, dtype, shape) in tensors {
        let bytes = shape.iter().product::<u64>() * dtype_bytes(dtype);
        header.insert(
            name.to_string(),
            json!({"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + bytes]}),
        );
        offset += bytes;
    }
    safetensors_from_json(&Value::Object(header).to_string(), offset)
}

/// A safetensors file with a raw JSON header and `data_len` zero bytes of data.
pub fn safetensors_from_json(json: &str, data_len: u64) -> Vec<u8> {
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(json.as_bytes());
    out.resize(out.len() + data_len as usize, 0);
    out
}

/// The tensors of a Llama-shaped model in Hugging Face names, all BF16:
/// hidden 64, intermediate 128, 4 heads of 16, 2 KV heads, vocab 100, untied.
pub fn llama_tensors(layers: std::ops::Range<u32>, embed: bool, head: bool) -> Vec<(String, &'static str, Vec<u64>)> {
    let mut out = Vec::new();
    if embed {
        out.push(("model.embed_tokens.weight".to_string(), "BF16", vec![100, 64]));
    }
    for l in layers {
        let p = format!("model.layers.{l}");
        for (name, shape) in [
            ("input_layernorm.weight", vec![64]),
            ("self_attn.q_proj.weight", vec![64, 64]),
            ("self_attn.k_proj.weight", vec![32, 64]),
            ("self_attn.v_proj.weight", vec![32, 64]),
            ("self_attn.o_proj.weight", vec![64, 64]),
            ("post_attention_layernorm.weight", vec![64]),
            ("mlp.gate_proj.weight", vec![128, 64]),
            ("mlp.up_proj.weight", vec![128, 64]),
            ("mlp.down_proj.weight", vec![64, 128]),
        ] {
            out.push((format!("{p}.{name}"), "BF16", shape));
        }
    }
    if head {
        out.push(("model.norm.weight".to_string(), "BF16", vec![64]));
        out.push(("lm_head.weight".to_string(), "BF16", vec![100, 64]));
    }
    out
}

pub fn safetensors_owned(tensors: &[(String, &str, Vec<u64>)]) -> Vec<u8> {
    let refs: Vec<(&str, &str, &[u64])> = tensors.iter().map(|(n, d, s)| (n.as_str(), *d, s.as_slice())).collect();
    safetensors(&refs)
}

/// A GGUF v3 (or other version) file under construction.
pub struct Gguf {
    pub version: u32,
    pub alignment: u64,
    kv: Vec<u8>,
    kv_count: u64,
    infos: Vec<u8>,
    tensor_count: u64,
    data_len: u64,
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend_from_slice(&(s.len() as u64).to_le_bytes());
    buf.extend_from_slice(s.as_bytes());
}

impl Default for Gguf {
    fn default() -> Self {
        Gguf { version: 3, alignment: 32, kv: Vec::new(), kv_count: 0, infos: Vec::new(), tensor_count: 0, data_len: 0 }
    }
}

impl Gguf {
    fn key(&mut self, key: &str, type_id: u32) {
        put_str(&mut self.kv, key);
        self.kv.extend_from_slice(&type_id.to_le_bytes());
        self.kv_count += 1;
    }

    pub fn u32(mut self, key: &str, v: u32) -> Self {
        self.key(key, 4);
        self.kv.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn f32(mut self, key: &str, v: f32) -> Self {
        self.key(key, 6);
        self.kv.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn bool(mut self, key: &str, v: u8) -> Self {
        self.key(key, 7);
        self.kv.push(v);
        self
    }

    pub fn str(mut self, key: &str, v: &str) -> Self {
        self.key(key, 8);
        put_str(&mut self.kv, v);
        self
    }

    pub fn strs(mut self, key: &str, items: &[String]) -> Self {
        self.key(key, 9);
        self.kv.extend_from_slice(&8u32.to_le_bytes());
        self.kv.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for item in items {
            put_str(&mut self.kv, item);
        }
        self
    }

    pub fn i32s(mut self, key: &str, items: &[i32]) -> Self {
        self.key(key, 9);
        self.kv.extend_from_slice(&5u32.to_le_bytes());
        self.kv.extend_from_slice(&(items.len() as u64).to_le_bytes());
        for item in items {
            self.kv.extend_from_slice(&item.to_le_bytes());
        }
        self
    }

    /// Sets `general.alignment` and aligns the data to it.
    pub fn alignment(mut self, alignment: u32) -> Self {
        self.alignment = alignment.into();
        self.u32("general.alignment", alignment)
    }

    /// A tensor with ggml dims (`dims[0]` = row length) of type `ty`.
    pub fn tensor(self, name: &str, dims: &[u64], ty: GgmlType) -> Self {
        let bytes = ty.tensor_bytes(dims.iter().product(), dims[0]).expect("test tensor fits its blocks");
        self.tensor_raw(name, dims, ty.id(), bytes)
    }

    /// A tensor info with any type id, owning `bytes` of data.
    pub fn tensor_raw(mut self, name: &str, dims: &[u64], type_id: u32, bytes: u64) -> Self {
        let offset = self.data_len.next_multiple_of(self.alignment);
        put_str(&mut self.infos, name);
        self.infos.extend_from_slice(&(dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend_from_slice(&d.to_le_bytes());
        }
        self.infos.extend_from_slice(&type_id.to_le_bytes());
        self.infos.extend_from_slice(&offset.to_le_bytes());
        self.tensor_count += 1;
        self.data_len = offset + bytes;
        self
    }

    pub fn build(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.tensor_count.to_le_bytes());
        out.extend_from_slice(&self.kv_count.to_le_bytes());
        out.extend_from_slice(&self.kv);
        out.extend_from_slice(&self.infos);
        out.resize(out.len().next_multiple_of(self.alignment as usize), 0);
        out.resize(out.len() + self.data_len as usize, 0);
        out
    }
}

/// Metadata of a 2-layer Llama: hidden 256, ffn 512, 4 heads (dim 64), 2 KV heads, 300 tokens.
pub fn llama_metadata() -> Gguf {
    let tokens: Vec<String> = (0..300).map(|i| format!("tok{i}")).collect();
    Gguf::default()
        .str("general.architecture", "llama")
        .str("general.name", "Tiny Llama")
        .u32("general.file_type", 15)
        .u32("llama.block_count", 2)
        .u32("llama.context_length", 4096)
        .u32("llama.embedding_length", 256)
        .u32("llama.feed_forward_length", 512)
        .u32("llama.attention.head_count", 4)
        .u32("llama.attention.head_count_kv", 2)
        .u32("llama.rope.dimension_count", 64)
        .f32("llama.attention.layer_norm_rms_epsilon", 1e-5)
        .strs("tokenizer.ggml.tokens", &tokens)
}

/// The tensors of that Llama, Q4_K_M-style: q4_K matrices, q6_K for V, down and output, f32 norms.
pub fn llama_gguf(tied: bool) -> Gguf {
    use GgmlType::*;
    let mut g = llama_metadata().tensor("token_embd.weight", &[256, 300], Q4_K);
    for l in 0..2 {
        let t = |n: &str| format!("blk.{l}.{n}.weight");
        g = g
            .tensor(&t("attn_norm"), &[256], F32)
            .tensor(&t("attn_q"), &[256, 256], Q4_K)
            .tensor(&t("attn_k"), &[256, 128], Q4_K)
            .tensor(&t("attn_v"), &[256, 128], Q6_K)
            .tensor(&t("attn_output"), &[256, 256], Q4_K)
            .tensor(&t("ffn_norm"), &[256], F32)
            .tensor(&t("ffn_gate"), &[256, 512], Q4_K)
            .tensor(&t("ffn_up"), &[256, 512], Q4_K)
            .tensor(&t("ffn_down"), &[512, 256], Q6_K);
    }
    g = g.tensor("output_norm.weight", &[256], F32);
    if !tied {
        g = g.tensor("output.weight", &[256, 300], Q6_K);
    }
    g
}

/// A Llama-architecture spec (RMSNorm, SwiGLU, no biases, full attention) from its sizes.
pub fn llama_spec(layers: u64, hidden: u64, heads: u64, kv_heads: u64, ffn: u64, vocab: u64, tied: bool) -> ModelSpec {
    ModelSpec {
        id: "test".into(),
        family: Family::Llama,
        hidden_size: hidden,
        num_layers: layers,
        num_heads: heads,
        num_kv_heads: kv_heads,
        head_dim: hidden / heads,
        vocab_size: vocab,
        intermediate_size: ffn,
        max_context: 4096,
        tie_word_embeddings: tied,
        mlp: MlpKind::Gated,
        norm: NormKind::RmsNorm,
        norms_per_layer: 2,
        biases: Biases::default(),
        fused_qkv: false,
        fused_gate_up: false,
        qk_norm: QkNorm::None,
        attn_sinks: false,
        attn_output_gate: false,
        layer_attention: vec![LayerAttention::Full; layers as usize],
        layer_mlp: vec![LayerMlp::Dense; layers as usize],
        mla: None,
        linear_attention: None,
        mtp_layers: 0,
        moe: None,
        native_dtype_bytes: 2,
        logit_softcap: false,
        vision: None,
        position_table: 0,
        embedding_norm: false,
        parallel_ssm: false,
        global_attention: None,
        kv_shared_layers: 0,
        per_layer_input: None,
        double_wide_mlp: false,
        audio: None,
    }
}
