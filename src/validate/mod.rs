//! `headroom validate`: builds the planned configuration for real, with random weights of the
//! exact shapes and format, runs a prefill and decode steps through our kernels, measures memory
//! with NVML at each phase and times both, and compares with the planner's `headroom` engine.

pub mod backend;
pub mod layout;
