// `Benchmarks/run.sh dvs MODEL HEIGHT WIDTH FRAMES`: what one frame costs on each of
// DVSNet's two paths with SegKit's dynamic key-frame segmenter, on synthetic street
// frames resized to HEIGHT×WIDTH: the segmentation path (MODEL on the whole frame)
// and the flow path (the thin FlowNetS with its scale field, the decision network
// and the warp). Their ratio bounds the speed-up any target can give. SegKit only:
// DVSNet's own code is TensorFlow 1.4.
import Foundation
import SegKitData
import SegKitInference

func dvsBenchmark(model name: String, height: Int, width: Int, frames: Int) throws {
  Torch.manualSeed(0)
  let snippet = try Synthetic.streetSnippet(seed: 0, split: "bench", index: 0, frames: frames + 1, width: width, height: height)
  let segmentation = try ImageSegmenter(model: try ModelZoo.make(name, classes: 19))
  let flow = try FlowNetS(widths: .thin, scaleClasses: 19)
  let decision = try DecisionNetwork(featureChannels: 384)
  func perFrame(_ policy: DynamicKeyFrameSegmenter.Policy) throws -> Double {
    let segmenter = try DynamicKeyFrameSegmenter(segmenter: segmentation, flowNetwork: flow, decision: decision, grid: .whole, policy: policy)
    _ = try segmenter.step(snippet.frames[0])  // the first key, and warm-up
    _ = try segmenter.step(snippet.frames[1])
    segmenter.reset()
    _ = try segmenter.step(snippet.frames[0])
    let time = try seconds { for frame in snippet.frames.dropFirst() { _ = try segmenter.step(frame) } }
    return time / Double(frames)
  }
  let segmentationPath = try perFrame(.everyFrame)
  // A target no prediction falls below: every frame after the first takes the flow path, decision included.
  let flowPath = try perFrame(.target(-Double.greatestFiniteMagnitude, dynamic: false))
  let report = ["segmentation_path_s": segmentationPath, "flow_path_s": flowPath, "speedup_bound": segmentationPath / flowPath]
  let json = try JSONSerialization.data(withJSONObject: report, options: [.sortedKeys])
  print(String(decoding: json, as: UTF8.self))
}

