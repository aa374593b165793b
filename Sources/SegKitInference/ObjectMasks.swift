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

/// MaskRNN on several objects: each object of the first mask runs its own recurrence
/// (`MaskRNNSegmenter`, as MaskRNN treats objects independently), and every frame
/// takes per pixel the object of highest probability above ½.
public final class MaskRNNObjectsSegmenter: SequenceSegmenter {
  public let model: MaskRNN
  public let device: Device
  public let flow: FlowMethod
  public let readout: MaskRNNSegmenter.Readout
  public let precision: InferencePrecision
  /// Makes each object's network from the shared one, its first frame and its 0/1 mask
  /// (e.g. a copy fine-tuned on them); nil uses the shared network as it is.
  public var prepare: ((MaskRNN, Image, Image) throws -> MaskRNN)?
  public private(set) var objects: [(id: Int, segmenter: MaskRNNSegmenter)] = []

  public init(model: MaskRNN, device: Device = .cpu, flow: FlowMethod = .dis(.fast), readout: MaskRNNSegmenter.Readout = .full,
              precision: InferencePrecision = .fp32) {
    self.model = model
    self.device = device
    self.flow = flow
    self.readout = readout
    self.precision = precision
  }

  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    guard let mask else { throw InferenceError("MaskRNN needs the first frame's object mask") }
    let ids = ObjectMasks.ids(in: mask)
    guard !ids.isEmpty else { throw InferenceError("the first frame's mask holds no object (every pixel is 0)") }
    objects = try ids.map { id in
      let object = ObjectMasks.object(id, of: mask)
      let network = try prepare?(model, firstFrame, object) ?? model
      let segmenter = try MaskRNNSegmenter(model: network, device: device, flow: flow, readout: readout, precision: precision)
      _ = try segmenter.start(firstFrame: firstFrame, mask: object)
      return (id, segmenter)
    }
    return ObjectMasks.labels(of: mask)
  }

  public func next(_ frame: Image) throws -> Image { try next(frame, following: nil) }

  public func next(_ frame: Image, following: Image?) throws -> Image {
    guard let first = objects.first else { throw InferenceError("next(_:) before start(firstFrame:mask:): the sequence has not begun") }
    // Every object's recurrence is at the same frame: the flows are computed once for all.
    let flows = try first.segmenter.flows(frame, following: following)
    return try ObjectMasks.merge(try objects.map { ($0.id, try $0.segmenter.advance(frame, following: following, flows: flows)) })
  }
}
