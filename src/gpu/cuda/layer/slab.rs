//! The slabs `validate` allocates and the buffers inside them: packing at 256-byte offsets, and
//! turning a [`Buf`] into a device address after checking it against its slab and the kernel's
//! needs (size, alignment, 32-bit sizes).

use crate::gpu::GpuError;
use crate::validate::backend::Buf;

/// Where every buffer of a slab starts: a multiple of 256 bytes (cuBLAS wants its workspace so
/// aligned, and every kernel's 16-byte vector loads are then aligned too).
pub(super) const ALIGN: u64 = 256;

/// A slab's place in device memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub base: u64,
    pub bytes: u64,
}

pub(super) fn unsupported(what: String) -> GpuError {
    GpuError::Unsupported(what)
}

/// Offsets of buffers of `sizes` bytes packed into one slab, each at a multiple of [`ALIGN`],
/// and the slab's bytes (every size rounded up to [`ALIGN`]).
pub(super) fn pack(sizes: &[u64]) -> (Vec<u64>, u64) {
    let mut end = 0u64;
    let offsets = sizes
        .iter()
        .map(|&s| {
            let at = end;
            end = end.saturating_add(s.next_multiple_of(ALIGN));
            at
        })
        .collect();
    (offsets, end)
}

/// The device address of `b` after checking that it lies inside its slab, holds at least `need`
/// bytes, and starts at a multiple of `align` bytes. `what` names the operand in errors.
pub(super) fn resolve(spans: &[Span], b: Buf, need: u64, align: u64, what: &str) -> Result<u64, GpuError> {
    let span = spans.get(b.slab).ok_or_else(|| unsupported(format!("{what} in slab {} (not allocated)", b.slab)))?;
    if b.offset.checked_add(b.bytes).is_none_or(|end| end > span.bytes) {
        return Err(unsupported(format!("{what} {b:?} beyond its slab's {} bytes", span.bytes)));
    }
    if b.bytes < need {
        return Err(unsupported(format!("{what} of {} bytes where the operation needs {need}", b.bytes)));
    }
    let ptr = span.base + b.offset;
    if ptr % align != 0 {
        return Err(unsupported(format!("{what} at offset {} (the kernel needs {align}-byte alignment)", b.offset)));
    }
    Ok(ptr)
}

/// `v` as a kernel's 32-bit int argument.
pub(super) fn int(v: u64, what: &str) -> Result<i32, GpuError> {
    i32::try_from(v).map_err(|_| unsupported(format!("{what} = {v} (the kernels take 32-bit sizes)")))
}

/// Bytes of the product of `dims` (saturating: a shape too large for memory fails the size check).
pub(super) fn bytes(dims: &[u64]) -> u64 {
    dims.iter().fold(1u64, |a, &d| a.saturating_mul(d))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_start_256_byte_aligned() {
        let (offsets, total) = pack(&[100, 256, 0, 257, 1]);
        assert_eq!(offsets, [0, 256, 512, 512, 1024]);
        assert_eq!(total, 1280);
        assert_eq!(pack(&[]), (vec![], 0));
    }

    #[test]
    fn buffers_resolve_inside_their_slab() {
        let spans = [Span { base: 0x1000, bytes: 1024 }, Span { base: 0x10_0000, bytes: 512 }];
        let b = Buf { slab: 1, offset: 256, bytes: 256 };
        assert_eq!(resolve(&spans, b, 256, 256, "x").unwrap(), 0x10_0100);
        assert_eq!(resolve(&spans, b.skip(2), 254, 2, "x").unwrap(), 0x10_0102);
        let err = |b, need, align| resolve(&spans, b, need, align, "x").unwrap_err().to_string();
        assert!(err(b, 257, 2).contains("needs 257"));
        assert!(err(b.skip(2), 16, 16).contains("16-byte alignment"));
        assert!(err(Buf { slab: 2, ..b }, 0, 1).contains("slab 2"));
        assert!(err(Buf { offset: 384, ..b }, 0, 1).contains("beyond"));
        assert!(err(Buf { offset: u64::MAX, ..b }, 0, 1).contains("beyond"));
    }

    #[test]
    fn kernel_sizes_are_checked() {
        assert_eq!(int(4096, "x").unwrap(), 4096);
        assert!(int(1 << 31, "x").unwrap_err().to_string().contains("32-bit"));
        assert_eq!(bytes(&[2, 4096, 4096]), 1 << 25);
        assert_eq!(bytes(&[u64::MAX, 2]), u64::MAX);
    }
}
