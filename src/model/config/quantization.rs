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
//! compressed-tensors (llm-compressor) writes `quant_method: "compressed-tensors"` with
//! `config_groups` of weight schemes (`num_bits`, `type` int or float, `strategy`, `group_size`,
//! `symmetric`) and an `ignore` list of modules or `re:` patterns. Kimi K2 Thinking's reads one
//! group of symmetric 4-bit ints in groups of 32, `format: pack-quantized`, and ignores
//! `re:.*self_attn.*`, `re:.*shared_experts.*`, the dense `mlp.*_proj` and `lm_head`: its routed
//! experts only, `w4a16-g32`.
//!
//! A stated format headroom has no exact layout for (GPTQ 3-bit, MLX 5-bit or group 32, a mixed
//! recipe, an unusual compressed-tensors scheme) keeps its description in `approximates` and is
//! planned as the nearest format: a local checkpoint's tensor headers still give its exact bytes,
//! a config alone cannot (`ResolvedModel::default_format` refuses that case).

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

/// The checkpoint's own format, or `None` for a float checkpoint. `moe`: the parsed model routes
/// tokens to experts (`ModelSpec::moe`), which decides what a compressed-tensors `ignore` list
/// means.
pub fn native_format(json: &Value, moe: bool) -> Option<NativeFormat> {
    if let Some(mlx) = json.get("quantization").and_then(Value::as_object) {
        return Some(mlx_format(mlx));
    }
    // A multimodal wrapper (Kimi K2.5's `kimi_k25`) may keep it in its text model's config.
    let q =
        json.get("quantization_config").or_else(|| json.get("text_config")?.get("quantization_config"))?.as_object()?;
    match q.get("quant_method").and_then(Value::as_str) {
        Some("compressed-tensors") => Some(compressed_tensors_format(q, moe)),
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
        ("fp8", _, _) if q.get("weight_block_size").is_some_and(|b| !b.is_null()) => NativeFormat::exact("fp8-block"),
        // Mistral's converter writes `"weight_block_size": null` with static activation scales:
        // one weight scale and one input scale per tensor.
        ("fp8", _, _) if q.get("activation_scheme").and_then(Value::as_str) == Some("static") => {
            NativeFormat::exact("fp8-tensor")
        }
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

/// A compressed-tensors checkpoint: its one weight scheme, and whether its `ignore` list leaves
/// attention and the shared experts unquantized, which on a mixture-of-experts model means the
/// routed experts only (Kimi K2 Thinking's INT4; Kimi K3's MXFP4 release ignores the same
/// modules). headroom's experts-only formats (`mxfp4`, `w4a16-g32` on MoE) match such a
/// checkpoint; the others quantize every decoder linear layer, so a list that leaves out only
/// one of them, or a dense model's attention, is "near". INT4 is exact only `pack-quantized`
/// without activation order (`actorder` would store a `g_idx`).
/// The 16-bit scales of fp8 per-channel checkpoints differ from `fp8`'s fp32 ones by 2 B a row
/// (0.02% of a 4096-wide matrix), taken as exact.
fn compressed_tensors_format(q: &Map<String, Value>, moe: bool) -> NativeFormat {
    // Each config group's weight scheme.
    let weights: Vec<&Value> = q
        .get("config_groups")
        .and_then(Value::as_object)
        .into_iter()
        .flat_map(|groups| groups.values())
        .filter_map(|g| g.get("weights").filter(|w| w.is_object()))
        .collect();
    // (type, bits, strategy, group size, symmetric) of each.
    let schemes: BTreeSet<(String, u64, String, u64, bool)> = weights
        .iter()
        .map(|w| {
            let text = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("-").to_string();
            let number = |k: &str| w.get(k).and_then(Value::as_u64).unwrap_or(0);
            let symmetric = w.get("symmetric").and_then(Value::as_bool).unwrap_or(true);
            (text("type"), number("num_bits"), text("strategy"), number("group_size"), symmetric)
        })
        .collect();
    let ignored: Vec<&str> =
        q.get("ignore").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    let ignores = |module: &str| ignored.iter().any(|m| m.contains(module));
    // Attention and the shared experts both left out: the routed experts only (Kimi's list).
    let experts_only = moe && ignores("self_attn") && ignores("shared_expert");
    // Left out otherwise (a dense model's attention): a layout none of the formats plans.
    let partial = !experts_only && (ignores("self_attn") || ignores("shared_expert"));
    // INT4 as Marlin loads it: packed into int32 words, without an activation-order `g_idx`.
    let packed = q.get("format").and_then(Value::as_str).is_none_or(|f| f == "pack-quantized");
    let all_unordered = weights.iter().all(|w| w.get("actorder").is_none_or(|a| a.is_null() || a == false));
    let described: Vec<String> = schemes
        .iter()
        .map(|(kind, bits, strategy, group, symmetric)| {
            let group = if *group > 0 { format!(" of {group}") } else { String::new() };
            let zero = if *symmetric { "" } else { ", asymmetric" };
            format!("{kind} {bits}-bit, {strategy}{group}{zero}")
        })
        .collect();
    let stated = format!(
        "compressed-tensors{}{}",
        if described.is_empty() { String::new() } else { format!(" {}", described.join(" + ")) },
        if experts_only { ", routed experts only" } else { "" }
    );
    let [(kind, bits, strategy, group, symmetric)] = schemes.iter().collect::<Vec<_>>()[..] else {
        return NativeFormat::near("bf16", stated);
    };
    // (format, whether it covers only the routed experts of a MoE model)
    let int4_ok = packed && all_unordered;
    let (id, experts_format) = match (kind.as_str(), bits, strategy.as_str(), group, symmetric) {
        ("int", 4, "group", 128, true) if int4_ok => ("w4a16", false),
        ("int", 4, "group", 32, true) if int4_ok => ("w4a16-g32", true),
        ("float", 4, "group" | "tensor_group", 32, true) => ("mxfp4", true),
        ("float", 4, "tensor_group", 16, true) => ("nvfp4", false),
        ("float", 8, "block", _, true) => ("fp8-block", false),
        ("float", 8, "channel" | "tensor", _, true) => ("fp8", false),
        _ => return NativeFormat::near("bf16", stated),
    };
    if !partial && (experts_format == experts_only || !moe) {
        NativeFormat::exact(id)
    } else {
        NativeFormat::near(id, stated)
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

    /// The format of `json`, a mixture of experts when it (or its `text_config`) has
    /// `n_routed_experts` above one.
    fn of(json: &str) -> Option<NativeFormat> {
        let v: Value = serde_json::from_str(json).unwrap();
        let experts = |p: &str| v.pointer(p).and_then(Value::as_u64).is_some_and(|n| n > 1);
        native_format(&v, experts("/n_routed_experts") || experts("/text_config/n_routed_experts"))
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
        // Mistral's per-tensor FP8 (Devstral 2) writes the key with null and static input scales.
        exact(r#"{"quantization_config": {"quant_method": "fp8", "weight_block_size": null}}"#, "fp8");
        exact(
            r#"{"quantization_config": {"quant_method": "fp8", "weight_block_size": null, "activation_scheme": "static"}}"#,
            "fp8-tensor",
        );
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

    /// A compressed-tensors `quantization_config` with one weight scheme.
    fn compressed_tensors(weights: &str, ignore: &str, experts: u32) -> String {
        format!(
            r#"{{"n_routed_experts": {experts}, "quantization_config": {{"quant_method": "compressed-tensors",
                "format": "pack-quantized", "ignore": {ignore},
                "config_groups": {{"group_0": {{"targets": ["Linear"], "input_activations": null,
                    "weights": {weights}}}}}}}}}"#
        )
    }

    /// Kimi K2 Thinking's (routed experts, INT4 group 32), llm-compressor's W4A16 and FP8 presets.
    #[test]
    fn compressed_tensors_schemes() {
        let int4 = |group: u32| {
            format!(
                r#"{{"num_bits": 4, "type": "int", "strategy": "group", "group_size": {group}, "symmetric": true,
                    "actorder": null, "dynamic": false}}"#
            )
        };
        let kimi_ignore = r#"["lm_head", "re:.*self_attn.*", "re:.*shared_experts.*",
            "re:.*mlp\\.(gate|up|gate_up|down)_proj.*"]"#;
        assert_eq!(id(&compressed_tensors(&int4(32), kimi_ignore, 384)), ("w4a16-g32".into(), None));
        assert_eq!(id(&compressed_tensors(&int4(128), r#"["lm_head"]"#, 0)), ("w4a16".into(), None));
        assert_eq!(id(&compressed_tensors(&int4(32), r#"["lm_head"]"#, 0)), ("w4a16-g32".into(), None));
        // On MoE, a scheme that also covers attention is not what w4a16-g32 plans.
        let (near, stated) = id(&compressed_tensors(&int4(32), r#"["lm_head"]"#, 128));
        assert_eq!(near, "w4a16-g32");
        assert_eq!(stated.as_deref(), Some("compressed-tensors int 4-bit, group of 32"));
        let (near, stated) = id(&compressed_tensors(&int4(128), kimi_ignore, 384));
        assert_eq!(near, "w4a16");
        assert!(stated.unwrap().ends_with("routed experts only"));
        let fp8 = r#"{"num_bits": 8, "type": "float", "strategy": "channel", "symmetric": true, "dynamic": false}"#;
        assert_eq!(id(&compressed_tensors(fp8, r#"["lm_head"]"#, 0)), ("fp8".into(), None));
        let block = r#"{"num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128],
            "symmetric": true}"#;
        assert_eq!(id(&compressed_tensors(block, r#"["lm_head"]"#, 0)), ("fp8-block".into(), None));
        // A dense model with attention left out, INT4 stored unpacked or with activation order,
        // and a MoE list that keeps only attention out are not what the formats plan.
        assert!(id(&compressed_tensors(&int4(128), r#"["lm_head", "re:.*self_attn.*"]"#, 0)).1.is_some());
        let naive = compressed_tensors(&int4(128), "[]", 0).replace("pack-quantized", "naive-quantized");
        assert!(id(&naive).1.is_some());
        let ordered = int4(128).replace(r#""actorder": null"#, r#""actorder": "group""#);
        assert!(id(&compressed_tensors(&ordered, "[]", 0)).1.is_some());
        assert!(id(&compressed_tensors(&int4(32), r#"["re:.*self_attn.*"]"#, 384)).1.is_some());
        // Asymmetric INT4 stores zero points headroom has no layout for.
        let asym = r#"{"num_bits": 4, "type": "int", "strategy": "group", "group_size": 128, "symmetric": false}"#;
        let (near, stated) = id(&compressed_tensors(asym, "[]", 0));
        assert_eq!(
            (near.as_str(), stated.as_deref()),
            ("bf16", Some("compressed-tensors int 4-bit, group of 128, asymmetric"))
        );
        // Kimi K2.5 keeps it in its text model's config.
        let wrapped = format!(
            r#"{{"model_type": "kimi_k25", "text_config": {}}}"#,
            compressed_tensors(&int4(32), kimi_ignore, 384)
        );
        assert_eq!(id(&wrapped), ("w4a16-g32".into(), None));
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
