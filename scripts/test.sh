#!/usr/bin/env bash
# The test command: installs the engine and the Python oracle (pinned, project-local),
# builds SegKit and runs every test against PyTorch.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/setup-system.sh
bash scripts/setup-libtorch.sh
bash scripts/setup-oracle.sh
swift build --build-tests
swift test --skip-build
