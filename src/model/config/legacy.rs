//! The GPT-2-era families: GPT-2, StarCoder (`gpt_bigcode`), OPT, BLOOM, GPT-J and MPT. Their
//! configs use older names (`n_embd`, `n_layer`, `n_head`, `n_positions`, `n_inner`; BLOOM's
//! `n_embed`; MPT's `d_model`, `n_layers`, `n_heads`, `max_seq_len`, `expansion_ratio` and a
//! nested `attn_config`), and some keep a learned table of absolute positions.
//!
//! Sources (transformers modeling files): GPT-2 and StarCoder add `wpe` of `n_positions` rows;
//! OPT's `OPTLearnedPositionalEmbedding` has `max_position_embeddings + 2` rows (its offset of
//! 2); BLOOM (ALiBi) and GPT-J (rotary) have none, MPT only with `learned_pos_emb` and neither
//! ALiBi nor RoPE (the released MPTs use ALiBi). MLP widths: `n_inner` or 4·hidden (GPT-2,
//! StarCoder, GPT-J), OPT's `ffn_dim`, BLOOM's fixed 4·hidden, MPT's `expansion_ratio`·hidden.

use super::{ConfigError, Reader, MAX_DIM};
use crate::model::spec::Family;
use serde_json::Value;

/// MPT's `attn_config` (absent fields: `MptAttentionConfig`'s defaults, ALiBi on).
fn attn_config<'a>(r: &Reader<'a>) -> Option<&'a serde_json::Map<String, Value>> {
    r.json.get("attn_config").and_then(Value::as_object)
}

/// Key/value heads: StarCoder's multi-query attention (`multi_query`, default true) keeps one;
/// MPT's follow `attn_config.attn_type` (llm-foundry): `multiquery_attention` one,
/// `grouped_query_attention` `kv_n_heads`, anything else (`multihead_attention`, the default)
/// all heads: llm-foundry's defaults carry `kv_n_heads: 1` even for multi-head attention, which
/// ignores it.
pub(super) fn kv_heads(r: &Reader, family: Family, heads: u64) -> Result<Option<u64>, ConfigError> {
    Ok(match family {
        Family::GptBigCode if r.bool_or("multi_query", true) => Some(1),
        Family::GptBigCode => Some(heads),
        Family::Mpt => {
            let field = |name: &str| attn_config(r).and_then(|a| a.get(name));
            match field("attn_type").and_then(Value::as_str) {
                Some("multiquery_attention") => Some(1),
                Some("grouped_query_attention") => {
                    let kv_n_heads = field("kv_n_heads");
                    let Some(raw) = kv_n_heads.and_then(Value::as_u64) else {
                        return Err(ConfigError::BadValue {
                            source_name: r.source_name.to_string(),
                            field: "attn_config.kv_n_heads",
                            value: kv_n_heads.map_or("missing".into(), Value::to_string),
                            reason: "grouped-query attention needs a key/value head count",
                        });
                    };
                    if raw == 0 || raw > heads || heads % raw != 0 {
                        return Err(r.bad(
                            "attn_config.kv_n_heads",
                            raw,
                            "the key/value head count must divide n_heads",
                        ));
                    }
                    Some(raw)
                }
                _ => Some(heads),
            }
        }
        _ => None,
    })
}

/// The dense MLP width of a legacy family, `None` for the others.
pub(super) fn intermediate(r: &Reader, family: Family, hidden: u64) -> Result<Option<u64>, ConfigError> {
    let four = 4 * hidden;
    Ok(Some(match family {
        Family::Gpt2 | Family::GptBigCode | Family::GptJ => r.opt_u64(&["n_inner"], MAX_DIM)?.unwrap_or(four),
        Family::Opt => r.u64_or(&["ffn_dim"], Some(four), family, MAX_DIM)?,
        // `BloomConfig` ignores `n_inner`: the MLP is always 4·hidden.
        Family::Bloom => four,
        Family::Mpt => r.opt_u64(&["expansion_ratio"], 64)?.unwrap_or(4) * hidden,
        _ => return Ok(None),
    }))
}

/// Rows of the learned position table.
pub(super) fn position_table(r: &Reader, family: Family) -> Result<u64, ConfigError> {
    Ok(match family {
        Family::Gpt2 | Family::GptBigCode => {
            r.opt_u64(&["n_positions", "max_position_embeddings"], 1 << 26)?.unwrap_or(1024)
        }
        Family::Opt => r.opt_u64(&["max_position_embeddings"], 1 << 26)?.unwrap_or(2048) + 2,
        Family::Mpt => {
            let attn = attn_config(r);
            let flag =
                |name: &str, default: bool| attn.and_then(|a| a.get(name)).and_then(Value::as_bool).unwrap_or(default);
            if r.bool_or("learned_pos_emb", true) && !flag("alibi", true) && !flag("rope", false) {
                r.opt_u64(&["max_seq_len"], 1 << 26)?.unwrap_or(2048)
            } else {
                0
            }
        }
        _ => 0,
    })
}

/// Shapes a legacy config can take that the inventory does not hold, refused by name: OPT-350m's
/// projections between a narrower embedding and the layers (`word_embed_proj_dim`) and its
/// post-norm layers without a final norm; MPT's q/k LayerNorms.
pub(super) fn refuse_unmodelled(r: &Reader, family: Family, hidden: u64) -> Result<(), ConfigError> {
    if family == Family::Opt {
        if let Some(width) = r.opt_u64(&["word_embed_proj_dim"], MAX_DIM)?.filter(|&w| w != hidden) {
            return Err(r.bad(
                "word_embed_proj_dim",
                width,
                "OPT's project_in/project_out (OPT-350m) are not modelled",
            ));
        }
        if !r.bool_or("do_layer_norm_before", true) || r.bool_or("_remove_final_layer_norm", false) {
            return Err(r.bad(
                "do_layer_norm_before",
                0,
                "OPT's post-norm layers without a final norm (OPT-350m) are not modelled",
            ));
        }
    }
    if family == Family::Mpt && attn_config(r).and_then(|a| a.get("qk_ln")).and_then(Value::as_bool) == Some(true) {
        return Err(r.bad("attn_config.qk_ln", 1, "MPT's q/k LayerNorms are not modelled"));
    }
    Ok(())
}
