import Foundation
import SegKitModels

/// XMem's per-frame loop (its `InferenceCore`), on normalised frames at the network's
/// resolution: each frame is encoded, read against the memory and decoded when there is
/// something to segment, and memorised when it is a memory frame. Objects are numbered
/// 1, 2, … in the order their first masks arrive; a mask may bring new objects on any frame.
public final class XMemProcessor {
  public let network: XMem
  public let settings: XMemSettings
  let memory: XMemMemory
  private var frameIndex = -1
  private var lastMemoryFrame = 0
  /// Every object given so far (1-based), in order.
  public private(set) var objects: [Int] = []
  /// The last memory readout [objects, C^v, h, w], for tests and diagnostics.
  public private(set) var lastReadout: Tensor?

  public init(network: XMem, settings: XMemSettings = XMemSettings()) throws {
    self.network = network
    self.settings = try settings.validated()
    memory = XMemMemory(settings: self.settings)
  }

  /// The hidden state [1, objects, C^h, h, w] (nil before the first mask or without one).
  public var hidden: Tensor? { memory.hidden }
  /// Elements in working and long-term memory, and consolidations so far.
  public var memorySizes: (working: Int, longTerm: Int, consolidations: Int) {
    (memory.working.size, memory.longTerm.size, memory.consolidations)
  }

  /// One frame [3, H, W] (normalised). A frame that brings annotations has `masks`
  /// [objects, H, W], one channel for every object known after it (objects beyond the
  /// earlier count are new), of which the `annotated` ones (1-based) are given here; the
  /// others are taken from the prediction (XMem's `valid_labels`). `isLast` skips
  /// memorising a frame nothing will read. Returns each object's probability with the
  /// background first, [1 + objects, H, W].
  public func step(_ image: Tensor, masks: Tensor? = nil, annotated: [Int] = [], isLast: Bool = false) throws -> Tensor {
    frameIndex += 1
    let (padded, padding) = try Self.padToMultiple(of: 16, image)
    let frame = try padded.unsqueeze(0)
    if let masks {
      guard masks.rank == 3, masks.shape[0] >= objects.count, masks.shape.suffix(2) == image.shape.suffix(2) else {
        throw InferenceError("XMem: masks \(masks.shape) do not fit \(objects.count) objects on a \(image.shape) frame")
      }
      objects = Array(1...max(1, masks.shape[0]))
    }
    guard !objects.isEmpty else { throw InferenceError("XMem: the first frame it is given needs a mask") }

    let isMemoryFrame = (frameIndex - lastMemoryFrame >= settings.memEvery || masks != nil) && !isLast
    let needSegment = frameIndex > 0 && (masks == nil || annotated.count != objects.count)
    // Deep updates (through the value encoder) are synchronised with memory frames;
    // the decoder's own update of the hidden state happens on the other frames.
    let isDeepUpdate = isMemoryFrame
    let isNormalUpdate = !isDeepUpdate && !isLast

    let encoded = try network.encodeKey(frame, needShrinkage: isMemoryFrame, needSelection: settings.longTerm || needSegment)
    var probabilities: Tensor?  // [1 + objects, H, W]
    if needSegment {
      let readout = try memory.read(queryKey: encoded.key, selection: encoded.selection)
      lastReadout = readout
      let segmented = try network.segment(features: encoded.features, readout: readout.unsqueeze(0), hidden: memory.hidden,
                                          updateHidden: isNormalUpdate)
      probabilities = try segmented.probabilities.select(dim: 0, index: 0)
      if isNormalUpdate, network.hasHiddenState { memory.hidden = segmented.hidden }
    }

    if let masks {
      var given = try Self.padToMultiple(of: 16, masks).padded
      if let predicted = probabilities {
        // Where the new masks say something, the prediction gives way; elsewhere the
        // objects not annotated here keep their predicted probability.
        let annotatedPixels = try (given.sum(dim: 0, keepDim: true) .> 0.5).to(given.dtype)
        let kept = try predicted.slice(dim: 0, start: 1) * (1 - annotatedPixels)
        let previous = kept.shape[0]
        let fromPrediction = (0..<previous).filter { !annotated.contains($0 + 1) }
        if !fromPrediction.isEmpty {
          var channels = try (0..<given.shape[0]).map { try given.select(dim: 0, index: $0) }
          for i in fromPrediction { channels[i] = try kept.select(dim: 0, index: i) }
          given = try Tensor.stack(channels)
        }
      }
      probabilities = try softAggregate(given, dim: 0).probabilities
      try memory.makeHiddenState(objects: objects.count, channels: network.dimensions.hidden, like: encoded.key)
    }
    guard let probabilities else { throw InferenceError("XMem: frame \(frameIndex) has neither a mask nor a memory to read") }

    if isMemoryFrame, let shrinkage = encoded.shrinkage {
      let encodedValue = try network.encodeValue(
        frame: frame, f16: encoded.features.f16, hidden: memory.hidden, masks: probabilities.slice(dim: 0, start: 1).unsqueeze(0),
        deepUpdate: isDeepUpdate)
      try memory.add(key: encoded.key, shrinkage: shrinkage, value: encodedValue.value, objects: objects,
                     selection: settings.longTerm ? encoded.selection : nil)
      lastMemoryFrame = frameIndex
      if isDeepUpdate, network.hasHiddenState { memory.hidden = encodedValue.hidden }
    }
    return try Self.unpad(probabilities, padding)
  }

  /// Pads the last two dimensions to multiples of `d`, centred (the extra pixel of an
  /// odd margin goes after), as XMem's `pad_divide_by`; returns (left, right, top, bottom).
  static func padToMultiple(of d: Int, _ x: Tensor) throws -> (padded: Tensor, padding: [Int]) {
    let (h, w) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
    let extraH = (d - h % d) % d, extraW = (d - w % d) % d
    let padding = [extraW / 2, extraW - extraW / 2, extraH / 2, extraH - extraH / 2]
    return (padding.allSatisfy { $0 == 0 } ? x : try x.pad(padding), padding)
  }

  static func unpad(_ x: Tensor, _ padding: [Int]) throws -> Tensor {
    let (h, w) = (x.shape[x.rank - 2], x.shape[x.rank - 1])
    return try x.slice(dim: x.rank - 2, start: padding[2], end: h - padding[3]).slice(dim: x.rank - 1, start: padding[0], end: w - padding[1])
  }
}
