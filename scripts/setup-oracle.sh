#!/usr/bin/env bash
# Installs the Python oracle the tests compare against: PyTorch and torchvision
# (same torch version as the engine) with their full dependency set, timm (for
# encoders torchvision lacks, e.g. Xception-65), scipy (MATLAB files), onnx and
# ONNX Runtime (to check and run exported models), pycocotools (COCO masks) and
# Selenium (the page in headless Chromium), in a
# project-local virtual environment at .deps/oracle. The stamp names the whole
# pin list, so changing a pin installs what changed into the existing venv.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/versions.sh"
venv="$root/.deps/oracle"
pins=("torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" "safetensors==$SAFETENSORS_VERSION"
  "numpy==$NUMPY_VERSION" "pyyaml==$PYYAML_VERSION" "tensorboard==$TENSORBOARD_VERSION"
  "timm==$TIMM_VERSION" "scipy==$SCIPY_VERSION" "onnx==$ONNX_VERSION" "onnxruntime==$ONNXRUNTIME_VERSION"
  "pycocotools==$PYCOCOTOOLS_VERSION" "selenium==$SELENIUM_VERSION")
stamp="$venv/.installed-$(printf '%s\n' "${pins[@]}" | sha1sum | cut -c1-12)"
if [ -f "$stamp" ]; then echo "oracle: ready in $venv"; exit 0; fi

echo "oracle: installing ${pins[*]} into $venv (about 5.5 GB)"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
# No wheel cache: the CUDA wheels PyPI's torch pulls in would otherwise be kept
# twice on disk (about 3 GB more at the peak; a CI machine ran out of space).
"$venv/bin/python" -m pip install --quiet --no-cache-dir "${pins[@]}"
"$venv/bin/python" -c "import torch, torchvision, timm, scipy, onnx, onnxruntime, pycocotools, selenium; print('oracle: torch', torch.__version__, 'torchvision', torchvision.__version__)"
rm -f "$venv"/.installed-*
touch "$stamp"
