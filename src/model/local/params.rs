//! Parameter counting from stored tensors, unpacking the packed formats where their layout
//! says how (the rule is documented on `LocalModel::parameter_count`).

use super::classify::{is_parameter_part, is_runtime_buffer};
use super::LocalTensor;
use crate::model::safetensors::SafeDtype;
use std::collections::HashMap;

/// Logical weights of all `tensors`.
pub(super) fn parameter_count(tensors: &[LocalTensor]) -> u64 {
    let by_name: HashMap<&str, &LocalTensor> = tensors.iter().map(|t| (t.name.as_str(), t)).collect();
    tensors.iter().map(|t| logical_weights(t, &by_name)).sum()
}

/// Logical weights of one tensor, by the rule of `LocalModel::parameter_count`.
fn logical_weights(t: &LocalTensor, by_name: &HashMap<&str, &LocalTensor>) -> u64 {
    if is_runtime_buffer(&t.name) {
        return 0;
    }
    let elements = t.elements();
    let (module, part) = t.name.rsplit_once('.').unwrap_or(("", t.name.as_str()));
    let container_bits = SafeDtype::from_name(&t.dtype).map_or(8, SafeDtype::bits);
    match part {
        "qweight" => match (by_name.get(format!("{module}.g_idx").as_str()), t.shape.get(1)) {
            (Some(g_idx), Some(&out)) => g_idx.elements().saturating_mul(out),
            _ => elements.saturating_mul(container_bits / 4),
        },
        "weight_packed" => elements.saturating_mul(container_bits / 4),
        // gpt-oss's MXFP4 experts: two FP4 codes per byte of `*_blocks`, one E8M0 scale per 32.
        part if part.ends_with("_blocks") => elements.saturating_mul(container_bits / 4),
        part if part.ends_with("_scales") => 0,
        "weight" if is_bnb_4bit(&t.name, by_name) => elements.saturating_mul(2),
        "weight" | "bias" => elements,
        "inv_freq" => 0,
        _ if t.dtype == "BOOL" => 0,
        part if is_parameter_part(part) => 0,
        // Anything under a quantizer part (`weight.quant_state.bitsandbytes__nf4`).
        _ if t.name.split('.').any(|s| s == "quant_state") => 0,
        _ => elements,
    }
}

fn is_bnb_4bit(weight: &str, by_name: &HashMap<&str, &LocalTensor>) -> bool {
    by_name.contains_key(format!("{weight}.absmax").as_str())
        || by_name.contains_key(format!("{weight}.quant_state.bitsandbytes__nf4").as_str())
        || by_name.contains_key(format!("{weight}.quant_state.bitsandbytes__fp4").as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::local::classify;

    fn tensor(name: &str, dtype: &str, shape: &[u64]) -> LocalTensor {
        let (role, layer) = classify(name);
        LocalTensor { name: name.into(), dtype: dtype.into(), shape: shape.to_vec(), bytes: 0, role, layer }
    }

    fn count(tensors: Vec<LocalTensor>) -> u64 {
        parameter_count(&tensors)
    }

    #[test]
    fn gptq_counts_logical_weights_from_g_idx() {
        // 4-bit GPTQ g128 of a 4096 -> 11008 linear: qweight [4096·4/32, 11008].
        let p = "model.layers.0.mlp.up_proj";
        let tensors = vec![
            tensor(&format!("{p}.qweight"), "I32", &[512, 11008]),
            tensor(&format!("{p}.qzeros"), "I32", &[32, 1376]),
            tensor(&format!("{p}.scales"), "F16", &[32, 11008]),
            tensor(&format!("{p}.g_idx"), "I32", &[4096]),
        ];
        assert_eq!(count(tensors), 4096 * 11008);
        // 8-bit GPTQ: qweight [4096·8/32, 11008]; g_idx still says 4096 inputs.
        let tensors =
            vec![tensor(&format!("{p}.qweight"), "I32", &[1024, 11008]), tensor(&format!("{p}.g_idx"), "I32", &[4096])];
        assert_eq!(count(tensors), 4096 * 11008);
    }

    #[test]
    fn awq_and_bitsandbytes_unpack_at_four_bits() {
        let awq = vec![tensor("model.layers.0.mlp.up_proj.qweight", "I32", &[4096, 1376])];
        assert_eq!(count(awq), 4096 * 11008);
        let w = "model.layers.0.self_attn.q_proj.weight";
        let nf4 = vec![
            tensor(w, "U8", &[8388608, 1]),
            tensor(&format!("{w}.absmax"), "F32", &[262144]),
            tensor(&format!("{w}.quant_map"), "F32", &[16]),
            tensor(&format!("{w}.quant_state.bitsandbytes__nf4"), "U8", &[120]),
        ];
        assert_eq!(count(nf4), 4096 * 4096);
    }

    /// gpt-oss-20b layer 0's experts: 32 × 5760 × 2880 gate_up and 32 × 2880 × 2880 down
    /// weights stored as U8 blocks of 16 bytes per 32, with U8 scales and bf16 biases.
    #[test]
    fn mxfp4_blocks_unpack_two_weights_per_byte() {
        let p = "model.layers.0.mlp.experts";
        let tensors = vec![
            tensor(&format!("{p}.gate_up_proj_blocks"), "U8", &[32, 5760, 90, 16]),
            tensor(&format!("{p}.gate_up_proj_scales"), "U8", &[32, 5760, 90]),
            tensor(&format!("{p}.gate_up_proj_bias"), "BF16", &[32, 5760]),
            tensor(&format!("{p}.down_proj_blocks"), "U8", &[32, 2880, 90, 16]),
            tensor(&format!("{p}.down_proj_scales"), "U8", &[32, 2880, 90]),
            tensor(&format!("{p}.down_proj_bias"), "BF16", &[32, 2880]),
        ];
        assert_eq!(count(tensors), 32 * (5760 * 2880 + 5760 + 2880 * 2880 + 2880));
    }

    #[test]
    fn fp8_scales_and_buffers_are_not_parameters() {
        let tensors = vec![
            tensor("model.layers.0.mlp.down_proj.weight", "F8_E4M3", &[64, 128]),
            tensor("model.layers.0.mlp.down_proj.weight_scale_inv", "F32", &[1, 1]),
            tensor("model.layers.0.self_attn.rotary_emb.inv_freq", "F32", &[64]),
            tensor("model.layers.0.self_attn.q_proj.bias", "BF16", &[64]),
        ];
        assert_eq!(count(tensors), 64 * 128 + 64);
    }
}
