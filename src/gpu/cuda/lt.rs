//! FP8 GEMMs through cuBLASLt (cuBLAS's GemmEx has no FP8): `D (bf16, m×n) = op(A)·op(B)` with
//! E4M3 A and B, fp32 compute and fp32 scale type. cuBLASLt's FP8 kernels take only the "TN"
//! layout (A stored k×m column-major and transposed, B k×n not transposed), sizes that are
//! multiples of 16, 16-byte aligned pointers (`cuMemAlloc` gives 256) and compute capability 8.9
//! or later (Ada, Hopper, Blackwell); older GPUs get [`GpuError::Unsupported`] and the suite moves
//! on.
//!
//! The handle, a [`WORKSPACE_BYTES`] workspace and a device f32 1.0 for the per-tensor A and B
//! scale pointers are made on first use and kept with [`CudaGpu`]. Each shape's descriptors and
//! the heuristic's first algorithm are built once and cached, so a timed launch is one
//! `cublasLtMatmul`, as a caller that plans once and runs many times would issue it.

use super::{CudaGpu, GemmCall};
use crate::gpu::workload::GemmDtype;
use crate::gpu::GpuError;
use cudarc::cublas::sys::cublasOperation_t as Op;
use cudarc::cublaslt::{result, sys};
use cudarc::driver::{CudaSlice, CudaStream};
use std::ffi::c_void;
use std::sync::Arc;

/// Workspace offered to cuBLASLt: NVIDIA's recommendation for Hopper (cudarc's `Workspace`
/// uses the same 32 MiB), more than Ada needs.
pub(crate) const WORKSPACE_BYTES: u64 = 32 << 20;
/// The first compute capability with FP8 tensor cores (Ada, sm_89).
pub(crate) const FP8_MIN_CC: (u32, u32) = (8, 9);
/// The types of the call: E4M3 inputs, bf16 C and D, fp32 accumulation, fp32 alpha/beta/scales.
pub(crate) const IN_TYPE: sys::cudaDataType = sys::cudaDataType::CUDA_R_8F_E4M3;
pub(crate) const OUT_TYPE: sys::cudaDataType = sys::cudaDataType::CUDA_R_16BF;
pub(crate) const COMPUTE: sys::cublasComputeType_t = sys::cublasComputeType_t::CUBLAS_COMPUTE_32F;
pub(crate) const SCALE_TYPE: sys::cudaDataType = sys::cudaDataType::CUDA_R_32F;

/// Errors unless the device has FP8 tensor cores.
pub(crate) fn supported(compute_capability: (u32, u32)) -> Result<(), GpuError> {
    if compute_capability < FP8_MIN_CC {
        return Err(GpuError::Unsupported("fp8 GEMM (needs sm_89+)".into()));
    }
    Ok(())
}

/// A column-major matrix as cuBLASLt describes it: rows, columns, leading dimension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Layout {
    pub rows: u64,
    pub cols: u64,
    pub ld: i64,
}

/// The shape-dependent part of a call (no pointers), the key of the descriptor cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fp8Shape {
    /// A as stored: k×m (op(A) = Aᵀ).
    pub a: Layout,
    /// B as stored: k×n (op(B) = B).
    pub b: Layout,
    /// C and D: m×n.
    pub d: Layout,
}

/// The layouts of an FP8 call, after checking it is one cuBLASLt's FP8 kernels take: TN, every
/// size a positive multiple of 16, leading dimensions multiples of 16 that hold their columns.
pub(crate) fn shape(g: &GemmCall) -> Result<Fp8Shape, GpuError> {
    let unsupported = |why: &str| {
        Err(GpuError::Unsupported(format!(
            "fp8 GEMM {}×{}×{} (lda {}, ldb {}, ldc {}): {why}",
            g.m, g.n, g.k, g.lda, g.ldb, g.ldc
        )))
    };
    if g.dtype != GemmDtype::Fp8 {
        return unsupported("not an fp8 call");
    }
    if g.accumulate {
        return unsupported("the FP8 path writes C (beta = 0) and cannot accumulate into it");
    }
    if !g.trans_a || g.trans_b {
        return unsupported("cuBLASLt's FP8 kernels take only A transposed and B not (TN)");
    }
    let x16 = |v: i32| v > 0 && v % 16 == 0;
    if ![g.m, g.n, g.k, g.lda, g.ldb, g.ldc].into_iter().all(x16) || g.lda < g.k || g.ldb < g.k || g.ldc < g.m {
        return unsupported("sizes and leading dimensions must be multiples of 16, each at least its column");
    }
    let (m, n, k) = (g.m as u64, g.n as u64, g.k as u64);
    Ok(Fp8Shape {
        a: Layout { rows: k, cols: m, ld: g.lda as i64 },
        b: Layout { rows: k, cols: n, ld: g.ldb as i64 },
        d: Layout { rows: m, cols: n, ld: g.ldc as i64 },
    })
}

fn lt_err(context: impl Into<String>, e: impl std::fmt::Debug) -> GpuError {
    GpuError::Cublas { context: context.into(), detail: format!("{e:?}") }
}

/// One shape's descriptors and the algorithm the heuristic chose for them.
struct Plan {
    shape: Fp8Shape,
    desc: sys::cublasLtMatmulDesc_t,
    /// A, B, and D (also C: beta is 0, C is D).
    layouts: [sys::cublasLtMatrixLayout_t; 3],
    algo: sys::cublasLtMatmulAlgo_t,
}

impl Drop for Plan {
    fn drop(&mut self) {
        // SAFETY: each descriptor was created by this plan and is destroyed once; plans are
        // dropped on an error before first use, or by `Lt::drop` after the stream is idle.
        unsafe {
            for l in self.layouts {
                if !l.is_null() {
                    let _ = result::destroy_matrix_layout(l);
                }
            }
            if !self.desc.is_null() {
                let _ = result::destroy_matmul_desc(self.desc);
            }
        }
    }
}

/// Sets a descriptor attribute from a plain value.
///
/// # Safety
/// `desc` is live and `T` is the type cuBLASLt documents for `attr`.
unsafe fn set_desc<T>(
    desc: sys::cublasLtMatmulDesc_t,
    attr: sys::cublasLtMatmulDescAttributes_t,
    v: &T,
) -> Result<(), GpuError> {
    result::set_matmul_desc_attribute(desc, attr, v as *const T as *const c_void, std::mem::size_of::<T>())
        .map_err(|e| lt_err(format!("cublasLtMatmulDescSetAttribute {attr:?}"), e))
}

/// The cuBLASLt handle with its workspace and the device 1.0 the scale pointers point at.
pub(crate) struct Lt {
    stream: Arc<CudaStream>,
    handle: sys::cublasLtHandle_t,
    workspace: (CudaSlice<u8>, u64),
    one: (CudaSlice<f32>, u64),
    plans: Vec<Plan>,
}

impl Drop for Lt {
    fn drop(&mut self) {
        // Nothing in flight may still read a descriptor, the workspace or the scale.
        let _ = self.stream.synchronize();
        self.plans.clear();
        // SAFETY: the handle was created in `Lt::new`, the stream is idle and its plans are gone.
        let _ = unsafe { result::destroy_handle(self.handle) };
    }
}

impl Lt {
    fn new(gpu: &CudaGpu) -> Result<Self, GpuError> {
        // SAFETY: only tries to dlopen the library; cudarc panics on any call without it.
        if !unsafe { sys::is_culib_present() } {
            return Err(GpuError::CublasNotFound);
        }
        let workspace = gpu.alloc("cuBLASLt workspace", WORKSPACE_BYTES)?;
        let one = gpu.upload(&[1f32])?;
        gpu.ctx.bind_to_thread().map_err(|e| GpuError::driver("binding the CUDA context", e))?;
        let handle = result::create_handle().map_err(|e| lt_err("cublasLtCreate", e))?;
        Ok(Lt { stream: gpu.stream.clone(), handle, workspace, one, plans: Vec::new() })
    }

    /// The cached plan for `shape`, built on first use.
    fn plan(&mut self, shape: Fp8Shape) -> Result<&Plan, GpuError> {
        if let Some(i) = self.plans.iter().position(|p| p.shape == shape) {
            return Ok(&self.plans[i]);
        }
        let plan = self.build(shape)?;
        self.plans.push(plan);
        Ok(&self.plans[self.plans.len() - 1])
    }

    fn build(&self, shape: Fp8Shape) -> Result<Plan, GpuError> {
        use sys::cublasLtMatmulDescAttributes_t as A;
        let layout = |t, l: Layout| {
            result::create_matrix_layout(t, l.rows, l.cols, l.ld).map_err(|e| lt_err("cublasLtMatrixLayoutCreate", e))
        };
        let desc =
            result::create_matmul_desc(COMPUTE, SCALE_TYPE).map_err(|e| lt_err("cublasLtMatmulDescCreate", e))?;
        // From here on the plan owns what exists, so an early return destroys it.
        let algo = sys::cublasLtMatmulAlgo_t { data: [0; 8] };
        let mut plan = Plan { shape, desc, layouts: [std::ptr::null_mut(); 3], algo };
        plan.layouts[0] = layout(IN_TYPE, shape.a)?;
        plan.layouts[1] = layout(IN_TYPE, shape.b)?;
        plan.layouts[2] = layout(OUT_TYPE, shape.d)?;
        let (t, n) = (Op::CUBLAS_OP_T, Op::CUBLAS_OP_N);
        // SAFETY: `desc` is live; TRANSA/TRANSB take a cublasOperation_t (int32), the scale
        // pointers a device pointer to one f32 (the scale type), live as long as this handle.
        unsafe {
            set_desc(desc, A::CUBLASLT_MATMUL_DESC_TRANSA, &t)?;
            set_desc(desc, A::CUBLASLT_MATMUL_DESC_TRANSB, &n)?;
            set_desc(desc, A::CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, &self.one.1)?;
            set_desc(desc, A::CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, &self.one.1)?;
        }
        plan.algo = self.heuristic(&plan)?;
        Ok(plan)
    }

    /// The heuristic's first algorithm for `plan` within the workspace.
    fn heuristic(&self, plan: &Plan) -> Result<sys::cublasLtMatmulAlgo_t, GpuError> {
        let (d, k) = (plan.shape.d, plan.shape.a.rows);
        let context = format!("cublasLtMatmulAlgoGetHeuristic (fp8 GEMM {}×{}×{k})", d.rows, d.cols);
        let pref = Pref(result::create_matmul_pref().map_err(|e| lt_err("cublasLtMatmulPreferenceCreate", e))?);
        let ws: u64 = WORKSPACE_BYTES;
        // SAFETY: `pref` is live; MAX_WORKSPACE_BYTES takes a uint64_t.
        unsafe {
            result::set_matmul_pref_attribute(
                pref.0,
                sys::cublasLtMatmulPreferenceAttributes_t::CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                &ws as *const u64 as *const c_void,
                std::mem::size_of::<u64>(),
            )
        }
        .map_err(|e| lt_err("cublasLtMatmulPreferenceSetAttribute MAX_WORKSPACE_BYTES", e))?;
        let [la, lb, ld] = plan.layouts;
        let mut found = 0;
        // SAFETY: a plain C struct of integers and floats, for which all zeros is valid.
        let mut heur: sys::cublasLtMatmulHeuristicResult_t = unsafe { std::mem::zeroed() };
        // SAFETY: every descriptor is live; `heur` holds the one result asked for (C is D).
        unsafe {
            sys::cublasLtMatmulAlgoGetHeuristic(
                self.handle,
                plan.desc,
                la,
                lb,
                ld,
                ld,
                pref.0,
                1,
                &mut heur,
                &mut found,
            )
        }
        .result()
        .map_err(|e| lt_err(&context, e))?;
        if found < 1 {
            return Err(lt_err(&context, "no algorithm for this shape within the workspace"));
        }
        heur.state.result().map_err(|e| lt_err(&context, e))?;
        Ok(heur.algo)
    }
}

/// A heuristic-preference descriptor, destroyed when dropped.
struct Pref(sys::cublasLtMatmulPreference_t);

impl Drop for Pref {
    fn drop(&mut self) {
        // SAFETY: created by `create_matmul_pref` and destroyed only here.
        let _ = unsafe { result::destroy_matmul_pref(self.0) };
    }
}

impl CudaGpu {
    /// Runs one FP8 GemmCall (see the module docs) on the stream.
    pub(super) fn gemm_fp8(&mut self, g: &GemmCall) -> Result<(), GpuError> {
        supported(self.info.compute_capability)?;
        let shape = shape(g)?;
        if self.lt.is_none() {
            self.lt = Some(Lt::new(self)?);
        }
        let stream = self.stream.cu_stream() as sys::cudaStream_t;
        let Some(lt) = self.lt.as_mut() else { return Err(GpuError::CublasNotFound) };
        let (handle, ws) = (lt.handle, lt.workspace.1);
        let plan = lt.plan(shape)?;
        let [la, lb, ld] = plan.layouts;
        let (alpha, beta) = (1f32, 0f32);
        // SAFETY: a, b and c are live device buffers holding A (k×m), B (k×n) and D (m×n) at
        // their leading dimensions (each caller checks its operands' sizes); the plan, workspace
        // and scale live with the handle; alpha and beta are host f32 (the scale type).
        unsafe {
            result::matmul(
                handle,
                plan.desc,
                &alpha as *const f32 as *const c_void,
                &beta as *const f32 as *const c_void,
                g.a as *const c_void,
                la,
                g.b as *const c_void,
                lb,
                g.c as *const c_void,
                ld,
                g.c as *mut c_void,
                ld,
                &plan.algo,
                ws as *mut c_void,
                WORKSPACE_BYTES as usize,
                stream,
            )
        }
        .map_err(|e| lt_err(format!("cublasLtMatmul fp8 {}×{}×{}", g.m, g.n, g.k), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The benchmark's 8192³ case: A stored k×m (lda = k), B k×n, D m×n.
    #[test]
    fn the_bench_case_is_tn_with_packed_operands() {
        let g = GemmCall::packed(GemmDtype::Fp8, 8192, 4096, 2048, 1, 2, 3);
        assert_eq!((g.trans_a, g.trans_b, g.lda, g.ldb, g.ldc), (true, false, 2048, 2048, 8192));
        let s = shape(&g).unwrap();
        assert_eq!(s.a, Layout { rows: 2048, cols: 8192, ld: 2048 });
        assert_eq!(s.b, Layout { rows: 2048, cols: 4096, ld: 2048 });
        assert_eq!(s.d, Layout { rows: 8192, cols: 4096, ld: 8192 });
    }

    #[test]
    fn calls_fp8_kernels_cannot_take_are_refused() {
        let g = GemmCall::packed(GemmDtype::Fp8, 256, 192, 128, 1, 2, 3);
        assert!(shape(&g).is_ok());
        for bad in [
            GemmCall { trans_a: false, lda: 256, ..g },
            GemmCall { trans_b: true, ..g },
            GemmCall { m: 250, ldc: 250, ..g },
            GemmCall { k: 120, lda: 120, ldb: 120, ..g },
            GemmCall { lda: 136, ..g },
            GemmCall { ldc: 128, ..g },
            GemmCall { n: 0, ..g },
            GemmCall { dtype: GemmDtype::Bf16, ..g },
            GemmCall { accumulate: true, ..g },
        ] {
            assert!(matches!(shape(&bad), Err(GpuError::Unsupported(_))), "{bad:?}");
        }
    }

    #[test]
    fn fp8_needs_ada_or_later() {
        for cc in [(8, 9), (9, 0), (10, 0), (12, 0)] {
            assert!(supported(cc).is_ok(), "{cc:?}");
        }
        for cc in [(7, 5), (8, 0), (8, 6), (8, 7)] {
            let e = supported(cc).unwrap_err();
            assert_eq!(e.to_string(), "fp8 GEMM (needs sm_89+) is not supported on this device");
        }
    }

    /// E4M3 in, bf16 C and D, fp32 accumulation and scales (`cudaDataType` 28, 14 and 0); a
    /// 32 MiB workspace.
    #[test]
    fn descriptor_types() {
        assert_eq!((IN_TYPE as u32, OUT_TYPE as u32, SCALE_TYPE as u32), (28, 14, 0));
        assert_eq!(COMPUTE, sys::cublasComputeType_t::CUBLAS_COMPUTE_32F);
        assert_eq!(WORKSPACE_BYTES, 33_554_432);
    }
}
