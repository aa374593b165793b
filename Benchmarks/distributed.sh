#!/usr/bin/env bash
# Data-parallel training on this machine's CPU: images per second of one process with
# 2 threads, of one process with 1 thread and half the batch, and of two processes with
# 1 thread and half the batch each (Gloo), the scaling of the last over twice the
# second, and the gradient exchange left after backward, for SegKit and for PyTorch
# (DistributedDataParallel) on the same synthetic images and torchvision model, one
# run after another (never two at once), as ratios.
# Usage: Benchmarks/distributed.sh [MODEL] [CROP] [GLOBAL_BATCH] [STEPS]
model="${1:-lraspp_mobilenet_v3_large}"; crop="${2:-128}"; batch="${3:-8}"; steps="${4:-20}"
source "$(dirname "$0")/prepare.sh" segkit
segkit="$bin/segkit"
work="$(mktemp -d /tmp/segkit-ddp-bench.XXXXXX)"
trap 'rm -rf "$work"' EXIT
"$segkit" data synth --kind semantic --out "$work/data" --train 32 --val 0 --image-size "$crop" --seed 0 >/dev/null
classes="$(wc -l < "$work/data/classes.txt")"
cat > "$work/config.yaml" <<YAML
dataset: pascal_voc
dataset_dir: $work/data
val_split: ""
model: $model
train_crop_size: [$crop, $crop]
training_number_of_steps: $((steps + 1))
log_interval: 1
min_scale_factor: 1
max_scale_factor: 1
flip_probability: 0
base_learning_rate: 0.01
workers: 0
YAML
# SegKit's loop logs img/s per window; step 1 is the warm-up, the rest are averaged.
speed() { grep -o '^step [0-9]*/[0-9]* loss [^ ]* lr [^ ]* [0-9.]* img/s' | tail -n +2 | awk '{ s += $(NF-1); n++ } END { printf "%.2f", s / n }'; }
one="$("$segkit" train --config "$work/config.yaml" --run "$work/one" --plain --set threads=2 --set "train_batch_size=$batch" | speed)"
half="$("$segkit" train --config "$work/config.yaml" --run "$work/half" --plain --set threads=1 --set "train_batch_size=$((batch / 2))" | speed)"
two_log="$("$segkit" train --config "$work/config.yaml" --run "$work/two" --plain --nproc-per-node 2 --master-port 29631 \
  --set threads=1 --set "train_batch_size=$((batch / 2))")"
two="$(echo "$two_log" | speed)"
exchange="$(echo "$two_log" | grep -o 'gradient exchange [0-9.]* ms' | grep -o '[0-9.]*' )"
torch_one="$($py Benchmarks/python/distributed.py "$work/data" "$model" "$classes" "$crop" "$batch" "$steps" single 29632)"
torch_half="$($py Benchmarks/python/distributed.py "$work/data" "$model" "$classes" "$crop" "$((batch / 2))" "$steps" single1 29634)"
torch_two="$($py Benchmarks/python/distributed.py "$work/data" "$model" "$classes" "$crop" "$batch" "$steps" ddp 29633)"
$py - "$one" "$two" "$exchange" "$torch_one" "$torch_two" "$model" "$crop" "$batch" "$half" "$torch_half" <<'PY'
import json, sys
one, two, exchange, half = float(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[9])
t1, t2, th = json.loads(sys.argv[4]), json.loads(sys.argv[5]), json.loads(sys.argv[10])
print(f"{sys.argv[6]}, {sys.argv[7]}x{sys.argv[7]}, global batch {sys.argv[8]}, images per second (higher is better)")
print(f"{'setting':<34}{'SegKit':>9}{'PyTorch':>9}{'ratio':>8}")
print(f"{'1 process x 2 threads':<34}{one:>9.2f}{t1['images_per_second']:>9.2f}{one / t1['images_per_second']:>8.2f}")
print(f"{'1 process x 1 thread, half batch':<34}{half:>9.2f}{th['images_per_second']:>9.2f}{half / th['images_per_second']:>8.2f}")
print(f"{'2 processes x 1 thread (Gloo)':<34}{two:>9.2f}{t2['images_per_second']:>9.2f}{two / t2['images_per_second']:>8.2f}")
print(f"{'scaling: 2 processes / (2 x 1)':<34}{two / (2 * half):>9.2f}{t2['images_per_second'] / (2 * th['images_per_second']):>9.2f}")
print(f"gradient exchange per step: SegKit {exchange:.1f} ms left after backward (DDP's buckets, started by autograd hooks); "
      f"PyTorch one all-reduce of all gradients {t2['allreduce_ms']:.1f} ms (DDP overlaps it with backward)")
PY
