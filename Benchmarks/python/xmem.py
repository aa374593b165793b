"""The PyTorch side of Benchmarks/xmem.sh: the oracle's XMem (xmem_reference.py, written
from XMem's definitions) over the same moving synthetic frames as `segkit-bench xmem`.

Usage: xmem.py WEIGHTS HEIGHT WIDTH FRAMES OBJECTS
Writes WEIGHTS (random weights, XMem's keys, torch.save) when it does not exist, then
prints {"seconds_per_frame", "frames_per_second", "peak_mib"} as JSON.
"""
import json
import os
import resource
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from xmem_reference import OracleXMem, OracleXMemProcessor, randomize  # noqa: E402


def frame(t, height, width):
    ys = torch.arange(height, dtype=torch.float32).view(1, height, 1) - t
    xs = torch.arange(width, dtype=torch.float32).view(1, 1, width) - 2 * t
    channel = torch.tensor([0.0, 1.0, 2.0]).view(3, 1, 1)
    return ((xs * 0.05 + channel).sin() + (ys * 0.07 - channel).cos()) * 0.8


def masks(objects, height, width):
    ys = torch.arange(height, dtype=torch.float32).view(height, 1)
    xs = torch.arange(width, dtype=torch.float32).view(1, width)
    out = []
    for i in range(objects):
        top, left = height * (0.2 + 0.1 * i), width * (0.15 + 0.2 * i)
        out.append(((ys >= top) & (ys < top + height * 0.3) & (xs >= left) & (xs < left + width * 0.2)).float())
    return torch.stack(out)


def main():
    weights, height, width, frames, objects = sys.argv[1], *map(int, sys.argv[2:6])
    torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))
    net = OracleXMem()
    if os.path.exists(weights):
        net.load_state_dict(torch.load(weights, map_location="cpu"))
    else:
        randomize(net, 0)
        torch.save(net.state_dict(), weights)
    net.eval()
    processor = OracleXMemProcessor(net)
    labels = list(range(1, objects + 1))
    with torch.inference_mode():
        processor.set_all_labels(labels)
        processor.step(frame(0, height, width), masks(objects, height, width), labels)
        start = time.perf_counter()
        for t in range(1, frames):
            processor.step(frame(t, height, width))
        elapsed = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"seconds_per_frame": elapsed / (frames - 1), "frames_per_second": (frames - 1) / elapsed,
                      "peak_mib": peak}, sort_keys=True))


if __name__ == "__main__":
    main()
