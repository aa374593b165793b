// `Benchmarks/xmem.sh`: XMem's inference loop on a moving synthetic sequence, beside the
// PyTorch oracle's XMem (Benchmarks/python/xmem.py) on the same weights and frames.
import Foundation
import SegKitInference

/// The benchmark's frames, the same in Benchmarks/python/xmem.py: a smooth pattern
/// drifting 2 pixels right and 1 down per frame, in normalised units.
func xmemFrame(_ t: Int, height: Int, width: Int) throws -> Tensor {
  let ys = try Tensor.arange(Double(height)).view([1, height, 1]) - Double(t)
  let xs = try Tensor.arange(Double(width)).view([1, 1, width]) - Double(2 * t)
  let channel = try Tensor([0.0, 1.0, 2.0] as [Float], shape: [3, 1, 1])
  return try ((xs * 0.05 + channel).sin() + (ys * 0.07 - channel).cos()) * 0.8
}

/// Box masks of `objects` objects on the first frame, [objects, H, W].
func xmemMasks(objects: Int, height: Int, width: Int) throws -> Tensor {
  try Tensor.stack((0..<objects).map { i in
    let ys = try Tensor.arange(Double(height)).view([height, 1]), xs = try Tensor.arange(Double(width)).view([1, width])
    let top = Double(height) * (0.2 + 0.1 * Double(i)), left = Double(width) * (0.15 + 0.2 * Double(i))
    let inside = try (ys .>= top).to(.float32) * (ys .< top + Double(height) * 0.3).to(.float32)
      * (xs .>= left).to(.float32) * (xs .< left + Double(width) * 0.2).to(.float32)
    return inside
  })
}

/// Seconds per frame over frames 1..<frames (frame 0 brings the masks), peak resident
/// memory, and with SEGKIT_BENCH_CHECKPOINTS=1 the peak after every tenth of the frames
/// (to show that memory stays bounded on long videos). SEGKIT_BENCH_PLAIN=1: no folding,
/// fusion or channels-last.
func xmemBenchmark(weights: String, height: Int, width: Int, frames: Int, objects: Int) throws {
  Torch.keepFreedMemory()
  let environment = ProcessInfo.processInfo.environment
  let network = try XMem.load(contentsOf: URL(fileURLWithPath: weights))
  if environment["SEGKIT_BENCH_PLAIN"] != "1" { try network.optimizeForInference() }
  let processor = try XMemProcessor(network: network)
  // SEGKIT_BENCH_PRECISION=int8: calibrated on frames 0–2 (as XMemSegmenter does), timed from frame 3.
  let int8 = environment["SEGKIT_BENCH_PRECISION"] == "int8"
  let firstTimed = int8 ? 3 : 1
  var checkpoints: [[String: Double]] = []
  let elapsed = try Torch.withInferenceMode { () throws -> Double in
    if int8 { try network.beginConvolutionCalibration() }
    _ = try processor.step(try xmemFrame(0, height: height, width: width), masks: try xmemMasks(objects: objects, height: height, width: width),
                           annotated: Array(1...objects))
    if int8 {
      for t in 1..<firstTimed { _ = try processor.step(try xmemFrame(t, height: height, width: width)) }
      try network.finishConvolutionCalibration()
    }
    return try seconds {
      for t in firstTimed..<frames {
        _ = try processor.step(try xmemFrame(t, height: height, width: width))
        if environment["SEGKIT_BENCH_CHECKPOINTS"] == "1", (t + 1) % max(1, frames / 10) == 0 {
          let sizes = processor.memorySizes
          checkpoints.append(["frame": Double(t + 1), "peak_mib": peakMemoryMiB(), "working": Double(sizes.working),
                              "long_term": Double(sizes.longTerm)])
        }
      }
    }
  }
  let timed = Double(frames - firstTimed)
  var report: [String: Any] = ["seconds_per_frame": elapsed / timed, "frames_per_second": timed / elapsed,
                               "peak_mib": peakMemoryMiB()]
  if !checkpoints.isEmpty { report["checkpoints"] = checkpoints }
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}
