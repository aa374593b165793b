# Sourced by the rebuild-from-nothing benchmarks (dvs-sweep.sh, maskrnn-ablation.sh)
# after they set `out`: the release `segkit` (or $SEGKIT), and `step`, which runs one
# segkit command, logs it with its duration to $out/commands.log and echoes it to stderr.
if [ -z "${SEGKIT:-}" ]; then
  bash scripts/setup-libtorch.sh >/dev/null
  swift build -c release --product segkit >/dev/null
  SEGKIT="$(swift build -c release --show-bin-path)/segkit"
fi
mkdir -p "$out"
log="$out/commands.log"
echo "# $(date -u +%Y-%m-%dT%H:%MZ) $(basename "$0") (steps whose output exists are skipped)" >>"$log"
step() {
  echo "+ segkit $*" | tee -a "$log" >&2
  local t0=$SECONDS
  "$SEGKIT" "$@"
  echo "  ($((SECONDS - t0)) s)" | tee -a "$log" >&2
}
