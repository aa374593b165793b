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

/// One sequence's exact flows, as the synthetic generator writes them: frame N's flow
/// to frame N+1 in `forward`/NNNNN.flo, to frame N−1 in `backward`/NNNNN.flo. Both
/// directions are read (not one inverted from the other), since inverting a flow is not
/// exact where objects occlude.
public struct ExactSequenceFlows {
  public let sequence: String
  public let forward: URL
  public let backward: URL

  public init(root: URL, sequence: String) {
    let folders = Synthetic.flowFolders(of: root)
    self.sequence = sequence
    forward = folders.forward.appendingPathComponent(sequence)
    backward = folders.backward.appendingPathComponent(sequence)
  }

  /// Frame `index`'s flow to the frame after it.
  public func forward(frame index: Int) throws -> FlowField { try read(forward, index, "to frame \(index + 1)") }

  /// Frame `index`'s flow to the frame before it.
  public func backward(frame index: Int) throws -> FlowField { try read(backward, index, "to frame \(index - 1)") }

  /// Frame `index`'s flows to the frame before it and, when `hasNext`, the one after.
  public func flows(frame index: Int, hasNext: Bool) throws -> MaskRNNSegmenter.FrameFlows {
    MaskRNNSegmenter.FrameFlows(backward: try backward(frame: index), forward: hasNext ? try forward(frame: index) : nil)
  }

  private func read(_ folder: URL, _ index: Int, _ what: String) throws -> FlowField {
    let url = folder.appendingPathComponent(String(format: "%05d.flo", index))
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw InferenceError("""
        \(url.path) is missing: --flow exact reads frame \(index)'s exact flow \(what) of sequence \(sequence), \
        which `segkit data synth --kind video` writes (Flow/480p, BackwardFlow/480p); other data needs computed flow
        """)
    }
    do { return try FlowFile.read(url) } catch { throw InferenceError("\(url.path): \(error)") }
  }
}
