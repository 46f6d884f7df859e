//! Running the `headroom` binary as a user does, and reading its JSON.

use assert_cmd::Command;
use serde_json::Value;

pub fn headroom() -> Command {
    Command::cargo_bin("headroom").unwrap()
}

/// `headroom plan ARGS --format json`, which must succeed.
pub fn plan_json(args: &str) -> Value {
    let out = headroom().arg("plan").args(args.split_whitespace()).args(["--format", "json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The unsigned integer at a JSON pointer.
pub fn u(v: &Value, path: &str) -> u64 {
    v.pointer(path).and_then(Value::as_u64).unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// The number at a JSON pointer.
pub fn f(v: &Value, path: &str) -> f64 {
    v.pointer(path).and_then(Value::as_f64).unwrap_or_else(|| panic!("{path} missing in {v}"))
}

/// A memory field of GPU `i` (`weights_bytes`, `kv_cache_bytes`, ...).
pub fn per_gpu(v: &Value, i: usize, field: &str) -> u64 {
    u(v, &format!("/per_gpu/{i}/memory/{field}"))
}

/// The plan's verdict.
pub fn fits(v: &Value) -> bool {
    v.pointer("/fit/fits").and_then(Value::as_bool).unwrap()
}
