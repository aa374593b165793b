import Foundation
@testable import SegKitTraining
import SegKitTestSupport
import XCTest

/// MaskRNN's validation scores each readout the ablation compares (teacher-forced),
/// not only its output.
final class MaskPropagationValidationTests: XCTestCase {
  func testValidationReportsEachReadout() throws {
    let root = try Oracle.temporaryDirectory("segkit-maskrnn-validation")
    defer { try? FileManager.default.removeItem(at: root) }
    var options = Synthetic.VideoOptions()
    (options.trainSequences, options.valSequences, options.frames, options.width, options.height) = (1, 1, 3, 48, 32)
    (options.objects, options.seed) = (1, 12)
    options.layout = .davis2017
    try Synthetic.writeVideo(to: root, options: options)
    var config = TrainingConfig()
    try config.apply(yaml: """
      task: foreground
      model: maskrnn_resnet18
      dataset: davis2017
      dataset_dir: \(root.path)
      localisation: false
      training_number_of_steps: 1
      train_batch_size: 1
      workers: 0
      """)
    try config.validate()
    Torch.manualSeed(17)
    let task = try MaskPropagationTask(config: config, device: .cpu)
    // Constant streams: the appearance stream says foreground everywhere, the flow stream
    // background, their sum foreground; so each readout has a known IoU.
    try Torch.withNoGrad {
      for (name, parameter) in task.network.namedParameters() where name.hasSuffix("fuse.weight") || name.hasSuffix("fuse.bias") {
        try parameter.fill_(name == "appearance.fuse.bias" ? 20 : name == "flow.fuse.bias" ? -10 : 0)
      }
    }
    let report = try XCTUnwrap(try task.validate(step: 1))
    XCTAssertEqual(report.metrics.map(\.0), ["foreground IoU", "appearance IoU", "flow IoU", "fused IoU"])
    XCTAssertEqual(report.scalars.map(\.0), ["val/foreground_iou", "val/appearance_iou", "val/flow_iou", "val/fused_iou"])
    let iou = Dictionary(uniqueKeysWithValues: report.metrics.map { ($0.0, $0.1) })
    let everywhere = try XCTUnwrap(iou["appearance IoU"])
    XCTAssertGreaterThan(everywhere, 0)
    XCTAssertLessThan(everywhere, 0.5, "an object covers less than half the frame")
    XCTAssertEqual(iou["flow IoU"], 0)
    XCTAssertEqual(iou["fused IoU"], everywhere)
    XCTAssertEqual(iou["foreground IoU"], everywhere, "without a localiser the output is the fused readout")
    XCTAssertTrue(report.summary.contains("appearance") && report.summary.contains("flow 0.0000"), report.summary)
  }
}
