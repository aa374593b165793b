# Sourced by the benchmark scripts: from the repository root, the pinned libtorch and
# oracle, and the release build of the products named as arguments; sets `root`,
# `bin` (the release binaries) and `py` (the oracle's Python).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
bash scripts/setup-libtorch.sh >/dev/null
bash scripts/setup-oracle.sh >/dev/null
for product in "$@"; do swift build -c release --product "$product" >/dev/null; done
bin="$(swift build -c release --show-bin-path)"
py="$root/.deps/oracle/bin/python"
