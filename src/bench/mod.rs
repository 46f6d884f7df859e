//! The agent's benchmark: a suite of [`Workload`](crate::gpu::Workload)s run on a
//! [`Gpu`](crate::gpu::Gpu) (correctness check first, then warm-ups and timed repeats), statistics
//! derived in one place (`stats`), the host RAM's read bandwidth (`host_memory`), and the report /
//! JSON profile (`report`); `watch` samples GPU memory while a command runs.

pub mod host_memory;
pub mod report;
pub mod stats;
pub mod suite;
pub mod watch;
pub mod watch_report;
