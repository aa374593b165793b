import ArgumentParser
import Foundation
import SegKitData
import SegKitInference
import SegKitTensor

/// `--flow`: where a MaskRNN's flows come from.
struct MaskRNNFlowArgument: ParsableArguments {
  enum Choice: String, ExpressibleByArgument, CaseIterable { case trained, exact }

  @Option(help: """
    MaskRNN's flows: trained (as its run's were: DIS, a flow network, or exact flows) or exact (read from the \
    synthetic generator's Flow/480p and BackwardFlow/480p under --davis).
    """)
  var flow: Choice = .trained

  /// The flows for `model` (`parent`'s): `--flow exact` only for a MaskRNN on a --davis root.
  func source(model: String, parent: String, davis: String?, device: Device) throws -> MaskRNNFlowSource {
    guard ModelFamily(name: model)?.isMaskRNN == true else {
      if flow == .exact { throw ValidationError("--flow exact is for MaskRNN; \(model) reads no flow") }
      return .computed(.dis(.fast))
    }
    switch flow {
    case .trained: return try maskRNNFlow(parent: parent, davis: davis, device: device)
    case .exact:
      guard let davis else { throw ValidationError("--flow exact reads the exact flows of a synthetic DAVIS root: give --davis ROOT") }
      return .exact(root: URL(fileURLWithPath: davis))
    }
  }
}
