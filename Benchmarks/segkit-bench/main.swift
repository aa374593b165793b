// SegKit's side of the benchmarks; Benchmarks/run.sh runs it beside the
// PyTorch script of the same name and prints the ratio.
import Foundation
import SegKitModels

func seconds(_ body: () throws -> Void) rethrows -> Double {
  let start = DispatchTime.now().uptimeNanoseconds
  try body()
  return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

/// Per-op overhead: many adds on 16-element tensors, where the arithmetic is
/// negligible and the cost is dispatch, allocation and the language boundary.
func opOverhead(iterations: Int) throws {
  let a = try Tensor.rand([16])
  let b = try Tensor.rand([16])
  for _ in 0..<1000 { _ = try a + b }  // warm-up
  let outOfPlace = try seconds { for _ in 0..<iterations { _ = try a + b } }
  let inPlace = try seconds { for _ in 0..<iterations { try a.add_(b) } }
  let reduction = try seconds { for _ in 0..<iterations { _ = try a.sum() } }
  let report: [String: Double] = [
    "add_us": outOfPlace / Double(iterations) * 1e6,
    "add_inplace_us": inPlace / Double(iterations) * 1e6,
    "sum_us": reduction / Double(iterations) * 1e6,
  ]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}

/// Peak resident memory of this process in MiB (Linux reports ru_maxrss in KiB).
func peakMemoryMiB() -> Double {
  var usage = rusage()
  #if os(Linux)
  getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage)
  #else
  getrusage(RUSAGE_SELF, &usage)
  #endif
  return Double(usage.ru_maxrss) / 1024
}

/// CPU inference of a zoo model on one random 3×size×size image: the median of
/// `runs` timed passes after one warm-up pass, on SegKit's fast path (inference
/// mode, batch norm folded, channels-last) unless SEGKIT_BENCH_PLAIN=1.
func inference(model name: String, size: Int, runs: Int) throws {
  Torch.manualSeed(0)
  let model = try ModelZoo.make(name, classes: classes(of: name))
  let x = try Tensor.randn([1, 3, size, size])
  try prepare(model, sample: x)
  var times: [Double] = []
  try Torch.withInferenceMode {
    _ = try model(x)
    for _ in 0..<runs { times.append(try seconds { _ = try model(x) }) }
  }
  var report: [String: Any] = ["seconds": times.sorted()[runs / 2], "peak_mib": peakMemoryMiB()]
  if let network = model as? Module, !network.kernelMeasurements.isEmpty {
    report["kernels"] = network.kernelMeasurements.map {
      ["layer": $0.layer, "input": $0.inputShape, "out_channels": $0.outputChannels, "onednn_ms": $0.oneDNNSeconds * 1e3,
       "winograd_ms": $0.winogradSeconds * 1e3, "int8": $0.int8, "chosen": $0.chosen.rawValue] as [String: Any]
    }
  }
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}

/// SegKit's default inference path; SEGKIT_BENCH_PLAIN=1: the plain one (evaluation
/// mode only); SEGKIT_BENCH_UNFUSED=1: the default path without fused activations
/// (batch norm folded, channels-last), to show what the fusion buys;
/// SEGKIT_BENCH_PRECISION=bf16 or int8: the default path at that precision (int8
/// calibrated on `sample`: the speed does not depend on the ranges);
/// SEGKIT_BENCH_KERNELS=measured: each 3×3 convolution on the faster of oneDNN (fp32
/// or int8) and NNPACK's Winograd (measured in the warm-up pass; the JSON lists them).
func prepare(_ model: any SegmentationNetwork, sample: Tensor) throws {
  model.eval()
  let environment = ProcessInfo.processInfo.environment
  guard environment["SEGKIT_BENCH_PLAIN"] != "1" else { return }
  if environment["SEGKIT_BENCH_KEEP"] != "0" { Torch.keepFreedMemory() }
  let precision = InferencePrecision(rawValue: environment["SEGKIT_BENCH_PRECISION"] ?? "fp32") ?? .fp32
  try model.optimizeForInference(
    precision: precision, calibration: [sample], measuringKernels: environment["SEGKIT_BENCH_KERNELS"] == "measured")
  if environment["SEGKIT_BENCH_UNFUSED"] == "1" {
    model.train()  // drops the folding, the fusion and the depthwise upsampling; the channels-last layout stays
    model.eval()
    try model.foldBatchNorm()
    try model.useDepthwiseDiagonals()
  }
}

/// 21 (Pascal VOC), or 1 for the video object networks, which have one output channel.
func classes(of model: String) -> Int { model.hasPrefix("osvos") || model.hasPrefix("maskrnn") ? 1 : 21 }

/// One profiled pass of `inference` (after a warm-up), its operations written as a
/// Chrome trace by libtorch's profiler, for Benchmarks/profile.sh.
func profileInference(model name: String, size: Int, trace: String) throws {
  Torch.manualSeed(0)
  let model = try ModelZoo.make(name, classes: classes(of: name))
  let x = try Tensor.randn([1, 3, size, size])
  try prepare(model, sample: x)
  try Torch.withInferenceMode {
    _ = try model(x)
    let elapsed: Double = try Torch.profile(writingTraceTo: URL(fileURLWithPath: trace)) { try seconds { _ = try model(x) } }
    print(String(decoding: try JSONSerialization.data(withJSONObject: ["seconds": elapsed]), as: UTF8.self))
  }
}

let arguments = CommandLine.arguments.dropFirst()
let threads = Int(ProcessInfo.processInfo.environment["SEGKIT_BENCH_THREADS"] ?? "") ?? 2
try Torch.setThreads(threads)
switch arguments.first {
case "op-overhead":
  try opOverhead(iterations: Int(arguments.dropFirst().first ?? "") ?? 200_000)
case "inference":
  let rest = Array(arguments.dropFirst())
  try inference(model: rest.first ?? "deeplabv3_resnet50", size: rest.count > 1 ? Int(rest[1]) ?? 513 : 513,
                runs: rest.count > 2 ? Int(rest[2]) ?? 3 : 3)
case "profile":
  let rest = Array(arguments.dropFirst())
  guard rest.count == 3, let size = Int(rest[1]) else {
    FileHandle.standardError.write("usage: segkit-bench profile MODEL SIZE TRACE.json\n".data(using: .utf8)!)
    exit(2)
  }
  try profileInference(model: rest[0], size: size, trace: rest[2])
case "loader":
  let numbers = arguments.dropFirst().map { Int($0) }
  let value = { (i: Int, fallback: Int) in numbers.count > i ? numbers[i] ?? fallback : fallback }
  try loaderBenchmark(workers: value(0, 4), images: value(1, 200), batch: value(2, 8), crop: value(3, 321))
case "train":
  let rest = Array(arguments.dropFirst())
  let number = { (i: Int, fallback: Int) in rest.count > i ? Int(rest[i]) ?? fallback : fallback }
  try trainBenchmark(model: rest.first ?? "deeplabv3_resnet50", batch: number(1, 4), crop: number(2, 256),
                     steps: number(3, 5), workers: number(4, 2))
case "finetune":
  let rest = Array(arguments.dropFirst())
  let number = { (i: Int, fallback: Int) in rest.count > i ? Int(rest[i]) ?? fallback : fallback }
  try fineTuneBenchmark(model: rest.first ?? "osvos_vgg16", height: number(1, 480), width: number(2, 854),
                        steps: number(3, 5), frames: number(4, 5))
case "maskrnn":
  let numbers = arguments.dropFirst().map { Int($0) }
  let value = { (i: Int, fallback: Int) in numbers.count > i ? numbers[i] ?? fallback : fallback }
  try maskRNNBenchmark(height: value(0, 480), width: value(1, 854), frames: value(2, 10))
case "dvs":
  let rest = Array(arguments.dropFirst())
  let number = { (i: Int, fallback: Int) in rest.count > i ? Int(rest[i]) ?? fallback : fallback }
  try dvsBenchmark(model: rest.first ?? "deeplabv3plus_resnet50", height: number(1, 512), width: number(2, 1024), frames: number(3, 10))
case "xmem":
  let rest = Array(arguments.dropFirst())
  let number = { (i: Int, fallback: Int) in rest.count > i ? Int(rest[i]) ?? fallback : fallback }
  guard let weights = rest.first else {
    FileHandle.standardError.write("usage: segkit-bench xmem WEIGHTS [HEIGHT] [WIDTH] [FRAMES] [OBJECTS]\n".data(using: .utf8)!)
    exit(2)
  }
  try xmemBenchmark(weights: weights, height: number(1, 480), width: number(2, 854), frames: number(3, 10), objects: number(4, 2))
default:
  FileHandle.standardError.write(
    "usage: segkit-bench op-overhead [ITERATIONS] | inference MODEL [SIZE] [RUNS] | profile MODEL SIZE TRACE | loader [WORKERS] [IMAGES] [BATCH] [CROP] | train [MODEL] [BATCH] [CROP] [STEPS] [WORKERS] | finetune [MODEL] [HEIGHT] [WIDTH] [STEPS] [FRAMES] | maskrnn [HEIGHT] [WIDTH] [FRAMES] | dvs [MODEL] [HEIGHT] [WIDTH] [FRAMES] | xmem WEIGHTS [HEIGHT] [WIDTH] [FRAMES] [OBJECTS]\n"
      .data(using: .utf8)!)
  exit(2)
}
