#!/usr/bin/env bash
# XMem's inference loop on the CPU (2 threads), SegKit beside the PyTorch oracle's XMem
# (Benchmarks/python/xmem_reference.py) on the same random weights and the same moving
# synthetic frames: FRAMES frames of HEIGHT×WIDTH, OBJECTS objects given on the first,
# XMem's default memory settings. Prints each side's seconds per frame and the ratio;
# SegKit's int8 (calibrated on frames 0-2, timed from frame 3) beside them.
# Usage: Benchmarks/xmem.sh [HEIGHT] [WIDTH] [FRAMES] [OBJECTS]
height="${1:-480}"; width="${2:-854}"; frames="${3:-10}"; objects="${4:-2}"
source "$(dirname "$0")/prepare.sh" segkit-bench
work="$(mktemp -d /tmp/segkit-xmem-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
# The oracle writes the weights both sides load.
pytorch="$($py Benchmarks/python/xmem.py "$work/XMem.pth" "$height" "$width" "$frames" "$objects")"
segkit="$("$bin/segkit-bench" xmem "$work/XMem.pth" "$height" "$width" "$frames" "$objects")"
plain="$(SEGKIT_BENCH_PLAIN=1 "$bin/segkit-bench" xmem "$work/XMem.pth" "$height" "$width" "$frames" "$objects")"
int8="$(SEGKIT_BENCH_PRECISION=int8 "$bin/segkit-bench" xmem "$work/XMem.pth" "$height" "$width" "$frames" "$objects")"
$py - "$segkit" "$plain" "$int8" "$pytorch" "$height" "$width" "$frames" "$objects" <<'PY'
import json, sys
segkit, plain, int8, pytorch = (json.loads(a) for a in sys.argv[1:5])
print(f"XMem, {sys.argv[5]}x{sys.argv[6]}, {sys.argv[7]} frames, {sys.argv[8]} objects, 2 threads")
for name, r in [("segkit", segkit), ("segkit-plain", plain), ("segkit-int8", int8), ("pytorch", pytorch)]:
    print(f"  {name:13s} {r['seconds_per_frame']:.3f} s/frame  {r['frames_per_second']:.2f} frames/s  peak {r['peak_mib']:.0f} MiB")
print(f"  SegKit / PyTorch speed: {pytorch['seconds_per_frame'] / segkit['seconds_per_frame']:.2f}x")
print(f"  SegKit int8 / PyTorch speed: {pytorch['seconds_per_frame'] / int8['seconds_per_frame']:.2f}x")
PY
