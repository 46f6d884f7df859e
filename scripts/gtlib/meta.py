"""Bookkeeping that needs no torch: run.json, closing a case's record from the shell (exit code,
wall time, timeout, log tail), the summary table, and running the headroom binary."""

import csv
import io
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

from .common import (
    REPO_ROOT,
    SCHEMA_VERSION,
    fmt_gib,
    load_records,
    pkg_version,
    upsert_record,
    utc_now,
    write_json,
)

# flash-linear-attention, causal-conv1d and mamba-ssm: transformers' fast paths for Gated
# DeltaNet (Qwen3-Next, Qwen3.5) and Mamba-2 layers (Nemotron-H, Granite 4.0 H); without them
# it runs torch fallbacks with other intermediates.
PACKAGES = ("torch", "transformers", "peft", "accelerate", "nvidia-ml-py", "safetensors",
            "numpy", "triton", "huggingface-hub", "tokenizers", "flash-linear-attention", "causal-conv1d",
            "mamba-ssm")


def sh(argv, timeout=30):
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout, p.stderr
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, "", f"{type(exc).__name__}: {exc}"


def parse_csv(text):
    rows = list(csv.reader(io.StringIO(text.strip())))
    if len(rows) < 2:
        return []
    head = [h.strip() for h in rows[0]]
    return [dict(zip(head, (c.strip() for c in r))) for r in rows[1:] if r]


def cmd_runinfo(args):
    rc, out, err = sh(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                       "--format=csv"])
    rc2, out2, _ = sh(["nvidia-smi", "--query-gpu=clocks.sm,clocks.max.sm,clocks.mem,"
                       "power.limit,persistence_mode,compute_mode,mig.mode.current,"
                       "temperature.gpu,memory.used", "--format=csv"])
    rc3, head, _ = sh(["git", "-C", str(REPO_ROOT), "rev-parse", "HEAD"])
    rc4, dirty, _ = sh(["git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "scripts"])
    info = {
        "schema_version": SCHEMA_VERSION,
        "started_utc": utc_now(),
        "hostname": socket.gethostname(),
        "command_line": args.cmdline,
        "part": args.part,
        "repo_root": str(REPO_ROOT),
        "git_head": head.strip() if rc3 == 0 else None,
        "scripts_dirty": bool(dirty.strip()) if rc4 == 0 else None,
        "nvidia_smi": parse_csv(out) if rc == 0 else None,
        "nvidia_smi_raw": out if rc == 0 else err,
        "nvidia_smi_state": parse_csv(out2) if rc2 == 0 else None,
        "python": sys.version.split()[0],
        "python_executable": sys.executable,
        "versions": {p: pkg_version(p) for p in PACKAGES},
        "env": {k: v for k, v in os.environ.items()
                if k.startswith(("CUDA", "PYTORCH", "HF_", "TRANSFORMERS", "NVIDIA", "DEVICE_CHECK"))
                and not any(w in k for w in ("TOKEN", "KEY", "SECRET", "PASS"))},
    }
    write_json(args.out, info)
    smi = info["nvidia_smi"] or [{}]
    print(f"[run] {info['hostname']} {smi[0].get('name')} driver {smi[0].get('driver_version')} "
          f"torch {info['versions']['torch']} transformers {info['versions']['transformers']} "
          f"peft {info['versions']['peft']}")


def cmd_runinfo_finish(args):
    try:
        with open(args.out) as f:
            info = json.load(f)
    except (OSError, ValueError):
        info = {"schema_version": SCHEMA_VERSION}
    cases = []
    if args.cases_tsv and Path(args.cases_tsv).is_file():
        for line in Path(args.cases_tsv).read_text().splitlines():
            parts = line.split("\t")
            if len(parts) == 4:
                cases.append({"case_id": parts[0], "file": parts[1], "rc": int(parts[2]),
                              "wall_s": float(parts[3])})
    info.update(finished_utc=utc_now(), wall_s=args.wall_s, cases=cases)
    write_json(args.out, info)


def cmd_finish(args):
    """Close a case's record with what only the shell knows; create an error record if the
    process died before writing one."""
    records = load_records(args.out)
    rec = next((r for r in records if isinstance(r, dict) and r.get("case_id") == args.case_id),
               None)
    timed_out = args.rc in (124, 137)
    shell = {"rc": args.rc, "wall_s": args.wall_s, "timed_out": timed_out,
             "skipped": args.skipped, "timeout_s": args.timeout_s}
    if rec is None:
        status = "skipped" if args.skipped else ("timeout" if timed_out else "crashed")
        rec = {"schema_version": SCHEMA_VERSION, "case": args.case_id.split("-")[0],
               "case_id": args.case_id, "status": status,
               "error": args.reason or f"process ended with rc {args.rc} before writing a record"}
    elif rec.get("status") == "running":
        rec["status"] = "timeout" if timed_out else "crashed"
    if args.rc != 0 and args.log and Path(args.log).is_file():
        lines = Path(args.log).read_text(errors="replace").splitlines()
        rec["log_tail"] = "\n".join(lines[-60:])[-6000:]
    rec["shell"] = shell
    upsert_record(args.out, rec)
    print("[case] " + one_line(rec))


def g(d, *keys):
    for k in keys:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def num(v, fmt="{:.1f}"):
    return fmt.format(v) if isinstance(v, (int, float)) else "-"


def one_line(r):
    shell = r.get("shell") or {}
    rc = shell.get("rc", r.get("rc"))
    wall = shell.get("wall_s", r.get("wall_s"))
    head = f"{r.get('case_id', '?'):<52} {r.get('status', '?'):<8} rc={rc} wall={num(wall)}s"
    case = r.get("case")
    if case == "infer":
        return (f"{head} | weights {fmt_gib(g(r, 'build', 'weights_bytes'))} GiB"
                f" gen_peak {fmt_gib(g(r, 'generate', 'peak_allocated_bytes'))}"
                f" kv {fmt_gib(g(r, 'generate', 'kv_cache', 'tensor_bytes'))}"
                f" ttft {num(g(r, 'prefill_decode', 'time_to_first_token_s'), '{:.3f}')}s"
                f" decode {num(g(r, 'prefill_decode', 'decode_tokens_per_s'))} tok/s"
                f" fullfwd_peak {fmt_gib(g(r, 'full_forward', 'peak_allocated_bytes'))} GiB")
    if case == "train":
        s = r.get("summary") or {}
        return (f"{head} | trainable {g(r, 'build', 'trainable_parameters')}"
                f" peak1 {fmt_gib(s.get('peak_allocated_bytes_step1'))}"
                f" peak2+ {fmt_gib(s.get('peak_allocated_bytes_later'))} GiB"
                f" step {num(g(s, 'step_time', 'median_s'), '{:.3f}')}s"
                f" {num(s.get('train_tokens_per_s'), '{:.0f}')} tok/s")
    if case == "torch":
        m = r.get("matmul") or {}
        return (f"{head} | copy {num(g(r, 'copy', 'median_gb_s'), '{:.0f}')} GB/s"
                f" bf16 {num(g(m, 'bf16', 'median_tflops'))} fp16 {num(g(m, 'fp16', 'median_tflops'))}"
                f" tf32 {num(g(m, 'tf32', 'median_tflops'))} fp32 {num(g(m, 'fp32', 'median_tflops'))}"
                f" TFLOPS; sdpa {num(g(r, 'sdpa', 'mha_default', 'median_tflops'))}"
                f" gqa {num(g(r, 'sdpa', 'gqa_enable_gqa', 'median_tflops'))} TFLOPS")
    if case == "context":
        d = {x["step"]: x for x in r.get("deltas") or []}
        return (f"{head} | process after 1st alloc "
                f"{fmt_gib(g(d, 'after_first_alloc', 'process_used_bytes'))} GiB, after cuBLAS "
                f"{fmt_gib(g(d, 'after_matmul_freed_and_empty_cache', 'process_used_bytes'))} GiB")
    if case == "headroom":
        mem = g(r, "stdout_json", "memory") or {}
        return f"{head} | total {fmt_gib(mem.get('total_bytes'))} GiB"
    return head + (f" | {r.get('error')}" if r.get("error") else "")


def cmd_summary(args):
    d = Path(args.dir)
    print("=" * 100)
    print("SUMMARY (GiB = 2^30 bytes; peaks are torch.cuda.max_memory_allocated)")
    for name in ("context.json", "torch_kernels.json", "infer.json", "train.json",
                 "headroom.json"):
        for r in load_records(d / name):
            if isinstance(r, dict):
                print(one_line(r))
    print("=" * 100)


def cmd_headroom(args):
    """Run the headroom binary's --version and plan for each case; failures are data."""
    records = []
    seen = set()

    def run(case_id, argv):
        if tuple(argv) in seen:
            return None
        seen.add(tuple(argv))
        t0 = time.perf_counter()
        rc, out, err = sh(argv, timeout=30)
        r = {"schema_version": SCHEMA_VERSION, "case": "headroom", "case_id": case_id,
             "argv": argv, "command": shlex.join(argv), "rc": rc,
             "wall_s": time.perf_counter() - t0, "stderr": err[-4000:],
             "status": "ok" if rc == 0 else "error"}
        try:
            r["stdout_json"] = json.loads(out)
        except ValueError:
            r["stdout"] = out[-20000:]
        records.append(r)
        write_json(args.out, records)
        print("[headroom] " + one_line(r))
        return r

    b = args.bin
    run("headroom-version", [b, "--version"])
    helped = run("headroom-plan-help", [b, "plan", "--help"])
    if helped is None or helped["rc"] != 0:
        print("[headroom] this binary has no working 'plan'; plans skipped")
        return
    for spec in args.infer or []:
        model, ctx, batch, _attn = spec.split(":")
        argv = [b, "plan", model, "--weights", "bf16", "--context", ctx, "--gpu", args.gpu,
                "--format", "json"]
        if batch != "1":
            argv += ["--batch", batch]
        run(f"headroom-plan-infer-{model}-c{ctx}-b{batch}", argv)
        run(f"headroom-plan-infer-{model}-c{ctx}-b{batch}-engine-hf", argv + ["--engine", "hf"])
    for spec in args.train or []:
        case_id, model, rest = spec.split("|")
        argv = [b, "plan", model, *shlex.split(rest), "--gpu", args.gpu, "--format", "json"]
        run(f"headroom-plan-{case_id}", argv)
