"""Shared pieces of the ground-truth measurements: the JSON record store, NVML and PyTorch memory
snapshots, environment facts, timing statistics, and loading a model config from data/models.

Nothing here imports torch at module load: `finish`, `summary`, `runinfo` and `headroom` run
without it. Functions that need torch import it inside.
"""

import datetime
import json
import math
import os
import socket
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path

SCHEMA_VERSION = 1
REPO_ROOT = Path(__file__).resolve().parent.parent.parent
GIB = 1024**3


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# ───────────────────────────── JSON record store ─────────────────────────────
# Each output file (infer.json, train.json, ...) is a JSON array of records, one per case, keyed
# by "case_id". A case rewrites its own record after every phase (atomic replace), so a case that
# is killed midway still leaves what it measured.


def clean(obj):
    """Make obj JSON-safe: non-finite floats become null, unknown objects become strings."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (str, int, bool)) or obj is None:
        return obj
    if isinstance(obj, dict):
        return {str(k): clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [clean(v) for v in obj]
    return str(obj)


def load_records(path):
    try:
        with open(path) as f:
            data = json.load(f)
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        print(f"[warn] {path} unreadable ({exc}); starting a new array", file=sys.stderr)
        return []
    return data if isinstance(data, list) else [data]


def write_json(path, data):
    path = Path(path)
    tmp = path.with_name("." + path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(clean(data), f, indent=1)
        f.write("\n")
    os.replace(tmp, path)


def upsert_record(path, record):
    records = load_records(path)
    for i, old in enumerate(records):
        if isinstance(old, dict) and old.get("case_id") == record["case_id"]:
            records[i] = record
            break
    else:
        records.append(record)
    write_json(path, records)


class Recorder:
    """One case's record, saved to its file after every change."""

    def __init__(self, out, case, case_id, args):
        self.out = out
        self.t0 = time.perf_counter()
        self.rec = {
            "schema_version": SCHEMA_VERSION,
            "case": case,
            "case_id": case_id,
            "status": "running",
            "started_utc": utc_now(),
            "pid": os.getpid(),
            "args": {k: v for k, v in vars(args).items() if k not in ("func", "out")},
        }
        self.save()

    def __getitem__(self, key):
        return self.rec[key]

    def __setitem__(self, key, value):
        self.rec[key] = value
        self.save()

    def save(self):
        self.rec["wall_s"] = time.perf_counter() - self.t0
        upsert_record(self.out, self.rec)

    def finish(self, status):
        self.rec["status"] = status
        self.rec["finished_utc"] = utc_now()
        self.save()

    def fail(self, exc):
        self.rec["error"] = f"{type(exc).__name__}: {exc}"
        self.rec["traceback"] = traceback.format_exc()[-6000:]
        self.finish("error")


def run_phase(rec, key, fn):
    """Run one phase; store its dict under rec[key], or its error, and go on either way."""
    print(f"[phase] {rec['case_id']} {key} ...", flush=True)
    t0 = time.perf_counter()
    try:
        result = fn()
        result["phase_wall_s"] = time.perf_counter() - t0
        rec[key] = result
        return True
    except Exception as exc:  # noqa: BLE001 - an OOM or API error in one phase must not stop the rest
        rec[key] = {
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "oom": "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc),
            "traceback": traceback.format_exc()[-4000:],
            "phase_wall_s": time.perf_counter() - t0,
        }
        print(f"[phase] {rec['case_id']} {key} FAILED: {type(exc).__name__}: {str(exc)[:300]}")
        return False
        return False


# ───────────────────────────── NVML ─────────────────────────────


class Nvml:
    """Device-wide and per-process memory from NVML (pynvml, from nvidia-ml-py). Never raises."""

    def __init__(self, index=0):
        self.index = index
        self.error = None
        self.h = None
        try:
            import pynvml

            self.nv = pynvml
            pynvml.nvmlInit()
            self.h = pynvml.nvmlDeviceGetHandleByIndex(index)
        except Exception as exc:  # noqa: BLE001
            self.error = f"{type(exc).__name__}: {exc}"

    @staticmethod
    def _s(v):
        return v.decode() if isinstance(v, bytes) else v

    def _try(self, fn, *a):
        try:
            return fn(*a)
        except Exception:  # noqa: BLE001
            return None

    def info(self):
        if self.h is None:
            return {"nvml_error": self.error}
        nv = self.nv
        mem = self._try(nv.nvmlDeviceGetMemoryInfo, self.h)
        cuda_drv = self._try(nv.nvmlSystemGetCudaDriverVersion)
        pci = self._try(nv.nvmlDeviceGetPciInfo, self.h)
        return {
            "nvml_device_index": self.index,
            "device_name": self._s(self._try(nv.nvmlDeviceGetName, self.h)),
            "driver_version": self._s(self._try(nv.nvmlSystemGetDriverVersion)),
            "nvml_version": self._s(self._try(nv.nvmlSystemGetNVMLVersion)),
            "cuda_driver_version": cuda_drv,
            "pci_bus_id": self._s(getattr(pci, "busId", None)) if pci is not None else None,
            "memory_total_bytes": getattr(mem, "total", None),
            "max_sm_clock_mhz": self._try(nv.nvmlDeviceGetMaxClockInfo, self.h, nv.NVML_CLOCK_SM),
            "max_mem_clock_mhz": self._try(nv.nvmlDeviceGetMaxClockInfo, self.h, nv.NVML_CLOCK_MEM),
            "power_limit_mw": self._try(nv.nvmlDeviceGetPowerManagementLimit, self.h),
        }

    def clocks(self):
        if self.h is None:
            return {}
        nv = self.nv
        return {
            "sm_clock_mhz": self._try(nv.nvmlDeviceGetClockInfo, self.h, nv.NVML_CLOCK_SM),
            "mem_clock_mhz": self._try(nv.nvmlDeviceGetClockInfo, self.h, nv.NVML_CLOCK_MEM),
            "temperature_c": self._try(nv.nvmlDeviceGetTemperature, self.h, nv.NVML_TEMPERATURE_GPU),
            "power_mw": self._try(nv.nvmlDeviceGetPowerUsage, self.h),
        }

    def snapshot(self):
        """Device used/free (v1 and, where the binding has it, v2 with 'reserved') and this
        process's used memory from nvmlDeviceGetComputeRunningProcesses."""
        if self.h is None:
            return {"nvml_error": self.error}
        nv = self.nv
        out = {}
        try:
            m = nv.nvmlDeviceGetMemoryInfo(self.h)
            out.update(
                nvml_device_used_bytes=m.used,
                nvml_device_free_bytes=m.free,
                nvml_device_total_bytes=m.total,
            )
        except Exception as exc:  # noqa: BLE001
            out["nvml_memory_error"] = repr(exc)
        v2 = getattr(nv, "nvmlMemory_v2", None)
        if v2 is not None:
            try:
                m2 = nv.nvmlDeviceGetMemoryInfo(self.h, version=v2)
                out.update(
                    nvml_v2_used_bytes=m2.used,
                    nvml_v2_reserved_bytes=m2.reserved,
                    nvml_v2_free_bytes=m2.free,
                )
            except Exception:  # noqa: BLE001 - older bindings or drivers: v1 is enough
                pass
        try:
            procs = nv.nvmlDeviceGetComputeRunningProcesses(self.h)
            me = os.getpid()
            lst = []
            for p in procs:
                used = getattr(p, "usedGpuMemory", None)
                if used is not None and used >= 2**63:  # NVML_VALUE_NOT_AVAILABLE
                    used = None
                lst.append({"pid": p.pid, "used_bytes": used})
            out["nvml_processes"] = lst
            mine = [p for p in lst if p["pid"] == me]
            if mine:
                out["nvml_process_used_bytes"] = mine[0]["used_bytes"]
                out["nvml_process_pid_matched"] = True
            elif len(lst) == 1:
                # PID namespaces can hide our own pid; the only compute process is us.
                out["nvml_process_used_bytes"] = lst[0]["used_bytes"]
                out["nvml_process_pid_matched"] = False
            else:
                out["nvml_process_used_bytes"] = None
                out["nvml_process_pid_matched"] = False
        except Exception as exc:  # noqa: BLE001
            out["nvml_process_error"] = repr(exc)
        return out


# ───────────────────────────── PyTorch memory ─────────────────────────────


def torch_mem():
    import torch

    free, total = torch.cuda.mem_get_info()
    stats = torch.cuda.memory_stats()
    return {
        "allocated_bytes": torch.cuda.memory_allocated(),
        "max_allocated_bytes": torch.cuda.max_memory_allocated(),
        "reserved_bytes": torch.cuda.memory_reserved(),
        "max_reserved_bytes": torch.cuda.max_memory_reserved(),
        "cuda_free_bytes": free,
        "cuda_total_bytes": total,
        "alloc_retries": stats.get("num_alloc_retries"),
        "ooms": stats.get("num_ooms"),
    }


def snapshot(nvml, tag=None):
    """torch.cuda.synchronize(), then the PyTorch allocator's view, cudaMemGetInfo and NVML.
    'process_minus_reserved_bytes' is what the process holds outside PyTorch's caching
    allocator: CUDA context, loaded modules, cuBLAS/cuDNN handles."""
    import torch

    torch.cuda.synchronize()
    snap = {"tag": tag} if tag else {}
    snap.update(torch_mem())
    snap.update(nvml.snapshot())
    used = snap.get("nvml_process_used_bytes")
    if isinstance(used, int):
        snap["process_minus_reserved_bytes"] = used - snap["reserved_bytes"]
    return snap


def reset_peak():
    import gc

    import torch

    gc.collect()
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats()


def env_info(nvml):
    """Facts about the device and software, for every record (needs CUDA initialised)."""
    import platform

    import torch

    info = nvml.info()
    props = torch.cuda.get_device_properties(0)
    info.update(
        torch_device_name=torch.cuda.get_device_name(0),
        compute_capability=f"{props.major}.{props.minor}",
        sm_count=props.multi_processor_count,
        torch_total_memory_bytes=props.total_memory,
        l2_cache_bytes=getattr(props, "L2_cache_size", None),
        torch_version=torch.__version__,
        torch_cuda_version=torch.version.cuda,
        cudnn_version=torch.backends.cudnn.version(),
        python_version=platform.python_version(),
        hostname=socket.gethostname(),
        transformers_version=pkg_version("transformers"),
        peft_version=pkg_version("peft"),
        nvidia_ml_py_version=pkg_version("nvidia-ml-py"),
        env={k: os.environ.get(k) for k in ENV_KEYS if os.environ.get(k) is not None},
    )
    return info


ENV_KEYS = (
    "CUDA_VISIBLE_DEVICES",
    "CUDA_MODULE_LOADING",
    "PYTORCH_CUDA_ALLOC_CONF",
    "PYTORCH_ALLOC_CONF",
    "CUBLAS_WORKSPACE_CONFIG",
    "HF_HUB_OFFLINE",
    "TRANSFORMERS_OFFLINE",
)


def pkg_version(name):
    try:
        from importlib.metadata import version

        return version(name)
    except Exception:  # noqa: BLE001
        return None


# ───────────────────────────── timing ─────────────────────────────


def stats_s(samples):
    """Median, min, max, mean of a list of seconds."""
    if not samples:
        return {"samples": 0}
    return {
        "median_s": statistics.median(samples),
        "min_s": min(samples),
        "max_s": max(samples),
        "mean_s": statistics.fmean(samples),
        "samples": len(samples),
    }


def time_cuda(fn, warmup, reps):
    """Time fn with CUDA events (each repeat bracketed by its own pair), after warm-up runs."""
    import torch

    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        start = torch.cuda.Event(enable_timing=True)
        end = torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    return stats_s(times)


# ───────────────────────────── model configs and models ─────────────────────────────

DTYPES = {"bf16": "bfloat16", "fp16": "float16", "fp32": "float32"}


def torch_dtype(name):
    import torch

    return getattr(torch, DTYPES[name])


def load_model_config(model):
    """A transformers config from data/models/<id>.json (or a path to a config.json), offline.

    The file is copied as config.json into a temporary folder and read with
    AutoConfig.from_pretrained, which is how transformers reads a checkpoint's own config (so
    legacy fields such as torch_dtype and rope_scaling are converted as they would be).
    Returns (config, raw dict, source description)."""
    from transformers import AutoConfig

    path = Path(model)
    if not path.is_file():
        path = REPO_ROOT / "data" / "models" / f"{model}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no model config {path}; pass a data/models id or a config.json")
    raw = json.loads(path.read_text())
    source = str(path.relative_to(REPO_ROOT)) if path.is_relative_to(REPO_ROOT) else str(path)
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "config.json").write_text(json.dumps(raw))
        try:
            cfg = AutoConfig.from_pretrained(d)
        except Exception:  # noqa: BLE001 - fall back to the explicit constructor
            rest = {k: v for k, v in raw.items() if k != "model_type"}
            cfg = AutoConfig.for_model(raw["model_type"], **rest)
    return cfg, raw, source


def config_summary(cfg, raw, source):
    heads = cfg.num_attention_heads
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // heads
    return {
        "path": source,
        "config_class": type(cfg).__name__,
        "model_type": cfg.model_type,
        "architectures": raw.get("architectures"),
        "hidden_size": cfg.hidden_size,
        "intermediate_size": getattr(cfg, "intermediate_size", None),
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": heads,
        "num_key_value_heads": getattr(cfg, "num_key_value_heads", None) or heads,
        "head_dim": head_dim,
        "vocab_size": cfg.vocab_size,
        "max_position_embeddings": getattr(cfg, "max_position_embeddings", None),
        "tie_word_embeddings": getattr(cfg, "tie_word_embeddings", None),
        "sliding_window": getattr(cfg, "sliding_window", None),
        "use_sliding_window": getattr(cfg, "use_sliding_window", None),
        "layer_types": sorted(set(getattr(cfg, "layer_types", None) or [])) or None,
        "rope": clean(getattr(cfg, "rope_parameters", None) or getattr(cfg, "rope_scaling", None)),
    }


def build_model(cfg, dtype, attn):
    """AutoModelForCausalLM.from_config built directly on the GPU in `dtype`, then every weight
    matrix re-drawn from N(0, initializer_range) on the GPU (norm weights 1, biases 0), so the
    values are random whatever transformers' own init did (never torch.empty garbage, never
    zeros, which would flatter the timings)."""
    import torch
    from transformers import AutoModelForCausalLM

    t0 = time.perf_counter()
    with torch.device("cuda"):
        try:
            model = AutoModelForCausalLM.from_config(cfg, dtype=dtype, attn_implementation=attn)
            dtype_kw = "dtype"
        except TypeError:  # transformers < 4.56 only knows torch_dtype
            model = AutoModelForCausalLM.from_config(
                cfg, torch_dtype=dtype, attn_implementation=attn
            )
            dtype_kw = "torch_dtype"
    torch.cuda.synchronize()
    built_s = time.perf_counter() - t0
    moved = False
    first = next(model.parameters())
    if first.device.type != "cuda" or first.dtype != dtype:
        model = model.to(device="cuda", dtype=dtype)
        moved = True
    std = float(getattr(cfg, "initializer_range", 0.02) or 0.02)
    gen = torch.Generator(device="cuda")
    gen.manual_seed(0)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.normal_(0.0, std, generator=gen)
            elif "norm" in name.lower():
                p.fill_(1.0)
            else:
                p.zero_()
    torch.cuda.synchronize()
    attn_used = getattr(model.config, "_attn_implementation", None)
    build = {
        "from_config_s": built_s,
        "total_build_s": time.perf_counter() - t0,
        "dtype_kwarg": dtype_kw,
        "moved_after_build": moved,
        "attn_implementation": attn_used,
        "weights_init": f"normal(0, {std}) for >=2-D params, 1 for norms, 0 for biases",
    }
    return model, build


def tensor_bytes(tensors):
    return sum(t.numel() * t.element_size() for t in tensors)


def model_accounting(model):
    params = list(model.parameters())
    buffers = list(model.buffers())
    by_dtype = {}
    for p in params:
        key = str(p.dtype).replace("torch.", "")
        by_dtype[key] = by_dtype.get(key, 0) + p.numel() * p.element_size()
    trainable = [p for p in params if p.requires_grad]
    return {
        "parameters": sum(p.numel() for p in params),
        "parameter_bytes": tensor_bytes(params),
        "buffer_bytes": tensor_bytes(buffers),
        "weights_bytes": tensor_bytes(params) + tensor_bytes(buffers),
        "parameter_bytes_by_dtype": by_dtype,
        "trainable_parameters": sum(p.numel() for p in trainable),
        "trainable_parameter_bytes": tensor_bytes(trainable),
    }


def fmt_gib(v):
    return f"{v / GIB:.2f}" if isinstance(v, (int, float)) else "-"
