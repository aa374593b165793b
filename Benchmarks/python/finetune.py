# PyTorch's side of the fine-tuning benchmark: OSVOS's one-shot step as OSVOS-PyTorch's
# train_online.py runs it, with SegKit's CPU defaults (Adam 1e-4, the balanced loss per
# pixel, the fused output only): each step a random flip, scale 0.75-1.25 and rotation
# ±30° of the first frame within its size (bilinear image, nearest mask), Caffe's BGR
# input, forward, loss, backward, step; then segmenting frames. Same threads as SegKit.
# Usage: finetune.py [osvos_vgg16|osvos_resnet18] [HEIGHT] [WIDTH] [STEPS] [FRAMES]
import copy
import json
import os
import random
import resource
import sys
import time

import torch
import torch.nn as nn
import torchvision.transforms.v2.functional as TF

from osvos_reference import OracleOSVOS

name = sys.argv[1] if len(sys.argv) > 1 else "osvos_vgg16"
height = int(sys.argv[2]) if len(sys.argv) > 2 else 480
width = int(sys.argv[3]) if len(sys.argv) > 3 else 854
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
frames = int(sys.argv[5]) if len(sys.argv) > 5 else 5
torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))


def balanced_loss(logits, labels):
    """OSVOS's class-balanced sigmoid cross-entropy, divided by the pixel count."""
    positive = labels.sum()
    negative = (1 - labels).sum()
    ll = logits * (labels - (logits >= 0).float()) - torch.log1p(torch.exp(logits - 2 * logits * (logits >= 0).float()))
    loss = -(negative / (positive + negative)) * (ll * labels).sum() - (positive / (positive + negative)) * (ll * (1 - labels)).sum()
    return loss / labels.numel()


# The fixture of FineTuneBenchmark.swift: smooth noise and an elliptical mask.
ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float64) / height, torch.arange(width, dtype=torch.float64) / width, indexing="ij")
frame = torch.stack([(127.5 + 127.5 * torch.sin(9 * xs + 7 * ys + c)).to(torch.uint8) for c in range(3)])
mask = ((((xs - 0.5) / 0.25) ** 2 + ((ys - 0.5) / 0.3) ** 2) <= 1).float()[None]
caffe_mean = torch.tensor([104.00699, 116.66877, 122.67892]).view(3, 1, 1)


def normalise(image):
    x = image.float()
    return (x.flip(0) - caffe_mean if name == "osvos_vgg16" else (x / 255 - torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1))


def augmented():
    image, label = frame, mask
    if random.random() < 0.5:
        image, label = image.flip(-1), label.flip(-1)
    angle, scale = random.uniform(-30, 30), random.uniform(0.75, 1.25)
    image = TF.affine(image, angle=angle, translate=[0, 0], scale=scale, shear=[0.0], interpolation=TF.InterpolationMode.BILINEAR)
    label = TF.affine(label, angle=angle, translate=[0, 0], scale=scale, shear=[0.0], interpolation=TF.InterpolationMode.NEAREST)
    return normalise(image)[None], label[None]


def fine_tune(parent, n):
    net = copy.deepcopy(parent)
    net.train()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()  # the parent's statistics, as SegKit keeps them
    optimizer = torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-4)
    for _ in range(n):
        x, y = augmented()
        loss = balanced_loss(net(x)[0], y)
        loss.item()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return net


torch.manual_seed(0)
random.seed(0)
parent = OracleOSVOS(encoder="vgg16" if name == "osvos_vgg16" else "resnet18")
fine_tune(parent, 1)
start = time.perf_counter()
net = fine_tune(parent, steps)
tuning = time.perf_counter() - start
net.eval()
with torch.inference_mode():
    x = normalise(frame)[None]
    (torch.sigmoid(net(x)[0]) > 0.5).to(torch.uint8)
    start = time.perf_counter()
    for _ in range(frames):
        (torch.sigmoid(net(normalise(frame)[None])[0]) > 0.5).to(torch.uint8)
    segmenting = time.perf_counter() - start
print(json.dumps({"steps_per_second": steps / tuning, "frames_per_second": frames / segmenting,
                  "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}, sort_keys=True))
