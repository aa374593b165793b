#!/usr/bin/env bash
# libFuzzer on one parser of untrusted files: bash scripts/fuzz.sh TARGET [SECONDS]
# TARGET: mat, flo, pth, safetensors, yaml, png, jpeg or flowcache (Sources/SegKitFuzzTargets).
# Builds an instrumented segkit-fuzz in .build-fuzz (release, -sanitize=fuzzer),
# starts from the regression files and any corpus in fuzz/corpus/TARGET, and keeps
# what it finds there; a crashing input is written to fuzz/crashes/TARGET/. Copy it
# into Tests/SegKitFuzzTests/Regressions/TARGET/ once fixed, so the tests replay it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
target="${1:?usage: scripts/fuzz.sh mat|flo|pth|safetensors|yaml|png|jpeg|flowcache [SECONDS]}"
seconds="${2:-600}"
export LIBTORCH="${LIBTORCH:-$root/.deps/libtorch/torch}"
# gold cannot link a libFuzzer binary here (an internal error); lld can.
swift build -c release --scratch-path .build-fuzz --product segkit-fuzz \
  -Xswiftc -sanitize=fuzzer -Xswiftc -DLIBFUZZER -Xswiftc -Xclang-linker -Xswiftc -fuse-ld=lld -Xcc -fsanitize=fuzzer-no-link
corpus="fuzz/corpus/$target" crashes="fuzz/crashes/$target"
mkdir -p "$corpus" "$crashes"
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
elif target == "flo":
    with open(f"{out}/seed.flo", "wb") as f:
        f.write(b"PIEH"); np.array([3, 2], np.int32).tofile(f); (np.arange(12, dtype=np.float32) / 4).tofile(f)
elif target in ("png", "jpeg"):
    from PIL import Image
    image = Image.fromarray((np.arange(72).reshape(4, 6, 3) * 3).astype(np.uint8))
    image.save(f"{out}/seed.png"); image.save(f"{out}/seed.jpg", quality=90); image.convert("P").save(f"{out}/seed-palette.png")
PY
if [ "$target" = yaml ]; then cp configs/*.yaml "$corpus"/; fi
if [ "$target" = flowcache ]; then printf '{"method":"dis","preset":"fast"}' > "$corpus/settings.json"; fi
SWIFT_BACKTRACE=enable=no .build-fuzz/release/segkit-fuzz "$target" -max_total_time="$seconds" -rss_limit_mb=4096 -malloc_limit_mb=2048 \
  -timeout=10 -artifact_prefix="$crashes/" "$corpus"
