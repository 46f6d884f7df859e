"""The `context` case (what a process pays before it allocates anything) and the `torch` case
(copy bandwidth, matmul and attention rates: the baselines the Rust agent is compared to; and the
host link: pageable and pinned host-to-device copies, a GPU->CPU->GPU hop)."""

import time

from .common import Nvml, Recorder, env_info, run_phase, snapshot, time_cuda


def cmd_context(args):
    """CUDA context cost, step by step, in a fresh process. Each step records NVML device used,
    this process's used memory, cudaMemGetInfo and the PyTorch allocator; deltas are taken
    against the NVML reading before any CUDA call."""
    nvml = Nvml()
    rec = Recorder(args.out, "context", args.case_id, args)
    steps = [{"step": "before_import_torch", **nvml.snapshot()}]
    try:
        import torch

        steps.append({"step": "after_import_torch", **nvml.snapshot()})
        t0 = time.perf_counter()
        torch.cuda.init()
        steps.append(
            {
                "step": "after_torch_cuda_init",
                "elapsed_s": time.perf_counter() - t0,
                "torch_cuda_initialized": torch.cuda.is_initialized(),
                **nvml.snapshot(),
            }
        )
        t0 = time.perf_counter()
        one = torch.empty(1, device="cuda")
        one.fill_(1.0)
        steps.append(
            {"step": "after_first_alloc", "elapsed_s": time.perf_counter() - t0, **snapshot(nvml)}
        )
        rec["env"] = env_info(nvml)

        a = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        b = torch.randn(4096, 4096, device="cuda", dtype=torch.bfloat16)
        steps.append({"step": "after_matmul_inputs", **snapshot(nvml)})
        t0 = time.perf_counter()
        c = a @ b
        torch.cuda.synchronize()
        steps.append(
            {"step": "after_first_cublas_matmul_bf16_4096", "elapsed_s": time.perf_counter() - t0,
             **snapshot(nvml)}
        )
        del a, b, c
        torch.cuda.empty_cache()
        steps.append({"step": "after_matmul_freed_and_empty_cache", **snapshot(nvml)})

        q = torch.randn(1, 32, 1024, 128, device="cuda", dtype=torch.bfloat16)
        o = torch.nn.functional.scaled_dot_product_attention(q, q, q, is_causal=True)
        torch.cuda.synchronize()
        del q, o
        torch.cuda.empty_cache()
        steps.append({"step": "after_first_sdpa_and_empty_cache", **snapshot(nvml)})
        rec["steps"] = steps
        rec["deltas"] = context_deltas(steps)
        rec.finish("ok")
    except Exception as exc:  # noqa: BLE001
        rec.rec["steps"] = steps
        rec.fail(exc)
        raise


def context_deltas(steps):
    """Each step's NVML device-used and process-used, minus the reading before any CUDA call."""
    base = steps[0].get("nvml_device_used_bytes")
    out = []
    for s in steps:
        dev = s.get("nvml_device_used_bytes")
        out.append(
            {
                "step": s["step"],
                "device_used_delta_bytes": dev - base
                if isinstance(dev, int) and isinstance(base, int)
                else None,
                "process_used_bytes": s.get("nvml_process_used_bytes"),
                "reserved_bytes": s.get("reserved_bytes"),
                "process_minus_reserved_bytes": s.get("process_minus_reserved_bytes"),
            }
        )
    return out


def set_tf32(torch, enabled):
    """TF32 for float32 matmuls. torch >= 2.9 has the fp32_precision API and deprecates
    allow_tf32 / set_float32_matmul_precision; a mix of old and new settings can make cuBLAS
    matmuls raise. So: set one API, probe with a small float32 matmul, and if that raises, also
    set the other (which makes both agree). Returns the settings applied; rel_err_vs_fp64 in
    the record shows which precision really ran."""
    m = torch.backends.cuda.matmul
    mode = "tf32" if enabled else "ieee"
    level = "high" if enabled else "highest"

    def new_api():
        m.fp32_precision = mode
        return f"torch.backends.cuda.matmul.fp32_precision={mode!r}"

    def legacy_api():
        torch.set_float32_matmul_precision(level)
        return f"torch.set_float32_matmul_precision({level!r})"

    order = [new_api, legacy_api] if hasattr(m, "fp32_precision") else [legacy_api]
    applied, errors = [], []
    for setter in order:
        try:
            applied.append(setter())
            x = torch.randn(64, 64, device="cuda", dtype=torch.float32)
            (x @ x).sum().item()
            return "; ".join(applied) + (f" (after: {errors})" if errors else "")
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
    raise RuntimeError(f"could not set TF32={enabled}: {errors}")


def cmd_torch(args):
    nvml = Nvml()
    rec = Recorder(args.out, "torch", args.case_id, args)
    try:
        import torch

        torch.cuda.init()
        torch.empty(1, device="cuda")
        rec["env"] = env_info(nvml)
        rec["clocks_before"] = nvml.clocks()
        reps, warm = args.reps, args.warmup
        run_phase(rec, "copy", lambda: bench_copy(torch, args.copy_gib, warm, reps))
        run_phase(rec, "matmul", lambda: bench_matmuls(torch, args.n, warm, reps))
        run_phase(rec, "sdpa", lambda: bench_sdpa(torch, warm, reps))
        run_phase(rec, "host_link", lambda: bench_host_link(torch, nvml, warm, reps))
        rec["clocks_after"] = nvml.clocks()
        rec["memory_end"] = snapshot(nvml)
        ok = all("error" not in rec.rec.get(k, {}) for k in ("copy", "matmul", "sdpa"))
        rec.finish("ok" if ok else "partial")
    except Exception as exc:  # noqa: BLE001
        rec.fail(exc)
        raise


def bench_copy(torch, gib, warm, reps):
    """Device-to-device dst.copy_(src) of a `gib` GiB buffer; bytes counted as read + write."""
    n = int(gib * 1024**3)
    src = torch.randint(0, 256, (n,), dtype=torch.uint8, device="cuda")
    dst = torch.empty_like(src)
    t = time_cuda(lambda: dst.copy_(src), warm, reps)
    moved = 2 * n
    ok = bool(torch.equal(dst[:4096], src[:4096]) and torch.equal(dst[-4096:], src[-4096:]))
    return {
        "buffer_bytes": n,
        "bytes_moved_per_copy": moved,
        "time": t,
        "median_gb_s": moved / t["median_s"] / 1e9,
        "max_gb_s": moved / t["min_s"] / 1e9,
        "min_gb_s": moved / t["max_s"] / 1e9,
        "copy_verified": ok,
    }


def bench_host_link(torch, nvml, warm, reps, gib=1.0, hidden=4096, hops=200):
    """What llama.cpp's host-weight paths meet (src/plan/throughput/offload.rs): host-to-device
    copies of a `gib` GiB buffer from pageable memory (as llama.cpp uploads mmapped weights for
    prompt ubatches) and from pinned memory; and one GPU->CPU->GPU hop of a hidden state (`hidden`
    fp32 values: a copy down, a synchronisation, a copy up), the floor of a --n-cpu-moe layer's
    two hops. Also the PCIe link NVML reports (current and maximum generation and width)."""
    n = int(gib * 1024**3)
    dst = torch.empty(n, dtype=torch.uint8, device="cuda")
    out = {"buffer_bytes": n}
    for kind, pin in (("pageable", False), ("pinned", True)):
        src = torch.randint(0, 256, (n,), dtype=torch.uint8).pin_memory() if pin else torch.randint(0, 256, (n,), dtype=torch.uint8)
        t = time_cuda(lambda: dst.copy_(src, non_blocking=pin), warm, reps)
        ok = bool(torch.equal(dst[-4096:].cpu(), src[-4096:]))
        out[f"h2d_{kind}"] = {"time": t, "median_gb_s": n / t["median_s"] / 1e9, "verified": ok}
        del src
    x = torch.randn(hidden, device="cuda")
    host = torch.empty(hidden).pin_memory()
    samples = []
    for i in range(warm + hops):
        t0 = time.perf_counter()
        host.copy_(x, non_blocking=True)
        torch.cuda.synchronize()
        x.copy_(host, non_blocking=True)
        torch.cuda.synchronize()
        if i >= warm:
            samples.append(time.perf_counter() - t0)
    out["round_trip_hidden_fp32"] = {"values": hidden, "time": stats_s(samples)}
    if nvml.h is not None:
        nv = nvml.nv
        out["pcie"] = {
            "current_generation": nvml._try(nv.nvmlDeviceGetCurrPcieLinkGeneration, nvml.h),
            "max_generation": nvml._try(nv.nvmlDeviceGetMaxPcieLinkGeneration, nvml.h),
            "current_width": nvml._try(nv.nvmlDeviceGetCurrPcieLinkWidth, nvml.h),
            "max_width": nvml._try(nv.nvmlDeviceGetMaxPcieLinkWidth, nvml.h),
        }
    return out


def bench_matmuls(torch, n, warm, reps):
    """torch.matmul n×n×n on random normal inputs: bf16, fp16, fp32 (IEEE) and tf32; 2·n³ flops."""
    out = {"n": n, "flops_per_matmul": 2 * n**3}
    cases = [("bf16", torch.bfloat16, False), ("fp16", torch.float16, False),
             ("fp32", torch.float32, False), ("tf32", torch.float32, True)]
    for name, dt, tf32 in cases:
        try:
            api = set_tf32(torch, tf32)
            out[name] = {**bench_matmul(torch, n, dt, warm, reps), "precision_setting": api,
                         "rel_err_vs_fp64_1024": rel_err_vs_fp64(torch, dt)}
        except Exception as exc:  # noqa: BLE001
            out[name] = {"error": f"{type(exc).__name__}: {exc}"}
        torch.cuda.empty_cache()
    try:
        set_tf32(torch, False)
    except RuntimeError as exc:
        out["reset_error"] = str(exc)
    return out


def bench_matmul(torch, n, dt, warm, reps):
    a = torch.randn(n, n, device="cuda", dtype=dt)
    b = torch.randn(n, n, device="cuda", dtype=dt)
    c = torch.empty(n, n, device="cuda", dtype=dt)
    t = time_cuda(lambda: torch.matmul(a, b, out=c), warm, reps)
    flops = 2 * n**3
    return {
        "time": t,
        "median_tflops": flops / t["median_s"] / 1e12,
        "max_tflops": flops / t["min_s"] / 1e12,
        "min_tflops": flops / t["max_s"] / 1e12,
    }


def rel_err_vs_fp64(torch, dt):
    """‖A·B − ref‖ / ‖ref‖ for a 1024³ product under the current precision setting (tells tf32
    from IEEE float32: ~1e-3 against ~1e-6)."""
    a = torch.randn(1024, 1024, device="cuda", dtype=torch.float64)
    b = torch.randn(1024, 1024, device="cuda", dtype=torch.float64)
    ref = a @ b
    got = (a.to(dt) @ b.to(dt)).to(torch.float64)
    return float((got - ref).norm() / ref.norm())


def bench_sdpa(torch, warm, reps):
    """Causal F.scaled_dot_product_attention, bf16, batch 1, 32 query heads, seq 4096, head_dim
    128; flops 4·b·h·s²·d / 2 (causal halves the work). MHA with the default backend and with
    each fused backend forced; GQA with 8 KV heads through enable_gqa, and through
    repeat_interleave inside the timed region for comparison."""
    import torch.nn.functional as F

    b, h, s, d, hkv = 1, 32, 4096, 128, 8
    flops = 4 * b * h * s * s * d / 2
    g = torch.Generator(device="cuda")
    g.manual_seed(1)

    def rnd(heads):
        return torch.randn(b, heads, s, d, device="cuda", dtype=torch.bfloat16, generator=g)

    q, k, v = rnd(h), rnd(h), rnd(h)
    kg, vg = rnd(hkv), rnd(hkv)
    out = {"batch": b, "heads": h, "kv_heads_gqa": hkv, "seq": s, "head_dim": d,
           "flops_per_call": flops, "causal": True}

    def record(name, fn):
        try:
            t = time_cuda(fn, warm, reps)
            out[name] = {"time": t, "median_tflops": flops / t["median_s"] / 1e12,
                         "max_tflops": flops / t["min_s"] / 1e12,
                         "min_tflops": flops / t["max_s"] / 1e12}
        except Exception as exc:  # noqa: BLE001
            out[name] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}

    record("mha_default", lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
    record("gqa_enable_gqa",
           lambda: F.scaled_dot_product_attention(q, kg, vg, is_causal=True, enable_gqa=True))
    rep = h // hkv
    record("gqa_repeat_interleave",
           lambda: F.scaled_dot_product_attention(
               q, kg.repeat_interleave(rep, dim=1), vg.repeat_interleave(rep, dim=1),
               is_causal=True))
    try:
        from torch.nn.attention import SDPBackend, sdpa_kernel

        for name in ("FLASH_ATTENTION", "EFFICIENT_ATTENTION", "CUDNN_ATTENTION"):
            backend = getattr(SDPBackend, name, None)
            if backend is None:
                out[f"mha_{name.lower()}"] = {"error": "backend not in this torch"}
                continue

            def fn(backend=backend):
                with sdpa_kernel(backend):
                    return F.scaled_dot_product_attention(q, k, v, is_causal=True)

            record(f"mha_{name.lower()}", fn)
    except ImportError as exc:
        out["backends_error"] = repr(exc)
    out["flash_sdp_enabled"] = torch.backends.cuda.flash_sdp_enabled()
    out["mem_efficient_sdp_enabled"] = torch.backends.cuda.mem_efficient_sdp_enabled()
    cudnn_sdp = getattr(torch.backends.cuda, "cudnn_sdp_enabled", None)
    out["cudnn_sdp_enabled"] = cudnn_sdp() if cudnn_sdp else None
    return out
