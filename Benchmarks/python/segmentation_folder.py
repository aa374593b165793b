# The PyTorch side's training data for the loader and train benchmarks: the images and
# masks segkit-bench writes, with DeepLab's random scale 0.5-2.0 step 0.25, pad and random
# crop (label padded with 255), horizontal flip, optional colour jitter and normalisation.
import os
import random

import numpy as np
import torch
import torchvision
from PIL import Image
from torch.utils.data import Dataset
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
SCALES = [0.5 + 0.25 * i for i in range(7)]


class SegmentationFolder(Dataset):
    def __init__(self, root, crop, jitter=False):
        self.root, self.crop = root, crop
        self.names = sorted(n[:-4] for n in os.listdir(os.path.join(root, "images")))
        self.jitter = v2.ColorJitter(0.3, 0.3, 0.3, 0.1) if jitter else None

    def __len__(self):
        return len(self.names)

    def __getitem__(self, i):
        name, crop = self.names[i], self.crop
        image = torchvision.io.decode_jpeg(torchvision.io.read_file(os.path.join(self.root, "images", name + ".jpg")))
        label = torch.from_numpy(np.asarray(Image.open(os.path.join(self.root, "masks", name + ".png"))).copy())[None]
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
        if self.jitter is not None:
            image = self.jitter(image)
        image = F.normalize(F.to_dtype(image, torch.float32, scale=True), MEAN, STD)
        return image, label[0].long()
