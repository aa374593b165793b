#!/usr/bin/env bash
# The test command: installs the engine and the Python oracle (pinned, project-local),
# builds SegKit and runs every test against PyTorch.
#   scripts/test.sh          the full suite, then the fuzzing smoke run (the CI command)
#   scripts/test.sh --fast   the fast tier: SEGKIT_FAST=1 skips the slow tests (training
#                            loops, multi-process runs, end-to-end pipelines, launches of
#                            `segkit`, whole-network parity); no fuzzing smoke run
set -euo pipefail
fast=0
for argument in "$@"; do
  case "$argument" in
    --fast) fast=1 ;;
    -h | --help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "test.sh: unknown option $argument (use --fast or nothing)" >&2; exit 2 ;;
  esac
done
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
bash scripts/check-structure.sh
bash scripts/setup-system.sh
bash scripts/setup-libtorch.sh
bash scripts/setup-oracle.sh
# A compiler job on this toolchain has failed once without a diagnostic under the
# parallel build; build again serially (incremental) before calling it an error.
if ! swift build --build-tests; then
  echo "test.sh: the build failed; building again with one job to tell a flake from an error" >&2
  swift build --build-tests -j 1
fi
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
if [ "$fast" -eq 1 ]; then
  SEGKIT_FAST=1 swift test --skip-build 2>&1 | tee "$log" || status=$?
else
  swift test --skip-build 2>&1 | tee "$log" || status=$?
fi
# The suites are XCTest; Swift Testing's own summary line counts none of them,
# so close with the XCTest totals in the plain "N passed, N failed" form (with the
# skipped ones, which XCTest counts as executed, apart: "N passed, N skipped, N failed").
summary="$(grep -E "Executed [0-9]+ tests?, with ([0-9]+ tests? skipped and )?[0-9]+ failures?" "$log" | tail -n 1 || true)"
if [ -n "$summary" ]; then
  executed="$(sed -E 's/.*Executed ([0-9]+) tests?.*/\1/' <<<"$summary")"
  failed="$(grep -cE "^Test Case '.*' failed" "$log" || true)"
  skipped="$(grep -cE "^Test Case '.*' skipped" "$log" || true)"
  if [ "$skipped" -gt 0 ]; then
    echo "$((executed - failed - skipped)) passed, $skipped skipped, $failed failed"
  else
    echo "$((executed - failed)) passed, $failed failed"
  fi
fi
# The fuzzing smoke run: libFuzzer on every parser of untrusted files, 20,000 inputs each.
if [ "$status" -eq 0 ] && [ "$fast" -eq 0 ]; then
  bash scripts/fuzz.sh smoke || status=$?
fi
exit "$status"
