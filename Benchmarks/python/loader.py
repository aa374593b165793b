# torchvision's side of the loader benchmark: the same files (made by segkit-bench), the same
# transforms (decode, DeepLab's random scale 0.5-2.0 step 0.25, pad and random crop, flip,
# colour jitter, normalisation) and the same number of DataLoader workers.
# Usage: loader.py [WORKERS] [IMAGES] [BATCH] [CROP]
import json
import os
import sys
import tempfile
import time

import torch
from torch.utils.data import DataLoader

from segmentation_folder import SegmentationFolder

workers = int(sys.argv[1]) if len(sys.argv) > 1 else 4
images = int(sys.argv[2]) if len(sys.argv) > 2 else 200
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 8
crop = int(sys.argv[4]) if len(sys.argv) > 4 else 321
epochs = 3
torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))
root = os.path.join(tempfile.gettempdir(), f"segkit-loader-bench-{images}")
if not os.path.exists(os.path.join(root, "complete")):
    sys.exit(f"{root}: missing; segkit-bench loader makes it (run Benchmarks/run.sh loader)")

loader = DataLoader(SegmentationFolder(root, crop, jitter=True), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                    persistent_workers=workers > 0)
times = []
for epoch in range(epochs + 1):
    start = time.perf_counter()
    for _ in loader:
        pass
    if epoch > 0:
        times.append(time.perf_counter() - start)
seconds = sorted(times)[len(times) // 2]
steps = len(loader)
print(json.dumps({"ms_per_image": seconds / (steps * batch) * 1e3, "ms_per_batch": seconds / steps * 1e3}, sort_keys=True))
