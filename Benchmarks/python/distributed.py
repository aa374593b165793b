# PyTorch's side of the data-parallel benchmark: torchvision's MODEL trained with SGD on
# the synthetic VOC-layout images SegKit made, one process with 2 threads (single) or 1
# thread (single1) and the batch given, or DistributedDataParallel over Gloo (ddp): 2
# processes with 1 thread and half the batch each. Prints images per second (after one warm-up step) and, for DDP, the
# time of one all-reduce of a tensor as large as all the gradients.
# Usage: distributed.py DATA MODEL CLASSES CROP GLOBAL_BATCH STEPS single|single1|ddp PORT
import json
import os
import sys
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import torchvision
from torch.nn.parallel import DistributedDataParallel
from torchvision.io import ImageReadMode, read_image


def load(root, crop):
    names = open(os.path.join(root, "ImageSets/Segmentation/train.txt")).read().split()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(3, 1, 1)
    images, labels = [], []
    for name in names:
        image = read_image(os.path.join(root, "JPEGImages", name + ".jpg"), ImageReadMode.RGB).float() / 255
        label = read_image(os.path.join(root, "SegmentationClass", name + ".png"), ImageReadMode.UNCHANGED)[0].long()
        images.append(((image - mean) / std)[:, :crop, :crop])
        labels.append(label[:crop, :crop])
    return torch.stack(images), torch.stack(labels)


def train(rank, world, args, queue):
    data, model_name, classes, crop, batch, steps, mode, port = args
    torch.set_num_threads(2 if mode == "single" else 1)
    if world > 1:
        dist.init_process_group("gloo", rank=rank, world_size=world, init_method=f"tcp://127.0.0.1:{port}")
    images, labels = load(data, crop)
    torch.manual_seed(0)
    model = getattr(torchvision.models.segmentation, model_name)(weights=None, weights_backbone=None, num_classes=classes)
    model.train()
    if world > 1:
        model = DistributedDataParallel(model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=1e-4)
    per_rank = batch // world
    warmup = 1
    for step in range(warmup + steps):
        if step == warmup:
            if world > 1:
                dist.barrier()
            start = time.perf_counter()
        first = (step * batch + rank * per_rank) % (len(images) - per_rank + 1)
        x, y = images[first:first + per_rank], labels[first:first + per_rank]
        loss = F.cross_entropy(model(x)["out"], y, ignore_index=255)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if world > 1:
        dist.barrier()
    seconds = time.perf_counter() - start
    result = {"images_per_second": steps * batch / seconds}
    if world > 1:
        flat = torch.zeros(sum(p.numel() for p in model.parameters()))
        dist.all_reduce(flat)
        start = time.perf_counter()
        for _ in range(10):
            dist.all_reduce(flat)
        result["allreduce_ms"] = (time.perf_counter() - start) / 10 * 1000
        dist.destroy_process_group()
    if rank == 0:
        queue.put(result)


if __name__ == "__main__":
    data, model_name, classes, crop, batch, steps, mode, port = sys.argv[1:9]
    args = (data, model_name, int(classes), int(crop), int(batch), int(steps), mode, int(port))
    world = 2 if mode == "ddp" else 1
    context = mp.get_context("spawn")
    queue = context.Queue()
    processes = [context.Process(target=train, args=(rank, world, args, queue)) for rank in range(world)]
    for process in processes:
        process.start()
    result = queue.get()
    for process in processes:
        process.join()
    print(json.dumps(result, sort_keys=True))
