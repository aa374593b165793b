import Foundation

/// Names an extra entry of a sample (a neighbouring frame, a previous mask, a flow), so
/// that a new video modality is a new key rather than a new field on every sample type.
public struct SampleKey: Hashable, Comparable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
  public let name: String

  public init(_ name: String) { self.name = name }
  public init(stringLiteral name: String) { self.name = name }

  /// The frame before this one (mask propagation: its mask; flow towards it).
  public static let previous: SampleKey = "previous"
  /// The frame after this one.
  public static let next: SampleKey = "next"
  /// A key frame (feature propagation from a key frame).
  public static let key: SampleKey = "key"
  /// A reference frame (the annotated first frame of one-shot video segmentation).
  public static let reference: SampleKey = "reference"
  /// Member `index` of a clip of frames.
  public static func clip(_ index: Int) -> SampleKey { SampleKey("clip\(index)") }

  public var description: String { name }
  public static func < (lhs: SampleKey, rhs: SampleKey) -> Bool { lhs.name < rhs.name }
}

/// A decoded sample: an RGB image, its label ids (void = 255) and, for video training,
/// keyed extras of the image's size.
public struct Sample: Sendable {
  public var name: String
  public var image: Image
  public var label: Image?
  /// Other RGB frames (resampled like the image, with the same colour changes).
  public var frames: [SampleKey: Image]
  /// Label-like maps, one channel (resampled by nearest neighbour only, padded with 0).
  public var masks: [SampleKey: Image]
  /// Optical flow from this sample's image to the frame of the same key.
  public var flows: [SampleKey: FlowField]

  public init(name: String, image: Image, label: Image?, frames: [SampleKey: Image] = [:],
              masks: [SampleKey: Image] = [:], flows: [SampleKey: FlowField] = [:]) {
    self.name = name
    self.image = image
    self.label = label
    self.frames = frames
    self.masks = masks
    self.flows = flows
  }
}
