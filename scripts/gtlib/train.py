"""The `train` case: one training step's memory by phase, and step time.

Model built on the GPU (bf16 params for --precision bf16; fp32 params under
torch.autocast(bfloat16) for --precision amp), optionally wrapped with a peft LoRA adapter, then
--steps steps of: forward (loss = model(input_ids, labels=input_ids).loss), backward,
torch.optim.AdamW.step() (foreach, the default on CUDA), zero_grad(set_to_none=True).
Each phase has its own peak (reset before it). The first step allocates the optimizer states
lazily, so the steps after it show the steady state; steps after the first are timed.
"""

import contextlib
import gc
import time

from .common import (
    Nvml,
    Recorder,
    build_model,
    config_summary,
    env_info,
    load_model_config,
    model_accounting,
    reset_peak,
    snapshot,
    stats_s,
    tensor_bytes,
    torch_dtype,
)

ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def lora_targets(spec):
    if spec in ("all-linear", "all_linear"):
        return list(ALL_LINEAR)
    if spec == "attention":
        return ["q_proj", "k_proj", "v_proj", "o_proj"]
    return [t.strip() for t in spec.split(",") if t.strip()]


def wrap_lora(torch, model, args):
    from peft import LoraConfig, get_peft_model

    targets = lora_targets(args.lora_targets)
    alpha = args.lora_alpha if args.lora_alpha is not None else 2 * args.lora_rank
    lcfg = LoraConfig(
        r=args.lora_rank,
        lora_alpha=alpha,
        target_modules=targets,
        lora_dropout=0.0,
        bias="none",
        task_type="CAUSAL_LM",
    )
    # autocast_adapter_dtype=True (peft's default) upcasts bf16 adapters to fp32;
    # --adapter-dtype base keeps them in the base weights' dtype (what LitGPT's bf16-true does).
    autocast = args.adapter_dtype == "fp32"
    with torch.device("cuda"):
        try:
            model = get_peft_model(model, lcfg, autocast_adapter_dtype=autocast)
            how = f"get_peft_model(autocast_adapter_dtype={autocast})"
        except TypeError:  # peft < 0.12
            model = get_peft_model(model, lcfg)
            how = "get_peft_model (no autocast_adapter_dtype in this peft)"
    lora_params = [p for n, p in model.named_parameters() if "lora_" in n]
    info = {
        "targets": targets,
        "rank": args.lora_rank,
        "alpha": alpha,
        "dropout": 0.0,
        "wrapped_with": how,
        "adapter_parameters": sum(p.numel() for p in lora_params),
        "adapter_bytes": tensor_bytes(lora_params),
        "adapter_dtypes": sorted({str(p.dtype).replace("torch.", "") for p in lora_params}),
        "peft_config_class": type(lcfg).__name__,
    }
    return model, info


def cmd_train(args):
    nvml = Nvml()
    rec = Recorder(args.out, "train", args.case_id, args)
    rec["nvml_before_cuda"] = nvml.snapshot()
    rec["plan_args"] = args.plan_args
    try:
        import torch

        torch.cuda.init()
        torch.empty(1, device="cuda")
        rec["env"] = env_info(nvml)
        param_dtype = torch_dtype("bf16" if args.precision == "bf16" else "fp32")
        cfg, raw, source = load_model_config(args.model)
        cs = config_summary(cfg, raw, source)
        rec["config"] = cs
        reset_peak()
        model, build = build_model(cfg, param_dtype, args.attn)
        base_acc = model_accounting(model)
        if args.checkpointing:
            try:
                model.gradient_checkpointing_enable(
                    gradient_checkpointing_kwargs={"use_reentrant": False})
            except TypeError:  # transformers < 4.35
                model.gradient_checkpointing_enable()
        model.config.use_cache = False
        lora = None
        if args.mode == "lora":
            model, lora = wrap_lora(torch, model, args)
        elif args.mode != "full":
            raise ValueError(f"unknown mode {args.mode}")
        model.train()
        acc = model_accounting(model)
        rec["build"] = {
            **build,
            "base_parameters": base_acc["parameters"],
            "base_weights_bytes": base_acc["weights_bytes"],
            **acc,
            "lora": lora,
            "gradient_checkpointing_requested": bool(args.checkpointing),
            "gradient_checkpointing_active": getattr(model, "is_gradient_checkpointing", None),
            **snapshot(nvml, "after_build"),
        }
        check_trainable(rec, acc, args.expect_trainable)
        rec.save()
        trainable = [p for p in model.parameters() if p.requires_grad]
        opt, rec["optimizer"] = make_optimizer(torch, trainable, args)
        g = torch.Generator(device="cuda")
        g.manual_seed(0)
        ids = torch.randint(0, cs["vocab_size"], (args.batch, args.seq), device="cuda", generator=g)
        if args.precision == "amp" or args.autocast:
            autocast = lambda: torch.autocast("cuda", dtype=torch.bfloat16)  # noqa: E731
        else:
            autocast = contextlib.nullcontext
        def loss_fn():
            with autocast():
                return model(input_ids=ids, labels=ids, use_cache=False).loss

        run_steps(torch, rec, model, opt, loss_fn, nvml, args)
        rec.finish("ok" if all("error" not in s for s in rec["steps"]) else "partial")
    except Exception as exc:  # noqa: BLE001
        rec.fail(exc)
        raise


def new_optimizer(torch, params, name):
    """One optimizer over params, and its class name. AdamW's foreach=True is spelled out: it is
    PyTorch's CUDA default (fused is opt-in), and the multi-tensor path's temporaries (e.g. a
    full copy for sqrt(exp_avg_sq)) are part of the optimizer-step peak being measured."""
    if name.startswith("paged-adamw-"):
        import bitsandbytes as bnb

        cls = {"paged-adamw-8bit": "PagedAdamW8bit", "paged-adamw-32bit": "PagedAdamW32bit"}[name]
        return getattr(bnb.optim, cls)(params, lr=1e-5), f"bitsandbytes.optim.{cls}"
    return torch.optim.AdamW(params, lr=1e-5, foreach=True), "torch.optim.AdamW"


class InBackward:
    """torchtune's optimizer_in_bwd: one optimizer per parameter, stepped and its gradient freed
    by the parameter's post-accumulate-grad hook, so step() and zero_grad() have nothing left
    to do. state merges the per-parameter optimizers' states (for optimizer_state_bytes)."""

    def __init__(self, torch, params, name):
        self.optims = {}
        for p in params:
            self.optims[p], self.cls = new_optimizer(torch, [p], name)
            p.register_post_accumulate_grad_hook(self._hook)
        self.defaults = next(iter(self.optims.values())).defaults

    def _hook(self, p):
        self.optims[p].step()
        self.optims[p].zero_grad(set_to_none=True)

    @property
    def state(self):
        return {p: o.state[p] for p, o in self.optims.items() if p in o.state}

    def step(self):
        pass

    def zero_grad(self, set_to_none=True):
        pass


def make_optimizer(torch, trainable, args):
    """The optimizer args ask for and its record."""
    if args.optimizer_in_backward:
        opt = InBackward(torch, trainable, args.optimizer)
        cls = opt.cls
    else:
        opt, cls = new_optimizer(torch, trainable, args.optimizer)
    info = {
        "class": cls,
        "in_backward": bool(args.optimizer_in_backward),
        "foreach": opt.defaults.get("foreach"),
        "fused": opt.defaults.get("fused"),
        "lr": 1e-5,
        "weight_decay": opt.defaults.get("weight_decay"),
        "torch_default_choice": default_optimizer_impl(torch, trainable),
    }
    if args.optimizer.startswith("paged-adamw-"):
        import bitsandbytes as bnb

        info["bitsandbytes"] = getattr(bnb, "__version__", None)
    return opt, info


def check_trainable(rec, acc, expected):
    """Records the trainable-parameter count the planner expects beside the one built."""
    if expected is not None:
        rec["build"].update(
            expected_trainable_parameters=expected,
            trainable_matches_expected=acc["trainable_parameters"] == expected,
        )


def run_steps(torch, rec, model, opt, loss_fn, nvml, args):
    """args.steps steps into rec["steps"] (saved after each; stops at the first error), then
    rec["summary"] over args.batch × args.seq tokens per step."""
    steps = []
    rec["steps"] = steps
    for i in range(args.steps):
        steps.append(train_step(torch, model, opt, loss_fn, nvml, i + 1))
        rec.save()
        if "error" in steps[-1]:
            break
    timed = [s["step_s"] for s in steps[1:] if "step_s" in s]
    rec["summary"] = summarise(steps, timed, args.batch * args.seq)


def train_step(torch, model, opt, loss_fn, nvml, number):
    """One step, phase by phase: loss_fn() runs the forward and returns the loss. Peaks are per
    phase; forward_saved_bytes is what the forward left allocated for the backward (activations,
    the loss graph)."""
    s = {"step": number}
    try:
        # No empty_cache here: a training loop never calls it, and a timed step that has to
        # cudaMalloc its blocks again would be slower than the steady state.
        gc.collect()
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        s["before"] = snapshot(nvml, "before")
        torch.cuda.synchronize()
        t_start = time.perf_counter()
        loss = loss_fn()
        torch.cuda.synchronize()
        t_fwd = time.perf_counter()
        s["forward"] = snapshot(nvml, "after_forward")
        s["forward_saved_bytes"] = s["forward"]["allocated_bytes"] - s["before"]["allocated_bytes"]
        torch.cuda.reset_peak_memory_stats()
        t_bwd0 = time.perf_counter()
        loss.backward()
        torch.cuda.synchronize()
        t_bwd = time.perf_counter()
        s["loss"] = float(loss.detach().float().item())
        del loss
        s["backward"] = snapshot(nvml, "after_backward")
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        s["gradient_bytes"] = tensor_bytes(grads)
        s["gradient_tensors"] = len(grads)
        torch.cuda.reset_peak_memory_stats()
        torch.cuda.synchronize()
        t_opt0 = time.perf_counter()
        opt.step()
        torch.cuda.synchronize()
        t_opt = time.perf_counter()
        s["optimizer_step"] = snapshot(nvml, "after_optimizer_step")
        s["optimizer_state_bytes"] = optimizer_state_bytes(torch, opt)
        s["paged_state_bytes"] = optimizer_state_bytes(torch, opt, paged=True)
        t_zero0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        t_end = time.perf_counter()
        s["after_zero_grad"] = snapshot(nvml, "after_zero_grad")
        s.update(
            forward_s=t_fwd - t_start,
            backward_s=t_bwd - t_bwd0,
            optimizer_s=t_opt - t_opt0,
            zero_grad_s=t_end - t_zero0,
            # the phases' sum: the snapshots between phases are not counted
            step_s=(t_fwd - t_start) + (t_bwd - t_bwd0) + (t_opt - t_opt0) + (t_end - t_zero0),
            forward_peak_allocated_bytes=s["forward"]["max_allocated_bytes"],
            backward_peak_allocated_bytes=s["backward"]["max_allocated_bytes"],
            optimizer_peak_allocated_bytes=s["optimizer_step"]["max_allocated_bytes"],
        )
        s["step_peak_allocated_bytes"] = max(
            s["forward_peak_allocated_bytes"],
            s["backward_peak_allocated_bytes"],
            s["optimizer_peak_allocated_bytes"],
        )
    except Exception as exc:  # noqa: BLE001
        import traceback

        s["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        s["oom"] = "OutOfMemory" in type(exc).__name__ or "out of memory" in str(exc)
        s["traceback"] = traceback.format_exc()[-4000:]
        opt.zero_grad(set_to_none=True)
        try:
            s["at_error"] = snapshot(nvml, "at_error")
        except Exception:  # noqa: BLE001
            pass
    return s


def default_optimizer_impl(torch, params):
    """What AdamW would pick with foreach/fused left unset (private helper; None if absent)."""
    try:
        from torch.optim.optimizer import _default_to_fused_or_foreach

        fused, foreach = _default_to_fused_or_foreach(params, differentiable=False,
                                                      use_fused=False)
        return {"fused": fused, "foreach": foreach}
    except Exception:  # noqa: BLE001
        return None


def optimizer_state_bytes(torch, opt, paged=False):
    """Bytes of the optimizer's state tensors on the GPU; with paged=True, of those bitsandbytes
    keeps in unified memory instead (CPU-typed tensors marked is_paged, outside torch's
    allocator and its max_memory_allocated)."""
    total = 0
    for state in opt.state.values():
        for v in state.values():
            if not isinstance(v, torch.Tensor):
                continue
            is_paged = bool(getattr(v, "is_paged", False))
            if (is_paged if paged else v.device.type == "cuda" and not is_paged):
                total += v.numel() * v.element_size()
    return total


def summarise(steps, timed, tokens):
    ok = [s for s in steps if "error" not in s]
    out = {
        "steps_completed": len(ok),
        "tokens_per_step": tokens,
        "peak_allocated_bytes_step1": ok[0]["step_peak_allocated_bytes"] if ok else None,
        "peak_allocated_bytes_later": max(
            (s["step_peak_allocated_bytes"] for s in ok[1:]), default=None),
        "peak_reserved_bytes": max((s[p]["max_reserved_bytes"] for s in ok
                                    for p in ("forward", "backward", "optimizer_step")),
                                   default=None),
        "max_nvml_process_used_at_phase_ends_bytes": max(
            (s[p].get("nvml_process_used_bytes") or 0 for s in ok
             for p in ("forward", "backward", "optimizer_step")), default=None),
        "gradient_bytes": ok[0]["gradient_bytes"] if ok else None,
        "optimizer_state_bytes": ok[0]["optimizer_state_bytes"] if ok else None,
        "paged_state_bytes": ok[0]["paged_state_bytes"] if ok else None,
        "step_time": stats_s(timed),
    }
    if timed:
        out["train_tokens_per_s"] = tokens / stats_s(timed)["median_s"]
    return out
