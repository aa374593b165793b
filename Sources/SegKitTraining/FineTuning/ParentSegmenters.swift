import Foundation

/// The sequence segmenter a parent network gets: a MaskRNN parent segments recurrently
/// (each object's mask warped by the flow and corrected by the network), fine-tuned on
/// the first frame only when asked; any other parent is fine-tuned per object on the
/// first frame (OSVOS). One fresh segmenter per sequence.
public struct ParentSegmenters {
  public let modelName: String
  public let family: ModelFamily
  public let parent: StateDict
  public let settings: FineTuningSettings
  /// Whether the parent is fine-tuned on each sequence's first frame before segmenting.
  public let fineTunes: Bool
  private let maskRNN: MaskRNN?
  private let flow: MaskRNNFlowSource

  /// - Parameters:
  ///   - fineTuneMaskRNN: fine-tune a MaskRNN parent too (OSVOS parents always are).
  ///   - flow: where a MaskRNN parent's flows come from.
  public init(
    modelName: String, parent: StateDict, settings: FineTuningSettings, fineTuneMaskRNN: Bool, flow: MaskRNNFlowSource
  ) throws {
    family = try ModelFamily.parse(modelName)
    (self.modelName, self.parent, self.settings, self.flow) = (modelName, parent, settings, flow)
    if case .maskRNN(let encoder) = family {
      guard settings.precision != .int8 else { throw TrainingError("int8 is for OSVOS parents; MaskRNN runs in fp32 or bf16") }
      // Its fusion and localiser as the weights have them.
      let network = try MaskRNN.matching(parent, encoder: encoder)
      do { try network.load(parent) } catch { throw TrainingError("the parent weights do not fit \(modelName): \(error)") }
      (maskRNN, fineTunes) = (network, fineTuneMaskRNN)
    } else {
      (maskRNN, fineTunes) = (nil, true)
    }
  }

  /// A fresh segmenter (for `sequence` of a DAVIS root, whose exact flows it may read);
  /// `shouldStop` is asked between fine-tuning steps and frames.
  public func make(sequence: String? = nil, shouldStop: @escaping () -> Bool) -> any SequenceSegmenter {
    guard let maskRNN else {
      let segmenter = OneShotObjectsSegmenter(modelName: modelName, parent: parent, settings: settings)
      segmenter.shouldStop = shouldStop
      return segmenter
    }
    let segmenter = MaskRNNObjectsSegmenter(model: maskRNN, device: settings.device, flow: flow.method, precision: settings.precision)
    segmenter.exactFlows = sequence.flatMap { flow.exactFlows(of: $0) }
    if fineTunes {
      let (modelName, parent, settings) = (self.modelName, self.parent, self.settings)
      segmenter.prepare = { _, frame, object, forwardFlow in
        guard let tuned = try OneShotSegmenter.fineTunedCopy(
          modelName: modelName, parent: parent, firstFrame: frame, object: object, forwardFlow: forwardFlow, settings: settings,
          shouldStop: shouldStop) as? MaskRNN
        else { throw TrainingError("\(modelName): fine-tuning did not give a MaskRNN") }
        return tuned
      }
    }
    return segmenter
  }
}
