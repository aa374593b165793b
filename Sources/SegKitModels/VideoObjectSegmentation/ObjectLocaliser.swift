import Foundation
import SegKitNN

/// MaskRNN's object localisation: the box proposal is the bounding box of the
/// previous mask warped to this frame, enlarged about its centre; the appearance
/// stream's deepest features inside it (RoI-aligned to 7×7) go through two fully
/// connected layers (`fc1` to 1024 with ReLU, `fc2` to 4) that regress the refined
/// box as Faster R-CNN's deltas (centre shift in box sizes, log size ratios). `fc2`
/// starts at zero, so an untrained localiser keeps the proposal. Pixels outside the
/// refined box, enlarged about its centre by `gateEnlargement`, become background (`gate`).
///
/// Boxes are (x1, y1, x2, y2) in pixels of the input image, x2 and y2 exclusive.
public final class ObjectLocaliser: Module {
  public let poolSize: Size2
  /// The stride of the features it reads.
  public let featureStride: Int
  let fc1: Linear
  let fc2: Linear
  /// Log size ratios are capped here (Faster R-CNN's log(1000 / 16)), so exp cannot overflow.
  static let maximumLogRatio = log(1000.0 / 16)
  /// The logit pixels outside the box are given: sigmoid(−20) ≈ 2·10⁻⁹.
  public static let backgroundLogit = -20.0

  /// How much the warped mask's bounding box is enlarged into the proposal: a buffer
  /// (`proposal_enlargement`), so checkpoints carry the value the localiser was trained with.
  public var proposalEnlargement: Double {
    get { (try? buffer("proposal_enlargement")?.item()) ?? 1.5 }
    set { try? Torch.withNoGrad { try buffer("proposal_enlargement")?.fill_(newValue) } }
  }

  /// How much the refined box is enlarged about its centre before it gates the logits:
  /// a buffer (`gate_enlargement`) for the same reason; 1 gates with the refined box itself.
  /// A margin keeps object pixels that a tight, slightly wrong box would cut off.
  public var gateEnlargement: Double {
    get { (try? buffer("gate_enlargement")?.item()) ?? 1 }
    set { try? Torch.withNoGrad { try buffer("gate_enlargement")?.fill_(newValue) } }
  }

  /// The encoder level (1-based, 4 = the deepest) whose features it reads: a buffer
  /// (`feature_level`), so a checkpoint says which features its `fc1` was trained on.
  public var featureLevel: Int { Int((try? buffer("feature_level")?.item()) ?? 4) }

  public init(
    featureChannels: Int, featureStride: Int, hidden: Int = 1024, poolSize: Size2 = Size2(7, 7), proposalEnlargement: Double = 1.5,
    gateEnlargement: Double = 1, featureLevel: Int = 4
  ) throws {
    self.poolSize = poolSize
    self.featureStride = featureStride
    fc1 = try Linear(featureChannels * poolSize.height * poolSize.width, hidden)
    fc2 = try Linear(hidden, 4)
    super.init()
    registerModule("fc1", fc1)
    registerModule("fc2", fc2)
    _ = registerBuffer("proposal_enlargement", try Tensor([Float(proposalEnlargement)], shape: [1]))
    _ = registerBuffer("gate_enlargement", try Tensor([Float(gateEnlargement)], shape: [1]))
    _ = registerBuffer("feature_level", try Tensor([Float(featureLevel)], shape: [1]))
    try Torch.withNoGrad {
      try fc2.weight.zero_()
      try fc2.bias?.zero_()
    }
  }

  /// The regressed deltas [K, 4] for `proposals` [K, 4] on `features` [N, C, h, w].
  public func deltas(features: Tensor, proposals: Tensor, batchIndices: [Int]? = nil) throws -> Tensor {
    let pooled = try roiAlign(features, boxes: proposals, batchIndices: batchIndices, outputSize: poolSize,
                              spatialScale: 1 / Double(featureStride), samplingRatio: 2, aligned: true)
    return try fc2(fc1(pooled.flatten(startDim: 1)).relu())
  }

  /// The refined boxes [K, 4].
  public func forward(features: Tensor, proposals: Tensor, batchIndices: [Int]? = nil) throws -> Tensor {
    try Self.decode(try deltas(features: features, proposals: proposals, batchIndices: batchIndices), relativeTo: proposals)
  }

  /// The bounding box of a mask's non-zero pixels ([H, W] or [1, H, W]), enlarged by
  /// `enlargement` about its centre and clipped to the image; nil for an empty mask.
  public static func proposal(from mask: Tensor, enlargement: Double) throws -> [Double]? {
    let plane = mask.rank == 3 ? try mask.squeeze(dim: 0) : mask
    guard plane.rank == 2 else { throw ModelError("a box proposal needs an [H, W] mask, got \(mask.shape)") }
    let (height, width) = (plane.shape[0], plane.shape[1])
    let rows = try (plane.to(.float32).sum(dim: 1) .> 0).toArray(Bool.self)
    let columns = try (plane.to(.float32).sum(dim: 0) .> 0).toArray(Bool.self)
    guard let top = rows.firstIndex(of: true), let bottom = rows.lastIndex(of: true),
      let left = columns.firstIndex(of: true), let right = columns.lastIndex(of: true)
    else { return nil }
    let (cx, cy) = (Double(left + right + 1) / 2, Double(top + bottom + 1) / 2)
    let (w, h) = (Double(right + 1 - left) * enlargement, Double(bottom + 1 - top) * enlargement)
    return [max(0, cx - w / 2), max(0, cy - h / 2), min(Double(width), cx + w / 2), min(Double(height), cy + h / 2)]
  }

  /// The deltas that turn `proposals` into `boxes` (both [K, 4]): the regression targets.
  public static func encode(_ boxes: Tensor, relativeTo proposals: Tensor) throws -> Tensor {
    let (p, b) = (try centreSize(proposals), try centreSize(boxes))
    return try Tensor.cat([(b.cx - p.cx) / p.w, (b.cy - p.cy) / p.h, (b.w / p.w).log(), (b.h / p.h).log()], dim: 1)
  }

  /// `proposals` moved by `deltas` (both [K, 4]).
  public static func decode(_ deltas: Tensor, relativeTo proposals: Tensor) throws -> Tensor {
    let p = try centreSize(proposals)
    let d = try (0..<4).map { try deltas.narrow(dim: 1, start: $0, length: 1) }
    let (cx, cy) = (try p.cx + d[0] * p.w, try p.cy + d[1] * p.h)
    let w = try p.w * d[2].clamp(max: maximumLogRatio).exp(), h = try p.h * d[3].clamp(max: maximumLogRatio).exp()
    return try Tensor.cat([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim: 1)
  }

  static func centreSize(_ boxes: Tensor) throws -> (cx: Tensor, cy: Tensor, w: Tensor, h: Tensor) {
    guard boxes.rank == 2, boxes.shape[1] == 4 else { throw ModelError("boxes must be [K, 4], got \(boxes.shape)") }
    let c = try (0..<4).map { try boxes.narrow(dim: 1, start: $0, length: 1) }
    return (try (c[0] + c[2]) / 2, try (c[1] + c[3]) / 2, try c[2] - c[0], try c[3] - c[1])
  }

  /// `boxes` [K, 4] enlarged by `factor` about their centres (not clipped: gating needs no clipping).
  public static func enlarge(_ boxes: Tensor, by factor: Double) throws -> Tensor {
    guard factor != 1 else { return boxes }
    let b = try centreSize(boxes)
    let (w, h) = (try b.w * factor / 2, try b.h * factor / 2)
    return try Tensor.cat([b.cx - w, b.cy - h, b.cx + w, b.cy + h], dim: 1)
  }

  /// `logits` [N, 1, H, W] with every pixel whose centre lies outside its image's box
  /// ([N, 4]) set to `backgroundLogit`.
  public static func gate(_ logits: Tensor, boxes: Tensor) throws -> Tensor {
    guard logits.rank == 4, boxes.rank == 2, boxes.shape == [logits.shape[0], 4] else {
      throw ModelError("gating takes [N, 1, H, W] logits and [N, 4] boxes, got \(logits.shape) and \(boxes.shape)")
    }
    let (height, width) = (logits.shape[2], logits.shape[3])
    let device = logits.device
    let ys = try (Tensor.arange(0, Double(height), dtype: .float32, device: device) + 0.5).reshape([1, 1, height, 1])
    let xs = try (Tensor.arange(0, Double(width), dtype: .float32, device: device) + 0.5).reshape([1, 1, 1, width])
    let b = try boxes.to(.float32).to(device).reshape([-1, 4, 1, 1])
    let corner = { (i: Int) in try b.narrow(dim: 1, start: i, length: 1) }
    let inside = try ((xs .>= corner(0)) .& (xs .< corner(2)) .& (ys .>= corner(1)) .& (ys .< corner(3))).to(logits.dtype)
    return try logits * inside + (inside * -1 + 1) * backgroundLogit
  }
}
