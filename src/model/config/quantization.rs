//! The checkpoint's own weight format, from what `config.json` says of its quantization.
//!
//! Hugging Face quantizers write `quantization_config` with a `quant_method` (`fp8`, `gptq`,
//! `awq`, `mxfp4`, `bitsandbytes`, ...). `mlx_lm.convert` writes `quantization` (and a copy as
//! `quantization_config`, without `quant_method`): a default `group_size`, `bits` and `mode`
//! (`affine` unless stated; `mxfp4`, `nvfp4`, `mxfp8`), plus one entry per module path that
//! differs from it, such as `"model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 6}` from a
//! mixed recipe, or `false` for one left unquantized (mlx_lm/utils.py `load_model`,
//! `class_predicate`). A qwen3-8b converted with `-q` (4-bit, group 64) reads
//! `{"group_size": 64, "bits": 4}`: `mlx-4bit`.
//!
//! A stated format headroom has no exact layout for (GPTQ 3-bit, MLX 5-bit or group 32, a mixed
//! recipe, compressed-tensors) keeps its description in `approximates` and is planned as the
//! nearest format: a local checkpoint's tensor headers still give its exact bytes, a config alone
//! cannot (`ResolvedModel::default_format` refuses that case).

use serde_json::{Map, Value};
use std::collections::BTreeSet;

/// The format a checkpoint is planned in when `--weights` is absent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeFormat {
    /// A weight-format id (`fp8-block`, `gptq`, `mlx-4bit`).
    pub id: String,
    /// What the config states, when `id` only approximates it (`MLX affine 5-bit, group 32`).
    pub approximates: Option<String>,
}

impl NativeFormat {
    fn exact(id: &str) -> Self {
        NativeFormat { id: id.to_string(), approximates: None }
    }

    fn near(id: &str, stated: String) -> Self {
        NativeFormat { id: id.to_string(), approximates: Some(stated) }
    }
}

/// The checkpoint's own format, or `None` for a float checkpoint.
pub fn native_format(json: &Value) -> Option<NativeFormat> {
    if let Some(mlx) = json.get("quantization").and_then(Value::as_object) {
        return Some(mlx_format(mlx));
    }
    let q = json.get("quantization_config")?.as_object()?;
    match q.get("quant_method").and_then(Value::as_str) {
        Some(method) => Some(hf_format(method, q)),
        // mlx-lm's copy of `quantization`, in a file whose original was dropped.
        None if q.contains_key("bits") => Some(mlx_format(q)),
        None => None,
    }
}

fn hf_format(method: &str, q: &Map<String, Value>) -> NativeFormat {
    let bits = q.get("bits").and_then(Value::as_u64);
    // GPTQ and AWQ write -1 for one group per row.
    let group = q.get("group_size").and_then(Value::as_i64);
    let stated = || match (bits, group) {
        (Some(b), Some(g)) => format!("{method} {b}-bit, group {g}"),
        (Some(b), None) => format!("{method} {b}-bit"),
        _ => method.to_string(),
    };
    match (method, bits, group) {
        ("fp8", _, _) if q.get("weight_block_size").is_some() => NativeFormat::exact("fp8-block"),
        ("fp8", _, _) => NativeFormat::exact("fp8"),
        ("gptq", Some(4), Some(32)) => NativeFormat::exact("gptq-g32"),
        ("gptq", Some(4), Some(128) | None) => NativeFormat::exact("gptq"),
        ("gptq", Some(8), Some(128) | None) => NativeFormat::exact("gptq-8bit"),
        ("gptq", Some(b), _) if b > 4 => NativeFormat::near("gptq-8bit", stated()),
        ("gptq", _, _) => NativeFormat::near("gptq", stated()),
        ("awq", Some(4), Some(128) | None) => NativeFormat::exact("awq"),
        ("awq", _, _) => NativeFormat::near("awq", stated()),
        ("mxfp4", _, _) => NativeFormat::exact("mxfp4"),
        ("bitsandbytes", _, _) if q.get("load_in_4bit").and_then(Value::as_bool) == Some(true) => {
            let double = q.get("bnb_4bit_use_double_quant").and_then(Value::as_bool) == Some(true);
            NativeFormat::exact(if double { "nf4-dq" } else { "nf4" })
        }
        ("bitsandbytes", _, _) => NativeFormat::exact("int8"),
        // compressed-tensors, hqq, exl2, ...: the bytes only a file's headers can give.
        _ => NativeFormat::near("bf16", stated()),
    }
}

/// One MLX quantization: (mode, bits, group size).
type MlxLayout = (String, u64, u64);

fn mlx_layout(q: &Map<String, Value>, default: Option<&MlxLayout>) -> MlxLayout {
    let (mode, bits, group) = default.cloned().unwrap_or(("affine".into(), 4, 64));
    (
        q.get("mode").and_then(Value::as_str).map_or(mode, str::to_string),
        q.get("bits").and_then(Value::as_u64).unwrap_or(bits),
        q.get("group_size").and_then(Value::as_u64).unwrap_or(group),
    )
}

fn mlx_format(q: &Map<String, Value>) -> NativeFormat {
    let default = mlx_layout(q, None);
    // Per-module entries: objects that restate the layout (`false` leaves a module in 16 bits).
    let mut layouts: BTreeSet<MlxLayout> =
        q.values().filter_map(Value::as_object).map(|m| mlx_layout(m, Some(&default))).collect();
    layouts.insert(default.clone());
    let affine_g64 = |l: &MlxLayout| l.0 == "affine" && l.2 == 64;
    let mxfp4 = ("mxfp4".to_string(), 4, 32);
    let exact = match layouts.iter().collect::<Vec<_>>().as_slice() {
        [l] if affine_g64(l) && [3, 4, 6, 8].contains(&l.1) => Some(format!("mlx-{}bit", l.1)),
        // gpt-oss as mlx-community converts it: the released MXFP4 experts, the rest 8-bit.
        [a, b] if affine_g64(a) && a.1 == 8 && **b == mxfp4 => Some("mxfp4-q8".to_string()),
        _ => None,
    };
    if let Some(id) = exact {
        return NativeFormat::exact(&id);
    }
    let stated =
        layouts.iter().map(|(mode, bits, group)| format!("{mode} {bits}-bit g{group}")).collect::<Vec<_>>().join(" + ");
    // The default layout's nearest width (ties to the wider): mxfp4 and nvfp4 are 4-bit codes.
    let nearest = [3u64, 4, 6, 8].into_iter().min_by_key(|&b| (b.abs_diff(default.1), u64::MAX - b)).unwrap_or(4);
    NativeFormat::near(&format!("mlx-{nearest}bit"), format!("MLX {stated}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(json: &str) -> Option<NativeFormat> {
        native_format(&serde_json::from_str(json).unwrap())
    }

    fn id(json: &str) -> (String, Option<String>) {
        let f = of(json).expect("a stated format");
        (f.id, f.approximates)
    }

    #[test]
    fn hugging_face_quantizers() {
        assert_eq!(of(r#"{"torch_dtype": "bfloat16"}"#), None);
        let exact = |json: &str, want: &str| assert_eq!(id(json), (want.to_string(), None), "{json}");
        exact(r#"{"quantization_config": {"quant_method": "fp8", "weight_block_size": [128, 128]}}"#, "fp8-block");
        exact(r#"{"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 128}}"#, "gptq");
        exact(r#"{"quantization_config": {"quant_method": "gptq", "bits": 4, "group_size": 32}}"#, "gptq-g32");
        exact(r#"{"quantization_config": {"quant_method": "gptq", "bits": 8, "group_size": 128}}"#, "gptq-8bit");
        exact(r#"{"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 128}}"#, "awq");
        exact(
            r#"{"quantization_config": {"quant_method": "bitsandbytes", "load_in_4bit": true,
                "bnb_4bit_use_double_quant": true}}"#,
            "nf4-dq",
        );
        let (near, stated) = id(r#"{"quantization_config": {"quant_method": "gptq", "bits": 3, "group_size": 64}}"#);
        assert_eq!((near.as_str(), stated.as_deref()), ("gptq", Some("gptq 3-bit, group 64")));
        let (near, stated) = id(r#"{"quantization_config": {"quant_method": "compressed-tensors"}}"#);
        assert_eq!((near.as_str(), stated.as_deref()), ("bf16", Some("compressed-tensors")));
    }

    /// mlx-community's files: Qwen3-8B-4bit, Llama-3.2-3B-Instruct-8bit, gpt-oss-120b-MXFP4-Q8
    /// (the experts' entries in MXFP4), a DWQ file at group 32 and a `mixed_3_6` recipe.
    #[test]
    fn mlx_quantization() {
        let exact = |json: &str, want: &str| assert_eq!(id(json), (want.to_string(), None), "{json}");
        exact(r#"{"quantization": {"group_size": 64, "bits": 4}}"#, "mlx-4bit");
        exact(r#"{"quantization_config": {"group_size": 64, "bits": 8, "mode": "affine"}}"#, "mlx-8bit");
        exact(
            r#"{"quantization": {"group_size": 64, "bits": 8, "mode": "affine",
                "model.layers.0.mlp.experts.gate_up_proj": {"group_size": 32, "bits": 4, "mode": "mxfp4"},
                "model.layers.0.mlp.experts.down_proj": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}}"#,
            "mxfp4-q8",
        );
        let (near, stated) = id(r#"{"quantization": {"group_size": 32, "bits": 4}}"#);
        assert_eq!((near.as_str(), stated.as_deref()), ("mlx-4bit", Some("MLX affine 4-bit g32")));
        let (near, stated) = id(r#"{"quantization": {"group_size": 64, "bits": 3,
            "model.layers.0.mlp.down_proj": {"group_size": 64, "bits": 6}, "lm_head": false}}"#);
        assert_eq!((near.as_str(), stated.as_deref()), ("mlx-3bit", Some("MLX affine 3-bit g64 + affine 6-bit g64")));
        assert_eq!(id(r#"{"quantization": {"group_size": 64, "bits": 5}}"#).0, "mlx-6bit");
        assert_eq!(id(r#"{"quantization": {"group_size": 64, "bits": 2}}"#).0, "mlx-3bit");
        assert_eq!(id(r#"{"quantization": {"group_size": 32, "bits": 4, "mode": "mxfp4"}}"#).0, "mlx-4bit");
    }
}
