//! Optimizer states and the optimizer step's temporaries, per trainable tensor.
//!
//! States are kept in the dtype of the parameters the optimizer updates (`state_bytes`: 4 for
//! fp32 masters / fp32 parameters / fp32 adapters, 2 for pure bf16). Per trainable element:
//! - `adamw`: m and v, 2 states (ZeRO paper's "12 B" = fp32 master 4 + m 4 + v 4);
//! - `adamw-8bit`, `paged-adamw-8bit` (bitsandbytes): m and v in 8 bits with one fp32 absmax per
//!   block of 2048 values (`bnb.functional.quantize_blockwise`), for tensors of at least 4096
//!   elements (`min_8bit_size`); smaller tensors keep 32-bit states;
//! - `paged-adamw-32bit` (bitsandbytes `PagedAdamW32bit`): m and v in fp32 whatever the
//!   parameters' dtype (`get_state_buffer(p, dtype=torch.float32)`);
//! - `sgd` with momentum: 1 state; `lion`: 1 state (the momentum, Chen et al. 2023);
//! - `adafactor` (Shazeer & Stern 2018, transformers `Adafactor` with `beta1=None`): factored
//!   second moments, `rows + cols` values per matrix and the full size for vectors.
//!
//! The step's temporaries: PyTorch's default multi-tensor ("foreach") AdamW allocates
//! `torch._foreach_sqrt(exp_avg_sq)` for every parameter at once: one more copy of all states'
//! size. Measured on an H200 (torch 2.11): the optimizer-phase peak exceeds the memory after it
//! by exactly one copy of the trainable parameters (13,476,831,232 B for Llama-2-7B in bf16;
//! 4,400,193,536 B for TinyLlama's fp32 parameters). bitsandbytes' 8-bit kernels update in
//! place; SGD's foreach momentum update is in place; Lion and Adafactor step one tensor at a
//! time (largest tensor's worth).
//!
//! Paged optimizers (`paged-adamw-8bit`, `paged-adamw-32bit`; bitsandbytes `get_state_buffer`)
//! allocate m and v of every tensor of at least 100,000 elements with `cudaMallocManaged`
//! instead of PyTorch's allocator: CUDA unified memory, which stays on the GPU while there is
//! room and is evicted to host RAM when other allocations need the space (and prefetched back
//! before each tensor's update). Those bytes are outside `torch.cuda.max_memory_allocated` and,
//! on Linux, cannot make the run fail for memory (Windows and WSL cannot oversubscribe unified
//! memory: there they must fit as well); smaller tensors' states and every absmax are ordinary
//! allocations.
//!
//! Worked example, Llama-2-7B full fine-tuning with AdamW and fp32 masters:
//! 6,738,415,616 × (4 + 4 + 4) = 80,860,987,392 B of optimizer state.

use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    Adamw,
    Adamw8bit,
    PagedAdamw8bit,
    PagedAdamw32bit,
    Sgd,
    Adafactor,
    Lion,
}

/// bitsandbytes: block size of the 8-bit optimizer states and the smallest tensor they apply to.
const BNB_BLOCK: u64 = 2048;
const BNB_MIN_8BIT_SIZE: u64 = 4096;
/// bitsandbytes pages the states of tensors of at least this many elements (`p.numel() < 1e5`
/// keeps the rest in ordinary device memory).
const BNB_MIN_PAGED_SIZE: u64 = 100_000;

impl Optimizer {
    pub fn id(self) -> &'static str {
        match self {
            Optimizer::Adamw => "adamw",
            Optimizer::Adamw8bit => "adamw-8bit",
            Optimizer::PagedAdamw8bit => "paged-adamw-8bit",
            Optimizer::PagedAdamw32bit => "paged-adamw-32bit",
            Optimizer::Sgd => "sgd",
            Optimizer::Adafactor => "adafactor",
            Optimizer::Lion => "lion",
        }
    }

    /// bitsandbytes paged optimizers keep their states in CUDA unified memory, which the driver
    /// evicts to host memory under GPU memory pressure.
    pub fn is_paged(self) -> bool {
        matches!(self, Optimizer::PagedAdamw8bit | Optimizer::PagedAdamw32bit)
    }

    /// State bytes of one trainable tensor of `rows × cols` (a vector has rows 1).
    pub fn state_bytes(self, rows: u64, cols: u64, state_bytes: u64) -> u64 {
        let n = rows * cols;
        match self {
            Optimizer::Adamw => 2 * n * state_bytes,
            Optimizer::Adamw8bit | Optimizer::PagedAdamw8bit if n >= BNB_MIN_8BIT_SIZE => {
                2 * (n + n.div_ceil(BNB_BLOCK) * 4)
            }
            Optimizer::Adamw8bit | Optimizer::PagedAdamw8bit | Optimizer::PagedAdamw32bit => 2 * n * 4,
            Optimizer::Sgd | Optimizer::Lion => n * state_bytes,
            Optimizer::Adafactor if rows > 1 => (rows + cols) * state_bytes,
            Optimizer::Adafactor => n * state_bytes,
        }
    }

    /// The part of [`Optimizer::state_bytes`] a paged optimizer keeps in unified memory for a
    /// tensor of `n` elements stepped in `shards` pieces (ZeRO, tensor parallelism): m and v of
    /// pieces of at least 100,000 elements (8-bit: 1 B each, the absmax stays ordinary; 32-bit:
    /// 4 B each), for the whole tensor.
    pub fn paged_bytes(self, n: u64, shards: u64) -> u64 {
        match self {
            _ if n / shards.max(1) < BNB_MIN_PAGED_SIZE => 0,
            Optimizer::PagedAdamw8bit => 2 * n,
            Optimizer::PagedAdamw32bit => 2 * n * 4,
            _ => 0,
        }
    }

    /// Temporary bytes of the step over `tensors` (their elements), in `state_bytes` precision.
    pub fn step_transient(self, tensors: &[(u64, u64)], state_bytes: u64) -> u64 {
        let total: u64 = tensors.iter().map(|(r, c)| r * c).sum();
        let largest = tensors.iter().map(|(r, c)| r * c).max().unwrap_or(0);
        match self {
            Optimizer::Adamw => total * state_bytes,
            Optimizer::Adamw8bit | Optimizer::PagedAdamw8bit | Optimizer::PagedAdamw32bit | Optimizer::Sgd => 0,
            // One tensor at a time: its update (and for Adafactor the fp32 gradient and the
            // reconstructed second moment).
            Optimizer::Lion => largest * state_bytes,
            Optimizer::Adafactor => 2 * largest * 4,
        }
    }

    pub fn source(self) -> &'static str {
        match self {
            Optimizer::Adamw => "m, v in the parameters' dtype; foreach step: one more copy (sqrt(v))",
            Optimizer::Adamw8bit => "bitsandbytes blockwise 8-bit m, v: 1 B + fp32 absmax per 2048",
            Optimizer::PagedAdamw8bit => "bitsandbytes 8-bit states in paged (unified) memory",
            Optimizer::PagedAdamw32bit => "bitsandbytes fp32 m, v in paged (unified) memory",
            Optimizer::Sgd => "momentum buffer in the parameters' dtype",
            Optimizer::Adafactor => "factored second moment: rows + cols per matrix (beta1 = None)",
            Optimizer::Lion => "one momentum buffer (Chen et al. 2023)",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The module doc's worked example: 12 B per parameter with the fp32 master included.
    #[test]
    fn adamw_with_fp32_master_is_12_bytes_per_parameter() {
        let p = 6_738_415_616u64;
        assert_eq!(p * 4 + Optimizer::Adamw.state_bytes(1, p, 4), 80_860_987_392);
    }

    /// 8-bit Adam: 2 B + 8 B per 2048 values on a 4096 × 4096 matrix; small tensors stay fp32.
    #[test]
    fn eight_bit_states_are_blockwise() {
        assert_eq!(Optimizer::Adamw8bit.state_bytes(4096, 4096, 4), 2 * (16_777_216 + 8192 * 4));
        assert_eq!(Optimizer::Adamw8bit.state_bytes(1, 4096 - 1, 4), 2 * 4095 * 4);
    }

    /// Paged: the 8-bit m and v of large tensors only (a 4096 × 4096 matrix: 33,554,432 B of
    /// its 33,619,968), never a norm's.
    #[test]
    fn paged_states_are_the_large_tensors_8_bit_buffers() {
        let paged = Optimizer::PagedAdamw8bit;
        assert_eq!(paged.paged_bytes(4096 * 4096, 1), 2 * 16_777_216);
        assert_eq!(paged.paged_bytes(4096, 1), 0);
        assert_eq!(paged.paged_bytes(99_999, 1), 0);
        assert_eq!(paged.paged_bytes(150_000, 2), 0, "each ZeRO shard of 75,000 is stepped unpaged");
        assert_eq!(Optimizer::Adamw8bit.paged_bytes(4096 * 4096, 1), 0);
        // 32-bit: fp32 m and v, all of them paged for a large tensor.
        let paged32 = Optimizer::PagedAdamw32bit;
        assert_eq!(paged32.paged_bytes(4096 * 4096, 1), paged32.state_bytes(4096, 4096, 2));
        assert_eq!(paged32.paged_bytes(8 * 4096, 1), 0, "a rank-8 LoRA A of 32,768 elements is not paged");
    }

    #[test]
    fn adafactor_factors_matrices() {
        assert_eq!(Optimizer::Adafactor.state_bytes(4096, 11008, 4), (4096 + 11008) * 4);
        assert_eq!(Optimizer::Adafactor.state_bytes(1, 4096, 4), 4096 * 4);
    }

    /// Measured: foreach AdamW's step peak is one copy of the bf16 parameters of Llama-2-7B.
    #[test]
    fn foreach_adamw_step_needs_one_copy() {
        assert_eq!(Optimizer::Adamw.step_transient(&[(1, 6_738_415_616)], 2), 13_476_831_232);
        assert_eq!(Optimizer::Adamw8bit.step_transient(&[(1, 6_738_415_616)], 4), 0);
    }
}
