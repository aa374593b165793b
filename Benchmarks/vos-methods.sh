#!/usr/bin/env bash
# OSVOS, MaskRNN and XMem on the same synthetic DAVIS 2017 validation split, one after
# the other: J&F (`segkit vos eval`) and seconds per frame (the whole `vos segment`,
# fine-tuning included, over the frames it wrote). Prints a markdown table.
#
#   Benchmarks/vos-methods.sh
#
# Reuses what exists under OUT (default runs/bench/vos-methods): the data and the OSVOS
# parent and MaskRNN of Benchmarks/maskrnn-ablation.sh (ABLATION, default
# runs/bench/maskrnn-ablation-objects-random; built by it when missing), and XMem
# trained with configs/xmem-cpu.yaml (XMEM_RUN, default OUT/xmem-run; its model.json gives
# the inference settings). OSVOS and MaskRNN fine-tune each object for STEPS (default
# 100) steps; XMem does not fine-tune, in float32 and in int8. Methods already scored
# under OUT are kept (their times too); FORCE=1 runs them again.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
out="${OUT:-$root/runs/bench/vos-methods}"
ablation="${ABLATION:-$root/runs/bench/maskrnn-ablation-objects-random}"
xmem_run="${XMEM_RUN:-$out/xmem-run}"
steps="${STEPS:-100}"
[ -f "$ablation/maskrnn/model.safetensors" ] || OUT="$ablation" bash Benchmarks/maskrnn-ablation.sh
source Benchmarks/steps.sh
davis="$ablation/davis"
[ -f "$xmem_run/model.safetensors" ] || step train --config configs/xmem-cpu.yaml --set "dataset_dir=$davis" --run "$xmem_run" --plain

timed() {  # name, then the vos segment arguments; a method already scored is kept (FORCE=1 redoes it)
  local name="$1"; shift
  if [ -f "$out/$name.json" ] && [ "${FORCE:-0}" != 1 ]; then return; fi
  rm -rf "$out/$name"
  local t0; t0=$(date +%s.%N)
  step vos segment --davis "$davis" --year 2017 --out "$out/$name" --plain "$@"
  python3 -c 'import sys; print(float(sys.argv[2]) - float(sys.argv[1]))' "$t0" "$(date +%s.%N)" >"$out/$name.seconds"
  step vos eval --results "$out/$name" --davis "$davis" --year 2017 --json "$out/$name.json" >/dev/null
}
timed osvos --method osvos --parent "$ablation/parent" --steps "$steps"
timed maskrnn --method maskrnn --parent "$ablation/maskrnn" --steps "$steps"
timed xmem --method xmem --weights "$xmem_run/model.safetensors"
timed xmem-int8 --method xmem --weights "$xmem_run/model.safetensors" --precision int8

python3 - "$out" "$steps" <<'PY'
import glob, json, os, sys
out, steps = sys.argv[1:3]
rows = [("OSVOS (`osvos_resnet18` parent)", "osvos", f"{steps} steps per object"),
        ("MaskRNN (`maskrnn_resnet18`, DIS flow)", "maskrnn", f"{steps} steps per object"),
        ("XMem (`configs/xmem-cpu.yaml`)", "xmem", "none"),
        ("XMem, int8", "xmem-int8", "none")]
print("| method | fine-tuning | J&F | J | F | s/frame |")
print("| --- | --- | --- | --- | --- | --- |")
for label, name, tuning in rows:
    scores = json.load(open(f"{out}/{name}.json"))["global"]
    frames = len(glob.glob(f"{out}/{name}/*/*.png"))
    seconds = float(open(f"{out}/{name}.seconds").read())
    print(f"| {label} | {tuning} | {scores['J&F-Mean']:.4f} | {scores['J-Mean']:.4f} | {scores['F-Mean']:.4f} | {seconds / frames:.3f} |")
PY
