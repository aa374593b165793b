// `Benchmarks/run.sh maskrnn`: MaskRNN's recurrent inference (both streams over VGG16,
// the localiser, DIS flow to the previous and the next frame) on a moving synthetic
// sequence, with the share of time spent in flow, beside OSVOS's per-frame cost on the
// same frames. SegKit only: no reference implementation of MaskRNN's inference exists.
import Foundation
import SegKitInference
import SegKitTraining

func maskRNNBenchmark(height: Int, width: Int, frames: Int) throws {
  Torch.keepFreedMemory()
  Torch.manualSeed(0)
  let (first, mask) = try fineTuneFixture(height: height, width: width)
  // The fixture's texture rolled sideways by 3 pixels a frame.
  let sequence = (0..<frames).map { t -> Image in
    var frame = first
    for y in 0..<height {
      for x in 0..<width {
        let source = (x - 3 * t % width + width) % width
        for c in 0..<3 { frame.pixels[(y * width + x) * 3 + c] = first.pixels[(y * width + source) * 3 + c] }
      }
    }
    return frame
  }
  let segmenter = try MaskRNNSegmenter(model: try MaskRNN(encoder: "vgg16"))
  _ = try segmenter.segment(Array(sequence.prefix(2)), firstMask: mask)  // warm-up
  let before = (segmenter.flowSeconds, segmenter.networkSeconds)
  let total = try seconds { _ = try segmenter.segment(sequence, firstMask: mask) }
  let flow = segmenter.flowSeconds - before.0
  let network = try ModelZoo.make("osvos_vgg16", classes: 1)
  let osvos = try ImageSegmenter(model: network, device: .cpu, normalization: network.inputNormalization)
  _ = try osvos.labels(first)
  let osvosTime = try seconds { for frame in sequence.dropFirst() { _ = try osvos.labels(frame) } }
  let report = ["maskrnn_frames_per_second": Double(frames - 1) / total, "flow_share": flow / total,
                "osvos_frames_per_second": Double(frames - 1) / osvosTime, "peak_mib": peakMemoryMiB()]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}
