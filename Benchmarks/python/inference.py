# PyTorch eager's side of the inference benchmark (same model, size and runs as segkit-bench).
import json
import os
import resource
import sys
import time

import torch
import torchvision

name = sys.argv[1] if len(sys.argv) > 1 else "deeplabv3_resnet50"
size = int(sys.argv[2]) if len(sys.argv) > 2 else 513
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))
torch.manual_seed(0)
kwargs = {} if name.startswith("lraspp") else {"aux_loss": True}
model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **kwargs).eval()
x = torch.randn(1, 3, size, size)
times = []
with torch.no_grad():
    model(x)
    for _ in range(runs):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
print(json.dumps({"seconds": sorted(times)[runs // 2],
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, sort_keys=True))
