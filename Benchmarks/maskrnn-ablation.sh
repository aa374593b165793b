#!/usr/bin/env bash
# Rebuilds the MaskRNN ablation from nothing on this machine: synthetic DAVIS 2017
# (with exact flow), an OSVOS parent, a MaskRNN trained from it, then `segkit vos
# ablation` with the run's own flow (DIS) and with the generator's exact flow. Each
# ablation prints the flow diagnostic first (J of the previous annotated mask warped by
# the flow, beside J of it unwarped) and then the parts' J&F. Prints the tables (markdown).
#
#   Benchmarks/maskrnn-ablation.sh                          the default data (1-3 objects, 96x128)
#   OBJECTS=1 CAMOUFLAGE=1 Benchmarks/maskrnn-ablation.sh  one object, textured like the background
#
# Settings (environment): OBJECTS (per sequence; default 1-3 at random), CAMOUFLAGE
# (1: objects drawn with the background's texture), SIZE (HxW, default 96x128), TRAIN /
# VAL (sequences), PARENT_STEPS, STEPS (MaskRNN), PRESET (DIS preset of the run's flow),
# SEPARATE (1: also train each variant on its own, `vos ablation --separate`),
# TRAIN_FLOW (dis, the default: MaskRNN trains on DIS flows with PRESET; exact: on the
# generator's exact flows, `flow_method: exact`), OUT (default runs/bench/maskrnn-ablation-…).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
size="${SIZE:-96x128}"; train="${TRAIN:-8}"; val="${VAL:-4}"
parent_steps="${PARENT_STEPS:-250}"; steps="${STEPS:-600}"; preset="${PRESET:-medium}"
data_options=(--image-size "$size" --train "$train" --val "$val" --seed 0)
name="objects-${OBJECTS:-random}"
if [ -n "${OBJECTS:-}" ]; then data_options+=(--objects "$OBJECTS" --layout davis2017); fi
if [ "${CAMOUFLAGE:-0}" = 1 ]; then data_options+=(--camouflage); name="$name-camouflage"; fi
train_flow="${TRAIN_FLOW:-dis}"
if [ "$train_flow" != dis ]; then name="$name-trained-on-$train_flow"; fi
out="${OUT:-$root/runs/bench/maskrnn-ablation-$name}"

source Benchmarks/steps.sh

[ -d "$out/davis" ] || step data synth --kind video --out "$out/davis" "${data_options[@]}"
[ -f "$out/parent/model.safetensors" ] || step vos train --config configs/osvos-parent-cpu.yaml --set "dataset_dir=$out/davis" \
  --set "training_number_of_steps=$parent_steps" --set "checkpoint_interval=$parent_steps" --run "$out/parent" --plain
[ -f "$out/maskrnn/model.safetensors" ] || step vos train --config configs/osvos-parent-cpu.yaml --set "dataset_dir=$out/davis" \
  --set model=maskrnn_resnet18 --set rotation_degrees=0 --set "flow_preset=$preset" --set "flow_method=$train_flow" \
  --set "initial_checkpoint=$out/parent/model.safetensors" --set "training_number_of_steps=$steps" \
  --set "checkpoint_interval=$steps" --set val_interval=0 --run "$out/maskrnn" --plain
flows=(trained exact); if [ "$train_flow" = exact ]; then flows=(exact); fi
for flow in "${flows[@]}"; do
  step vos ablation --parent "$out/maskrnn" --davis "$out/davis" --year 2017 --flow "$flow" --out "$out/ablation-$flow" \
    | tee "$out/ablation-$flow.txt"
done
if [ "${SEPARATE:-0}" = 1 ]; then
  step vos ablation --parent "$out/parent/model.safetensors" --model maskrnn_resnet18 --davis "$out/davis" --year 2017 --separate \
    --config configs/osvos-parent-cpu.yaml --set rotation_degrees=0 --set "flow_preset=$preset" --set "flow_method=$train_flow" \
    --set "training_number_of_steps=$steps" --set "checkpoint_interval=$steps" --set val_interval=0 \
    --out "$out/ablation-separate" | tee "$out/ablation-separate.txt"
fi

python3 - "$out" "$name" <<'PY'
import csv, json, os, sys
out, name = sys.argv[1:3]
print(f"\n`{name}` data; the commands are in {out}/commands.log\n")
for folder in sorted(f for f in os.listdir(out) if f.startswith("ablation-") and os.path.isdir(f"{out}/{f}")):
    rows = list(csv.reader(open(f"{out}/{folder}/ablation.csv")))
    summary = json.load(open(f"{out}/{folder}/ablation.json")).get("flow_warp", {})
    print(f"**{folder}**" + (f": previous mask warped J {summary['warped_j']:.4f}, unwarped J {summary['unwarped_j']:.4f}" if summary else ""))
    print()
    print("| " + " | ".join(rows[0]) + " |")
    print("|" + " --- |" * len(rows[0]))
    for row in rows[1:]:
        print("| " + " | ".join(row) + " |")
    print()
PY
