# Where inference time goes: SegKit's pass (a Chrome trace from libtorch's profiler,
# written by `segkit-bench profile`) beside ONNX Runtime's on SegKit's export of the
# same model (its own profiler), by kind of operation, self time in milliseconds; then
# the convolutions by shape (input, weight) where SegKit spends the most beyond ORT.
# Usage: profile_compare.py SEGKIT_TRACE.json MODEL.onnx SIZE
import json
import os
import sys

import numpy as np
import onnxruntime

KINDS = [  # (kind, SegKit operation names (aten::…), ONNX Runtime op types)
    ("convolution", {"mkldnn::_convolution_pointwise", "mkldnn_convolution", "_slow_conv2d_forward", "thnn_conv2d", "_mkldnn_convolution",
                     "slow_conv_transpose2d", "mkldnn_convolution_transpose", "_nnpack_spatial_convolution",
                     "slow_conv_dilated2d"}, {"Conv", "FusedConv", "ConvTranspose", "NhwcFusedConv", "QLinearConv"}),
    ("activation, arithmetic", {"add", "add_", "relu", "relu_", "clamp_min", "clamp_min_", "clamp", "clamp_", "hardswish",
                                "hardswish_", "hardsigmoid", "sigmoid", "mul", "mul_", "div", "sub", "hardtanh", "hardtanh_",
                                "leaky_relu", "tanh"},
     {"Add", "Relu", "Clip", "HardSwish", "HardSigmoid", "Sigmoid", "Mul", "Div", "Sub", "LeakyRelu", "Tanh"}),
    ("resize", {"upsample_bilinear2d", "upsample_nearest2d", "_upsample_bilinear2d_aa", "upsample_bicubic2d"}, {"Resize"}),
    ("pooling", {"max_pool2d_with_indices", "max_pool2d", "avg_pool2d", "adaptive_avg_pool2d", "_adaptive_avg_pool2d",
                 "mean", "mkldnn_max_pool2d"}, {"MaxPool", "AveragePool", "GlobalAveragePool", "ReduceMean"}),
    ("concatenation, copies, layout", {"cat", "copy_", "contiguous", "clone", "to", "_to_copy", "reflection_pad2d",
                                       "replication_pad2d", "constant_pad_nd", "empty_like", "empty"},
     {"Concat", "Pad", "Slice", "Transpose", "Reorder", "ReorderInput", "ReorderOutput", "Identity", "Reshape", "Cast"}),
]


def kind_of(name, column):
    for kind, segkit, ort in KINDS:
        if name in (segkit if column == 0 else ort):
            return kind
    return "other"


def segkit_self_times(path):
    """Self time per aten operation: an operation's duration less its children's."""
    with open(path) as f:
        trace = json.load(f)
    events = [e for e in trace.get("traceEvents", []) if e.get("ph") == "X" and e.get("cat") == "cpu_op"]
    events.sort(key=lambda e: (e["ts"], -e["dur"]))
    totals, stack = {}, []
    for event in events:
        while stack and stack[-1]["ts"] + stack[-1]["dur"] <= event["ts"]:
            stack.pop()
        if stack:
            stack[-1]["children"] = stack[-1].get("children", 0) + event["dur"]
        stack.append(event)
    for event in events:
        name = event["name"].removeprefix("aten::")
        totals[name] = totals.get(name, 0) + event["dur"] - event.get("children", 0)
    return {name: us / 1000 for name, us in totals.items()}


CONVOLUTIONS = ("mkldnn::_convolution_pointwise", "aten::mkldnn_convolution", "aten::_slow_conv2d_forward")


def segkit_convolutions(path):
    """Convolution time by (input shape, weight shape); a fused residual addition
    passes the residual second and the weight third."""
    with open(path) as f:
        trace = json.load(f)
    totals = {}
    for event in trace.get("traceEvents", []):
        if event.get("ph") != "X" or event.get("name") not in CONVOLUTIONS:
            continue
        dims = event.get("args", {}).get("Input Dims") or []
        if len(dims) < 3:
            continue
        weight = dims[2] if len(dims[1]) == 4 and len(dims[2]) == 4 else dims[1]
        key = (tuple(dims[0]), tuple(weight))
        totals[key] = totals.get(key, 0) + event["dur"] / 1000
    return totals


def onnxruntime_times(path, size):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = int(os.environ.get("SEGKIT_BENCH_THREADS", "2"))
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((1, 3, size, size), dtype=np.float32)
    session.run(None, {"input": x})
    session.end_profiling()  # the warm-up is not profiled
    options.enable_profiling = True
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    session.run(None, {"input": x})
    session.run(None, {"input": x})
    with open(session.end_profiling()) as f:
        events = json.load(f)
    nodes = [e for e in events if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    # The second run only: the first pays for allocations.
    half = len(nodes) // 2
    totals, convolutions = {}, {}
    for event in nodes[half:]:
        op = event["args"].get("op_name", "?")
        totals[op] = totals.get(op, 0) + event["dur"] / 1000
        shapes = event["args"].get("input_type_shape") or []
        if op in KINDS[0][2] and len(shapes) >= 2:
            key = tuple(tuple(next(iter(shape.values()))) for shape in shapes[:2])
            convolutions[key] = convolutions.get(key, 0) + event["dur"] / 1000
    return totals, convolutions


segkit = segkit_self_times(sys.argv[1])
ort, ort_convolutions = onnxruntime_times(sys.argv[2], int(sys.argv[3]))
rows = {}
for column, times in ((0, segkit), (1, ort)):
    for name, ms in times.items():
        kind = kind_of(name, column)
        rows.setdefault(kind, [0.0, 0.0])[column] += ms
print(f"{'operations':<32}{'SegKit ms':>11}{'ORT ms':>9}{'ratio':>7}")
order = [k for k, _, _ in KINDS] + ["other"]
for kind in order:
    s, o = rows.get(kind, [0.0, 0.0])
    print(f"{kind:<32}{s:>11.1f}{o:>9.1f}{(s / o if o else float('nan')):>7.2f}")
total = [sum(r[0] for r in rows.values()), sum(r[1] for r in rows.values())]
print(f"{'total':<32}{total[0]:>11.1f}{total[1]:>9.1f}{total[0] / total[1]:>7.2f}")
others = sorted(((ms, n) for n, ms in segkit.items() if kind_of(n, 0) == "other"), reverse=True)[:6]
print("SegKit's largest other operations:", ", ".join(f"{n} {ms:.1f}" for ms, n in others))
others = sorted(((ms, n) for n, ms in ort.items() if kind_of(n, 1) == "other"), reverse=True)[:6]
print("ONNX Runtime's largest other operations:", ", ".join(f"{n} {ms:.1f}" for ms, n in others))
segkit_by_shape = segkit_convolutions(sys.argv[1])
print(f"\n{'convolutions by shape (input, weight)':<60}{'SegKit ms':>11}{'ORT ms':>9}")
gaps = sorted(set(segkit_by_shape) | set(ort_convolutions),
              key=lambda k: ort_convolutions.get(k, 0) - segkit_by_shape.get(k, 0))
for key in gaps[:8]:
    name = f"{list(key[0])} * {list(key[1])}"
    print(f"{name:<60}{segkit_by_shape.get(key, 0):>11.1f}{ort_convolutions.get(key, 0):>9.1f}")
