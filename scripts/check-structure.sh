#!/usr/bin/env bash
# Structure checks on the sources, run by scripts/test.sh (both tiers) before it
# builds; run alone with `bash scripts/check-structure.sh`. Exits non-zero, naming
# every problem, when:
#   (a) a Swift file under Sources/segkit is longer than 150 lines;
#   (b) an inference command's file imports SegKitTraining (the files checked are
#       listed; a named file that does not exist is passed over);
#   (c) a model family is chosen by name prefix outside Sources/SegKitModels/ModelFamily.swift
#       and Sources/SegKitModels/Zoo.swift.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
problems=0
problem() { echo "check-structure: $*" >&2; problems=$((problems + 1)); }

# (a) Command files stay short: the work belongs in the libraries.
limit=150
while IFS= read -r -d '' file; do
  lines="$(wc -l <"$file")"
  if [ "$lines" -gt "$limit" ]; then
    problem "$file has $lines lines (at most $limit in Sources/segkit)"
  fi
done < <(find Sources/segkit -name '*.swift' -print0 | sort -z)

# (b) The inference commands do not depend on training.
shopt -s nullglob
inference_commands=(
  Sources/segkit/Commands/Eval*.swift Sources/segkit/Commands/Predict*.swift
  Sources/segkit/Commands/Export*.swift Sources/segkit/Commands/Flow*.swift
  Sources/segkit/Commands/DVS*.swift Sources/segkit/Commands/VOSEval*.swift
  Sources/segkit/Commands/Models*.swift Sources/segkit/Commands/DataCheck*.swift
  Sources/segkit/Arguments/ModelArguments.swift Sources/segkit/Arguments/DVS*.swift
  Sources/segkit/Arguments/FlowMethodArguments.swift Sources/segkit/Arguments/DAVISArguments.swift
)
shopt -u nullglob
# DVSTrainDecision (`segkit dvs train-decision`) trains, so it is not an inference command.
for i in "${!inference_commands[@]}"; do
  case "$(basename "${inference_commands[$i]}")" in *Train*) unset 'inference_commands[i]' ;; esac
done
inference_commands=("${inference_commands[@]}")
if [ "${#inference_commands[@]}" -eq 0 ]; then
  echo "check-structure: (b) no inference command files found under Sources/segkit/Commands"
else
  echo "check-structure: (b) checking ${#inference_commands[@]} inference command files for 'import SegKitTraining': ${inference_commands[*]}"
  for file in "${inference_commands[@]}"; do
    if grep -nE '^[[:space:]]*(@[A-Za-z_]+[[:space:]]+)*import[[:space:]]+SegKitTraining\b' "$file" >/dev/null; then
      problem "$file imports SegKitTraining (an inference command must not depend on training)"
    fi
  done
fi

# (c) Model families are told apart in one place (ModelFamily), not by testing names
# against the zoo's lists or by their prefixes anywhere else.
allowed='^Sources/SegKitModels/(ModelFamily|Zoo)\.swift:'
dispatch='(maskRNNNames|videoObjectSegmentationNames|flowNetworkNames|torchvisionNames|torchvisionResNetNames|mobileNetV3Names)\.contains\(|(dropFirst|hasPrefix)\("(maskrnn|osvos|flownet)'
hits="$(grep -rnE "$dispatch" Sources | grep -vE "$allowed" || true)"
if [ -n "$hits" ]; then
  problem "name-based model-family dispatch outside Sources/SegKitModels/ModelFamily.swift and Zoo.swift:"
  echo "$hits" | sed 's/^/  /' >&2
fi

if [ "$problems" -gt 0 ]; then
  echo "check-structure: $problems problem(s) found" >&2
  exit 1
fi
echo "check-structure: ok"
