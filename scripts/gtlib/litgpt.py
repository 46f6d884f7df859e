"""The `litgpt` case: one LitGPT fine-tuning step's memory by phase, as `train` does for
transformers, to check `headroom plan --engine litgpt`.

The model is LitGPT's own `GPT` (lora, adapter or adapter_v2 flavour) built from a LitGPT config
name with random weights directly on the GPU in bf16 (LitGPT's `--precision bf16-true`), the
trainable parameters marked as LitGPT's scripts mark them, then --steps steps of what
`litgpt finetune_lora` / `finetune_adapter` / `finetune_adapter_v2` run per micro-batch:
`model(ids, lm_head_chunk_size=128)`, the last chunk shifted, `chunked_cross_entropy`,
backward, `torch.optim.AdamW` (foreach) step, zero_grad(set_to_none=True).

LitGPT is not in the device image: device-check installs the wheels found in .whl/ (see its
`litgpt` part). Only the modules the model needs are imported: the package's __init__ (its
Python API and CLI) is bypassed.
"""

import importlib.util
import sys
import types

from .common import Nvml, Recorder, env_info, model_accounting, pkg_version, snapshot
from .train import check_trainable, optimizer_state_bytes, run_steps

FLAVOURS = {"lora": "litgpt.lora", "adapter": "litgpt.adapter", "adapter-v2": "litgpt.adapter_v2"}
MARK = {
    "lora": "mark_only_lora_as_trainable",
    "adapter": "mark_only_adapter_as_trainable",
    "adapter-v2": "mark_only_adapter_v2_as_trainable",
}


def import_flavour(mode):
    """litgpt.lora / litgpt.adapter / litgpt.adapter_v2 without running litgpt/__init__.py."""
    if "litgpt" not in sys.modules:
        spec = importlib.util.find_spec("litgpt")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("litgpt is not installed (device-check installs it from .whl/)")
        pkg = types.ModuleType("litgpt")
        pkg.__path__ = list(spec.submodule_search_locations)
        sys.modules["litgpt"] = pkg
    return importlib.import_module(FLAVOURS[mode])


def cmd_litgpt(args):
    nvml = Nvml()
    rec = Recorder(args.out, "litgpt", args.case_id, args)
    rec["nvml_before_cuda"] = nvml.snapshot()
    rec["plan_args"] = args.plan_args
    try:
        import torch

        torch.cuda.init()
        torch.empty(1, device="cuda")
        rec["env"] = {**env_info(nvml), "litgpt_version": pkg_version("litgpt")}
        flavour = import_flavour(args.mode)
        utils = importlib.import_module("litgpt.utils")
        extra = {}
        if args.mode == "lora":
            extra = dict(
                lora_r=args.lora_rank,
                lora_alpha=args.lora_alpha,
                lora_dropout=args.lora_dropout,
                lora_query=True,
                lora_key=False,
                lora_value=True,
                lora_projection=False,
                lora_mlp=False,
                lora_head=False,
            )
        config = flavour.Config.from_name(args.config_name, **extra)
        rec["config"] = {k: v for k, v in vars(config).items() if isinstance(v, (int, float, str, bool))}
        torch.cuda.reset_peak_memory_stats()
        # bf16-true: parameters created in bf16, straight on the GPU.
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.bfloat16)
        try:
            with torch.device("cuda"):
                model = flavour.GPT(config)
        finally:
            torch.set_default_dtype(previous)
        # As LitGPT's finetune scripts do: the RoPE cache for the longest sequence only.
        model.max_seq_length = args.seq
        getattr(flavour, MARK[args.mode])(model)
        model.train()
        acc = model_accounting(model)
        rec["build"] = {"flavour": FLAVOURS[args.mode], **acc, **snapshot(nvml, "after_build")}
        check_trainable(rec, acc, args.expect_trainable)
        rec.save()
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.01, foreach=True)
        rec["optimizer"] = {"class": "torch.optim.AdamW", "foreach": True, "lr": 1e-4}
        g = torch.Generator(device="cuda")
        g.manual_seed(0)
        vocab = config.padded_vocab_size
        ids = torch.randint(0, config.vocab_size, (args.batch, args.seq), device="cuda", generator=g)

        def loss_fn():
            logits = model(ids, lm_head_chunk_size=128)
            # shift as LitGPT's finetune scripts do: output n predicts token n + 1
            logits[-1] = logits[-1][..., :-1, :]
            return utils.chunked_cross_entropy(logits, ids[..., 1:])

        run_steps(torch, rec, model, opt, loss_fn, nvml, args)
        rec["summary"]["padded_vocab_size"] = vocab
        rec["optimizer_state_bytes_final"] = optimizer_state_bytes(torch, opt)
        rec.finish("ok" if all("error" not in s for s in rec["steps"]) else "partial")
    except Exception as exc:  # noqa: BLE001
        rec.fail(exc)
        raise
