//! Terminal tables (comfy-table).

use super::{
    component_rows, headline, likely_line, paged_line, speed_line, training_rows, verdict, Listing, PlanReport,
};
use comfy_table::{presets::UTF8_FULL_CONDENSED, CellAlignment, Table};

fn new_table(headers: &[&str]) -> Table {
    let mut t = Table::new();
    t.load_style(UTF8_FULL_CONDENSED).set_header(headers.to_vec());
    t
}

pub fn plan(r: &PlanReport) -> String {
    let mut t = new_table(&["component", "GiB", "share"]);
    for row in component_rows(r) {
        t.add_row(row.to_vec());
    }
    for col in 1..3 {
        if let Some(c) = t.column_mut(col) {
            c.set_cell_alignment(CellAlignment::Right);
        }
    }
    let mut out = format!("{}\n{t}\n{}\n", headline(r), verdict(r));
    if let Some(h) = &r.host {
        let gib = |b: u64| b as f64 / (1u64 << 30) as f64;
        // The speed model's host, where it has one: say whether it was given or assumed.
        let peak = r.basis.iter().find(|b| b.name == crate::plan::throughput::offload::HOST_RAM_BASIS).map_or(
            String::new(),
            |b| {
                let assumed = if b.source.starts_with("assumed") { " (assumed; --host-memory to change)" } else { "" };
                format!(", read at {}{assumed}", b.value)
            },
        );
        out.push_str(&format!(
            "host RAM: {:.2} GiB ({:.2} GiB weights, {:.2} GiB KV cache on the CPU){peak}\n",
            gib(h.total_bytes),
            gib(h.weights_bytes),
            gib(h.kv_cache_bytes)
        ));
    }
    if let Some(t) = r.training.as_ref().filter(|t| t.host_bytes > 0) {
        out.push_str(&format!(
            "host RAM: {:.2} GiB per GPU (offloaded optimizer states, parameters and activations)\n",
            crate::units::Bytes(t.host_bytes).gib()
        ));
    }
    if let Some(paged) = paged_line(r) {
        out.push_str(&format!("{paged}\n"));
    }
    if let Some(speed) = speed_line(r) {
        out.push_str(&format!("{speed}\n"));
    }
    if let Some(likely) = likely_line(r) {
        out.push_str(&format!("{likely}\n"));
    }
    if r.per_gpu.len() > 1 {
        let mut g = new_table(&["gpu", "layers", "weights GiB", "kv GiB", "total GiB"]);
        for gpu in &r.per_gpu {
            g.add_row(vec![
                gpu.gpu_index.to_string(),
                format!("{}..{}", gpu.layers.0, gpu.layers.1),
                format!("{:.2}", gpu.memory.weights.gib()),
                format!("{:.2}", gpu.memory.kv_cache.gib()),
                format!("{:.2}", gpu.memory.total.gib()),
            ]);
        }
        out.push_str(&format!("{g}\n"));
    }
    if let Some(v) = &r.vllm {
        out.push_str(&format!(
            "vLLM: KV pool {:.2} GiB at gpu_memory_utilization {} holds {} tokens: {:.1} concurrent sequences of {} tokens\n",
            v.kv_pool_bytes as f64 / (1u64 << 30) as f64,
            v.gpu_memory_utilization,
            v.kv_capacity_tokens,
            v.max_concurrency,
            r.request.context
        ));
    }
    if let Some((phases, models)) = training_rows(r) {
        let mut p = new_table(&["phase", "moment", "activations GiB", "gradients GiB", "total GiB"]);
        for row in phases {
            p.add_row(row);
        }
        let mut m = new_table(&["model", "id", "trainable", "weights GiB", "gradients GiB", "optimizer GiB"]);
        for row in models {
            m.add_row(row);
        }
        out.push_str(&format!("{p}\n{m}\n"));
    }
    let mut b = new_table(&["basis", "value", "source"]);
    for item in &r.basis {
        b.add_row(vec![item.name.as_str(), item.value.as_str(), item.source.as_str()]);
    }
    out.push_str(&format!("{b}\n"));
    out
}

pub fn listing(l: &Listing) -> String {
    let mut t = new_table(&l.headers);
    for r in &l.rows {
        t.add_row(r.clone());
    }
    format!("{}\n{t}\n", l.title)
}
