import Foundation

/// MaskRNN on several objects: each object of the first mask runs its own recurrence
/// (`MaskRNNSegmenter`, as MaskRNN treats objects independently), and every frame
/// takes per pixel the object of highest probability above ½. What each recurrence
/// carries to the next frame is its object's part of that merged map, not its own
/// thresholded mask: flow has no identity, so after two objects cross, their own
/// masks could both follow one of them; the merged map keeps them apart.
public final class MaskRNNObjectsSegmenter: SequenceSegmenter {
  public let model: MaskRNN
  public let device: Device
  public let flow: FlowMethod
  public let readout: MaskRNNSegmenter.Readout
  public let precision: InferencePrecision
  /// Makes each object's network from the shared one, its first frame, its 0/1 mask
  /// and the first frame's flow to the second (nil when the second frame is not
  /// known), e.g. a copy fine-tuned on them; nil uses the shared network as it is.
  public var prepare: ((MaskRNN, Image, Image, FlowField?) throws -> MaskRNN)?
  public private(set) var objects: [(id: Int, segmenter: MaskRNNSegmenter)] = []
  /// The sequence's exact flows, read in place of computing them with `flow` (`--flow exact`).
  public var exactFlows: ExactSequenceFlows?
  /// The index in the sequence of the last frame segmented.
  private var frameIndex = 0

  public init(model: MaskRNN, device: Device = .cpu, flow: FlowMethod = .dis(.fast), readout: MaskRNNSegmenter.Readout = .full,
              precision: InferencePrecision = .fp32) {
    self.model = model
    self.device = device
    self.flow = flow
    self.readout = readout
    self.precision = precision
  }

  public func start(firstFrame: Image, mask: Image?) throws -> Image { try start(firstFrame: firstFrame, mask: mask, following: nil) }

  public func start(firstFrame: Image, mask: Image?, following: Image?) throws -> Image {
    guard let mask else { throw InferenceError("MaskRNN needs the first frame's object mask") }
    let ids = ObjectMasks.ids(in: mask)
    guard !ids.isEmpty else { throw InferenceError("the first frame's mask holds no object (every pixel is 0)") }
    frameIndex = 0
    // Only a network prepared on the first frame reads its flow (as the second frame's backward one is read later).
    let forward = prepare == nil || following == nil ? nil
      : try exactFlows?.forward(frame: 0) ?? following.map { try flow.compute(firstFrame, $0) }
    objects = try ids.map { id in
      let object = ObjectMasks.object(id, of: mask)
      let network = try prepare?(model, firstFrame, object, forward) ?? model
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
    frameIndex += 1
    let flows = try exactFlows?.flows(frame: frameIndex, hasNext: following != nil) ?? first.segmenter.flows(frame, following: following)
    let merged = try ObjectMasks.merge(try objects.map { ($0.id, try $0.segmenter.advance(frame, following: following, flows: flows)) })
    for object in objects { try object.segmenter.carry(ObjectMasks.object(object.id, of: merged)) }
    return merged
  }
}
