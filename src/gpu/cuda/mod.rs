//! The CUDA implementation of [`Gpu`] (cudarc, driver API): one context and stream on device 0,
//! kernel modules compiled by NVRTC on first use and cached, plain `cuMemAlloc` buffers (never
//! managed memory, never more than is free), CUDA events with timing for every measurement.
//! Per-workload set-up and correctness checks live in `setup.rs`; the FP8 GEMM, which only
//! cuBLASLt offers, in `lt.rs`.

mod launch;
pub mod layer;
mod lt;
mod setup;

use super::kernels::{self, Family};
use super::{Check, DeviceInfo, Gpu, GpuError, Workload};
use cudarc::driver::sys::CUdevice_attribute as Attr;
use cudarc::driver::{
    CudaContext, CudaFunction, CudaModule, CudaSlice, CudaStream, DevicePtr, LaunchConfig, PushKernelArg,
};
use std::collections::HashMap;
use std::sync::Arc;

/// A kernel argument (device pointers travel as u64).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Arg {
    Ptr(u64),
    U64(u64),
    I32(i32),
    U32(u32),
    F32(f32),
}

/// A cuBLAS GemmEx call on raw device pointers (column-major, as cuBLAS sees it):
/// `C (m×n, ldc) = op(A) · op(B)` (or `+=`, see `accumulate`) with `op(A)` m×k and `op(B)` k×n.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct GemmCall {
    pub dtype: super::workload::GemmDtype,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    pub a: u64,
    pub b: u64,
    pub c: u64,
    /// `op(A) = Aᵀ` (A stored k×m, column-major).
    pub trans_a: bool,
    /// `op(B) = Bᵀ` (B stored n×k, column-major).
    pub trans_b: bool,
    pub lda: i32,
    pub ldb: i32,
    pub ldc: i32,
    /// `C += op(A) · op(B)` (beta = 1) instead of `C = op(A) · op(B)` (beta = 0). Only the
    /// training backward's input gradient accumulates; the FP8 path takes beta = 0 only.
    pub accumulate: bool,
}

impl GemmCall {
    /// The benchmark's GEMM on packed operands: A m×k (int8 and fp8: stored transposed, k×m, as
    /// IMMA and cuBLASLt's FP8 kernels want), B k×n, C m×n, all column-major with no padding.
    pub(crate) fn packed(dtype: super::workload::GemmDtype, m: i32, n: i32, k: i32, a: u64, b: u64, c: u64) -> Self {
        use super::workload::GemmDtype as D;
        let (trans_a, lda) = if matches!(dtype, D::Int8 | D::Fp8) { (true, k) } else { (false, m) };
        GemmCall { dtype, m, n, k, a, b, c, trans_a, trans_b: false, lda, ldb: k, ldc: m, accumulate: false }
    }
}

/// One launch: a kernel or a cuBLAS call.
#[derive(Clone, Debug)]
pub(crate) enum Step {
    Kernel { f: CudaFunction, cfg: LaunchConfig, args: Vec<Arg> },
    Gemm(GemmCall),
}

struct Prepared {
    _buffers: Vec<CudaSlice<u8>>,
    /// One list of steps per buffer replica; launches rotate through them.
    rotations: Vec<Vec<Step>>,
    next: usize,
}

/// The device and what has been compiled and allocated on it.
pub struct CudaGpu {
    info: DeviceInfo,
    ctx: Arc<CudaContext>,
    stream: Arc<CudaStream>,
    modules: HashMap<&'static str, Arc<CudaModule>>,
    /// Kernels looked up once, with the dynamic shared memory their limit has been raised to:
    /// validate's decode launches ~18 kernels per layer and step, and its host time is measured.
    functions: HashMap<String, (CudaFunction, u32)>,
    blas: Option<cudarc::cublas::CudaBlas>,
    /// cuBLASLt for the FP8 GEMM, created on first use.
    lt: Option<lt::Lt>,
    prepared: Option<Prepared>,
}

/// Checks the driver and NVRTC are loadable (cudarc panics on a missing library).
pub fn driver_present() -> Result<(), GpuError> {
    // SAFETY: these only try to dlopen the libraries.
    if !unsafe { cudarc::driver::sys::is_culib_present() } {
        return Err(GpuError::DriverNotFound);
    }
    if !kernels::nvrtc_present() {
        return Err(GpuError::NvrtcNotFound);
    }
    Ok(())
}

impl CudaGpu {
    /// Opens device `ordinal`, filling `info` (from NVML when available) with driver attributes.
    pub fn open(ordinal: usize, nvml_info: Option<DeviceInfo>) -> Result<Self, GpuError> {
        driver_present()?;
        let n = CudaContext::device_count().map_err(|e| GpuError::driver("cuDeviceGetCount", e))?;
        if n <= ordinal as i32 {
            return Err(GpuError::NoDevice);
        }
        let ctx = CudaContext::new(ordinal).map_err(|e| GpuError::driver("cuCtxCreate", e))?;
        let stream = ctx.default_stream();
        let mut info = nvml_info.unwrap_or_default();
        let attr = |a: Attr| ctx.attribute(a).ok().map(|v| v as u32);
        info.index = ordinal as u32;
        if info.name.is_empty() {
            info.name = ctx.name().unwrap_or_default();
        }
        let (major, minor) = ctx.compute_capability().map_err(|e| GpuError::driver("compute capability", e))?;
        info.compute_capability = (major as u32, minor as u32);
        info.sm_count = attr(Attr::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
        info.l2_cache_bytes = attr(Attr::CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE).map(u64::from);
        if let Ok((free, total)) = ctx.mem_get_info() {
            info.memory_free_bytes = free as u64;
            info.memory_total_bytes = total as u64;
        }
        Ok(CudaGpu {
            info,
            ctx,
            stream,
            modules: HashMap::new(),
            functions: HashMap::new(),
            blas: None,
            lt: None,
            prepared: None,
        })
    }

    fn sm_count(&self) -> u32 {
        self.info.sm_count.unwrap_or(80)
    }

    fn l2_bytes(&self) -> u64 {
        self.info.l2_cache_bytes.unwrap_or(50 << 20)
    }

    /// The kernel `name` from family `family`, compiling the family on first use.
    pub(crate) fn function(&mut self, family: &'static str, name: &str) -> Result<CudaFunction, GpuError> {
        self.function_with_smem(family, name, 0)
    }

    /// The kernel `name`, its dynamic shared-memory limit raised to at least `smem` bytes; both
    /// the lookup and the raise happen once per kernel.
    pub(crate) fn function_with_smem(
        &mut self,
        family: &'static str,
        name: &str,
        smem: u32,
    ) -> Result<CudaFunction, GpuError> {
        let f = match self.functions.get(name) {
            Some((f, raised)) if *raised >= smem => return Ok(f.clone()),
            Some((f, _)) => f.clone(),
            None => self.load_function(family, name)?,
        };
        launch::allow_smem(&f, smem, name)?;
        self.functions.insert(name.to_string(), (f.clone(), smem));
        Ok(f)
    }

    fn load_function(&mut self, family: &'static str, name: &str) -> Result<CudaFunction, GpuError> {
        let fam: &'static Family = kernels::family(family).ok_or_else(|| GpuError::Unsupported(family.into()))?;
        let (major, minor) = self.info.compute_capability;
        if major * 10 + minor < fam.min_sm {
            return Err(GpuError::Unsupported(format!("{family} (needs sm_{})", fam.min_sm)));
        }
        if !self.modules.contains_key(fam.name) {
            let arch = kernels::virtual_arch(major, minor);
            let ptx = kernels::compile_ptx(fam, &arch)?;
            let module = self
                .ctx
                .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
                .map_err(|e| GpuError::driver(format!("loading module {family} for {arch}"), e))?;
            self.modules.insert(fam.name, module);
        }
        self.modules[fam.name].load_function(name).map_err(|e| GpuError::driver(format!("kernel {name}"), e))
    }

    /// Allocates `bytes` of plain device memory after checking it is free.
    pub(crate) fn alloc(&self, what: &str, bytes: u64) -> Result<(CudaSlice<u8>, u64), GpuError> {
        let free = self.ctx.mem_get_info().map(|(f, _)| f as u64).unwrap_or(0);
        // Leave room for cuBLAS workspaces and the driver.
        if bytes + (256 << 20) > free {
            return Err(GpuError::OutOfMemory { what: what.into(), requested_bytes: bytes, free_bytes: free });
        }
        // SAFETY: the buffer is filled by a kernel or a copy before any read.
        let buf = unsafe { self.stream.alloc::<u8>(bytes.max(16) as usize) }.map_err(|e| {
            if format!("{e:?}").contains("OUT_OF_MEMORY") {
                GpuError::OutOfMemory { what: what.into(), requested_bytes: bytes, free_bytes: free }
            } else {
                GpuError::driver(format!("cuMemAlloc {what}"), e)
            }
        })?;
        let ptr = {
            let (p, _sync) = buf.device_ptr(&self.stream);
            p
        };
        Ok((buf, ptr))
    }

    /// Copies host data to a new device buffer.
    pub(crate) fn upload<T: cudarc::driver::DeviceRepr>(&self, data: &[T]) -> Result<(CudaSlice<T>, u64), GpuError> {
        let buf = self.stream.clone_htod(data).map_err(|e| GpuError::driver("copy to device", e))?;
        let ptr = {
            let (p, _sync) = buf.device_ptr(&self.stream);
            p
        };
        Ok((buf, ptr))
    }

    /// Copies a device buffer back.
    pub(crate) fn download<T: cudarc::driver::DeviceRepr + Default + Clone>(
        &self,
        buf: &CudaSlice<T>,
    ) -> Result<Vec<T>, GpuError> {
        self.stream.clone_dtoh(buf).map_err(|e| GpuError::driver("copy to host", e))
    }

    /// Fills a buffer with random values on the device: `kind` is u32, f32, bf16, f16 or e4m3
    /// (finite FP8 values, written four per word; `scale` is ignored for u32 and e4m3).
    pub(crate) fn fill(&mut self, ptr: u64, bytes: u64, kind: &str, seed: u32, scale: f32) -> Result<(), GpuError> {
        let (name, elem) = match kind {
            "u32" => ("fill_u32", 4),
            "e4m3" => ("fill_e4m3", 4),
            "f32" => ("fill_f32", 4),
            "f16" => ("fill_f16", 2),
            _ => ("fill_bf16", 2),
        };
        let f = self.function("fill", name)?;
        let n = bytes / elem;
        let mut args = vec![Arg::Ptr(ptr), Arg::U64(n), Arg::U32(seed)];
        if !matches!(kind, "u32" | "e4m3") {
            args.push(Arg::F32(scale));
        }
        let cfg = LaunchConfig { grid_dim: (self.sm_count() * 8, 1, 1), block_dim: (256, 1, 1), shared_mem_bytes: 0 };
        self.run_step(&Step::Kernel { f, cfg, args })
    }

    /// Runs one step on the stream (asynchronously).
    pub(crate) fn run_step(&mut self, step: &Step) -> Result<(), GpuError> {
        match step {
            Step::Kernel { f, cfg, args } => {
                let mut b = self.stream.launch_builder(f);
                for a in args {
                    match a {
                        Arg::Ptr(v) | Arg::U64(v) => b.arg(v),
                        Arg::I32(v) => b.arg(v),
                        Arg::U32(v) => b.arg(v),
                        Arg::F32(v) => b.arg(v),
                    };
                }
                // SAFETY: argument lists are built by setup.rs to match each kernel's signature,
                // and every pointer is a live allocation held by the prepared workload.
                unsafe { b.launch(*cfg) }.map(|_| ()).map_err(|e| GpuError::driver("kernel launch", e))
            }
            Step::Gemm(g) => self.gemm(g),
        }
    }

    /// The cuBLAS handle on this stream, created on first use.
    pub(crate) fn blas_handle(&mut self) -> Result<cudarc::cublas::sys::cublasHandle_t, GpuError> {
        if self.blas.is_none() {
            // SAFETY: only tries to dlopen the libraries.
            let present =
                unsafe { cudarc::cublas::sys::is_culib_present() && cudarc::cublaslt::sys::is_culib_present() };
            if !present {
                return Err(GpuError::CublasNotFound);
            }
            let blas = cudarc::cublas::CudaBlas::new(self.stream.clone())
                .map_err(|e| GpuError::Cublas { context: "cublasCreate".into(), detail: format!("{e:?}") })?;
            self.blas = Some(blas);
        }
        match self.blas.as_ref() {
            Some(blas) => Ok(*blas.handle()),
            None => Err(GpuError::CublasNotFound),
        }
    }

    fn gemm(&mut self, g: &GemmCall) -> Result<(), GpuError> {
        use super::workload::GemmDtype as D;
        use cudarc::cublas::sys::{
            cublasComputeType_t as CT, cublasGemmAlgo_t, cublasOperation_t as Op, cudaDataType as DT,
        };
        let (in_t, out_t, compute) = match g.dtype {
            D::Fp32 => (DT::CUDA_R_32F, DT::CUDA_R_32F, CT::CUBLAS_COMPUTE_32F),
            D::Tf32 => (DT::CUDA_R_32F, DT::CUDA_R_32F, CT::CUBLAS_COMPUTE_32F_FAST_TF32),
            D::Fp16 => (DT::CUDA_R_16F, DT::CUDA_R_16F, CT::CUBLAS_COMPUTE_32F),
            D::Bf16 => (DT::CUDA_R_16BF, DT::CUDA_R_16BF, CT::CUBLAS_COMPUTE_32F),
            D::Int8 => (DT::CUDA_R_8I, DT::CUDA_R_32I, CT::CUBLAS_COMPUTE_32I),
            D::Fp8 => return self.gemm_fp8(g),
        };
        let handle = self.blas_handle()?;
        let (one_f, zero_f, one_i, zero_i) = (1f32, 0f32, 1i32, 0i32);
        let (alpha, beta): (*const std::ffi::c_void, *const std::ffi::c_void) = match (g.dtype, g.accumulate) {
            (D::Int8, false) => (&one_i as *const i32 as _, &zero_i as *const i32 as _),
            (D::Int8, true) => (&one_i as *const i32 as _, &one_i as *const i32 as _),
            (_, false) => (&one_f as *const f32 as _, &zero_f as *const f32 as _),
            (_, true) => (&one_f as *const f32 as _, &one_f as *const f32 as _),
        };
        let op = |t: bool| if t { Op::CUBLAS_OP_T } else { Op::CUBLAS_OP_N };
        // SAFETY: a, b, c are live device buffers holding op(A), op(B) and C at their leading
        // dimensions (each caller checks its operands' sizes).
        unsafe {
            cudarc::cublas::result::gemm_ex(
                handle,
                op(g.trans_a),
                op(g.trans_b),
                g.m,
                g.n,
                g.k,
                alpha,
                g.a as *const _,
                in_t,
                g.lda,
                g.b as *const _,
                in_t,
                g.ldb,
                beta,
                g.c as *mut _,
                out_t,
                g.ldc,
                compute,
                cublasGemmAlgo_t::CUBLAS_GEMM_DEFAULT,
            )
        }
        .map_err(|e| GpuError::Cublas { context: format!("gemm {}", g.dtype.key()), detail: format!("{e:?}") })
    }

    pub(crate) fn sync(&self) -> Result<(), GpuError> {
        self.stream.synchronize().map_err(|e| GpuError::driver("synchronize", e))
    }
}

impl Gpu for CudaGpu {
    fn device(&self) -> &DeviceInfo {
        &self.info
    }

    fn prepare(&mut self, w: &Workload) -> Result<Check, GpuError> {
        self.release();
        let check = setup::check(self, w)?;
        let footprint = w.footprint_bytes().max(1);
        let replicas = (4 * self.l2_bytes()).div_ceil(footprint).clamp(1, 8) as usize;
        let mut buffers = Vec::new();
        let mut rotations = Vec::new();
        for r in 0..replicas {
            let (bufs, steps) = setup::full(self, w, 1000 + r as u32)?;
            buffers.extend(bufs);
            rotations.push(steps);
        }
        self.sync()?;
        self.prepared = Some(Prepared { _buffers: buffers, rotations, next: 0 });
        Ok(check)
    }

    fn time(&mut self, launches: u32) -> Result<f64, GpuError> {
        let Some(mut p) = self.prepared.take() else {
            return Err(GpuError::Unsupported("timing before prepare".into()));
        };
        let timing = Some(cudarc::driver::sys::CUevent_flags::CU_EVENT_DEFAULT);
        let result = (|| {
            let start = self.ctx.new_event(timing).map_err(|e| GpuError::driver("cuEventCreate", e))?;
            let end = self.ctx.new_event(timing).map_err(|e| GpuError::driver("cuEventCreate", e))?;
            start.record(&self.stream).map_err(|e| GpuError::driver("cuEventRecord", e))?;
            for _ in 0..launches {
                let steps = &p.rotations[p.next % p.rotations.len()];
                p.next += 1;
                for s in steps {
                    self.run_step(s)?;
                }
            }
            end.record(&self.stream).map_err(|e| GpuError::driver("cuEventRecord", e))?;
            start.elapsed_ms(&end).map(f64::from).map_err(|e| GpuError::driver("cuEventElapsedTime", e))
        })();
        self.prepared = Some(p);
        result
    }

    fn release(&mut self) {
        if self.prepared.take().is_some() {
            let _ = self.sync();
        }
    }
}
