#!/usr/bin/env python3
"""Ground truth for headroom's planner, measured with PyTorch + transformers on a real GPU.

One subcommand per case; each writes (and keeps rewriting, phase by phase) one JSON record,
keyed by --case-id, in the JSON array file given by --out. scripts/device-check.sh runs every
case in its own process so CUDA contexts and peaks never mix.

  context   CUDA context cost step by step (NVML before any CUDA call, after init, after the
            first allocation, after the first cuBLAS matmul and the first SDPA call)
  torch     copy bandwidth, matmul TFLOPS (bf16/fp16/fp32/tf32, 8192^3), causal SDPA TFLOPS
  infer     model.generate / prefill / decode / full-forward memory and speed for one config
  train     one training step's memory by phase (full or LoRA; bf16 or amp), and step time
  litgpt    the same for LitGPT's own model code (LoRA, LLaMA-Adapter v1/v2; bf16-true)
  runinfo, runinfo-finish, finish, summary, headroom: bookkeeping (no torch needed)

Field names carry their units: _bytes, _s, _tokens_per_s, _tflops, _gb_s (GB = 1e9 bytes).
Needs: torch, transformers (5.x; 4.x works), peft (train --mode lora), nvidia-ml-py. Offline.
"""

import argparse
import os
import sys

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def common(p):
    p.add_argument("--out", required=True, help="JSON array file the record goes into")
    p.add_argument("--case-id", required=True, help="unique name of this case")


def parser():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("context", help="CUDA context cost")
    common(p)

    p = sub.add_parser("torch", help="kernel baselines")
    common(p)
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--n", type=int, default=8192, help="matmul size n (n x n x n)")
    p.add_argument("--copy-gib", type=float, default=2.0)

    p = sub.add_parser("infer", help="transformers inference memory and speed")
    common(p)
    p.add_argument("--model", required=True, help="data/models/<id>.json id, or a config path")
    p.add_argument("--dtype", default="bf16", choices=["bf16", "fp16", "fp32"])
    p.add_argument("--context", type=int, required=True, help="prompt + new tokens")
    p.add_argument("--new-tokens", type=int, default=32)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    p.add_argument("--prefill-reps", type=int, default=3)

    p = sub.add_parser("train", help="training step memory by phase")
    common(p)
    p.add_argument("--model", required=True)
    p.add_argument("--mode", required=True, choices=["full", "lora"])
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--optimizer", default="adamw",
                   choices=["adamw", "paged-adamw-8bit", "paged-adamw-32bit"],
                   help="paged-adamw-*: bitsandbytes PagedAdamW8bit / PagedAdamW32bit (states in "
                        "unified memory)")
    p.add_argument("--optimizer-in-backward", action="store_true",
                   help="one optimizer per parameter, stepped by its post-accumulate-grad hook "
                        "(torchtune optimizer_in_bwd)")
    p.add_argument("--precision", default="bf16", choices=["bf16", "amp"],
                   help="bf16: bf16 params and states; amp: fp32 params, bf16 autocast")
    p.add_argument("--autocast", action="store_true",
                   help="run bf16 params under torch.autocast(bfloat16) too, as transformers' Trainer "
                        "with bf16=True does (headroom's default; plain loops: --no-autocast)")
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=None, help="default 2 x rank")
    p.add_argument("--lora-targets", default="q_proj,v_proj",
                   help="comma list, all-linear or attention")
    p.add_argument("--adapter-dtype", default="fp32", choices=["fp32", "base"],
                   help="fp32: peft's default upcast; base: keep the base weights' dtype")
    p.add_argument("--checkpointing", action="store_true")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--expect-trainable", type=int, help="published trainable count to check")
    p.add_argument("--attn", default="sdpa", choices=["sdpa", "eager"])
    p.add_argument("--plan-args", help="the `headroom plan` arguments of this setup (kept in the record)")

    p = sub.add_parser("litgpt", help="LitGPT fine-tuning step memory by phase")
    common(p)
    p.add_argument("--config-name", required=True, help="LitGPT config name, e.g. Llama-2-7b-hf")
    p.add_argument("--mode", required=True, choices=["lora", "adapter", "adapter-v2"])
    p.add_argument("--seq", type=int, required=True)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--lora-rank", type=int, default=8)
    p.add_argument("--lora-alpha", type=int, default=16)
    p.add_argument("--lora-dropout", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--expect-trainable", type=int, help="published trainable count to check")
    p.add_argument("--plan-args", help="the `headroom plan` arguments of this setup (kept in the record)")

    p = sub.add_parser("runinfo", help="write run.json")
    p.add_argument("--out", required=True)
    p.add_argument("--cmdline", default="")
    p.add_argument("--part", default="all")

    p = sub.add_parser("runinfo-finish", help="add end time and case list to run.json")
    p.add_argument("--out", required=True)
    p.add_argument("--cases-tsv")
    p.add_argument("--wall-s", type=float)

    p = sub.add_parser("finish", help="close a case's record from the shell")
    common(p)
    p.add_argument("--rc", type=int, required=True)
    p.add_argument("--wall-s", type=float)
    p.add_argument("--timeout-s", type=int)
    p.add_argument("--log")
    p.add_argument("--skipped", action="store_true")
    p.add_argument("--reason")

    p = sub.add_parser("summary", help="print one line per record")
    p.add_argument("--dir", required=True)

    p = sub.add_parser("headroom", help="run target/release/headroom for each case")
    p.add_argument("--out", required=True)
    p.add_argument("--bin", required=True)
    p.add_argument("--gpu", default="h100-sxm")
    p.add_argument("--infer", nargs="*", help="MODEL:CONTEXT:BATCH:ATTN")
    p.add_argument("--train", nargs="*", help="CASE_ID|MODEL|PLAN OPTIONS")
    return ap


def main():
    args = parser().parse_args()
    if args.cmd == "context":
        from gtlib.kernels import cmd_context as fn
    elif args.cmd == "torch":
        from gtlib.kernels import cmd_torch as fn
    elif args.cmd == "infer":
        from gtlib.infer import cmd_infer as fn
    elif args.cmd == "train":
        from gtlib.train import cmd_train as fn
    elif args.cmd == "litgpt":
        from gtlib.litgpt import cmd_litgpt as fn
    else:
        from gtlib import meta

        fn = {
            "runinfo": meta.cmd_runinfo,
            "runinfo-finish": meta.cmd_runinfo_finish,
            "finish": meta.cmd_finish,
            "summary": meta.cmd_summary,
            "headroom": meta.cmd_headroom,
        }[args.cmd]
    fn(args)


if __name__ == "__main__":
    main()
