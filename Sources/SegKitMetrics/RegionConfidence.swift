import SegKitTensor

/// DVSNet's confidence score of the warp path for a region: the percentage of its
/// pixels whose warped label equals the segmentation network's label on the same
/// frame, pixels void (`ignoreIndex`) in the reference not counted, as DVSNet's
/// train/confidence.py computes it (there as a fraction; its decision network
/// regresses it ×100, the percentage given here).
public enum RegionConfidence {
  /// The score in percent for label maps of one shape (any integer dtype); nil when
  /// every reference pixel is void.
  public static func score(_ labels: Tensor, reference: Tensor, ignoreIndex: Int = 255) throws -> Double? {
    guard labels.shape == reference.shape else {
      throw MetricsError("confidence of labels \(labels.shape) against a reference of \(reference.shape)")
    }
    let counted = try reference .!= Double(ignoreIndex)
    let total = try counted.to(.float64).sum().item()
    guard total > 0 else { return nil }
    let agreeing = try ((labels.to(.int64) .== reference.to(.int64)) .& counted).to(.float64).sum().item()
    return 100 * agreeing / total
  }
}
