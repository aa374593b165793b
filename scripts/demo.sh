#!/usr/bin/env bash
# The main job: installs the engine, builds the `segkit` tool in release mode
# and runs it. (Later issues grow this into train → evaluate → predict on
# the built-in synthetic dataset.)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup-system.sh
bash scripts/setup-libtorch.sh
swift build -c release --product segkit
bin="$(swift build -c release --show-bin-path)/segkit"
"$bin" info
