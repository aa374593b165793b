#!/usr/bin/env bash
# `segkit serve` under load, on loopback only: one client posting one validation image to
# /v1/segment for SECONDS (default 60), request after request (the sequential baseline);
# then CLIENTS concurrent clients (default 32), first without micro-batching
# (--max-batch 1), then with it (--max-batch 8 --max-delay-ms 5). Prints
# requests, errors, throughput, p50/p99 latency and the service's resident memory after a
# warm-up and after the load, per mode. RUN defaults to the main job's semantic run
# (runs/demo/train); without one, a 50-step run of the same recipe is trained first.
# Usage: Benchmarks/serve-load.sh [RUN] [CLIENTS] [SECONDS]
run="${1:-runs/demo/train}"; clients="${2:-32}"; seconds="${3:-60}"
source "$(dirname "$0")/prepare.sh" segkit
work="$(mktemp -d /tmp/segkit-serve-load.XXXXXX)"
server=""
trap '[ -n "$server" ] && kill "$server" 2>/dev/null; rm -rf "$work"' EXIT
if [ ! -d "$run" ]; then
  "$bin/segkit" data synth --kind semantic --out "$work/data" --seed 0 --train 64 --val 8 >/dev/null
  "$bin/segkit" train --config configs/demo.yaml --set "dataset_dir=$work/data" --set training_number_of_steps=50 \
    --set val_interval=50 --set checkpoint_interval=50 --run "$work/run" --plain >/dev/null
  run="$work/run"
  images=("$work/data/JPEGImages/"*.jpg)
else
  data="$(sed -n 's/^dataset_dir: *//p' "$run/config.yaml" | tr -d "'\"")"
  images=("$data/JPEGImages/"*.jpg)
fi
# The first image by name (a glob, not `ls | head`, whose early exit fails the pipe under pipefail).
image="${images[0]}"
rss() { awk '/VmRSS/ {print int($2 / 1024)}' "/proc/$1/status"; }
size="$($py -c "from PIL import Image; import sys; print('x'.join(map(str, Image.open(sys.argv[1]).size)))" "$image")"
echo "segkit serve under load: $clients clients for ${seconds} s, run $(basename "$run"), one $size JPEG, libtorch's default threads"
echo "| clients | mode | requests | errors | images/s | p50 ms | p99 ms | RSS after warm-up | RSS after load |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
for setting in "1 --max-batch 1" "$clients --max-batch 1" "$clients --max-batch 8 --max-delay-ms 5"; do
  users="${setting%% *}"; mode="${setting#* }"
  # shellcheck disable=SC2086
  "$bin/segkit" serve --run "$run" --port 0 --host 127.0.0.1 $mode --folder "$work/service" > "$work/serve.log" 2>&1 &
  server=$!
  for _ in $(seq 1 300); do grep -q "^serving" "$work/serve.log" && break; sleep 0.1; done
  url="$(sed -n 's/^serving .* on \(http[^ ]*\)\/$/\1/p' "$work/serve.log")"
  [ -n "$url" ] || { cat "$work/serve.log"; exit 1; }
  $py Benchmarks/python/serve_load.py "$url" "$image" "$users" 5 >/dev/null  # warm-up: the allocator settles
  before="$(rss "$server")"
  result="$($py Benchmarks/python/serve_load.py "$url" "$image" "$users" "$seconds")"
  after="$(rss "$server")"
  kill -INT "$server"; wait "$server" 2>/dev/null || true; server=""
  $py - "$users" "$mode" "$result" "$before" "$after" <<'PY'
import json, sys
users, mode, r, before, after = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
print(f"| {users} | {mode} | {r['requests']} | {r['errors']} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {before} MiB | {after} MiB ({100 * (after - before) / before:+.1f} %) |")
PY
done
