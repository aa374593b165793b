import Foundation

/// ImageNet statistics, the normalisation torchvision's pretrained models expect.
public enum ImageNormalization {
  public static let mean = InputNormalization.imagenet.mean
  public static let std = InputNormalization.imagenet.std

  /// An RGB image as a normalised [1, 3, H, W] float32 batch.
  public static func batch(_ image: Image) throws -> Tensor {
    let x = try image.rgb().tensor()
    let mean = try Tensor(Self.mean, shape: [3, 1, 1]), std = try Tensor(Self.std, shape: [3, 1, 1])
    return try ((x - mean) / std).unsqueeze(0)
  }
}

/// Runs a segmentation model on single images.
public struct Predictor {
  public let model: any SegmentationNetwork
  public let device: Device

  /// Puts `model` in its fast inference form (see `optimizeForInference`) on `device`.
  public init(model: any SegmentationNetwork, device: Device = .cpu, optimize: Bool = true) throws {
    try model.to(device: device)
    model.eval()
    if optimize { try model.optimizeForInference() }
    self.model = model
    self.device = device
  }

  /// Logits ([1, C, H, W] at the input's size, on the CPU) for one RGB image,
  /// after resizing its shorter side to `shorterSide` when given.
  public func logits(_ image: Image, shorterSide: Int? = nil) throws -> SegmentationOutput {
    var x = try ImageNormalization.batch(image)
    if let shorterSide {
      let scale = Double(shorterSide) / Double(min(image.width, image.height))
      let size = Size2(Int((Double(image.height) * scale).rounded()), Int((Double(image.width) * scale).rounded()))
      x = try x.interpolate(size: size, mode: .bilinear)
    }
    let output = try Torch.withInferenceMode { try model(x.to(device)) }
    return SegmentationOutput(out: try output.out.to(.cpu), aux: try output.aux?.to(.cpu))
  }

  /// The class of each pixel as a one-channel label image.
  public static func labels(_ logits: Tensor) throws -> Image {
    try Image(tensor: logits.argmax(dim: 1).squeeze(dim: 0).to(.uint8))
  }
}

/// The number of classes a full-model checkpoint was trained for: built with
/// 21 classes, the model's classifier differs from the checkpoint's only along
/// the class dimension, which gives the count. Nil when the checkpoint holds no
/// classifier (an encoder checkpoint) or agrees with 21 classes.
public func classCount(of checkpoint: StateDict, model name: String) throws -> Int? {
  let reference = 21
  for (key, tensor) in try ModelZoo.make(name, classes: reference).stateDict() where key.hasPrefix("classifier.") {
    guard let stored = checkpoint[key], stored.rank == tensor.rank, stored.shape != tensor.shape else { continue }
    if let d = tensor.shape.indices.first(where: { tensor.shape[$0] == reference && stored.shape[$0] != reference }) {
      return stored.shape[d]
    }
  }
  return nil
}
