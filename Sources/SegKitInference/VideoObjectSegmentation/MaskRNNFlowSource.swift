import Foundation

/// Where MaskRNN's flows come from: computed from the frames (DIS or a flow network,
/// as its run was trained), or read from the exact flows a synthetic DAVIS root holds
/// (`segkit data synth --kind video`: Flow/480p and BackwardFlow/480p), which take
/// flow estimation out of the comparison.
public enum MaskRNNFlowSource {
  case computed(FlowMethod)
  /// The exact flows under this DAVIS root (`Synthetic.flowFolders`).
  case exact(root: URL)

  /// The exact flows of `sequence`, or nil for computed flows.
  public func exactFlows(of sequence: String) -> ExactSequenceFlows? {
    guard case .exact(let root) = self else { return nil }
    return ExactSequenceFlows(root: root, sequence: sequence)
  }

  /// The method for frames with no sequence to read exact flows from (DIS's fast preset for `.exact`).
  public var method: FlowMethod {
    if case .computed(let method) = self { return method }
    return .dis(.fast)
  }
}

extension ExactSequenceFlows {
  /// Frame `index`'s flows to the frame before it and, when `hasNext`, the one after.
  public func flows(frame index: Int, hasNext: Bool) throws -> MaskRNNSegmenter.FrameFlows {
    MaskRNNSegmenter.FrameFlows(backward: try backward(frame: index), forward: hasNext ? try forward(frame: index) : nil)
  }
}
