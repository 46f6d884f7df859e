//! JSON output: the serde form of the report types, pretty-printed.

use serde::Serialize;

pub fn render<T: Serialize>(value: &T) -> String {
    // Serialising these plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string_pretty(value).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}
