//! CSV output (RFC 4180 quoting).

use super::{Listing, PlanReport};

fn field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn line(cells: impl IntoIterator<Item = String>) -> String {
    cells.into_iter().map(|c| field(&c)).collect::<Vec<_>>().join(",")
}

/// One row per component of the busiest GPU, with exact bytes.
pub fn plan(r: &PlanReport) -> String {
    let mut out = vec![line(["component", "bytes", "gib", "share"].map(String::from))];
    let total = r.memory.total.0.max(1) as f64;
    for (name, b) in r.memory.components().into_iter().chain([("total", r.memory.total)]) {
        out.push(line([
            name.to_string(),
            b.0.to_string(),
            format!("{:.4}", b.gib()),
            format!("{:.4}", b.0 as f64 / total),
        ]));
    }
    out.join("\n") + "\n"
}

pub fn listing(l: &Listing) -> String {
    let mut out = vec![line(l.headers.iter().map(|h| h.to_string()))];
    out.extend(l.rows.iter().map(|r| line(r.iter().cloned())));
    out.join("\n") + "\n"
}
