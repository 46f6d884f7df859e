"""The `infer` case: transformers inference memory and speed for one model config.

Phases (each with its own peak: the allocator's peak is reset before each):
  build         model built on the GPU; exact weight bytes and parameter count
  generate      model.generate of (context - new_tokens) random ids, new_tokens greedy tokens;
                peak and the KV cache bytes of the returned past_key_values
  prefill       plain forward of the prompt with use_cache=True (timed, 3 runs; time to first
                token), then `decode`: a timed greedy loop of new_tokens steps reusing that cache
  full_forward  plain forward of `context` tokens with use_cache=False returning logits for
                every position (how evaluation scripts call it)
"""

import inspect
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
    run_phase,
    snapshot,
    stats_s,
    torch_dtype,
)


def cache_bytes(cache):
    """Bytes of the CUDA tensors reachable from a transformers cache object (DynamicCache with
    .layers[i].keys/.values in transformers 5, key_cache/value_cache lists in 4.x, or legacy
    tuples), each tensor counted once; also the storage bytes behind them."""
    import torch

    seen, storages = set(), {}
    total = [0, 0]

    def visit(obj, depth):
        if obj is None or depth > 5:
            return
        if isinstance(obj, torch.Tensor):
            if obj.numel() == 0 or obj.device.type != "cuda":
                return
            key = (obj.data_ptr(), obj.numel(), str(obj.dtype))
            if key in seen:
                return
            seen.add(key)
            total[0] += obj.numel() * obj.element_size()
            total[1] += 1
            st = obj.untyped_storage()
            storages[st.data_ptr()] = st.nbytes()
        elif isinstance(obj, (list, tuple)):
            for x in obj:
                visit(x, depth + 1)
        elif isinstance(obj, dict):
            for x in obj.values():
                visit(x, depth + 1)
        elif type(obj).__module__.startswith("transformers") and hasattr(obj, "__dict__"):
            if "Config" in type(obj).__name__:
                return
            for x in vars(obj).values():
                visit(x, depth + 1)

    visit(cache, 0)
    seq = None
    try:
        seq = int(cache.get_seq_length())
    except Exception:  # noqa: BLE001
        pass
    return {
        "cache_type": type(cache).__name__,
        "tensor_bytes": total[0],
        "tensor_count": total[1],
        "storage_bytes": sum(storages.values()),
        "seq_length": seq,
        "layer_types": sorted({type(x).__name__ for x in getattr(cache, "layers", [])}) or None,
    }


def kv_bytes_formula(cs, tokens, batch, elem_bytes):
    """2 (K and V) · layers · kv_heads · head_dim · tokens · batch · bytes per element."""
    return (2 * cs["num_hidden_layers"] * cs["num_key_value_heads"] * cs["head_dim"] * tokens
            * batch * elem_bytes)


def forward_kwargs_supported(model):
    try:
        return set(inspect.signature(model.forward).parameters)
    except (TypeError, ValueError):
        return set()


def cmd_infer(args):
    nvml = Nvml()
    rec = Recorder(args.out, "infer", args.case_id, args)
    rec["nvml_before_cuda"] = nvml.snapshot()
    try:
        import torch

        torch.cuda.init()
        torch.empty(1, device="cuda")
        rec["env"] = env_info(nvml)
        dtype = torch_dtype(args.dtype)
        cfg, raw, source = load_model_config(args.model)
        cs = config_summary(cfg, raw, source)
        rec["config"] = cs
        rec["after_cuda_init"] = snapshot(nvml, "after_cuda_init")
        reset_peak()
        model, build = build_model(cfg, dtype, args.attn)
        model.eval()
        rec["build"] = {**build, **model_accounting(model), **snapshot(nvml, "after_build")}
        phases_ok = [
            run_phase(rec, "generate", lambda: phase_generate(torch, model, args, cs, nvml)),
            run_phase(rec, "prefill_decode", lambda: phase_prefill_decode(torch, model, args, cs,
                                                                          nvml)),
            run_phase(rec, "full_forward", lambda: phase_full_forward(torch, model, args, cs,
                                                                      nvml)),
        ]
        rec["end"] = snapshot(nvml, "end")
        rec.finish("ok" if all(phases_ok) else "partial")
    except Exception as exc:  # noqa: BLE001
        rec.fail(exc)
        raise


def random_ids(torch, cs, batch, length, seed):
    g = torch.Generator(device="cuda")
    g.manual_seed(seed)
    return torch.randint(0, cs["vocab_size"], (batch, length), device="cuda", generator=g)


def phase_generate(torch, model, args, cs, nvml):
    prompt = args.context - args.new_tokens
    ids = random_ids(torch, cs, args.batch, prompt, 1)
    reset_peak()
    before = snapshot(nvml, "before")
    eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if eos is None:
        eos = getattr(model.config, "eos_token_id", None)
    pad = eos[0] if isinstance(eos, (list, tuple)) else eos
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=args.new_tokens,
            min_new_tokens=args.new_tokens,
            do_sample=False,
            use_cache=True,
            return_dict_in_generate=True,
            pad_token_id=pad,
        )
    torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    after = snapshot(nvml, "after")
    generated = int(out.sequences.shape[1]) - prompt
    pkv = getattr(out, "past_key_values", None)
    kv = cache_bytes(pkv) if pkv is not None else {"error": "generate returned no past_key_values"}
    elem = torch.empty(0, dtype=next(model.parameters()).dtype).element_size()
    cache_tokens = kv.get("seq_length") or (prompt + generated - 1)
    res = {
        "prompt_tokens": prompt,
        "new_tokens_requested": args.new_tokens,
        "new_tokens_generated": generated,
        "batch": args.batch,
        "generate_s": wall,
        "generate_tokens_per_s": args.batch * generated / wall,
        "kv_cache": kv,
        "kv_cache_formula_bytes": kv_bytes_formula(cs, cache_tokens, args.batch, elem),
        "kv_cache_formula_tokens": cache_tokens,
        "before": before,
        "after": after,
        "peak_allocated_bytes": after["max_allocated_bytes"],
        "peak_over_before_bytes": after["max_allocated_bytes"] - before["allocated_bytes"],
        "note": "first GPU work of the process after build: includes cuBLAS/kernel warm-up",
    }
    del out, pkv
    return res


def phase_prefill_decode(torch, model, args, cs, nvml):
    prompt = args.context - args.new_tokens
    ids = random_ids(torch, cs, args.batch, prompt, 2)
    supported = forward_kwargs_supported(model)
    kw = {"logits_to_keep": 1} if "logits_to_keep" in supported else {}
    reset_peak()
    before = snapshot(nvml, "before")
    times, out = [], None
    with torch.no_grad():
        for _ in range(args.prefill_reps):
            out = None  # free the previous run's cache before the next
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = model(input_ids=ids, use_cache=True, **kw)
            torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        after_prefill = snapshot(nvml, "after_prefill")
        cache = out.past_key_values
        kv_prefill = cache_bytes(cache)
        nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
        logits_shape = list(out.logits.shape)
        del out
        torch.cuda.reset_peak_memory_stats()
        steps = []
        for _ in range(args.new_tokens):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            out = model(input_ids=nxt, past_key_values=cache, use_cache=True)
            nxt = out.logits[:, -1, :].argmax(-1, keepdim=True)
            cache = out.past_key_values
            del out
            torch.cuda.synchronize()
            steps.append(time.perf_counter() - t0)
        after_decode = snapshot(nvml, "after_decode")
        kv_decode = cache_bytes(cache)
    del cache
    pf = stats_s(times)
    dc = stats_s(steps)
    return {
        "prompt_tokens": prompt,
        "batch": args.batch,
        "prefill_logits_to_keep": kw.get("logits_to_keep", "all (not supported)"),
        "prefill_logits_shape": logits_shape,
        "prefill_time": pf,
        "prefill_times_s": times,
        "time_to_first_token_s": pf["median_s"],
        "prefill_tokens_per_s": args.batch * prompt / pf["median_s"],
        "kv_cache_after_prefill": kv_prefill,
        "after_prefill": after_prefill,
        "prefill_peak_allocated_bytes": after_prefill["max_allocated_bytes"],
        "prefill_peak_over_before_bytes":
            after_prefill["max_allocated_bytes"] - before["allocated_bytes"],
        "decode_steps": len(steps),
        "decode_step_time": dc,
        "decode_step_times_s": steps,
        "decode_tokens_per_s": args.batch / dc["median_s"],
        "decode_tokens_per_s_per_sequence": 1.0 / dc["median_s"],
        "kv_cache_after_decode": kv_decode,
        "after_decode": after_decode,
        "decode_peak_allocated_bytes": after_decode["max_allocated_bytes"],
        "before": before,
        "timing": "host clock around torch.cuda.synchronize(); decode steps include the argmax",
    }


def phase_full_forward(torch, model, args, cs, nvml):
    ids = random_ids(torch, cs, args.batch, args.context, 3)
    reset_peak()
    before = snapshot(nvml, "before")
    with torch.no_grad():
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = model(input_ids=ids, use_cache=False)
        torch.cuda.synchronize()
        wall = time.perf_counter() - t0
        logits = out.logits
        res = {
            "tokens": args.context,
            "batch": args.batch,
            "forward_s": wall,
            "tokens_per_s": args.batch * args.context / wall,
            "logits_shape": list(logits.shape),
            "logits_dtype": str(logits.dtype).replace("torch.", ""),
            "logits_bytes": logits.numel() * logits.element_size(),
            "returned_cache": getattr(out, "past_key_values", None) is not None,
        }
        after = snapshot(nvml, "after")
        del out, logits
    res.update(
        before=before,
        after=after,
        peak_allocated_bytes=after["max_allocated_bytes"],
        peak_over_before_bytes=after["max_allocated_bytes"] - before["allocated_bytes"],
        note="first call at this shape: timing includes any one-off kernel selection",
    )
    return res
