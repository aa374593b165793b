# PyTorch's side of the training benchmark: the same images (made by segkit-bench), DeepLab's
# random scale 0.5-2.0 step 0.25, pad and random crop, flip, normalisation, a DataLoader with
# the same number of workers, torchvision's model, cross-entropy on the main and auxiliary
# heads (0.4), backward, SGD (momentum 0.9, weight decay 1e-4), the same threads.
# Usage: train.py [MODEL] [BATCH] [CROP] [STEPS] [WORKERS]
import json
import os
import resource
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
import torchvision
from torch.utils.data import DataLoader

from segmentation_folder import SegmentationFolder

name = sys.argv[1] if len(sys.argv) > 1 else "deeplabv3_resnet50"
batch = int(sys.argv[2]) if len(sys.argv) > 2 else 4
crop = int(sys.argv[3]) if len(sys.argv) > 3 else 256
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
workers = int(sys.argv[5]) if len(sys.argv) > 5 else 2
warmup = 1
torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))
root = os.path.join(tempfile.gettempdir(), "segkit-loader-bench-40")
if not os.path.exists(os.path.join(root, "complete")):
    sys.exit(f"{root}: missing; segkit-bench train makes it (run Benchmarks/run.sh train)")

torch.manual_seed(0)
kwargs = {} if name.startswith("lraspp") else {"aux_loss": True}
model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **kwargs)
model.train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
loader = DataLoader(SegmentationFolder(root, crop, jitter=False), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
                    persistent_workers=workers > 0)
batches = iter(loader)
for step in range(warmup + steps):
    if step == warmup:
        start = time.perf_counter()
    try:
        x, y = next(batches)
    except StopIteration:
        batches = iter(loader)
        x, y = next(batches)
    out = model(x)
    loss = F.cross_entropy(out["out"], y, ignore_index=255)
    if "aux" in out:
        loss = loss + F.cross_entropy(out["aux"], y, ignore_index=255) * 0.4
    loss.item()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
seconds = time.perf_counter() - start
print(json.dumps({"images_per_second": steps * batch / seconds, "ms_per_image": seconds / (steps * batch) * 1e3,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, sort_keys=True))
