import Foundation

/// One sequence's exact flows, as the synthetic generator writes them: frame N's flow
/// to frame N+1 in `forward`/NNNNN.flo, to frame N−1 in `backward`/NNNNN.flo. Both
/// directions are read (not one inverted from the other), since inverting a flow is not
/// exact where objects occlude.
public struct ExactSequenceFlows: Sendable {
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

  /// Frame `index`'s file in `folder` (`forward` or `backward`).
  public func file(in folder: URL, frame index: Int) -> URL { folder.appendingPathComponent(String(format: "%05d.flo", index)) }

  private func read(_ folder: URL, _ index: Int, _ what: String) throws -> FlowField {
    let url = file(in: folder, frame: index)
    guard FileManager.default.fileExists(atPath: url.path) else {
      throw DataError("""
        \(url.path) is missing: exact flow reads frame \(index)'s flow \(what) of sequence \(sequence), \
        which `segkit data synth --kind video` writes (Flow/480p, BackwardFlow/480p); other data needs computed flow
        """)
    }
    do { return try FlowFile.read(url) } catch { throw DataError("\(url.path): \(error)") }
  }
}

/// Where a video dataset's per-frame flows come from when training reads them: a
/// `FlowCache` (computed once, kept on disk) or `ExactFlows` (the synthetic
/// generator's own). Frame t gets its flow to t−1 (`backward`) and to t+1 (`forward`),
/// nil where that neighbour does not exist.
public protocol FrameFlowSource: Sendable {
  func flows(of sequence: VideoSequence, frame index: Int) throws -> (backward: FlowField?, forward: FlowField?)
  /// Makes every flow of `sequences` available (computes or checks), so that a missing
  /// one is reported before training starts rather than in the middle of it.
  func prepare(_ sequences: [VideoSequence]) throws
}

/// The exact flows a synthetic DAVIS root holds (`segkit data synth --kind video`),
/// which take flow estimation out of training.
public struct ExactFlows: FrameFlowSource {
  public let root: URL

  public init(root: URL) { self.root = root }

  public func flows(of sequence: VideoSequence, frame index: Int) throws -> (backward: FlowField?, forward: FlowField?) {
    guard sequence.frames.indices.contains(index) else {
      throw DataError("\(sequence.name) has \(sequence.frames.count) frames, no frame \(index)")
    }
    let exact = ExactSequenceFlows(root: root, sequence: sequence.name)
    let size = try ImageIO.size(of: sequence.frames[index].image)
    func checked(_ flow: FlowField) throws -> FlowField {
      guard flow.width == size.width, flow.height == size.height else {
        throw DataError("\(sequence.name) frame \(index): a \(flow.width)×\(flow.height) exact flow for a \(size.width)×\(size.height) frame")
      }
      return flow
    }
    let backward = index > 0 ? try checked(exact.backward(frame: index)) : nil
    let forward = index + 1 < sequence.frames.count ? try checked(exact.forward(frame: index)) : nil
    return (backward, forward)
  }

  public func prepare(_ sequences: [VideoSequence]) throws {
    for sequence in sequences {
      let exact = ExactSequenceFlows(root: root, sequence: sequence.name)
      for index in sequence.frames.indices {
        let files = [(index > 0, exact.backward, index), (index + 1 < sequence.frames.count, exact.forward, index)]
        for (needed, folder, frame) in files where needed {
          let url = exact.file(in: folder, frame: frame)
          guard FileManager.default.fileExists(atPath: url.path) else {
            throw DataError("\(url.path) is missing: flow_method exact trains on the exact flows `segkit data synth --kind video` writes beside its frames")
          }
        }
      }
    }
  }
}
