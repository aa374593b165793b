"""PyTorch's own int8 convolution against float32 on XMem's convolution shapes, 2 threads.

    .deps/oracle/bin/python Benchmarks/python/int8_conv.py [ENGINE]   (fbgemm, x86 or onednn; default x86)

Prints, per shape, float32 (channels-last) and the quantised convolution alone, with the
input's quantisation, and with the output's dequantisation too (milliseconds, mean of 3
after one warm-up). A check of whether int8 can pay on these shapes on this CPU at all.
"""
import sys
import time

import torch
import torch.ao.nn.quantized as nnq

SHAPES = [  # (what, batch, in, out, kernel, height, width): 480x864 frames, two objects
    ("decoder 8->4 block, 3x3 at stride 4", 2, 256, 256, 3, 120, 216),
    ("decoder 16->8 block, 3x3 at stride 8", 2, 512, 256, 3, 60, 108),
    ("decoder fusion conv2, 3x3 at stride 16", 2, 512, 512, 3, 30, 54),
    ("key encoder layer3, 3x3 at stride 16", 1, 256, 256, 3, 30, 54),
    ("a 1x1 1024->256 at 60x108", 1, 1024, 256, 1, 60, 108),
]


def mean_seconds(body, runs=3):
    body()
    start = time.perf_counter()
    for _ in range(runs):
        body()
    return (time.perf_counter() - start) / runs


def main():
    torch.set_num_threads(2)
    torch.backends.quantized.engine = sys.argv[1] if len(sys.argv) > 1 else "x86"
    print(f"engine {torch.backends.quantized.engine}, torch {torch.__version__}")
    with torch.inference_mode():
        for what, batch, cin, cout, k, h, w in SHAPES:
            x = torch.randn(batch, cin, h, w).contiguous(memory_format=torch.channels_last)
            conv = torch.nn.Conv2d(cin, cout, k, padding=k // 2).eval()
            quantised = nnq.Conv2d(cin, cout, k, padding=k // 2)
            scales = conv.weight.abs().amax(dim=(1, 2, 3)) / 127
            weight = torch.quantize_per_channel(conv.weight, scales, torch.zeros(cout, dtype=torch.long), 0, torch.qint8)
            quantised.set_weight_bias(weight, conv.bias)
            quantised.scale, quantised.zero_point = 0.05, 64
            xq = torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)
            times = [
                mean_seconds(lambda: conv(x)),
                mean_seconds(lambda: quantised(xq)),
                mean_seconds(lambda: quantised(torch.quantize_per_tensor(x, 0.05, 64, torch.quint8))),
                mean_seconds(lambda: quantised(torch.quantize_per_tensor(x, 0.05, 64, torch.quint8)).dequantize()),
            ]
            print(f"{what}: float32 {times[0] * 1e3:.0f} ms, int8 {times[1] * 1e3:.0f}, "
                  f"+ quantise {times[2] * 1e3:.0f}, + dequantise {times[3] * 1e3:.0f}")


if __name__ == "__main__":
    main()
