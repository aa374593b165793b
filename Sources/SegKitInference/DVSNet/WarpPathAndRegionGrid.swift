import Foundation

/// DVSNet's flow path: the current frame's class scores carried over from the key
/// frame's. The key frame's logits, resized to the warp grid, are sampled at
/// x + F(x) with F the flow from the current frame to the key frame (so each pixel of
/// the current frame looks up where its content was in the key frame; points outside
/// the key frame take its border's values, as DVSNet clamps), multiplied by the flow
/// network's per-class scale field when there is one, and resized to the output
/// size; their argmax is the warp path's segmentation.
///
/// DVSNet warps on the finer of its two grids: its 1/16 logits are resized up to the
/// 1/8 flow. SegKit's segmentation networks return logits at the input's size (their
/// last upsampling is inside the network, as in torchvision), so the same rule warps at
/// the output size, the flow and the scale field upsampled (`.output`, the default).
/// `.flow` resizes the logits down to the flow's grid instead, which loses objects a
/// few flow cells wide even when nothing moved.
public enum WarpPath {
  public enum Resolution: String, Sendable, CaseIterable {
    /// At the flow's grid (the logits resized down to it), then upsampled.
    case flow
    /// At the output size, the flow upsampled: DVSNet's finer-grid order.
    case output
  }

  /// - Parameters:
  ///   - keyLogits: [N, C, h, w], the segmentation network's output on the key frame.
  ///   - flowToKey: [N, 2, h', w'], current frame → key frame, in pixels of h'×w'.
  ///   - scale: [N, C, h', w'] or nil.
  ///   - size: the output's height and width.
  public static func scores(
    keyLogits: Tensor, flowToKey: Tensor, scale: Tensor? = nil, size: Size2, resolution: Resolution = .output
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
/// the segmentation and the flow path (DVSNet: 2×2 with 64 px of overlap on 1024×2048
/// frames; its TensorFlow variant: the whole frame). Tiles are H/rows × W/columns (the
/// last row and column take the remainder), each extended by the overlap across every
/// inner edge; where regions overlap, a pixel takes the label of the region whose
/// largest score there is larger (earlier regions win ties). The overlap is a number of
/// pixels or a share of the frame's height (DVSNet's 64 px is 1/16 of 1024 rows), and
/// may reach at most half a tile into its neighbour, so no region swallows another.
public struct RegionGrid: Sendable, Equatable {
  public let rows: Int
  public let columns: Int
  /// The overlap in pixels, or (with `overlapShare`) 0.
  public let overlap: Int
  /// The overlap as a share of the frame's height, when it scales with the frame.
  public let overlapShare: Double?

  /// DVSNet's 64 px on 1024 rows.
  public static let dvsnetOverlapShare = 64.0 / 1024
  public static let dvsnet = RegionGrid(uncheckedRows: 2, columns: 2, overlap: 0, share: dvsnetOverlapShare)
  public static let whole = RegionGrid(uncheckedRows: 1, columns: 1, overlap: 0, share: nil)

  public init(rows: Int, columns: Int, overlap: Int) throws {
    guard (1...16).contains(rows), (1...16).contains(columns), (0...4096).contains(overlap) else {
      throw InferenceError("a region grid of \(rows)×\(columns) with \(overlap) px of overlap: rows and columns must be in 1…16, the overlap in 0…4096")
    }
    self.init(uncheckedRows: rows, columns: columns, overlap: overlap, share: nil)
  }

  /// An overlap of `overlapShare` × the frame's height, rounded to pixels.
  public init(rows: Int, columns: Int, overlapShare: Double) throws {
    guard (1...16).contains(rows), (1...16).contains(columns), overlapShare >= 0, overlapShare <= 0.5 else {
      throw InferenceError("a region grid of \(rows)×\(columns) with an overlap of \(overlapShare * 100) % of the height: rows and columns must be in 1…16, the overlap in 0…50 %")
    }
    self.init(uncheckedRows: rows, columns: columns, overlap: 0, share: overlapShare)
  }

  private init(uncheckedRows rows: Int, columns: Int, overlap: Int, share: Double?) {
    (self.rows, self.columns, self.overlap, overlapShare) = (rows, columns, overlap, share)
  }

  /// The overlap in pixels on a frame `height` rows high.
  public func overlapPixels(height: Int) -> Int {
    overlapShare.map { Int((Double(height) * $0).rounded()) } ?? overlap
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
    let overlap = overlapPixels(height: height)
    for (length, parts) in [(height, rows), (width, columns)] where parts > 1 && 2 * overlap > length / parts {
      throw InferenceError("an overlap of \(overlap) px on \(length / parts)-pixel tiles (\(rows)×\(columns) regions of a \(width)×\(height) frame) would swallow the neighbouring regions: at most \(length / parts / 2) px, or a share of the height such as DVSNet's 6.25 %")
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
