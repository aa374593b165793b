/// How a model wants its input pixels: value / `pixelDivisor`, minus `mean`, over
/// `std`, per channel, in `channelOrder`. It travels with a model (its manifest),
/// so that training, evaluation, prediction and export normalise alike.
public struct InputNormalization: Sendable, Equatable, Codable {
  public enum ChannelOrder: String, Sendable, Codable { case rgb, bgr }

  public var mean: [Float]
  public var std: [Float]
  /// 255 for statistics of [0, 1] images (torchvision); 1 for statistics of 0–255 values (Caffe).
  public var pixelDivisor: Float
  public var channelOrder: ChannelOrder

  public init(mean: [Float], std: [Float], pixelDivisor: Float = 255, channelOrder: ChannelOrder = .rgb) {
    self.mean = mean
    self.std = std
    self.pixelDivisor = pixelDivisor
    self.channelOrder = channelOrder
  }

  /// ImageNet's statistics, what torchvision's pretrained encoders expect.
  public static let imagenet = InputNormalization(mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225])
}
