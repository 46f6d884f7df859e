//! The target hardware as the planner sees it: capacity per GPU, how many, and the generation
//! (which sets the CUDA context cost). Built by the command layer from the GPU catalog, so the
//! planner stays free of catalog and I/O code.

use crate::units::Bytes;
use serde::Serialize;

/// GPU generation, for per-generation runtime costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Generation {
    Volta,
    Turing,
    Ampere,
    Ada,
    Hopper,
    Blackwell,
    /// AMD, Intel and Apple accelerators: no CUDA context; their runtime's own cost applies.
    Other,
}

/// GPUs of one kind that the model is planned onto.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Device {
    /// Catalog id, e.g. `rtx-4090`.
    pub id: String,
    /// Memory of one GPU, as the driver reports it.
    pub capacity: Bytes,
    pub count: u32,
    pub generation: Generation,
}
