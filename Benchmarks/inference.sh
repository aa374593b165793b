#!/usr/bin/env bash
# CPU inference of one torchvision model (or OSVOS), every way a user might run it, one
# process per variant, the same threads (2), 1×3×SIZE×SIZE: SegKit's default path
# (segkit-bench inference), that path without fused activations, its plain path
# (no folding, fusion or channels-last), SegKit with measured kernels (fp32, NNPACK's
# Winograd where it times faster), SegKit in bf16 and in int8 (not exact: see
# `segkit eval --precision` for what they cost in accuracy),
# PyTorch eager, tuned eager (channels-last, inference_mode), torch.compile, ONNX
# Runtime on torch.onnx's export, in float32 and quantised to int8 (static, QDQ, per
# channel), and ONNX Runtime on SegKit's export. Each figure is
# the median of RUNS passes after a warm-up; with ROUNDS > 1 the variants take turns
# and each figure is the median over rounds (this machine's speed drifts).
# Usage: Benchmarks/inference.sh [MODEL] [SIZE] [RUNS] [ROUNDS]
model="${1:-lraspp_mobilenet_v3_large}"; size="${2:-513}"; runs="${3:-5}"; rounds="${4:-1}"
source "$(dirname "$0")/prepare.sh" segkit segkit-bench
work="$(mktemp -d /tmp/segkit-inference-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$bin/segkit" export --model "$model" --out "$work/segkit.onnx" --height "$size" --width "$size" >/dev/null 2>&1
# PyTorch's columns need the model in PyTorch: torchvision's, or OSVOS-PyTorch's
# network; the decoder–encoder pairs have SegKit's and ONNX Runtime's columns only.
reference=1
case "$model" in
  osvos_vgg16|osvos_resnet18) ;;
  *) $py -c "import sys, torchvision; sys.exit(0 if hasattr(torchvision.models.segmentation, '$model') else 1)" || reference=0 ;;
esac
for round in $(seq "$rounds"); do
  {
    echo "segkit $("$bin/segkit-bench" inference "$model" "$size" "$runs")"
    echo "segkit-unfused $(SEGKIT_BENCH_UNFUSED=1 "$bin/segkit-bench" inference "$model" "$size" "$runs")"
    echo "segkit-plain $(SEGKIT_BENCH_PLAIN=1 "$bin/segkit-bench" inference "$model" "$size" "$runs")"
    # bf16 is refused on a CPU without bfloat16 convolutions (AVX2 only): the row is left out, said on stderr.
    if bf16="$(SEGKIT_BENCH_PRECISION=bf16 "$bin/segkit-bench" inference "$model" "$size" "$runs" 2>/dev/null)"; then
      echo "segkit-bf16 $bf16"
    else
      echo "inference.sh: no bf16 row: this CPU has no bfloat16 convolutions" >&2
    fi
    echo "segkit-int8 $(SEGKIT_BENCH_PRECISION=int8 "$bin/segkit-bench" inference "$model" "$size" "$runs")"
    echo "segkit-measured $(SEGKIT_BENCH_KERNELS=measured "$bin/segkit-bench" inference "$model" "$size" "$runs")"
    echo "segkit-int8-measured $(SEGKIT_BENCH_KERNELS=measured SEGKIT_BENCH_PRECISION=int8 "$bin/segkit-bench" inference "$model" "$size" "$runs")"
    if [ "$reference" = 1 ]; then
      for variant in eager tuned compile onnxruntime onnxruntime-int8; do
        echo "$variant $($py Benchmarks/python/inference_variants.py "$variant" "$model" "$size" "$runs" 2>/dev/null)"
      done
    fi
    echo "onnxruntime-segkit $($py Benchmarks/python/onnxruntime_inference.py "$work/segkit.onnx" "$size" "$runs")"
  } >> "$work/results"
done
$py - "$work/results" "$model" "$size" "$rounds" <<'PY'
import json, statistics, sys
figures = {}
for line in open(sys.argv[1]):
    variant, text = line.split(" ", 1)
    figures.setdefault(variant, []).append(json.loads(text)["seconds"])
median = {variant: statistics.median(values) for variant, values in figures.items()}
reference_name = "onnxruntime" if "onnxruntime" in median else "onnxruntime-segkit"
reference = median[reference_name]
print(f"{sys.argv[2]} at {sys.argv[3]}x{sys.argv[3]}, 2 threads, {sys.argv[4]} round(s); seconds, "
      f"ratio to ONNX Runtime on {'torch.onnx' if reference_name == 'onnxruntime' else 'SegKit'}'s export")
names = {"segkit": "SegKit (default path)", "segkit-unfused": "SegKit without fused activations",
         "segkit-plain": "SegKit plain path", "segkit-bf16": "SegKit --precision bf16",
         "segkit-int8": "SegKit --precision int8", "segkit-measured": "SegKit --measure-kernels (fp32)",
         "segkit-int8-measured": "SegKit int8 --measure-kernels", "eager": "PyTorch eager (no_grad)",
         "tuned": "PyTorch channels-last + inference_mode", "compile": "torch.compile",
         "onnxruntime": "ONNX Runtime (torch.onnx export)", "onnxruntime-int8": "ONNX Runtime int8 (static QDQ)",
         "onnxruntime-segkit": "ONNX Runtime (SegKit's export)"}
for variant, seconds in median.items():
    print(f"{names[variant]:<42}{seconds:>8.3f}{seconds / reference:>7.2f}")
# Issue 29's aims: SegKit's float32 against the fastest other float engine, its int8 against ONNX Runtime's.
others = [v for v in ("eager", "tuned", "compile", "onnxruntime", "onnxruntime-segkit") if v in median]
fastest = min(others, key=median.get)
for variant in ("segkit", "segkit-measured"):
    if variant in median:
        print(f"{names[variant]} / {names[fastest]}: {median[variant] / median[fastest]:.2f}")
for variant in ("segkit-int8", "segkit-int8-measured"):
    if variant in median and "onnxruntime-int8" in median:
        print(f"{names[variant]} / {names['onnxruntime-int8']}: {median[variant] / median['onnxruntime-int8']:.2f}")
PY
