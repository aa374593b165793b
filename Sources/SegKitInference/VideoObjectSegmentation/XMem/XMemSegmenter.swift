import Foundation
import SegKitModels

/// XMem as a sequence segmenter: no fine-tuning, the objects of the first mask (and of
/// any mask given later) followed through XMem's memory. Frames are prepared as XMem's
/// evaluation prepares them: ImageNet normalisation, the shorter side resized to
/// `settings.size` (bilinear, without antialiasing, as torchvision resized tensors when
/// XMem was released), masks resized to match by nearest neighbour; the probabilities
/// are resized back (bilinear) and each pixel takes the most probable object or background.
public final class XMemSegmenter: MaskAcceptingSegmenter {
  public let network: XMem
  public let settings: XMemSettings
  public let device: Device
  private var processor: XMemProcessor?
  /// The object ids (mask values) in the processor's order.
  public private(set) var objectIDs: [Int] = []
  /// The last frame's object probabilities [objects, H, W] at the frame's size (no background).
  public private(set) var lastProbabilities: Tensor?
  /// Called with each frame's index in the sequence and its object probabilities (as
  /// `lastProbabilities`), e.g. to keep them (`ProbabilityWriter`).
  public var didSegment: ((Int, Tensor) throws -> Void)?
  private var frameIndex = -1
  /// The sequence's frame size (width, height), fixed by its first frame.
  private var frameSize: (width: Int, height: Int)?

  /// fp32, or int8: the convolutions run in int8 once calibrated on each sequence's first
  /// `calibrationFrames` frames (segmented in float32 meanwhile), whose inputs set their
  /// ranges. (bf16 is not offered: the memory's sums of products want float32, and this
  /// CPU has no bfloat16 arithmetic to gain from.)
  public let precision: InferencePrecision
  public var calibrationFrames = 3
  private var calibrationLeft = 0

  public init(network: XMem, settings: XMemSettings = XMemSettings(), device: Device = .cpu, precision: InferencePrecision = .fp32) throws {
    guard precision != .bf16 else { throw InferenceError("XMem runs in fp32 or int8, not bf16") }
    guard precision == .fp32 || device == .cpu else { throw InferenceError("XMem's int8 is for the CPU, not \(device)") }
    self.network = network
    self.settings = try settings.validated()
    self.device = device
    self.precision = precision
  }

  /// The processor of the current sequence (memory sizes, readouts), nil before `start`.
  public var currentProcessor: XMemProcessor? { processor }

  public func start(firstFrame: Image, mask: Image?) throws -> Image {
    guard let mask else { throw InferenceError("XMem needs the first frame's object mask") }
    processor = try XMemProcessor(network: network, settings: settings)
    if precision == .int8 {
      try network.beginConvolutionCalibration()
      calibrationLeft = max(1, calibrationFrames)
    }
    objectIDs = []
    frameIndex = -1
    frameSize = (firstFrame.width, firstFrame.height)
    return try segment(firstFrame, mask: mask)
  }

  public func next(_ frame: Image) throws -> Image {
    guard processor != nil else { throw InferenceError("next(_:) before start(firstFrame:mask:): the sequence has not begun") }
    return try segment(frame, mask: nil)
  }

  /// A frame that comes with a mask: its ids not seen before become new objects (as a
  /// YouTube-VOS object first annotated on a later frame), the ids already followed are
  /// reset to the mask, and the objects absent from it keep their prediction.
  public func next(_ frame: Image, mask: Image) throws -> Image {
    guard processor != nil else { return try start(firstFrame: frame, mask: mask) }
    return try segment(frame, mask: mask)
  }

  // XMem skips memorising the last frame (`end`), which changes no output; callers of
  // `next(_:)` do not say which frame is last, so every frame is treated alike.
  private func segment(_ frame: Image, mask: Image?) throws -> Image {
    guard let processor else { throw InferenceError("XMem: the sequence has not begun") }
    guard frame.channels == 3 else { throw InferenceError("XMem: frames must be RGB, got \(frame.channels) channels") }
    if let frameSize, frameSize != (frame.width, frame.height) {
      throw InferenceError("XMem: frame \(frameIndex + 1) is \(frame.width)×\(frame.height), the sequence's first \(frameSize.width)×\(frameSize.height): a sequence keeps one size")
    }
    let size = resizedSize(height: frame.height, width: frame.width)
    var image = try InputNormalization.imagenet.batch(frame).to(device)
    if let size { image = try image.interpolate(size: size, mode: .bilinear) }
    image = try image.squeeze(dim: 0)

    var masks: Tensor?
    var given: [Int] = []
    if let mask {
      guard mask.width == frame.width, mask.height == frame.height, mask.channels == 1 else {
        throw InferenceError("XMem: the mask is \(mask.width)×\(mask.height)×\(mask.channels), the frame \(frame.width)×\(frame.height): need one channel of the frame's size")
      }
      let ids = ObjectMasks.ids(in: mask)
      guard !ids.isEmpty || !objectIDs.isEmpty else { throw InferenceError("XMem: the first mask holds no object (every pixel is 0)") }
      objectIDs += ids.filter { !objectIDs.contains($0) }
      given = ids.compactMap { id in objectIDs.firstIndex(of: id).map { $0 + 1 } }
      var oneHot = try Tensor.stack(objectIDs.map { try ObjectMasks.object($0, of: mask).labelTensor().to(.float32) }).to(device)
      if let size { oneHot = try oneHot.unsqueeze(0).interpolate(size: size, mode: .nearest).squeeze(dim: 0) }
      masks = oneHot
    }
    // Objects already followed that the mask gives again are reset to it, like new ones.
    // Inference mode: no autograd records (the weights require gradients), and int8 runs only without them.
    var probabilities = try Torch.withInferenceMode { try processor.step(image, masks: masks, annotated: given) }
    if size != nil {
      probabilities = try probabilities.unsqueeze(0).interpolate(size: Size2(frame.height, frame.width), mode: .bilinear).squeeze(dim: 0)
    }
    let objectProbabilities = try probabilities.slice(dim: 0, start: 1)
    lastProbabilities = objectProbabilities
    frameIndex += 1
    if calibrationLeft > 0 {
      calibrationLeft -= 1
      if calibrationLeft == 0 { try network.finishConvolutionCalibration() }
    }
    try didSegment?(frameIndex, objectProbabilities)
    let positions = try probabilities.argmax(dim: 0).to(.cpu).toArray(Int64.self)
    let ids = [0] + objectIDs
    return try Image(width: frame.width, height: frame.height, channels: 1, pixels: positions.map { UInt8(ids[Int($0)]) })
  }

  /// torchvision's `Resize(size)`: the shorter side to `size`, the longer in proportion (rounded down).
  func resizedSize(height: Int, width: Int) -> Size2? {
    guard let size = settings.size else { return nil }
    let (short, long) = (min(height, width), max(height, width))
    let newLong = Int(Double(size) * Double(long) / Double(short))
    return height <= width ? Size2(size, newLong) : Size2(newLong, size)
  }
}
