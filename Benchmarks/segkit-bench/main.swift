// SegKit's side of the benchmarks; Benchmarks/run.sh runs it beside the
// PyTorch script of the same name and prints the ratio.
import Foundation
import SegKitTensor

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

let arguments = CommandLine.arguments.dropFirst()
let threads = Int(ProcessInfo.processInfo.environment["SEGKIT_BENCH_THREADS"] ?? "") ?? 2
try Torch.setThreads(threads)
switch arguments.first {
case "op-overhead":
  try opOverhead(iterations: Int(arguments.dropFirst().first ?? "") ?? 200_000)
default:
  FileHandle.standardError.write("usage: segkit-bench op-overhead [ITERATIONS]\n".data(using: .utf8)!)
  exit(2)
}
