//! headroom: plans the GPU memory and speed a large language model needs, and checks the plan on
//! real GPUs.
//!
//! The crate is split the way DESIGN.md lays it out: `catalog` (built-in GPUs and models),
//! `model` (architecture and tensor accounting, local file readers), `quant` (weight and KV
//! formats), `plan` (the pure planner), `report` (renderers), `commands` (the CLI glue).

pub mod bench;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod gpu;
pub mod model;
pub mod plan;
pub mod quant;
pub mod report;
pub mod units;
pub mod validate;
