# Pinned versions of everything SegKit installs. Sourced by the other scripts.
TORCH_VERSION=2.15.0
TORCHVISION_VERSION=0.29.2
CUDA_RUNTIME_VERSION=13.2.86   # what torch 2.15's cuda-toolkit 13.2.2 pins; libtorch_cpu links libcudart.so.13
CUDA_CUPTI_VERSION=13.2.86     # and libcupti.so.13
SAFETENSORS_VERSION=0.8.0
NUMPY_VERSION=2.4.6
TENSORBOARD_VERSION=2.21.0
PYYAML_VERSION=6.0.3
TIMM_VERSION=1.0.31            # oracle only: reference for encoders torchvision lacks (Xception-65)
SCIPY_VERSION=1.17.1           # oracle only: writes MATLAB files (SBD) for the tests
ONNX_VERSION=1.23.2            # oracle only: checks exported models (onnx.checker)
ONNXRUNTIME_VERSION=1.31.1     # oracle only: runs exported models
PYCOCOTOOLS_VERSION=2.0.10     # oracle only: decodes the service's COCO run-length masks
SELENIUM_VERSION=4.38.0        # oracle only: drives headless Chromium through the page
