#!/usr/bin/env bash
# device-check.sh DIR [PART] — ground-truth measurements with PyTorch on a lent GPU.
#
# The lead runs, on the device machine, from the repository root:
#     scripts/device-check.sh "$OUT"
# PART (optional; several joined by commas, e.g. bench,torch): bench | context | torch | infer |
# train | optim | watch | validate | headroom | litgpt | all. The default, all, is bench, torch,
# validate, watch and optim: what still needs measuring (context, infer and train were measured
# on an H200 on 2026-11-27; name them to rerun them); validate runs first. optim is two training
# steps of the optimizer variants the planner models without a measurement yet: torchtune's
# optimizer in the backward pass, and bitsandbytes' paged 8-bit AdamW (skipped without it). The transport returns at most 8 files.
# litgpt (LitGPT's own LoRA and LLaMA-Adapter steps, for `plan --engine litgpt`; last in `all`
# when its wheel is present) needs LitGPT's wheel, which the image lacks: fetch it here first,
#     python3 -m pip download --no-deps --only-binary=:all: -d .whl litgpt==0.5.13 "lightning>=2.6.1,<2.7"
# and `run` with carry [".whl", "target/release/headroom"]; the part installs .whl/*.whl into a
# scratch directory (no network there).
#
# Every case runs in a fresh python3 process (its own CUDA context and peaks) under its own
# `timeout`; a case that fails, runs out of memory or hangs leaves an error record and the next
# case runs. A global budget (DEVICE_CHECK_BUDGET_S, default 480 s) skips the cases that no
# longer fit, so the whole run stays inside one 10-minute device call. Expected: ~4-5 min on
# an H100.
#
# Files written into DIR (8; the device transport returns at most 8, no subfolders):
#   run.json            date UTC, host, nvidia-smi (name, driver, memory.total), package
#                       versions, the exact command line, and at the end every case's rc/wall
#   context.json        [record] CUDA context cost step by step (NVML, cudaMemGetInfo, torch)
#   torch_kernels.json  [record] D2D copy GB/s, matmul TFLOPS bf16/fp16/fp32/tf32, SDPA TFLOPS,
#                       pageable/pinned H2D GB/s and a GPU->CPU->GPU hop (host link)
#   infer.json          [records] transformers generate / prefill / decode / full forward
#   train.json          [records] one training step's memory by phase, and step time
#   watch.json          [records] headroom watch --format json around transformers clients with
#                       --plan: a llama-2-7b generate, a LoRA step and a full fine-tuning step
#   validate.json       [records] headroom validate: our engine on llama-2-7b bf16 and 4-bit,
#                       llama-2-13b bf16 and llama-2-70b 4-bit at 4096, and one full
#                       fine-tuning step (a 1.3B Llama shape; llama-2-7b), NVML per phase
#   headroom.json       [records] target/release/headroom --version and plan --format json
#   bench.json          headroom bench --quick --json: our kernels (copy, GEMM, attention, GEMV...)
#   litgpt.json         [records] LitGPT fine-tuning steps by phase (part litgpt)
#   log.txt             everything printed (the summary table is at its end)
# Record layout: scripts/README.md. Measurement code: scripts/ground_truth.py, scripts/gtlib/.
set -euo pipefail

usage() { echo "usage: $0 DIR [bench|context|torch|infer|train|optim|watch|validate|headroom|litgpt|all][,...]" >&2; exit 2; }
[[ $# -ge 1 && $# -le 2 ]] || usage
DIR=$1
PART=${2:-all}
for part in ${PART//,/ }; do
  case "$part" in all | bench | context | torch | infer | train | optim | headroom | watch | validate | litgpt) ;; *) usage ;; esac
done

mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd) # absolute, resolved before the cd below
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
GT="$ROOT/scripts/ground_truth.py"
BUDGET_S=${DEVICE_CHECK_BUDGET_S:-480}
WORK=$(mktemp -d "${TMPDIR:-/tmp}/device-check.XXXXXX") # scratch: never inside DIR
CASES_TSV="$WORK/cases.tsv"
: >"$CASES_TSV"
CMDLINE="$0 $*"

export LC_ALL=C PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1
export HF_HUB_DISABLE_TELEMETRY=1 TOKENIZERS_PARALLELISM=false HF_HOME="$WORK/hf"

exec 3>&1 4>&2
exec > >(tee -a "$DIR/log.txt") 2>&1
TEE_PID=$!
T0=$EPOCHREALTIME

cleanup() {
  rm -f "$DIR"/.*.tmp 2>/dev/null || true
  exec 1>&3 2>&4
  wait "$TEE_PID" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }
# record_case ID FILE RC WALL_S — one line of run.json's case list.
record_case() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$CASES_TSV"; }
# budget_short SECONDS — true (and says so) when less than SECONDS of the budget are left.
budget_short() {
  local used
  used=$(elapsed "$T0")
  if ((BUDGET_S - ${used%.*} < $1)); then echo "=== $2: SKIPPED (${used}s of the ${BUDGET_S}s budget used)"; return 0; fi
  return 1
}
ALL_PARTS=bench,torch,validate,watch,optim
# LitGPT's wheel present (see the header): its cases run last in `all`, when the budget allows.
if compgen -G ".whl/litgpt-*.whl" >/dev/null; then ALL_PARTS+=,litgpt; fi
want() { [[ ",${PART//all/$ALL_PARTS}," == *",$1,"* ]]; }

# run_case CASE_ID FILE TIMEOUT_S SUBCOMMAND [ARGS...]
run_case() {
  local id=$1 file=$DIR/$2 limit=$3
  shift 3
  local used left
  used=$(elapsed "$T0")
  left=$((BUDGET_S - ${used%.*}))
  if ((left < 25)); then
    echo "=== $id: SKIPPED, ${used}s of the ${BUDGET_S}s budget used"
    "$PY" "$GT" finish --out "$file" --case-id "$id" --rc -1 --wall-s 0 --skipped \
      --reason "skipped: ${used}s of the ${BUDGET_S}s budget used" || true
    record_case "$id" "$(basename "$file")" -1 0
    return 0
  fi
  if ((limit > left)); then limit=$left; fi
  echo "=== $id (timeout ${limit}s, t=${used}s)"
  local t0=$EPOCHREALTIME rc=0
  set +e
  timeout -k 10 "$limit" "$PY" "$GT" "$@" --out "$file" --case-id "$id" 2>&1 | tee "$WORK/case.log"
  rc=${PIPESTATUS[0]}
  set -e
  local wall
  wall=$(elapsed "$t0")
  "$PY" "$GT" finish --out "$file" --case-id "$id" --rc "$rc" --wall-s "$wall" \
    --timeout-s "$limit" --log "$WORK/case.log" || echo "[warn] could not close record $id"
  record_case "$id" "$(basename "$file")" "$rc" "$wall"
}

echo "device-check: $CMDLINE (part $PART, budget ${BUDGET_S}s) $(date -u +%Y-%m-%dT%H:%M:%SZ)"
"$PY" "$GT" runinfo --out "$DIR/run.json" --cmdline "$CMDLINE" --part "$PART" ||
  echo "[warn] run.json not written"

# ── cases ─────────────────────────────────────────────────────────────────────────────────
# inference: MODEL:CONTEXT:BATCH:ATTN (bf16, 32 new tokens)
INFER=(
  llama-2-7b:4096:1:sdpa
  llama-2-7b:4096:1:eager
  llama-2-13b:4096:1:sdpa
  mistral-7b:4096:1:sdpa
  qwen2.5-7b:4096:1:sdpa
  llama-2-7b:4096:4:sdpa
  llama-3.1-8b:8192:1:sdpa
  qwen3.5-9b:4096:1:sdpa
  nemotron-h-8b:4096:1:sdpa
)
# training: CASE_ID|MODEL|ground_truth.py train options|headroom plan options
TRAIN=(
  "train-llama-2-7b-lora-r8-qv-s1304-bf16|llama-2-7b|--mode lora --lora-rank 8 --lora-targets q_proj,v_proj --seq 1304 --batch 1 --precision bf16 --adapter-dtype base --expect-trainable 4194304|--mode lora --precision bf16 --lora-rank 8 --lora-targets q_proj,v_proj --context 1304 --batch 1 --optimizer adamw"
  "train-llama-2-7b-lora-r16-all-s1304-bf16|llama-2-7b|--mode lora --lora-rank 16 --lora-targets all-linear --seq 1304 --batch 1 --precision bf16 --adapter-dtype base --expect-trainable 39976960|--mode lora --precision bf16 --lora-rank 16 --lora-targets all-linear --context 1304 --batch 1 --optimizer adamw"
  "train-llama-2-7b-full-s1024-bf16|llama-2-7b|--mode full --seq 1024 --batch 1 --precision bf16 --expect-trainable 6738415616|--mode full --precision bf16 --context 1024 --batch 1 --optimizer adamw"
  "train-tinyllama-1.1b-full-s2048-b2-amp|tinyllama-1.1b|--mode full --seq 2048 --batch 2 --precision amp --expect-trainable 1100048384|--mode full --precision amp --context 2048 --batch 2 --optimizer adamw"
  "train-llama-2-7b-lora-r8-qv-s1304-bf16-ckpt|llama-2-7b|--mode lora --lora-rank 8 --lora-targets q_proj,v_proj --seq 1304 --batch 1 --precision bf16 --adapter-dtype base --checkpointing --expect-trainable 4194304|--mode lora --precision bf16 --lora-rank 8 --lora-targets q_proj,v_proj --context 1304 --batch 1 --optimizer adamw --checkpointing full"
  "train-llama-2-7b-lora-r8-qv-s1304-bf16-peft-fp32-adapters|llama-2-7b|--mode lora --lora-rank 8 --lora-targets q_proj,v_proj --seq 1304 --batch 1 --precision bf16 --adapter-dtype fp32 --expect-trainable 4194304|--mode lora --precision mixed --lora-rank 8 --lora-targets q_proj,v_proj --context 1304 --batch 1 --optimizer adamw --no-autocast"
)
# optimizer variants (part optim), same layout (`device_records.py train DIR/train.json` turns
# both lists' cases into records): `--optimizer-in-backward` (one gradient at a time: lm_head's 32,000 ×
# 4,096) and `--optimizer paged-adamw-8bit` (the states outside torch's allocator:
# paged_state_bytes against the plan's paged_optimizer_bytes, compare = "train_paged"), and fp32
# LoRA adapters under torch.autocast as transformers' Trainer runs them (bf16 copies of their inputs)
OPTIM=(
  "train-llama-2-7b-full-s1024-bf16-in-backward|llama-2-7b|--mode full --seq 1024 --batch 1 --precision bf16 --optimizer-in-backward --expect-trainable 6738415616|--mode full --precision bf16 --context 1024 --batch 1 --optimizer adamw --optimizer-in-backward"
  "train-llama-2-7b-full-s1024-bf16-paged8|llama-2-7b|--mode full --seq 1024 --batch 1 --precision bf16 --optimizer paged-adamw-8bit --expect-trainable 6738415616|--mode full --precision bf16 --context 1024 --batch 1 --optimizer paged-adamw-8bit"
  "train-llama-2-7b-lora-r16-all-s1304-fp32-adapters-autocast|llama-2-7b|--mode lora --lora-rank 16 --lora-targets all-linear --seq 1304 --batch 1 --precision bf16 --adapter-dtype fp32 --autocast --expect-trainable 39976960|--mode lora --precision mixed --lora-rank 16 --lora-targets all-linear --context 1304 --batch 1 --optimizer adamw"
)

# ── our own kernels (headroom bench) ─────────────────────────────────────────────────────────
# NVRTC and cuBLAS come from the CUDA toolkit or the python nvidia-* wheels; cudarc loads
# libnvrtc.so.13 / libcublas.so.13 / libcublasLt.so.13 through LD_LIBRARY_PATH.
cuda_lib_dirs() {
  "$PY" - <<'PYEOF' 2>/dev/null || true
import glob, os
dirs = []
try:
    import nvidia
    for root in list(nvidia.__path__):
        dirs += sorted(glob.glob(os.path.join(root, "*", "lib")))
except Exception:
    pass
dirs += sorted(glob.glob("/usr/local/cuda*/lib64")) + sorted(glob.glob("/usr/local/cuda*/targets/x86_64-linux/lib"))
keep = [d for d in dirs if glob.glob(os.path.join(d, "libnvrtc.so*")) or glob.glob(os.path.join(d, "libcublas*.so*"))]
print(":".join(dict.fromkeys(keep)))
PYEOF
  ldconfig -p 2>/dev/null | awk '/libnvrtc\.so|libcublas\.so/ { print $NF }' | xargs -r -n1 dirname | sort -u | paste -sd: -
}

# The GPU catalog id of this machine's GPU, for --plan / --gpu.
gpu_id() {
  if [[ -n ${HEADROOM_GPU:-} ]]; then
    echo "$HEADROOM_GPU"
  elif nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | grep -q H200; then
    echo h200
  else
    echo h100-sxm
  fi
}

# Merges the JSON files given after the output into one JSON array (each file's value, or an
# error record when a file is missing or broken).
merge_json() {
  "$PY" - "$@" <<'PYEOF'
import json, sys
out, items = sys.argv[1], []
for path in sys.argv[2:]:
    label, _, f = path.partition("=")
    try:
        items.append({"case_id": label, "report": json.load(open(f))})
    except Exception as e:
        items.append({"case_id": label, "error": f"{type(e).__name__}: {e}"})
json.dump(items, open(out, "w"), indent=1)
PYEOF
}

# headroom validate (issue 6): our engine on the planned configuration, NVML after each phase.
# First, because nothing else measures it; the 70B case last (the longest).
# data/measurements/configs/llama-1.3b-shaped: a 1.3B Llama shape (head_dim 128, MHA) whose full
# fine-tuning step fits an H100 (CI re-plans it from the same file); the 7B step needs an H200
# (about 113 GB) and is reported as not fitting elsewhere.
SMALL_CONFIG=data/measurements/configs/llama-1.3b-shaped
VALIDATE=(
  "llama-2-7b --weights bf16 --context 4096"
  "llama-2-7b --weights awq --context 4096"
  "llama-2-13b --weights bf16 --context 4096"
  "llama-2-7b --weights bf16 --context 4096 --batch 4"
  "$SMALL_CONFIG --mode full --context 1024"
  "llama-2-70b --weights awq --context 4096"
  "llama-2-7b --mode full --context 1024"
)
if want validate; then
  HR=target/release/headroom
  if [[ -x $HR ]]; then
    LIBS=$(cuda_lib_dirs | paste -sd: - | sed 's/^://; s/:$//')
    FILES=()
    n=0
    for args in "${VALIDATE[@]}"; do
      n=$((n + 1))
      id="validate-$(echo "${args/#data\/measurements\/configs\//}" | tr -s ' /' '-' | sed 's/--/-/g; s/^-//')"
      if budget_short 40 "$id"; then continue; fi
      echo "=== $id"
      t0=$EPOCHREALTIME
      rc=0
      # shellcheck disable=SC2086 # args is a word list on purpose
      LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout -k 10 90 "$HR" validate $args \
        --json "$WORK/validate-$n.json" || rc=$?
      record_case "$id" validate.json "$rc" "$(elapsed "$t0")"
      FILES+=("$id=$WORK/validate-$n.json")
    done
    merge_json "$DIR/validate.json" "${FILES[@]}" || echo "[warn] validate.json not written"
  else
    echo "=== validate: $HR not built here; skipped"
  fi
fi

if want bench; then
  HR=target/release/headroom
  if [[ -x $HR ]]; then
    LIBS=$(cuda_lib_dirs | paste -sd: - | sed 's/^://; s/:$//')
    echo "=== bench ($HR bench --quick; CUDA libraries from: ${LIBS:-none found})"
    t0=$EPOCHREALTIME
    rc=0
    LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" timeout -k 10 170 "$HR" bench --quick \
      --json "$DIR/bench.json" || rc=$?
    echo "=== bench rc=$rc in $(elapsed "$t0")s"
    record_case bench bench.json "$rc" "$(elapsed "$t0")"
  else
    echo "=== bench: $HR not built here; skipped (build it with cargo build --release and carry it)"
  fi
fi

if want context; then
  run_case context-cuda context.json 60 context
fi

if want torch; then
  run_case torch-kernels torch_kernels.json 90 torch
fi

if want infer; then
  for spec in "${INFER[@]}"; do
    IFS=: read -r model ctx batch attn <<<"$spec"
    run_case "infer-$model-bf16-c$ctx-b$batch-$attn" infer.json 120 \
      infer --model "$model" --dtype bf16 --context "$ctx" --new-tokens 32 --batch "$batch" \
      --attn "$attn"
  done
fi

if want train; then
  for spec in "${TRAIN[@]}"; do
    IFS='|' read -r id model opts plan <<<"$spec"
    # shellcheck disable=SC2086 # opts is a word list on purpose
    run_case "$id" train.json 150 train --model "$model" $opts --plan-args "$model $plan --gpu $(gpu_id)"
  done
fi

# headroom watch around real transformers clients (issue 6): the process tree's NVML peak
# against the plan's total (CUDA context included). The client runs as a grandchild (sh, then
# python): watch must count the whole tree.
WATCH=(
  "watch-llama-2-7b-generate-c4096|--weights bf16 --context 4096 --engine hf|infer --model llama-2-7b --dtype bf16 --context 4096 --new-tokens 32 --batch 1 --attn sdpa"
  "${TRAIN[1]}"
  "${TRAIN[2]}"
)
if want watch; then
  HR=target/release/headroom
  if [[ -x $HR ]]; then
    GPU_ID=$(gpu_id)
    FILES=()
    for spec in "${WATCH[@]}"; do
      IFS='|' read -r id a b c <<<"$spec"
      if [[ -n $c ]]; then # a TRAIN entry: id|model|train options|plan options
        plan="$a $c" client="train --model $a $b"
      else
        plan="llama-2-7b $a" client=$b
      fi
      if budget_short 60 "$id"; then continue; fi
      echo "=== watch $id (--plan \"$plan --gpu $GPU_ID\")"
      t0=$EPOCHREALTIME
      rc=0
      # shellcheck disable=SC2086,SC2016 # client is a word list; $@ and $0 belong to sh -c
      timeout -k 5 170 "$HR" watch --interval-ms 50 --format json --plan "$plan --gpu $GPU_ID" -- \
        sh -c '"$@" >>"$0" 2>&1' "$WORK/watch-child.log" \
        "$PY" "$GT" $client --out "$WORK/$id-gt.json" --case-id "$id" >"$WORK/$id.json" || rc=$?
      record_case "$id" watch.json "$rc" "$(elapsed "$t0")"
      FILES+=("$id=$WORK/$id.json" "$id-client=$WORK/$id-gt.json")
    done
    merge_json "$DIR/watch.json" "${FILES[@]}" || echo "[warn] watch.json not written"
    tail -n 30 "$WORK/watch-child.log" 2>/dev/null || true
  else
    echo "=== watch: $HR not built here; skipped"
  fi
fi

# LitGPT's own fine-tuning steps (bf16-true, as its resource tables ran), for `plan --engine
# litgpt`: CASE_ID|LitGPT config|ground_truth.py litgpt options|headroom plan options.
LITGPT=(
  "litgpt-llama-2-7b-lora-r8-qv-d05-s1304|Llama-2-7b-hf|--mode lora --seq 1304 --lora-rank 8 --lora-alpha 16 --lora-dropout 0.05 --expect-trainable 4194304|llama-2-7b --engine litgpt --mode lora --precision bf16 --lora-rank 8 --lora-dropout 0.05 --lora-targets q_proj,v_proj --context 1304"
  "litgpt-llama-2-7b-adapter-s1304|Llama-2-7b-hf|--mode adapter --seq 1304 --expect-trainable 1229760|llama-2-7b --engine litgpt --mode adapter --precision bf16 --context 1304"
  "litgpt-llama-2-7b-adapter-v2-s1304|Llama-2-7b-hf|--mode adapter-v2 --seq 1304 --expect-trainable 4279744|llama-2-7b --engine litgpt --mode adapter-v2 --precision bf16 --context 1304"
)
if want optim; then
  for spec in "${OPTIM[@]}"; do
    IFS='|' read -r id model opts plan <<<"$spec"
    if [[ $opts == *paged* ]] && ! "$PY" -c "import bitsandbytes" 2>/dev/null; then
      echo "=== $id skipped: no bitsandbytes in $PY"
      continue
    fi
    # shellcheck disable=SC2086 # opts is a word list on purpose
    run_case "$id" train.json 150 train --model "$model" $opts --plan-args "$model $plan --gpu $(gpu_id)"
  done
fi

if want litgpt; then
  if compgen -G ".whl/litgpt-*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$WORK/site" .whl/*.whl ||
      echo "[warn] the .whl wheels did not install; the litgpt cases will fail to import"
    export PYTHONPATH="$WORK/site${PYTHONPATH:+:$PYTHONPATH}"
  fi
  # The cases need LitGPT and the Lightning it was built for: check once, before any case.
  if "$PY" -c "import sys; sys.path.insert(0, 'scripts'); from gtlib.litgpt import import_flavour
for mode in ('lora', 'adapter', 'adapter-v2'): import_flavour(mode)" 2>"$WORK/litgpt-import.log"; then
    for spec in "${LITGPT[@]}"; do
      IFS='|' read -r id config opts plan <<<"$spec"
      # shellcheck disable=SC2086 # opts is a word list on purpose
      run_case "$id" litgpt.json 150 litgpt --config-name "$config" $opts --plan-args "$plan --gpu $(gpu_id)"
    done
  else
    echo "=== litgpt: SKIPPED, LitGPT does not import: $(tail -n 1 "$WORK/litgpt-import.log")"
  fi
fi

if [[ ",$PART," == *",headroom,"* ]]; then
  HR=target/release/headroom
  if [[ -x $HR ]]; then
    GPU_ID=$(gpu_id)
    PLANS=()
    for spec in "${TRAIN[@]}"; do
      IFS='|' read -r id model _opts plan <<<"$spec"
      PLANS+=("$id|$model|$plan")
    done
    echo "=== headroom ($HR, --gpu $GPU_ID)"
    t0=$EPOCHREALTIME
    rc=0
    timeout -k 5 120 "$PY" "$GT" headroom --out "$DIR/headroom.json" --bin "$HR" --gpu "$GPU_ID" \
      --infer "${INFER[@]}" --train "${PLANS[@]}" || rc=$?
    record_case headroom headroom.json "$rc" "$(elapsed "$t0")"
  else
    echo "=== headroom: $HR not built here; skipped"
  fi
fi

# Our kernels against PyTorch, measured in this same run (bench.json vs torch_kernels.json).
if [[ -s $DIR/bench.json && -s $DIR/torch_kernels.json ]]; then
  "$PY" - "$DIR/bench.json" "$DIR/torch_kernels.json" <<'PYEOF' || echo "[warn] ratios not computed"
import json, sys
ours = {r["name"]: r for r in json.load(open(sys.argv[1]))["results"]}
torch = json.load(open(sys.argv[2]))
torch = torch[0] if isinstance(torch, list) else torch
def pick(prefix, key):
    for name, r in ours.items():
        if name.startswith(prefix):
            return r.get(key), r.get("error")
    return None, "not run"
def line(label, got, err, ref, need):
    if got is None or not ref:
        print(f"  {label:<44} n/a ({err or 'no torch value'})"); return
    ratio = got / ref
    print(f"  {label:<44} {got:10.1f} / {ref:10.1f} = {ratio:6.1%}  need >= {need:.0%}  {'PASS' if ratio >= need else 'FAIL'}")
copy = torch.get("copy", {}).get("median_gb_s")
print("=== headroom kernels vs PyTorch (same GPU, same run)")
g, e = pick("bandwidth copy", "achieved_gb_s"); line("copy GB/s (read+write) vs torch copy", g, e, copy, 0.90)
g, e = pick("gemm bf16 8192", "achieved_tflops")
line("bf16 GEMM 8192^3 TFLOPS vs torch.matmul", g, e, torch.get("matmul", {}).get("bf16", {}).get("median_tflops"), 0.95)
sdpa = torch.get("sdpa", {}).get("mha_default", {}).get("median_tflops")
g, e = pick("attention prefill b1 h32/32 seq 4096", "achieved_tflops")
line("prefill attn s4096 d128 causal vs SDPA", g, e, sdpa, 0.50)
g, e = pick("attention prefill br128 b1 h32/32 seq 4096", "achieved_tflops")
line("  128-row tiles (candidate) vs SDPA", g, e, sdpa, 0.50)
g, e = pick("attention prefill w32 b1 h32/32 seq 4096", "achieved_tflops")
line("  4 warps x 32 rows (candidate) vs SDPA", g, e, sdpa, 0.50)
g, e = pick("attention decode b", "achieved_gb_s"); line("decode attention GB/s vs torch copy GB/s", g, e, copy, 0.75)
g, e = pick("attention decode v2 b", "achieved_gb_s"); line("  v2, one launch, tensor cores (candidate) vs copy", g, e, copy, 0.75)
g, e = pick("gemv int4 g128", "achieved_gb_s"); line("int4 GEMV GB/s vs torch copy GB/s", g, e, copy, 0.75)
g, e = pick("gemv int4×q8 g128", "achieved_gb_s"); line("  int8-x dp4a (candidate) vs torch copy GB/s", g, e, copy, 0.75)
g, e = pick("gemv int4 v2 g128", "achieved_gb_s"); line("  exact, 3 ops/weight (candidate) vs torch copy", g, e, copy, 0.75)
g, e = pick("gemm fp8 8192", "achieved_tflops")
line("fp8 GEMM 8192^3 TFLOPS vs bf16 torch.matmul (info)", g, e, torch.get("matmul", {}).get("bf16", {}).get("median_tflops"), 1.0)
PYEOF
fi

"$PY" "$GT" runinfo-finish --out "$DIR/run.json" --cases-tsv "$CASES_TSV" \
  --wall-s "$(elapsed "$T0")" || echo "[warn] run.json not finished"
"$PY" "$GT" summary --dir "$DIR" || true
echo "device-check done in $(elapsed "$T0")s; files: $(cd "$DIR" && echo *)"
