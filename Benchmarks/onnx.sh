#!/usr/bin/env bash
# CPU inference of one torchvision model three ways, one process after another, the
# same threads (2): ONNX Runtime on the ONNX file `segkit export` wrote, SegKit's own
# fast path (segkit-bench inference) and PyTorch eager (no_grad); the median of RUNS
# passes after a warm-up, and the ratios to ONNX Runtime.
# Usage: Benchmarks/onnx.sh [MODEL] [SIZE] [RUNS]
model="${1:-lraspp_mobilenet_v3_large}"; size="${2:-513}"; runs="${3:-5}"
source "$(dirname "$0")/prepare.sh" segkit segkit-bench
work="$(mktemp -d /tmp/segkit-onnx-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$bin/segkit" export --model "$model" --out "$work/model.onnx" --height "$size" --width "$size" >/dev/null 2>&1
ort="$($py Benchmarks/python/onnxruntime_inference.py "$work/model.onnx" "$size" "$runs")"
segkit="$("$bin/segkit-bench" inference "$model" "$size" "$runs")"
torch="$($py Benchmarks/python/inference.py "$model" "$size" "$runs")"
$py - "$ort" "$segkit" "$torch" "$model" "$size" <<'PY'
import json, sys
ort, segkit, torch = (json.loads(a)["seconds"] for a in sys.argv[1:4])
print(f"{sys.argv[4]} at {sys.argv[5]}x{sys.argv[5]}, 2 threads, median seconds (ratio to ONNX Runtime; above 1 is slower)")
for name, seconds in [("ONNX Runtime (SegKit's export)", ort), ("SegKit fast path", segkit), ("PyTorch eager", torch)]:
    print(f"{name:<32}{seconds:>9.3f}{seconds / ort:>8.2f}")
PY
