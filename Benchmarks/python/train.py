# PyTorch's side of the training benchmark: the same images (made by segkit-bench), DeepLab's
# random scale 0.5-2.0 step 0.25, pad and random crop, flip, normalisation, a DataLoader with
# the same number of workers, torchvision's model, cross-entropy on the main and auxiliary
# heads (0.4), backward, SGD (momentum 0.9, weight decay 1e-4), the same threads.
# Usage: train.py [MODEL] [BATCH] [CROP] [STEPS] [WORKERS]
import json
import os
import random
import resource
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

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

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SCALES = [0.5 + 0.25 * i for i in range(7)]


class Folder(Dataset):
    def __init__(self):
        self.names = sorted(n[:-4] for n in os.listdir(os.path.join(root, "images")))

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        name = self.names[i]
        image = torchvision.io.decode_jpeg(torchvision.io.read_file(os.path.join(root, "images", name + ".jpg")))
        label = torch.from_numpy(np.asarray(Image.open(os.path.join(root, "masks", name + ".png"))).copy())[None]
        s = random.choice(SCALES)
        h, w = int(image.shape[1] * s), int(image.shape[2] * s)
        image = TF.resize(image, [h, w], interpolation=v2.InterpolationMode.BILINEAR, antialias=False)
        label = TF.resize(label, [h, w], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        ph, pw = max(0, crop - h), max(0, crop - w)
        if ph or pw:
            image = TF.pad(image, [0, 0, pw, ph], fill=[int(255 * m) for m in MEAN])
            label = TF.pad(label, [0, 0, pw, ph], fill=255)
        y, x = random.randint(0, max(h, crop) - crop), random.randint(0, max(w, crop) - crop)
        image, label = image[:, y:y + crop, x:x + crop], label[:, y:y + crop, x:x + crop]
        if random.random() < 0.5:
            image, label = TF.horizontal_flip(image), TF.horizontal_flip(label)
        image = TF.normalize(TF.to_dtype(image, torch.float32, scale=True), MEAN, STD)
        return image, label[0].long()


torch.manual_seed(0)
kwargs = {} if name.startswith("lraspp") else {"aux_loss": True}
model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **kwargs)
model.train()
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
loader = DataLoader(Folder(), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
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
