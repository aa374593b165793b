# torchvision's side of the loader benchmark: the same files (made by segkit-bench), the same
# transforms (decode, DeepLab's random scale 0.5-2.0 step 0.25, pad and random crop, flip,
# colour jitter, normalisation) and the same number of DataLoader workers.
# Usage: loader.py [WORKERS] [IMAGES] [BATCH] [CROP]
import json
import os
import random
import sys
import tempfile
import time

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

workers = int(sys.argv[1]) if len(sys.argv) > 1 else 4
images = int(sys.argv[2]) if len(sys.argv) > 2 else 200
batch = int(sys.argv[3]) if len(sys.argv) > 3 else 8
crop = int(sys.argv[4]) if len(sys.argv) > 4 else 321
epochs = 3
torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))
root = os.path.join(tempfile.gettempdir(), f"segkit-loader-bench-{images}")
if not os.path.exists(os.path.join(root, "complete")):
    sys.exit(f"{root}: missing; segkit-bench loader makes it (run Benchmarks/run.sh loader)")

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SCALES = [0.5 + 0.25 * i for i in range(7)]


class Folder(Dataset):
    def __init__(self):
        self.names = sorted(n[:-4] for n in os.listdir(os.path.join(root, "images")))
        self.jitter = v2.ColorJitter(0.3, 0.3, 0.3, 0.1)

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        name = self.names[i]
        image = torchvision.io.decode_jpeg(torchvision.io.read_file(os.path.join(root, "images", name + ".jpg")))
        label = torch.from_numpy(np.asarray(Image.open(os.path.join(root, "masks", name + ".png"))).copy())[None]
        s = random.choice(SCALES)
        h, w = int(image.shape[1] * s), int(image.shape[2] * s)
        image = F.resize(image, [h, w], interpolation=v2.InterpolationMode.BILINEAR, antialias=False)
        label = F.resize(label, [h, w], interpolation=v2.InterpolationMode.NEAREST_EXACT)
        ph, pw = max(0, crop - h), max(0, crop - w)
        if ph or pw:
            image = F.pad(image, [0, 0, pw, ph], fill=[int(255 * m) for m in MEAN])
            label = F.pad(label, [0, 0, pw, ph], fill=255)
        y, x = random.randint(0, max(h, crop) - crop), random.randint(0, max(w, crop) - crop)
        image, label = image[:, y:y + crop, x:x + crop], label[:, y:y + crop, x:x + crop]
        if random.random() < 0.5:
            image, label = F.horizontal_flip(image), F.horizontal_flip(label)
        image = self.jitter(image)
        image = F.normalize(F.to_dtype(image, torch.float32, scale=True), MEAN, STD)
        return image, label[0].long()


loader = DataLoader(Folder(), batch_size=batch, shuffle=True, num_workers=workers, drop_last=True,
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
