#!/usr/bin/env bash
# Runs one benchmark on SegKit and on PyTorch eager in the same session and
# prints both figures and their ratio (SegKit time / PyTorch time: below 1
# means SegKit is faster). Usage:
#   Benchmarks/run.sh op-overhead [ITERATIONS]
#   Benchmarks/run.sh inference MODEL [SIZE] [RUNS]
#   Benchmarks/run.sh train [MODEL] [BATCH] [CROP] [STEPS] [WORKERS]
#   Benchmarks/run.sh finetune [osvos_vgg16|osvos_resnet18] [HEIGHT] [WIDTH] [STEPS] [FRAMES]
#   Benchmarks/run.sh maskrnn [HEIGHT] [WIDTH] [FRAMES]   (SegKit only, beside OSVOS)
#   Benchmarks/run.sh dvs [MODEL] [HEIGHT] [WIDTH] [FRAMES]   (SegKit only: DVSNet's two paths per frame)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
name="${1:?usage: Benchmarks/run.sh BENCHMARK [ARGS...]}"; shift
bash scripts/setup-libtorch.sh >/dev/null
bash scripts/setup-oracle.sh >/dev/null
swift build -c release --product segkit-bench >/dev/null
swift_json="$("$(swift build -c release --show-bin-path)/segkit-bench" "$name" "$@")"
if [ ! -f "Benchmarks/python/$name.py" ]; then echo "$swift_json"; exit 0; fi
python_json="$(.deps/oracle/bin/python "Benchmarks/python/$name.py" "$@")"
.deps/oracle/bin/python - "$swift_json" "$python_json" <<'PY'
import json, sys
swift, torch = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print(f"{'measure':<18}{'SegKit':>12}{'PyTorch':>12}{'ratio':>9}")
for key in swift:
    print(f"{key:<18}{swift[key]:>12.3f}{torch[key]:>12.3f}{swift[key] / torch[key]:>9.2f}")
PY
