#!/usr/bin/env bash
# Compiles the C shim (syntax and semantics, no linking) against the headers of
# another torch release, e.g. the 2.11 that the GPU machines have:
#   bash scripts/check-shim-headers.sh 2.11.0
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
version="${1:?usage: scripts/check-shim-headers.sh TORCH_VERSION}"
work="$root/.deps/headers-$version"
if [ ! -d "$work/torch/include" ]; then
  tmp="$(mktemp -d)"
  python3 -m pip download --quiet --no-deps "torch==$version" -d "$tmp"
  mkdir -p "$work"
  python3 -m zipfile -e "$tmp"/torch-*.whl "$tmp/unpacked" >/dev/null
  mv "$tmp/unpacked/torch/include" "$work/torch-include" && mkdir -p "$work/torch" && mv "$work/torch-include" "$work/torch/include"
  rm -rf "$tmp"
fi
cxx="${CXX:-$(dirname "$(command -v swift)")/clang++}"
for source in "$root"/Sources/CTorchShim/*.cpp; do
  "$cxx" -std=c++20 -fsyntax-only -w -I "$root/Sources/CTorchShim/include" -I "$work/torch/include" "$source"
  echo "ok  $(basename "$source") against torch $version"
done
