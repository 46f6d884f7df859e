//! LoRA adapters: which block linears get one, and their exact parameters.
//!
//! A rank-`r` adapter on an `out × in` matrix adds `A` (`r × in`) and `B` (`out × r`):
//! `r·(in + out)` parameters (Hu et al. 2021; peft `LoraLayer.update_layer`).
//!
//! Targets come from the inventory's roles, never from names of a particular checkpoint:
//! - `all-linear`: every linear layer inside the decoder blocks (`Role::is_block_linear`) except
//!   routed experts (transformers 5 stores them as fused 3-D parameters, not `nn.Linear`, so
//!   peft's `all-linear` does not wrap them) — the MoE router is not a block linear either —
//!   and a multimodal checkpoint's vision-encoder linears (`Role::is_vision_linear`): peft's
//!   `_maybe_include_all_linear_layers` takes every `nn.Linear` but the output embedding, so
//!   SigLIP's q/k/v/out_proj and fc1/fc2 are in; the patch `Conv2d` and the projector's bare
//!   parameter are not linears;
//!   Qwen3-Next's shared-expert gate (`shared_expert_gate`, an `nn.Linear(h, 1)`) is in; its
//!   Gated DeltaNet's `in_proj_qkvz`, `in_proj_ba` and `out_proj` are block linears, its
//!   depthwise `conv1d` is not a linear;
//! - `attention`: the decoder's q, k, v and o projections (or the fused QKV / MLA projections),
//!   and a linear-attention layer's input and output projections;
//! - a list of peft module names: `q_proj,v_proj`, `gate_proj`, `qkv_proj`, `gate_up_proj` ...
//!   matched as peft matches them, by the module's last name anywhere in the model: `q_proj`,
//!   `k_proj`, `v_proj`, `out_proj`, `fc1` and `fc2` also name SigLIP's linears, `o_proj` does not;
//!   `qkv`, `proj`, `linear_fc1` and `linear_fc2` name a Qwen ViT's (the last two its merger's too).
//!   A name stands for a role in every family (`fc1` is Phi's up projection), so on Gemma 3
//!   `out_proj`, `fc1` and `fc2` also select the decoder's o/up/down projections, which peft
//!   would not: those three lists over-count there.
//!
//! Worked example, Llama-2-7B (h 4096, i 11008, 32 layers): rank 16 on all linears adds per layer
//! 4·16·(4096+4096) + 2·16·(4096+11008) + 16·(11008+4096) = 1,249,280, so 39,976,960 in all;
//! rank 8 on q_proj and v_proj adds 2·8·8192·32 = 4,194,304. Gemma 3 27B's SigLIP adds per
//! layer r·(4·(1152+1152) + 2·(1152+4304)) = 20,128·r, 27 layers: 543,456·r.

use crate::model::tensors::{Part, Role, TensorDesc};
use thiserror::Error;

/// Which linears carry adapters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoraTargets {
    AllLinear,
    Attention,
    Roles(Vec<Role>),
}

#[derive(Debug, Error, PartialEq)]
pub enum LoraError {
    #[error("unknown --lora-targets module '{0}'; use all-linear, attention, or names such as q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj")]
    UnknownModule(String),
    #[error(
        "--lora-targets {0} matches no linear layer of this model (fused checkpoints use qkv_proj / gate_up_proj)"
    )]
    NoMatch(String),
}

impl LoraTargets {
    pub fn parse(s: &str) -> Result<LoraTargets, LoraError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "all-linear" | "all_linear" | "all" => return Ok(LoraTargets::AllLinear),
            "attention" | "attn" => return Ok(LoraTargets::Attention),
            _ => {}
        }
        let mut roles = Vec::new();
        for name in s.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let lower = name.to_ascii_lowercase();
            let before = roles.len();
            roles.extend(module_role(&lower));
            // Granite 4.0's fused shared MLP: the dense MLP of its dense checkpoints, the shared
            // expert beside its experts (whose 3-D `ParallelExperts` peft does not adapt).
            roles.extend(match lower.as_str() {
                "input_linear" => vec![Role::FfnGateUp, Role::FfnUpShexp],
                "output_linear" => vec![Role::FfnDown, Role::FfnDownShexp],
                _ => vec![],
            });
            roles.extend(crate::model::vision::linear_role(&lower));
            roles.extend(crate::model::vision::qwen_vit_linear_roles(&lower));
            // Gated DeltaNet's linears (its `out_proj` too, beside o_proj's alias).
            roles.extend(crate::model::tensors::linear_attention_role(&lower).filter(|r| r.is_block_linear()));
            if roles.len() == before {
                return Err(LoraError::UnknownModule(name.to_string()));
            }
        }
        if roles.is_empty() {
            return Err(LoraError::UnknownModule(s.to_string()));
        }
        Ok(LoraTargets::Roles(roles))
    }

    /// The targets as LitGPT reads them: a fused QKV name (`qkv_proj`, `query_key_value`)
    /// stands for its `lora_query`, `lora_key` and `lora_value`, since LitGPT's planned tensors
    /// list the fused projection as q, k and v parts (`tensors::unfused_qkv`).
    pub fn for_litgpt(&mut self) {
        if let LoraTargets::Roles(roles) = self {
            if roles.contains(&Role::AttnQkv) {
                roles.extend([Role::AttnQ, Role::AttnK, Role::AttnV]);
            }
        }
    }

    /// Whether a tensor gets an adapter.
    pub fn covers(&self, t: &TensorDesc) -> bool {
        t.part == Part::Weight && self.covers_role(t.role)
    }

    /// Whether the weight matrices of `role` get adapters.
    pub fn covers_role(&self, role: Role) -> bool {
        let linear = (role.is_block_linear() && !role.is_routed_expert())
            || role.is_vision_linear()
            || role == Role::FfnGateInpShexp;
        if !linear {
            return false;
        }
        match self {
            LoraTargets::AllLinear => true,
            LoraTargets::Attention => is_attention(role),
            LoraTargets::Roles(roles) => roles.contains(&role),
        }
    }
}

fn is_attention(role: Role) -> bool {
    use Role::*;
    matches!(
        role,
        AttnQ
            | AttnK
            | AttnV
            | AttnQkv
            | AttnOutput
            | AttnQA
            | AttnQB
            | AttnKvAMqa
            | AttnKvB
            | SsmIn
            | SsmBa
            | SsmInQkv
            | SsmInZ
            | SsmBeta
            | SsmAlpha
            | SsmOut
    )
}

/// peft module name → inventory role.
fn module_role(name: &str) -> Option<Role> {
    use Role::*;
    Some(match name {
        "q_proj" | "query" => AttnQ,
        "k_proj" | "key" => AttnK,
        "v_proj" | "value" => AttnV,
        "o_proj" | "dense" | "out_proj" => AttnOutput,
        "qkv_proj" | "query_key_value" | "c_attn" => AttnQkv,
        "q_a_proj" => AttnQA,
        "q_b_proj" => AttnQB,
        "kv_a_proj_with_mqa" => AttnKvAMqa,
        "kv_b_proj" => AttnKvB,
        "gate_proj" | "w1" => FfnGate,
        "up_proj" | "w3" | "dense_h_to_4h" | "fc1" => FfnUp,
        "gate_up_proj" => FfnGateUp,
        "down_proj" | "w2" | "dense_4h_to_h" | "fc2" => FfnDown,
        "shared_expert_gate" => FfnGateInpShexp,
        _ => return None,
    })
}

/// Adapter parameters of one adapted matrix: `r·(in + out)`.
pub fn adapter_params(t: &TensorDesc, rank: u64) -> u64 {
    rank * (t.rows + t.cols) * t.copies
}

/// The adapter tensors (A and B of every adapted matrix), as `(rows, cols)` pairs, and their
/// parameter total. Errors when the targets match nothing.
pub fn adapters(tensors: &[TensorDesc], rank: u64, targets: &LoraTargets) -> Result<Vec<(u64, u64)>, LoraError> {
    let mut out = Vec::new();
    for t in tensors.iter().filter(|t| targets.covers(t)) {
        for _ in 0..t.copies {
            out.push((rank, t.cols));
            out.push((t.rows, rank));
        }
    }
    if out.is_empty() {
        return Err(LoraError::NoMatch(format!("{targets:?}")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::tensors::inventory;
    use crate::model::testing;

    fn llama_2_7b() -> Vec<TensorDesc> {
        inventory(&testing::llama_2_7b())
    }

    fn count(targets: &str, rank: u64) -> u64 {
        let t = LoraTargets::parse(targets).unwrap();
        adapters(&llama_2_7b(), rank, &t).unwrap().iter().map(|(r, c)| r * c).sum()
    }

    /// The module doc's worked example (the issue's must-hold numbers).
    #[test]
    fn llama_2_7b_adapter_counts() {
        assert_eq!(count("all-linear", 16), 39_976_960);
        assert_eq!(count("q_proj,v_proj", 8), 4_194_304);
        assert_eq!(count("attention", 8), 2 * 4_194_304);
    }

    /// Qwen3.5-9B, rank 8: `attention` adapts the DeltaNet layers' four input projections and
    /// out_proj (24 layers of 8·(12,288 + 8,192 + 4,128 + 4,128 + 8,192)) and the attention
    /// layers' q (queries and gate), k, v, o (8 layers of 8·(12,288 + 5,120 + 5,120 + 8,192)):
    /// 9,056,256, as the peft names list does. The ViT's `attn.proj` answers to `proj`, not to
    /// SigLIP's `out_proj`.
    #[test]
    fn qwen3_5_attention_targets_and_vit_names() {
        let config = include_str!("../../../data/models/qwen3.5-9b.json");
        let tensors = inventory(&crate::model::config::parse_config(config, "q", "q").unwrap().spec);
        let count = |targets: &str| -> u64 {
            let t = LoraTargets::parse(targets).unwrap();
            adapters(&tensors, 8, &t).unwrap().iter().map(|(r, c)| r * c).sum()
        };
        assert_eq!(count("attention"), 9_056_256);
        assert_eq!(count("q_proj,k_proj,v_proj,o_proj,in_proj_qkv,in_proj_z,in_proj_b,in_proj_a,out_proj"), 9_056_256);
        assert_eq!(count("proj"), 27 * 8 * (1152 + 1152));
        // linear_fc1 names the ViT blocks' first MLP linear and the merger's.
        assert_eq!(count("linear_fc1"), 27 * 8 * (1152 + 4304) + 8 * (4608 + 4608));
    }

    /// LitGPT's view of GPT-NeoX's fused QKV (`tensors::unfused_qkv`): q, k and v parts of the
    /// same elements, so `q_proj,v_proj` adapts two of them and a fused name all three.
    #[test]
    fn litgpt_adapts_parts_of_a_fused_qkv() {
        let text = r#"{"model_type": "gpt_neox", "hidden_size": 4096, "intermediate_size": 16384,
            "num_hidden_layers": 2, "num_attention_heads": 32, "vocab_size": 50688}"#;
        let spec = crate::model::config::parse_config(text, "s", "test").unwrap().spec;
        let fused = inventory(&spec);
        let split = crate::model::tensors::unfused_qkv(&spec, &fused);
        let elements = |ts: &[TensorDesc]| ts.iter().map(TensorDesc::elements).sum::<u64>();
        assert_eq!(elements(&split), elements(&fused));
        assert!(split.iter().all(|t| t.role != Role::AttnQkv));
        let q: Vec<_> = split.iter().filter(|t| t.role == Role::AttnQ && t.layer == Some(0)).collect();
        assert_eq!((q[0].rows, q[0].cols, q[1].rows, q[1].cols), (4096, 4096, 1, 4096), "weight, bias");
        let count = |targets: &str| -> u64 {
            let mut t = LoraTargets::parse(targets).unwrap();
            t.for_litgpt();
            adapters(&split, 8, &t).unwrap().iter().map(|(r, c)| r * c).sum()
        };
        assert_eq!(count("q_proj,v_proj"), 2 * 8 * 2 * (4096 + 4096));
        assert_eq!(count("query_key_value"), 2 * 8 * 3 * (4096 + 4096));
    }

    #[test]
    fn unknown_and_unmatched_targets_are_errors() {
        assert!(matches!(LoraTargets::parse("q_prj"), Err(LoraError::UnknownModule(_))));
        let fused = LoraTargets::parse("qkv_proj").unwrap();
        assert!(matches!(adapters(&llama_2_7b(), 8, &fused), Err(LoraError::NoMatch(_))));
    }
}
