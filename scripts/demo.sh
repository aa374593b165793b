#!/usr/bin/env bash
# SegKit's main job, on built-in data: set up, generate the synthetic semantic
# dataset, train a small model on the CPU for a few minutes, evaluate it, and
# write predictions (label PNGs, colour masks, overlays). Everything lands in
# runs/demo/ (git-ignored); a second run starts it afresh.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup-system.sh
bash scripts/setup-libtorch.sh
swift build -c release --product segkit
segkit="$(swift build -c release --show-bin-path)/segkit"
"$segkit" info

demo="$root/runs/demo"
rm -rf "$demo"
mkdir -p "$demo"
"$segkit" data synth --kind semantic --out "$demo/data" --seed 0 --train 2000 --val 100
"$segkit" train --config configs/demo.yaml --set "dataset_dir=$demo/data" --run "$demo/train" --plain
"$segkit" eval --run "$demo/train" --json "$demo/eval.json"
mkdir -p "$demo/val-images"
while read -r name; do cp "$demo/data/JPEGImages/$name.jpg" "$demo/val-images/"; done \
  < <(head -n 8 "$demo/data/ImageSets/Segmentation/val.txt")
"$segkit" predict --run "$demo/train" --input "$demo/val-images" --output "$demo/predictions" --color --overlay

miou="$(python3 -c 'import json, sys; print(round(json.load(open(sys.argv[1]))["mIoU"], 4))' "$demo/eval.json")"
echo
echo "The data are synthetic (textured shapes drawn by segkit data synth)."
echo "run folder:   $demo/train   (tensorboard --logdir $demo/train)"
echo "evaluation:   $demo/eval.json"
echo "predictions:  $demo/predictions (labels, colour masks, overlays)"
echo "mIoU on the synthetic validation split: $miou"
