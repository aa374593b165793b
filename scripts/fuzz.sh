#!/usr/bin/env bash
# libFuzzer on the parsers of untrusted files (Sources/SegKitFuzzTargets).
#   bash scripts/fuzz.sh TARGET [SECONDS]   one target, for SECONDS (default 600)
#   bash scripts/fuzz.sh smoke [RUNS]        every target, RUNS inputs each with a fixed
#                                            seed (default 20000; the test command's smoke run)
# TARGET: mat, flo, pth, safetensors, yaml, png, jpeg, ppm, flowcache, decisionsamples, youtubevos,
# multipart (the service's form bodies) or rle (its COCO run-length mask requests).
# Builds an instrumented segkit-fuzz in .build-fuzz (release, -sanitize=fuzzer), starts
# from valid seed files and the regression files, and keeps what it finds in
# fuzz/corpus/TARGET; a crashing input is written to fuzz/crashes/TARGET/ and the run
# fails. Copy the input into Tests/SegKitFuzzTests/Regressions/TARGET/ once fixed, so
# the tests replay it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
usage="usage: scripts/fuzz.sh mat|flo|pth|safetensors|yaml|png|jpeg|ppm|flowcache|decisionsamples|youtubevos|multipart|rle [SECONDS] | smoke [RUNS]"
target="${1:?$usage}"
export LIBTORCH="${LIBTORCH:-$root/.deps/libtorch/torch}"
# gold cannot link a libFuzzer binary here (an internal error); lld can.
swift build -c release --scratch-path .build-fuzz --product segkit-fuzz \
  -Xswiftc -sanitize=fuzzer -Xswiftc -DLIBFUZZER -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld -Xcc -fsanitize=fuzzer-no-link

# Fills fuzz/corpus/$1 with the regression files and valid seeds.
seed_corpus() {
  local target="$1" corpus="fuzz/corpus/$1"
  mkdir -p "$corpus" "fuzz/crashes/$target"
  cp -n Tests/SegKitFuzzTests/Regressions/"$target"/* "$corpus"/ 2>/dev/null || true
  # Valid files to start from, written by the oracle's Python (scripts/setup-oracle.sh).
  "$root/.deps/oracle/bin/python" - "$target" "$corpus" <<'PY'
import sys, collections, numpy as np
target, out = sys.argv[1], sys.argv[2]
if target == "mat":
    import scipy.io
    seg = (np.arange(20).reshape(4, 5) % 7).astype(np.uint8)
    gt = {"Segmentation": seg, "CategoriesPresent": np.unique(seg), "Name": "x", "Cells": np.array([[1.5, 2]], dtype=object)}
    for compressed in (True, False):
        scipy.io.savemat(f"{out}/seed-{compressed}.mat", {"GTcls": gt}, do_compression=compressed)
elif target in ("pth", "safetensors"):
    import torch
    from safetensors.torch import save_file
    state = collections.OrderedDict([("w", torch.arange(6.).view(2, 3)), ("b", torch.tensor([1, 2])), ("h", torch.ones(3).half())])
    torch.save(state, f"{out}/seed-zip.pth")
    torch.save(state, f"{out}/seed-legacy.pth", _use_new_zipfile_serialization=False)
    save_file(dict(state), f"{out}/seed.safetensors")
elif target == "decisionsamples":
    import torch
    from safetensors.torch import save_file
    save_file({"features": torch.rand(3, 4, 2, 4), "scores": torch.tensor([90., 95., 99.]), "distances": torch.tensor([1., 2., 3.])},
              f"{out}/seed.safetensors", metadata={"format": "segkit-decision-samples"})
elif target == "flo":
    with open(f"{out}/seed.flo", "wb") as f:
        f.write(b"PIEH"); np.array([3, 2], np.int32).tofile(f); (np.arange(12, dtype=np.float32) / 4).tofile(f)
elif target in ("png", "jpeg"):
    from PIL import Image
    image = Image.fromarray((np.arange(72).reshape(4, 6, 3) * 3).astype(np.uint8))
    image.save(f"{out}/seed.png"); image.save(f"{out}/seed.jpg", quality=90); image.convert("P").save(f"{out}/seed-palette.png")
PY
  if [ "$target" = yaml ]; then cp configs/*.yaml "$corpus"/; fi
  if [ "$target" = ppm ]; then printf 'P6\n# seed\n3 2\n255\n' > "$corpus/seed.ppm"; head -c 18 /dev/zero | tr '\0' '\200' >> "$corpus/seed.ppm"; printf 'P5 2 1 15\n\017\005' > "$corpus/seed.pgm"; fi
  if [ "$target" = flowcache ]; then printf '{"method":"dis","preset":"fast"}' > "$corpus/settings.json"; fi
  if [ "$target" = multipart ]; then printf -- '--fuzzboundary\r\nContent-Disposition: form-data; name="model"\r\n\r\nstreet\r\n--fuzzboundary\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--fuzzboundary--\r\n' > "$corpus/seed.form"; fi
  if [ "$target" = rle ]; then printf '{"object": 2, "rle": {"size": [4, 5], "counts": "5220003"}}' > "$corpus/seed.json"; fi
  if [ "$target" = youtubevos ]; then printf '{"videos":{"v1":{"objects":{"1":{"category":"cat","frames":["00000"]}}}}}' > "$corpus/meta.json"; fi
}

# The Swift runtime's backtracer would take the crash before libFuzzer could save the input.
if [ "$target" = smoke ]; then
  runs="${2:-20000}"
  log="$(mktemp)"
  trap 'rm -f "$log"' EXIT
  for name in mat flo pth safetensors yaml png jpeg ppm flowcache decisionsamples youtubevos multipart rle; do
    seed_corpus "$name"
    if ! SWIFT_BACKTRACE=enable=no .build-fuzz/release/segkit-fuzz "$name" -runs="$runs" -seed=1 -rss_limit_mb=4096 \
      -malloc_limit_mb=2048 -timeout=10 -artifact_prefix="fuzz/crashes/$name/" "fuzz/corpus/$name" > "$log" 2>&1; then
      tail -n 40 "$log"
      echo "fuzz smoke: $name failed; the input is in fuzz/crashes/$name/" >&2
      exit 1
    fi
    echo "fuzz smoke: $name: $(grep -E "^Done [0-9]+ runs" "$log" | tail -n 1)"
  done
  exit 0
fi
seconds="${2:-600}"
seed_corpus "$target"
SWIFT_BACKTRACE=enable=no .build-fuzz/release/segkit-fuzz "$target" -max_total_time="$seconds" -rss_limit_mb=4096 \
  -malloc_limit_mb=2048 -timeout=10 -artifact_prefix="fuzz/crashes/$target/" "fuzz/corpus/$target"
