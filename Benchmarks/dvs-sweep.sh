#!/usr/bin/env bash
# Rebuilds DVSNet's policy sweep from nothing on this machine: synthetic street
# snippets (variable ego-motion, every frame labelled), flow pre-training pairs with
# shifts up to 40 px, the segmentation path, the thin FlowNetS (true flow, then the warp
# path against that same segmentation run), decision samples, the decision network, and
# `segkit dvs eval --sweep` with every frame, keys every 2…10 frames and targets at
# percentiles of the training scores. Prints the tables (markdown) and where the plots are.
#
#   Benchmarks/dvs-sweep.sh                      the issue's setting: 256x512, deeplabv3plus_resnet50, 2x2 regions
#   SIZE=64x128 MODEL=unet_resnet18 Benchmarks/dvs-sweep.sh   a CPU-sized run (about an hour on 2 cores)
#
# Settings (environment): SIZE (HxW of the street frames), MODEL (the segmentation
# network), REGIONS, SEG_STEPS, FLOW_STEPS, WARP_STEPS, TRAIN / VAL (snippets),
# FLOW_SIZE (HxW of the flow pairs), OUT (default runs/bench/dvs-sweep-SIZE-MODEL).
# Every step is the `segkit` command a user would run; nothing here is tuned to the result.
# A step whose output exists is skipped, so an interrupted run goes on where it stopped.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
size="${SIZE:-256x512}"; model="${MODEL:-deeplabv3plus_resnet50}"; regions="${REGIONS:-2x2}"
seg_steps="${SEG_STEPS:-800}"; flow_steps="${FLOW_STEPS:-2000}"; warp_steps="${WARP_STEPS:-600}"
train="${TRAIN:-40}"; val="${VAL:-8}"; flow_size="${FLOW_SIZE:-128x256}"
out="${OUT:-$root/runs/bench/dvs-sweep-$size-$model}"
crop="[${size%x*}, ${size#*x}]"
flow_crop="[${flow_size%x*}, ${flow_size#*x}]"

source Benchmarks/steps.sh

[ -d "$out/street" ] || step data synth --kind street --out "$out/street" --image-size "$size" --train "$train" --val "$val" --seed 0
[ -d "$out/chairs" ] || step data synth --kind flow --out "$out/chairs" --image-size "$flow_size" --max-shift 40 --seed 0
[ -f "$out/seg/model.safetensors" ] || step train --config configs/street-cpu.yaml --set "dataset_dir=$out/street" --set "model=$model" \
  --set "train_crop_size=$crop" --set "train_batch_size=4" --set "training_number_of_steps=$seg_steps" --set "val_interval=0" \
  --set "checkpoint_interval=$seg_steps" --run "$out/seg" --plain
[ -f "$out/flow/model.safetensors" ] || step train --config configs/flownets-thin-synthetic.yaml --set "dataset_dir=$out/chairs" \
  --set "train_crop_size=$flow_crop" --set "training_number_of_steps=$flow_steps" --set "val_interval=0" \
  --set "checkpoint_interval=$flow_steps" --run "$out/flow" --plain
[ -f "$out/warp/model.safetensors" ] || step train --config configs/flownets-thin-warp-street.yaml --set "dataset_dir=$out/street" \
  --set "initial_checkpoint=$out/flow/model.safetensors" --set "segmentation_run=$out/seg" --set "train_crop_size=$crop" \
  --set "train_batch_size=4" --set "training_number_of_steps=$warp_steps" --set "val_interval=0" \
  --set "checkpoint_interval=$warp_steps" --run "$out/warp" --plain
paths=(--run "$out/seg" --flow "$out/warp" --cityscapes "$out/street" --regions "$regions")
for split in train val; do
  [ -f "$out/dvs/$split.safetensors" ] || step dvs features "${paths[@]}" --split "$split" --out "$out/dvs/$split.safetensors"
done
# The warp orders at key distance 0…9 on the validation split: the mean score by
# distance (agreement of the warp path with segmentation) for each.
for order in flow output; do
  [ -s "$out/warp-at-$order.txt" ] || step dvs features "${paths[@]}" --split val --warp-at "$order" --stride 5 \
    --out "$out/dvs/val-warp-at-$order.safetensors" | tail -n 1 >"$out/warp-at-$order.txt"
done
[ -f "$out/dvs/decision.safetensors" ] || step dvs train-decision --train "$out/dvs/train.safetensors" --val "$out/dvs/val.safetensors" \
  --out "$out/dvs" --epochs 50
[ -f "$out/sweep/sweep.csv" ] || step dvs eval "${paths[@]}" --decision "$out/dvs/decision.safetensors" --sweep --out "$out/sweep" \
  | tee "$out/sweep.txt"

# The table as markdown, with the command that made it.
python3 - "$out" "$size" "$model" "$regions" <<'PY'
import csv, sys
out, size, model, regions = sys.argv[1:5]
rows = list(csv.DictReader(open(f"{out}/sweep/sweep.csv")))
print(f"\n`SIZE={size} MODEL={model} REGIONS={regions} Benchmarks/dvs-sweep.sh` ({len(rows)} policies)\n")
print("| policy | mIoU (95 % interval) | segmentation steps per frame | fps |")
print("| --- | --- | --- | --- |")
for r in rows:
    print(f"| {r['policy']} | {100*float(r['mIoU']):.1f} ({100*float(r['mIoU_low']):.1f}–{100*float(r['mIoU_high']):.1f}) "
          f"| {float(r['segmentation_per_frame']):.3f} | {float(r['fps']):.1f} |")
# At equal cost: each target against the fixed intervals' curve read at its cost (linear
# between neighbouring intervals: alternating two intervals reaches any cost between them).
fixed = sorted((float(r['segmentation_per_frame']), float(r['mIoU'])) for r in rows
               if r['policy'].startswith('key every') or r['policy'] == 'every frame')
def frontier(cost):
    for (c0, m0), (c1, m1) in zip(fixed, fixed[1:]):
        if c0 <= cost <= c1:
            return m0 + (m1 - m0) * (cost - c0) / (c1 - c0) if c1 > c0 else max(m0, m1)
    return None
print("\n| target | cost | mIoU | fixed intervals at that cost | difference |")
print("| --- | --- | --- | --- | --- |")
for r in rows:
    if not r['policy'].startswith('target'): continue
    cost, miou = float(r['segmentation_per_frame']), float(r['mIoU'])
    reference = frontier(cost)
    if reference is None: continue
    print(f"| {r['policy']} | {cost:.3f} | {100*miou:.1f} | {100*reference:.1f} | {100*(miou-reference):+.1f} |")
print()
for order in ("flow", "output"):
    print(f"warp at {order}: " + open(f"{out}/warp-at-{order}.txt").read().strip())
print(f"\nplots: {out}/sweep/sweep.png, {out}/sweep/sweep-cost.png")
PY
