#!/usr/bin/env bash
# check-kernels.sh — compiles every kernel in kernels/ the way `headroom bench` does at run time
# (cudarc NVRTC, dynamic loading) to PTX for compute_80 and compute_90, then assembles each PTX
# with ptxas for sm_80 and sm_90. No GPU needed. The NVRTC 13.0 and nvcc (ptxas) wheels from PyPI
# are cached in $HEADROOM_CUDA_CACHE (default ~/.cache/headroom/cuda-wheels) and reused.
set -euo pipefail
cd "$(dirname "$0")/.."
# Outside the checkout, so CI's fresh clones on the same machine reuse it.
CACHE=${HEADROOM_CUDA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/headroom/cuda-wheels}
VER=13.0.88
mkdir -p "$CACHE"
if [[ ! -x $CACHE/nvidia/cu13/bin/ptxas || ! -e $CACHE/nvidia/cu13/lib/libnvrtc.so.13 ]]; then
  python3 -m pip download --quiet --no-deps --only-binary=:all: --platform manylinux2014_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_28_x86_64 \
    -d "$CACHE/dl" "nvidia-cuda-nvrtc==$VER" "nvidia-cuda-nvcc==$VER"
  for w in "$CACHE"/dl/*.whl; do python3 -m zipfile -e "$w" "$CACHE"; done
  chmod +x "$CACHE/nvidia/cu13/bin/"* 2>/dev/null || true
fi
export LD_LIBRARY_PATH="$CACHE/nvidia/cu13/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
OUTDIR=${CHECK_KERNELS_OUT:-$PWD/target/kernel-check}
rm -rf "$OUTDIR" && mkdir -p "$OUTDIR"
cargo run --quiet --example compile_kernels -- "$OUTDIR"
n=0
for ptx in "$OUTDIR"/*.ptx; do
  base=$(basename "$ptx" .ptx) # FAMILY.compute_XY
  sm=sm_${base##*.compute_}
  "$CACHE/nvidia/cu13/bin/ptxas" -arch="$sm" -O3 "$ptx" -o "$OUTDIR/$base.cubin"
  n=$((n + 1))
done
echo "check-kernels: $n PTX files assembled by ptxas ($OUTDIR)"
