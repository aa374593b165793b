import Foundation

/// The objects of a semi-supervised first mask and how per-object predictions become
/// one instance map, shared by the segmenters that run one network per object.
public enum ObjectMasks {
  /// The object ids of a first-frame mask: its non-zero values but void (255); a mask
  /// whose only non-zero value is 255 (DAVIS 2016's 0/255) is one object, id 1.
  public static func ids(in mask: Image) -> [Int] {
    let values = Set(mask.pixels).subtracting([0])
    if values == [voidLabel] { return [1] }
    return values.subtracting([voidLabel]).map(Int.init).sorted()
  }

  /// Whether `mask` is DAVIS 2016's kind: 0/255, one object.
  public static func isSingleObject(_ mask: Image) -> Bool { Set(mask.pixels).subtracting([0]) == [voidLabel] }

  /// Object `id`'s 0/1 mask (for a single-object mask, every non-zero pixel).
  public static func object(_ id: Int, of mask: Image) -> Image {
    let single = isSingleObject(mask)
    var object = mask
    for i in object.pixels.indices {
      object.pixels[i] = single ? (mask.pixels[i] != 0 ? 1 : 0) : (Int(mask.pixels[i]) == id ? 1 : 0)
    }
    return object
  }

  /// The first frame's labels as the segmenters return them: ids, void as background, a single object as 1.
  public static func labels(of mask: Image) -> Image {
    let single = isSingleObject(mask)
    var labels = mask
    for i in labels.pixels.indices {
      labels.pixels[i] = single ? (mask.pixels[i] != 0 ? 1 : 0) : (mask.pixels[i] == voidLabel ? 0 : mask.pixels[i])
    }
    return labels
  }

  /// Per pixel, the id of the object of highest probability where that is above ½,
  /// else 0; `probabilities` are [H, W] maps of one size.
  public static func merge(_ probabilities: [(id: Int, probability: Tensor)]) throws -> Image {
    guard !probabilities.isEmpty else { throw InferenceError("no objects to merge") }
    let stacked = try Tensor.stack(probabilities.map(\.probability))  // [K, H, W]
    let (best, index) = try (stacked.max(dim: 0).values, stacked.argmax(dim: 0))
    let ids = try Tensor(probabilities.map { Float($0.id) }, shape: [probabilities.count])
    let labels = try ids.indexSelect(dim: 0, index: index.reshape([-1])).reshape(index.shape) * (best .> 0.5).to(.float32)
    return try Image(tensor: labels.unsqueeze(0) / 255)
  }
}
