// The Swift side of `Benchmarks/run.sh finetune`: OSVOS's one-shot step as `segkit vos
// segment` runs it (OneShotSegmenter: a copy of the parent, the first frame augmented by
// flip, scale and rotation within its size, the fused output's class-balanced loss per
// pixel, Adam), then segmenting frames, against the same loop in PyTorch
// (Benchmarks/python/finetune.py) at the same size and threads.
import Foundation
import SegKitTraining

/// A frame of smooth noise and an elliptical object mask, the same in both scripts.
func fineTuneFixture(height: Int, width: Int) throws -> (frame: Image, mask: Image) {
  var frame = Image(width: width, height: height, channels: 3), mask = Image(width: width, height: height, channels: 1)
  for y in 0..<height {
    for x in 0..<width {
      let (u, v) = (Double(x) / Double(width), Double(y) / Double(height))
      for c in 0..<3 {
        frame.pixels[(y * width + x) * 3 + c] = UInt8(127.5 + 127.5 * sin(9 * u + 7 * v + Double(c)))
      }
      let (dx, dy) = ((u - 0.5) / 0.25, (v - 0.5) / 0.3)
      mask.pixels[y * width + x] = dx * dx + dy * dy <= 1 ? 1 : 0
    }
  }
  return (frame, mask)
}

/// One untimed step, then `steps` timed fine-tuning steps; then `frames` segmented frames.
func fineTuneBenchmark(model name: String, height: Int, width: Int, steps: Int, frames: Int) throws {
  Torch.keepFreedMemory()
  Torch.manualSeed(0)
  let parent = try StateDict(try ModelZoo.make(name, classes: 1).stateDict())
  let (frame, mask) = try fineTuneFixture(height: height, width: width)
  var settings = FineTuningSettings()
  settings.steps = 1
  _ = try OneShotSegmenter(modelName: name, parent: parent, settings: settings).start(firstFrame: frame, mask: mask)
  settings.steps = steps
  let segmenter = try OneShotSegmenter(modelName: name, parent: parent, settings: settings)
  let tuning = try seconds { _ = try segmenter.start(firstFrame: frame, mask: mask) }
  _ = try segmenter.next(frame)
  let segmenting = try seconds { for _ in 0..<frames { _ = try segmenter.next(frame) } }
  let report = ["steps_per_second": Double(steps) / tuning, "frames_per_second": Double(frames) / segmenting,
                "peak_mib": peakMemoryMiB()]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}
