# PyTorch eager's side of the op-overhead benchmark (same loops as segkit-bench).
import json
import os
import sys
import time

import torch

iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
torch.set_num_threads(int(os.environ.get("SEGKIT_BENCH_THREADS", "2")))
a = torch.rand(16)
b = torch.rand(16)
for _ in range(1000):
    a + b


def per_op_us(fn):
    start = time.perf_counter()
    for _ in range(iterations):
        fn()
    return (time.perf_counter() - start) / iterations * 1e6


print(json.dumps({
    "add_us": per_op_us(lambda: a + b),
    "add_inplace_us": per_op_us(lambda: a.add_(b)),
    "sum_us": per_op_us(lambda: a.sum()),
}, sort_keys=True))
