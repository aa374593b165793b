/// An error SegKitModels raises itself: an unknown model or encoder, settings a
/// model cannot take, an input of the wrong shape. libtorch's own stay `TorchError`.
public struct ModelError: Error, CustomStringConvertible, Equatable, Sendable {
  public let message: String
  public init(_ message: String) { self.message = message }
  public var description: String { message }
}
