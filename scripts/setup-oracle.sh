#!/usr/bin/env bash
# Installs the Python oracle the tests compare against: PyTorch and torchvision
# (same torch version as the engine) with their full dependency set, in a
# project-local virtual environment at .deps/oracle.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
source "$root/scripts/versions.sh"
venv="$root/.deps/oracle"
stamp="$venv/.installed-$TORCH_VERSION-$TORCHVISION_VERSION"
if [ -f "$stamp" ]; then echo "oracle: ready in $venv"; exit 0; fi

echo "oracle: installing torch $TORCH_VERSION + torchvision $TORCHVISION_VERSION into $venv (about 5 GB)"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet \
  "torch==$TORCH_VERSION" "torchvision==$TORCHVISION_VERSION" \
  "safetensors==$SAFETENSORS_VERSION" "numpy==$NUMPY_VERSION" \
  "tensorboard==$TENSORBOARD_VERSION" "pyyaml==$PYYAML_VERSION"
"$venv/bin/python" -c "import torch, torchvision; print('oracle: torch', torch.__version__, 'torchvision', torchvision.__version__)"
touch "$stamp"
