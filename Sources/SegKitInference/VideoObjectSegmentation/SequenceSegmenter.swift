/// Segments a sequence one frame at a time: started with its first frame (and,
/// for semi-supervised video object segmentation, that frame's object mask), then
/// fed each following frame in order. `segkit predict` on a video, DAVIS
/// evaluation and a server's streaming endpoint all drive this protocol; video
/// models (OSVOS, MaskRNN, DVSNet) keep their state between calls.
public protocol SequenceSegmenter: AnyObject {
  /// Starts a new sequence; returns the first frame's labels (the given mask, for
  /// a semi-supervised segmenter).
  func start(firstFrame: Image, mask: Image?) throws -> Image
  /// The same, knowing the second frame (nil for a one-frame sequence): a MaskRNN
  /// fine-tuned on the first frame reads the flow to it; the others ignore it.
  func start(firstFrame: Image, mask: Image?, following: Image?) throws -> Image
  /// The labels of the next frame of the sequence.
  func next(_ frame: Image) throws -> Image
  /// The same, knowing the frame after it (nil at the end): segmenters that read the
  /// flow to the next frame (MaskRNN) use it; the others ignore it.
  func next(_ frame: Image, following: Image?) throws -> Image
}

extension SequenceSegmenter {
  public func start(firstFrame: Image, mask: Image?, following: Image?) throws -> Image {
    try start(firstFrame: firstFrame, mask: mask)
  }

  public func next(_ frame: Image, following: Image?) throws -> Image { try next(frame) }
}

/// Segments every frame on its own with an image segmenter: semantic models on
/// video, and the baseline every video model is measured against.
public final class FramewiseSegmenter: SequenceSegmenter {
  public let segmenter: ImageSegmenter
  /// Resize each frame's shorter side to this before segmenting it.
  public let shorterSide: Int?

  public init(_ segmenter: ImageSegmenter, shorterSide: Int? = nil) {
    self.segmenter = segmenter
    self.shorterSide = shorterSide
  }

  /// The first frame is segmented like the others; a mask, if given, is not needed.
  public func start(firstFrame: Image, mask: Image?) throws -> Image { try next(firstFrame) }

  public func next(_ frame: Image) throws -> Image { try segmenter.labels(frame, shorterSide: shorterSide) }
}

extension Image {
  /// A first frame's object mask as 0/1 (its non-zero pixels), checked to be one
  /// channel of `frame`'s size: what semi-supervised segmenters start from.
  public static func objectMask(_ mask: Image?, of frame: Image) throws -> Image {
    guard let mask else { throw InferenceError("semi-supervised segmentation needs the first frame's object mask") }
    guard mask.width == frame.width, mask.height == frame.height, mask.channels == 1 else {
      throw InferenceError("the first frame's mask is \(mask.width)×\(mask.height)×\(mask.channels), the frame \(frame.width)×\(frame.height): need one channel of the frame's size")
    }
    var object = mask
    for i in object.pixels.indices { object.pixels[i] = object.pixels[i] != 0 ? 1 : 0 }
    return object
  }
}

/// A sequence segmenter that also takes masks on later frames: objects that first
/// appear there (YouTube-VOS), or a user's correction of an object it follows.
public protocol MaskAcceptingSegmenter: SequenceSegmenter {
  /// The labels of the next frame, given its mask: the mask's objects not yet followed
  /// are added, those followed are reset to it, the others keep their prediction.
  func next(_ frame: Image, mask: Image) throws -> Image
}
