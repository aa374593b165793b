#!/usr/bin/env bash
# Installs the CPU engine SegKit builds against: libtorch from the pinned PyTorch
# wheel plus the two small CUDA runtime libraries libtorch_cpu.so links to.
# Result: .deps/libtorch/torch/{include,lib}. Skipped when LIBTORCH is set
# (the build then uses that libtorch, e.g. a CUDA one) or already installed.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/versions.sh"
dest="$root/.deps/libtorch"
stamp="$dest/.installed-$TORCH_VERSION"

if [ -n "${LIBTORCH:-}" ]; then
  [ -f "$LIBTORCH/include/ATen/ATen.h" ] || { echo "error: LIBTORCH=$LIBTORCH has no include/ATen/ATen.h" >&2; exit 1; }
  echo "libtorch: using LIBTORCH=$LIBTORCH"; exit 0
fi
if [ -f "$stamp" ]; then echo "libtorch: $TORCH_VERSION already in $dest"; exit 0; fi

echo "libtorch: installing torch $TORCH_VERSION (CPU libraries only) into $dest"
rm -rf "$dest.tmp"
python3 -m pip install --quiet --no-cache-dir --no-deps --target "$dest.tmp" \
  "torch==$TORCH_VERSION" \
  "nvidia-cuda-runtime==$CUDA_RUNTIME_VERSION.*" \
  "nvidia-cuda-cupti==$CUDA_CUPTI_VERSION.*"
# Python parts of the wheel are not needed to build or run SegKit.
find "$dest.tmp" -maxdepth 1 -name '*.dist-info' -exec rm -rf {} +
rm -rf "$dest" && mv "$dest.tmp" "$dest"
touch "$stamp"
echo "libtorch: ready"
