#!/usr/bin/env bash
# Where CPU inference time goes, by kind of operation: SegKit's fast path (libtorch's
# profiler) beside ONNX Runtime on SegKit's ONNX export of the same model (ONNX
# Runtime's profiler), one profiled pass each after a warm-up, the same threads (2).
# Usage: Benchmarks/profile.sh [MODEL] [SIZE]
model="${1:-deeplabv3_resnet50}"; size="${2:-513}"
source "$(dirname "$0")/prepare.sh" segkit segkit-bench
work="$(mktemp -d /tmp/segkit-profile.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$bin/segkit" export --model "$model" --out "$work/model.onnx" --height "$size" --width "$size" >/dev/null 2>&1
"$bin/segkit-bench" profile "$model" "$size" "$work/segkit.json" >/dev/null 2>&1
(cd "$work" && "$py" "$root/Benchmarks/python/profile_compare.py" segkit.json model.onnx "$size")
