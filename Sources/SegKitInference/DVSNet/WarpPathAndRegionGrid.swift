import Foundation

/// DVSNet's flow path: the current frame's class scores carried over from the key
/// frame's. The key frame's logits, resized to the flow's resolution, are sampled at
/// x + F(x) with F the flow from the current frame to the key frame (so each pixel of
/// the current frame looks up where its content was in the key frame; points outside
/// the key frame take its border's values, as DVSNet clamps), multiplied by the flow
/// network's per-class scale field when there is one, and resized to the output
/// size; their argmax is the warp path's segmentation.
///
/// At `.output` resolution the flow and the scale field are upsampled to the output
/// size instead (the flow's vectors scaled with it) and the key logits warped there:
/// thin objects survive that DVSNet's 1/8-resolution warp blurs away.
public enum WarpPath {
  public enum Resolution: String, Sendable, CaseIterable {
    /// At the flow's resolution, then upsampled (DVSNet).
    case flow
    /// At the output size, the flow upsampled.
    case output
  }

  /// - Parameters:
  ///   - keyLogits: [N, C, h, w], the segmentation network's output on the key frame.
  ///   - flowToKey: [N, 2, h', w'], current frame → key frame, in pixels of h'×w'.
  ///   - scale: [N, C, h', w'] or nil.
  ///   - size: the output's height and width.
  public static func scores(
    keyLogits: Tensor, flowToKey: Tensor, scale: Tensor? = nil, size: Size2, resolution: Resolution = .flow
  ) throws -> Tensor {
    guard keyLogits.rank == 4, flowToKey.rank == 4, flowToKey.shape[1] == 2, flowToKey.shape[0] == keyLogits.shape[0] else {
      throw InferenceError("the warp path takes [N, C, h, w] logits and an [N, 2, h', w'] flow; got \(keyLogits.shape) and \(flowToKey.shape)")
    }
    let flowSize = Size2(flowToKey.shape[2], flowToKey.shape[3])
    if let scale, scale.shape[0] != keyLogits.shape[0] || scale.shape[1] != keyLogits.shape[1] || scale.shape[2] != flowSize.height || scale.shape[3] != flowSize.width {
      throw InferenceError("a scale field of \(scale.shape) for logits of \(keyLogits.shape) and a flow of \(flowToKey.shape)")
    }
    let target = resolution == .flow ? flowSize : size
    var flow = flowToKey, field = scale
    if target != flowSize {
      let factors = try Tensor([Float(target.width) / Float(flowSize.width), Float(target.height) / Float(flowSize.height)], shape: [1, 2, 1, 1])
        .to(flowToKey.device)
      flow = try flowToKey.interpolate(size: target) * factors
      field = try scale?.interpolate(size: target)
    }
    let resized = keyLogits.shape[2] == target.height && keyLogits.shape[3] == target.width
      ? keyLogits : try keyLogits.interpolate(size: target)
    var warped = try FlowWarp.warp(resized, by: flow, padding: .border)
    if let field { warped = try warped * field }
    return target == size ? warped : try warped.interpolate(size: size)
  }
}

/// A frame split into a grid of regions that overlap, each deciding alone between
/// the segmentation and the flow path (DVSNet: 2×2 with 64 px of overlap; its TensorFlow variant:
/// the whole frame). Tiles are H/rows × W/columns (the last row and column take the
/// remainder), each extended by `overlap` pixels across every inner edge; where
/// regions overlap, a pixel takes the label of the region whose largest score there
/// is larger (earlier regions win ties).
public struct RegionGrid: Sendable, Equatable {
  public let rows: Int
  public let columns: Int
  public let overlap: Int

  public static let dvsnet = RegionGrid(uncheckedRows: 2, columns: 2, overlap: 64)
  public static let whole = RegionGrid(uncheckedRows: 1, columns: 1, overlap: 0)

  public init(rows: Int, columns: Int, overlap: Int) throws {
    guard (1...16).contains(rows), (1...16).contains(columns), (0...4096).contains(overlap) else {
      throw InferenceError("a region grid of \(rows)×\(columns) with \(overlap) px of overlap: rows and columns must be in 1…16, the overlap in 0…4096")
    }
    self.init(uncheckedRows: rows, columns: columns, overlap: overlap)
  }

  private init(uncheckedRows rows: Int, columns: Int, overlap: Int) {
    (self.rows, self.columns, self.overlap) = (rows, columns, overlap)
  }

  /// A rectangle of the frame.
  public struct Region: Sendable, Equatable {
    public let top: Int, left: Int, height: Int, width: Int
  }

  /// The regions of a `height` × `width` frame, row by row.
  public func regions(height: Int, width: Int) throws -> [Region] {
    guard height >= rows, width >= columns else {
      throw InferenceError("a \(width)×\(height) frame cannot be split into \(rows)×\(columns) regions")
    }
    func spans(_ length: Int, _ parts: Int) -> [(Int, Int)] {
      let tile = length / parts
      return (0..<parts).map { index in
        let start = max(0, index * tile - (index > 0 ? overlap : 0))
        let end = min(length, index == parts - 1 ? length : (index + 1) * tile + overlap)
        return (start, end - start)
      }
    }
    return spans(height, rows).flatMap { row in
      spans(width, columns).map { column in Region(top: row.0, left: column.0, height: row.1, width: column.1) }
    }
  }

  /// One label map [H, W] (int64) from each region's scores [C, h, w] (in `regions` order).
  public func merge(_ scores: [Tensor], height: Int, width: Int) throws -> Tensor {
    let regions = try regions(height: height, width: width)
    guard scores.count == regions.count else { throw InferenceError("\(scores.count) region scores for \(regions.count) regions") }
    var best: [Tensor] = [], labels: [Tensor] = []
    for (region, score) in zip(regions, scores) {
      guard score.rank == 3, score.shape[1] == region.height, score.shape[2] == region.width else {
        throw InferenceError("scores of \(score.shape) for a \(region.width)×\(region.height) region")
      }
      let (values, indices) = try score.max(dim: 0)
      // Outside its region a map holds −10^30, so another region always wins there.
      let pads = [region.left, width - region.left - region.width, region.top, height - region.top - region.height]
      best.append(try values.unsqueeze(0).pad(pads, value: -1e30).squeeze(dim: 0))
      labels.append(try indices.unsqueeze(0).pad(pads, value: 0).squeeze(dim: 0))
    }
    let winner = try Tensor.stack(best).argmax(dim: 0, keepDim: true)
    return try Tensor.stack(labels).gather(dim: 0, index: winner).squeeze(dim: 0)
  }
}
