# PyTorch's and ONNX Runtime's sides of the CPU inference table, one variant per
# process: the median seconds of RUNS passes after a warm-up, 1×3×SIZE×SIZE. MODEL is
# a torchvision segmentation model, or osvos_vgg16 / osvos_resnet18 (OSVOS-PyTorch's
# network, Benchmarks/python/osvos_reference.py).
#   eager        torchvision's model under no_grad (as Benchmarks/python/inference.py)
#   tuned        channels-last weights and input, inference_mode
#   compile      torch.compile (Inductor), channels-last, inference_mode; compiling is not timed
#   onnxruntime  ONNX Runtime 1.31 on torch.onnx's export of the same model (opset 17)
#   onnxruntime-int8  the same export quantised by ONNX Runtime's quantize_static: QDQ,
#                weights int8 per channel, activations uint8, calibrated on 8 random
#                images (speed does not depend on the ranges); quantising is not timed
# Usage: inference_variants.py VARIANT MODEL SIZE RUNS
import json
import os
import sys
import tempfile
import time
import warnings

import torch
import torchvision

variant, name, size, runs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
threads = int(os.environ.get("SEGKIT_BENCH_THREADS", "2"))
torch.set_num_threads(threads)
torch.manual_seed(0)
if name in ("osvos_vgg16", "osvos_resnet18"):
    # OSVOS as its PyTorch release builds it (dense 16-channel transposed convolutions).
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from osvos_reference import OracleOSVOS
    model = OracleOSVOS(encoder=name.removeprefix("osvos_")).eval()
else:
    kwargs = {} if name.startswith("lraspp") else {"aux_loss": True}
    model = getattr(torchvision.models.segmentation, name)(weights=None, weights_backbone=None, num_classes=21, **kwargs).eval()
x = torch.randn(1, 3, size, size)


def median_seconds(run):
    run()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return sorted(times)[runs // 2]


if variant == "eager":
    with torch.no_grad():
        seconds = median_seconds(lambda: model(x))
elif variant in ("tuned", "compile"):
    model = model.to(memory_format=torch.channels_last)
    x = x.contiguous(memory_format=torch.channels_last)
    forward = torch.compile(model) if variant == "compile" else model
    with torch.inference_mode():
        seconds = median_seconds(lambda: forward(x))
elif variant in ("onnxruntime", "onnxruntime-int8"):
    import onnxruntime
    with tempfile.TemporaryDirectory() as folder, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = os.path.join(folder, "model.onnx")
        torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["input"])
        if variant == "onnxruntime-int8":
            from onnxruntime import quantization as q

            class Calibration(q.CalibrationDataReader):
                def __init__(self):
                    self.images = iter([{"input": torch.randn(1, 3, size, size).numpy()} for _ in range(8)])

                def get_next(self):
                    return next(self.images, None)

            # ONNX Runtime's own pre-processing first (shape inference, constants folded), as its guide asks.
            prepared, quantised = os.path.join(folder, "model-prepared.onnx"), os.path.join(folder, "model-int8.onnx")
            q.quant_pre_process(path, prepared)
            q.quantize_static(prepared, quantised, Calibration(), quant_format=q.QuantFormat.QDQ, per_channel=True,
                              activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
            path = quantised
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        feed = {"input": x.numpy()}
        seconds = median_seconds(lambda: session.run(None, feed))
else:
    sys.exit(f"unknown variant {variant}")
print(json.dumps({"seconds": seconds}))
