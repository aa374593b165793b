# ONNX Runtime's side of the export benchmark: the ONNX file SegKit wrote for MODEL at
# SIZE×SIZE, run on the CPU with the same threads, after one warm-up pass; the median
# of RUNS passes. Usage: onnxruntime_inference.py FILE SIZE RUNS
import json
import os
import sys
import time

import numpy as np
import onnxruntime

path, size, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
threads = int(os.environ.get("SEGKIT_BENCH_THREADS", "2"))
options = onnxruntime.SessionOptions()
options.intra_op_num_threads = threads
options.inter_op_num_threads = 1
session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
session.run(None, {"input": x})
times = []
for _ in range(runs):
    start = time.perf_counter()
    session.run(None, {"input": x})
    times.append(time.perf_counter() - start)
print(json.dumps({"seconds": sorted(times)[runs // 2]}))
